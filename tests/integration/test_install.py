"""Installing into the artifact (hatch_pbs.app.install) with the real uv, offline, from a local find-links directory.

The distributions are small projects built here with hatchling: pure-Python wheels, one with environment markers
for each platform, a source-only distribution, and wheels renamed to platform tags other than the target's (uv
chooses wheels by file name). uv's error texts are produced by running uv, never written by hand.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

import pytest
from floor_support import build_failing_sdist, build_hostbuilt_sdist, retagged_wheel

from hatch_pbs.app.install import (
    _distribution_without_wheel,
    acceptable_wheel_tags,
    install_distributions,
    uv_executable,
)
from hatch_pbs.bytecode.compiler import bytecode_worker_command, compile_bytecode
from hatch_pbs.errors import InstallError
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.triples import PlatformFloors
from hatch_pbs.runtime.site import APP_PTH_LINE, APP_PTH_NAME, write_app_pth

PYTHON_VERSION = platform.python_version()  # what uv is told the target runtime is
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"


def installed_distributions(site_dir: Path) -> list[dict[str, str]]:
    """``[{"name": ..., "version": ...}]`` of every distribution installed in ``site_dir``, sorted by name (read
    with :mod:`importlib.metadata`, independently of the installer's own record)."""
    found = {(dist.metadata["Name"], dist.version) for dist in distributions(path=[str(site_dir)])}
    return [{"name": name, "version": version} for name, version in sorted(found, key=lambda item: item[0].lower())]


# ----------------------------------------------------------------------------------------------------------------
# acceptable_wheel_tags()


class TestAcceptableWheelTags:
    def test_linux_gnu_x86_64(self) -> None:
        assert acceptable_wheel_tags("x86_64-unknown-linux-gnu", "3.12.7") == [
            "cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux2014_x86_64",
            "cp312-cp312-manylinux_2_16_x86_64", "cp312-cp312-manylinux_2_15_x86_64",
            "cp312-cp312-manylinux_2_14_x86_64", "cp312-cp312-manylinux_2_13_x86_64",
            "cp312-cp312-manylinux_2_12_x86_64", "...", "py3-none-any"]

    def test_linux_gnu_aarch64(self) -> None:
        assert acceptable_wheel_tags("aarch64-unknown-linux-gnu", "3.11.9") == [
            "cp311-cp311-manylinux_2_17_aarch64", "cp311-cp311-manylinux2014_aarch64",
            "cp311-abi3-manylinux_2_17_aarch64", "cp311-abi3-manylinux2014_aarch64",
            "cp311-none-manylinux_2_17_aarch64", "cp311-none-manylinux2014_aarch64",
            "cp310-abi3-manylinux_2_17_aarch64", "...", "py3-none-any"]

    def test_linux_gnu_with_a_floor(self) -> None:
        assert acceptable_wheel_tags("x86_64-unknown-linux-gnu", "3.12.7", floors=PlatformFloors(manylinux=(2, 28)),
                                     limit=3) == ["cp312-cp312-manylinux_2_28_x86_64",
                                                  "cp312-cp312-manylinux_2_27_x86_64", "...", "py3-none-any"]

    def test_cpu_level_does_not_change_the_tags(self) -> None:
        assert acceptable_wheel_tags("x86_64_v3-unknown-linux-gnu", "3.12.7") == \
            acceptable_wheel_tags("x86_64-unknown-linux-gnu", "3.12.7")

    def test_linux_musl(self) -> None:
        assert acceptable_wheel_tags("x86_64-unknown-linux-musl", "3.13.1") == [
            "cp313-cp313-musllinux_1_2_x86_64", "cp313-cp313-musllinux_1_1_x86_64",
            "cp313-abi3-musllinux_1_2_x86_64", "cp313-abi3-musllinux_1_1_x86_64",
            "cp313-none-musllinux_1_2_x86_64", "cp313-none-musllinux_1_1_x86_64",
            "cp312-abi3-musllinux_1_2_x86_64", "...", "py3-none-any"]

    def test_macos_arm64(self) -> None:
        assert acceptable_wheel_tags("aarch64-apple-darwin", "3.12.7") == [
            "cp312-cp312-macosx_11_0_arm64", "cp312-cp312-macosx_11_0_universal2",
            "cp312-cp312-macosx_10_16_universal2", "cp312-cp312-macosx_10_15_universal2",
            "cp312-cp312-macosx_10_14_universal2", "cp312-cp312-macosx_10_13_universal2",
            "cp312-cp312-macosx_10_12_universal2", "...", "py3-none-any"]

    def test_macos_x86_64(self) -> None:
        assert acceptable_wheel_tags("x86_64-apple-darwin", "3.12.7") == [
            "cp312-cp312-macosx_11_0_x86_64", "cp312-cp312-macosx_11_0_intel", "cp312-cp312-macosx_11_0_fat64",
            "cp312-cp312-macosx_11_0_fat3", "cp312-cp312-macosx_11_0_universal2",
            "cp312-cp312-macosx_11_0_universal", "cp312-cp312-macosx_10_16_x86_64", "...", "py3-none-any"]

    def test_macos_with_a_floor(self) -> None:
        twelve = PlatformFloors(macos=(12, 0))
        assert acceptable_wheel_tags("aarch64-apple-darwin", "3.12.7", floors=twelve) == [
            "cp312-cp312-macosx_12_0_arm64", "cp312-cp312-macosx_12_0_universal2",
            "cp312-cp312-macosx_11_0_arm64", "cp312-cp312-macosx_11_0_universal2",
            "cp312-cp312-macosx_10_16_universal2", "cp312-cp312-macosx_10_15_universal2",
            "cp312-cp312-macosx_10_14_universal2", "...", "py3-none-any"]
        assert acceptable_wheel_tags("x86_64-apple-darwin", "3.12.7", floors=twelve) == [
            "cp312-cp312-macosx_12_0_x86_64", "cp312-cp312-macosx_12_0_intel", "cp312-cp312-macosx_12_0_fat64",
            "cp312-cp312-macosx_12_0_fat3", "cp312-cp312-macosx_12_0_universal2",
            "cp312-cp312-macosx_12_0_universal", "cp312-cp312-macosx_11_0_x86_64", "...", "py3-none-any"]

    def test_windows_amd64(self) -> None:
        assert acceptable_wheel_tags("x86_64-pc-windows-msvc", "3.12.7") == [
            "cp312-cp312-win_amd64", "cp312-abi3-win_amd64", "cp312-none-win_amd64", "cp311-abi3-win_amd64",
            "cp310-abi3-win_amd64", "cp39-abi3-win_amd64", "cp38-abi3-win_amd64", "...", "py3-none-any"]

    def test_windows_arm64(self) -> None:
        assert acceptable_wheel_tags("aarch64-pc-windows-msvc", "3.11.7") == [
            "cp311-cp311-win_arm64", "cp311-abi3-win_arm64", "cp311-none-win_arm64", "cp310-abi3-win_arm64",
            "cp39-abi3-win_arm64", "cp38-abi3-win_arm64", "cp37-abi3-win_arm64", "...", "py3-none-any"]

    def test_limit(self) -> None:
        assert acceptable_wheel_tags("x86_64-pc-windows-msvc", "3.12.7", limit=3) == [
            "cp312-cp312-win_amd64", "cp312-abi3-win_amd64", "...", "py3-none-any"]
        everything = acceptable_wheel_tags("x86_64-pc-windows-msvc", "3.12.7", limit=100)
        assert "..." not in everything
        assert everything[0] == "cp312-cp312-win_amd64"
        assert everything[-2:] == ["cp32-abi3-win_amd64", "py3-none-any"]
        assert len(everything) == 3 + 10 + 1  # cp312 x3, abi3 for cp311..cp32, py3-none-any


# ----------------------------------------------------------------------------------------------------------------
# A local find-links directory of real distributions


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    dependencies: tuple[str, ...] = ()
    target: str = "wheel"
    rename_tag: str | None = None  # rename the built wheel to this python-abi-platform tag


PROJECTS = (
    Project("HatchPbs-Demo-App", "1.0", (
        'WinOnly; sys_platform == "win32"',
        'posixonly; os_name == "posix"',
        'ArmMac; sys_platform == "darwin" and platform_machine == "arm64"',
    )),
    Project("WinOnly", "1.0"),
    Project("posixonly", "2.0"),
    Project("ArmMac", "0.1"),
    Project("onlysdist", "0.1", target="sdist"),
    Project("needs-onlysdist", "1.0", ("onlysdist",)),
    Project("macwheel", "1.0", rename_tag="py3-none-macosx_12_0_arm64"),
    Project("linuxonly", "1.0", rename_tag=f"{CP}-{CP}-manylinux_2_17_x86_64"),
    Project("linuxonly", "1.1", rename_tag=f"{CP}-{CP}-manylinux_2_17_x86_64"),
    Project("linuxone", "2.0", rename_tag=f"{CP}-{CP}-manylinux_2_17_x86_64"),
    # Wheels for a newer glibc only, as pyarrow and recent Pillow publish them (Pillow's compressed tag set too).
    Project("newglibc", "1.0", rename_tag=f"{CP}-{CP}-manylinux_2_28_x86_64"),
    Project("newglibc", "1.0", rename_tag=f"{CP}-{CP}-manylinux_2_34_aarch64"),
    Project("pillowlike", "1.0", rename_tag=f"{CP}-{CP}-manylinux_2_27_x86_64.manylinux_2_28_x86_64"),
    Project("needs-newglibc", "1.0", ("newglibc",)),
    Project("needs-hostbuilt", "1.0", ("hostbuilt",)),
)



def build_project(work: Path, links: Path, project: Project) -> Path:
    package = project.name.lower().replace("-", "_")
    root = work / f"{package}-{project.version}-{project.rename_tag or project.target}"  # a tag: one build each
    (root / "src" / package).mkdir(parents=True)
    (root / "src" / package / "__init__.py").write_text(f"VERSION = {project.version!r}\n")
    dependencies = ", ".join(f"'{dependency}'" for dependency in project.dependencies)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "{project.name}"\nversion = "{project.version}"\ndependencies = [{dependencies}]\n\n'
        f'[tool.hatch.build.targets.wheel]\npackages = ["src/{package}"]\n')
    out = root / "dist"
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", project.target, "-d", str(out)], cwd=root,
                   check=True, capture_output=True)
    (built,) = out.iterdir()
    name = built.name
    if project.rename_tag:
        name = f"{package}-{project.version}-{project.rename_tag}.whl"
    return Path(shutil.copyfile(built, links / name))


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("projects")
    directory = tmp_path_factory.mktemp("links")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda project: build_project(work, directory, project), PROJECTS))
    build_hostbuilt_sdist(work, directory)
    return directory


