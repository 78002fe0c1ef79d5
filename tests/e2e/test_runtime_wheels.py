"""Runtime wheels (``[tool.hatch.build.targets.wheel.hooks.pbs]`` with ``wheel = true``): built by the real
hatchling backend, checked as pip and uv would check them, installed with pip and with uv into virtual environments
of other Python versions of this machine, and run there with the source interpreter's prefix hidden."""

from __future__ import annotations

import base64
import csv
import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from e2e_support import (
    can_hide_directories,
    copy_example_project,
    run_hatchling,
    run_hidden,
)
from pbs_release import FakeRelease

from hatch_pbs.app.install import uv_executable
from hatch_pbs.forms.wheel import runtime_wheel_name, wheel_platform_tag
from hatch_pbs.release.triples import PlatformFloors

pytestmark = pytest.mark.e2e

WHEEL_TABLE = """
[tool.hatch.build.targets.wheel.hooks.pbs]
python-version = "{minor}"
manylinux = "{manylinux}"
wheel = true
"""


def _other_python(minor: str) -> Path | None:
    """An interpreter of CPython ``minor`` on this machine (pyenv's, or on PATH), or ``None``."""
    found = sorted(glob.glob(f"/root/.pyenv/versions/{minor}.*/bin/python{minor}")) or [
        path for path in [os.popen(f"command -v python{minor}").read().strip()] if path]
    return Path(found[-1]) if found else None


