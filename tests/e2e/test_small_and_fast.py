"""End to end: the options that make artifacts small (``stdlib``, ``exclude``, ``bytecode``) and the formats
(``archive-format``), and what a rebuild reuses (prepared runtime, compressed runtime part, bytecode). Every
artifact is unpacked elsewhere and the app runs its own self-test with the source interpreter's prefix hidden."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import (
    can_hide_directories,
    copy_example_project,
    run_hatchling,
    run_hidden,
)
from pbs_release import FakeRelease

pytestmark = pytest.mark.e2e


@dataclass
class Build:
    project: Path
    output: str
    artifact: Path
    cache: Path
    env: dict[str, str]


def _build(tmp_path: Path, fake_release: FakeRelease, wheelhouse: Path, name: str, table: str,
           *, cache: Path | None = None) -> Build:
    minor = ".".join(fake_release.python_version.split(".")[:2])
    project = copy_example_project(tmp_path / name, hook_table=f'python-version = "{minor}"\n{table}')
    cache = cache or tmp_path / f"{name}-cache"
    env = {"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(cache), "UV_OFFLINE": "1",
           "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    return _rebuild(Build(project, "", project, cache, env))


def _rebuild(build: Build) -> Build:
    result = run_hatchling(build.project, "app", build.env, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = [path for path in (build.project / "dist" / "app").iterdir()
               if path.name.startswith("pbs-demo-") and not path.name.endswith(".cdx.json")]
    assert len(outputs) == 1, outputs
    return Build(build.project, result.stdout + result.stderr, outputs[0], build.cache, build.env)


def _unpack(archive: Path, destination: Path) -> Path:
    """Unpack with GNU tar (``--zstd`` for ``.tar.zst``), as a user would; returns the artifact root."""
    destination.mkdir()
    flag = "--zstd" if archive.name.endswith(".tar.zst") else "-z"
    subprocess.run(["tar", flag, "-xf", str(archive), "-C", str(destination)], check=True)
    (root,) = destination.iterdir()
    return root


def _selftest(root: Path, fake_release: FakeRelease, *arguments: str) -> subprocess.CompletedProcess[str]:
    reason = can_hide_directories()
    if reason:
        pytest.skip(f"cannot hide the source prefix: {reason}")
    return run_hidden(fake_release.source_prefix, [str(root / "bin" / "pbs-demo"), *(arguments or ("selftest",))],
                      cwd=root.parent, env={"PATH": "/usr/bin:/bin", "HOME": str(root.parent)})


def _files(root: Path) -> set[str]:
    return {Path(directory, name).relative_to(root).as_posix()
            for directory, _, names in os.walk(root) for name in names}


def _unpacked_size(root: Path) -> int:
    return sum(Path(directory, name).lstat().st_size for directory, _, names in os.walk(root) for name in names)


@pytest.fixture(scope="module")
def default_build(fake_release: FakeRelease, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Build, Path]:
    base = tmp_path_factory.mktemp("default")
    build = _build(base, fake_release, wheelhouse, "project", "")
    return build, _unpack(build.artifact, base / "unpacked")


@pytest.fixture(scope="module")
def minimal_build(fake_release: FakeRelease, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> tuple[Build, Path]:
    base = tmp_path_factory.mktemp("minimal")
    table = ('stdlib = "minimal"\nbytecode = "only"\narchive-format = "tar.zst"\n'
             'exclude = ["*.pyi", "app/rich/py.typed", "app/pygments/lexers/_php_builtins.py"]')
    build = _build(base, fake_release, wheelhouse, "project", table)
    return build, _unpack(build.artifact, base / "unpacked")


def test_default_build_prints_a_size_table_and_runs(default_build: tuple[Build, Path],
                                                    fake_release: FakeRelease) -> None:
    build, root = default_build
    triple = fake_release.triple
    lines = [line.removeprefix(f"{triple}: ") for line in build.output.splitlines() if line.startswith(triple)]
    table = lines[lines.index(next(line for line in lines if line.startswith("part "))):]
    rows = {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line)[1:] for line in table[1:]}
    assert {"runtime (python/)", "launchers and manifest", "total unpacked", build.artifact.name} <= set(rows)
    assert any(label.startswith("rich ") for label in rows) and any(label.startswith("pbs-demo 1.0.0") for label in rows)
    assert float(rows[build.artifact.name][-1]) == pytest.approx(build.artifact.stat().st_size / 1e6, abs=0.01)
    assert float(rows["total unpacked"][-1]) == pytest.approx(_unpacked_size(root) / 1e6, abs=0.01)
    assert re.search(r"stage seconds: prepare=[\d.]+ copy=[\d.]+ install=[\d.]+ trim=[\d.]+ relocate=[\d.]+ "
                     r"bytecode=[\d.]+ launchers=[\d.]+ audit=[\d.]+ pack=[\d.]+ sbom=[\d.]+", build.output)
    result = _selftest(root, fake_release)
    assert (result.returncode, result.stdout) == (0, "pbs-demo: selftest: 5 of 5 checks passed\n"), result.stderr
    stdlib = next((root / "python" / "lib").glob("python3.*"))
    assert not (stdlib / "ensurepip").exists() and not (stdlib / "idlelib").exists()
    assert (stdlib / "tkinter").is_dir()  # kept by the default preset
    assert not list(stdlib.rglob("*.opt-1.pyc"))
    assert list((root / "app" / "rich").glob("__pycache__/*.pyc")) and (root / "app" / "rich" / "table.py").is_file()


def test_minimal_sourceless_zstd_build_is_smaller_and_runs(minimal_build: tuple[Build, Path],
                                                           default_build: tuple[Build, Path],
                                                           fake_release: FakeRelease) -> None:
    build, root = minimal_build
    assert build.artifact.name.endswith(".tar.zst")
    result = _selftest(root, fake_release)
    assert (result.returncode, result.stdout) == (0, "pbs-demo: selftest: 5 of 5 checks passed\n"), result.stderr
    result = _selftest(root, fake_release, "--version")
    assert (result.returncode, result.stdout) == (0, "pbs-demo 1.0.0\n")
    files = _files(root)
    assert "app/pbs_demo/cli.pyc" in files and not any(name.endswith(".py") for name in files
                                                       if name.startswith("app/pbs_demo/"))
    assert not any("__pycache__" in name for name in files)
    assert not any(name.endswith(".pyi") for name in files) and "app/rich/py.typed" not in files
    # Patterns apply before bytecode is compiled, in app/ as in python/: a module's .py named leaves the module out.
    assert "app/pygments/lexers/_php_builtins.py" not in files and "app/pygments/lexers/_php_builtins.pyc" not in files
    assert "app/pygments/lexers/_lua_builtins.pyc" in files
    stdlib = next((root / "python" / "lib").glob("python3.*"))
    assert not (stdlib / "tkinter").exists() and not (root / "python" / "include").exists()
    assert (stdlib / "json" / "__init__.pyc").is_file() and not (stdlib / "json" / "__init__.py").exists()
    default, default_root = default_build
    assert build.artifact.stat().st_size < default.artifact.stat().st_size
    assert _unpacked_size(root) < 0.8 * _unpacked_size(default_root)


def test_directory_format_without_bytecode(fake_release: FakeRelease, wheelhouse: Path, tmp_path: Path) -> None:
    build = _build(tmp_path, fake_release, wheelhouse, "project", 'archive-format = "dir"\nbytecode = "none"')
    root = build.artifact
    assert root.is_dir() and root.name == f"pbs-demo-1.0.0-{fake_release.triple}"
    assert (root.parent / f"{root.name}.cdx.json").is_file()
    assert (root.parent / "SHA256SUMS").read_text() == ""  # lists archives only
    assert not any(name.endswith(".pyc") for name in _files(root))
    # Real copies: a user editing the output cannot change the build's cache.
    interpreter = next((root / "python" / "bin").glob("python3.*"))
    assert interpreter.stat().st_nlink == 1
    result = _selftest(root, fake_release)
    assert result.returncode == 0, result.stderr
    # A rebuild replaces the directory.
    (root / "stray").write_text("left by a user")
    rebuilt = _rebuild(build)
    assert rebuilt.artifact == root and not (root / "stray").exists()


def test_rebuild_reuses_the_prepared_runtime_its_packed_part_and_bytecode(
        minimal_build: tuple[Build, Path], fake_release: FakeRelease, tmp_path: Path) -> None:
    build, _ = minimal_build
    runtimes = sorted(path.name for path in (build.cache / "runtimes").iterdir())
    packed = {path: path.stat().st_ino for path in (build.cache / "runtimes").glob("*/packed/*/part")}
    assert len(packed) == 1
    cold = build.artifact.read_bytes()
    warm = _rebuild(build)
    assert warm.artifact.read_bytes() == cold  # reusing changes nothing in the artifact
    assert re.search(r"bytecode: 0 files compiled, \d+ reused", warm.output)
    init = build.project / "src" / "pbs_demo" / "__init__.py"
    init.write_text(init.read_text().replace('"1.0.0"', '"1.0.0+touched"'))
    touched = _rebuild(build)
    assert re.search(r"bytecode: 1 files compiled, \d+ reused", touched.output)
    assert sorted(path.name for path in (build.cache / "runtimes").iterdir()) == runtimes
    assert {path: path.stat().st_ino for path in (build.cache / "runtimes").glob("*/packed/*/part")} == packed
    root = _unpack(touched.artifact, tmp_path / "unpacked")
    result = _selftest(root, fake_release, "--version")
    assert (result.returncode, result.stdout) == (0, "pbs-demo 1.0.0+touched\n"), result.stderr
    assert hashlib.sha256(touched.artifact.read_bytes()).hexdigest() != hashlib.sha256(cold).hexdigest()


def test_tar_gz_members_equal_the_directory_format(default_build: tuple[Build, Path], fake_release: FakeRelease,
                                                   wheelhouse: Path, tmp_path: Path) -> None:
    """The archive's runtime part is reused from the cache; its members are exactly the files the build staged."""
    build, _ = default_build
    unpacked = _unpack(build.artifact, tmp_path / "unpacked")  # afresh: running the app may write bytecode
    directory = _build(tmp_path, fake_release, wheelhouse, "project", 'archive-format = "dir"',
                       cache=build.cache).artifact
    assert _files(directory) == _files(unpacked)
    for name in sorted(_files(directory)):
        if name.startswith("python/"):
            assert (directory / name).read_bytes() == (unpacked / name).read_bytes(), name
            assert (directory / name).lstat().st_mode == (unpacked / name).lstat().st_mode, name


