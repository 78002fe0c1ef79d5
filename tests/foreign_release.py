"""A PBS release for every target triple, with real foreign binaries compiled offline by zig.

:func:`build_cross_release` takes the host's :class:`~pbs_release.FakeRelease` (the running CPython repackaged)
and adds, for every other triple, ``install_only`` and ``install_only_stripped`` archives in the real PBS layout
(docs/pbs-facts.md, "Archive layout") whose binaries are small C programs and libraries cross-compiled with the
``ziglang`` package. The result is one mirror root::

    <root>/latest-release.json
    <root>/<tag>/SHA256SUMS                       every served asset (host and foreign), sorted, two spaces
    <root>/<tag>/<the host's three assets>        hard links (or copies) of the host FakeRelease's files
    <root>/<tag>/cpython-<ver>+<tag>-<triple>-install_only.tar.gz            for each foreign triple
    <root>/<tag>/cpython-<ver>+<tag>-<triple>-install_only_stripped.tar.gz
    <root>/.build/<triple>-<hash>/                compiled binaries, keyed by the hash of sources, flags, zig

The stand-in interpreter of every triple prints two lines and exits with 0 (or with the integer in the
environment variable ``HATCH_PBS_STAND_IN_EXIT_CODE``)::

    stand-in python <triple>
    ["<argv[0]>", "<argv[1]>", ...]             (a JSON array; Windows: from GetCommandLineW/CommandLineToArgvW)

The printing lives in the stand-in libpython (``Py_BytesMain``, Windows ``Py_StandInMain`` in ``python3X.dll``),
so the executable only works when its shared library is found. What each layout holds:

- Linux (gnu, musl): ``bin/python3.X`` (``DT_RUNPATH`` ``$ORIGIN/../lib``, needs ``libpython3.X.so.1.0``),
  ``bin/python3`` and ``bin/python`` symlinks, ``lib/libpython3.X.so.1.0`` (soname of the same name),
  ``lib/python3.X/lib-dynload/_demo.cpython-3X-<multiarch>.so`` (absolute ``DT_RUNPATH`` ``/install/lib``, needs
  libpython), ``lib/python3.X/_sysconfigdata__linux_<multiarch>.py`` (``prefix`` ``/install``), placeholder
  ``os.py``/``site.py``, empty ``site-packages/``, ``lib/pkgconfig/python-3.X.pc`` (``prefix=/install``),
  ``include/python3.X/Python.h``. gnu targets are linked against glibc 2.17 (``/lib/ld-linux-*.so.*``), musl ones
  dynamically against musl (``/lib/ld-musl-*.so.1``, ``DT_NEEDED`` ``libc.so``) as PBS does since 20250311.
- macOS: ``bin/python3.X`` (``LC_LOAD_DYLIB /install/lib/libpython3.X.dylib``: the install name older PBS
  releases had), links, ``lib/libpython3.X.dylib`` (``LC_ID_DYLIB`` ``/install/lib/libpython3.X.dylib``),
  ``lib/python3.X/lib-dynload/_demo.cpython-3X-darwin.so`` (undefined symbols looked up dynamically,
  ``LC_RPATH @loader_path/../..``), ``_sysconfigdata__darwin_darwin.py``, ``site-packages/``, ``include/``.
  zig's linker signs every Mach-O ad hoc (``LC_CODE_SIGNATURE``).
- Windows: ``python.exe`` (console) and ``pythonw.exe`` (GUI subsystem), both importing ``python3X.dll``;
  ``vcruntime140.dll`` (a standalone stand-in DLL: nothing imports it, so Wine's builtin never gets in the way),
  ``DLLs/_demo.pyd`` (a DLL exporting ``PyInit__demo``, importing ``python3X.dll``), ``Lib/os.py``,
  ``Lib/site.py``, ``Lib/site-packages/``, ``include/Python.h``.

Every archive also holds ``python/share/hatch-pbs-fixture/flavor.txt`` (its flavor), as the host's do: both
flavors share the same binaries (built without debug information), the marker makes their bytes differ.

Archives are byte-reproducible: sorted members, owner root, fixed mtimes, gzip header without a time stamp;
compiled binaries are cached under the root, and zig's own output is deterministic for the same inputs.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pbs_release import GITHUB_RELEASES, FakeRelease

from hatch_pbs.release.triples import ALL_TARGETS

__all__ = [
    "ALL_TRIPLES",
    "CROSS_FLAVORS",
    "EXIT_CODE_VARIABLE",
    "ZIG_TARGETS",
    "CrossRelease",
    "ZigUnavailableError",
    "build_cross_release",
    "build_static_stand_in",
    "zig_version",
]

ALL_TRIPLES = ALL_TARGETS
"""Every triple a cross release can hold (the ``all`` set of hatch-pbs)."""

ZIG_TARGETS = {
    "x86_64-unknown-linux-gnu": "x86_64-linux-gnu.2.17",
    "aarch64-unknown-linux-gnu": "aarch64-linux-gnu.2.17",
    "x86_64-unknown-linux-musl": "x86_64-linux-musl",
    "aarch64-apple-darwin": "aarch64-macos.11.0",
    "x86_64-apple-darwin": "x86_64-macos.11.0",
    "x86_64-pc-windows-msvc": "x86_64-windows-gnu",
    "aarch64-pc-windows-msvc": "aarch64-windows-gnu",
}
"""PBS triple -> zig ``-target`` (glibc 2.17 and macOS 11.0 are PBS's floors, and the default floors of hatch-pbs;
zig targets Windows through MinGW, not MSVC)."""

CROSS_FLAVORS = ("install_only", "install_only_stripped")
"""Flavors built for each foreign triple."""

EXIT_CODE_VARIABLE = "HATCH_PBS_STAND_IN_EXIT_CODE"
"""Environment variable whose integer value the stand-in interpreters exit with (default 0)."""

_DIR_MTIME = 1792540800  # 2026-10-21T00:00:00Z, as in pbs_release
_GZIP_LEVEL = 6
_MARKER = "share/hatch-pbs-fixture/flavor.txt"
_BUILD_DIRNAME = ".build"
_MAX_WORKERS = 4
_ZIG_TIMEOUT = 900  # seconds; a cold zig libc cache for a new target takes about a minute on 2 cores


class ZigUnavailableError(RuntimeError):
    """The ``ziglang`` package is not importable by this interpreter, so nothing foreign can be compiled."""


@dataclasses.dataclass(frozen=True)
class CrossRelease:
    """A PBS release on disk serving the host's assets and stand-in assets of foreign triples."""

    root: Path
    """Mirror root: ``<root>/<tag>/<assets>``, ``<root>/<tag>/SHA256SUMS`` (every served asset, host and
    foreign), ``<root>/latest-release.json``."""
    tag: str
    """Release tag (the host release's)."""
    python_version: str
    """The host release's Python version, e.g. ``"3.11.7"``; foreign assets carry the same version."""
    host: FakeRelease
    """The host release; its three assets are served from :attr:`root` too (hard links or copies)."""
    assets: dict[tuple[str, str], Path]
    """``(triple, flavor)`` -> served archive under :attr:`release_dir`, flavors ``install_only`` and
    ``install_only_stripped``, for every triple of the release (the host's, if requested, included)."""
    build_dir: Path = Path()
    """Cache of compiled binaries (``<root>/.build`` unless chosen otherwise)."""

    @property
    def release_dir(self) -> Path:
        """``<root>/<tag>``: the assets and ``SHA256SUMS``."""
        return self.root / self.tag

    @property
    def triples(self) -> list[str]:
        """Triples with assets in :attr:`assets`, in :data:`ALL_TRIPLES` order."""
        present = {triple for triple, _ in self.assets}
        return [triple for triple in ALL_TRIPLES if triple in present]

    @property
    def foreign_triples(self) -> list[str]:
        """:attr:`triples` other than the host's."""
        return [triple for triple in self.triples if triple != self.host.triple]

    def asset_name(self, triple: str, flavor: str = "install_only") -> str:
        """File name of a served asset, e.g. ``cpython-3.11.7+20261021-aarch64-apple-darwin-install_only.tar.gz``."""
        return self.assets[(triple, flavor)].name

    def sha256(self, triple: str, flavor: str = "install_only") -> str:
        """Lowercase hex sha256 of a served asset (as listed in ``SHA256SUMS``)."""
        return _sha256_file(self.assets[(triple, flavor)])

    def interpreter(self, triple: str) -> str:
        """Path of the interpreter inside the runtime (relative to ``python/``): ``bin/python3.X`` or
        ``python.exe``."""
        return _interpreter_path(triple, _xy(self.python_version))

    def static_stand_in(self, triple: str) -> Path:
        """A statically linked Linux stand-in for ``triple``'s architecture (see :func:`build_static_stand_in`)."""
        return build_static_stand_in(self.build_dir, triple)


