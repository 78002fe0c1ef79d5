"""Windows launchers: the prebuilt programs (hatch_pbs/app/launcher/launcher.c) and
hatch_pbs.app.launchers.write_windows_launcher.

The committed binaries are rebuilt with zig (``ziglang``, a test dependency) and must come out byte-identical.
Launchers are run under Wine against a stand-in ``python.exe`` (C, built with zig here) that prints the argv it
receives, split by CommandLineToArgvW, as one JSON array line and exits with ``STANDIN_EXIT``. Wine here runs
x86_64 programs only (no wine32, no aarch64): the i686 and aarch64 launchers are checked statically (PE headers,
imports), which is enough as they are the same C source as the x86_64 one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import lief
import pytest
from lief_support import pe_binary

import hatch_pbs
from hatch_pbs.app.launchers import (
    WINDOWS_LAUNCHER_ARCHES,
    WINDOWS_LAUNCHER_MAGIC,
    bootstrap_code,
    read_windows_launcher_payload,
    windows_launcher_payload,
    windows_launcher_program,
    write_windows_launcher,
)
from hatch_pbs.errors import InstallError

LAUNCHER_DIR = Path(hatch_pbs.__file__).parent / "app" / "launcher"
ENTRY_POINT = "demo_pkg.cli:main"
WINE_TIMEOUT = 120  # the first Wine start in a fresh prefix takes ~8 s; later ones ~0.5 s

MACHINES = {"x86_64": lief.PE.Header.MACHINE_TYPES.AMD64, "aarch64": lief.PE.Header.MACHINE_TYPES.ARM64,
            "i686": lief.PE.Header.MACHINE_TYPES.I386}
SUBSYSTEMS = {False: lief.PE.OptionalHeader.SUBSYSTEM.WINDOWS_CUI, True: lief.PE.OptionalHeader.SUBSYSTEM.WINDOWS_GUI}

# Arguments a user may type; each must reach the interpreter unchanged.
USER_ARGS = [
    "plain",
    "with space",
    "",
    'embedded "quotes"',
    "trailing backslash\\",
    'backslash before quote\\"',
    'two backslashes before quote\\\\"x',
    "a\\\\b\\c",
    "tab\there",
    "--option=value with spaces",
    "ünïcödé ✓ 🐍 ключ",
    "'single'",
    "%PATH% ^& | < >",
]

STANDIN_C = r"""
/* Stand-in python.exe / pythonw.exe for hatch-pbs launcher tests (no C runtime).
 * Default: print CommandLineToArgvW(GetCommandLineW()) as one JSON array line (ASCII: \uXXXX escapes), then, if
 * STANDIN_SLEEP is set, sleep that many ms and create the file named by STANDIN_MARKER; exit with STANDIN_EXIT.
 * Runner mode (STANDIN_RUN set): print CommandLineToArgvW(STANDIN_RUN), run STANDIN_RUN as a raw command line
 * (CreateProcessW, no application name), print the child's exit code as a JSON number line, exit 0. */
#define WIN32_LEAN_AND_MEAN
#define UNICODE
#include <windows.h>
#include <shellapi.h>

void *memset(void *d, int c, size_t n) { volatile unsigned char *p = d; while (n--) *p++ = (unsigned char)c; return d; }
void *memcpy(void *d, const void *s, size_t n)
{ volatile unsigned char *p = d; const unsigned char *q = s; while (n--) *p++ = *q++; return d; }

