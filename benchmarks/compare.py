"""Compare hatch-pbs with PyInstaller (--onedir, --onefile) on example_project: build time, size and start-up.

Usage (from the repository root)::

    python3 benchmarks/compare.py --local-mirror          # no GitHub: a PBS-layout release of this interpreter
    python3 benchmarks/compare.py --mirror URL            # real python-build-standalone releases (https://, file://)
    python3 benchmarks/compare.py                         # real releases from GitHub
    python3 benchmarks/compare.py --local-mirror --quick  # smoke test: 1 build per tool and kind, 5 start-ups
    python3 benchmarks/compare.py --local-mirror --cross  # also one target vs seven (needs ziglang; minutes)

Needs what ``benchmarks/build_example.py`` needs (``python3 -m pip install hatch .``) plus PyPI access: PyInstaller
is installed with pip into its own venv, ``.build/bench/pyinstaller-venv``, made with this interpreter.

All tools build the same application (example_project's ``pbs-demo``) on the same machine in the same run, round
robin: each round builds every tool cold, then every tool warm, then every tool after touching a source file (the
first tool rotating from round to round), and start-up commands are timed in turn, never all runs of one tool in
a row.

- hatch-pbs cold: empty ``HATCH_PBS_CACHE_DIR``; warm: cache kept, ``dist/`` removed; touched: warm after
  appending a comment to the entry point's module. Hatch's build environment (made fresh under
  ``.build/bench/hatch-data`` at the start, with the hatch-pbs of this work tree) and uv's cache
  (``.build/bench/uv-cache``) are kept in all three.
- PyInstaller cold: ``--clean``, work dir and ``PYINSTALLER_CONFIG_DIR`` (its cache) removed; warm: both kept;
  touched: warm after appending a comment to the module installed in its venv.
- Sizes: the hatch-pbs archive as built; the --onedir output packed as .tar.gz at gzip level 6; the --onefile
  binary as is. "Unpacked" is the sum of regular file sizes.
- Start-up: median wall time of ``bin/pbs-demo --version`` and ``bin/pbs-demo summary ...`` (and the same for the
  PyInstaller outputs), against ``python/bin/python3.X -I -c "import <entry module>"`` on the archive's runtime.
- hatch-pbs alone: hook options (``archive-format``, ``stdlib`` presets, ``bytecode``), sizes and whether the app
  still runs; the ``stage seconds:`` lines of the build; with ``--cross``, ``targets = ["host"]`` vs ``["all"]``
  from the tests' zig-built stand-in runtimes. An option this hatch-pbs lacks is reported as n/a.

Prints a Markdown report; writes it and the raw measurements to ``.build/bench/report[-quick].md`` and
``.build/bench/results[-quick].json``. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_example as example  # the benchmark next door: hatch, wheel, local mirror, sizes

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: hatch-pbs depends on tomli there
    import tomli as tomllib

REPO, WORK = example.REPO, example.WORK
BENCH = WORK / "bench"
TESTS = REPO / "tests"
HOOK_HEADER = "[tool.hatch.build.hooks.pbs]"
ARCHIVE_SUFFIXES = (".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2", ".zip")
STAGE_LINE = re.compile(r"^(?P<label>.*?):?\s*stage seconds:(?P<pairs>.*)$", re.MULTILINE)
STAGE_PAIR = re.compile(r"([A-Za-z_][\w.-]*)=(\d+(?:\.\d*)?|\.\d+)")
BUILD_TIMEOUT = 1800
TOOLS = ("hatch-pbs", "PyInstaller --onedir", "PyInstaller --onefile")
VARIANTS = (
    ("default", []),
    ("tar.zst", ['archive-format = "tar.zst"']),
    ("stdlib full", ['stdlib = "full"']),
    ("stdlib default", ['stdlib = "default"']),
    ("stdlib minimal", ['stdlib = "minimal"']),
    ("bytecode only", ['bytecode = "only"']),
    ("stdlib minimal + bytecode only", ['stdlib = "minimal"', 'bytecode = "only"']),
)


def log(message: str) -> None:
    print(f"[compare] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------
# The application under test


@dataclass(frozen=True)
class App:
    """example_project as the benchmark sees it: a project directory whose hook table it rewrites."""

    project: Path
    name: str
    version: str
    script: str
    entry_point: str
    base_hook: list[str]

    @property
    def module(self) -> str:
        return self.entry_point.partition(":")[0]

    @property
    def module_file(self) -> Path:
        relative = Path(*self.module.split(".")).with_suffix(".py")
        return next(p for p in (self.project / "src" / relative, self.project / relative) if p.is_file())

    def full_command(self) -> list[str]:
        """The example's main command (run with example_project as the working directory)."""
        return ["summary", "examples/sample.json", "examples/list.json"]

    def set_hook(self, extra: list[str]) -> None:
        """Rewrite the project's hook table: the base options plus ``extra`` TOML lines."""
        pyproject = self.project / "pyproject.toml"
        lines = pyproject.read_text(encoding="utf-8").splitlines()
        start, end = hook_table_span(lines)
        lines[start:end] = [*self.base_hook, *extra, ""]
        pyproject.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def archives(self) -> list[Path]:
        found = (self.project / "dist" / "app").glob(f"{self.name}-{self.version}-*")
        return sorted(path for path in found if path.name.endswith(ARCHIVE_SUFFIXES))


