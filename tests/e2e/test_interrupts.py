"""Builds that share a cache, and builds that are interrupted (issue 4, "Faults and bad input"; issue 10, point 7).

Real processes: ``hatch-pbs fetch`` CLI processes against a loopback server that sends the asset slowly
(``trickle``), killed with SIGKILL or interrupted with SIGINT mid-download; and a process packing a large tree
killed or interrupted mid-pack. While they run, the final cache path (or archive name) is watched: it must never
exist half-written. Afterwards the next run succeeds.

Then Ctrl-C of a real two-target build (the host triple and a foreign one, from a zig-built release): ``hatch build
-t app`` (and ``hatchling build``) started in a process group of its own, SIGINT sent to the whole group as a
terminal does, once the build is downloading runtimes, running uv, or packing. The build must exit with status 130
and one ``hatch-pbs:`` line, without a traceback, its processes gone soon after the signal (the time is measured
and printed), ``dist/app`` exactly as the previous complete build left it (same files, same inodes) and the cache
without partial entries; the next build succeeds. The same for Ctrl-C while PyApp is being compiled (a stand-in
cargo that sleeps: crates.io is out of reach here, see tests/test_pyapp.py)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from e2e_support import WHEEL_PLATFORMS, copy_example_project, run_hatchling
from foreign_release import CrossRelease, ZigUnavailableError, build_cross_release
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs import interrupts
from hatch_pbs.bytecode.compiler import (
    BYTECODE_WORKER_ENVIRONMENT,
    bytecode_worker_command,
)
from hatch_pbs.errors import InstallError
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader

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
        from hatch_pbs.artifact.pack import pack_tree
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


# --------------------------------------------------------------------------------------------------------------
# Ctrl-C of a real two-target build

#: How long after the SIGINT the build may take to be gone. Generous (the machine is shared and its disk slow); the
#: measured time is printed (pytest -s) and recorded as the test's properties ``exit_seconds``/``gone_seconds``.
EXIT_BOUND = 10.0
STEM = "pbs-demo-1.0.0"


def _foreign_triple(host: str) -> str:
    return next(triple for triple in ("aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu") if triple != host)


@pytest.fixture(scope="module")
def two_target_release(fake_release: FakeRelease, tmp_path_factory: pytest.TempPathFactory) -> CrossRelease:
    """The host's release plus zig-built stand-in runtimes of one foreign Linux triple."""
    try:
        return build_cross_release(tmp_path_factory.mktemp("two-targets"), fake_release,
                                   [fake_release.triple, _foreign_triple(fake_release.triple)])
    except ZigUnavailableError as exc:
        pytest.skip(f"cannot build foreign stand-in runtimes: {exc}")


@pytest.fixture(scope="module")
def two_target_wheelhouse(fake_release: FakeRelease, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rich and orjson wheels for both triples' platforms and the running CPython version (PyPI download)."""
    destination = tmp_path_factory.mktemp("two-target-wheels")
    minor = f"{sys.version_info.major}{sys.version_info.minor}"
    for triple in (fake_release.triple, _foreign_triple(fake_release.triple)):
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
                   "--only-binary=:all:", "--dest", str(destination), "--implementation", "cp", "--python-version",
                   minor, "--abi", f"cp{minor}", "--platform", WHEEL_PLATFORMS[triple], "rich", "orjson"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.fail(f"pip download for {triple} failed:\n{result.stdout}{result.stderr}")
    return destination


class Builds:
    """The two-target example project built once (``complete``, with its ``dist/app``), and how to build it."""

    def __init__(self, release: CrossRelease, wheelhouse: Path, base: Path) -> None:
        self.release, self.wheelhouse, self.base = release, wheelhouse, base
        self.foreign = _foreign_triple(release.host.triple)
        minor = ".".join(release.python_version.split(".")[:2])
        table = f'python-version = "{minor}"\ntargets = ["{release.host.triple}", "{self.foreign}"]'
        self.complete = copy_example_project(base / "complete", hook_table=table)
        self.cache = base / "cache"

    def env(self, mirror: str, cache: Path) -> dict[str, str]:
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("HATCH_PBS_", "UV_"))}
        environment.update({"HATCH_PBS_MIRROR": mirror, "HATCH_PBS_CACHE_DIR": str(cache), "UV_OFFLINE": "1",
                            "UV_FIND_LINKS": str(self.wheelhouse), "UV_CACHE_DIR": str(self.base / "uv-cache")})
        return environment

    def project_copy(self, destination: Path) -> Path:
        """A copy of the completely built project, ``dist/app`` included."""
        shutil.copytree(self.complete, destination, symlinks=True)
        return destination


