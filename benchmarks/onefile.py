"""Single-file executables of example_project: hatch-pbs onefile vs PyInstaller --onefile, and PyApp by estimate.

Usage (from the repository root, after ``python3 -m pip install hatch .``; PyPI must be reachable)::

    python3 benchmarks/onefile.py                  # no GitHub: a PBS-layout release of this interpreter
    python3 benchmarks/onefile.py --mirror URL     # a python-build-standalone mirror instead
    python3 benchmarks/onefile.py --runs 20 --work DIR

Measured on this machine, for ``pbs-demo --version`` (``--runs`` start-ups each, interleaved round robin; median
and min in ms), every start-up in a clean environment (``PATH=/usr/bin:/bin``, no pyenv shims, no ``PYTHON*`` or
``VIRTUAL_ENV`` variables):

- hatch-pbs onefile: example_project built with ``hatch build -t app --hooks-only``, ``onefile = true`` and
  ``archive-format = "tar.zst"`` (the payload is then the archive as is) for the host triple; first start =
  an empty ``HATCH_PBS_ONEFILE_CACHE`` (the bootstrap extracts the payload), later start = the cache warm;
- PyInstaller ``--onefile`` (pinned :data:`PYINSTALLER_VERSION`, in its own venv under the work directory, made
  with this interpreter, which must have a shared libpython) of the same code and the same dependency versions (read
  from the artifact's manifest): it extracts itself into a new ``_MEI*`` directory at every start, so first start =
  an empty ``TMPDIR``, later start = the same ``TMPDIR`` again (nothing there is reused);
- baseline: the archive's own launcher ``bin/pbs-demo`` in the unpacked artifact;
- PyApp, estimated (cargo cannot reach crates.io here, so no PyApp binary is built): its first start unpacks the
  embedded python-build-standalone distribution, creates a virtual environment and pip-installs the project and its
  dependencies (from PyPI; here from a local wheelhouse, so no download is counted), then runs it; later starts
  exec the installed environment's Python. Estimated as the sum of those steps measured here with the same
  ``install_only`` asset the hatch-pbs build used (unpacking with GNU ``tar -xzf``, ``python -m venv
  --without-pip``, the distribution's pip with ``--python <venv>``, or ``uv pip install`` for ``PYAPP_UV_ENABLED``),
  and later start as the venv's ``pbs-demo`` plus the exec overhead of a small static launcher (hatch-pbs onefile's
  later start minus the archive launcher's, minima). Size: the distribution asset plus the project's wheel, without
  PyApp's own program.

Prints a Markdown table; also written to ``<work>/report.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_example as example  # noqa: E402  hatch, the hatch-pbs wheel, a fresh build environment

REPO = example.REPO
sys.path.insert(0, str(REPO / "tests"))
from e2e_support import copy_example_project  # noqa: E402
from pbs_release import build_release  # noqa: E402

PYINSTALLER_VERSION = "6.22.3"
HOST_TRIPLE = "x86_64-unknown-linux-gnu"
SCRIPT, VERSION, ENTRY_POINT = "pbs-demo", "1.0.0", "pbs_demo.cli:main"
ARGUMENTS = ["--version"]
CLEAN_PATH = "/usr/bin:/bin"
HOOK_TABLE = 'python-version = "{version}"\narchive-format = "tar.zst"\ntargets = ["{triple}"]\nonefile = true'


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="start-ups per measurement (default 20)")
    parser.add_argument("--work", type=Path, default=REPO / ".build" / "onefile", help="work directory")
    parser.add_argument("--mirror", help="python-build-standalone mirror (default: a PBS-layout release of this "
                                         "interpreter, served from the work directory)")
    return parser.parse_args()


def run(command: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False,
                            **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """The start-up environment: no pyenv shims on PATH, no interpreter variables; ``extra`` added."""
    return {"PATH": CLEAN_PATH, "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8", **extra}


# --------------------------------------------------------------------------------------------------------------
# Building the three executables


def prepare_project(work: Path, mirror: str | None) -> tuple[Path, str]:
    """A copy of example_project building a tar.zst for the host triple, and the mirror URL to build it from."""
    if mirror:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
    else:
        release = build_release(work / "release")
        version, mirror = release.python_version, release.root.as_uri()
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    copy_example_project(project, hook_table=HOOK_TABLE.format(version=version, triple=HOST_TRIPLE))
    return project, mirror


def build_artifact(work: Path, project: Path, mirror: str) -> tuple[Path, Path]:
    """``hatch build -t app --hooks-only`` (as the other benchmarks run it); the tar.zst and hatch-pbs's cache."""
    example._build_hatch_pbs_wheel(work / "wheels")
    cache = work / "cache"
    env = dict(os.environ, UV_FIND_LINKS=str(work / "wheels"), HATCH_PBS_CACHE_DIR=str(cache),
               HATCH_DATA_DIR=str(work / "hatch-data"), UV_CACHE_DIR=str(work / "uv-cache"), HATCH_PBS_MIRROR=mirror)
    example.fresh_build_environment(env)
    run([*example._hatch(), "build", "-t", "app", "--hooks-only"], cwd=project, env=env)
    (archive,) = (project / "dist" / "app").glob(f"*-{HOST_TRIPLE}.tar.zst")
    return archive, cache