@pytest.fixture
def offline(links: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """uv's environment as a build gives it: only ``links``, no index, no network (``UV_NO_INDEX`` for uv versions
    that read it; ``UV_OFFLINE`` keeps PyPI out in any case)."""
    monkeypatch.setenv("UV_FIND_LINKS", str(links))
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "uv-cache"))
    monkeypatch.delenv("MACOSX_DEPLOYMENT_TARGET", raising=False)
    return links


def test_the_find_links_directory(links: Path) -> None:
    assert sorted(path.name for path in links.iterdir()) == sorted([
        "armmac-0.1-py2.py3-none-any.whl",
        "hatchpbs_demo_app-1.0-py2.py3-none-any.whl",
        "hostbuilt-1.0.tar.gz",
        f"linuxone-2.0-{CP}-{CP}-manylinux_2_17_x86_64.whl",
        f"linuxonly-1.0-{CP}-{CP}-manylinux_2_17_x86_64.whl",
        f"linuxonly-1.1-{CP}-{CP}-manylinux_2_17_x86_64.whl",
        "macwheel-1.0-py3-none-macosx_12_0_arm64.whl",
        "needs_hostbuilt-1.0-py2.py3-none-any.whl",
        "needs_newglibc-1.0-py2.py3-none-any.whl",
        "needs_onlysdist-1.0-py2.py3-none-any.whl",
        f"newglibc-1.0-{CP}-{CP}-manylinux_2_28_x86_64.whl",
        f"newglibc-1.0-{CP}-{CP}-manylinux_2_34_aarch64.whl",
        "onlysdist-0.1.tar.gz",
        f"pillowlike-1.0-{CP}-{CP}-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "posixonly-2.0-py2.py3-none-any.whl",
        "winonly-1.0-py2.py3-none-any.whl",
    ])


