"""The one transactional file layer (:mod:`hatch_pbs.atomic`): publication of whole files and directories only, and
sweeping of temporaries left by killed writers but never of a live writer's.

Writers are real processes: one is killed with SIGKILL mid-write, another holds its temporary open while a second
process publishes and sweeps beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hatch_pbs.atomic import (
    copy_file,
    publishing_directory,
    publishing_file,
    sweep_temporaries,
    write_file,
)

posix_only = pytest.mark.skipif(os.name == "nt", reason="flock and POSIX signals")


def temporaries(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob(".*.part"))


def test_a_published_file_is_whole_with_its_mode_and_no_temporary_is_left(tmp_path: Path) -> None:
    destination = tmp_path / "out" / "SHA256SUMS"
    with publishing_file(destination, mode=0o640) as temporary:
        assert temporary.parent == destination.parent and temporary.name.startswith(".SHA256SUMS.")
        temporary.write_bytes(b"first")
        assert not destination.exists()  # nothing visible under the final name before the block ends
    assert destination.read_bytes() == b"first"
    assert destination.stat().st_mode & 0o777 == 0o640
    write_file(destination, b"second")
    assert destination.read_bytes() == b"second" and destination.stat().st_mode & 0o777 == 0o644
    assert temporaries(destination.parent) == []


def test_a_block_that_raises_keeps_the_previous_file(tmp_path: Path) -> None:
    destination = tmp_path / "lock.toml"
    write_file(destination, b"complete")
    with pytest.raises(KeyboardInterrupt), publishing_file(destination) as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt
    assert destination.read_bytes() == b"complete"
    assert temporaries(tmp_path) == []


def test_copy_file_copies_bytes(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3 << 20))
    copy_file(source, tmp_path / "mirror" / "asset.tar.gz")
    assert (tmp_path / "mirror" / "asset.tar.gz").read_bytes() == source.read_bytes()


def test_a_directory_replaces_the_previous_one_only_when_complete(tmp_path: Path) -> None:
    destination = tmp_path / "app-1.0-x86_64-unknown-linux-gnu"
    with publishing_directory(destination) as temporary:
        (temporary / "bin").mkdir()
        (temporary / "bin" / "app").write_text("one")
    with pytest.raises(RuntimeError), publishing_directory(destination, replace=True) as temporary:
        (temporary / "bin").mkdir()
        raise RuntimeError("a failed copy")
    assert (destination / "bin" / "app").read_text() == "one"
    with publishing_directory(destination, replace=True) as temporary:
        (temporary / "two").write_text("two")
    assert sorted(path.name for path in destination.iterdir()) == ["two"]
    assert [path.name for path in tmp_path.iterdir()] == [destination.name]  # no temporary, no previous copy


def test_without_replace_an_existing_directory_is_not_replaced(tmp_path: Path) -> None:
    destination = tmp_path / "entry"
    (destination / "kept").mkdir(parents=True)
    with pytest.raises(OSError), publishing_directory(destination) as temporary:
        (temporary / "new").write_text("new")
    assert [path.name for path in destination.iterdir()] == ["kept"]
    assert temporaries(tmp_path) == []


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hatch_pbs.atomic import publishing_file
    destination = Path(sys.argv[1])
    with publishing_file(destination) as temporary, temporary.open("wb") as stream:
        stream.write(b"from the writer process")
        stream.flush()
        print(temporary, flush=True)
        sys.stdin.readline()  # hold the temporary until told to go on
""")


def start_writer(destination: Path) -> tuple[subprocess.Popen[str], Path]:
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(destination)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, Path(process.stdout.readline().strip())


@posix_only
def test_a_killed_writers_temporary_is_swept_by_the_next_writer(tmp_path: Path) -> None:
    destination = tmp_path / "app.tar.gz"
    process, temporary = start_writer(destination)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert temporaries(tmp_path) == [temporary.name] and not destination.exists()
    write_file(destination, b"whole")
    assert [path.name for path in tmp_path.iterdir()] == ["app.tar.gz"]
    assert destination.read_bytes() == b"whole"


@posix_only
def test_a_live_writers_temporary_is_never_swept(tmp_path: Path) -> None:
    destination = tmp_path / "SHA256SUMS"
    process, temporary = start_writer(destination)
    try:
        assert sweep_temporaries(tmp_path) == []
        write_file(destination, b"from the test")  # a concurrent writer of the same name sweeps too
        assert temporary.is_file()
    finally:
        assert process.stdin is not None
        process.stdin.write("\n")
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    assert destination.read_bytes() == b"from the writer process"  # the last rename wins, whole
    assert temporaries(tmp_path) == []


@posix_only
def test_sweep_removes_only_abandoned_temporaries(tmp_path: Path) -> None:
    (tmp_path / ".a.tar.gz.0123456789ab.part").write_bytes(b"left by a killed build")
    (tmp_path / ".runtime.0123456789ab.part").mkdir()
    (tmp_path / ".runtime.0123456789ab.part" / "python").write_text("x")
    (tmp_path / "a.tar.gz").write_bytes(b"published")
    process, temporary = start_writer(tmp_path / "b.tar.gz")
    try:
        removed = sweep_temporaries(tmp_path)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)
    assert sorted(path.name for path in removed) == [".a.tar.gz.0123456789ab.part", ".runtime.0123456789ab.part"]
    assert temporary not in removed
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.tar.gz", "b.tar.gz"]
