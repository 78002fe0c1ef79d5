"""Platform floors end to end: real hatchling builds of a small project against a ``file://`` mirror of the fake
PBS release, installing from a find-links directory holding a wheel retagged for a newer glibc and a source-only
distribution (uv offline, no index)."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest
from e2e_support import run_hatchling
from floor_support import build_hostbuilt_sdist, retagged_wheel
from pbs_release import FakeRelease

from hatch_pbs.release.cache import sha256_of

pytestmark = pytest.mark.e2e

CP = f"cp{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory, fake_release: FakeRelease) -> Path:
    """``newglibc`` with a ``manylinux_2_28`` wheel for this machine only, and the sdist-only ``hostbuilt``."""
    work = tmp_path_factory.mktemp("floor-projects")
    directory = tmp_path_factory.mktemp("floor-links")
    arch = fake_release.triple.split("-")[0]
    retagged_wheel(work, directory, "newglibc", "1.0", f"{CP}-{CP}-manylinux_2_28_{arch}")
    build_hostbuilt_sdist(work, directory)
    return directory


def _project(root: Path, release: FakeRelease, dependency: str, options: str = "") -> Path:
    (root / "src" / "floor_app").mkdir(parents=True)
    (root / "src" / "floor_app" / "__init__.py").write_text("def main():\n    print('floor app')\n")
    minor = ".".join(release.python_version.split(".")[:2])
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling", "hatch-pbs"]\nbuild-backend = "hatchling.build"\n\n'
        f'[project]\nname = "floor-app"\nversion = "1.0"\ndependencies = ["{dependency}"]\n\n'
        '[project.scripts]\nfloor-app = "floor_app:main"\n\n'
        f'[tool.hatch.build.hooks.pbs]\npython-version = "{minor}"\n{options}\n\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["src/floor_app"]\n')
    return root


def _env(release: FakeRelease, links: Path, cache: Path, uv_cache: Path) -> dict[str, str]:
    return {"HATCH_PBS_MIRROR": release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(cache), "UV_OFFLINE": "1",
            "UV_NO_INDEX": "1", "UV_FIND_LINKS": str(links), "UV_CACHE_DIR": str(uv_cache)}


def _manifest(project: Path, release: FakeRelease) -> dict[str, object]:
    stem = f"floor-app-1.0-{release.triple}"
    with tarfile.open(project / "dist" / "app" / f"{stem}.tar.gz") as tar:
        return json.load(tar.extractfile(f"{stem}/hatch-pbs-manifest.json"))


def test_a_manylinux_2_28_dependency_needs_option_manylinux(fake_release: FakeRelease, links: Path,
                                                             tmp_path: Path) -> None:
    """The default floor (2_17) refuses a wheel for glibc 2.28, naming the option that accepts it, without
    building anything; a raised floor installs it. The runtime's files count too: this fake runtime (this machine's
    CPython, repackaged) needs this machine's glibc, so ``manylinux = "2_28"`` is refused naming the runtime's
    file, and the floor it needs builds."""
    triple = fake_release.triple
    env = _env(fake_release, links, tmp_path / "cache", tmp_path / "uv-cache")
    default = run_hatchling(_project(tmp_path / "default", fake_release, "newglibc"), "app", env, "--hooks-only")
    output = " ".join((default.stdout + default.stderr).split())
    assert default.returncode != 0, output
    assert "Traceback" not in output
    assert (f"{triple}: newglibc has no usable wheel for {triple} (Python {fake_release.python_version}); "
            f"acceptable wheel tags: {CP}-{CP}-manylinux_2_17_") in output
    assert 'it has wheels for a newer platform: set manylinux = "2_28" (the artifacts then need glibc 2.28 or ' \
           'newer)' in output

    runtime_floor = tuple(int(part) for part in fake_release.manylinux.split("_"))
    if runtime_floor > (2, 28):
        at_2_28 = tmp_path / "at-2_28"
        refused = run_hatchling(_project(at_2_28, fake_release, "newglibc", 'manylinux = "2_28"'), "app", env,
                                "--hooks-only")
        output = " ".join((refused.stdout + refused.stderr).split())
        assert refused.returncode != 0, output
        assert "Traceback" not in output
        assert (f"{triple}: binaries need a newer glibc than the floor 2.28 (option `manylinux`) of {triple}: "
                f"python/") in output
        assert (f'set manylinux = "{fake_release.manylinux}" (the artifacts then need glibc '
                f"{'.'.join(map(str, runtime_floor))} or newer), or use wheels built for the floor, or a runtime "
                "built for it (the files below python/ are the runtime's;") in output
        assert not (at_2_28 / "dist" / "app").exists() or not any((at_2_28 / "dist" / "app").iterdir())

    raised_floor = max(fake_release.manylinux, "2_28", key=lambda floor: tuple(map(int, floor.split("_"))))
    project = _project(tmp_path / "raised", fake_release, "newglibc", f'manylinux = "{raised_floor}"')
    raised = run_hatchling(project, "app", env, "--hooks-only")
    assert raised.returncode == 0, raised.stdout + raised.stderr
    manifest = _manifest(project, fake_release)
    distributions = {entry["name"]: entry for entry in manifest["distributions"]}
    assert distributions["newglibc"]["wheel"] == f"newglibc-1.0-{CP}-{CP}-manylinux_2_28_{triple.split('-')[0]}.whl"

    # The manifest records the artifact's real floor: the runtime's, as LIEF reads it from the same files.
    needed, needed_by = _lief_glibc_floor(project, fake_release)
    assert manifest["floor"] == {"kind": "glibc", "declared": raised_floor.replace("_", "."),
                                 "needed": ".".join(map(str, needed)), "needed_by": needed_by}
    assert needed_by.startswith("python/")


def _lief_glibc_floor(project: Path, release: FakeRelease) -> tuple[tuple[int, ...], str]:
    """The oracle: the newest GLIBC_ version any ELF file of the artifact requires, per LIEF, and the first file
    (sorted) requiring it."""
    import lief

    stem = f"floor-app-1.0-{release.triple}"
    root = project / "unpacked"
    with tarfile.open(project / "dist" / "app" / f"{stem}.tar.gz") as tar:
        tar.extractall(root, filter="tar") if sys.version_info >= (3, 12) else tar.extractall(root)
    found = []
    for path in sorted((root / stem).rglob("*")):
        if not path.is_file() or path.is_symlink() or path.read_bytes()[:4] != b"\x7fELF":
            continue
        binary = lief.ELF.parse(str(path))  # kept alive while its requirements are read
        for requirement in binary.symbols_version_requirement:
            for aux in requirement.get_auxiliary_symbols():
                if aux.name.startswith("GLIBC_2"):
                    found.append((tuple(int(part) for part in aux.name[6:].split(".")),
                                  path.relative_to(root / stem).as_posix()))
    top = max(version for version, _ in found)
    return top, min(relative for version, relative in found if version == top)


@pytest.fixture(scope="module")
def new_glibc_extension(tmp_path_factory: pytest.TempPathFactory, fake_release: FakeRelease) -> Path:
    """A shared library for this machine's architecture that needs glibc 2.34 (zig links ``pthread_create``
    against glibc 2.34, where its default version became GLIBC_2.34)."""
    pytest.importorskip("ziglang", reason="zig builds the library needing a newer glibc")
    from foreign_release import _cached_build

    arch = fake_release.triple.split("-")[0]
    source = ("#include <pthread.h>\nstatic void *run(void *arg) { return arg; }\n"
              "int start(void) { pthread_t thread; return pthread_create(&thread, 0, run, 0); }\n")
    built = _cached_build(tmp_path_factory.mktemp("zig-new-glibc"), "new-glibc", f"{arch}-linux-gnu.2.34",
                          {"ext.c": source}, [("_ext.so", ["-shared", "-fPIC", "-o", "_ext.so", "ext.c"])])
    return built / "_ext.so"


def test_an_application_binary_needing_a_newer_glibc_fails_the_build(
        fake_release: FakeRelease, links: Path, new_glibc_extension: Path, tmp_path: Path) -> None:
    """A wheel tagged manylinux_2_17 whose extension needs glibc 2.34 (mis-tagged, or built on a newer machine)
    is installed, and the audit refuses the artifact naming the file; ``manylinux = "2_34"`` accepts it."""
    arch = fake_release.triple.split("-")[0]
    own_links = tmp_path / "links"
    own_links.mkdir()
    retagged_wheel(tmp_path / "work", own_links, "mistagged", "1.0", f"{CP}-{CP}-manylinux_2_17_{arch}",
                   extra_files={"mistagged/_ext.so": new_glibc_extension})
    env = _env(fake_release, own_links, tmp_path / "cache", tmp_path / "uv-cache")
    refused = run_hatchling(_project(tmp_path / "default", fake_release, "mistagged"), "app", env, "--hooks-only")
    output = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0, output
    assert "Traceback" not in output
    # Listed first, by name: the application's file, then the runtime's (it needs this machine's glibc).
    assert (f"{fake_release.triple}: binaries need a newer glibc than the floor 2.17 (option `manylinux`) of "
            f"{fake_release.triple}: app/mistagged/_ext.so: needs glibc 2.34 ") in output
    assert not (tmp_path / "default" / "dist" / "app").exists() or not any(
        (tmp_path / "default" / "dist" / "app").iterdir())

    raised_floor = max(fake_release.manylinux, "2_34", key=lambda floor: tuple(map(int, floor.split("_"))))
    project = _project(tmp_path / "raised", fake_release, "mistagged", f'manylinux = "{raised_floor}"')
    accepted = run_hatchling(project, "app", env, "--hooks-only")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    floor = _manifest(project, fake_release)["floor"]
    assert floor["declared"] == raised_floor.replace("_", ".")
    assert tuple(int(part) for part in floor["needed"].split(".")) >= (2, 34)


def test_build_from_source_builds_an_sdist_once(fake_release: FakeRelease, links: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the option the sdist-only dependency fails the host build; with ``build-from-source = true`` it is
    built by the target runtime and a second build (a fresh uv cache) reuses the wheel hatch-pbs cached."""
    log = tmp_path / "builds.log"
    monkeypatch.setenv("HOSTBUILT_BUILD_LOG", str(log))  # run_hatchling passes the environment on
    triple = fake_release.triple
    refused = run_hatchling(_project(tmp_path / "default", fake_release, "hostbuilt"), "app",
                            _env(fake_release, links, tmp_path / "cache", tmp_path / "uv-0"), "--hooks-only")
    output = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode != 0, output
    assert f"{triple}: hostbuilt has no usable wheel for {triple}" in output
    assert "build-from-source = true builds it from its source distribution on this machine" in output
    assert not log.exists()

    project = _project(tmp_path / "built", fake_release, "hostbuilt",
                       f'build-from-source = true\nmanylinux = "{fake_release.manylinux}"')
    for attempt in (1, 2):
        result = run_hatchling(project, "app", _env(fake_release, links, tmp_path / "cache",
                                                    tmp_path / f"uv-{attempt}"), "--hooks-only")
        assert result.returncode == 0, result.stdout + result.stderr
    assert log.read_text() == "built\n"
    distributions = {entry["name"]: entry for entry in _manifest(project, fake_release)["distributions"]}
    assert distributions["hostbuilt"] == {"name": "hostbuilt", "version": "1.0", "wheel": None,
                                          "sdist": "hostbuilt-1.0.tar.gz",
                                          "sha256": sha256_of(links / "hostbuilt-1.0.tar.gz")}
    assert list((tmp_path / "cache" / "built-wheels" / triple).glob(f"*/*/hostbuilt-1.0-{CP}-{CP}-linux_*.whl"))
