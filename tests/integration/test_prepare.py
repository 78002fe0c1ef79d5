"""hatch_pbs.runtime.prepare: prepared runtimes in the cache (extracted once, relocated, trimmed, byte-compiled), copied
into builds with hard links. Every test prepares a real runtime from the fake release and runs its interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pbs_release import FakeRelease

from hatch_pbs.errors import ConfigError, DamagedCacheError, ExtractError, ResolveError
from hatch_pbs.release.assets import parse_asset_name
from hatch_pbs.release.cache import Cache, sha256_of
from hatch_pbs.release.resolve import ResolvedAsset
from hatch_pbs.runtime.prepare import (
    Trim,
    copy_runtime,
    discard_prepared,
    entry_key,
    entry_verdict,
    find_interpreter,
    find_stdlib,
    relocated_runtime,
    trimmed_runtime,
)
from hatch_pbs.runtime.site import APP_PTH_NAME


def _resolved(fake_release: FakeRelease, flavor: str = "install_only") -> ResolvedAsset:
    path = fake_release.assets[flavor]
    return ResolvedAsset(parse_asset_name(path.name, release=fake_release.tag), sha256_of(path), path.as_uri())


def _prepare(cache: Cache, fake_release: FakeRelease, trim: Trim | None):
    resolved = _resolved(fake_release)
    relocated = relocated_runtime(cache, fake_release.assets["install_only"], resolved)
    return relocated if trim is None else trimmed_runtime(cache, relocated, resolved, trim)


def _listing(root: Path) -> dict[str, tuple[int, int, bytes | str]]:
    """path -> (mode, mtime in seconds, content or link target) of everything below ``root``."""
    found = {}
    for directory, subdirectories, files in os.walk(root):
        for name in [*subdirectories, *files]:
            path = Path(directory, name)
            status = path.lstat()
            content = os.readlink(path) if path.is_symlink() else (b"" if path.is_dir() else path.read_bytes())
            found[path.relative_to(root).as_posix()] = (status.st_mode, int(status.st_mtime), content)
    return found


def _python(interpreter: Path, code: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(interpreter), "-I", "-c", code], capture_output=True, text=True, check=False,
                          env={"PATH": os.environ["PATH"]}, **kwargs)


def test_relocated_runtime_is_extracted_once_and_reused(tmp_path: Path, fake_release: FakeRelease) -> None:
    cache = Cache(tmp_path / "cache")
    first = _prepare(cache, fake_release, None)
    assert first.root.parent == cache.runtime_path(entry_key(_resolved(fake_release), None))
    assert _python(first.interpreter, "import json, ssl; print('ok')").stdout == "ok\n"
    # The second call reads the entry: it does not even need the asset any more.
    again = relocated_runtime(cache, tmp_path / "gone.tar.gz", _resolved(fake_release))
    assert again == first
    assert not list((cache.root / "runtimes").glob(".*.part"))


def test_default_trim_drops_the_preset_and_adds_the_app_path(tmp_path: Path, fake_release: FakeRelease) -> None:
    cache = Cache(tmp_path / "cache")
    relocated = _prepare(cache, fake_release, None)
    trimmed = _prepare(cache, fake_release, Trim())
    assert trimmed.root != relocated.root
    stdlib = find_stdlib(trimmed.root, fake_release.python_version)
    # lib2to3 left the standard library in CPython 3.13 (PEP 594 schedule; "What's New In Python 3.13")
    presets = ("ensurepip", "idlelib", "turtledemo") + (("lib2to3",) if sys.version_info < (3, 13) else ())
    for dropped in presets:
        assert (find_stdlib(relocated.root, fake_release.python_version) / dropped).is_dir()
        assert not (stdlib / dropped).exists()
    assert trimmed.trimmed.files > 100 and trimmed.trimmed.size > 1_000_000
    assert (stdlib / "site-packages" / APP_PTH_NAME).is_file()
    assert not (find_stdlib(relocated.root, fake_release.python_version) / "site-packages" / APP_PTH_NAME).exists()
    assert _python(trimmed.interpreter, "import json, tkinter; print('ok')").stdout == "ok\n"


def test_minimal_trim_still_runs(tmp_path: Path, fake_release: FakeRelease) -> None:
    trimmed = _prepare(Cache(tmp_path / "cache"), fake_release, Trim(stdlib="minimal"))
    stdlib = find_stdlib(trimmed.root, fake_release.python_version)
    assert not (stdlib / "tkinter").exists() and not (stdlib / "pydoc_data").exists()
    assert not (trimmed.root / "include").exists()
    result = _python(trimmed.interpreter, "import json, sqlite3, ssl, asyncio; print('ok')")
    assert result.stdout == "ok\n", result.stderr


def test_prepared_runtimes_are_the_same_bytes_and_times_whoever_prepares_them(
        tmp_path: Path, fake_release: FakeRelease) -> None:
    one = _prepare(Cache(tmp_path / "one"), fake_release, Trim(stdlib="minimal", bytecode="only"))
    two = _prepare(Cache(tmp_path / "two"), fake_release, Trim(stdlib="minimal", bytecode="only"))
    assert _listing(one.root) == _listing(two.root)


def test_copies_are_hard_links_and_rewriting_a_copy_leaves_the_cache_alone(
        tmp_path: Path, fake_release: FakeRelease) -> None:
    cache = Cache(tmp_path / "cache")
    trimmed = _prepare(cache, fake_release, Trim())
    before = _listing(trimmed.root)
    copy = copy_runtime(trimmed, tmp_path / "build" / "python")
    assert _listing(copy.root) == before
    assert copy.interpreter.stat().st_ino == trimmed.interpreter.stat().st_ino
    # What the pipeline does to files: write a new file and rename it over the old one (never in place).
    target = find_stdlib(copy.root, fake_release.python_version) / "json" / "__init__.py"
    replacement = target.with_name(".replacement")
    replacement.write_text("changed = True\n")
    os.replace(replacement, target)
    (copy.root / "new-file").write_text("x")
    assert _listing(trimmed.root) == before
    assert _python(copy.interpreter, "import json; print(json.changed)").stdout == "True\n"


def test_copy_falls_back_to_copies_across_file_systems(tmp_path: Path, fake_release: FakeRelease) -> None:
    trimmed = _prepare(Cache(tmp_path / "cache"), fake_release, Trim())
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system than the temporary directory")
    destination = Path(os.environ.get("TMPDIR_SHM", shm)) / f"hatch-pbs-copy-{os.getpid()}"
    try:
        copy = copy_runtime(trimmed, destination / "python")
        assert copy.interpreter.stat().st_ino != trimmed.interpreter.stat().st_ino
        assert _listing(copy.root) == _listing(trimmed.root)
        assert _python(copy.interpreter, "print('ok')").stdout == "ok\n"
    finally:
        subprocess.run(["rm", "-rf", str(destination)], check=True)


def test_sourceless_standard_library(tmp_path: Path, fake_release: FakeRelease) -> None:
    trimmed = _prepare(Cache(tmp_path / "cache"), fake_release, Trim(bytecode="only"))
    stdlib = find_stdlib(trimmed.root, fake_release.python_version)
    assert not (stdlib / "json" / "__init__.py").exists() and (stdlib / "json" / "__init__.pyc").is_file()
    assert not list(stdlib.rglob("__pycache__"))
    copy = copy_runtime(trimmed, tmp_path / "elsewhere" / "python")
    result = _python(copy.interpreter, "import json, os; print(json.__file__); json.loads('{')")
    assert result.stdout.strip().endswith("json/__init__.pyc")
    # Tracebacks still name the files (as recorded at build time), without source lines.
    assert 'json/decoder.py", line' in result.stderr and "JSONDecodeError" in result.stderr


def test_no_bytecode(tmp_path: Path, fake_release: FakeRelease) -> None:
    trimmed = _prepare(Cache(tmp_path / "cache"), fake_release, Trim(bytecode="none"))
    assert not list(trimmed.root.rglob("*.pyc"))
    assert _python(trimmed.interpreter, "import sys, json; print('ok')",
                   ).stdout == "ok\n"


def test_excluding_the_interpreter_is_a_config_error_and_publishes_nothing(
        tmp_path: Path, fake_release: FakeRelease) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"Option `exclude` for build hook `pbs` removes the runtime's interpreter "
                                          r"python/bin/python3\.\d+, which the launchers run; got \['python/bin/'\]"):
        _prepare(cache, fake_release, Trim(exclude=("python/bin/",)))
    runtimes = sorted(path.name for path in (cache.root / "runtimes").iterdir() if not path.name.endswith(".lock"))
    assert runtimes == [entry_key(_resolved(fake_release), None)]  # only the relocated runtime


def test_a_corrupt_asset_publishes_nothing(tmp_path: Path, fake_release: FakeRelease) -> None:
    cache = Cache(tmp_path / "cache")
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(fake_release.assets["install_only"].read_bytes()[:200_000])
    with pytest.raises(ExtractError):
        relocated_runtime(cache, broken, _resolved(fake_release))
    assert [path.name for path in (cache.root / "runtimes").iterdir() if not path.name.endswith(".lock")] == []


def test_a_damaged_prepared_runtime_is_discarded_and_prepared_again_with_one_warning(
        tmp_path: Path, fake_release: FakeRelease) -> None:
    cache, resolved, archive = Cache(tmp_path / "cache"), _resolved(fake_release), fake_release.assets["install_only"]
    version = fake_release.python_version
    warnings: list[str] = []

    def prepare(trim: Trim = Trim()):
        relocated = relocated_runtime(cache, archive, resolved, warn=warnings.append)
        return relocated, trimmed_runtime(cache, relocated, resolved, trim, warn=warnings.append)

    relocated, trimmed = prepare()
    before, relocated_entry, trimmed_entry = _listing(trimmed.root), relocated.root.parent, trimmed.root.parent
    stdlib = find_stdlib(trimmed.root, version)
    # A file both entries share (one inode, hard-linked), truncated in place: one damage, one line.
    shared = stdlib / "os.py"
    assert shared.stat().st_ino == (find_stdlib(relocated.root, version) / "os.py").stat().st_ino
    size = shared.stat().st_size
    shared.write_bytes(shared.read_bytes()[:100])
    relocated, trimmed = prepare()
    assert warnings == [f"the prepared runtime {relocated_entry} is damaged ({stdlib.relative_to(trimmed.root)}/os.py: "
                        f"100 bytes, {size} recorded); preparing it again, with the 1 trimmed runtime made from it"]
    assert _listing(trimmed.root) == before
    assert entry_verdict(relocated_entry, digests=True) == entry_verdict(trimmed_entry, digests=True) == ("intact", "")
    assert _python(trimmed.interpreter, "import os, json; print('ok')").stdout == "ok\n"
    # A file only the trimmed runtime has, deleted; then its record, damaged.
    for damage, reason in ((lambda: (stdlib / "site-packages" / APP_PTH_NAME).unlink(),
                            f"{stdlib.relative_to(trimmed.root)}/site-packages/{APP_PTH_NAME}: missing"),
                           (lambda: (trimmed_entry / "prepared.json").write_text("{"), "prepared.json: unreadable")):
        warnings.clear()
        damage()
        relocated, trimmed = prepare()
        assert len(warnings) == 1
        assert warnings[0].startswith(f"the prepared runtime {trimmed_entry} is damaged ({reason}")
        assert warnings[0].endswith("); preparing it again") and _listing(trimmed.root) == before
    # The same size with other bytes passes the cheap check on use, not the full one before a derivation.
    warnings.clear()
    changed = find_stdlib(relocated.root, version) / "json" / "__init__.py"
    data = changed.read_bytes()
    changed.write_bytes(data[:-2] + b"#\n")
    assert entry_verdict(relocated_entry, digests=False).state == "intact"
    assert entry_verdict(relocated_entry, digests=True) == (
        "damaged", f"{changed.relative_to(relocated.root)}: its sha256 differs from the recorded one")
    with pytest.raises(DamagedCacheError, match=f"^the prepared runtime {relocated_entry} is damaged \\(.*json/"):
        prepare(Trim(stdlib="minimal"))
    discard_prepared(cache, resolved, Trim())
    assert not relocated_entry.exists() and not trimmed_entry.exists()
    relocated, trimmed = prepare(Trim(stdlib="minimal"))
    assert warnings == [] and entry_verdict(relocated_entry, digests=True).state == "intact"
    assert changed.read_bytes() == data


def test_an_entry_of_another_hatch_pbs_version_is_outdated(tmp_path: Path, fake_release: FakeRelease) -> None:
    entry = _prepare(Cache(tmp_path / "cache"), fake_release, None).root.parent
    record = json.loads((entry / "prepared.json").read_text())
    (entry / "prepared.json").write_text(json.dumps({**record, "hatch_pbs": "0.0.1"}))
    assert entry_verdict(entry, digests=True) == (
        "outdated", "made by hatch-pbs 0.0.1 (preparation version 2), which this one never reads")
    del record["contents"], record["hatch_pbs"], record["preparation"]  # what hatch-pbs 0.1.0 wrote
    (entry / "prepared.json").write_text(json.dumps(record))
    assert entry_verdict(entry, digests=False).state == "outdated"


def test_keys_differ_by_asset_and_options(fake_release: FakeRelease) -> None:
    resolved = _resolved(fake_release)
    other = _resolved(fake_release, "install_only_stripped")
    keys = {entry_key(resolved, None), entry_key(other, None), entry_key(resolved, Trim()),
            entry_key(resolved, Trim(stdlib="full")), entry_key(resolved, Trim(bytecode="only")),
            entry_key(resolved, Trim(exclude=("*.pyi",)))}
    assert len(keys) == 6
    assert entry_key(resolved, Trim()) == entry_key(resolved, Trim("default", "compile", ()))


def test_find_interpreter_and_stdlib(tmp_path: Path) -> None:
    runtime = tmp_path / "python"
    (runtime / "bin").mkdir(parents=True)
    (runtime / "lib" / "python3.13t").mkdir(parents=True)
    (runtime / "bin" / "python3.13t").write_bytes(b"")
    assert find_interpreter(runtime, "3.13.9") == runtime / "bin" / "python3.13t"
    assert find_stdlib(runtime, "3.13.9") / "site-packages" == runtime / "lib" / "python3.13t" / "site-packages"
    (runtime / "bin" / "python3.13").write_bytes(b"")
    assert find_interpreter(runtime, "3.13.9") == runtime / "bin" / "python3.13"
    with pytest.raises(ResolveError, match="the runtime has no interpreter at .*/bin/python3.12"):
        find_interpreter(runtime, "3.12.1")
