"""End to end: a damaged derived cache entry (a compressed runtime part emptied or cut in half, a cached ``.pyc``
cut short, a prepared runtime's file truncated, deleted or changed) never reaches an artifact. The rebuild exits 0
with one warning line per damaged entry, and its archive is byte for byte the archive of the undamaged build (so
``SHA256SUMS`` matches it); it unpacks completely and its launcher runs. ``hatch-pbs cache verify`` lists every kind
of damage and ``hatch-pbs cache clean`` removes it. The damage is done for real, on the files of a real build's
cache."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import copy_example_project, run_hatchling
from pbs_release import FakeRelease

pytestmark = pytest.mark.e2e


@dataclass
class Built:
    project: Path
    cache: Path
    env: dict[str, str]
    archive: Path
    reference: bytes  # the archive of the first, undamaged build


@pytest.fixture(scope="module")
def built(fake_release: FakeRelease, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("rebuilds")
    minor = ".".join(fake_release.python_version.split(".")[:2])
    project = copy_example_project(base / "project", hook_table=f'python-version = "{minor}"')
    cache = base / "cache"
    env = {"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(cache), "UV_OFFLINE": "1",
           "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(base / "uv-cache")}
    result = run_hatchling(project, "app", env, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    (archive,) = (project / "dist" / "app").glob("pbs-demo-*.tar.gz")
    return Built(project, cache, env, archive, archive.read_bytes())


def _rebuild(built: Built, tmp_path: Path) -> list[str]:
    """Rebuild; check that the archive is the undamaged one, listed in SHA256SUMS, complete, and runs. Returns the
    warning lines of the build that concern the cache."""
    result = run_hatchling(built.project, "app", built.env, "--hooks-only")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert hashlib.sha256(built.archive.read_bytes()).hexdigest() == hashlib.sha256(built.reference).hexdigest()
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=built.archive.parent, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    listing = subprocess.run(["tar", "-tzf", str(built.archive)], capture_output=True, text=True, check=True).stdout
    top = built.archive.name.removesuffix(".tar.gz")
    assert f"{top}/python/" in listing.splitlines() and f"{top}/bin/pbs-demo" in listing.splitlines()
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(built.archive), "-C", str(unpacked)], check=True)
    run = subprocess.run([str(unpacked / top / "bin" / "pbs-demo"), "selftest"], capture_output=True, text=True,
                         check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert (run.returncode, run.stdout) == (0, "pbs-demo: selftest: 5 of 5 checks passed\n"), run.stderr
    return [line for line in output.splitlines() if any(word in line for word in (" is damaged (", " damaged; "))]


def _runtime_entries(built: Built) -> tuple[Path, Path]:
    """(relocated, trimmed) prepared runtime entries of the build's cache."""
    entries = [path for path in (built.cache / "runtimes").iterdir() if path.is_dir() and not path.name.startswith(".")]
    records = {path: json.loads((path / "prepared.json").read_text()) for path in entries}
    (relocated,) = [path for path in entries if records[path]["source"] is None]
    (trimmed,) = [path for path in entries if records[path]["source"] == relocated.name]
    return relocated, trimmed


def _part(built: Built) -> Path:
    (part,) = (_runtime_entries(built)[1] / "packed").glob("*/part")
    return part


def _app_bytecode(built: Built) -> Path:
    """The cached bytecode entry of the project's own ``pbs_demo/cli.py`` (found by its compiled bytes)."""
    compiled = _unpacked_pyc(built, "app/pbs_demo/__pycache__/cli.")
    for path in (built.cache / "bytecode").rglob("*.pyc"):
        if path.read_bytes().endswith(compiled):
            return path
    raise AssertionError("the cached bytecode of pbs_demo/cli.py is not in the cache")


def _unpacked_pyc(built: Built, prefix: str) -> bytes:
    """The bytes of the one member of the reference archive whose name (below the top directory) starts with
    ``prefix``."""
    with tarfile.open(fileobj=io.BytesIO(built.reference)) as archive:
        (member,) = [member for member in archive.getmembers()
                     if member.name.partition("/")[2].startswith(prefix) and member.isfile()]
        return archive.extractfile(member).read()


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as stream:  # in place, as a full disk or a crash would leave it
        stream.truncate(size)


def _stdlib_file(runtime: Path, name: str) -> Path:
    (stdlib,) = (runtime / "python" / "lib").glob("python3.*")
    return stdlib / name