def hook_table_span(lines: list[str]) -> tuple[int, int]:
    """First and past-the-last line of the body of the pyproject's hook table."""
    start = lines.index(HOOK_HEADER) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    return start, end


def load_app(project: Path) -> App:
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    script, entry_point = next(iter(data["project"]["scripts"].items()))
    lines = (project / "pyproject.toml").read_text(encoding="utf-8").splitlines()
    start, end = hook_table_span(lines)
    base_hook = [line for line in lines[start:end] if line.strip() and not line.lstrip().startswith("#")]
    return App(project, data["project"]["name"], data["project"]["version"], script, entry_point, base_hook)


def prepare_project(options: argparse.Namespace) -> tuple[App, str | None]:
    """The project copy to build and the mirror URL (``None``: $HATCH_PBS_MIRROR or GitHub)."""
    if options.local_mirror:
        project, mirror = example._local_mirror_project()
        return load_app(project), mirror
    sys.path.insert(0, str(TESTS))
    from e2e_support import copy_example_project

    project = BENCH / "project"
    shutil.rmtree(project, ignore_errors=True)
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    copy_example_project(project, hook_table=f'python-version = "{minor}"')  # PyInstaller's Python minor
    return load_app(project), options.mirror


# --------------------------------------------------------------------------------------------------------------
# Small helpers: running, timing, sizes, archives


