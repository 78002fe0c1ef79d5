"""Single-file executables: the committed bootstraps run for real (host Linux, aarch64 under qemu, Windows under
Wine) with small payloads made here; the bootstraps rebuild byte for byte."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import onefile_support
import pytest
from wine_support import wine_problem

from hatch_pbs.onefile.payload import TRAILER_SIZE, read_trailer, write_onefile

BOOTSTRAP_DIR = Path(__file__).resolve().parents[2] / "hatch_pbs" / "onefile" / "bootstrap"
HOST_BOOTSTRAP = BOOTSTRAP_DIR / "bootstrap-x86_64-unknown-linux-gnu"
TOP = "demo-1.0-x86_64-unknown-linux-gnu"
SCRIPT = b"""#!/bin/sh
printf 'argv0=%s\\n' "$0"
for a in "$@"; do printf 'arg=%s\\n' "$a"; done
cat "$(dirname "$0")/../share/data.txt"
exit "${DEMO_EXIT:-0}"
"""
ARGS = ["plain", "with space", 'quo"te', "it's", "ünï €", ""]

pytestmark = pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"),
                                reason="the host tests run the x86_64 Linux bootstrap")


def _load_build_module():  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location("onefile_bootstrap_build", BOOTSTRAP_DIR / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_payload(path: Path, files: dict[str, tuple[bytes, int]], top: str = TOP, link: bool = True) -> Path:
    """A ``.tar.zst`` of ``files`` below ``top/`` (:func:`onefile_support.make_payload`), by default with a symlink."""
    return onefile_support.make_payload(path, files, top, link=link)


def make_onefile(tmp_path: Path, *, bootstrap: Path = HOST_BOOTSTRAP, extra: bytes = b"", name: str = "demo") -> Path:
    files = {"bin/demo": (SCRIPT, 0o755), "share/data.txt": (b"hello data\n", 0o644)}
    if extra:
        files["share/extra.bin"] = (extra, 0o644)
    payload = make_payload(tmp_path / f"{name}.tar.zst", files)
    destination = tmp_path / name
    size = write_onefile(bootstrap, payload, "bin/demo", destination)
    assert size == destination.stat().st_size and destination.stat().st_mode & 0o777 == 0o755
    return destination


def run(exe: Path, cache: Path | str, *args: str, code: int = 0, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HATCH_PBS_ONEFILE_CACHE": str(cache), "DEMO_EXIT": str(code), **env}
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=environment, timeout=120,
                          check=False)


def published(cache: Path) -> list[Path]:
    return sorted(cache.iterdir()) if cache.exists() else []


def test_first_start_extracts_and_runs(tmp_path: Path) -> None:
    exe = make_onefile(tmp_path)
    cache = tmp_path / "cache" / "nested"
    proc = run(exe, cache, *ARGS, code=5)
    assert proc.returncode == 5, proc.stderr
    trailer = read_trailer(exe)
    root = cache / trailer.sha256.hex()
    assert published(cache) == [root]
    lines = proc.stdout.splitlines()
    assert lines == [f"argv0={root / 'bin' / 'demo'}", *(f"arg={a}" for a in ARGS), "hello data"]
    assert proc.stderr == ""
    assert os.access(root / "bin" / "demo", os.X_OK) and not os.access(root / "share" / "data.txt", os.X_OK)
    assert os.readlink(root / "bin" / "demo-link") == "demo"


def test_later_start_runs_the_cache_without_reading_the_payload(tmp_path: Path) -> None:
    exe = make_onefile(tmp_path)
    cache = tmp_path / "cache"
    assert run(exe, cache).returncode == 0
    root = cache / read_trailer(exe).sha256.hex()
    (root / "share" / "data.txt").write_text("changed in the cache\n")
    before = root.stat()
    # Destroy the payload itself: a later start must neither hash nor decompress it.
    trailer = read_trailer(exe)
    with open(exe, "r+b") as stream:
        stream.seek(trailer.payload_offset)
        stream.write(b"\0" * trailer.payload_size)
    proc = run(exe, cache, "again", code=3)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines()[1:] == ["arg=again", "changed in the cache"]
    assert root.stat().st_ino == before.st_ino and root.stat().st_mtime_ns == before.st_mtime_ns
    assert published(cache) == [root]


TRAPPING_SCRIPT = b"""#!/bin/sh
trap 'echo "got TERM"; exit 143' TERM
echo ready
while :; do sleep 0.05; done
"""


@pytest.mark.parametrize("start", ["first", "later"])
def test_signals_reach_the_script(tmp_path: Path, start: str) -> None:
    """The bootstrap execs the launcher (same process), so a signal sent to the executable's pid reaches the script
    and its exit status is the script's."""
    payload = make_payload(tmp_path / "trap.tar.zst", {"bin/demo": (TRAPPING_SCRIPT, 0o755)})
    exe = tmp_path / "trap"
    write_onefile(HOST_BOOTSTRAP, payload, "bin/demo", exe)
    cache = tmp_path / "cache"
    if start == "later":
        warm = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, env={**os.environ, "HATCH_PBS_ONEFILE_CACHE": str(cache)})
        assert warm.stdout is not None and warm.stdout.readline() == b"ready\n"
        warm.kill()
        warm.wait()
    proc = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, env={**os.environ, "HATCH_PBS_ONEFILE_CACHE": str(cache)})
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert proc.stdout.read() == b"got TERM\n"


