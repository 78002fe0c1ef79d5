"""hatch_pbs.cli.cache_entries without a build: assets checked by their sha256, and what ``cache clean`` removes of
the leftovers of killed builds, never a live build's (whose locks another real process holds here). Prepared
runtimes, compressed parts and bytecode of a real build are damaged in tests/test_damaged_cache.py."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hatch_pbs.cli.cache_entries import cache_entries, clean_cache
from hatch_pbs.release.cache import Cache


def _asset(cache: Cache, name: str, content: bytes) -> Path:
    path = cache.asset_path(hashlib.sha256(content).hexdigest(), name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


@contextmanager
def _held_by_another_process(lock_file: Path) -> Iterator[None]:
    """Hold ``lock_file`` (a filelock lock) in a child process for the duration of the block."""
    code = ("import sys; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
            "print('held', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, str(lock_file)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "held\n"
        yield
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def test_assets_are_checked_by_the_sha256_their_directory_names(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    intact = _asset(cache, "a.tar.gz", b"intact asset")
    damaged = _asset(cache, "b.tar.gz", b"damaged asset")
    damaged.write_bytes(b"damaged Asset")
    verdicts = {entry.path: entry.verdict for entry in cache_entries(cache)}
    assert verdicts[intact] == ("intact", "")
    assert verdicts[damaged] == ("damaged", f"its sha256 is {hashlib.sha256(b'damaged Asset').hexdigest()}, "
                                            f"not {damaged.parent.name}")
    assert {entry.path: entry.verdict.state for entry in cache_entries(cache, digests=False)} == {
        intact: "intact", damaged: "intact"}  # without digests, nothing reads an asset
    removed = clean_cache(cache, older_than=30 * 86400)
    assert [(removal.kind, removal.path, removal.freed) for removal in removed] == [("asset", damaged, 13)]
    assert intact.exists() and not damaged.exists()


@contextmanager
def _being_written(entry: Path) -> Iterator[Path]:
    """A child process writing ``entry`` through hatch_pbs.atomic (holding its temporary's lock) for the duration of
    the block; yields the temporary's path."""
    code = ("import sys; from pathlib import Path; from hatch_pbs.atomic import publishing_file\n"
            "with publishing_file(Path(sys.argv[1])) as temporary:\n"
            "    temporary.write_bytes(b'y' * 400); print(temporary, flush=True); sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(entry)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        yield Path(child.stdout.readline().strip())
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def test_clean_removes_killed_builds_leftovers_and_keeps_live_ones(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    killed_entry = _asset(cache, "a.tar.gz", b"a")
    live_entry = _asset(cache, "b.tar.gz", b"b")
    killed = killed_entry.parent / ".a.tar.gz.0123456789ab.part"  # nobody holds its lock
    killed.write_bytes(b"x" * 300)
    bytecode = cache.bytecode_dir / "cpython-3x" / "ab"
    bytecode.mkdir(parents=True)
    killed_bytecode = bytecode / ".ab12.pyc.0123456789ab.part"
    killed_bytecode.write_bytes(b"z" * 50)
    cache.staging_dir.mkdir(parents=True)
    abandoned, running = cache.staging_dir / "tmpabandoned", cache.staging_dir / "tmprunning"
    for directory in (abandoned, running):
        directory.mkdir()
        (directory / "file").write_bytes(b"w" * 100)
        Path(f"{directory}.lock").touch()
    with _being_written(live_entry) as live, _held_by_another_process(Path(f"{running}.lock")):
        removed = clean_cache(cache, older_than=30 * 86400)
        assert live.exists() and running.is_dir()  # a live build's temporary and staging directory stay
    assert sorted((removal.kind, removal.path.name, removal.freed) for removal in removed) == [
        ("staging directory", "tmpabandoned", 100), ("temporary", ".a.tar.gz.0123456789ab.part", 300),
        ("temporary", ".ab12.pyc.0123456789ab.part", 50)]
    assert not killed.exists() and not killed_bytecode.exists() and not abandoned.exists()
    assert killed_entry.exists() and live_entry.read_bytes() == b"y" * 400  # the live writer finished its entry