# ----------------------------------------------------------------------------------------------------------------
# _distribution_without_wheel() on uv's own words


def uv_error(target: Path, requirement: str, platform_: str, **environment: str) -> str:
    """uv's output for a failing ``uv pip install --target`` of ``requirement`` for ``platform_``, wheels only."""
    command = [uv_executable(), "pip", "install", "--target", str(target), "--python", sys.executable,
               "--python-platform", platform_, "--python-version", f"{sys.version_info[0]}.{sys.version_info[1]}",
               "--only-binary", ":all:", requirement]
    proc = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **environment}, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    return proc.stderr


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(("requirement", "platform_", "says", "expected"), [
    ("onlysdist", "aarch64-apple-darwin", "Wheels are required for `onlysdist`", "onlysdist"),
    ("onlysdist==0.1", "x86_64-pc-windows-msvc", "onlysdist==0.1 has no usable wheels", "onlysdist"),
    ("needs-onlysdist", "aarch64-unknown-linux-musl", "needs-onlysdist depend on onlysdist", "onlysdist"),
    ("linuxone", "aarch64-apple-darwin", "linuxone==2.0 has no wheels with a matching platform tag", "linuxone"),
    ("linuxonly", "x86_64-pc-windows-msvc", "all versions of linuxonly have no wheels with a matching platform",
     "linuxonly"),
    ("macwheel", "aarch64-apple-darwin", "macwheel==1.0 has no wheels with a matching platform tag", "macwheel"),
    ("nonexistent-dist", "aarch64-apple-darwin", "nonexistent-dist was not found", None),
])
def test_distribution_without_wheel_from_uv(tmp_path: Path, requirement: str, platform_: str, says: str,
                                            expected: str | None) -> None:
    output = uv_error(tmp_path / "target", requirement, platform_, MACOSX_DEPLOYMENT_TARGET="11.0")
    assert says in output, output
    assert _distribution_without_wheel(output) == expected


def test_distribution_without_wheel_for_a_source_distribution_given_directly(offline: Path, tmp_path: Path) -> None:
    output = uv_error(tmp_path / "target", str(offline / "onlysdist-0.1.tar.gz"), "aarch64-apple-darwin")
    assert "Building source distributions is disabled, but attempted to build `onlysdist`" in output, output
    assert _distribution_without_wheel(output) == "onlysdist"


@pytest.mark.parametrize("text", ["", "error: Failed to download `orjson==3.10.0`", "Resolved 3 packages in 2ms"])
def test_distribution_without_wheel_in_other_texts_is_none(text: str) -> None:
    assert _distribution_without_wheel(text) is None


# ----------------------------------------------------------------------------------------------------------------
# install_distributions() end to end, for foreign targets