def test_damaged_payload_is_refused(tmp_path: Path) -> None:
    exe = make_onefile(tmp_path)
    trailer = read_trailer(exe)
    data = bytearray(exe.read_bytes())
    data[trailer.payload_offset + trailer.payload_size // 2] ^= 0x55
    exe.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    proc = run(exe, cache)
    assert proc.returncode == 127
    assert proc.stdout == ""
    line, = proc.stderr.splitlines()
    assert line.startswith("hatch-pbs onefile: the payload is damaged (sha256 ")
    assert line.endswith(f", expected {trailer.sha256.hex()}): {exe}")
    assert published(cache) == []


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:-1], "no payload in the executable"),
    (lambda data: data[:-TRAILER_SIZE] + b"X" + data[-TRAILER_SIZE + 1:], "no payload in the executable"),
    (lambda data: data[:-72] + b"\x02" + data[-71:], "unsupported onefile format version 2"),
    (lambda data: data[:-64] + b"\xff" * 8 + data[-56:], "corrupt onefile trailer"),
], ids=["truncated", "magic", "version", "bounds"])
def test_corrupt_trailer_is_refused(tmp_path: Path, damage, message: str) -> None:  # noqa: ANN001
    exe = make_onefile(tmp_path)
    exe.write_bytes(damage(exe.read_bytes()))
    proc = run(exe, tmp_path / "cache")
    assert proc.returncode == 127
    assert proc.stderr.startswith(f"hatch-pbs onefile: {message}") and proc.stderr.endswith(f": {exe}\n")


