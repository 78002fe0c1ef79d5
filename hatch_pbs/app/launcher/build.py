"""Rebuild the prebuilt Windows launchers from ``launcher.c`` with zig (the ``ziglang`` package from PyPI).

Usage::

    python hatch_pbs/app/launcher/build.py [OUTPUT_DIR] [--zig ZIG]

writes ``launcher-<arch>-<console|gui>.exe`` for every architecture in :data:`ARCHITECTURES` into ``OUTPUT_DIR``
(default: this directory, i.e. refresh the committed binaries). ``--zig`` names a zig executable; by default
``python -m ziglang`` of the running interpreter is used. The build is reproducible: the same zig version gives
byte-identical files on any build machine (no debug information, lld's ``/Brepro`` hash instead of a link time in
the PE header, baseline CPU). The committed files were built with zig :data:`ZIG_VERSION`.

Also importable: :func:`build_all` is what ``tests/test_windows_launcher.py`` runs to check the committed files.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "launcher.c"

#: zig version the committed binaries were built with (``python -m ziglang version``).
ZIG_VERSION = "0.17.1"

#: hatch-pbs architecture name -> zig target architecture.
ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "aarch64", "i686": "x86"}

VARIANTS = ("console", "gui")


def file_name(arch: str, variant: str) -> str:
    """``launcher-<arch>-<variant>.exe``."""
    return f"launcher-{arch}-{variant}.exe"


def zig_command(zig: str | None = None) -> list[str]:
    """The command that runs zig: ``[zig]`` or ``[sys.executable, "-m", "ziglang"]``."""
    return [zig] if zig else [sys.executable, "-m", "ziglang"]


def zig_version(zig: str | None = None) -> str:
    """``zig version``."""
    return subprocess.run([*zig_command(zig), "version"], check=True, capture_output=True, text=True).stdout.strip()


def mingw_headers(zig: str | None = None) -> Path:
    """zig's MinGW-w64 header directory (``<lib_dir>/libc/include/any-windows-any``).

    ``-nostdlib`` drops zig's libc include paths along with its libraries, so the Win32 headers are added back
    explicitly.
    """
    env = subprocess.run([*zig_command(zig), "env"], check=True, capture_output=True, text=True).stdout
    # zig >= 0.14 prints ZON (`.lib_dir = "..."`), older versions JSON (`"lib_dir": "..."`).
    match = re.search(r'\.?"?lib_dir"?\s*[=:]\s*"((?:[^"\\]|\\.)*)"', env)
    if not match:
        raise RuntimeError(f"cannot find lib_dir in `zig env` output:\n{env}")
    lib_dir = re.sub(r"\\(.)", r"\1", match.group(1))  # \\ and \" escapes (Windows paths)
    # zig may print lib_dir relative to the working directory (seen inside tox environments): anchor it here,
    # because the compiler runs in the output directory.
    headers = Path(lib_dir).resolve() / "libc" / "include" / "any-windows-any"
    if not (headers / "windows.h").is_file():
        raise RuntimeError(f"zig has no MinGW-w64 headers in {headers}")
    return headers


def compile_args(arch: str, variant: str, headers: Path, output: Path) -> list[str]:
    """The ``zig cc`` arguments that build one launcher variant into ``output``."""
    args = [
        "cc",
        "-target", f"{ARCHITECTURES[arch]}-windows-gnu",
        "-mcpu=baseline",
        "-Os",
        "-s",
        "-nostdlib",
        "-ffreestanding",
        "-fno-stack-protector",
        "-isystem", str(headers),
        "-Wl,--entry,hpbs_entry",
    ]
    if variant == "gui":
        args += ["-DHPBS_GUI", "-Wl,--subsystem,windows"]
    else:
        args += ["-Wl,--subsystem,console"]
    args += [str(SOURCE), "-lkernel32"]
    if variant == "gui":
        args += ["-luser32"]
    args += ["-o", str(output)]
    return args


def build_all(output_dir: Path, zig: str | None = None) -> list[Path]:
    """Build every launcher into ``output_dir`` (created if needed); return their paths.

    Raises:
        subprocess.CalledProcessError: zig failed (its output is on stderr).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    headers = mingw_headers(zig)
    built = []
    for arch in ARCHITECTURES:
        for variant in VARIANTS:
            output = output_dir / file_name(arch, variant)
            subprocess.run([*zig_command(zig), *compile_args(arch, variant, headers, output)], check=True,
                           cwd=output_dir)
            # lld-link may leave an import library or symbol file beside the output: keep only the .exe.
            for extra in (output.with_suffix(".lib"), output.with_suffix(".pdb")):
                extra.unlink(missing_ok=True)
            built.append(output)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", nargs="?", type=Path, default=HERE)
    parser.add_argument("--zig", help="zig executable (default: python -m ziglang)")
    args = parser.parse_args(argv)
    version = zig_version(args.zig)
    if version != ZIG_VERSION:
        print(f"warning: zig {version}, the committed launchers were built with zig {ZIG_VERSION}: "
              "the bytes may differ", file=sys.stderr)
    for path in build_all(args.output_dir, args.zig):
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