def test_an_empty_compressed_runtime_part_is_compressed_again(built: Built, tmp_path: Path) -> None:
    part = _part(built)
    _truncate(part, 0)
    warnings = _rebuild(built, tmp_path)
    assert len(warnings) == 1, warnings
    assert f"the compressed runtime part {part.parent} is damaged (part: 0 bytes, " in warnings[0]
    assert warnings[0].endswith("recorded); compressing it again")
    assert part.stat().st_size > 0


def test_a_half_compressed_runtime_part_and_a_truncated_pyc_each_give_one_line(built: Built, tmp_path: Path) -> None:
    part, bytecode = _part(built), _app_bytecode(built)
    _truncate(part, part.stat().st_size // 2)
    _truncate(bytecode, bytecode.stat().st_size // 2)
    warnings = _rebuild(built, tmp_path)
    assert len(warnings) == 2, warnings
    assert sum(f"the compressed runtime part {part.parent} is damaged" in line for line in warnings) == 1
    assert sum(f"the cached bytecode {bytecode} was damaged; compiled again" in line for line in warnings) == 1


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_damaged_file_of_the_prepared_runtime_is_prepared_again(built: Built, tmp_path: Path, damage: str) -> None:
    relocated, trimmed = _runtime_entries(built)
    victim = _stdlib_file(trimmed, "os.py")  # one inode, shared by both entries
    if damage == "truncated":
        _truncate(victim, 10)
    else:
        victim.unlink()
    warnings = _rebuild(built, tmp_path)
    assert len(warnings) == 1, warnings
    if damage == "truncated":  # in place: the inode both entries share is damaged, and both are made again
        assert f"the prepared runtime {relocated} is damaged (lib/" in warnings[0]
        assert "os.py: 10 bytes, " in warnings[0]
        assert warnings[0].endswith("; preparing it again, with the 1 trimmed runtime made from it")
    else:  # the trimmed entry's link is gone; the relocated entry is intact
        assert warnings[0].endswith(f"the prepared runtime {trimmed} is damaged (lib/{victim.parent.name}/os.py: "
                                    f"missing); preparing it again")
    assert _runtime_entries(built) == (relocated, trimmed)


def test_same_size_damage_in_the_prepared_runtime_is_caught_while_packing(built: Built, tmp_path: Path) -> None:
    """Only the sha256 tells: the file keeps its size. It is checked while the runtime is packed (here, because
    the compressed part is gone), so neither the archive nor a new kept part gets the changed bytes."""
    relocated, trimmed = _runtime_entries(built)
    shutil.rmtree(_part(built).parent)
    victim = _stdlib_file(trimmed, "colorsys.py")  # a module the build's own interpreter runs never import
    data = victim.read_bytes()
    with victim.open("r+b") as stream:
        stream.seek(len(data) // 2)
        stream.write(bytes([data[len(data) // 2] ^ 0x20]))
    warnings = _rebuild(built, tmp_path)
    assert len(warnings) == 1, warnings
    assert f"the prepared runtime {trimmed} is damaged (python/lib/" in warnings[0]
    assert "colorsys.py: its sha256 differs from the recorded one); preparing it again" in warnings[0]
    assert _stdlib_file(_runtime_entries(built)[1], "colorsys.py").read_bytes() == data


def _cli(built: Built, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hatch_pbs.cli", "cache", *arguments, "--cache-dir",
                           str(built.cache)], capture_output=True, text=True, check=False, timeout=600)


def test_cache_verify_lists_every_kind_of_damage_and_cache_clean_removes_it(built: Built, tmp_path: Path) -> None:
    clean = _cli(built, "verify")
    assert clean.returncode == 0 and clean.stderr == "", clean.stdout + clean.stderr
    assert "damaged" not in clean.stdout.replace(": 0 damaged", "")
    relocated, trimmed = _runtime_entries(built)
    part, bytecode = _part(built), _app_bytecode(built)
    (asset,) = [path for path in (built.cache / "assets").glob("*/*") if not path.name.endswith(".lock")]
    damages: dict[Path, Callable[[], None]] = {
        part.parent: lambda: _truncate(part, 0),
        bytecode: lambda: _truncate(bytecode, 20),
        relocated: lambda: _flip_last_byte(_stdlib_file(relocated, "ensurepip/__init__.py")),  # not in trimmed
        asset: lambda: _flip_last_byte(asset),
    }
    for damage in damages.values():
        damage()
    verify = _cli(built, "verify")
    assert verify.returncode == 1, verify.stdout + verify.stderr
    lines = [line for line in verify.stdout.splitlines() if line.startswith("damaged: ")]
    assert sorted(lines) == sorted(f"damaged: {kind} {path}: {reason}" for kind, path, reason in (
        ("compressed runtime part", part.parent, f"part: 0 bytes, {_recorded_part_size(part)} recorded"),
        ("bytecode", bytecode, "20 bytes, shorter than its 40-byte header"),
        ("prepared runtime", relocated,
         f"{_stdlib_file(relocated, 'ensurepip/__init__.py').relative_to(relocated / 'python')}: its sha256 differs "
         f"from the recorded one"),
        ("asset", asset, f"its sha256 is {hashlib.sha256(asset.read_bytes()).hexdigest()}, not {asset.parent.name}"),
    )), verify.stdout
    assert verify.stderr.startswith("hatch-pbs: error: 4 damaged cache entries in ") and verify.stderr.count("\n") == 1
    # Leftovers of a killed build: a temporary beside a runtime entry, and one of bytecode (nobody holds their locks).
    stale_runtime = built.cache / "runtimes" / f".{relocated.name}.0123456789ab.part"
    stale_runtime.mkdir()
    (stale_runtime / "half-extracted").write_bytes(b"x" * 1000)
    stale_pyc = bytecode.with_name(f".{bytecode.name}.0123456789ab.part")
    stale_pyc.write_bytes(b"y" * 500)
    cleaned = _cli(built, "clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    removed = cleaned.stdout.splitlines()
    for path in [*damages, stale_runtime, stale_pyc]:
        assert any(line.startswith("removed ") and f" {path} (" in line for line in removed), (path, removed)
        assert not path.exists()
    assert removed[-1].startswith("freed ") and int(removed[-1].split()[1]) > 1500
    again = _cli(built, "verify")
    assert again.returncode == 0 and ": 0 damaged" in again.stdout, again.stdout + again.stderr
    assert trimmed.is_dir(), "intact entries stay"
    # The next build makes everything again (the asset from the mirror), and the archive is the same.
    assert _rebuild(built, tmp_path) == []
    assert _cli(built, "verify").returncode == 0


def test_cache_clean_removes_unused_and_outdated_entries_and_all_derived_ones(built: Built, tmp_path: Path) -> None:
    relocated, trimmed = _runtime_entries(built)
    part, bytecode = _part(built), _app_bytecode(built)
    long_ago = time.time() - 40 * 86400
    for record in (relocated / "prepared.json", part.parent / "record.json", bytecode):
        os.utime(record, (long_ago, long_ago))
    outdated = bytecode.with_name("0" * 64 + ".pyc")
    outdated.write_bytes(_unpacked_pyc(built, "app/pbs_demo/__pycache__/cli."))  # a bare .pyc: the old format
    kept = _cli(built, "clean", "--older-than", "60")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert kept.stdout.splitlines()[0] == (
        "removed 1 bytecode entry (outdated: kept in the format of an older hatch-pbs): 0.0 MB freed")
    assert relocated.exists() and part.exists() and bytecode.exists() and not outdated.exists()
    idle = _cli(built, "clean")
    assert idle.returncode == 0, idle.stdout + idle.stderr
    assert not relocated.exists() and not part.parent.exists() and not bytecode.exists()
    assert trimmed.exists(), "used recently: kept"
    assert any(line.startswith(f"removed prepared runtime {relocated} (unused for 40 days): ")
               for line in idle.stdout.splitlines())
    everything = _cli(built, "clean", "--all")
    assert everything.returncode == 0 and not trimmed.exists(), everything.stdout + everything.stderr
    assert not list((built.cache / "bytecode").rglob("*.pyc"))
    assert list((built.cache / "assets").glob("*/*.tar.gz")), "assets stay"
    assert _rebuild(built, tmp_path) == []


def _flip_last_byte(path: Path) -> None:
    with path.open("r+b") as stream:
        stream.seek(-1, os.SEEK_END)
        last = stream.read(1)
        stream.seek(-1, os.SEEK_END)
        stream.write(bytes([last[0] ^ 0x01]))


def _recorded_part_size(part: Path) -> int:
    return json.loads((part.parent / "record.json").read_text())["size"]