def run(command: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``command`` capturing its output; returns (wall seconds, result)."""
    started = time.perf_counter()
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, check=False,
                            timeout=BUILD_TIMEOUT, **kwargs)
    return time.perf_counter() - started, result


def tail(result: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def must(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        sys.exit(f"{what} failed (exit {result.returncode}):\n{tail(result, 60)}")


def tree_size(root: Path) -> int:
    """Sum of the sizes of the regular files under ``root`` (symlinks not followed)."""
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
    return total


@contextlib.contextmanager
def open_archive(path: Path) -> Iterator[tarfile.TarFile]:
    """A tar archive, gzip/xz/bz2 (random access) or zstd (streamed, with the zstandard package)."""
    if not path.name.endswith(".zst"):
        with tarfile.open(path) as tar:
            yield tar
        return
    import zstandard

    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream, \
            tarfile.open(fileobj=stream, mode="r|") as tar:
        yield tar


def unpacked_size(archive: Path) -> int:
    if not archive.name.endswith(".zst"):
        return example._unpacked_size(archive)
    with open_archive(archive) as tar:
        return sum(member.size for member in tar if member.isfile())


def extract(archive: Path, destination: Path) -> Path:
    """Unpack ``archive`` into an empty ``destination``; returns its single top directory."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    keywords = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
    with open_archive(archive) as tar:
        tar.extractall(destination, **keywords)
    (top,) = destination.iterdir()
    return top


def pack_tar_gz(directory: Path, archive: Path) -> Path:
    """``directory`` as a .tar.gz at gzip level 6 (the size a user would download for a --onedir build)."""
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.add(directory, arcname=directory.name)
    return archive


def archive_contains(archive: Path, file_name: str, text: str) -> bool:
    """Whether a member of ``archive`` called ``file_name`` contains ``text``."""
    with open_archive(archive) as tar:
        for member in tar:
            named = member.isfile() and member.name.endswith("/" + file_name)
            if named and text.encode() in tar.extractfile(member).read():
                return True
    return False


def parse_stages(output: str) -> dict[str, dict[str, float]]:
    """``<target>: stage seconds: a=1.0 b=2.5`` lines -> {target: {stage: seconds}} (any stage names)."""
    stages: dict[str, dict[str, float]] = {}
    for match in STAGE_LINE.finditer(output):
        pairs = {name: float(value) for name, value in STAGE_PAIR.findall(match["pairs"])}
        if pairs:
            stages[match["label"].strip() or "?"] = pairs
    return stages


def summed_stages(stages: dict[str, dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for per_target in stages.values():
        for name, seconds in per_target.items():
            total[name] = total.get(name, 0.0) + seconds
    return total


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def rotated(items: list, offset: int) -> list:
    """``items`` starting at ``offset``: each round begins with another tool."""
    offset %= max(1, len(items))
    return items[offset:] + items[:offset]


# --------------------------------------------------------------------------------------------------------------
# hatch-pbs


@dataclass
class HatchPbs:
    """``hatch build -t app --hooks-only`` of the project copy."""

    app: App
    hatch: list[str]
    env: dict[str, str]
    name: str = "hatch-pbs"

    def build(self, kind: str, env: dict[str, str] | None = None) -> dict:
        """One build of ``kind`` cold (empty cache), warm or touched (warm, one module changed)."""
        env = env or self.env
        if kind == "cold":
            shutil.rmtree(env["HATCH_PBS_CACHE_DIR"], ignore_errors=True)
        marker = self.touch() if kind == "touched" else ""
        shutil.rmtree(self.app.project / "dist", ignore_errors=True)
        seconds, result = run([*self.hatch, "build", "-t", "app", "--hooks-only"], cwd=self.app.project, env=env)
        record = {"tool": self.name, "kind": kind, "seconds": seconds, "ok": result.returncode == 0,
                  "stages": parse_stages(result.stdout + result.stderr)}
        if result.returncode != 0:
            record["error"] = tail(result)
        elif marker:
            record["change_shipped"] = archive_contains(self.artifact(), self.app.module_file.name, marker)
        return record

    def touch(self) -> str:
        """Append a comment to the entry point's module; returns it."""
        marker = f"# touched by benchmarks/compare.py at {time.time_ns()}"
        with self.app.module_file.open("a", encoding="utf-8") as module:
            module.write(marker + "\n")
        return marker

    def artifact(self) -> Path:
        (archive,) = self.app.archives()
        return archive


def hatch_env(mirror: str | None, wheels: Path) -> dict[str, str]:
    env = dict(os.environ, UV_FIND_LINKS=str(wheels), HATCH_PBS_CACHE_DIR=str(BENCH / "cache"),
               HATCH_DATA_DIR=str(BENCH / "hatch-data"), UV_CACHE_DIR=str(BENCH / "uv-cache"))
    if mirror:
        env["HATCH_PBS_MIRROR"] = mirror
    return env


def prime_hatch(tool: HatchPbs) -> list[str]:
    """A fresh Hatch build environment (with this work tree's hatch-pbs) made by an untimed build; returns notes.

    uv caches a find-links wheel by name and version: without forgetting hatch-pbs first, it would install an
    older build of hatch-pbs 0.1.0 than the one just made."""
    example.fresh_build_environment(tool.env)
    log("hatch-pbs: untimed first build (creates Hatch's build environment)")
    record = tool.build("cold")
    if not record["ok"]:
        sys.exit(f"the first hatch-pbs build failed:\n{record['error']}")
    return stale_build_env_notes(Path(tool.env["HATCH_DATA_DIR"]))


def stale_build_env_notes(data_dir: Path) -> list[str]:
    """Warn when Hatch's build environment holds a hatch-pbs that differs from this work tree's."""
    installed = next(data_dir.glob("env/**/site-packages/hatch_pbs"), None)
    if installed is None:
        return ["could not find hatch-pbs in Hatch's build environment to check it is this work tree's"]
    differing = [path.name for path in sorted((REPO / "hatch_pbs").glob("*.py"))
                 if not (installed / path.name).is_file() or (installed / path.name).read_bytes() != path.read_bytes()]
    if differing:
        return [(f"hatch-pbs in Hatch's build environment differs from the work tree in {', '.join(differing)} "
                 "(the work tree changed after the wheel was built, or the environment is stale)")]
    return []


# --------------------------------------------------------------------------------------------------------------
# PyInstaller


@dataclass
class PyInstaller:
    """``pyinstaller --onedir`` or ``--onefile`` of an entry script calling the console-script entry point."""

    mode: str
    python: Path
    entry_script: Path
    app: App
    name: str = ""

    def __post_init__(self) -> None:
        self.name = f"PyInstaller --{self.mode}"

    @property
    def root(self) -> Path:
        return BENCH / "pyinstaller" / self.mode

    def build(self, kind: str) -> dict:
        """One build: cold (``--clean``, no work dir, no cache), warm (both kept) or touched (warm, the entry
        point's module in the venv changed, as an editable install would see an edit)."""
        work, config = self.root / "work", self.root / "config"
        if kind == "touched":
            with self.installed_module().open("a", encoding="utf-8") as module:
                module.write(f"# touched by benchmarks/compare.py at {time.time_ns()}\n")
        shutil.rmtree(self.root / "dist", ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        command = [self.python, "-m", "PyInstaller", "--noconfirm", "--log-level=WARN", f"--{self.mode}",
                   "--name", self.app.script, "--distpath", self.root / "dist", "--workpath", work,
                   "--specpath", self.root, self.entry_script]
        if kind == "cold":
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(config, ignore_errors=True)
            command.insert(3, "--clean")
        env = dict(os.environ, PYINSTALLER_CONFIG_DIR=str(config))
        seconds, result = run(command, cwd=self.root, env=env)
        record = {"tool": self.name, "kind": kind, "seconds": seconds, "ok": result.returncode == 0}
        if result.returncode != 0:
            sys.exit(f"{self.name} failed:\n{tail(result, 60)}")
        return record

    def artifact(self) -> Path:
        return self.root / "dist" / self.app.script

    def installed_module(self) -> Path:
        relative = Path(*self.app.module.split(".")).with_suffix(".py")
        (module,) = self.python.parent.parent.glob(f"lib/python3*/site-packages/{relative.as_posix()}")
        return module


def pyinstaller_venv(app: App) -> Path:
    """``.build/bench/pyinstaller-venv`` (this interpreter) with PyInstaller and the example project; its python."""
    venv = BENCH / "pyinstaller-venv"
    python = venv / "bin" / "python"
    if python.exists() and not same_interpreter(python):
        shutil.rmtree(venv)
    if not python.exists():
        log(f"creating {venv.relative_to(REPO)} with {sys.executable}")
        must(run([sys.executable, "-m", "venv", venv])[1], "creating the PyInstaller venv")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    log("pip: pyinstaller and the example project into the PyInstaller venv")
    must(run([*pip, "pyinstaller", "hatchling"])[1], "pip install pyinstaller")
    # example_project's build-system needs hatch-pbs, which PyPI lacks: hatchling alone, hooks off (its README).
    env = dict(os.environ, HATCH_BUILD_NO_HOOKS="true")
    must(run([*pip, "--no-build-isolation", REPO / "example_project"], env=env)[1], "pip install example_project")
    return python


def same_interpreter(python: Path) -> bool:
    """Whether the venv's ``python`` is based on the interpreter running this script."""
    result = run([python, "-c", "import sys; print(sys.base_prefix)"])[1]
    return result.returncode == 0 and result.stdout.strip() == sys.base_prefix


def write_entry_script(app: App) -> Path:
    module, _, attribute = app.entry_point.partition(":")
    script = BENCH / "pyinstaller" / f"{app.script.replace('-', '_')}_entry.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f'"""PyInstaller entry script: the console script {app.script} = {app.entry_point}."""\n'
                      f"import sys\n\nimport {module} as entry\n\nsys.exit(entry.{attribute}())\n", encoding="utf-8")
    return script


# --------------------------------------------------------------------------------------------------------------
# Measurements


def build_rounds(tools: list, runs: int) -> list[dict]:
    """``runs`` rounds; each: every tool cold, then warm, then touched (the tools' order rotating per round)."""
    builds = []
    for round_ in range(1, runs + 1):
        for kind in ("cold", "warm", "touched"):
            for tool in rotated(tools, round_ - 1):
                builds.append(timed_build(tool, kind, round_, runs))
    return builds


def timed_build(tool, kind: str, round_: int, runs: int) -> dict:
    record = dict(tool.build(kind), round=round_)
    log(f"round {round_}/{runs}: {tool.name} {kind}: {record['seconds']:.2f} s")
    if not record["ok"]:
        sys.exit(f"{tool.name} {kind} build failed:\n{record['error']}")
    return record


def artifact_sizes(hatch: HatchPbs, onedir: PyInstaller, onefile: PyInstaller) -> dict[str, dict]:
    archive = hatch.artifact()
    packed = pack_tar_gz(onedir.artifact(), onedir.root / f"{onedir.app.script}-onedir.tar.gz")
    binary = onefile.artifact()
    return {
        hatch.name: {"path": str(archive), "compressed": archive.stat().st_size, "unpacked": unpacked_size(archive)},
        onedir.name: {"path": str(packed), "compressed": packed.stat().st_size,
                      "unpacked": tree_size(onedir.artifact())},
        onefile.name: {"path": str(binary), "compressed": binary.stat().st_size, "unpacked": binary.stat().st_size},
    }


def startup_commands(app: App, sizes: dict[str, dict]) -> dict[str, list[str]]:
    """Label -> command; every artifact is unpacked (or copied) into ``.build/bench/scratch`` first."""
    scratch = BENCH / "scratch"
    hatch_dir = extract(Path(sizes["hatch-pbs"]["path"]), scratch / "hatch-pbs")
    onedir = extract(Path(sizes["PyInstaller --onedir"]["path"]), scratch / "onedir")
    onefile = scratch / "onefile" / app.script
    shutil.rmtree(onefile.parent, ignore_errors=True)
    onefile.parent.mkdir(parents=True)
    shutil.copy2(sizes["PyInstaller --onefile"]["path"], onefile)
    python = runtime_interpreter(hatch_dir)
    launchers = {"hatch-pbs": hatch_dir / "bin" / app.script, "PyInstaller --onedir": onedir / app.script,
                 "PyInstaller --onefile": onefile}
    commands = {}
    for tool, launcher in launchers.items():
        commands[f"{tool} | --version"] = [str(launcher), "--version"]
        commands[f"{tool} | {app.full_command()[0]}"] = [str(launcher), *app.full_command()]
    commands[f"baseline | import {app.module}"] = [str(python), "-I", "-c", f"import {app.module}"]
    return commands


def runtime_interpreter(unpacked: Path) -> Path:
    """The archive's own interpreter: the manifest's ``runtime.interpreter``, else ``python/bin/python3.X``."""
    manifest = json.loads((unpacked / "hatch-pbs-manifest.json").read_text(encoding="utf-8"))
    named = manifest.get("runtime", {}).get("interpreter")
    if isinstance(named, str) and (unpacked / named).is_file():
        return unpacked / named
    return next(path for path in sorted((unpacked / "python" / "bin").glob("python3.*"))
                if re.fullmatch(r"python3\.\d+", path.name))


def check_commands(app: App, commands: dict[str, list[str]]) -> list[str]:
    """Run each command once (also a warm-up); fail on an error, note differing outputs of the same command."""
    outputs: dict[str, set[str]] = {}
    for label, command in commands.items():
        _, result = run(command, cwd=app.project)
        must(result, f"start-up command {label} ({' '.join(command)})")
        outputs.setdefault(label.split(" | ")[1], set()).add(result.stdout)
    return [f"the outputs of `{what}` differ between the tools" for what, seen in outputs.items() if len(seen) > 1]


def measure_startups(app: App, commands: dict[str, list[str]], starts: int) -> dict[str, list[float]]:
    """``starts`` timed runs of every command, interleaved (round robin, rotating the order)."""
    samples: dict[str, list[float]] = {label: [] for label in commands}
    labels = list(commands)
    for index in range(starts):
        for label in rotated(labels, index):
            started = time.perf_counter()
            subprocess.run(commands[label], cwd=app.project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
            samples[label].append(time.perf_counter() - started)
    return samples


def run_variants(hatch: HatchPbs, runs: int) -> list[dict]:
    """Each VARIANTS option set, warm, ``runs`` times round robin: time, sizes, stages, and whether the app runs."""
    results = {name: {"name": name, "options": extra, "builds": []} for name, extra in VARIANTS}
    for round_ in range(1, runs + 1):
        for name, extra in rotated(list(VARIANTS), round_ - 1):
            hatch.app.set_hook(extra)
            record = hatch.build("warm")
            results[name]["builds"].append(record)
            outcome = f"{record['seconds']:.2f} s" if record["ok"] else "FAILED"
            log(f"variant round {round_}/{runs}: {name}: {outcome}")
            if record["ok"] and "compressed" not in results[name]:
                results[name].update(describe_variant_artifact(hatch))
    hatch.app.set_hook([])
    return list(results.values())


def describe_variant_artifact(hatch: HatchPbs) -> dict:
    """Sizes of the variant's archive, and whether its app still runs ``--version``, the main command and
    ``doctor`` (a trimmed standard library may lack a module the app needs)."""
    archive = hatch.artifact()
    launcher = extract(archive, BENCH / "scratch" / "variant") / "bin" / hatch.app.script
    failures = []
    for arguments in (["--version"], hatch.app.full_command(), ["doctor"]):
        _, result = run([launcher, *arguments], cwd=hatch.app.project)
        if result.returncode != 0:
            failures.append(f"`{arguments[0]}`: {tail(result, 1)}")
    return {"archive": archive.name, "compressed": archive.stat().st_size, "unpacked": unpacked_size(archive),
            "app_runs": not failures, "app_error": "; ".join(failures)}


# --------------------------------------------------------------------------------------------------------------
# --cross: one target vs seven


def run_cross(hatch: HatchPbs, wheels: Path, runs: int) -> dict:
    """Warm builds of ``targets = ["host"]`` and ``["all"]``, round robin, from the tests' foreign stand-ins."""
    env = cross_env(hatch, wheels)
    if isinstance(env, str):
        return {"error": env}
    configs = {"one target": ['targets = ["host"]'], "seven targets": ['targets = ["all"]']}
    results = {name: {"builds": []} for name in configs}
    hatch.app.set_hook(configs["seven targets"])
    prime = hatch.build("cold", env)  # fills the cache with every triple's runtime
    if not prime["ok"]:
        hatch.app.set_hook([])
        return {"error": prime["error"]}
    for round_ in range(1, runs + 1):
        for name in rotated(list(configs), round_ - 1):
            hatch.app.set_hook(configs[name])
            record = dict(hatch.build("warm", env), archives={p.name: p.stat().st_size for p in hatch.app.archives()})
            results[name]["builds"].append(record)
            outcome = f"{record['seconds']:.2f} s" if record["ok"] else "FAILED"
            log(f"cross round {round_}/{runs}: {name}: {outcome}")
    hatch.app.set_hook([])
    return results


def cross_env(hatch: HatchPbs, wheels: Path) -> dict[str, str] | str:
    """The build environment for a mirror with stand-in runtimes of every triple (zig-built, cached under
    ``.build/bench/cross-release``), offline with a wheelhouse for every platform; or why there is none."""
    sys.path.insert(0, str(TESTS))
    from foreign_release import ZigUnavailableError, build_cross_release
    from pbs_release import build_release

    log("cross: building the stand-in runtimes of every triple with zig (minutes the first time)")
    try:
        release = build_cross_release(BENCH / "cross-release", build_release(WORK / "local-mirror"))
    except (ZigUnavailableError, RuntimeError) as error:
        return str(error)
    return dict(hatch.env, HATCH_PBS_MIRROR=release.root.as_uri(), HATCH_PBS_CACHE_DIR=str(BENCH / "cache-cross"),
                UV_FIND_LINKS=f"{wheels},{cross_wheelhouse()}", UV_OFFLINE="1")


def cross_wheelhouse() -> Path:
    """rich and orjson wheels for every platform of ``all`` (as the tests' cross_wheelhouse fixture)."""
    sys.path.insert(0, str(TESTS))
    from e2e_support import WHEEL_PLATFORMS

    destination = BENCH / "cross-wheelhouse"
    minor = f"{sys.version_info.major}{sys.version_info.minor}"
    for wheel_platform in WHEEL_PLATFORMS.values():
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
                   "--only-binary=:all:", "--dest", destination, "--implementation", "cp", "--python-version",
                   minor, "--abi", f"cp{minor}", "--platform", wheel_platform, "rich", "orjson"]
        must(run(command)[1], f"pip download for {wheel_platform}")
    return destination


# --------------------------------------------------------------------------------------------------------------
# Report


def fmt_s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f}"


def fmt_ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.0f}"


def fmt_mb(size: int | None) -> str:
    return "n/a" if size is None else f"{size / 1e6:.1f}"


def fmt_ratio(numerator: float | None, denominator: float | None) -> str:
    return "n/a" if not numerator or not denominator else f"{numerator / denominator:.2f}×"


def spread(values: list[float], fmt: Callable[[float | None], str] = fmt_s) -> str:
    """``median (min–max)`` of ``values``, or just the value when there is one."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (``|`` inside a cell, e.g. in an error message, escaped)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def build_seconds(results: dict, tool: str, kind: str) -> list[float]:
    return [b["seconds"] for b in results["builds"] if b["tool"] == tool and b["kind"] == kind and b["ok"]]


def startup(results: dict, label: str) -> float | None:
    return median(results["startup"].get(label, []))


def render(results: dict) -> str:
    sections = [render_header, render_builds, render_sizes, render_startup, render_ratios, render_stages,
                render_variants, render_cross, render_notes]
    lines: list[str] = []
    for section in sections:
        lines += section(results) + [""]
    return "\n".join(lines).rstrip() + "\n"


def render_header(results: dict) -> list[str]:
    meta = results["meta"]
    return [f"# hatch-pbs vs PyInstaller: example_project (`{meta['script']}`)", "",
            (f"- When: {meta['date']}; mode: {meta['mode']}; {meta['runs']} build(s) per tool and kind, "
             f"{meta['starts']} start-ups per command, interleaved round robin."),
            f"- Machine: {meta['platform']}, {meta['cpus']} CPUs.",
            (f"- Python: the hatch-pbs archive runs {meta['runtime']}; PyInstaller bundles CPython {meta['python']} "
             f"({meta['base_prefix']}, the interpreter running this script: {meta['executable']})."),
            (f"- Versions: hatch-pbs {meta['hatch_pbs']} (git {meta['git']}), {meta['hatch']}, PyInstaller "
             f"{meta['pyinstaller']}."),
            f"- hatch-pbs hook options: `{'; '.join(meta['hook']) or '(none)'}`."]


def render_builds(results: dict) -> list[str]:
    rows = [[tool, *(spread(build_seconds(results, tool, kind)) for kind in ("cold", "warm", "touched"))]
            for tool in TOOLS]
    return ["## Build wall time (s, median (min–max))", "",
            *table(["tool", "cold", "warm", "warm, one source file touched"], rows), "",
            ("hatch-pbs: `hatch build -t app --hooks-only`; cold = empty `HATCH_PBS_CACHE_DIR`, warm = cache kept "
             "(`dist/` removed), touched = warm after appending a comment to the entry point's module in the project "
             "copy; Hatch's build environment and uv's cache (`.build/bench/uv-cache`) are kept in all three. "
             "PyInstaller: cold = `--clean` without work dir and cache, warm = both kept (nothing changed: "
             "PyInstaller reuses its analysis), touched = warm after appending a comment to that module in its venv.")]


def render_sizes(results: dict) -> list[str]:
    sizes = results["artifacts"]
    labels = {"hatch-pbs": "hatch-pbs archive (as built)",
              "PyInstaller --onedir": "PyInstaller --onedir (packed: tar.gz, gzip level 6)",
              "PyInstaller --onefile": "PyInstaller --onefile (single binary; unpacked = the binary)"}
    rows = [[labels[tool], fmt_mb(sizes[tool]["compressed"]), fmt_mb(sizes[tool]["unpacked"])] for tool in TOOLS]
    return ["## Artifact size (MB, 10^6 bytes)", "", *table(["artifact", "compressed", "unpacked"], rows), "",
            "The --onefile binary unpacks itself into a temporary directory at every start."]


def render_startup(results: dict) -> list[str]:
    samples = results["startup"]
    commands = list(dict.fromkeys(label.split(" | ")[1] for label in samples if not label.startswith("baseline")))
    rows = [[tool, *(spread(samples.get(f"{tool} | {what}", []), fmt_ms) for what in commands)] for tool in TOOLS]
    baseline = next(label for label in samples if label.startswith("baseline"))
    interpreter = "/".join(Path(results["startup_commands"][baseline][0]).parts[-3:])
    rows.append([f"baseline: the archive's `{interpreter} -I -c \"{baseline.split(' | ')[1]}\"`",
                 spread(samples[baseline], fmt_ms), "—"])
    full = results["meta"]["full_command"]
    return ["## Start-up (ms, median (min–max))", "",
            *table(["artifact", *[f"`{results['meta']['script']} {full if what != '--version' else what}`"
                                  for what in commands]], rows), "",
            "Each artifact is unpacked in `.build/bench/scratch/`; one untimed run of each command first."]


def render_ratios(results: dict) -> list[str]:
    hp, onedir, onefile = TOOLS
    build = {kind: {tool: median(build_seconds(results, tool, kind)) for tool in TOOLS}
             for kind in ("cold", "warm", "touched")}
    size = results["artifacts"]
    full = results["meta"]["full_command"].split()[0]
    baseline = startup(results, next(label for label in results["startup"] if label.startswith("baseline")))

    def start(tool: str, what: str = "--version") -> float | None:
        return startup(results, f"{tool} | {what}")

    rows = [
        ("warm build: hatch-pbs / PyInstaller --onedir", build["warm"][hp], build["warm"][onedir]),
        ("warm build: hatch-pbs / PyInstaller --onefile", build["warm"][hp], build["warm"][onefile]),
        ("cold build: hatch-pbs / PyInstaller --onedir", build["cold"][hp], build["cold"][onedir]),
        ("touched rebuild: hatch-pbs / PyInstaller --onedir", build["touched"][hp], build["touched"][onedir]),
        ("touched rebuild / warm build (hatch-pbs)", build["touched"][hp], build["warm"][hp]),
        ("archive size: hatch-pbs / PyInstaller --onefile", size[hp]["compressed"], size[onefile]["compressed"]),
        ("archive size: hatch-pbs / PyInstaller --onedir tar.gz", size[hp]["compressed"], size[onedir]["compressed"]),
        ("unpacked size: hatch-pbs / PyInstaller --onedir", size[hp]["unpacked"], size[onedir]["unpacked"]),
        ("start-up `--version`: hatch-pbs / baseline import", start(hp), baseline),
        ("start-up `--version`: hatch-pbs / PyInstaller --onefile", start(hp), start(onefile)),
        ("start-up `--version`: hatch-pbs / PyInstaller --onedir", start(hp), start(onedir)),
        (f"start-up `{full}`: hatch-pbs / PyInstaller --onefile", start(hp, full), start(onefile, full)),
        (f"start-up `{full}`: hatch-pbs / PyInstaller --onedir", start(hp, full), start(onedir, full)),
    ]
    return ["## Ratios (medians; below 1× means hatch-pbs is faster or smaller)", "",
            *table(["ratio", "value"], [[label, fmt_ratio(a, b)] for label, a, b in rows])]


def stage_medians(builds: list[dict]) -> dict[str, float]:
    per_stage: dict[str, list[float]] = {}
    for build in builds:
        for name, seconds in summed_stages(build.get("stages", {})).items():
            per_stage.setdefault(name, []).append(seconds)
    return {name: statistics.median(values) for name, values in per_stage.items()}


def render_stages(results: dict) -> list[str]:
    heading = ["## Where hatch-pbs's build time goes (`stage seconds:`, median)", ""]
    kinds = ("cold", "warm", "touched")
    builds = {kind: [b for b in results["builds"] if b["tool"] == "hatch-pbs" and b["kind"] == kind] for kind in kinds}
    medians = {kind: stage_medians(builds[kind]) for kind in kinds}
    if not medians["warm"]:
        return heading + ["n/a: this hatch-pbs prints no `stage seconds:` line."]
    names = list(dict.fromkeys(name for kind in kinds for name in medians[kind]))
    warm_total = sum(medians["warm"].values())
    rows = [[name, *(fmt_s(medians[kind].get(name)) for kind in kinds),
             f"{100 * medians['warm'].get(name, 0) / warm_total:.0f}%" if warm_total else "n/a"] for name in names]
    sums = {kind: sum(medians[kind].values()) if medians[kind] else None for kind in kinds}
    rows.append(["**sum of stages**", *(fmt_s(sums[kind]) for kind in kinds), "100%"])
    walls = {kind: median([b["seconds"] for b in builds[kind]]) for kind in kinds}
    rows.append(["wall time outside the stages (Hatch, project wheel, resolve, fetch...)",
                 *(fmt_s(walls[kind] - sums[kind]) if walls[kind] and sums[kind] else "n/a" for kind in kinds), "—"])
    return heading + table(["stage", *kinds, "share of warm stages"], rows) + [
        "", "Medians per stage (the sum of medians need not equal the median of the sums)."]


def render_variants(results: dict) -> list[str]:
    rows = []
    for variant in results["variants"]:
        ok = [b["seconds"] for b in variant["builds"] if b["ok"]]
        if not ok:
            reason = (variant["builds"][0].get("error", "").strip().splitlines() or ["build failed"])[-1]
            reason = reason if len(reason) <= 110 else reason[:110] + "…"
            rows.append([variant["name"], options_text(variant), "n/a", "n/a", "n/a", f"n/a: {reason}"])
            continue
        runs = "yes" if variant.get("app_runs") else f"**no**: {variant.get('app_error', '')[-120:]}"
        rows.append([variant["name"], options_text(variant), spread(ok), fmt_mb(variant.get("compressed")),
                     fmt_mb(variant.get("unpacked")), runs])
    lines = ["## hatch-pbs options (one target, warm cache)", "",
             *table(["variant", "hook options", "build s", "archive MB", "unpacked MB", "app runs"], rows)]
    return lines + render_variant_stages(results)


def options_text(variant: dict) -> str:
    return "`" + "; ".join(variant["options"]) + "`" if variant["options"] else "(base)"


def render_variant_stages(results: dict) -> list[str]:
    medians = {v["name"]: stage_medians([b for b in v["builds"] if b["ok"]]) for v in results["variants"]}
    names = list(dict.fromkeys(name for stages in medians.values() for name in stages))
    if not names:
        return []
    rows = [[variant, *(fmt_s(stages.get(name)) for name in names)] for variant, stages in medians.items() if stages]
    return ["", "Stage seconds per variant (median):", "", *table(["variant", *names], rows)]


def render_cross(results: dict) -> list[str]:
    cross = results.get("cross")
    if cross is None:
        return ["## One target vs seven", "", "Not run (add `--cross`, local-mirror mode only)."]
    if "error" in cross:
        return ["## One target vs seven", "", f"n/a: {cross['error'].strip().splitlines()[-1]}"]
    rows = []
    for name, data in cross.items():
        ok = [b for b in data["builds"] if b["ok"]]
        last = ok[-1]["archives"] if ok else {}
        rows.append([name, spread([b["seconds"] for b in ok]), str(len(last)), fmt_mb(sum(last.values()) or None)])
    one, seven = (median([b["seconds"] for b in cross[name]["builds"] if b["ok"]])
                  for name in ("one target", "seven targets"))
    return ["## One target vs seven (warm, tests' stand-in runtimes for the foreign triples)", "",
            *table(["build", "wall s", "archives", "total MB"], rows), "",
            (f"seven / one: {fmt_ratio(seven, one)} (the stand-in runtimes are tiny; what grows is installing the "
             "dependencies, compiling and packing per target).")]


def render_notes(results: dict) -> list[str]:
    notes = results["notes"] or ["none"]
    return ["## Notes", "", *[f"- {note}" for note in notes]]


# --------------------------------------------------------------------------------------------------------------
# Main


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    example.add_mirror_options(parser)
    parser.add_argument("--runs", type=int, default=3, help="builds per tool and kind (default 3)")
    parser.add_argument("--starts", type=int, default=30, help="timed start-ups per command (default 30)")
    parser.add_argument("--quick", action="store_true", help="1 build per tool and kind, 5 start-ups")
    parser.add_argument("--cross", action="store_true", help="also one target vs seven (--local-mirror only)")
    options = parser.parse_args()
    if options.quick:
        options.runs, options.starts = 1, 5
    if options.cross and not options.local_mirror:
        parser.error("--cross needs --local-mirror (the foreign stand-in runtimes extend the local release)")
    if options.runs < 1 or options.starts < 1:
        parser.error("--runs and --starts must be at least 1")
    return options


def describe(options: argparse.Namespace, app: App, mirror: str | None, hatch: list[str], python: Path) -> dict:
    version = re.search(r'__version__ = "([^"]+)"', (REPO / "hatch_pbs" / "__init__.py").read_text()).group(1)
    mode = ("local mirror (PBS-layout release of this interpreter)" if options.local_mirror
            else f"mirror {mirror}" if mirror else "python-build-standalone from GitHub")
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "mode": mode,
            "runs": options.runs, "starts": options.starts, "quick": options.quick, "cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "executable": sys.executable,
            "base_prefix": sys.base_prefix, "hatch_pbs": version, "git": git_description(),
            "hatch": run([*hatch, "--version"])[1].stdout.strip().replace(", version", ""),
            "pyinstaller": run([python, "-m", "PyInstaller", "--version"])[1].stdout.strip(),
            "script": app.script, "hook": app.base_hook, "full_command": " ".join(app.full_command())}


def git_description() -> str:
    commit = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])[1].stdout.strip() or "?"
    dirty = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])[1].stdout.strip()
    return f"{commit}, uncommitted changes" if dirty else commit


def runtime_description() -> str:
    """The hatch-pbs archive's runtime, from the manifest of its unpacked copy."""
    (unpacked,) = (BENCH / "scratch" / "hatch-pbs").iterdir()
    manifest = json.loads((unpacked / "hatch-pbs-manifest.json").read_text(encoding="utf-8"))
    runtime = manifest.get("runtime", {})
    return f"CPython {manifest.get('python_version', '?')} ({runtime.get('asset', '?')})"


def touched_notes(results: dict) -> list[str]:
    missed = [b["round"] for b in results["builds"]
              if b["tool"] == "hatch-pbs" and b["kind"] == "touched" and not b.get("change_shipped")]
    return [f"the touched module's change is missing from the archive of round(s) {missed}"] if missed else []


def write_outputs(results: dict, report: str, quick: bool) -> None:
    suffix = "-quick" if quick else ""
    (BENCH / f"report{suffix}.md").write_text(report, encoding="utf-8")
    (BENCH / f"results{suffix}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {BENCH.relative_to(REPO)}/report{suffix}.md and results{suffix}.json")


def main() -> int:
    options = parse_options()
    BENCH.mkdir(parents=True, exist_ok=True)
    hatch_command, wheels = example._hatch(), WORK / "wheels"
    log("building the hatch-pbs wheel offered to Hatch's build environment")
    example._build_hatch_pbs_wheel(wheels)
    app, mirror = prepare_project(options)
    hatch = HatchPbs(app, hatch_command, hatch_env(mirror, wheels))
    notes = [f"after the first build: {note}" for note in prime_hatch(hatch)]
    python, entry = pyinstaller_venv(app), write_entry_script(app)
    onedir, onefile = PyInstaller("onedir", python, entry, app), PyInstaller("onefile", python, entry, app)
    results: dict = {"meta": describe(options, app, mirror, hatch_command, python), "notes": notes}
    results["builds"] = build_rounds([hatch, onedir, onefile], options.runs)
    results["artifacts"] = artifact_sizes(hatch, onedir, onefile)
    commands = startup_commands(app, results["artifacts"])
    results["meta"]["runtime"] = runtime_description()
    results["notes"] += check_commands(app, commands)
    log(f"start-up: {options.starts} x {len(commands)} commands, interleaved")
    results["startup"] = measure_startups(app, commands, options.starts)
    results["startup_commands"] = commands
    results["variants"] = run_variants(hatch, options.runs)
    results["cross"] = run_cross(hatch, wheels, options.runs) if options.cross else None
    results["notes"] += [f"at the end: {note}" for note in stale_build_env_notes(Path(hatch.env["HATCH_DATA_DIR"]))]
    results["notes"] += touched_notes(results)
    report = render(results)
    write_outputs(results, report, options.quick)
    print(report, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
