"""The onefile form's payloads (hatch_pbs.forms.onefile): every artifact format becomes a .tar.zst with the same
members, within the bootstrap's zstd window; bootstraps per triple; the name clash with directory artifacts."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

import pytest
import zstandard

from hatch_pbs.artifact.pack import pack_directory, pack_tree
from hatch_pbs.config import parse_hook_config
from hatch_pbs.errors import ConfigError, PackError
from hatch_pbs.forms import FormContext
from hatch_pbs.forms.onefile import check_onefile_names, onefile_name, payload_archive
from hatch_pbs.onefile.bootstraps import BOOTSTRAP_TRIPLES, bootstrap_path

STEM = "demo-1.0-x86_64-unknown-linux-gnu"


def _tree(root: Path) -> Path:
    tree = root / STEM
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "demo").write_text("#!/bin/sh\nexec python\n")
    (tree / "bin" / "demo").chmod(0o755)
    (tree / "app").mkdir()
    (tree / "app" / "module.py").write_bytes(b"print('hi')\n" * 1000)
    (tree / "app" / "link.py").symlink_to("module.py")
    return tree


def _members(payload: Path) -> dict[str, tuple[bytes, int, bytes | str]]:
    with open(payload, "rb") as stream, zstandard.ZstdDecompressor().stream_reader(stream) as raw, \
            tarfile.open(fileobj=raw, mode="r|") as tar:
        return {member.name.rstrip("/"): (member.type, stat.S_IMODE(member.mode),
                                          tar.extractfile(member).read() if member.isfile()  # type: ignore[union-attr]
                                          else member.linkname)
                for member in tar}


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip", ".tar.zst"])
def test_every_archive_format_gives_the_same_members(tmp_path: Path, suffix: str) -> None:
    tree = _tree(tmp_path)
    reference = tmp_path / f"{STEM}.tar.zst"
    pack_tree(tree, reference)
    archive = tmp_path / "out" / f"{STEM}{suffix}"
    archive.parent.mkdir()
    pack_tree(tree, archive)
    work = tmp_path / "work"
    work.mkdir()
    payload = payload_archive(archive, work)
    assert payload == (archive if suffix == ".tar.zst" else work / f"{STEM}.tar.zst")
    members = _members(payload)
    assert members == _members(reference)
    assert members[f"{STEM}/bin/demo"][1] == 0o755 and members[f"{STEM}/app/link.py"][2] == "module.py"
    assert payload_archive(archive, work).read_bytes() == payload.read_bytes()  # reproducible


def test_a_directory_artifact_is_packed(tmp_path: Path) -> None:
    directory = tmp_path / "dist" / STEM
    pack_directory(_tree(tmp_path / "src"), directory)
    work = tmp_path / "work"
    work.mkdir()
    members = _members(payload_archive(directory, work))
    assert members[f"{STEM}/app/module.py"] == (tarfile.REGTYPE, 0o644, b"print('hi')\n" * 1000)


def test_a_frame_with_a_larger_window_than_the_bootstrap_decodes_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / f"{STEM}.tar.zst"
    parameters = zstandard.ZstdCompressionParameters.from_level(19, window_log=24)
    with open(archive, "wb") as out, zstandard.ZstdCompressor(compression_params=parameters).stream_writer(out) as writer:
        writer.write(b"x" * 100)  # streamed: the size is unknown, so the frame keeps the 16 MiB window
    with pytest.raises(PackError, match=r"needs a zstd window of 16777216 bytes; the onefile bootstrap decodes at "
                                        r"most 8388608"):
        payload_archive(archive, tmp_path)


def test_a_damaged_archive_is_a_pack_error(tmp_path: Path) -> None:
    archive = tmp_path / f"{STEM}.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00" + b"\0" * 20)
    with pytest.raises(PackError, match="cannot make the onefile payload of"):
        payload_archive(archive, tmp_path)
    assert not (tmp_path / f"{STEM}.tar.zst").exists()


def test_bootstraps_exist_for_every_listed_triple() -> None:
    for triple in BOOTSTRAP_TRIPLES:
        path = bootstrap_path(triple, gui="windows" in triple)
        assert path.is_file() and path.stat().st_size > 100_000
    assert bootstrap_path("x86_64_v3-unknown-linux-gnu").name == "bootstrap-x86_64-unknown-linux-gnu"
    assert bootstrap_path("x86_64-pc-windows-msvc").name == "bootstrap-x86_64-pc-windows-msvc.exe"
    assert bootstrap_path("x86_64-pc-windows-msvc", gui=True).name == "bootstrap-x86_64-pc-windows-msvc-gui.exe"
    with pytest.raises(ValueError, match="no onefile bootstrap for riscv64-unknown-linux-gnu"):
        bootstrap_path("riscv64-unknown-linux-gnu")
    assert onefile_name("demo", "1.0", "aarch64-pc-windows-msvc") == "demo-1.0-aarch64-pc-windows-msvc.exe"
    assert onefile_name("demo", "1.0", "aarch64-apple-darwin") == "demo-1.0-aarch64-apple-darwin"


def _context(raw: dict[str, object], tmp_path: Path) -> FormContext:
    scripts = {"demo": "demo.cli:main"}
    config = parse_hook_config({"cache-dir": str(tmp_path), **raw}, project_scripts=scripts, root=tmp_path,
                               environ={}, host=lambda: "x86_64-unknown-linux-gnu")
    return FormContext(config=config, root=tmp_path, name="demo", version="1.0", requires_python=None,
                       scripts=scripts, gui_scripts=frozenset(), output_dir=tmp_path / "dist", target_name="app",
                       build_wheel=lambda directory: directory, info=print, warning=print, success=print)


def test_a_script_named_like_a_directory_artifact_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Options `onefile` and `archive-format = \"dir\"` of build hook `pbs` "
                                          r"would both write demo-1.0-<triple>"):
        check_onefile_names(_context({"onefile": True, "archive-format": "dir"}, tmp_path))
    check_onefile_names(_context({"onefile": True, "archive-format": "tar.zst"}, tmp_path))
    check_onefile_names(_context({"archive-format": "dir"}, tmp_path))