def build_cross_release(root: Path, host: FakeRelease, triples: Sequence[str] = ALL_TRIPLES, *,
                        build_dir: Path | None = None) -> CrossRelease:
    """Build a release under ``root`` serving ``host``'s assets plus stand-in archives of the other ``triples``.

    For each triple of ``triples`` other than ``host.triple`` this compiles the stand-in binaries with zig
    (cached under ``build_dir``, default ``<root>/.build``) and writes its ``install_only`` and
    ``install_only_stripped`` archives. ``SHA256SUMS`` lists every served file with its real sha256 (the host's
    three assets and the foreign archives), plus the host catalogue's unserved entries of *other* versions and
    builds (freethreaded, other Python versions), as the host release does; the host catalogue's made-up entries
    for the served version of the built triples are replaced by what is actually served (the foreign ``full``
    entries disappear). ``<root>/latest-release.json`` names the tag.

    Raises:
        ValueError: an unknown triple.
        ZigUnavailableError: ``ziglang`` is not installed.
        RuntimeError: a compilation failed (the message holds zig's output).
    """
    unknown = [triple for triple in triples if triple not in ZIG_TARGETS]
    if unknown:
        raise ValueError(f"unknown triple(s) {', '.join(unknown)}; expected some of {', '.join(ALL_TRIPLES)}")
    root = Path(root)
    build_dir = Path(build_dir) if build_dir is not None else root / _BUILD_DIRNAME
    tag, version = host.tag, host.python_version
    release_dir = root / tag
    release_dir.mkdir(parents=True, exist_ok=True)
    foreign = [triple for triple in dict.fromkeys(triples) if triple != host.triple]

    # The host's assets, under the same names.
    served: dict[str, Path] = {}
    for path in host.assets.values():
        dest = release_dir / path.name
        if dest.resolve() != path.resolve():
            _link_or_copy(path, dest)
        served[dest.name] = dest
    assets: dict[tuple[str, str], Path] = {}
    if host.triple in triples:
        for flavor in CROSS_FLAVORS:
            assets[(host.triple, flavor)] = release_dir / host.assets[flavor].name

    if foreign:
        _require_zig()
        xy = _xy(version)
        with ThreadPoolExecutor(max_workers=min(_MAX_WORKERS, len(foreign))) as pool:
            built = dict(zip(foreign, pool.map(lambda t: _build_binaries(build_dir, t, xy), foreign), strict=True))
        for triple in foreign:
            tree = _layout(triple, version, built[triple])
            for flavor in CROSS_FLAVORS:
                dest = release_dir / _asset_name(version, tag, triple, flavor)
                _write_tar_gz(dest, tree, flavor)
                assets[(triple, flavor)] = dest
                served[dest.name] = dest

    catalogue = _read_sums(host.release_dir / "SHA256SUMS")
    built_stems = {f"cpython-{version}+{tag}-{triple}-" for triple in foreign}
    catalogue = {name: digest for name, digest in catalogue.items()
                 if not any(name.startswith(stem) for stem in built_stems)}
    catalogue.update({name: _sha256_file(path) for name, path in served.items()})
    sums = "".join(f"{digest}  {name}\n" for name, digest in sorted(catalogue.items()))
    _write_atomic(release_dir / "SHA256SUMS", sums.encode())

    latest = {
        "version": 1,
        "tag": tag,
        "release_url": f"{GITHUB_RELEASES}/tag/{tag}",
        "asset_url_prefix": f"{GITHUB_RELEASES}/download/{tag}",
    }
    _write_atomic(root / "latest-release.json", (json.dumps(latest, indent=2) + "\n").encode())

    return CrossRelease(root=root, tag=tag, python_version=version, host=host, assets=assets, build_dir=build_dir)


