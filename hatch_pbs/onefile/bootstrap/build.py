"""Rebuild the prebuilt onefile bootstraps from ``bootstrap.zig`` with zig (the ``ziglang`` package from PyPI).

Usage::

    python hatch_pbs/onefile/bootstrap/build.py [OUTPUT_DIR] [--zig ZIG]

writes :func:`file_name` for every target triple in :data:`TARGETS` (and the GUI variants for Windows) into
``OUTPUT_DIR`` (default: this directory, i.e. refresh the committed binaries). ``--zig`` names a zig executable; by
default ``python -m ziglang`` of the running interpreter is used. The build is reproducible: the same zig version
gives byte-identical files on any build machine (``-fstrip``: no debug information or paths, no build id,
``-mcpu=baseline``). The committed files were built with zig :data:`ZIG_VERSION`.

Also importable: :func:`build_all` is what ``tests/integration/test_onefile.py`` runs to check the committed files.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "bootstrap.zig"
#: Root source of the Windows GUI variant (declares ``hpbs_gui`` and reuses ``bootstrap.zig``'s ``main``).
GUI_SOURCE = HERE / "bootstrap_gui.zig"

#: zig version the committed binaries were built with (``python -m ziglang version``).
ZIG_VERSION = "0.17.1"

#: hatch-pbs target triple -> zig target. Linux builds are static and libc-free (one binary serves gnu and musl
#: and any glibc); macOS ones are signed ad hoc by zig's linker.
TARGETS = {
    "x86_64-unknown-linux-gnu": "x86_64-linux-musl",
    "aarch64-unknown-linux-gnu": "aarch64-linux-musl",
    "x86_64-unknown-linux-musl": "x86_64-linux-musl",
    "aarch64-unknown-linux-musl": "aarch64-linux-musl",
    "x86_64-apple-darwin": "x86_64-macos",
    "aarch64-apple-darwin": "aarch64-macos",
    "x86_64-pc-windows-msvc": "x86_64-windows-gnu",
    "aarch64-pc-windows-msvc": "aarch64-windows-gnu",
    "i686-pc-windows-msvc": "x86-windows-gnu",
}


def variants(triple: str) -> tuple[bool, ...]:
    """``(False, True)`` (console, GUI) for Windows triples, ``(False,)`` otherwise."""
    return (False, True) if "windows" in triple else (False,)


def file_name(triple: str, gui: bool = False) -> str:
    """``bootstrap-<triple>[-gui].exe`` for Windows, ``bootstrap-<triple>`` otherwise."""
    if "windows" in triple:
        return f"bootstrap-{triple}{'-gui' if gui else ''}.exe"
    return f"bootstrap-{triple}"


def zig_command(zig: str | None = None) -> list[str]:
    """The command that runs zig: ``[zig]`` or ``[sys.executable, "-m", "ziglang"]``."""
    return [zig] if zig else [sys.executable, "-m", "ziglang"]


def zig_version(zig: str | None = None) -> str:
    """``zig version``."""
    return subprocess.run([*zig_command(zig), "version"], check=True, capture_output=True, text=True).stdout.strip()


def compile_args(triple: str, gui: bool, output: Path) -> list[str]:
    """The ``zig build-exe`` arguments that build one bootstrap into ``output``."""
    args = [
        "build-exe", str(GUI_SOURCE if gui else SOURCE),
        "-target", TARGETS[triple],
        "-mcpu=baseline",
        "-OReleaseSmall",
        "-fstrip",
        "-fsingle-threaded",
        "--build-id=none",
        "--name", output.stem,
    ]
    if "windows" in triple:
        args += ["--subsystem", "windows" if gui else "console"]
    args += [f"-femit-bin={output}"]
    return args


def build_all(output_dir: Path, zig: str | None = None) -> list[Path]:
    """Build every bootstrap into ``output_dir`` (created if needed); return their paths.

    Raises:
        subprocess.CalledProcessError: zig failed (its output is on stderr).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    built = []
    for triple in TARGETS:
        for gui in variants(triple):
            output = output_dir / file_name(triple, gui)
            subprocess.run([*zig_command(zig), *compile_args(triple, gui, output)], check=True, cwd=output_dir)
            # The linker may leave a symbol file beside the output: keep only the program.
            for extra in (output.with_suffix(".pdb"), output.with_suffix(".lib"), output.with_suffix(".o")):
                if extra != output:
                    extra.unlink(missing_ok=True)
            built.append(output)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("output_dir", nargs="?", type=Path, default=HERE)
    parser.add_argument("--zig", help="zig executable (default: python -m ziglang)")
    args = parser.parse_args(argv)
    version = zig_version(args.zig)
    if version != ZIG_VERSION:
        print(f"warning: zig {version}, the committed bootstraps were built with zig {ZIG_VERSION}: "
              "the bytes may differ", file=sys.stderr)
    for path in build_all(args.output_dir, args.zig):
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