def app_wheel(links: Path) -> str:
    return str(links / "hatchpbs_demo_app-1.0-py2.py3-none-any.whl")


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(("triple", "expected"), [
    ("x86_64-pc-windows-msvc", [("HatchPbs-Demo-App", "1.0"), ("WinOnly", "1.0")]),
    ("aarch64-pc-windows-msvc", [("HatchPbs-Demo-App", "1.0"), ("WinOnly", "1.0")]),
    ("aarch64-apple-darwin", [("ArmMac", "0.1"), ("HatchPbs-Demo-App", "1.0"), ("posixonly", "2.0")]),
    ("x86_64-apple-darwin", [("HatchPbs-Demo-App", "1.0"), ("posixonly", "2.0")]),
    ("aarch64-unknown-linux-gnu", [("HatchPbs-Demo-App", "1.0"), ("posixonly", "2.0")]),
    ("x86_64-unknown-linux-musl", [("HatchPbs-Demo-App", "1.0"), ("posixonly", "2.0")]),
])
def test_markers_are_evaluated_for_the_target(links: Path, tmp_path: Path, triple: str,
                                              expected: list[tuple[str, str]]) -> None:
    site = tmp_path / "artifact" / "app"
    install_distributions(Path(sys.executable), site, [app_wheel(links)], triple=triple,
                          python_version=PYTHON_VERSION, foreign=True)
    assert installed_distributions(site) == [{"name": name, "version": version} for name, version in expected]
    assert not (site / ".lock").exists()  # uv's lock of the target directory is not left in the artifact
    packages = {path.name for path in site.iterdir() if not path.name.endswith(".dist-info")}
    assert packages == {name.lower().replace("-", "_") for name, _ in expected}
    assert (site / "hatchpbs_demo_app" / "__init__.py").read_text() == "VERSION = '1.0'\n"


def test_the_host_triple_installs_too(offline: Path, tmp_path: Path) -> None:
    site = tmp_path / "app"
    install_distributions(Path(sys.executable), site, [app_wheel(offline)], triple="x86_64-unknown-linux-gnu",
                          python_version=PYTHON_VERSION, foreign=False)
    assert installed_distributions(site) == [{"name": "HatchPbs-Demo-App", "version": "1.0"},
                                             {"name": "posixonly", "version": "2.0"}]


def test_a_dependency_with_only_an_sdist_fails_naming_it(offline: Path, tmp_path: Path) -> None:
    site = tmp_path / "app"
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), site, ["needs-onlysdist"], triple="aarch64-apple-darwin",
                              python_version=PYTHON_VERSION, foreign=True)
    message = str(info.value)
    first, second, *tail = message.splitlines()
    assert first == (
        f"onlysdist has no usable wheel for aarch64-apple-darwin (Python {PYTHON_VERSION}); acceptable wheel tags: "
        f"{CP}-{CP}-macosx_11_0_arm64, {CP}-{CP}-macosx_11_0_universal2, {CP}-{CP}-macosx_10_16_universal2, "
        f"{CP}-{CP}-macosx_10_15_universal2, {CP}-{CP}-macosx_10_14_universal2, "
        f"{CP}-{CP}-macosx_10_13_universal2, {CP}-{CP}-macosx_10_12_universal2, ..., py3-none-any; no floor uv "
        f"knows has a wheel for it, and source distributions cannot be built for another platform")
    assert second == ("installing the application and its dependencies for aarch64-apple-darwin with uv failed "
                      "(exit status 1):")
    assert "hint: Wheels are required for `onlysdist`" in "\n".join(tail)
    assert list(site.iterdir()) == []


def test_a_dependency_with_wheels_for_other_platforms_only_fails_naming_it(offline: Path, tmp_path: Path) -> None:
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "app", ["linuxonly"], triple="x86_64-pc-windows-msvc",
                              python_version=PYTHON_VERSION, foreign=True)
    assert str(info.value).startswith(
        f"linuxonly has no usable wheel for x86_64-pc-windows-msvc (Python {PYTHON_VERSION}); acceptable wheel "
        f"tags: {CP}-{CP}-win_amd64, {CP}-abi3-win_amd64, {CP}-none-win_amd64, ")


def test_the_macos_floor_chooses_the_wheels(offline: Path, tmp_path: Path) -> None:
    """A wheel for macOS 12 does not suit the default floor (11.0), and does suit 12.0 (uv is told with
    ``MACOSX_DEPLOYMENT_TARGET``)."""
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "default", ["macwheel"],
                              triple="aarch64-apple-darwin", python_version=PYTHON_VERSION, foreign=True)
    assert str(info.value).startswith(f"macwheel has no usable wheel for aarch64-apple-darwin (Python "
                                      f"{PYTHON_VERSION}); acceptable wheel tags: {CP}-{CP}-macosx_11_0_arm64, ")
    assert "(e.g., `macosx_11_0_arm64`)" in str(info.value)

    install_distributions(Path(sys.executable), tmp_path / "twelve", ["macwheel"], triple="aarch64-apple-darwin",
                          python_version=PYTHON_VERSION, foreign=True, floors=PlatformFloors(macos=(12, 0)))
    assert installed_distributions(tmp_path / "twelve") == [{"name": "macwheel", "version": "1.0"}]


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(("triple", "floor", "requirement", "expected"), [
    ("x86_64-unknown-linux-gnu", (2, 28), "needs-newglibc", [("needs-newglibc", "1.0"), ("newglibc", "1.0")]),
    ("x86_64-unknown-linux-gnu", (2, 28), "pillowlike", [("pillowlike", "1.0")]),
    ("aarch64-unknown-linux-gnu", (2, 34), "newglibc", [("newglibc", "1.0")]),
])
def test_the_glibc_floor_chooses_the_wheels(tmp_path: Path, triple: str, floor: tuple[int, int], requirement: str,
                                            expected: list[tuple[str, str]]) -> None:
    """Wheels for glibc 2.28 (or 2.34) are refused at the default floor and installed at that floor."""
    with pytest.raises(InstallError, match="has no usable wheel for"):
        install_distributions(Path(sys.executable), tmp_path / "default", [requirement], triple=triple,
                              python_version=PYTHON_VERSION, foreign=True)
    site = tmp_path / "raised"
    distributions = install_distributions(Path(sys.executable), site, [requirement], triple=triple,
                                          python_version=PYTHON_VERSION, foreign=True,
                                          floors=PlatformFloors(manylinux=floor))
    assert installed_distributions(site) == [{"name": name, "version": version} for name, version in expected]
    wheels = {entry["name"]: entry["wheel"] for entry in distributions}
    assert wheels[expected[-1][0]].endswith(f"_2_{floor[1]}_{triple.split('-')[0]}.whl")