def build_static_stand_in(build_dir: Path, triple: str) -> Path:
    """A statically linked (musl) Linux build of the stand-in interpreter for ``triple``'s CPU architecture.

    It prints ``stand-in python <triple>`` and its argv like the archives' stand-ins, but needs no dynamic
    loader: ``qemu-aarch64 <path>`` runs it without an aarch64 sysroot (this machine has none for glibc).
    Cached under ``build_dir`` like the release's binaries.
    """
    if triple not in ZIG_TARGETS:
        raise ValueError(f"unknown triple {triple!r}")
    _require_zig()
    arch = triple.split("-", 1)[0]
    sources = {"python.c": _UNIX_PYTHON_C, "libpython.c": _unix_libpython_c(triple)}
    steps = [("python3-static", ["-static", "-o", "python3-static", "python.c", "libpython.c"])]
    out = _cached_build(Path(build_dir), f"static-{triple}", f"{arch}-linux-musl", sources, steps)
    return out / "python3-static"


# --------------------------------------------------------------------------------------------------------------
# C sources

_JSON_STRING_C = r"""
static void put_json_string(const char *s) {
    static const char hex[] = "0123456789abcdef";
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            putchar('\\');
            putchar(*p);
        } else if (*p < 0x20) {
            fputs("\\u00", stdout);
            putchar(hex[*p >> 4]);
            putchar(hex[*p & 15]);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}
"""

