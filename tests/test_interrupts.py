"""Builds that share a cache, and builds that are interrupted (issue 4, "Faults and bad input").

Real processes: ``hatch-pbs fetch`` CLI processes against a loopback server that sends the asset slowly
(``trickle``), killed with SIGKILL or interrupted with SIGINT mid-download; and a process packing a large tree
killed or interrupted mid-pack. While they run, the final cache path (or archive name) is watched: it must never
exist half-written. Afterwards the next run succeeds."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pbs_release import FakeRelease, ReleaseServer

FLAVOR = "install_only"

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")


def hatch_pbs_command() -> list[str]:
    script = Path(sys.executable).parent / "hatch-pbs"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hatch_pbs.cli"]


def default_sigint() -> None:
    """In the child: SIGINT raises KeyboardInterrupt even when the test runner was started with SIGINT ignored
    (a background job of a non-interactive shell): Python installs its handler only over SIG_DFL."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_fetch(release: FakeRelease, mirror: str, cache: Path) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HATCH_PBS_")}
    return subprocess.Popen(
        [*hatch_pbs_command(), "fetch", "--release", release.tag, "--python-version", release.python_version,
         "--target", release.triple, "--flavor", FLAVOR, "--mirror", mirror, "--cache-dir", str(cache)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def watch(condition: Callable[[], bool], check: Callable[[], None], *, timeout: float = 60) -> None:
    """Call ``check`` every few milliseconds until ``condition`` holds (fails after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        check()
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)
    check()


def part_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.part")) if directory.is_dir() else []


def entry_of(release: FakeRelease, cache: Path) -> Path:
    return cache / "assets" / release.sha256(FLAVOR) / release.asset_name(FLAVOR)


@pytest.fixture
def slow_server(fake_release: FakeRelease) -> Iterator[ReleaseServer]:
    """The release, its asset sent at about 12 MB/s (2 s for the fake asset) for the next GET."""
    with ReleaseServer(fake_release.root) as server:
        server.trickle_chunk, server.trickle_delay = 256 << 10, 0.02
        server.add_fault(fake_release.asset_name(FLAVOR), "trickle")
        yield server


# --------------------------------------------------------------------------------------------------------------
# Two builds sharing one cache


def test_two_cli_processes_download_once(slow_server: ReleaseServer, fake_release: FakeRelease,
                                         tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    entry = entry_of(fake_release, cache)
    size = fake_release.assets[FLAVOR].stat().st_size
    processes = [start_fetch(fake_release, slow_server.base_url, cache) for _ in range(2)]

    def never_half_written() -> None:
        if entry.exists():
            assert entry.stat().st_size == size, "the cache entry was visible before it was complete"

    watch(lambda: all(process.poll() is not None for process in processes), never_half_written, timeout=240)
    outputs = [process.communicate() for process in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    assert {out.strip() for out, _err in outputs} == {str(entry)}
    assert slow_server.request_count(fake_release.asset_name(FLAVOR)) == 1
    assert sha256_file(entry) == fake_release.sha256(FLAVOR)
    assert part_files(entry.parent) == []


# --------------------------------------------------------------------------------------------------------------
# Interrupted downloads


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_interrupted_download_leaves_no_entry_and_the_next_run_succeeds(slow_server: ReleaseServer,
                                                                        fake_release: FakeRelease, tmp_path: Path,
                                                                        sig: signal.Signals) -> None:
    cache = tmp_path / "cache"
    entry = entry_of(fake_release, cache)
    process = start_fetch(fake_release, slow_server.base_url, cache)

    def not_published() -> None:
        assert not entry.exists(), "the entry appeared before the download was complete"

    # Interrupt once a part of the body is on disk (in the .part file only).
    watch(lambda: any(part.stat().st_size > (1 << 20) for part in part_files(entry.parent)), not_published)
    process.send_signal(sig)
    _out, err = process.communicate(timeout=60)
    if sig == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
        assert len(part_files(entry.parent)) == 1  # what a killed process leaves: a .part file, nothing else
    else:
        assert process.returncode == 130, err
        assert "hatch-pbs: interrupted" in err
        assert part_files(entry.parent) == []  # an interrupted process removes its .part file
    assert not entry.exists()

    # The next build downloads again (the first try was cut short), publishes, and clears the leftovers.
    again = start_fetch(fake_release, slow_server.base_url, cache)
    out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err
    assert Path(out.strip()) == entry
    assert sha256_file(entry) == fake_release.sha256(FLAVOR)
    assert part_files(entry.parent) == []
    assert slow_server.request_count(fake_release.asset_name(FLAVOR)) == 2


# --------------------------------------------------------------------------------------------------------------
# Interrupted packing


@pytest.fixture(scope="module")
def large_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """96 MiB of incompressible files: packing takes seconds, long enough to be interrupted."""
    tree = tmp_path_factory.mktemp("large") / "app-1.0-x86_64-unknown-linux-gnu"
    for index in range(24):
        directory = tree / f"d{index % 4}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index}.bin").write_bytes(os.urandom(4 << 20))
    return tree


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_interrupted_pack_leaves_no_archive(large_tree: Path, tmp_path: Path, sig: signal.Signals,
                                            suffix: str) -> None:
    output = tmp_path / "dist"
    output.mkdir()
    destination = output / f"{large_tree.name}{suffix}"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from hatch_pbs.pack import pack_tree
        pack_tree(Path({str(large_tree)!r}), Path({str(destination)!r}))
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)

    def not_published() -> None:
        assert not destination.exists(), "the archive appeared before it was complete"

    watch(lambda: any(part.stat().st_size > (4 << 20) for part in part_files(output)) or process.poll() is not None,
          not_published)
    assert process.poll() is None, "packing ended before it could be interrupted"
    process.send_signal(sig)
    _out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert not destination.exists()
    names = [path.name for path in output.iterdir()]
    if sig == signal.SIGKILL:
        assert len(names) == 1 and names[0].startswith(f".{destination.name}.") and names[0].endswith(".part")
    else:
        assert "KeyboardInterrupt" in err
        assert names == []  # the temporary file was removed on the way out

    # The next pack writes the archive under its final name and sweeps the killed writer's temporary (its lock is
    # free), so only the archive is left.
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    assert destination.is_file()
    assert [path.name for path in output.iterdir()] == [destination.name]