def hatch_pbs_onefile(project: Path, archive: Path) -> Path:
    """``dist/app/<script>-<version>-<triple>``, which the build wrote beside ``archive`` (option ``onefile``)."""
    destination = archive.with_name(f"{SCRIPT}-{VERSION}-{HOST_TRIPLE}")
    if not destination.is_file():
        raise SystemExit(f"the build wrote no {destination} (option onefile)")
    return destination


def unpack(archive: Path, destination: Path) -> Path:
    """Unpack a tar (gzip or zstd) into an empty ``destination``; its single top directory."""
    import zstandard  # a hatch-pbs dependency

    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    with archive.open("rb") as raw:
        stream = zstandard.ZstdDecompressor().stream_reader(raw) if archive.name.endswith(".zst") else raw
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            tar.extractall(destination, filter="tar")
    (top,) = destination.iterdir()
    return top


def wheelhouse(work: Path, unpacked: Path, project: Path, python: Path) -> Path:
    """The artifact's distributions (the versions its manifest names) as wheels, and the project's own wheel."""
    directory = work / "wheelhouse"
    shutil.rmtree(directory, ignore_errors=True)
    manifest = json.loads((unpacked / "hatch-pbs-manifest.json").read_text(encoding="utf-8"))
    pins = [f"{item['name']}=={item['version']}" for item in manifest["distributions"] if item["name"] != SCRIPT]
    run([python, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", directory, *pins])
    # example_project's build-system needs hatch-pbs, which PyPI lacks: hatchling alone, hooks off (its README)
    run([python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", directory,
         project], env=dict(os.environ, HATCH_BUILD_NO_HOOKS="true"))
    return directory


def pyinstaller_venv(work: Path) -> Path:
    """``<work>/pyinstaller-venv`` of this interpreter with PyInstaller and hatchling; its python."""
    venv = work / "pyinstaller-venv"
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"pyinstaller=={PYINSTALLER_VERSION}", "hatchling"])
    return python