_UNIX_LIBPYTHON_C = r"""/* Stand-in libpython for @TRIPLE@: the interpreter's behaviour lives here, as in CPython. */
#include <stdio.h>
#include <stdlib.h>

#define STAND_IN_TRIPLE "@TRIPLE@"

const char *Py_StandInTriple(void) { return STAND_IN_TRIPLE; }
@JSON_STRING@
int Py_BytesMain(int argc, char **argv) {
    printf("stand-in python %s\n", STAND_IN_TRIPLE);
    putchar('[');
    for (int i = 0; i < argc; i++) {
        if (i) fputs(", ", stdout);
        put_json_string(argv[i]);
    }
    fputs("]\n", stdout);
    fflush(stdout);
    const char *code = getenv("@EXIT_VAR@");
    return code && *code ? atoi(code) : 0;
}
"""

_UNIX_PYTHON_C = r"""/* Stand-in python3.X: like CPython's programs/python.c, it hands over to libpython. */
int Py_BytesMain(int argc, char **argv);

int main(int argc, char **argv) { return Py_BytesMain(argc, argv); }
"""

_UNIX_DEMO_C = r"""/* Stand-in extension module _demo. */
const char *Py_StandInTriple(void);

const void *PyInit__demo(void) { return Py_StandInTriple(); }
"""