@pytest.fixture(scope="module")
def builds(two_target_release: CrossRelease, two_target_wheelhouse: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Builds:
    prepared = Builds(two_target_release, two_target_wheelhouse, tmp_path_factory.mktemp("interrupted-builds"))
    with ReleaseServer(two_target_release.root) as server:
        result = run_hatchling(prepared.complete, "app", {key: value for key, value in prepared.env(
            server.base_url, prepared.cache).items() if key.startswith(("HATCH_PBS_", "UV_"))}, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((prepared.complete / "dist" / "app").glob(f"{STEM}-*.tar.gz"))) == 2
    return prepared


def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process, from ``ps`` (POSIX)."""
    listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "stat=", "-o", "args="],
                             capture_output=True, text=True, check=True).stdout
    table = {}
    for line in listing.splitlines():
        fields = line.split(None, 3)
        if len(fields) >= 3 and fields[0].isdigit() and fields[1].isdigit():
            table[int(fields[0])] = (int(fields[1]), fields[2], fields[3] if len(fields) > 3 else "")
    return table


def descendants(root: int) -> dict[int, str]:
    """The live (not zombie) processes below ``root``, pid -> command line, whatever their process group."""
    table = process_table()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, state, arguments) in table.items():
            if ppid == parent and pid not in found and not state.startswith("Z"):
                found[pid] = arguments
                frontier.append(pid)
    return found


def still_alive(pids: Iterable[int]) -> dict[int, str]:
    table = process_table()
    return {pid: table[pid][2] for pid in pids if pid in table and not table[pid][1].startswith("Z")}


def output_snapshot(directory: Path) -> dict[str, tuple[str, int, int]]:
    """name -> (sha256, inode, mtime in ns) of every entry of an output directory: a file published anew has a
    new inode even when its bytes are the same (a reproducible build)."""
    snapshot = {}
    for path in sorted(directory.iterdir()):
        status = path.lstat()
        digest = sha256_file(path) if path.is_file() else "directory"
        snapshot[path.name] = (digest, status.st_ino, status.st_mtime_ns)
    return snapshot


def assert_no_partial_cache_entry(cache: Path) -> None:
    """No ``.part`` file or directory, no build's staging directory, every asset entry hashes to its sha256 and
    every prepared runtime entry is complete (has its record, written last)."""
    assert sorted(cache.rglob("*.part")) == []
    staging = cache / "staging"
    assert not staging.exists() or sorted(staging.iterdir()) == []
    for asset in (cache / "assets").glob("*/*"):
        if not asset.name.endswith(".lock"):
            assert sha256_file(asset) == asset.parent.name, f"{asset} is not the asset its entry names"
    for runtime in (cache / "runtimes").glob("*"):
        if not runtime.name.endswith(".lock"):
            assert (runtime / "prepared.json").is_file(), f"{runtime} is an incomplete prepared runtime"


def start_build(command: list[str], project: Path, env: dict[str, str], logs: Path) -> subprocess.Popen[str]:
    """Start ``command`` in ``project`` in a new session (its own process group, as a terminal's foreground job
    is), with SIGINT at its default; its output goes to ``logs/out`` and ``logs/err``."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "out").open("w") as out, (logs / "err").open("w") as err:
        return subprocess.Popen(command, cwd=project, env=env, stdout=out, stderr=err, text=True,
                                start_new_session=True, preexec_fn=default_sigint)


def interrupt_group(process: subprocess.Popen[str], seen: dict[int, str]) -> tuple[float, float, dict[int, str]]:
    """SIGINT to ``process``'s process group (Ctrl-C in a terminal); returns the seconds until it exited, the
    seconds until it and every process seen below it (``seen`` plus those alive at the signal) were gone, and the
    ones that outlived :data:`EXIT_BOUND`."""
    seen = {**seen, **descendants(process.pid)}
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    exited = time.monotonic() - sent
    while still_alive(seen) and time.monotonic() - sent < EXIT_BOUND:
        time.sleep(0.02)
    return exited, time.monotonic() - sent, still_alive(seen)


def hatch_command(project: Path, home: Path) -> tuple[list[str], dict[str, str]]:
    """``hatch build -t app --hooks-only`` for ``project`` with Hatch's build environment being this test's own
    virtual environment (``[tool.hatch.envs.hatch-build] path``: it already holds hatchling and hatch-pbs, so Hatch
    installs nothing), and Hatch's configuration, data and cache in ``home``."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("hatch needs a virtual environment holding hatch-pbs to build in; the tests run outside one")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write(f'\n[tool.hatch.envs.hatch-build]\npath = "{Path(sys.prefix).as_posix()}"\n')
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").touch()
    script = Path(sys.executable).parent / "hatch"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "hatch"]
    return [*command, "build", "-t", "app", "--hooks-only"], {
        "HATCH_CONFIG": str(home / "config.toml"), "HATCH_DATA_DIR": str(home / "data"),
        "HATCH_CACHE_DIR": str(home / "cache")}


@functools.cache
def shell_status_after_ctrl_c() -> int:
    """The exit status of ``/bin/sh -c COMMAND`` (how Hatch runs hatchling: ``subprocess`` with ``shell=True``)
    when Ctrl-C reaches its process group and COMMAND handles it by exiting with status 130. bash passes the 130 on;
    dash (``/bin/sh`` of Debian and Ubuntu) dies of the same SIGINT once COMMAND has exited, so ``subprocess``
    reports -2, which Hatch exits with (``sys.exit(-2)``: status 254)."""
    script = ("import signal, sys, time; signal.signal(signal.SIGINT, lambda *_: sys.exit(130)); print(flush=True); "
              "time.sleep(30)")
    shell = subprocess.Popen(["/bin/sh", "-c", f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"],
                             stdout=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=default_sigint)
    assert shell.stdout is not None
    shell.stdout.readline()  # the handler is installed
    os.killpg(shell.pid, signal.SIGINT)
    status = shell.wait(timeout=30)
    shell.stdout.close()
    assert status in (130, -signal.SIGINT), status
    return status


def build_phase_reached(phase: str, project: Path, cache: Path, process: subprocess.Popen[str]) -> bool:
    """Whether the build is in ``phase``: ``download`` (more than 1 MiB of a runtime in a cache ``.part`` file),
    ``install`` (a uv process runs below the build), ``pack`` (an archive is being written in the output
    directory's staging directory)."""
    if phase == "download":
        return any(part.stat().st_size > (1 << 20) for part in (cache / "assets").glob("*/.*.part"))
    if phase == "install":
        return any(Path(arguments.split()[0]).name == "uv" for arguments in descendants(process.pid).values())
    staged = project / "dist" / "app" / ".hatch-pbs-staging"
    return any(part.stat().st_size > 0 for part in staged.glob("*/.*.part"))


@pytest.mark.e2e
@pytest.mark.parametrize(("frontend", "phase"), [("hatch", "download"), ("hatch", "install"), ("hatch", "pack"),
                                                 ("hatchling", "install")])
def test_ctrl_c_stops_the_build_publishes_nothing_and_exits_130(
        builds: Builds, tmp_path: Path, frontend: str, phase: str, record_property: Callable[[str, object], None]
) -> None:
    project = builds.project_copy(tmp_path / "project")
    before = output_snapshot(project / "dist" / "app")
    cache = tmp_path / "cache" if phase == "download" else builds.cache  # a download needs an empty cache
    with ReleaseServer(builds.release.root) as server:
        env = builds.env(server.base_url, cache)
        if phase == "download":
            server.trickle_chunk, server.trickle_delay = 128 << 10, 0.02
            for asset in builds.release.release_dir.glob("*.tar.*"):
                server.add_fault(asset.name, "trickle")
        if frontend == "hatch":
            command, hatch_env = hatch_command(project, tmp_path / "hatch-home")
            env.update(hatch_env)
        else:
            command = [sys.executable, "-m", "hatchling", "build", "-t", "app", "--hooks-only"]
        process = start_build(command, project, env, tmp_path / "logs")
        seen: dict[int, str] = {}

        def unchanged() -> None:
            seen.update(descendants(process.pid))
            assert process.poll() is None, (tmp_path / "logs" / "err").read_text()

        watch(lambda: build_phase_reached(phase, project, cache, process), unchanged, timeout=240)
        exited, gone, survivors = interrupt_group(process, seen)
        err = (tmp_path / "logs" / "err").read_text()
        print(f"\n{frontend} {phase}: SIGINT -> exit {exited:.2f} s, -> every process gone {gone:.2f} s")
        record_property("exit_seconds", round(exited, 2))
        record_property("gone_seconds", round(gone, 2))

        # hatchling exits with 130; Hatch with what /bin/sh reports (see shell_status_after_ctrl_c): 130, or 254.
        expected = 130 if frontend == "hatchling" else shell_status_after_ctrl_c() % 256
        assert process.returncode == expected, err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        own_lines = [line for line in err.splitlines() if line.startswith("hatch-pbs:")]
        assert own_lines == [f"hatch-pbs: interrupted; {project / 'dist' / 'app'} was left as it was"], err
        assert exited < EXIT_BOUND and not survivors, (exited, survivors)
        assert output_snapshot(project / "dist" / "app") == before
        assert_no_partial_cache_entry(cache)

        # The next build succeeds and publishes the complete set (anew: new inodes).
        again = run_hatchling(project, "app", {key: value for key, value in env.items()
                                               if key.startswith(("HATCH_PBS_", "UV_"))}, "--hooks-only")
        assert again.returncode == 0, again.stdout + again.stderr
    after = output_snapshot(project / "dist" / "app")
    assert sorted(after) == sorted(before)
    assert all(after[name][1] != before[name][1] for name in before)
    assert_no_partial_cache_entry(cache)


# --------------------------------------------------------------------------------------------------------------
# What an interrupt cuts short (hatch_pbs.interrupts), one wait at a time: each would otherwise last for seconds

#: Seconds an interrupted wait may take to end here (each waits 30 s or more when not cut short).
PROMPT = 5.0


@pytest.fixture
def sigint_default() -> Iterator[None]:
    """Python's own SIGINT handler for the test (the runner may have been started with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupted_in_thread(work: Callable[[], object], started: Callable[[], bool]
                          ) -> tuple[BaseException | None, float]:
    """Run ``work`` in a thread inside an interrupt scope; once ``started()`` holds, request an interrupt. Returns
    what ``work`` raised and the seconds from the request until the thread ended (at most 60)."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - what the work raised is the result
            raised.append(error)

    worker = threading.Thread(target=target)
    with pytest.raises(interrupts.BuildInterrupted), interrupts.scope():
        worker.start()
        watch(started, lambda: None)
        requested = time.monotonic()
        interrupts.interrupt()
        worker.join(timeout=60)
        elapsed = time.monotonic() - requested
    assert not worker.is_alive()
    return (raised[0] if raised else None), elapsed


@pytest.mark.parametrize("ignores_sigterm", [False, True], ids=["SIGTERM", "SIGKILL"])
def test_an_interrupt_ends_a_child_process(tmp_path: Path, ignores_sigterm: bool) -> None:
    """SIGTERM ends it; one that ignores SIGTERM is killed a second later."""
    ready = tmp_path / "ready"
    script = textwrap.dedent(f"""
        import pathlib, signal, time
        if {ignores_sigterm!r}:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pathlib.Path({str(ready)!r}).touch()
        time.sleep(120)
    """)
    children: dict[int, str] = {}

    def started() -> bool:
        children.update(descendants(os.getpid()))
        return ready.exists()

    error, elapsed = interrupted_in_thread(lambda: interrupts.run([sys.executable, "-c", script]), started)
    assert isinstance(error, interrupts.BuildInterrupted)
    assert elapsed < interrupts.TERMINATE_GRACE + PROMPT if ignores_sigterm else elapsed < PROMPT
    assert not still_alive(pid for pid, arguments in children.items() if str(ready) in arguments)


@pytest.mark.parametrize("fault", ["stall", "stall-headers"])
def test_an_interrupt_ends_a_download_from_a_silent_server(release_server: ReleaseServer,
                                                           fake_release: FakeRelease, tmp_path: Path,
                                                           fault: str) -> None:
    name = fake_release.asset_name(FLAVOR)
    release_server.stall_seconds = 120
    release_server.add_fault(name, fault)
    destination = tmp_path / "asset"
    # stall: half the body arrives, then nothing; stall-headers: nothing after the request. The last bytes received
    # may still sit in the file's write buffer (the download is blocked in a read, not flushing): 64 KiB of slack.
    sent = max(fake_release.assets[FLAVOR].stat().st_size // 2 - 65536, 0) if fault == "stall" else 0

    def silent() -> bool:
        if release_server.request_count(name) == 0 or destination.exists() and destination.stat().st_size < sent:
            return False
        time.sleep(0.3)  # the client is blocked in a read now
        return True

    with Downloader(timeout=60, attempts=1, progress=False) as downloader:
        error, elapsed = interrupted_in_thread(
            lambda: downloader.download(release_server.url(f"/{fake_release.tag}/{name}"), destination,
                                        sha256=fake_release.sha256(FLAVOR)), silent)
    assert isinstance(error, interrupts.BuildInterrupted), error
    assert elapsed < PROMPT


def test_an_interrupt_ends_the_wait_before_a_retry(release_server: ReleaseServer, fake_release: FakeRelease,
                                                   tmp_path: Path) -> None:
    name = fake_release.asset_name(FLAVOR)
    release_server.add_fault(name, "503", retry_after="50")
    with Downloader(timeout=60, attempts=2, progress=False) as downloader:
        error, elapsed = interrupted_in_thread(
            lambda: downloader.download(release_server.url(f"/{fake_release.tag}/{name}"), tmp_path / "asset",
                                        sha256=fake_release.sha256(FLAVOR)),
            lambda: release_server.request_count(name) == 1)
    assert isinstance(error, interrupts.BuildInterrupted), error
    assert elapsed < PROMPT
    assert release_server.request_count(name) == 1  # no second try


def test_an_interrupt_ends_the_wait_for_a_cache_entry_another_build_holds(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    entry = cache.asset_path("0" * 64, "asset.tar.gz")
    entry.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from filelock import FileLock
        with FileLock({str(entry) + ".lock"!r}):
            print("held", flush=True)
            time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        waiting = threading.Event()

        def wait_for_the_entry() -> None:
            waiting.set()
            with cache.lock(entry):
                pass

        error, elapsed = interrupted_in_thread(wait_for_the_entry, waiting.is_set)
    finally:
        holder.kill()
        holder.communicate()
    assert isinstance(error, interrupts.BuildInterrupted), error
    assert elapsed < PROMPT


def test_sigint_in_a_scope_requests_an_interrupt_and_a_second_one_stops_at_once(sigint_default: None) -> None:
    with pytest.raises(interrupts.BuildInterrupted), interrupts.scope():  # raised at the end: it was requested
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # the handler runs here, and raises nothing
        assert interrupts.requested()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not interrupts.requested()
    interrupts.check()


def test_a_failure_after_an_interrupt_is_reported_as_the_interrupt(sigint_default: None) -> None:
    with pytest.raises(interrupts.BuildInterrupted), interrupts.scope():
        interrupts.interrupt()
        raise InstallError("uv failed: it got the same Ctrl-C")
    with pytest.raises(InstallError), interrupts.scope():  # without an interrupt, a failure is itself
        raise InstallError("uv failed")


def test_a_process_started_with_sigint_ignored_keeps_ignoring_it() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts.scope():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_of_a_fetch_from_a_silent_server(release_server: ReleaseServer, fake_release: FakeRelease,
                                                tmp_path: Path) -> None:
    """The CLI: the mirror stops sending half-way; SIGINT ends ``hatch-pbs fetch`` at once (not after the 30 s
    ``timeout``), with one line, status 130 and no ``.part`` file."""
    cache = tmp_path / "cache"
    release_server.stall_seconds = 120
    release_server.add_fault(fake_release.asset_name(FLAVOR), "stall")
    process = start_fetch(fake_release, release_server.base_url, cache)
    watch(lambda: any(part.stat().st_size > 0 for part in part_files(entry_of(fake_release, cache).parent)),
          lambda: None)
    time.sleep(0.5)  # the server is silent now, the client blocked in a read
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    print(f"\nhatch-pbs fetch, silent server: SIGINT -> exit {elapsed:.2f} s")
    assert process.returncode == 130, err
    assert err == "hatch-pbs: interrupted\n"
    assert elapsed < PROMPT
    assert part_files(entry_of(fake_release, cache).parent) == []


@pytest.mark.parametrize("to_group", [False, True], ids=["SIGTERM to the worker", "SIGINT to its group"])
def test_the_bytecode_worker_stops_cleanly(tmp_path: Path, to_group: bool) -> None:
    """What an interrupted build sends the bytecode worker (SIGTERM), and what a terminal's Ctrl-C sends its process
    group (SIGINT): the worker ends its compiling processes and exits with 128 + the signal number, through its
    clean-up."""
    tree = tmp_path / "app"
    for index in range(400):
        package = tree / f"package{index % 20}"
        package.mkdir(parents=True, exist_ok=True)
        (package / f"module{index}.py").write_text("".join(f"def f{n}(x):\n    return x * {n}\n"
                                                          for n in range(400)), encoding="utf-8")
    request = {"root": str(tree), "recorded_as": "app", "sourceless": False, "cache": str(tmp_path / "bytecode")}
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    with (tmp_path / "err").open("w") as err:
        worker = subprocess.Popen(bytecode_worker_command(Path(sys.executable)), stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=err, text=True, start_new_session=True,
                                  env={**environment, **BYTECODE_WORKER_ENVIRONMENT})
    assert worker.stdin is not None
    worker.stdin.write(json.dumps(request))
    worker.stdin.close()
    watch(lambda: any(tree.glob("*/__pycache__/*.pyc")) or worker.poll() is not None, lambda: None)
    assert worker.poll() is None, "compiling ended before it could be stopped"
    compilers = descendants(worker.pid)
    assert compilers, "the worker compiles in one process: nothing to stop"
    if to_group:
        os.killpg(worker.pid, signal.SIGINT)
    else:
        worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 128 + (signal.SIGINT if to_group else signal.SIGTERM), \
        (tmp_path / "err").read_text()
    watch(lambda: not still_alive(compilers), lambda: None, timeout=PROMPT)
    assert sorted(tmp_path.rglob("*.part")) == []


# --------------------------------------------------------------------------------------------------------------
# Ctrl-C while PyApp is being compiled (after the hook handed its artifact over)

SLEEPING_CARGO = """#!/bin/sh
# Stand-in for cargo (a test double; crates.io is out of reach here): says it started, then compiles "forever".
touch "$STAND_IN_CARGO_STARTED"
exec sleep 120
"""


@pytest.mark.e2e
def test_ctrl_c_while_pyapp_is_compiled(fake_release: FakeRelease, wheelhouse: Path, tmp_path: Path) -> None:
    minor = ".".join(fake_release.python_version.split(".")[:2])
    project = copy_example_project(tmp_path / "project", hook_table=f'python-version = "{minor}"\npyapp = true')
    bin_dir = tmp_path / "stand-in-bin"
    bin_dir.mkdir()
    (bin_dir / "cargo").write_text(SLEEPING_CARGO, encoding="utf-8")
    (bin_dir / "cargo").chmod(0o755)
    started = tmp_path / "cargo-started"
    path = os.pathsep.join([str(bin_dir), *(entry for entry in os.environ.get("PATH", "").split(os.pathsep)
                                            if entry and not (Path(entry) / "cargo").exists())])
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HATCH_PBS_", "UV_", "CARGO"))}
    env.update({"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache"),
                "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
                "PATH": path, "STAND_IN_CARGO_STARTED": str(started)})
    process = start_build([sys.executable, "-m", "hatchling", "build", "-t", "app"], project, env, tmp_path / "logs")
    watch(lambda: started.exists() or process.poll() is not None, lambda: None, timeout=240)
    assert process.poll() is None, (tmp_path / "logs" / "err").read_text()
    exited, gone, survivors = interrupt_group(process, {})
    err = (tmp_path / "logs" / "err").read_text()
    print(f"\nhatchling build -t app, during cargo: SIGINT -> exit {exited:.2f} s, -> every process gone {gone:.2f} s")
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    output = project / "dist" / "app"
    assert [line for line in err.splitlines() if "interrupted" in line] == [
        f"hatch-pbs: interrupted while PyApp was being compiled; the archives in {output} are complete"], err
    assert exited < EXIT_BOUND and not survivors, (exited, survivors)
    assert sorted(path.name for path in output.iterdir()) == sorted(
        [f"{STEM}-{fake_release.triple}.tar.gz", f"{STEM}-{fake_release.triple}.tar.gz.cdx.json", "SHA256SUMS"])


SLOW_WHEEL_HOOK = '''\
import os, pathlib, time
from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class SlowHook(BuildHookInterface):
    """A project's own build hook for its wheel that takes long (pure Python: no check point of hatch-pbs)."""

    def initialize(self, version, build_data):
        pathlib.Path(os.environ["SLOW_HOOK_STARTED"]).touch()
        time.sleep(120)
'''


@pytest.mark.e2e
def test_ctrl_c_while_the_projects_wheel_is_built(fake_release: FakeRelease, tmp_path: Path) -> None:
    """The hook builds the project's wheel with hatchling's wheel builder, which runs the project's own hooks:
    Ctrl-C interrupts them as it would without hatch-pbs, and the build exits with 130 and one line."""
    minor = ".".join(fake_release.python_version.split(".")[:2])
    project = copy_example_project(tmp_path / "project", hook_table=f'python-version = "{minor}"')
    (project / "hatch_build.py").write_text(SLOW_WHEEL_HOOK, encoding="utf-8")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write("\n[tool.hatch.build.targets.wheel.hooks.custom]\n")
    started = tmp_path / "hook-started"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HATCH_PBS_", "UV_"))}
    env.update({"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache"),
                "SLOW_HOOK_STARTED": str(started)})
    process = start_build([sys.executable, "-m", "hatchling", "build", "-t", "app", "--hooks-only"], project, env,
                          tmp_path / "logs")
    watch(lambda: started.exists() or process.poll() is not None, lambda: None, timeout=120)
    assert process.poll() is None, (tmp_path / "logs" / "err").read_text()
    exited, gone, survivors = interrupt_group(process, {})
    err = (tmp_path / "logs" / "err").read_text()
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if line.startswith("hatch-pbs:")] == [
        f"hatch-pbs: interrupted; {project / 'dist' / 'app'} was left as it was"], err
    assert exited < PROMPT and not survivors, (exited, survivors)
    assert not (project / "dist" / "app").exists()


def test_ctrl_c_of_a_resolve_waiting_for_the_catalogue(release_server: ReleaseServer, fake_release: FakeRelease,
                                                       tmp_path: Path) -> None:
    """``hatch-pbs resolve`` reads the release's ``SHA256SUMS``; the mirror accepts the request and never answers.
    SIGINT ends it at once (the handler does not raise in the main thread, so the blocked read must be cut short)."""
    release_server.stall_seconds = 120
    release_server.add_fault("SHA256SUMS", "stall-headers")
    env = {key: value for key, value in os.environ.items() if not key.startswith("HATCH_PBS_")}
    process = subprocess.Popen(
        [*hatch_pbs_command(), "resolve", "--release", fake_release.tag, "--target", fake_release.triple,
         "--mirror", release_server.base_url, "--cache-dir", str(tmp_path / "cache")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint)
    watch(lambda: release_server.request_count("SHA256SUMS") == 1 or process.poll() is not None, lambda: None)
    time.sleep(0.5)  # blocked, waiting for the response headers
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    assert process.returncode == 130, err
    assert err == "hatch-pbs: interrupted\n"
    assert elapsed < PROMPT
    assert sorted((tmp_path / "cache").rglob("*.part")) == []