HOST_LINUX = "x86_64-unknown-linux-gnu"  # what install_distributions is told the host is; uv only needs the name


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(("triple", "foreign", "requirement", "missing", "option", "needs"), [
    (HOST_LINUX, False, "needs-newglibc", "newglibc", 'manylinux = "2_28"', "glibc 2.28"),
    (HOST_LINUX, True, "pillowlike", "pillowlike", 'manylinux = "2_28"', "glibc 2.28"),  # 2_27: uv has no 2_27
    ("aarch64-unknown-linux-gnu", True, "newglibc", "newglibc", 'manylinux = "2_34"', "glibc 2.34"),
    ("aarch64-apple-darwin", True, "macwheel", "macwheel", 'macos = "12.0"', "macOS 12.0"),
])
def test_a_dependency_with_wheels_for_a_newer_floor_names_that_floor(
        tmp_path: Path, triple: str, foreign: bool, requirement: str, missing: str, option: str, needs: str) -> None:
    """The default floor refuses the wheels (the host triple too: no silent build from source), and the message
    names the lowest floor option uv knows at which they are accepted, found by asking uv."""
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "app", [requirement], triple=triple,
                              python_version=PYTHON_VERSION, foreign=foreign)
    first = str(info.value).splitlines()[0]
    tags = ", ".join(acceptable_wheel_tags(triple, PYTHON_VERSION))
    assert first == (f"{missing} has no usable wheel for {triple} (Python {PYTHON_VERSION}); acceptable wheel tags: "
                     f"{tags}; it has wheels for a newer platform: set {option} (the artifacts then need {needs} "
                     f"or newer)")


def test_an_sdist_only_dependency_of_the_host_triple_is_not_built_by_default(offline: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "builds.log"
    monkeypatch.setenv("HOSTBUILT_BUILD_LOG", str(log))
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "app", ["needs-hostbuilt"], triple=HOST_LINUX,
                              python_version=PYTHON_VERSION, foreign=False)
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"hostbuilt has no usable wheel for {HOST_LINUX} (Python {PYTHON_VERSION}); acceptable "
                            f"wheel tags: {CP}-{CP}-manylinux_2_17_x86_64, ")
    assert first.endswith("; no floor uv knows has a wheel for it: build-from-source = true builds it from its "
                          "source distribution on this machine (the host triple only; the wheel is cached)")
    assert not log.exists()  # nothing was compiled, not even metadata


def test_build_from_source_builds_for_the_host_triple_once(offline: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The sdist is built by the installer's interpreter, its wheel kept in the cache by the sdist's sha256, and
    a second install (another artifact, uv's cache emptied) reuses it: the backend runs once."""
    from hatch_pbs.release.cache import Cache, sha256_of

    log = tmp_path / "builds.log"
    monkeypatch.setenv("HOSTBUILT_BUILD_LOG", str(log))
    cache = Cache(tmp_path / "cache")
    results = []
    for attempt in ("first", "second"):
        monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / f"uv-cache-{attempt}"))
        site = tmp_path / attempt / "app"
        results.append(install_distributions(Path(sys.executable), site, ["needs-hostbuilt"], triple=HOST_LINUX,
                                             python_version=PYTHON_VERSION, foreign=False, build_from_source=True,
                                             cache=cache))
        assert (site / "hostbuilt" / "__init__.py").read_text() == "BUILT_HERE = True\n"
    assert log.read_text() == "built\n"
    sdist_sha256 = sha256_of(offline / "hostbuilt-1.0.tar.gz")
    (cached,) = cache.built_wheel_dir(HOST_LINUX, PYTHON_VERSION, sdist_sha256).iterdir()
    assert cached.name.startswith(f"hostbuilt-1.0-{CP}-{CP}-linux_")
    assert results[0] == results[1]
    assert {"name": "hostbuilt", "version": "1.0", "wheel": None, "sdist": "hostbuilt-1.0.tar.gz",
            "sha256": sdist_sha256} in results[0]


