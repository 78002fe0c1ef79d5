"""Build example_project's release archive with ``hatch build -t app --hooks-only`` and time it.

Usage (from the repository root)::

    python3 benchmarks/build_example.py                 # real python-build-standalone release from GitHub
    python3 benchmarks/build_example.py --local-mirror  # no GitHub: a PBS-layout release of this interpreter
    python3 benchmarks/build_example.py --mirror URL    # any mirror (https://..., file://...)

Run 1 starts with an empty hatch-pbs cache (cold); later runs reuse it (warm). Hatch's build environment and uv's
cache live in ``.build/`` and start afresh, so the build runs this work tree's hatch-pbs. Prints wall time, archive
size and
unpacked size per run. hatch-pbs itself is built as a wheel and offered to Hatch's build environment through
``UV_FIND_LINKS`` (it is not on PyPI). Needs ``hatch`` and hatch-pbs itself, whose dependencies
``--local-mirror`` uses (``python3 -m pip install hatch .`` from the repository root).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".build"


def _hatch() -> list[str]:
    if shutil.which("hatch"):
        return ["hatch"]
    probe = subprocess.run([sys.executable, "-m", "hatch", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "hatch"]
    sys.exit("hatch is not installed: python3 -m pip install hatch .")


def _build_hatch_pbs_wheel(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(directory),
                    str(REPO)], check=True)


def fresh_build_environment(env: dict[str, str]) -> None:
    """Forget Hatch's build environment (``HATCH_DATA_DIR``) and uv's cached hatch-pbs wheel (``UV_CACHE_DIR``).

    uv caches a find-links wheel by name and version, and Hatch keeps its build environment between runs: without
    this, a build could silently run an older hatch-pbs 0.1.0 than the one just built from this work tree."""
    shutil.rmtree(env["HATCH_DATA_DIR"], ignore_errors=True)
    subprocess.run([sys.executable, "-m", "uv", "cache", "clean", "hatch-pbs", "--cache-dir", env["UV_CACHE_DIR"]],
                   check=True, capture_output=True)


def _local_mirror_project() -> tuple[Path, str]:
    """A PBS-layout release of the running interpreter (as the tests make) and a copy of example_project pinned to
    its Python version."""
    sys.path.insert(0, str(REPO / "tests"))
    from e2e_support import copy_example_project
    from pbs_release import build_release

    release = build_release(WORK / "local-mirror")
    project = WORK / "example_project"
    shutil.rmtree(project, ignore_errors=True)
    copy_example_project(project, hook_table=f'python-version = "{release.python_version}"')
    return project, release.root.as_uri()


def _unpacked_size(archive: Path) -> int:
    with tarfile.open(archive) as tar:
        return sum(member.size for member in tar.getmembers() if member.isfile())


def add_mirror_options(parser: argparse.ArgumentParser) -> None:
    """``--mirror URL`` and ``--local-mirror``, shared by the benchmarks."""
    parser.add_argument("--mirror", help="python-build-standalone mirror (default: $HATCH_PBS_MIRROR or GitHub)")
    parser.add_argument("--local-mirror", action="store_true", help="serve a PBS-layout release of this interpreter")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_mirror_options(parser)
    parser.add_argument("--runs", type=int, default=3, help="number of builds; the first is cold (default 3)")
    options = parser.parse_args()

    hatch = _hatch()
    WORK.mkdir(exist_ok=True)
    wheels = WORK / "wheels"
    _build_hatch_pbs_wheel(wheels)
    project, mirror = REPO / "example_project", options.mirror
    if options.local_mirror:
        project, mirror = _local_mirror_project()
    cache = WORK / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = dict(os.environ, UV_FIND_LINKS=str(wheels), HATCH_PBS_CACHE_DIR=str(cache),
               HATCH_DATA_DIR=str(WORK / "hatch-data"), UV_CACHE_DIR=str(WORK / "uv-cache"))
    fresh_build_environment(env)
    if mirror:
        env["HATCH_PBS_MIRROR"] = mirror

    print(f"{'run':<6}{'cache':<7}{'wall s':>8}{'archive MB':>12}{'unpacked MB':>13}  archive")
    for run in range(1, options.runs + 1):
        started = time.perf_counter()
        result = subprocess.run([*hatch, "build", "-t", "app", "--hooks-only"], cwd=project, env=env,
                                capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            return result.returncode
        for archive in sorted((project / "dist" / "app").glob("*.tar.gz")):
            print(f"{run:<6}{'cold' if run == 1 else 'warm':<7}{seconds:>8.2f}{archive.stat().st_size / 1e6:>12.1f}"
                  f"{_unpacked_size(archive) / 1e6:>13.1f}  {archive.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