_WIN_PYTHONDLL_C = r"""/* Stand-in python3X.dll for @TRIPLE@: prints the command line as CommandLineToArgvW splits it. */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <shellapi.h>
#include <stdlib.h>
#include <string.h>

#define STAND_IN_TRIPLE "@TRIPLE@"

__declspec(dllexport) const char *Py_StandInTriple(void) { return STAND_IN_TRIPLE; }

static char *buf;
static size_t len, cap;

static void put(const char *s, size_t n) {
    if (len + n > cap) {
        cap = (len + n) * 2 + 256;
        buf = realloc(buf, cap);
        if (!buf) ExitProcess(120);
    }
    memcpy(buf + len, s, n);
    len += n;
}

static void puts_(const char *s) { put(s, strlen(s)); }

static void put_json_string(const wchar_t *w) {
    static const char hex[] = "0123456789abcdef";
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    char *u = malloc(n > 0 ? n : 1);
    if (!u) ExitProcess(120);
    if (n <= 0 || !WideCharToMultiByte(CP_UTF8, 0, w, -1, u, n, NULL, NULL)) u[0] = 0;
    put("\"", 1);
    for (const unsigned char *p = (const unsigned char *)u; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            put(esc, 2);
        } else if (*p < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
            put(esc, 6);
        } else {
            put((const char *)p, 1);
        }
    }
    put("\"", 1);
    free(u);
}

__declspec(dllexport) int Py_StandInMain(void) {
    int argc = 0;
    wchar_t **argv = CommandLineToArgvW(GetCommandLineW(), &argc);
    puts_("stand-in python " STAND_IN_TRIPLE "\n[");
    for (int i = 0; argv && i < argc; i++) {
        if (i) puts_(", ");
        put_json_string(argv[i]);
    }
    puts_("]\n");
    DWORD written = 0;
    WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), buf, (DWORD)len, &written, NULL);
    wchar_t code[32];
    DWORD n = GetEnvironmentVariableW(L"@EXIT_VAR@", code, 32);
    return n > 0 && n < 32 ? (int)wcstoul(code, NULL, 10) : 0;
}
"""

_WIN_PYTHON_C = r"""/* Stand-in python.exe (console subsystem). */
__declspec(dllimport) int Py_StandInMain(void);

int main(void) { return Py_StandInMain(); }
"""

_WIN_PYTHONW_C = r"""/* Stand-in pythonw.exe (GUI subsystem). */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

__declspec(dllimport) int Py_StandInMain(void);

int WINAPI WinMain(HINSTANCE instance, HINSTANCE previous, LPSTR command_line, int show) {
    (void)instance; (void)previous; (void)command_line; (void)show;
    return Py_StandInMain();
}
"""

_WIN_DEMO_C = r"""/* Stand-in extension module _demo.pyd. */
__declspec(dllimport) const char *Py_StandInTriple(void);

__declspec(dllexport) const void *PyInit__demo(void) { return Py_StandInTriple(); }
"""

_WIN_VCRUNTIME_C = r"""/* Stand-in vcruntime140.dll: shipped beside python.exe like PBS does, imported by nothing. */
__declspec(dllexport) int hatch_pbs_vcruntime_stand_in(void) { return 140; }
"""


def _unix_libpython_c(triple: str) -> str:
    return (_UNIX_LIBPYTHON_C.replace("@JSON_STRING@", _JSON_STRING_C)
            .replace("@TRIPLE@", triple).replace("@EXIT_VAR@", EXIT_CODE_VARIABLE))


def _win_pythondll_c(triple: str) -> str:
    return _WIN_PYTHONDLL_C.replace("@TRIPLE@", triple).replace("@EXIT_VAR@", EXIT_CODE_VARIABLE)


# --------------------------------------------------------------------------------------------------------------
# Compilation


def _platform(triple: str) -> str:
    if "-linux-" in triple:
        return "linux"
    if triple.endswith("-apple-darwin"):
        return "macos"
    if "-windows-" in triple:
        return "windows"
    raise ValueError(f"unknown triple {triple!r}")


def _multiarch(triple: str) -> str:
    """Debian-style multiarch of a Linux triple, as in PBS's ``_sysconfigdata`` and extension suffixes."""
    arch, _, _, libc = triple.split("-")
    return f"{arch}-linux-{libc}"