def test_concurrent_first_starts_publish_once(tmp_path: Path) -> None:
    exe = make_onefile(tmp_path, extra=os.urandom(4 << 20))
    cache = tmp_path / "cache"
    env = {**os.environ, "HATCH_PBS_ONEFILE_CACHE": str(cache), "DEMO_EXIT": "0"}
    procs = [subprocess.Popen([str(exe), str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(4)]
    results = [proc.communicate(timeout=120) for proc in procs]
    for i, (proc, (stdout, stderr)) in enumerate(zip(procs, results, strict=True)):
        assert proc.returncode == 0, stderr
        assert stdout.splitlines()[1:] == [f"arg={i}", "hello data"]
    assert published(cache) == [cache / read_trailer(exe).sha256.hex()]


@pytest.mark.parametrize("cache", ["/proc/hatch-pbs-forbidden", "regular-file/below"])
def test_unwritable_cache_falls_back_to_temp(tmp_path: Path, cache: str) -> None:
    exe = make_onefile(tmp_path)
    (tmp_path / "regular-file").write_text("")
    temp = tmp_path / "temp"
    temp.mkdir()
    cache_path = cache if cache.startswith("/") else str(tmp_path / cache)
    proc = run(exe, cache_path, "x", TMPDIR=str(temp))
    assert proc.returncode == 0, proc.stderr
    fallback = temp / f"hatch-pbs-onefile-{os.getuid()}"
    warning, = proc.stderr.splitlines()
    assert warning.startswith(f"hatch-pbs onefile: warning: cannot write the cache {cache_path} (")
    assert warning.endswith(f"); using {fallback}")
    root = fallback / read_trailer(exe).sha256.hex()
    assert proc.stdout.splitlines()[0] == f"argv0={root / 'bin' / 'demo'}"
    assert fallback.stat().st_mode & 0o777 == 0o700
    again = run(exe, cache_path, "y", TMPDIR=str(temp))
    assert again.returncode == 0 and again.stderr == "" and "arg=y" in again.stdout


@pytest.mark.parametrize("owner", ["world-writable", "another user"])
def test_a_fallback_root_another_user_could_write_is_not_trusted(tmp_path: Path, owner: str) -> None:
    """A ``hatch-pbs-onefile-<uid>`` someone else created first in the shared temp directory, holding a planted
    ``<hex>/bin/demo``: neither a later nor a first start runs anything from it."""
    if owner == "another user" and os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    exe = make_onefile(tmp_path)
    temp = tmp_path / "temp"
    fallback = temp / f"hatch-pbs-onefile-{os.getuid()}"
    planted = fallback / read_trailer(exe).sha256.hex() / "bin" / "demo"
    planted.parent.mkdir(parents=True)
    planted.write_text("#!/bin/sh\necho planted\n")
    planted.chmod(0o755)
    if owner == "another user":
        fallback.chmod(0o700)
        os.chown(fallback, 4321, 4321)
    else:
        fallback.chmod(0o777)
    proc = run(exe, "/proc/hatch-pbs-forbidden", TMPDIR=str(temp))
    assert "planted" not in proc.stdout
    assert proc.returncode == 127, proc.stdout + proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "hatch-pbs onefile: the fallback cache is not a private directory of this user (another user may have "
        f"created it); remove it or set HATCH_PBS_ONEFILE_CACHE: {fallback}")


def test_interrupted_first_start_publishes_nothing(tmp_path: Path) -> None:
    exe = make_onefile(tmp_path, extra=os.urandom(50 << 20))
    cache = tmp_path / "cache"
    env = {**os.environ, "HATCH_PBS_ONEFILE_CACHE": str(cache)}
    proc = subprocess.Popen([str(exe)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    partial: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        partial = list(cache.glob(".tmp-*/share/extra.bin")) if cache.exists() else []
        if partial and partial[0].stat().st_size > 0:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:  # pragma: no cover - the machine extracted 50 MB in a few ms
        pytest.skip("the first start finished before it could be interrupted")
    assert partial, "no partial extraction was seen"
    assert [p.name[:5] for p in published(cache)] == [".tmp-"]
    result = run(exe, cache, "after")
    assert result.returncode == 0, result.stderr
    assert "arg=after" in result.stdout
    assert cache / read_trailer(exe).sha256.hex() in published(cache)


def test_aarch64_bootstrap_under_qemu(tmp_path: Path) -> None:
    qemu = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if qemu is None:
        pytest.skip("qemu-aarch64 is not installed (Debian package qemu-user)")
    exe = make_onefile(tmp_path, bootstrap=BOOTSTRAP_DIR / "bootstrap-aarch64-unknown-linux-gnu")
    cache = tmp_path / "cache"
    env = {**os.environ, "HATCH_PBS_ONEFILE_CACHE": str(cache), "DEMO_EXIT": "4"}
    # qemu runs the bootstrap; the sh launcher it executes is a host program (execve goes through the kernel).
    proc = subprocess.run([qemu, str(exe), "a b", "ü"], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert proc.returncode == 4, proc.stderr
    root = cache / read_trailer(exe).sha256.hex()
    assert proc.stdout.splitlines() == [f"argv0={root / 'bin' / 'demo'}", "arg=a b", "arg=ü", "hello data"]


# --- Windows under Wine -----------------------------------------------------------------------------------------

WINDOWS_DEMO = """const std = @import("std");
pub fn main(init: std.process.Init) !u8 {
    var out: [4096]u8 = undefined;
    var writer = std.Io.File.stdout().writer(init.io, &out);
    var args = try init.minimal.args.iterateAllocator(init.gpa);
    try writer.interface.writeAll("[");
    var first = true;
    while (args.next()) |arg| {
        if (!first) try writer.interface.writeAll(",");
        first = false;
        try std.json.Stringify.value(arg, .{}, &writer.interface);
    }
    try writer.interface.writeAll("]\\n");
    try writer.interface.flush();
    const code = init.environ_map.get("DEMO_EXIT") orelse "0";
    return std.fmt.parseInt(u8, code, 10) catch 0;
}
"""


@pytest.fixture(scope="session")
def windows_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny x86_64 Windows program printing its argv as JSON and exiting with ``DEMO_EXIT`` (built with zig)."""
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("the ziglang package is not installed (test dependency: pip install ziglang)")
    problem = wine_problem()
    if problem:
        pytest.skip(problem)
    directory = tmp_path_factory.mktemp("windows-demo")
    (directory / "demo.zig").write_text(WINDOWS_DEMO)
    output = directory / "demo.exe"
    subprocess.run([sys.executable, "-m", "ziglang", "build-exe", "demo.zig", "-OReleaseSmall", "-fstrip",
                    "-target", "x86_64-windows-gnu", f"-femit-bin={output}"], check=True, cwd=directory,
                   capture_output=True)
    return output


def windows_path(path: Path) -> str:
    """``path`` as Wine's programs see it: Wine's ``Z:`` drive is the Unix root."""
    return "Z:" + str(path).replace("/", "\\")


@pytest.mark.parametrize("variant", ["", "-gui"])
def test_windows_bootstrap_under_wine(tmp_path: Path, windows_demo: Path, variant: str) -> None:
    """The console bootstrap and the GUI-subsystem one (which Wine gives the inherited standard handles)."""
    payload = make_payload(tmp_path / "win.tar.zst", {"bin/demo.exe": (windows_demo.read_bytes(), 0o755)},
                           top="demo-1.0-x86_64-pc-windows-msvc", link=False)
    exe = tmp_path / "demo one.exe"
    write_onefile(BOOTSTRAP_DIR / f"bootstrap-x86_64-pc-windows-msvc{variant}.exe", payload, "bin\\demo.exe", exe)
    cache = tmp_path / "cache"
    wine = shutil.which("wine64") or shutil.which("wine")
    assert wine is not None
    env = {**os.environ, "WINEDEBUG": "-all", "HATCH_PBS_ONEFILE_CACHE": windows_path(cache)}
    args = ["a", "b c", 'quo"te', "ünï"]
    root = cache / read_trailer(exe).sha256.hex()
    for code in (6, 0):  # first start, later start
        proc = subprocess.run([wine, str(exe), *args], capture_output=True, env={**env, "DEMO_EXIT": str(code)},
                              timeout=300, check=False)
        assert proc.returncode == code, proc.stderr.decode(errors="replace")
        argv = json.loads(proc.stdout.decode("utf-8"))
        assert argv == [windows_path(root / "bin" / "demo.exe"), *args]
        assert published(cache) == [root]


# --- the prebuilt programs --------------------------------------------------------------------------------------


#: PE machine and subsystem of each Windows bootstrap: the ones Wine cannot run here (no 32-bit Wine, no arm64) are
#: checked by their headers.
WINDOWS_HEADERS = {
    f"bootstrap-{triple}{variant}.exe": (machine, "WINDOWS_GUI" if variant else "WINDOWS_CUI")
    for triple, machine in [("x86_64-pc-windows-msvc", "AMD64"), ("aarch64-pc-windows-msvc", "ARM64"),
                            ("i686-pc-windows-msvc", "I386")]
    for variant in ("", "-gui")}


@pytest.mark.parametrize("name", sorted(WINDOWS_HEADERS))
def test_windows_bootstraps_have_their_machine_and_subsystem(name: str) -> None:
    lief = pytest.importorskip("lief")
    binary = lief.PE.parse(str(BOOTSTRAP_DIR / name))
    assert binary is not None
    assert (binary.header.machine.name, binary.optional_header.subsystem.name) == WINDOWS_HEADERS[name]


def test_prebuilt_bootstraps_are_reproducible(tmp_path: Path) -> None:
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("the ziglang package is not installed (test dependency: pip install ziglang)")
    build = _load_build_module()
    version = build.zig_version()
    assert version == build.ZIG_VERSION, (
        f"zig {version} installed, the committed bootstraps are built with zig {build.ZIG_VERSION}: "
        f"pin ziglang=={build.ZIG_VERSION} or rebuild them (python hatch_pbs/onefile/bootstrap/build.py)")
    built = build.build_all(tmp_path / "out dir")
    assert sorted(path.name for path in built) == sorted(path.name for path in BOOTSTRAP_DIR.glob("bootstrap-*"))
    for path in built:
        assert path.read_bytes() == (BOOTSTRAP_DIR / path.name).read_bytes(), (
            f"{path.name} rebuilt from bootstrap.zig differs from the committed file: run "
            "python hatch_pbs/onefile/bootstrap/build.py and commit the result")