def _offer_brokenbuild(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only brokenbuild 1.0 for uv, offline: its sdist (whose build fails after 200 lines of output) and a wheel
    for manylinux_2_28 x86_64."""
    links = tmp_path / "links"
    links.mkdir()
    build_failing_sdist(tmp_path, links)
    retagged_wheel(tmp_path, links, "brokenbuild", "1.0", "py3-none-manylinux_2_28_x86_64")
    for name, value in (("UV_FIND_LINKS", str(links)), ("UV_NO_INDEX", "1"), ("UV_OFFLINE", "1"),
                        ("UV_CACHE_DIR", str(tmp_path / "uv-cache"))):
        monkeypatch.setenv(name, value)


def test_a_failed_source_build_keeps_uvs_lines_and_names_the_floor_with_a_wheel(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """build-from-source on the host triple: brokenbuild's sdist fails to build after 200 lines of output, and it
    has a wheel at a newer glibc. The message names the distribution and version, keeps uv's own error lines (cut
    off by the tail of the output otherwise) and names the floor at which the wheel would be used."""
    _offer_brokenbuild(tmp_path, monkeypatch)
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "app", ["brokenbuild"], triple=HOST_LINUX,
                              python_version=PYTHON_VERSION, foreign=False, build_from_source=True,
                              cache=Cache(tmp_path / "cache"))
    message = str(info.value)
    first, *rest = message.splitlines()
    assert first.startswith("brokenbuild")
    assert f"from source for {HOST_LINUX}" in first or "could not be built from its source distribution" in first
    assert 'set manylinux = "2_28" (the artifacts then need glibc 2.28 or newer)' in first, message
    assert any("Failed to build" in line and "brokenbuild" in line for line in rest), message  # uv's own line
    assert any("more lines of output" in line for line in rest), message
    assert rest[-1].strip() != "" and len(rest) < 60, message


def test_a_failed_build_by_uv_from_a_universal_lock_names_the_distribution_version_and_floor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The universal lock of several triples lists brokenbuild's sdist and its manylinux_2_28 wheel; uv builds the
    sdist for the host at the 2_17 floor, which fails after a long build log. The message names the distribution
    and version and the floor at which the lock's wheel would do, and keeps uv's `Failed to build` line."""
    from hatch_pbs.app.universal import universal_lock

    _offer_brokenbuild(tmp_path, monkeypatch)
    requirements_in = tmp_path / "requirements.in"
    requirements_in.write_text("brokenbuild\n", encoding="utf-8")
    lock = universal_lock(uv_executable(), Path(sys.executable), requirements_in, tmp_path / "pylock.toml",
                          python_version=PYTHON_VERSION, only_binary=False)
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "app", [], triple=HOST_LINUX,
                              python_version=PYTHON_VERSION, foreign=False, build_from_source=True,
                              cache=Cache(tmp_path / "cache"), universal_lock=lock)
    message = str(info.value)
    first = message.splitlines()[0]
    assert first.startswith(f"brokenbuild 1.0 could not be built from its source distribution for {HOST_LINUX}")
    assert first.endswith('set manylinux = "2_28" (the artifacts then need glibc 2.28 or newer)'), message
    assert "Failed to build `brokenbuild==1.0`" in message  # uv's own line, before the backend's 200 lines
    assert "more lines of output" in message


def test_build_from_source_never_builds_for_another_platform(offline: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "builds.log"
    monkeypatch.setenv("HOSTBUILT_BUILD_LOG", str(log))
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "app", ["needs-hostbuilt"],
                              triple="aarch64-unknown-linux-gnu", python_version=PYTHON_VERSION, foreign=True,
                              build_from_source=True, cache=Cache(tmp_path / "cache"))
    assert str(info.value).splitlines()[0].endswith(
        "; no floor uv knows has a wheel for it, and source distributions cannot be built for another platform")
    assert not log.exists()


def test_other_uv_failures_are_reported_as_they_are(offline: Path, tmp_path: Path) -> None:
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "app", ["nonexistent-dist"],
                              triple="x86_64-pc-windows-msvc", python_version=PYTHON_VERSION, foreign=True)
    message = str(info.value)
    assert message.startswith("installing the application and its dependencies for x86_64-pc-windows-msvc with uv "
                              "failed (exit status 1):\n")
    assert "nonexistent-dist" in message
    assert "has no usable wheel" not in message


@pytest.mark.parametrize("triple", ["ppc64le-unknown-linux-gnu", "s390x-unknown-linux-gnu",
                                    "armv7-unknown-linux-gnueabihf"])
def test_a_platform_uv_cannot_install_for(tmp_path: Path, triple: str) -> None:
    with pytest.raises(InstallError) as info:
        install_distributions(Path(sys.executable), tmp_path / "app", ["anything"], triple=triple,
                              python_version=PYTHON_VERSION, foreign=True)
    assert str(info.value).startswith(f"installing wheels for {triple} is not supported (uv knows no such platform); "
                                      "supported: aarch64-darwin, ")
    assert not (tmp_path / "app").exists()


# ----------------------------------------------------------------------------------------------------------------
# write_app_pth(), installed_distributions(), compile_bytecode()


def test_write_app_pth(tmp_path: Path) -> None:
    site_packages = tmp_path / "python" / "lib" / "python3.12" / "site-packages"
    path = write_app_pth(site_packages)
    assert path == site_packages / APP_PTH_NAME == site_packages / "_hatch_pbs_app.pth"
    assert path.read_bytes() == (b"import os, site, sys; site.addsitedir(os.path.join(os.path.dirname(sys.prefix), "
                                 b"'app'))\n")
    assert path.read_text(encoding="utf-8") == APP_PTH_LINE
    assert write_app_pth(site_packages) == path  # idempotent
    assert [p.name for p in site_packages.iterdir()] == [APP_PTH_NAME]