def test_a_dependency_nothing_imports_is_flagged_and_the_exclude_shown_drops_it(
        fake_release: FakeRelease, wheelhouse: Path, tmp_path: Path) -> None:
    """A dependency the application's code never imports (here a pure wheel ``unusedlib``; in the field pip and
    setuptools, declared by some distribution and never run) is marked in the size table with the ``exclude``
    that leaves it out; with that exclude the artifact no longer has it, and the app still runs."""
    from floor_support import retagged_wheel

    links = tmp_path / "links"
    links.mkdir()
    for wheel in wheelhouse.iterdir():
        (links / wheel.name).symlink_to(wheel)
    retagged_wheel(tmp_path / "wheels", links, "unusedlib", "1.0", "py3-none-any")
    minor = ".".join(fake_release.python_version.split(".")[:2])
    project = copy_example_project(tmp_path / "project", hook_table=f'python-version = "{minor}"')
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.9",', '"orjson>=3.9",\n  "unusedlib",'))
    env = {"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache"),
           "UV_OFFLINE": "1", "UV_FIND_LINKS": str(links), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    first = _rebuild(Build(project, "", project, tmp_path / "cache", env))
    rows = {line.split(": ", 1)[1].split()[0]: line for line in first.output.splitlines()
            if re.search(r": (unusedlib|rich|orjson|pbs-demo) \S+ +\d+ ", line)}
    assert rows["unusedlib"].endswith("not imported"), first.output
    assert not any(rows[name].endswith("not imported") for name in ("rich", "orjson", "pbs-demo")), first.output
    hint = next(line for line in first.output.splitlines() if "not imported by the scripts' code" in line)
    assert "unusedlib 1.0" in hint
    patterns = re.search(r"exclude = (\[.*\])$", hint).group(1)
    assert '"app/unusedlib/"' in patterns and '"app/unusedlib-1.0.dist-info/"' in patterns

    table = pyproject.read_text().replace(f'python-version = "{minor}"', f'python-version = "{minor}"\n'
                                                                          f'exclude = {patterns}')
    pyproject.write_text(table)
    second = _rebuild(Build(project, "", project, tmp_path / "cache", env))
    assert "not imported by the scripts' code" not in second.output, second.output
    root = _unpack(second.artifact, tmp_path / "unpacked")
    assert not any(name.startswith("app/unusedlib") for name in _files(root))
    result = _selftest(root, fake_release)
    assert result.returncode == 0, result.stdout + result.stderr
