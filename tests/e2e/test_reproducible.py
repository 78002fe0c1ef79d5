"""Reproducible builds: the same project and configuration give byte-identical archives, also when the project,
build, cache and temporary directories differ. Real builds with the hatchling backend."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from e2e_support import copy_example_project, run_hatchling
from foreign_release import CrossRelease

pytestmark = pytest.mark.e2e

TARGETS = ("x86_64-unknown-linux-gnu", "x86_64-pc-windows-msvc")


#: A dependency's script written as a ``.py`` file (as jmespath's ``jp.py``): its installer writes the build's
#: interpreter path into its shebang, which the relocation then rewrites.
SCRIPT = "#!/usr/bin/env python\nimport sys\nprint('jp', *sys.argv[1:])\n"


@pytest.fixture(scope="module")
def scripted_wheelhouse(cross_wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cross_wheelhouse`` plus ``scripted``, a pure wheel shipping ``jp.py`` as a script."""
    links = tmp_path_factory.mktemp("wheelhouse")
    for wheel in cross_wheelhouse.iterdir():
        (links / wheel.name).symlink_to(wheel)
    source = tmp_path_factory.mktemp("scripted")
    (source / "scripted").mkdir()
    (source / "scripted" / "__init__.py").write_text("")
    (source / "jp.py").write_text(SCRIPT)
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "scripted"\nversion = "1.0"\n'
        '[tool.hatch.build.targets.wheel]\npackages = ["scripted"]\n'
        '[tool.hatch.build.targets.wheel.shared-scripts]\n"jp.py" = "jp.py"\n')
    result = run_hatchling(source, "wheel", {}, "-d", str(links))
    assert result.returncode == 0, result.stdout + result.stderr
    return links


def _build(base: Path, release: CrossRelease, wheelhouse: Path, epoch: str | None) -> dict[str, str]:
    """Build into ``base`` (project copy, cache, uv cache and TMPDIR all below it); sha256 per archive name. The
    project depends on ``scripted`` too (see :func:`scripted_wheelhouse`)."""
    project = copy_example_project(base / "some" / "project", hook_table=(
        f'python-version = "{release.python_version}"\ntargets = {json.dumps(list(TARGETS))}'))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("dependencies = [\n", 'dependencies = [\n  "scripted",\n', 1))
    (base / "tmp").mkdir()
    env = {"HATCH_PBS_MIRROR": release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(base / "pbs-cache"),
           "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(base / "uv-cache"),
           "TMPDIR": str(base / "tmp")}
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = epoch
    result = run_hatchling(project, "app", env, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((project / "dist" / "app").iterdir())}


@pytest.fixture(scope="module")
def two_builds(cross_release: CrossRelease, scripted_wheelhouse: Path,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, str], Path]:
    first = tmp_path_factory.mktemp("first")
    second = tmp_path_factory.mktemp("second-elsewhere")
    return (_build(first, cross_release, scripted_wheelhouse, None),
            _build(second, cross_release, scripted_wheelhouse, None), first)


def test_two_builds_are_byte_identical(two_builds: tuple[dict[str, str], dict[str, str], Path]) -> None:
    first, second, _ = two_builds
    archives = [f"pbs-demo-1.0.0-{triple}.{'zip' if 'windows' in triple else 'tar.gz'}" for triple in TARGETS]
    assert sorted(first) == sorted(["SHA256SUMS", *archives, *(name + ".cdx.json" for name in archives)])
    assert first == second


def test_members_are_normalized(two_builds: tuple[dict[str, str], dict[str, str], Path]) -> None:
    dist = two_builds[2] / "some" / "project" / "dist" / "app"
    with tarfile.open(dist / "pbs-demo-1.0.0-x86_64-unknown-linux-gnu.tar.gz") as archive:
        members = archive.getmembers()
    names = [member.name for member in members]
    assert names == sorted(names, key=lambda name: name.split("/"))
    assert {(member.uid, member.gid, member.uname, member.gname) for member in members} == {(0, 0, "", "")}
    assert {member.mode for member in members if member.isfile()} <= {0o644, 0o755}
    by_name = {member.name.split("/", 1)[-1]: member for member in members}
    assert by_name["bin/pbs-demo"].mtime == 315532800  # written by the build: SOURCE_DATE_EPOCH's fallback
    assert by_name["hatch-pbs-manifest.json"].mtime == 315532800
    assert "app/pbs_demo-1.0.0.dist-info/direct_url.json" not in by_name
    with zipfile.ZipFile(dist / "pbs-demo-1.0.0-x86_64-pc-windows-msvc.zip") as archive:
        assert archive.getinfo("pbs-demo-1.0.0-x86_64-pc-windows-msvc/bin/pbs-demo.exe").date_time == \
            (1980, 1, 1, 0, 0, 0)


def test_a_dependencys_script_ships_as_source_with_its_shebang_relocated(
        two_builds: tuple[dict[str, str], dict[str, str], Path]) -> None:
    """The script's bytecode is not compiled (Python never reads a ``__main__`` script's bytecode), so no
    ``.pyc`` records the hash of its source as it was before the relocation rewrote the shebang (that made two
    builds in different directories differ); every ``.pyc`` of the application is of a source as shipped."""
    dist = two_builds[2] / "some" / "project" / "dist" / "app"
    stem = "pbs-demo-1.0.0-x86_64-unknown-linux-gnu"
    with tarfile.open(dist / f"{stem}.tar.gz") as archive:
        members = {member.name.split("/", 1)[-1]: member for member in archive.getmembers()}
        script = archive.extractfile(members["app/bin/jp.py"]).read().decode()
        sources = {name: archive.extractfile(member).read() for name, member in members.items()
                   if name.startswith("app/") and name.endswith(".py") and member.isfile()}
        compiled = {name: archive.extractfile(member).read() for name, member in members.items()
                    if name.startswith("app/") and name.endswith(".pyc")}
    assert not any(name.startswith("app/bin/__pycache__") for name in members)
    assert script.endswith(SCRIPT.split("\n", 1)[1]) and str(two_builds[2]) not in script
    assert not script.startswith("#!/usr/bin/env python\n")  # the installer's and the relocation's rewrites
    assert compiled
    for name, pyc in compiled.items():  # PEP 552 unchecked-hash: the header holds its source's hash
        directory, _, file_name = name.rpartition("/__pycache__/")
        source = f"{directory}/{file_name.split('.')[0]}.py"
        assert pyc[8:16] == importlib.util.source_hash(sources[source]), name


def test_source_date_epoch_changes_only_the_times(cross_release: CrossRelease, scripted_wheelhouse: Path,
                                                  two_builds: tuple[dict[str, str], dict[str, str], Path],
                                                  tmp_path: Path) -> None:
    later = _build(tmp_path, cross_release, scripted_wheelhouse, "1700000000")
    assert later.keys() == two_builds[0].keys()
    assert all(later[name] != two_builds[0][name] for name in later)
    archive = tmp_path / "some" / "project" / "dist" / "app" / "pbs-demo-1.0.0-x86_64-unknown-linux-gnu.tar.gz"
    with tarfile.open(archive) as bundle:
        assert bundle.getmember("pbs-demo-1.0.0-x86_64-unknown-linux-gnu/bin/pbs-demo").mtime == 1700000000