def _xy(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _interpreter_path(triple: str, xy: str) -> str:
    return "python.exe" if _platform(triple) == "windows" else f"bin/python{xy}"


def _binary_plan(triple: str, xy: str) -> tuple[dict[str, str], list[tuple[str, list[str]]], dict[str, str]]:
    """Sources, zig cc steps ``(output, arguments)`` run in order in one directory, and the layout path (relative
    to ``python/``) of each output that ships."""
    nodot = xy.replace(".", "")
    platform = _platform(triple)
    if platform == "linux":
        lib = f"libpython{xy}.so.1.0"
        demo = f"_demo.cpython-{nodot}-{_multiarch(triple)}.so"
        sources = {"libpython.c": _unix_libpython_c(triple), "python.c": _UNIX_PYTHON_C, "demo.c": _UNIX_DEMO_C}
        steps = [
            (lib, ["-shared", "-fPIC", f"-Wl,-soname,{lib}", "-o", lib, "libpython.c"]),
            ("python", ["-o", "python", "python.c", lib, "-Wl,-rpath,$ORIGIN/../lib"]),
            (demo, ["-shared", "-fPIC", "-o", demo, "demo.c", lib, "-Wl,-rpath,/install/lib"]),
        ]
        ships = {lib: f"lib/{lib}", "python": f"bin/python{xy}", demo: f"lib/python{xy}/lib-dynload/{demo}"}
    elif platform == "macos":
        lib = f"libpython{xy}.dylib"
        demo = f"_demo.cpython-{nodot}-darwin.so"
        sources = {"libpython.c": _unix_libpython_c(triple), "python.c": _UNIX_PYTHON_C, "demo.c": _UNIX_DEMO_C}
        steps = [
            (lib, ["-shared", f"-Wl,-install_name,/install/lib/{lib}", "-o", lib, "libpython.c"]),
            ("python", ["-o", "python", "python.c", lib]),
            # zig's Mach-O linker cannot write MH_BUNDLE (no -bundle): the module is an MH_DYLIB, its undefined
            # symbols looked up at load time as in a PBS extension module.
            (demo, ["-shared", "-Wl,-undefined,dynamic_lookup", "-Wl,-rpath,@loader_path/../..",
                    f"-Wl,-install_name,{demo}", "-o", demo, "demo.c"]),
        ]
        ships = {lib: f"lib/{lib}", "python": f"bin/python{xy}", demo: f"lib/python{xy}/lib-dynload/{demo}"}
    else:
        dll = f"python{nodot}.dll"
        implib = f"python{nodot}.lib"
        sources = {"pythondll.c": _win_pythondll_c(triple), "python.c": _WIN_PYTHON_C, "pythonw.c": _WIN_PYTHONW_C,
                   "demo.c": _WIN_DEMO_C, "vcruntime.c": _WIN_VCRUNTIME_C}
        steps = [
            (dll, ["-shared", "-o", dll, "pythondll.c", "-lshell32", f"-Wl,--out-implib,{implib}"]),
            ("python.exe", ["-o", "python.exe", "python.c", implib]),
            ("pythonw.exe", ["-o", "pythonw.exe", "pythonw.c", implib, "-Wl,--subsystem,windows"]),
            ("_demo.pyd", ["-shared", "-o", "_demo.pyd", "demo.c", implib, "-Wl,--out-implib,_demo.lib"]),
            ("vcruntime140.dll", ["-shared", "-o", "vcruntime140.dll", "vcruntime.c",
                                  "-Wl,--out-implib,vcruntime140.lib"]),
        ]
        ships = {dll: dll, "python.exe": "python.exe", "pythonw.exe": "pythonw.exe", "_demo.pyd": "DLLs/_demo.pyd",
                 "vcruntime140.dll": "vcruntime140.dll"}
    return sources, steps, ships


def _build_binaries(build_dir: Path, triple: str, xy: str) -> dict[str, bytes]:
    """Compile (or take from the cache) ``triple``'s binaries: layout path -> content."""
    sources, steps, ships = _binary_plan(triple, xy)
    out = _cached_build(build_dir, triple, ZIG_TARGETS[triple], sources, steps)
    return {rel: (out / name).read_bytes() for name, rel in ships.items()}


_COMMON_FLAGS = ["-O2", "-g0", "-s"]


def _cached_build(build_dir: Path, label: str, zig_target: str, sources: dict[str, str],
                  steps: list[tuple[str, list[str]]]) -> Path:
    """Run ``steps`` (``zig cc -target <zig_target> <flags> <arguments>``) in a directory holding ``sources``,
    once per content: the directory ``<build_dir>/<label>-<hash>`` is reused while sources, arguments and the
    zig version stay the same. Returns that directory."""
    key_material = json.dumps({"zig": zig_version(), "target": zig_target, "flags": _COMMON_FLAGS,
                               "sources": sources, "steps": steps}, sort_keys=True)
    key = hashlib.sha256(key_material.encode()).hexdigest()[:20]
    final = build_dir / f"{label}-{key}"
    if (final / ".complete").is_file():
        return final
    build_dir.mkdir(parents=True, exist_ok=True)
    work = build_dir / f"tmp-{label}-{uuid.uuid4().hex[:12]}"
    work.mkdir()
    try:
        for name, text in sources.items():
            (work / name).write_text(text, encoding="utf-8")
        for output, arguments in steps:
            cmd = [sys.executable, "-m", "ziglang", "cc", "-target", zig_target, *_COMMON_FLAGS, *arguments]
            proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=_ZIG_TIMEOUT, check=False)
            if proc.returncode != 0 or not (work / output).is_file():
                raise RuntimeError(f"zig cc for {label} ({zig_target}) failed to build {output} "
                                   f"(exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        (work / ".complete").write_text(key_material, encoding="utf-8")
        try:
            work.rename(final)
        except OSError:  # built concurrently by someone else: theirs is as good
            if not (final / ".complete").is_file():
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return final


def _require_zig() -> None:
    if importlib.util.find_spec("ziglang") is None:
        raise ZigUnavailableError(f"the ziglang package is not installed for {sys.executable}")


@functools.lru_cache(maxsize=1)
def zig_version() -> str:
    """Version of the bundled zig (part of the build cache key). Raises :class:`ZigUnavailableError`."""
    _require_zig()
    proc = subprocess.run([sys.executable, "-m", "ziglang", "version"], capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        raise ZigUnavailableError(f"`python -m ziglang version` failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


# --------------------------------------------------------------------------------------------------------------
# Layout and archives


@dataclasses.dataclass(frozen=True)
class _Member:
    """One archive member relative to ``python/``: a directory (``data`` and ``link`` None), file or symlink."""

    rel: str
    data: bytes | None = None
    link: str | None = None
    mode: int = 0o755


def _layout(triple: str, version: str, binaries: dict[str, bytes]) -> list[_Member]:
    """Every member of ``triple``'s install_only tree (without the flavor marker), parents included."""
    xy = _xy(version)
    files: dict[str, tuple[bytes, int]] = {rel: (data, 0o755) for rel, data in binaries.items()}
    links: dict[str, str] = {}
    dirs: set[str] = set()

    def text(rel: str, content: str) -> None:
        files[rel] = (content.encode(), 0o644)

    stdlib_placeholder = "# Placeholder for the stand-in runtime of {triple}: {name}\n"
    if _platform(triple) == "windows":
        for name in ("os.py", "site.py"):
            text(f"Lib/{name}", stdlib_placeholder.format(triple=triple, name=name))
        dirs.add("Lib/site-packages")
        text("include/Python.h", f"/* Placeholder Python.h of the stand-in runtime ({triple}) */\n")
    else:
        stdlib = f"lib/python{xy}"
        links["bin/python3"] = f"python{xy}"
        links["bin/python"] = f"python{xy}"
        for name in ("os.py", "site.py"):
            text(f"{stdlib}/{name}", stdlib_placeholder.format(triple=triple, name=name))
        dirs.add(f"{stdlib}/site-packages")
        text(f"include/python{xy}/Python.h", f"/* Placeholder Python.h of the stand-in runtime ({triple}) */\n")
        if _platform(triple) == "linux":
            multiarch = _multiarch(triple)
            sysconfigdata = f"_sysconfigdata__linux_{multiarch}.py"
            variables = _sysconfig_vars(triple, version, f"-{multiarch}", multiarch, f"libpython{xy}.so.1.0")
        else:
            sysconfigdata = "_sysconfigdata__darwin_darwin.py"
            variables = _sysconfig_vars(triple, version, "-darwin", "darwin", f"libpython{xy}.dylib")
        text(f"{stdlib}/{sysconfigdata}", "# system configuration generated and used by the sysconfig module\n"
             f"build_time_vars = {json.dumps(variables, indent=1, sort_keys=True)}\n")
        text(f"lib/pkgconfig/python-{xy}.pc", _pkgconfig(xy))

    members: dict[str, _Member] = {}
    for rel in [*files, *links, *dirs]:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            members.setdefault(parent, _Member(parent))
    for rel in dirs:
        members[rel] = _Member(rel)
    for rel, (data, mode) in files.items():
        members[rel] = _Member(rel, data=data, mode=mode)
    for rel, target in links.items():
        members[rel] = _Member(rel, link=target, mode=0o777)
    return [members[rel] for rel in sorted(members)]


def _sysconfig_vars(triple: str, version: str, soabi_platform: str, multiarch: str, ldlibrary: str) -> dict:
    xy = _xy(version)
    nodot = xy.replace(".", "")
    soabi = f"cpython-{nodot}{soabi_platform}"
    return {
        "ABIFLAGS": "",
        "CC": "clang",
        "CXX": "clang++",
        "EXE": "",
        "EXT_SUFFIX": f".{soabi}.so",
        "HOST_GNU_TYPE": triple,
        "INCLUDEPY": f"/install/include/python{xy}",
        "LDLIBRARY": ldlibrary,
        "LDSHARED": "clang -shared" if _platform(triple) == "linux" else "clang -bundle -undefined dynamic_lookup",
        "LIBDEST": f"/install/lib/python{xy}",
        "LIBDIR": "/install/lib",
        "LIBPL": f"/install/lib/python{xy}/config-{xy}-{multiarch}",
        "MACHDEP": "linux" if _platform(triple) == "linux" else "darwin",
        "MULTIARCH": multiarch,
        "SOABI": soabi,
        "VERSION": xy,
        "exec_prefix": "/install",
        "prefix": "/install",
        "py_version": version,
        "py_version_nodot": nodot,
        "py_version_short": xy,
    }


def _pkgconfig(xy: str) -> str:
    return ("prefix=/install\nexec_prefix=${prefix}\nlibdir=${exec_prefix}/lib\nincludedir=${prefix}/include\n\n"
            f"Name: Python\nDescription: Build a C extension for Python\nVersion: {xy}\n"
            f"Libs: -L${{libdir}}\nCflags: -I${{includedir}}/python{xy}\n")


def _write_tar_gz(dest: Path, tree: Iterable[_Member], flavor: str) -> None:
    """Write ``tree`` plus the flavor marker under ``python/``: sorted, owner root, fixed mtimes, no gzip time."""
    members = {member.rel: member for member in tree}
    for parent in ("share", "share/hatch-pbs-fixture"):
        members.setdefault(parent, _Member(parent))
    members[_MARKER] = _Member(_MARKER, data=f"{flavor}\n".encode(), mode=0o644)
    buffer = io.BytesIO()
    with (gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=_GZIP_LEVEL, mtime=0) as gz,
          tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar):
        for member in [_Member("")] + [members[rel] for rel in sorted(members)]:
            info = tarfile.TarInfo(f"python/{member.rel}".rstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = _DIR_MTIME
            info.mode = member.mode
            if member.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, member.link
                tar.addfile(info)
            elif member.data is not None:
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
            else:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
    _write_atomic(dest, buffer.getvalue())


def _asset_name(version: str, tag: str, triple: str, flavor: str) -> str:
    return f"cpython-{version}+{tag}-{triple}-{flavor}.tar.gz"


# --------------------------------------------------------------------------------------------------------------
# Files


def _link_or_copy(source: Path, dest: Path) -> None:
    """Make ``dest`` a hard link of ``source`` (a copy across file systems), replacing what was there."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copy2(source, tmp)
    tmp.replace(dest)


def _write_atomic(dest: Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` unless it already holds exactly that (keeps mtimes and hashes stable)."""
    try:
        if dest.stat().st_size == len(data) and dest.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    tmp.replace(dest)


def _read_sums(path: Path) -> dict[str, str]:
    """``SHA256SUMS`` as file name -> sha256 (a missing file is an empty catalogue)."""
    if not path.is_file():
        return {}
    catalogue = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            catalogue[name.strip()] = digest
    return catalogue


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
