"""Build example_project twice and show that the warm rebuild opens no network connection and compiles nothing.

Usage (from the repository root, in an environment with hatch-pbs and its test dependencies installed)::

    python3 benchmarks/warm_rebuild.py             # prints a report; also written to .build/warm-rebuild/report.md
    python3 benchmarks/warm_rebuild.py --runs 3    # one cold build, then two warm ones

The runtime comes from a PBS-layout release of this interpreter (as the tests make it) served by the tests'
loopback HTTP server, which records every request. The dependencies are wheels downloaded once into
``.build/warm-rebuild/wheelhouse`` (the only network use, before the first build; skipped when present), offered
with ``UV_FIND_LINKS`` and ``UV_NO_INDEX=1``; to example_project's rich and orjson the script adds ``hostbuilt``, a
source-only distribution (tests/floor_support.py) whose every build appends a line to a log file, with
``build-from-source = true``. Each build is ``python -m hatchling build -t app --hooks-only`` (no Hatch build
environment, so nothing is installed from an index), with hatch-pbs's and uv's caches kept between builds.

A warm build runs with ``UV_OFFLINE=1`` and, where ``unshare -n`` works (Linux, root or user namespaces), in a
network namespace of its own without any interface, not even loopback: any connection attempt fails the build.
Reported per build: wall time, the mirror's request count, the sdist builds, the bytecode files compiled and
reused, and hatch-pbs's stage seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".build" / "warm-rebuild"


@dataclass(frozen=True)
class Run:
    kind: str
    seconds: float
    mirror_requests: int
    sdist_builds: int
    bytecode: str
    stages: str
    isolated: bool


def _network_namespace() -> list[str]:
    """``["unshare", "-n"]`` when a command can run without any network interface here, else ``[]``."""
    if not shutil.which("unshare"):
        return []
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return ["unshare", "-n"] if probe.returncode == 0 else []


def _wheelhouse() -> Path:
    directory = WORK / "wheelhouse"
    if not any(directory.glob("orjson-*.whl")):
        directory.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--only-binary=:all:", "--dest", str(directory), "rich", "orjson"], check=True)
    return directory


def _project(python_version: str, links: Path) -> Path:
    from e2e_support import copy_example_project
    from floor_support import build_hostbuilt_sdist

    project = WORK / "example_project"
    shutil.rmtree(project, ignore_errors=True)
    copy_example_project(project, hook_table=f'python-version = "{python_version}"\nbuild-from-source = true')
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.9",', '"orjson>=3.9",\n  "hostbuilt",'))
    sdist_work = WORK / "sdist-project"
    shutil.rmtree(sdist_work, ignore_errors=True)
    sdist_work.mkdir(parents=True)
    (links / "hostbuilt-1.0.tar.gz").unlink(missing_ok=True)
    build_hostbuilt_sdist(sdist_work, links)
    return project


def _build(project: Path, env: dict[str, str], prefix: list[str]) -> tuple[float, str]:
    shutil.rmtree(project / "dist", ignore_errors=True)
    started = time.perf_counter()
    result = subprocess.run([*prefix, sys.executable, "-m", "hatchling", "build", "-t", "app", "--hooks-only"],
                            cwd=project, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"the build failed:\n{result.stdout}{result.stderr}")
    return seconds, result.stdout + result.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="number of builds; the first is cold (default 2)")
    options = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from pbs_release import ReleaseServer, build_release

    WORK.mkdir(parents=True, exist_ok=True)
    release = build_release(WORK / "local-mirror")
    links = _wheelhouse()
    project = _project(release.python_version, links)
    for cache in ("cache", "uv-cache"):
        shutil.rmtree(WORK / cache, ignore_errors=True)
    log = WORK / "sdist-builds.log"
    log.unlink(missing_ok=True)
    isolation = _network_namespace()
    runs: list[Run] = []
    with ReleaseServer(release.root) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("HATCH_PBS_", "UV_"))}
        env.update(HATCH_PBS_MIRROR=server.base_url, HATCH_PBS_CACHE_DIR=str(WORK / "cache"),
                   UV_CACHE_DIR=str(WORK / "uv-cache"), UV_FIND_LINKS=str(links), UV_NO_INDEX="1",
                   HOSTBUILT_BUILD_LOG=str(log))
        for number in range(1, options.runs + 1):
            warm = number > 1
            before, builds_before = len(server.requests), _lines(log)
            seconds, output = _build(project, {**env, "UV_OFFLINE": "1"} if warm else env,
                                     isolation if warm else [])
            flat = " ".join(output.split())
            bytecode = re.search(r"bytecode: (\d+ files compiled, \d+ reused)", flat)
            stages = re.search(r"stage seconds: ((?:\w+=[\d.]+ ?)+)", flat)
            runs.append(Run("warm" if warm else "cold", seconds, len(server.requests) - before,
                            _lines(log) - builds_before, bytecode.group(1) if bytecode else "?",
                            stages.group(1).strip() if stages else "?", warm and bool(isolation)))
    report = _report(runs, release.python_version)
    (WORK / "report.md").write_text(report, encoding="utf-8")
    print(report)
    return 0


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _report(runs: list[Run], python_version: str) -> str:
    lines = [f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs; CPython {python_version} (PBS-layout "
             f"repackaging of this interpreter), served over loopback.",
             "- Project: example_project (rich, orjson) plus the source-only `hostbuilt` with "
             "`build-from-source = true`.", "",
             "| build | wall s | mirror requests | sdist builds | bytecode | no network interface |",
             "|---|---|---|---|---|---|"]
    for run in runs:
        lines.append(f"| {run.kind} | {run.seconds:.2f} | {run.mirror_requests} | {run.sdist_builds} | "
                     f"{run.bytecode} | {'yes (unshare -n)' if run.isolated else 'no'} |")
    lines += ["", "Stage seconds (hatch-pbs's own report):", ""]
    lines += [f"- {run.kind}: {run.stages}" for run in runs]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