@pytest.fixture(scope="module")
def runtime_wheel(fake_release: FakeRelease, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("runtime-wheel")
    minor = ".".join(fake_release.python_version.split(".")[:2])
    project = copy_example_project(base / "project", hook_table="")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write(WHEEL_TABLE.format(minor=minor, manylinux=fake_release.manylinux))
    env = {"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(base / "cache"),
           "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(base / "uv-cache")}
    result = run_hatchling(project, "wheel", env)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (project / "dist").glob("*.whl")
    return wheel


def test_name_tags_and_wheel_file(runtime_wheel: Path, fake_release: FakeRelease) -> None:
    platform = wheel_platform_tag(fake_release.triple, fake_release.floors)  # the floor the runtime needs
    assert runtime_wheel.name == f"pbs_demo-1.0.0-py3-none-{platform}.whl"
    assert platform == f"manylinux_{fake_release.manylinux}_x86_64" or "aarch64" in platform
    with zipfile.ZipFile(runtime_wheel) as wheel:
        wheel_file = wheel.read("pbs_demo-1.0.0.dist-info/WHEEL").decode()
        metadata = wheel.read("pbs_demo-1.0.0.dist-info/METADATA").decode()
        entry_points = wheel.read("pbs_demo-1.0.0.dist-info/entry_points.txt").decode()
        names = wheel.namelist()
    assert "Root-Is-Purelib: false" in wheel_file
    assert sorted(line for line in wheel_file.splitlines() if line.startswith("Tag:")) == sorted(
        f"Tag: py3-none-{tag}" for tag in platform.split("."))
    assert "Requires-Dist" not in metadata and "Name: pbs-demo" in metadata
    assert entry_points == "[console_scripts]\npbs-demo = _pbs_launch_pbs_demo:script_pbs_demo\n"
    assert "pbs_demo/cli.py" in names  # the ordinary wheel's files are kept
    assert "pbs_demo.pbs-runtime/hatch-pbs-manifest.json" in names
    assert any(name.startswith("pbs_demo.pbs-runtime/app/rich/") for name in names)
    assert names[-1] == "pbs_demo-1.0.0.dist-info/RECORD"


def test_record_lists_every_file_with_its_hash(runtime_wheel: Path) -> None:
    with zipfile.ZipFile(runtime_wheel) as wheel:
        rows = list(csv.reader(io.StringIO(wheel.read("pbs_demo-1.0.0.dist-info/RECORD").decode())))
        assert sorted(row[0] for row in rows) == sorted(wheel.namelist())
        for name, digest, size in rows:
            if name == "pbs_demo-1.0.0.dist-info/RECORD":
                assert (digest, size) == ("", "")
                continue
            data = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, size) == (f"sha256={expected}", str(len(data))), name
        modes = {info.filename: info.external_attr >> 16 for info in wheel.infolist()}
    assert modes["pbs_demo.pbs-runtime/bin/pbs-demo"] & 0o111
    assert not any(mode & 0o170000 == 0o120000 for mode in modes.values())  # no symbolic links


#: Supported CPythons other than the running one (whose prefix the fake runtime comes from and the tests hide).
OTHER_MINORS = [minor for minor in ("3.12", "3.13", "3.10", "3.11")
                if minor != f"{sys.version_info.major}.{sys.version_info.minor}"]


@pytest.mark.parametrize(("installer", "minor"), [("pip", OTHER_MINORS[0]), ("uv", OTHER_MINORS[1]),
                                                  ("uv", OTHER_MINORS[2])])
def test_installs_into_another_python_and_runs_on_the_bundled_one(
        runtime_wheel: Path, fake_release: FakeRelease, tmp_path: Path, installer: str, minor: str) -> None:
    python = _other_python(minor)
    if python is None:
        pytest.skip(f"no CPython {minor} on this machine")
    venv = tmp_path / "venv"
    if installer == "pip":
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
        install = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--quiet", str(runtime_wheel)]
    else:
        subprocess.run([uv_executable(), "venv", "--quiet", "--python", str(python), str(venv)], check=True,
                       env={**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never"})
        install = [uv_executable(), "pip", "install", "--quiet", "--offline", "--no-index", "--python",
                   str(venv / "bin" / "python"), str(runtime_wheel)]
    result = subprocess.run(install, capture_output=True, text=True, check=False,
                            env={**os.environ, "UV_OFFLINE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    script = venv / "bin" / "pbs-demo"
    reason = can_hide_directories()
    if reason:
        pytest.skip(f"installed; cannot hide the source prefix to run it: {reason}")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    doctor = run_hidden(fake_release.source_prefix, [str(script), "doctor"], cwd=tmp_path, env=env)
    assert doctor.returncode == 0, doctor.stderr
    report = json.loads(doctor.stdout)
    assert report["python_version"] == fake_release.python_version  # the bundled runtime, not the venv's
    assert report["python_executable"].startswith(str(venv / "lib"))
    assert report["argv0"] == str(script)
    selftest = run_hidden(fake_release.source_prefix, [str(script), "selftest"], cwd=tmp_path, env=env)
    assert selftest.stdout == "pbs-demo: selftest: 5 of 5 checks passed\n", selftest.stderr
    status = run_hidden(fake_release.source_prefix, [str(script), "exit", "42"], cwd=tmp_path, env=env)
    assert status.returncode == 42
    assert sys.version_info[:2] != tuple(int(part) for part in minor.split("."))  # really another Python


def test_wheel_names_per_triple() -> None:
    base = "pbs_demo-1.0.0-py3-none-any.whl"
    assert runtime_wheel_name(base, "aarch64-apple-darwin") == "pbs_demo-1.0.0-py3-none-macosx_11_0_arm64.whl"
    assert runtime_wheel_name(base, "x86_64-pc-windows-msvc") == "pbs_demo-1.0.0-py3-none-win_amd64.whl"
    assert runtime_wheel_name(base, "aarch64-pc-windows-msvc") == "pbs_demo-1.0.0-py3-none-win_arm64.whl"
    assert runtime_wheel_name(base, "x86_64-unknown-linux-musl") == "pbs_demo-1.0.0-py3-none-musllinux_1_2_x86_64.whl"
    assert runtime_wheel_name(base, "aarch64-unknown-linux-gnu") == (
        "pbs_demo-1.0.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
    with pytest.raises(ValueError, match="not a wheel file name"):
        runtime_wheel_name("pbs_demo.tar.gz", "aarch64-apple-darwin")


def test_wheel_names_follow_the_floors() -> None:
    """The runtime wheel claims the floor the artifact was built for (options manylinux, macos)."""
    base = "pbs_demo-1.0.0-py3-none-any.whl"
    floors = PlatformFloors(manylinux=(2, 28), macos=(13, 0))
    assert runtime_wheel_name(base, "x86_64-unknown-linux-gnu", floors) == (
        "pbs_demo-1.0.0-py3-none-manylinux_2_28_x86_64.whl")
    assert runtime_wheel_name(base, "aarch64-apple-darwin", floors) == "pbs_demo-1.0.0-py3-none-macosx_13_0_arm64.whl"
    assert wheel_platform_tag("x86_64-pc-windows-msvc", floors) == "win_amd64"


def test_ordinary_wheels_are_unaffected(fake_release: FakeRelease, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table='python-version = "3.11"')
    result = run_hatchling(project, "wheel", {"HATCH_PBS_MIRROR": "http://127.0.0.1:9/unreachable",
                                              "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert [path.name for path in (project / "dist").iterdir()] == ["pbs_demo-1.0.0-py3-none-any.whl"]


def test_runtime_wheels_are_reproducible(fake_release: FakeRelease, wheelhouse: Path, tmp_path: Path) -> None:
    """Two builds of the same inputs, a second apart (so every file the second build writes is newer), give the
    same bytes: members written by the build get SOURCE_DATE_EPOCH, the runtime's keep the asset's times."""
    minor = ".".join(fake_release.python_version.split(".")[:2])
    wheels = []
    for name in ("one", "two"):
        project = copy_example_project(tmp_path / name / "project", hook_table="")
        with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
            pyproject.write(WHEEL_TABLE.format(minor=minor, manylinux=fake_release.manylinux))
        env = {"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(tmp_path / name / "cache"),
               "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
               "SOURCE_DATE_EPOCH": "1700000000"}
        result = run_hatchling(project, "wheel", env)
        assert result.returncode == 0, result.stdout + result.stderr
        (wheel,) = (project / "dist").glob("*.whl")
        wheels.append(wheel.read_bytes())
        time.sleep(1.1)
    assert wheels[0] == wheels[1]