static HANDLE out;
static void put(const char *s, DWORD n) { DWORD w; WriteFile(out, s, n, &w, NULL); }
static void put_hex4(unsigned v)
{
    static const char d[] = "0123456789abcdef";
    char b[6] = {'\\', 'u', d[v >> 12 & 15], d[v >> 8 & 15], d[v >> 4 & 15], d[v & 15]};
    put(b, 6);
}
static void put_string(const wchar_t *s)
{
    put("\"", 1);
    for (; *s; s++) {
        wchar_t c = *s;
        if (c == L'"' || c == L'\\') { char b[2] = {'\\', (char)c}; put(b, 2); }
        else if (c < 0x20 || c >= 0x7f) put_hex4(c);
        else { char b = (char)c; put(&b, 1); }
    }
    put("\"", 1);
}
static void put_number(DWORD v)
{
    char b[12]; int i = 12;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    put(b + i, (DWORD)(12 - i));
}
static void put_argv(const wchar_t *command_line)
{
    int argc; wchar_t **argv = CommandLineToArgvW(command_line, &argc);
    put("[", 1);
    for (int i = 0; argv && i < argc; i++) { if (i) put(", ", 2); put_string(argv[i]); }
    put("]\n", 2);
}
static DWORD parse_number(const wchar_t *s)
{ DWORD v = 0; while (*s >= L'0' && *s <= L'9') v = v * 10 + (DWORD)(*s++ - L'0'); return v; }