def test_app_pth_puts_the_sibling_app_directory_on_sys_path(tmp_path: Path) -> None:
    """In a real interpreter whose ``sys.prefix`` is ``<root>/python`` (a virtual environment stands in for the
    runtime), ``<root>/app`` becomes a site directory: its modules import and its ``.pth`` files are honoured."""
    root = tmp_path / "my artifact"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "python")], check=True)
    python = root / "python" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site_packages = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        capture_output=True, text=True, check=True).stdout.strip())
    write_app_pth(site_packages)
    (root / "app" / "extra").mkdir(parents=True)
    (root / "app" / "demo_module.py").write_text("VALUE = 42\n")
    (root / "app" / "extra" / "extra_module.py").write_text("VALUE = 7\n")
    (root / "app" / "extra.pth").write_text("extra\n")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    code = "import demo_module, extra_module; print(demo_module.VALUE, extra_module.VALUE)"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                          env=environment)
    assert proc.stdout == "42 7\n"


def test_installed_distributions_sorted_case_insensitively(tmp_path: Path) -> None:
    for directory, name, version in [("zeta-1.0", "zeta", "1.0"), ("alpha-2.0", "Alpha", "2.0"),
                                     ("beta-0.1", "beta", "0.1"), ("Beta_Two-3", "Beta-Two", "3")]:
        metadata = tmp_path / f"{directory}.dist-info" / "METADATA"
        metadata.parent.mkdir()
        metadata.write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (tmp_path / "not_a_distribution").mkdir()
    assert installed_distributions(tmp_path) == [
        {"name": "Alpha", "version": "2.0"}, {"name": "beta", "version": "0.1"},
        {"name": "Beta-Two", "version": "3"}, {"name": "zeta", "version": "1.0"}]


def test_installed_distributions_of_an_empty_or_missing_directory(tmp_path: Path) -> None:
    assert installed_distributions(tmp_path) == []
    assert installed_distributions(tmp_path / "missing") == []


