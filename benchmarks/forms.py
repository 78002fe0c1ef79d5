"""Archives, runtime wheels and PyApp binaries of example_project compared: build time, size, first and later start.

Usage (from the repository root, after ``python3 -m pip install hatch .``)::

    python3 benchmarks/forms.py --local-mirror     # no GitHub: a PBS-layout release of this interpreter
    python3 benchmarks/forms.py --mirror URL       # a python-build-standalone mirror

- archive: ``hatch build -t app --hooks-only`` (warm cache); first start = unpacking the archive into a fresh
  directory plus ``bin/pbs-demo --version``; later start = ``--version`` again (median).
- runtime wheel: ``hatch build -t wheel`` with ``wheel = true``; first start = ``pip install`` of the wheel into a fresh
  venv of another Python of this machine (when there is one) plus the script's ``--version``; later start = median.
- PyApp binary: a real one needs cargo with crates.io (not reachable where these numbers were taken); what it embeds
  is the archive above, which PyApp unpacks at first start: first start is estimated as unpacking that archive (in
  Python here, in Rust by PyApp) plus a start; later starts are the archive's plus PyApp's own exec (not measured).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_example as example  # hatch, the hatch-pbs wheel, the local mirror, a fresh build environment

WORK = example.WORK / "forms"
WHEEL_TABLE = '\n[tool.hatch.build.targets.wheel.hooks.pbs]\npython-version = "{version}"\nwheel = true\n'


def _timed(command: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - started


def _median_start(command: list[str], runs: int) -> float:
    return statistics.median(_timed(command) for _ in range(runs))


def _other_python() -> str:
    """A CPython of another minor version than this one (pyenv's), else this interpreter."""
    mine = f"{sys.version_info.major}.{sys.version_info.minor}"
    for minor in ("3.12", "3.13", "3.10"):
        found = sorted(glob.glob(f"/root/.pyenv/versions/{minor}.*/bin/python{minor}")) or (
            [shutil.which(f"python{minor}")] if shutil.which(f"python{minor}") else [])
        if found and minor != mine:
            return found[-1]
    return sys.executable


def _build(hatch: list[str], project: Path, env: dict[str, str], *arguments: str) -> float:
    subprocess.run([*hatch, "build", *arguments], cwd=project, env=env, check=True, capture_output=True)  # warm
    shutil.rmtree(project / "dist", ignore_errors=True)
    return _timed([*hatch, "build", *arguments], cwd=project, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    example.add_mirror_options(parser)
    parser.add_argument("--starts", type=int, default=20, help="start-ups per median (default 20)")
    options = parser.parse_args()
    hatch = example._hatch()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    example._build_hatch_pbs_wheel(WORK / "wheels")
    project, mirror = WORK / "project", options.mirror
    if options.local_mirror:
        project, mirror = example._local_mirror_project()
    else:  # a copy: the wheel table is added to its pyproject.toml
        shutil.copytree(example.REPO / "example_project", project, ignore=shutil.ignore_patterns("dist"))
    version = next(line.split('"')[1] for line in (project / "pyproject.toml").read_text().splitlines()
                   if line.startswith("python-version"))
    with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write(WHEEL_TABLE.format(version=version))
    env = dict(os.environ, UV_FIND_LINKS=str(WORK / "wheels"), HATCH_PBS_CACHE_DIR=str(WORK / "cache"),
               HATCH_DATA_DIR=str(WORK / "hatch-data"), UV_CACHE_DIR=str(WORK / "uv-cache"))
    if mirror:
        env["HATCH_PBS_MIRROR"] = mirror
    example.fresh_build_environment(env)

    rows = []
    seconds = _build(hatch, project, env, "-t", "app", "--hooks-only")
    (archive,) = (project / "dist" / "app").glob("*.tar.gz")
    unpack_started = time.perf_counter()
    with tarfile.open(archive) as bundle:
        bundle.extractall(WORK / "unpacked", filter="tar")
    unpacking = time.perf_counter() - unpack_started
    launcher = [str(next((WORK / "unpacked").iterdir()) / "bin" / "pbs-demo"), "--version"]
    first = unpacking + _timed(launcher)
    later = _median_start(launcher, options.starts)
    rows.append(("archive (tar.gz)", seconds, archive.stat().st_size, first, later))
    rows.append(("PyApp binary (estimate: embeds the archive)", float("nan"), archive.stat().st_size, first, later))

    seconds = _build(hatch, project, env, "-t", "wheel")
    (wheel,) = (project / "dist").glob("*.whl")
    venv = WORK / "venv"
    python = _other_python()
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    install = _timed([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--quiet", str(wheel)])
    script = [str(venv / "bin" / "pbs-demo"), "--version"]
    first = install + _timed(script)
    later = _median_start(script, options.starts)
    rows.append((f"runtime wheel (pip install into a venv of {Path(python).name})", seconds, wheel.stat().st_size,
                 first, later))

    print("| form | build s (warm) | size MB | first start s (install/unpack + run) | later start ms |")
    print("|---|---|---|---|---|")
    for form, build, size, first_start, later_start in rows:
        build_text = "n/a" if build != build else f"{build:.2f}"
        print(f"| {form} | {build_text} | {size / 1e6:.1f} | {first_start:.2f} | {later_start * 1000:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