void WINAPI standin_entry(void)
{
    static wchar_t value[32768];
    out = GetStdHandle(STD_OUTPUT_HANDLE);
    if (GetEnvironmentVariableW(L"STANDIN_RUN", value, 32768)) {
        STARTUPINFOW si = {0}; PROCESS_INFORMATION pi; DWORD status = 0;
        si.cb = sizeof si;
        SetEnvironmentVariableW(L"STANDIN_RUN", NULL);
        put_argv(value);
        if (!CreateProcessW(NULL, value, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
            put("\"CreateProcessW failed\"\n", 24); ExitProcess(1);
        }
        WaitForSingleObject(pi.hProcess, INFINITE);
        GetExitCodeProcess(pi.hProcess, &status);
        put_number(status); put("\n", 1);
        ExitProcess(0);
    }
    put_argv(GetCommandLineW());
    if (GetEnvironmentVariableW(L"STANDIN_SLEEP", value, 32)) {
        Sleep(parse_number(value));
        if (GetEnvironmentVariableW(L"STANDIN_MARKER", value, 32768))
            CloseHandle(CreateFileW(value, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL));
    }
    ExitProcess(GetEnvironmentVariableW(L"STANDIN_EXIT", value, 32) ? parse_number(value) : 0);
}
"""


def _load_build_module() -> ModuleType:
    """``hatch_pbs/app/launcher/build.py`` (a script beside the binaries, not a module of the package)."""
    spec = importlib.util.spec_from_file_location("hatch_pbs_launcher_build", LAUNCHER_DIR / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build_module()


@pytest.fixture(scope="session")
def zig() -> None:
    """zig (the ``ziglang`` package) is importable, or the test is skipped."""
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("the ziglang package is not installed (test dependency: pip install ziglang)")


def windows_path(path: Path) -> str:
    """``path`` as Wine's programs see it: Wine's ``Z:`` drive is the Unix root."""
    return "Z:" + str(path).replace("/", "\\")


@dataclass(frozen=True)
class Wine:
    """The Wine command and the stand-in interpreters (console ``python.exe``, GUI ``pythonw.exe``)."""

    standin: Path
    standin_gui: Path

    def run(self, program: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``program`` under Wine; stdout/stderr as UTF-8 text.

        The output goes to files, not pipes: a Wine start may also start wineserver and Wine's background
        services, which inherit the descriptors and outlive the program by seconds, so reading a pipe to its end
        would wait for them.
        """
        full_env = {**os.environ, "WINEDEBUG": "-all", **(env or {})}
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            process = subprocess.run(["wine", str(program), *args], stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=stderr, env=full_env, timeout=WINE_TIMEOUT, check=False)
            stdout.seek(0)
            stderr.seek(0)
            return subprocess.CompletedProcess(process.args, process.returncode,
                                               stdout.read().decode("utf-8", "replace"),
                                               stderr.read().decode("utf-8", "replace"))


def _compile_standin(output: Path, gui: bool) -> None:
    source = output.with_name("standin.c")
    source.write_text(STANDIN_C, encoding="utf-8")
    args = ["cc", "-target", "x86_64-windows-gnu", "-Os", "-s", "-nostdlib", "-ffreestanding", "-fno-stack-protector",
            "-isystem", str(build.mingw_headers()), "-Wl,--entry,standin_entry",
            f"-Wl,--subsystem,{'windows' if gui else 'console'}", str(source), "-lkernel32", "-lshell32",
            "-o", str(output)]
    subprocess.run([sys.executable, "-m", "ziglang", *args], check=True, capture_output=True)


@pytest.fixture(scope="session")
def wine(zig: None, tmp_path_factory: pytest.TempPathFactory) -> Wine:
    """Stand-in interpreters built with zig, and a Wine that runs them (probed), or the test is skipped."""
    directory = tmp_path_factory.mktemp("standin")
    standin, standin_gui = directory / "python.exe", directory / "pythonw.exe"
    _compile_standin(standin, gui=False)
    _compile_standin(standin_gui, gui=True)
    result = Wine(standin, standin_gui)
    try:
        probe = result.run(standin, "probe", env={"STANDIN_EXIT": "5"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"Wine cannot run Windows programs here: {exc}")
    try:
        argv = json.loads(probe.stdout)
    except ValueError:
        argv = None
    if probe.returncode != 5 or argv != [windows_path(standin), "probe"]:
        pytest.skip(f"Wine cannot run Windows programs here (or its Z: drive is not /): exit {probe.returncode}, "
                    f"stdout {probe.stdout!r}, stderr {probe.stderr[-500:]!r}")
    return result


def make_tree(root: Path, wine: Wine, *, gui: bool = False, name: str = "tool") -> Path:
    """``root/bin/<name>.exe`` (x86_64 launcher for ENTRY_POINT) and ``root/python/python[w].exe`` (the stand-in)."""
    (root / "python").mkdir(parents=True, exist_ok=True)
    interpreter = "pythonw.exe" if gui else "python.exe"
    (root / "python" / interpreter).write_bytes((wine.standin_gui if gui else wine.standin).read_bytes())
    return write_windows_launcher(root / "bin", name, ENTRY_POINT, arch="x86_64", gui=gui,
                                  interpreter=f"..\\python\\{interpreter}")


def expected_prefix(root: Path, launcher: Path, *, gui: bool = False) -> list[str]:
    """What the interpreter receives before the user's arguments."""
    interpreter = root / "python" / ("pythonw.exe" if gui else "python.exe")
    return [windows_path(interpreter), "-I", "-c", bootstrap_code(ENTRY_POINT), windows_path(launcher)]


# --- the prebuilt programs ------------------------------------------------------------------------------------


def test_prebuilt_launchers_are_reproducible(zig: None, tmp_path: Path) -> None:
    version = build.zig_version()
    assert version == build.ZIG_VERSION, (
        f"zig {version} installed, the committed launchers are built with zig {build.ZIG_VERSION}: "
        f"pin ziglang=={build.ZIG_VERSION} or rebuild them (python hatch_pbs/app/launcher/build.py)")
    built = build.build_all(tmp_path / "out dir")
    assert sorted(path.name for path in built) == sorted(path.name for path in LAUNCHER_DIR.glob("*.exe"))
    for path in built:
        committed = LAUNCHER_DIR / path.name
        assert path.read_bytes() == committed.read_bytes(), (
            f"{path.name} rebuilt from launcher.c differs from the committed file: run "
            "python hatch_pbs/app/launcher/build.py and commit the result")


@pytest.mark.parametrize("gui", [False, True], ids=["console", "gui"])
@pytest.mark.parametrize("arch", WINDOWS_LAUNCHER_ARCHES)
def test_prebuilt_launcher_pe_headers(arch: str, gui: bool) -> None:
    program = windows_launcher_program(arch, gui)
    assert len(program) <= 16 * 1024
    assert not program.endswith(WINDOWS_LAUNCHER_MAGIC)
    binary = lief.PE.parse(program)
    assert binary.header.machine == MACHINES[arch]
    assert binary.optional_header.subsystem == SUBSYSTEMS[gui]
    assert binary.optional_header.has(lief.PE.OptionalHeader.DLL_CHARACTERISTICS.DYNAMIC_BASE)
    assert binary.optional_header.has(lief.PE.OptionalHeader.DLL_CHARACTERISTICS.NX_COMPAT)
    # No C runtime: only system DLLs that every Windows has.
    assert sorted(library.name.upper() for library in binary.imports) == (
        ["KERNEL32.DLL", "USER32.DLL"] if gui else ["KERNEL32.DLL"])


# --- payload and write_windows_launcher (no Wine) ------------------------------------------------------------


@pytest.mark.parametrize("gui", [False, True], ids=["console", "gui"])
@pytest.mark.parametrize("arch", WINDOWS_LAUNCHER_ARCHES)
def test_write_windows_launcher_appends_the_payload(tmp_path: Path, arch: str, gui: bool) -> None:
    interpreter = "..\\python\\pythonw.exe" if gui else "..\\python\\python.exe"
    path = write_windows_launcher(tmp_path / "bin", "my-tool", ENTRY_POINT, arch=arch, gui=gui,
                                  interpreter=interpreter)
    assert path == tmp_path / "bin" / "my-tool.exe"
    data = path.read_bytes()
    program = windows_launcher_program(arch, gui)
    assert data.startswith(program)
    arguments = subprocess.list2cmdline(["-I", "-c", bootstrap_code(ENTRY_POINT)])
    fields = interpreter.encode() + b"\0" + arguments.encode() + b"\0"
    assert data[len(program):] == fields + struct.pack("<I", len(fields)) + b"HPBSLNC1"
    assert read_windows_launcher_payload(data) == (interpreter, arguments)
    assert pe_binary(data).header.machine == MACHINES[arch]  # still a valid PE with the overlay


def test_write_windows_launcher_normalizes_separators(tmp_path: Path) -> None:
    path = write_windows_launcher(tmp_path, "t", ENTRY_POINT, arch="x86_64", gui=False,
                                  interpreter="../python/python.exe")
    assert read_windows_launcher_payload(path.read_bytes())[0] == "..\\python\\python.exe"


def test_payload_round_trip_unicode() -> None:
    payload = windows_launcher_payload("..\\pythön dir\\python.exe", '-I -c "print(\'é\')"')
    assert read_windows_launcher_payload(b"MZ program" + payload) == ("..\\pythön dir\\python.exe",
                                                                      '-I -c "print(\'é\')"')
    assert read_windows_launcher_payload(b"" + windows_launcher_payload("p.exe", "")) == ("p.exe", "")


@pytest.mark.parametrize("data, message", [
    (b"", "too short"),
    (b"MZ" + b"\0" * 40, "no payload"),
    (b"p\0a\0" + struct.pack("<I", 400) + WINDOWS_LAUNCHER_MAGIC, "length"),
    (b"p\0a\0" + struct.pack("<I", 1) + WINDOWS_LAUNCHER_MAGIC, "length"),
    (b"pa\0" + struct.pack("<I", 3) + WINDOWS_LAUNCHER_MAGIC, "NUL"),
    (b"p\0a\0b\0" + struct.pack("<I", 6) + WINDOWS_LAUNCHER_MAGIC, "NUL"),
    (b"\0a\0" + struct.pack("<I", 3) + WINDOWS_LAUNCHER_MAGIC, "NUL"),
    (b"\xff\0a\0" + struct.pack("<I", 4) + WINDOWS_LAUNCHER_MAGIC, "corrupt"),
])
def test_read_payload_rejects_corrupt_launchers(data: bytes, message: str) -> None:
    with pytest.raises(InstallError, match=message):
        read_windows_launcher_payload(data)


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "armv7"}, "no Windows launcher for architecture 'armv7'; available: x86_64, aarch64, i686"),
    ({"arch": "x86_64_v3"}, "no Windows launcher for architecture"),
    ({"name": "bad name"}, "cannot be a file name"),
    ({"name": "..\\evil"}, "cannot be a file name"),
    ({"entry_point": "not a reference"}, "invalid entry point"),
    ({"interpreter": "C:\\Python\\python.exe"}, "must be a path relative to bin/"),
    ({"interpreter": "\\\\server\\share\\python.exe"}, "must be a path relative to bin/"),
    ({"interpreter": "/python/python.exe"}, "must be a path relative to bin/"),
    ({"interpreter": ""}, "must be a path relative to bin/"),
    ({"interpreter": "..\\python\0.exe"}, "must be a path relative to bin/"),
])
def test_write_windows_launcher_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    arguments = {"name": "tool", "entry_point": ENTRY_POINT, "arch": "x86_64", "gui": False,
                 "interpreter": "..\\python\\python.exe", **kwargs}
    with pytest.raises(InstallError, match=re.escape(message)):
        write_windows_launcher(tmp_path / "bin", arguments.pop("name"), arguments.pop("entry_point"), **arguments)
    assert not list(tmp_path.glob("bin/*"))


