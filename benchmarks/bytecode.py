"""Time hatch-pbs's byte-compiling of a standard library, and the share of it that makes the bytecode reproducible.

Usage (from the repository root, in an environment with hatch-pbs installed)::

    python3 benchmarks/bytecode.py                  # this interpreter's standard library, 3 runs
    python3 benchmarks/bytecode.py --runs 5 --python /path/to/python3.10

Each run copies the interpreter's standard library (without ``site-packages``, ``test`` and ``__pycache__``) to a
temporary directory and compiles it with :func:`hatch_pbs.bytecode.compiler.compile_bytecode` and no bytecode cache, as
a
cold build does (a fresh worker process with ``PYTHONHASHSEED=0``, in parallel from 48 files). Then, separately, it
times :func:`hatch_pbs.bytecode.stable_marshal.normalize` over the ``.pyc`` files that run wrote: the share of the
compiling spent on keeping ``FLAG_REF`` only where a reference needs it. Reported: files, compile seconds (median,
min, max), the normalising seconds and the megabytes of bytecode. Timings depend on the machine; nothing asserts
them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hatch_pbs.bytecode.compiler import compile_bytecode
from hatch_pbs.bytecode.stable_marshal import PYC_HEADER_SIZE, normalize


def _stdlib_of(python: Path) -> Path:
    return Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())


def _copy_stdlib(stdlib: Path, destination: Path) -> Path:
    ignore = shutil.ignore_patterns("site-packages", "test", "tests", "__pycache__", "idlelib", "*.so")
    return Path(shutil.copytree(stdlib, destination, ignore=ignore, symlinks=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--python", type=Path, default=Path(sys.executable),
                        help="the interpreter whose standard library is compiled (default: this one)")
    arguments = parser.parse_args()
    stdlib = _stdlib_of(arguments.python)
    seconds, normalizing, files, size = [], [], 0, 0
    for _ in range(arguments.runs):
        with tempfile.TemporaryDirectory() as work:
            tree = _copy_stdlib(stdlib, Path(work) / "lib")
            started = time.perf_counter()
            counts = compile_bytecode(arguments.python, tree, strict=False)
            seconds.append(time.perf_counter() - started)
            files = counts["compiled"]
            compiled = [path.read_bytes() for path in tree.rglob("*.pyc")]
            size = sum(len(data) for data in compiled)
            if arguments.python.resolve() == Path(sys.executable).resolve():
                started = time.perf_counter()
                for data in compiled:
                    normalize(data[PYC_HEADER_SIZE:])
                normalizing.append(time.perf_counter() - started)
    print(f"interpreter: {arguments.python} ({stdlib})")
    print(f"files compiled: {files}, bytecode: {size / 1e6:.1f} MB")
    print(f"compile seconds: median {statistics.median(seconds):.2f}, min {min(seconds):.2f}, "
          f"max {max(seconds):.2f} ({arguments.runs} runs)")
    if normalizing:
        print(f"of which normalising the marshal references (one process, re-measured): median "
              f"{statistics.median(normalizing):.2f} s of CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