def test_compile_bytecode_writes_unchecked_hash_pycs(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    compile_bytecode(Path(sys.executable), tmp_path)
    (pyc,) = (tmp_path / "pkg" / "__pycache__").iterdir()
    assert pyc.name == f"__init__.{sys.implementation.cache_tag}.pyc"
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01  # hash-based, source not checked (PEP 552)


def test_compile_bytecode_failure(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "broken.py").write_text("x = 1\ndef broken(:\n")
    (tmp_path / "site" / "fine.py").write_text("x = 1\n")
    with pytest.raises(InstallError) as info:
        compile_bytecode(Path(sys.executable), tmp_path / "site", recorded_as="app")
    assert str(info.value) == ("compiling bytecode with the bundled runtime failed:\n"
                               "app/broken.py, line 2: SyntaxError: invalid syntax")
    with pytest.raises(InstallError, match=r"^compiling bytecode with the bundled runtime failed: cannot run "):
        compile_bytecode(tmp_path / "no-such-python", tmp_path)


def test_compile_bytecode_with_a_cache_below_a_regular_file_is_one_line(tmp_path: Path) -> None:
    """The worker's own OSError (its bytecode cache cannot be created: a file is in the way) is one line naming the
    path and the cause, not the worker's traceback."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "fine.py").write_text("x = 1\n")
    (tmp_path / "not-a-directory").write_text("")
    with pytest.raises(InstallError) as info:
        compile_bytecode(Path(sys.executable), tmp_path / "site", cache_dir=tmp_path / "not-a-directory" / "bytecode")
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message
    assert message.startswith("compiling bytecode with the bundled runtime failed: Not a directory ("), message
    assert str(tmp_path / "not-a-directory" / "bytecode") in message


def test_compile_bytecode_of_a_site_dir_that_cannot_be_listed_fails(tmp_path: Path) -> None:
    """A site directory that cannot be listed is an error naming it, not an empty directory with nothing to
    compile (root reads every directory whatever its mode, so it is a file here)."""
    (tmp_path / "site").write_text("x = 1\n")
    with pytest.raises(InstallError) as info:
        compile_bytecode(Path(sys.executable), tmp_path / "site")
    assert str(info.value) == (f"compiling bytecode with the bundled runtime failed: Not a directory "
                               f"({tmp_path / 'site'})")


def test_compile_bytecode_not_strict_keeps_what_does_not_compile(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("print 'python 2'\n")
    (tmp_path / "fine.py").write_text("x = 1\n")
    assert compile_bytecode(Path(sys.executable), tmp_path, sourceless=True, strict=False) == {
        "compiled": 1, "reused": 0, "damaged": []}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.py", "fine.pyc"]


def test_compile_bytecode_reuses_the_cache_by_content(tmp_path: Path) -> None:
    site, cache = tmp_path / "app", tmp_path / "cache"
    (site / "pkg").mkdir(parents=True)
    for index in range(60):  # enough to compile in worker processes
        (site / "pkg" / f"module{index}.py").write_text(f"VALUE = {index}\n")
    assert compile_bytecode(Path(sys.executable), site, cache_dir=cache) == {"compiled": 60, "reused": 0,
                                                                            "damaged": []}
    first = {path.name: path.read_bytes() for path in (site / "pkg" / "__pycache__").iterdir()}
    shutil.rmtree(site / "pkg" / "__pycache__")
    (site / "pkg" / "module0.py").write_text("VALUE = 'changed'\n")
    assert compile_bytecode(Path(sys.executable), site, cache_dir=cache) == {"compiled": 1, "reused": 59,
                                                                            "damaged": []}
    second = {path.name: path.read_bytes() for path in (site / "pkg" / "__pycache__").iterdir()}
    changed = f"module0.{sys.implementation.cache_tag}.pyc"
    assert {name for name in first if first[name] != second[name]} == {changed}
    result = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                             "import pkg.module0 as m; print(m.VALUE)", str(site)], capture_output=True, text=True,
                            check=True)
    assert result.stdout == "changed\n"
    # The same source under another recorded name is another entry: its tracebacks must name the right file.
    assert compile_bytecode(Path(sys.executable), site, cache_dir=cache, recorded_as="elsewhere")["reused"] == 0


@pytest.mark.parametrize("how", ["empty", "half", "header only", "flipped"])
def test_a_damaged_cached_pyc_is_compiled_again_never_copied(tmp_path: Path, how: str) -> None:
    from hatch_pbs.bytecode.worker import entry_verdict

    site, cache = tmp_path / "app", tmp_path / "cache"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("")
    (site / "pkg" / "big.py").write_text("".join(f"VALUE{index} = {index!r}\n" for index in range(300)))
    assert compile_bytecode(Path(sys.executable), site, cache_dir=cache)["compiled"] == 2
    pycache = site / "pkg" / "__pycache__"
    good = (pycache / f"big.{sys.implementation.cache_tag}.pyc").read_bytes()
    entries = sorted(cache.rglob("*.pyc"), key=lambda path: path.stat().st_size)
    assert [entry_verdict(path) for path in entries] == [("intact", "")] * 2
    entry = entries[-1]  # big.py's
    data = entry.read_bytes()
    damaged = {"empty": b"", "half": data[:len(data) // 2], "header only": data[:40],
               "flipped": data[:-1] + bytes([data[-1] ^ 1])}[how]
    entry.write_bytes(damaged)
    assert entry_verdict(entry)[0] == "damaged"
    shutil.rmtree(pycache)
    counts = compile_bytecode(Path(sys.executable), site, cache_dir=cache)
    assert counts == {"compiled": 1, "reused": 1, "damaged": [str(entry)]}
    assert (pycache / f"big.{sys.implementation.cache_tag}.pyc").read_bytes() == good
    assert entry_verdict(entry) == ("intact", "")  # replaced
    result = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                             "import pkg.big as m; print(m.VALUE299)", str(site)], capture_output=True, text=True,
                            check=False)
    assert (result.returncode, result.stdout) == (0, "299\n"), result.stderr


# A module whose constants include frozensets of strings (``in {...}``) and a set display: before CPython 3.11 marshal
# wrote a frozenset's elements in hash order, which the per-process string hash salt changes (bpo-37596).
HASH_ORDERED_SOURCE = """def kind(word):
    if word in {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}:
        return "greek"
    return "other" if word not in {"one", "two", "three", "four", "five", "six"} else "number"
"""


def test_bytecode_is_the_same_bytes_in_every_worker_process(tmp_path: Path) -> None:
    """Each compile runs in a new worker process (a new hash salt, were it not fixed); the bytes must not change.
    This failed under CPython 3.10 before the worker ran with ``PYTHONHASHSEED=0``."""
    results = []
    for attempt in range(4):
        site = tmp_path / f"site{attempt}"
        site.mkdir()
        (site / "words.py").write_text(HASH_ORDERED_SOURCE)
        compile_bytecode(Path(sys.executable), site, sourceless=True, recorded_as="app")
        results.append((site / "words.pyc").read_bytes())
    assert len(set(results)) == 1
    check = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                            "import words; print(words.kind('beta'), words.kind('six'), words.kind('x'))",
                            str(tmp_path / "site0")], capture_output=True, text=True, check=False)
    assert check.stdout == "greek number other\n", check.stderr


def test_the_bytecode_worker_refuses_a_salted_string_hash(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    refused = subprocess.run(bytecode_worker_command(Path(sys.executable)), input="{}", capture_output=True,
                             text=True, env=environment, check=False)
    assert refused.returncode == 1
    assert "must be run with PYTHONHASHSEED=0" in refused.stderr


def test_cached_bytecode_of_an_older_format_is_outdated_not_damaged(tmp_path: Path) -> None:
    from hatch_pbs.bytecode.worker import entry_verdict

    (tmp_path / "mod.py").write_text("VALUE = 1\n")
    compile_bytecode(Path(sys.executable), tmp_path)
    (plain,) = (tmp_path / "__pycache__").iterdir()  # what an older hatch-pbs kept: the bare .pyc
    assert entry_verdict(plain) == ("outdated", "kept in the format of an older hatch-pbs")


def test_sourceless_bytecode_runs_and_names_files_in_tracebacks(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "fail.py").write_text("def go():\n    raise RuntimeError('boom')\n")
    compile_bytecode(Path(sys.executable), tmp_path, sourceless=True, recorded_as="app")
    assert sorted(path.name for path in (tmp_path / "pkg").iterdir()) == ["__init__.pyc", "fail.pyc"]
    result = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                             "import pkg.fail; pkg.fail.go()", str(tmp_path)], capture_output=True, text=True,
                            check=False)
    assert 'File "app/pkg/fail.py", line 2, in go' in result.stderr
    assert "RuntimeError: boom" in result.stderr