# --- under Wine -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [0, 3, 255])
def test_console_launcher_passes_arguments_and_exit_code(wine: Wine, tmp_path: Path, status: int) -> None:
    root = tmp_path / "root with spaces é"
    launcher = make_tree(root, wine)
    result = wine.run(launcher, *USER_ARGS, env={"STANDIN_EXIT": str(status)})
    assert result.returncode == status, result.stderr
    assert json.loads(result.stdout) == [*expected_prefix(root, launcher), *USER_ARGS]


def test_bootstrap_code_sees_the_launcher_as_argv0(wine: Wine, tmp_path: Path) -> None:
    """What the launcher passes works with the bootstrap code: replayed on this host's Python (without ``-I``, so
    that PYTHONPATH can supply the entry point's module), ``sys.argv`` is the launcher path plus the user's
    arguments and the entry point's return value is the exit status."""
    root = tmp_path / "root"
    launcher = make_tree(root, wine)
    received = json.loads(wine.run(launcher, *USER_ARGS).stdout)
    assert received[1] == "-I"
    package = tmp_path / "site" / "demo_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("import json, sys\n\ndef main():\n    print(json.dumps(sys.argv))\n    return 42\n")
    replay = subprocess.run([sys.executable, *received[2:]], capture_output=True, text=True, check=False,
                            env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert replay.returncode == 42, replay.stderr
    assert json.loads(replay.stdout) == [windows_path(launcher), *USER_ARGS]


# Raw command-line tails after the program name, run through CreateProcessW by the stand-in's runner mode: the
# interpreter must split them exactly as Windows splits the launcher's own command line.
RAW_TAILS = [
    "",
    "   ",
    " a b",
    '\t "" x',
    "\tx\ty",
    ' "a""b" "c d"e\\\\"f g\\\\\\"h',
    ' "unterminated quote',
    ' back\\\\\\\\"quoted \\\\" still"',
    ' ü "✓ 🐍"',
]


@pytest.mark.parametrize("quoted_program", [True, False], ids=["quoted-program", "unquoted-program"])
def test_raw_command_line_is_passed_verbatim(wine: Wine, tmp_path: Path, quoted_program: bool) -> None:
    root = tmp_path / ("root with spaces" if quoted_program else "root")  # an unquoted program name has no space
    launcher = make_tree(root, wine)
    program = f'"{windows_path(launcher)}"' if quoted_program else windows_path(launcher)
    # '"program"glued ...': CommandLineToArgvW ends a quoted program name at its closing quote.
    glued = ["glued" + RAW_TAILS[4], '"glued' + RAW_TAILS[4]] if quoted_program else []
    for tail in [*RAW_TAILS, *glued]:
        result = wine.run(wine.standin, env={"STANDIN_RUN": program + tail, "STANDIN_EXIT": "70000"})
        lines = result.stdout.splitlines()
        assert len(lines) == 3, (tail, result.stdout, result.stderr)
        launcher_view, interpreter_view, status = (json.loads(line) for line in lines)
        assert launcher_view[0] == windows_path(launcher)
        assert interpreter_view == [*expected_prefix(root, launcher), *launcher_view[1:]], tail
        assert status == 70000  # the full 32-bit exit code, not only its low byte


def test_gui_launcher_runs_pythonw(wine: Wine, tmp_path: Path) -> None:
    root = tmp_path / "gui root"
    launcher = make_tree(root, wine, gui=True, name="tool-gui")
    result = wine.run(launcher, "x y", "", env={"STANDIN_EXIT": "7"})
    assert result.returncode == 7, result.stderr
    assert json.loads(result.stdout) == [*expected_prefix(root, launcher, gui=True), "x y", ""]


@pytest.mark.parametrize("gui", [False, True], ids=["console", "gui"])
def test_missing_interpreter_is_named(wine: Wine, tmp_path: Path, gui: bool) -> None:
    root = tmp_path / "root with spaces"
    launcher = make_tree(root, wine, gui=gui)
    interpreter = root / "python" / ("pythonw.exe" if gui else "python.exe")
    interpreter.unlink()
    result = wine.run(launcher, "arg")
    assert result.returncode == 127
    assert result.stdout == ""
    assert f"hatch-pbs launcher: the bundled Python interpreter is missing: {windows_path(interpreter)}" \
        in result.stderr


def test_launcher_without_payload_says_so(wine: Wine, tmp_path: Path) -> None:
    bare = tmp_path / "bare.exe"
    bare.write_bytes(windows_launcher_program("x86_64", gui=False))
    result = wine.run(bare)
    assert result.returncode == 127
    assert f"the launcher has no payload (not written by hatch-pbs?): {windows_path(bare)}" in result.stderr

    corrupt = tmp_path / "corrupt.exe"
    corrupt.write_bytes(bare.read_bytes() + b"p\0a\0" + struct.pack("<I", 1 << 30) + WINDOWS_LAUNCHER_MAGIC)
    result = wine.run(corrupt)
    assert result.returncode == 127
    assert "the launcher's payload is corrupt (bad length)" in result.stderr


def test_long_path(wine: Wine, tmp_path: Path) -> None:
    """A tree deeper than MAX_PATH (260): nothing is truncated; Wine (like older Windows) cannot start a program
    from such a path, so the launcher falls back to the interpreter's 8.3 short name."""
    root = tmp_path.joinpath(*["long directory name with spaces, fifty characters"] * 6)
    launcher = make_tree(root, wine)
    assert len(windows_path(root / "python" / "python.exe")) > 300
    result = wine.run(launcher, "x", env={"STANDIN_EXIT": "4"})
    assert result.returncode == 4, result.stderr
    received = json.loads(result.stdout)
    assert received[1:] == [*expected_prefix(root, launcher)[1:], "x"]


def test_interpreter_dies_with_the_launcher(wine: Wine, tmp_path: Path) -> None:
    """The job object (JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE): killing the launcher kills the interpreter, which
    would otherwise create the marker file after 1 s (checked: a plain CreateProcessW parent leaves it running)."""
    root = tmp_path / "root"
    launcher = make_tree(root, wine)
    marker = tmp_path / "marker"
    env = {**os.environ, "WINEDEBUG": "-all", "STANDIN_SLEEP": "1000", "STANDIN_MARKER": windows_path(marker)}
    process = subprocess.Popen(["wine", str(launcher)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        first_line = process.stdout.readline()  # the interpreter runs
        assert json.loads(first_line)[0] == windows_path(root / "python" / "python.exe")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=WINE_TIMEOUT)
        process.stdout.close()
    time.sleep(2.0)
    assert not marker.exists()