def pyinstaller_onefile(work: Path, python: Path, wheels: Path) -> Path:
    """``pyinstaller --onefile`` of an entry script calling the console script's entry point."""
    run([python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", wheels, SCRIPT])
    root = work / "pyinstaller"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    module, _, attribute = ENTRY_POINT.partition(":")
    entry = root / "pbs_demo_entry.py"
    entry.write_text(f"import sys\n\nimport {module} as entry\n\nsys.exit(entry.{attribute}())\n", encoding="utf-8")
    run([python, "-m", "PyInstaller", "--noconfirm", "--log-level=WARN", "--onefile", "--name", SCRIPT,
         "--distpath", root / "dist", "--workpath", root / "build", "--specpath", root, entry],
        env=dict(os.environ, PYINSTALLER_CONFIG_DIR=str(root / "config")))
    return root / "dist" / SCRIPT


# --------------------------------------------------------------------------------------------------------------
# Start-ups

#: label -> (command, environment, preparation run untimed before each start)
Series = dict[str, tuple[list[str], dict[str, str], Callable[[], None]]]


def emptied(directory: Path) -> Callable[[], None]:
    def empty() -> None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    return empty


def startup_series(work: Path, onefile: Path, pyinstaller: Path, launcher: Path, pyapp_script: Path,
                   archive: Path) -> Series:
    """The measured start-ups (and, for reference, GNU tar extracting the onefile's payload)."""
    scratch = work / "scratch"
    onefile_cache, warm_cache = scratch / "onefile-first", scratch / "onefile-later"
    tmp_first, tmp_later = scratch / "tmp-first", scratch / "tmp-later"
    for directory in (warm_cache, tmp_later):
        emptied(directory)()
    keep: Callable[[], None] = lambda: None  # noqa: E731
    return {
        "hatch-pbs onefile, first": ([str(onefile), *ARGUMENTS], clean_env(HATCH_PBS_ONEFILE_CACHE=str(onefile_cache),
                                     TMPDIR=str(tmp_later)), emptied(onefile_cache)),
        "hatch-pbs onefile, later": ([str(onefile), *ARGUMENTS], clean_env(HATCH_PBS_ONEFILE_CACHE=str(warm_cache),
                                     TMPDIR=str(tmp_later)), keep),
        "PyInstaller --onefile, first": ([str(pyinstaller), *ARGUMENTS], clean_env(TMPDIR=str(tmp_first)),
                                         emptied(tmp_first)),
        "PyInstaller --onefile, later": ([str(pyinstaller), *ARGUMENTS], clean_env(TMPDIR=str(tmp_later)), keep),
        "archive launcher": ([str(launcher), *ARGUMENTS], clean_env(TMPDIR=str(tmp_later)), keep),
        "PyApp venv script": ([str(pyapp_script), *ARGUMENTS], clean_env(TMPDIR=str(tmp_later)), keep),
        "GNU tar --zstd -xf": (["tar", "--zstd", "-xf", str(archive), "-C", str(scratch / "gnu-tar")], clean_env(),
                               emptied(scratch / "gnu-tar")),
    }


def check_outputs(series: Series) -> str:
    """Run each start-up once (this also warms the onefile cache); all must print the same; that output."""
    outputs = set()
    for label, (command, env, prepare) in series.items():
        prepare()
        output = run(command, env=env).stdout.strip()
        if not label.startswith("GNU tar"):
            outputs.add(output)
    if len(outputs) != 1:
        sys.exit(f"the executables print different things for {' '.join(ARGUMENTS)}: {sorted(outputs)}")
    return outputs.pop()


def measure(series: Series, runs: int) -> dict[str, list[float]]:
    """``runs`` timed start-ups of every series, interleaved round robin (the order rotating per round)."""
    samples: dict[str, list[float]] = {label: [] for label in series}
    labels = list(series)
    for index in range(runs):
        shift = index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            command, env, prepare = series[label]
            prepare()
            started = time.perf_counter()
            result = subprocess.run(command, env=env, capture_output=True, check=False)
            samples[label].append(time.perf_counter() - started)
            if result.returncode != 0:
                sys.exit(f"{label} failed (exit {result.returncode}): {result.stderr.decode(errors='replace')}")
    return samples


# --------------------------------------------------------------------------------------------------------------
# PyApp, estimated from its steps


def pyapp_distribution(cache: Path) -> Path:
    """The python-build-standalone install-only asset the hatch-pbs build downloaded (stripped if so)."""
    found = sorted(cache.glob("assets/*/cpython-*-install_only*.tar.gz"), key=lambda path: "stripped" not in path.name)
    if not found:
        sys.exit(f"no install_only asset in {cache / 'assets'}")
    return found[0]


def timed(step: Callable[[], object]) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def pyapp_first_start(work: Path, distribution: Path, wheels: Path, installer: str) -> dict[str, float]:
    """One PyApp-like first start: unpack, venv, install (``pip`` or ``uv``, fresh caches), run; seconds each."""
    root = work / "pyapp" / installer
    shutil.rmtree(root, ignore_errors=True)
    (root / "distribution").mkdir(parents=True)
    # GNU tar (zlib, like the flate2 PyApp uses), not tarfile: pure Python would overstate a native unpack
    steps: dict[str, float] = {"unpack": timed(lambda: run(["tar", "-xzf", distribution, "-C", root / "distribution"]))}
    python, venv = root / "distribution" / "python" / "bin" / "python3", root / "venv"
    steps["venv"] = timed(lambda: run([python, "-m", "venv", "--without-pip", venv], env=clean_env()))
    source = ["--no-index", "--find-links", str(wheels), SCRIPT]
    if installer == "pip":
        command = [python, "-m", "pip", "--python", venv / "bin" / "python", "--no-cache-dir",
                   "--disable-pip-version-check", "install", "--quiet", *source]
    else:
        command = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", venv / "bin" / "python",
                   "--cache-dir", root / "uv-cache", *source]
    steps["install"] = timed(lambda: run(command, env=clean_env()))
    steps["run"] = timed(lambda: run([venv / "bin" / SCRIPT, *ARGUMENTS], env=clean_env()))
    return steps


def pyapp_estimate(work: Path, distribution: Path, wheels: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds of each first-start step, per installer, over ``repeats`` first starts."""
    estimate = {}
    for installer in ("pip", "uv"):
        trials = [pyapp_first_start(work, distribution, wheels, installer) for _ in range(repeats)]
        estimate[installer] = {step: statistics.median(trial[step] for trial in trials) for step in trials[0]}
        estimate[installer]["total"] = statistics.median(sum(trial.values()) for trial in trials)
        estimate[installer]["total_min"] = min(sum(trial.values()) for trial in trials)
    return estimate


# --------------------------------------------------------------------------------------------------------------
# Report


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ({min(values) * 1000:.0f})"


def render(sizes: dict[str, int], samples: dict[str, list[float]], pyapp: dict[str, dict[str, float]],
           facts: list[str]) -> str:
    # the minima: least disturbed by other load (medians of two noisy series can even differ the wrong way)
    exec_overhead = max(0.0, min(samples["hatch-pbs onefile, later"]) - min(samples["archive launcher"]))
    later_pyapp = [value + exec_overhead for value in samples["PyApp venv script"]]
    lines = ["| executable | size (bytes) | first start, ms median (min) | later start, ms median (min) |",
             "|---|---|---|---|"]
    for name, key in (("hatch-pbs onefile", "hatch-pbs onefile"), ("PyInstaller --onefile", "PyInstaller --onefile")):
        lines.append(f"| {name} | {sizes[name]:,} | {ms(samples[key + ', first'])} | {ms(samples[key + ', later'])} |")
    lines.append(f"| baseline: the archive's `bin/{SCRIPT}` (unpacked; size = the tar.zst) | {sizes['archive']:,} "
                 f"| — | {ms(samples['archive launcher'])} |")
    for installer, name in (("pip", "PyApp, estimate (pip)"), ("uv", "PyApp, estimate (`PYAPP_UV_ENABLED`)")):
        steps = pyapp[installer]
        lines.append(f"| {name} | ~{sizes['PyApp']:,} + PyApp itself | {steps['total'] * 1000:.0f} "
                     f"({steps['total_min'] * 1000:.0f}) | ~{ms(later_pyapp)} |")
    lines += ["", "PyApp estimate, first start steps (median ms): " + "; ".join(
        f"{installer}: " + ", ".join(f"{step} {pyapp[installer][step] * 1000:.0f}"
                                     for step in ("unpack", "venv", "install", "run")) for installer in pyapp),
              f"PyApp estimate, later start: the venv's `{SCRIPT}` {ms(samples['PyApp venv script'])} + a static "
              f"launcher's exec {exec_overhead * 1000:.1f} ms (hatch-pbs onefile's later start minus the archive "
              "launcher's, minima).",
              f"For reference, GNU `tar --zstd -xf` of the onefile's payload (the same tar.zst) into an empty "
              f"directory: {ms(samples['GNU tar --zstd -xf'])} ms.",
              "", *facts]
    return "\n".join(lines)


def tool_facts(python: Path, distribution: Path, wheels: Path, runs: int) -> list[str]:
    base = run([python, "-c", "import sys, sysconfig; print(sys.version.split()[0], sys.base_prefix, "
                              "sysconfig.get_config_var('Py_ENABLE_SHARED'))"]).stdout.split()
    pyinstaller = run([python, "-m", "PyInstaller", "--version"]).stdout.strip()
    dependencies = sum(path.stat().st_size for path in wheels.glob("*.whl") if not path.name.startswith("pbs_demo"))
    return [f"- `{SCRIPT} {' '.join(ARGUMENTS)}`, {runs} start-ups each, interleaved; {os.cpu_count()} CPUs; "
            f"start-ups with PATH={CLEAN_PATH}.",
            f"- PyInstaller {pyinstaller} on CPython {base[0]} ({base[1]}, Py_ENABLE_SHARED={base[2]}).",
            f"- PyApp's distribution: {distribution.name}; PyApp also downloads the dependencies' wheels at first "
            f"start ({dependencies:,} bytes here, read from a local wheelhouse: no download counted)."]


def main() -> int:
    options = parse_options()
    work = options.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    project, mirror = prepare_project(work, options.mirror)
    archive, cache = build_artifact(work, project, mirror)
    onefile = hatch_pbs_onefile(project, archive)
    unpacked = unpack(archive, work / "scratch" / "archive")
    python = pyinstaller_venv(work)
    wheels = wheelhouse(work, unpacked, project, python)
    pyinstaller = pyinstaller_onefile(work, python, wheels)
    distribution = pyapp_distribution(cache)
    pyapp = pyapp_estimate(work, distribution, wheels, repeats=max(1, min(3, options.runs)))
    series = startup_series(work, onefile, pyinstaller, unpacked / "bin" / SCRIPT,
                            work / "pyapp" / "pip" / "venv" / "bin" / SCRIPT, archive)
    output = check_outputs(series)
    samples = measure(series, options.runs)
    project_wheel = next(wheels.glob("pbs_demo-*.whl"))
    sizes = {"hatch-pbs onefile": onefile.stat().st_size, "PyInstaller --onefile": pyinstaller.stat().st_size,
             "archive": archive.stat().st_size, "PyApp": distribution.stat().st_size + project_wheel.stat().st_size}
    report = render(sizes, samples, pyapp, [f"- Output: `{output}`.", *tool_facts(python, distribution, wheels,
                                                                                    options.runs)])
    (work / "report.md").write_text(report + "\n", encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
