"""Tests of ``hatch_pbs.release.cache``: layout, atomic publishing and the entry lock (threads and processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hatch_pbs.release.cache import Cache

SHA = "ab" * 32
NAME = "cpython-3.12.7+20261021-x86_64-unknown-linux-gnu-install_only.tar.gz"


def part_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.part")) if directory.exists() else []


# --------------------------------------------------------------------------------------------------------------
# Layout


def test_asset_path_is_content_addressed(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    assert cache.asset_path(SHA, NAME) == tmp_path / "assets" / SHA / NAME
    assert not (tmp_path / "assets").exists()  # computing a path writes nothing


def test_catalogue_path_depends_on_mirror_and_release(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    github = cache.catalogue_path("https://github.com/x/releases/download", "20261021")
    assert github.name == "SHA256SUMS"
    assert github.parent.name == "20261021"
    assert github.is_relative_to(tmp_path / "releases")
    assert github == Cache(tmp_path).catalogue_path("https://github.com/x/releases/download", "20261021")
    assert github != cache.catalogue_path("http://127.0.0.1:8000", "20261021")
    assert github != cache.catalogue_path("https://github.com/x/releases/download", "20261022")
    # A mirror URL never becomes a path component (no "/" or ":" surprises).
    assert len(github.relative_to(tmp_path).parts) == 4


def test_root_accepts_a_string(tmp_path: Path) -> None:
    assert Cache(str(tmp_path)).root == tmp_path


# --------------------------------------------------------------------------------------------------------------
# Publishing


def test_publishing_renames_into_place_when_the_block_succeeds(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entry = cache.asset_path(SHA, NAME)
    with cache.lock(entry), cache.publishing(entry) as temporary:
        assert temporary.parent == entry.parent
        assert temporary.name.endswith(".part")
        assert temporary != entry
        temporary.write_bytes(b"payload")
        assert not entry.exists()  # not visible before the block ends
    assert entry.read_bytes() == b"payload"
    assert part_files(cache.root) == []


def test_publishing_leaves_nothing_when_the_block_raises(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.asset_path(SHA, NAME)
    with pytest.raises(RuntimeError, match="boom"), cache.lock(entry), cache.publishing(entry) as temporary:
        temporary.write_bytes(b"half a download")
        raise RuntimeError("boom")
    assert not entry.exists()
    assert part_files(cache.root) == []
    assert [path.name for path in entry.parent.iterdir() if not path.name.endswith(".lock")] == []


def test_failed_publish_keeps_the_previous_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.catalogue_path("http://mirror", "20261021")
    with cache.publishing(entry) as temporary:
        temporary.write_text("old")
    with pytest.raises(KeyboardInterrupt), cache.publishing(entry) as temporary:
        temporary.write_text("new, incomplete")
        raise KeyboardInterrupt
    assert entry.read_text() == "old"
    assert part_files(cache.root) == []


def test_stale_part_files_are_never_an_entry_and_are_removed(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.asset_path(SHA, NAME)
    entry.parent.mkdir(parents=True)
    # What a build killed mid-download leaves behind (publishing's own naming scheme).
    stale = [entry.parent / f".{NAME}.0123456789ab.part", entry.parent / f".{NAME}.deadbeefcafe.part"]
    for path in stale:
        path.write_bytes(b"partial")
    other = entry.parent / f".{NAME}-other.tar.gz.0123456789ab.part"  # another entry's: not ours to delete
    other.write_bytes(b"someone else's")
    assert not entry.is_file()
    with cache.lock(entry), cache.publishing(entry) as temporary:
        assert not any(path.exists() for path in stale)
        temporary.write_bytes(b"complete")
    assert entry.read_bytes() == b"complete"
    assert other.exists()
    assert part_files(cache.root) == [other]


def test_entry_killed_process_leaves_only_a_part_file(tmp_path: Path) -> None:
    """A writer killed inside ``publishing`` (SIGKILL: no ``finally`` runs) leaves a ``.part`` file, no entry;
    the next writer removes it and publishes."""
    cache = Cache(tmp_path)
    entry = cache.asset_path(SHA, NAME)
    script = textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from hatch_pbs.release.cache import Cache
        cache = Cache(Path({str(tmp_path)!r}))
        entry = cache.asset_path({SHA!r}, {NAME!r})
        with cache.lock(entry), cache.publishing(entry) as temporary:
            temporary.write_bytes(b"partial")
            os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == -9, proc.stderr
    assert not entry.exists()
    assert len(part_files(cache.root)) == 1
    with cache.lock(entry), cache.publishing(entry) as temporary:  # the lock died with its holder
        temporary.write_bytes(b"complete")
    assert entry.read_bytes() == b"complete"
    assert part_files(cache.root) == []


# --------------------------------------------------------------------------------------------------------------
# Locking


def test_lock_creates_the_entry_directory(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "new")
    entry = cache.asset_path(SHA, NAME)
    with cache.lock(entry):
        assert entry.parent.is_dir()
        assert not entry.exists()


def test_lock_excludes_other_threads(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.asset_path(SHA, NAME)
    release = threading.Event()
    holding = threading.Event()
    entered = threading.Event()

    def holder() -> None:
        with cache.lock(entry):
            holding.set()
            release.wait(30)

    def waiter() -> None:
        with Cache(tmp_path).lock(entry):
            entered.set()

    first = threading.Thread(target=holder)
    first.start()
    assert holding.wait(30)
    second = threading.Thread(target=waiter)
    second.start()
    assert not entered.wait(0.5), "a second thread entered a held lock"
    release.set()
    assert entered.wait(30)
    first.join(30)
    second.join(30)


def test_lock_excludes_other_processes(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.asset_path(SHA, NAME)
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from hatch_pbs.release.cache import Cache
        cache = Cache(Path({str(tmp_path)!r}))
        with cache.lock(cache.asset_path({SHA!r}, {NAME!r})):
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "locked"
        entered = threading.Event()

        def waiter() -> None:
            with cache.lock(entry):
                entered.set()

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        assert not entered.wait(0.5), "the lock did not exclude another process"
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert entered.wait(30)
        thread.join(30)
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(30)


def test_concurrent_publishers_under_the_lock_never_interleave(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    entry = cache.catalogue_path("http://mirror", "20261021")
    inside = 0
    overlaps: list[int] = []
    guard = threading.Lock()

    def publish(number: int) -> None:
        nonlocal inside
        with Cache(tmp_path).lock(entry), cache.publishing(entry) as temporary:
            with guard:
                inside += 1
                overlaps.append(inside)
            temporary.write_text(f"writer {number}\n" * 1000)
            time.sleep(0.02)
            with guard:
                inside -= 1

    threads = [threading.Thread(target=publish, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert max(overlaps) == 1
    lines = set(entry.read_text().splitlines())
    assert len(lines) == 1  # one writer's complete content, never a mix
    assert part_files(cache.root) == []
    assert set(os.listdir(entry.parent)) - {entry.name + ".lock"} == {entry.name}


# --------------------------------------------------------------------------------------------------------------
# Directory entries and staging directories


def test_publishing_directory_is_all_or_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entry = cache.runtime_path("k" * 40)
    with pytest.raises(RuntimeError), cache.lock(entry), cache.publishing_directory(entry) as work:
        (work / "python").mkdir()
        (work / "python" / "half-written").write_text("x")
        raise RuntimeError("interrupted")
    assert sorted(path.name for path in entry.parent.iterdir()) == [entry.name + ".lock"]
    # A killed preparation's temporary directory is removed by the next one.
    stale = entry.parent / f".{entry.name}.deadbeef0000.part"
    (stale / "python").mkdir(parents=True)
    with cache.lock(entry), cache.publishing_directory(entry) as work:
        (work / "prepared.json").write_text("{}")
    assert sorted(path.name for path in entry.parent.iterdir()) == [entry.name, entry.name + ".lock"]
    assert (entry / "prepared.json").read_text() == "{}"


_HOLD_STAGING = textwrap.dedent("""
    import sys, time
    from hatch_pbs.release.cache import Cache
    with Cache(sys.argv[1]).staging() as directory:
        (directory / "work").write_text("in progress")
        print(directory, flush=True)
        time.sleep(120)
""")


def _staging_process(root: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen([sys.executable, "-c", _HOLD_STAGING, str(root)], stdout=subprocess.PIPE, text=True)
    return process, Path(process.stdout.readline().strip())


def test_staging_of_a_killed_build_is_removed_and_a_running_one_kept(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    killed, killed_directory = _staging_process(root)
    running, running_directory = _staging_process(root)
    try:
        killed.kill()  # SIGKILL: no finally block runs, the directory stays behind
        killed.wait()
        assert (killed_directory / "work").is_file()
        with Cache(root).staging() as mine:
            assert mine.is_dir() and mine.parent == root / "staging"
            assert not killed_directory.exists()
            assert (running_directory / "work").is_file()
        assert not mine.exists()
    finally:
        running.kill()
        running.wait()
