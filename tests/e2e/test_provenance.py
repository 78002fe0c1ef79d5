"""Provenance of what an archive holds: which wheel (name, sha256) every installed distribution came from
(hatch_pbs.app.provenance, install_distributions' result), and, end to end, the manifest and the CycloneDX SBOM written
beside each archive of example_project, for an install_only and a full runtime."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import copy_example_project, run_hatchling
from packaging.utils import canonicalize_name, parse_wheel_filename
from pbs_release import FakeRelease, ReleaseServer
from provenance_support import make_dist_info, make_wheel, sha256_hex

from hatch_pbs.app.install import install_distributions
from hatch_pbs.app.provenance import installed_wheels, lock_candidates
from hatch_pbs.errors import InstallError

PYTHON_VERSION = platform.python_version()
CP = f"cp{sys.version_info.major}{sys.version_info.minor}"


def _pylock(path: Path, packages: list[dict[str, object]]) -> Path:
    """A PEP 751 lock with ``packages`` (``name``, ``version``, and ``wheels``/``sdist``/``archive`` entries)."""
    lines = ['lock-version = "1.0"', 'created-by = "hatch-pbs-tests"', ""]
    for package in packages:
        lines += ["[[packages]]", f'name = "{package["name"]}"']
        if "version" in package:
            lines.append(f'version = "{package["version"]}"')
        for key in ("sdist", "archive"):
            if key in package:
                location, sha256 = package[key]  # type: ignore[misc]
                lines.append(f'{key} = {{ url = "{location}", hashes = {{ sha256 = "{sha256}" }} }}')
        if "wheels" in package:
            entries = [f'{{ url = "{location}", hashes = {{ sha256 = "{sha256}" }} }}'
                       for location, sha256 in package["wheels"]]  # type: ignore[attr-defined]
            lines.append(f"wheels = [{', '.join(entries)}]")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------------
# installed_wheels(): which of a lock's files each installed distribution came from


def test_the_wheel_whose_tags_the_installed_wheel_file_names_is_chosen(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "Toy", "1.0", tags=f"{CP}-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64")
    lock = _pylock(tmp_path / "lock" / "pylock.toml", [{"name": "toy", "version": "1.0", "wheels": [
        ("https://files.example/toy-1.0-py3-none-any.whl", "a" * 64),
        (f"https://files.example/toy-1.0-{CP}-{CP}-manylinux_2_17_x86_64.whl", "b" * 64),
        (f"https://files.example/toy-1.0-{CP}-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "c" * 64),
        (f"https://files.example/toy-1.0-{CP}-abi3-musllinux_1_2_x86_64.whl", "d" * 64),
    ]}])
    assert installed_wheels(site, [lock]) == [{
        "name": "Toy", "version": "1.0", "wheel": f"toy-1.0-{CP}-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "sha256": "c" * 64}]


def test_a_build_tag_tells_wheels_with_the_same_tags_apart(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "toy", "1.0", build="2")
    lock = _pylock(tmp_path / "pylock.toml", [{"name": "toy", "version": "1.0", "wheels": [
        ("file:///w/toy-1.0-1-py3-none-any.whl", "1" * 64), ("file:///w/toy-1.0-2-py3-none-any.whl", "2" * 64)]}])
    assert installed_wheels(site, [lock])[0]["wheel"] == "toy-1.0-2-py3-none-any.whl"


def test_the_same_file_from_two_sources_is_one_candidate(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "toy", "1.0")
    lock = _pylock(tmp_path / "pylock.toml", [{"name": "toy", "version": "1.0", "wheels": [
        ("file:///wheelhouse/toy-1.0-py3-none-any.whl", "e" * 64),
        ("https://files.example/packages/ab/toy-1.0-py3-none-any.whl", "e" * 64)]}])
    assert installed_wheels(site, [lock])[0]["sha256"] == "e" * 64


def test_different_files_under_one_name_cannot_be_told_apart(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "toy", "1.0")
    lock = _pylock(tmp_path / "pylock.toml", [{"name": "toy", "version": "1.0", "wheels": [
        ("file:///wheelhouse/toy-1.0-py3-none-any.whl", "e" * 64),
        ("https://files.example/toy-1.0-py3-none-any.whl", "f" * 64)]}])
    with pytest.raises(InstallError, match=r"cannot tell which file toy 1\.0 was installed from: .*"
                                           r"toy-1\.0-py3-none-any\.whl \(sha256 e{64}\), "
                                           r"toy-1\.0-py3-none-any\.whl \(sha256 f{64}\)"):
        installed_wheels(site, [lock])


def test_a_renamed_wheel_is_recognised_when_it_is_the_only_one(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "linuxonly", "1.0", tags="py2.py3-none-any")  # WHEEL says so; the file name says more
    lock = _pylock(tmp_path / "pylock.toml", [{"name": "linuxonly", "version": "1.0", "wheels": [
        (f"file:///w/linuxonly-1.0-{CP}-{CP}-manylinux_2_17_x86_64.whl", "7" * 64)]}])
    assert installed_wheels(site, [lock])[0]["wheel"] == f"linuxonly-1.0-{CP}-{CP}-manylinux_2_17_x86_64.whl"


def test_a_distribution_built_from_an_sdist_names_the_sdist(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "onlysdist", "0.1", tags="py2.py3-none-any")
    lock = _pylock(tmp_path / "pylock.toml", [
        {"name": "onlysdist", "version": "0.1", "sdist": ("file:///w/onlysdist-0.1.tar.gz", "5" * 64)}])
    assert installed_wheels(site, [lock]) == [
        {"name": "onlysdist", "version": "0.1", "wheel": None, "sha256": "5" * 64, "sdist": "onlysdist-0.1.tar.gz"}]


def test_the_project_wheel_as_a_path_archive_and_as_a_local_file(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "built", "pbs-demo", "1.0.0", "py3-none-any")
    site = tmp_path / "app"
    make_dist_info(site, "pbs-demo", "1.0.0")
    lock = _pylock(tmp_path / "pylock.toml", [{"name": "pbs-demo", "version": "1.0.0",
                                               "archive": (str(wheel), sha256_hex(wheel))}])
    expected = [{"name": "pbs-demo", "version": "1.0.0", "wheel": wheel.name, "sha256": sha256_hex(wheel)}]
    assert installed_wheels(site, [lock]) == expected
    assert installed_wheels(site, [], local_wheels=[wheel]) == expected


def test_unknown_sources_and_other_versions_give_no_file(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "fromgit", "0.3")
    make_dist_info(site, "toy", "2.0")
    lock = _pylock(tmp_path / "pylock.toml", [{"name": "toy", "version": "1.0", "wheels": [
        ("file:///w/toy-1.0-py3-none-any.whl", "a" * 64)]}])
    assert installed_wheels(site, [lock]) == [
        {"name": "fromgit", "version": "0.3", "wheel": None, "sha256": None},
        {"name": "toy", "version": "2.0", "wheel": None, "sha256": None}]


def test_a_lock_without_hashes_has_its_local_files_hashed(tmp_path: Path) -> None:
    """Older uv versions write ``hashes = {}`` for find-links files and relative paths for local archives."""
    wheelhouse = tmp_path / "wheelhouse"
    toy = make_wheel(wheelhouse, "toy", "1.0", "py3-none-any")
    other = make_wheel(wheelhouse, "toy", "1.0", f"{CP}-{CP}-musllinux_1_2_x86_64")
    project = make_wheel(tmp_path / "built", "app", "2.0", "py3-none-any")
    site = tmp_path / "app"
    make_dist_info(site, "toy", "1.0")
    make_dist_info(site, "app", "2.0")
    lock = tmp_path / "lock" / "pylock.toml"
    lock.parent.mkdir()
    lock.write_text(f"""lock-version = "1.0"
[[packages]]
name = "app"
version = "2.0"
archive = {{ path = "../built/{project.name}", hashes = {{}} }}
[[packages]]
name = "toy"
version = "1.0"
wheels = [{{ url = "{other.as_uri()}", hashes = {{}} }}, {{ url = "{toy.as_uri()}", hashes = {{}} }},
          {{ url = "https://files.example/{toy.name}" }}]
""", encoding="utf-8")
    assert installed_wheels(site, [lock]) == [
        {"name": "app", "version": "2.0", "wheel": project.name, "sha256": sha256_hex(project)},
        {"name": "toy", "version": "1.0", "wheel": toy.name, "sha256": sha256_hex(toy)}]


def test_lock_candidates_reads_names_hashes_and_kinds(tmp_path: Path) -> None:
    lock = _pylock(tmp_path / "pylock.toml", [
        {"name": "Some_Thing", "version": "1.0", "sdist": ("https://x/some_thing-1.0.tar.gz", "A" * 64),
         "wheels": [("https://x/some%2Bthing/some_thing-1.0-py3-none-any.whl", "b" * 64)]},
        {"name": "direct", "archive": ("/abs/direct-2.0.tar.gz", "c" * 64)}])
    assert [(c.name, c.version, c.file_name, c.sha256, c.kind) for c in lock_candidates(lock)] == [
        ("some-thing", "1.0", "some_thing-1.0-py3-none-any.whl", "b" * 64, "wheel"),
        ("some-thing", "1.0", "some_thing-1.0.tar.gz", "a" * 64, "sdist"),
        ("direct", None, "direct-2.0.tar.gz", "c" * 64, "sdist")]


def test_an_unreadable_lock_is_an_install_error(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text("packages = [", encoding="utf-8")
    with pytest.raises(InstallError, match="cannot read the lock file"):
        installed_wheels(tmp_path, [tmp_path / "pylock.toml"])


# ----------------------------------------------------------------------------------------------------------------
# install_distributions(): uv resolves into a lock, installs it, and the result names the files used


@pytest.fixture(scope="module")
def toy_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A find-links directory: ``toy`` 1.0 as wheels for several platforms, ``app`` depending on it."""
    links = tmp_path_factory.mktemp("toy-links")
    for tags in ("py3-none-any", f"{CP}-{CP}-manylinux_2_17_x86_64",
                 f"{CP}-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64", f"{CP}-{CP}-musllinux_1_2_x86_64",
                 f"{CP}-{CP}-win_amd64"):
        make_wheel(links, "toy", "1.0", tags)
    make_wheel(links, "toy", "0.9", "py3-none-any")
    return links


@pytest.fixture
def toy_offline(toy_links: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UV_FIND_LINKS", str(toy_links))
    monkeypatch.setenv("UV_NO_INDEX", "1")
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "uv-cache-provenance"))
    return toy_links


@pytest.fixture
def app_wheel(tmp_path: Path) -> Path:
    return make_wheel(tmp_path / "project-dist", "toy-app", "3.0", "py3-none-any", requires=("toy>=0.9",))


@pytest.mark.parametrize(("triple", "expected"), [
    ("x86_64-unknown-linux-gnu", f"toy-1.0-{CP}-{CP}-manylinux_2_17_x86_64.whl"),
    ("x86_64-unknown-linux-musl", f"toy-1.0-{CP}-{CP}-musllinux_1_2_x86_64.whl"),
    ("x86_64-pc-windows-msvc", f"toy-1.0-{CP}-{CP}-win_amd64.whl"),
    ("aarch64-apple-darwin", "toy-1.0-py3-none-any.whl"),
])
def test_install_returns_the_wheel_uv_chose_for_the_target(toy_offline: Path, app_wheel: Path, tmp_path: Path,
                                                           triple: str, expected: str) -> None:
    site = tmp_path / "app"
    result = install_distributions(Path(sys.executable), site, [str(app_wheel)], triple=triple,
                                   python_version=PYTHON_VERSION, foreign=True)
    assert result == [
        {"name": "toy", "version": "1.0", "wheel": expected, "sha256": sha256_hex(toy_offline / expected)},
        {"name": "toy-app", "version": "3.0", "wheel": app_wheel.name, "sha256": sha256_hex(app_wheel)}]
    assert (site / "toy" / "__init__.py").read_text() == f"BUILT_FOR = {expected.removeprefix('toy-1.0-')[:-4]!r}\n"
    assert not any(path.name.startswith("pylock") for path in site.rglob("*"))


def test_install_with_a_pylock_of_the_user(toy_offline: Path, app_wheel: Path, tmp_path: Path) -> None:
    """A universal lock lists every platform's wheels; the one uv installed is told by its tags."""
    wheels = sorted(toy_offline.glob("toy-1.0-*.whl"))
    lock = _pylock(tmp_path / "pins" / "pylock.toml", [
        {"name": "toy", "version": "1.0", "wheels": [(wheel.as_uri(), sha256_hex(wheel)) for wheel in wheels]}])
    result = install_distributions(Path(sys.executable), tmp_path / "app", [str(app_wheel)],
                                   triple="x86_64-unknown-linux-musl", python_version=PYTHON_VERSION, foreign=True,
                                   requirements_file=lock)
    musl = toy_offline / f"toy-1.0-{CP}-{CP}-musllinux_1_2_x86_64.whl"
    assert result == [{"name": "toy", "version": "1.0", "wheel": musl.name, "sha256": sha256_hex(musl)},
                      {"name": "toy-app", "version": "3.0", "wheel": app_wheel.name, "sha256": sha256_hex(app_wheel)}]


def test_install_with_hashed_requirements_of_the_user(toy_offline: Path, app_wheel: Path, tmp_path: Path) -> None:
    hashes = " ".join(f"--hash=sha256:{sha256_hex(wheel)}" for wheel in sorted(toy_offline.glob("toy-0.9-*.whl")))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"toy==0.9 {hashes}\n", encoding="utf-8")
    result = install_distributions(Path(sys.executable), tmp_path / "app", [str(app_wheel)],
                                   triple="x86_64-unknown-linux-gnu", python_version=PYTHON_VERSION, foreign=True,
                                   requirements_file=requirements)
    old = toy_offline / "toy-0.9-py3-none-any.whl"
    assert result == [{"name": "toy", "version": "0.9", "wheel": old.name, "sha256": sha256_hex(old)},
                      {"name": "toy-app", "version": "3.0", "wheel": app_wheel.name, "sha256": sha256_hex(app_wheel)}]


# ----------------------------------------------------------------------------------------------------------------
# End to end: example_project's manifest and SBOM

STEM = "pbs-demo-1.0.0-{triple}"


@dataclass
class ProvenanceBuild:
    archive: Path
    manifest: dict[str, object]
    sbom_path: Path
    sbom: dict[str, object]
    project_wheel_sha256: str


def _build(base: Path, release: FakeRelease, wheelhouse: Path, hook_table: str) -> ProvenanceBuild:
    project = copy_example_project(base / "project", hook_table=hook_table)
    with ReleaseServer(release.root) as server:
        env = {"HATCH_PBS_MIRROR": server.base_url, "HATCH_PBS_CACHE_DIR": str(base / "cache"), "UV_OFFLINE": "1",
               "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(base / "uv-cache")}
        result = run_hatchling(project, "app", env, "--hooks-only")
        assert result.returncode == 0, result.stdout + result.stderr
    # hatchling's wheels are reproducible: the same project gives the wheel the hook built and installed
    wheel = run_hatchling(project, "wheel", env, "-d", str(base / "wheel"))
    assert wheel.returncode == 0, wheel.stdout + wheel.stderr
    (project_wheel,) = (base / "wheel").glob("*.whl")
    archive = project / "dist" / "app" / f"{STEM.format(triple=release.triple)}.tar.gz"
    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"{archive.name.removesuffix('.tar.gz')}/hatch-pbs-manifest.json")
        assert member is not None
        manifest = json.loads(member.read())
    sbom_path = archive.with_name(archive.name + ".cdx.json")
    sbom = json.loads(sbom_path.read_text(encoding="utf-8")) if sbom_path.is_file() else {}
    return ProvenanceBuild(archive, manifest, sbom_path, sbom, sha256_hex(project_wheel))


def _minor(release: FakeRelease) -> str:
    return ".".join(release.python_version.split(".")[:2])


@pytest.fixture(scope="module")
def install_only_build(fake_release: FakeRelease, wheelhouse: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> ProvenanceBuild:
    return _build(tmp_path_factory.mktemp("provenance"), fake_release, wheelhouse,
                  f'python-version = "{_minor(fake_release)}"')


@pytest.fixture(scope="module")
def full_build(fake_release: FakeRelease, wheelhouse: Path,
               tmp_path_factory: pytest.TempPathFactory) -> ProvenanceBuild:
    return _build(tmp_path_factory.mktemp("provenance-full"), fake_release, wheelhouse,
                  f'python-version = "{_minor(fake_release)}"\nflavor = "full"')


def _wheelhouse_files(wheelhouse: Path) -> dict[str, Path]:
    return {canonicalize_name(parse_wheel_filename(path.name)[0]): path for path in wheelhouse.glob("*.whl")}


def _validate(text: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert errors is None, errors


@pytest.mark.e2e
def test_manifest_names_every_wheel_with_its_sha256(install_only_build: ProvenanceBuild, wheelhouse: Path) -> None:
    files = _wheelhouse_files(wheelhouse)
    distributions = install_only_build.manifest["distributions"]
    assert isinstance(distributions, list)
    names = {canonicalize_name(entry["name"]) for entry in distributions}
    assert names == {"pbs-demo", *files}  # everything installed is either the project or from the wheelhouse
    for entry in distributions:
        key = canonicalize_name(entry["name"])
        if key == "pbs-demo":
            assert entry == {"name": "pbs-demo", "version": "1.0.0", "wheel": "pbs_demo-1.0.0-py3-none-any.whl",
                             "sha256": install_only_build.project_wheel_sha256}
        else:
            assert entry == {"name": entry["name"], "version": parse_wheel_filename(files[key].name)[1].public,
                             "wheel": files[key].name, "sha256": sha256_hex(files[key])}
    assert install_only_build.manifest["tool"] == {"name": "hatch-pbs", "version": _hatch_pbs_version()}


def _hatch_pbs_version() -> str:
    from hatch_pbs import __version__

    return __version__


@pytest.mark.e2e
def test_the_sbom_is_beside_the_archive_and_valid(install_only_build: ProvenanceBuild) -> None:
    assert install_only_build.sbom_path.is_file()
    assert install_only_build.sbom_path.parent == install_only_build.archive.parent
    _validate(install_only_build.sbom_path.read_text(encoding="utf-8"))
    sums = (install_only_build.archive.parent / "SHA256SUMS").read_text(encoding="utf-8")
    assert sums == f"{sha256_hex(install_only_build.archive)}  {install_only_build.archive.name}\n"  # archives only
    assert not list(install_only_build.archive.parent.glob(".*"))  # no temporary file left


def _components(sbom: dict[str, object]) -> dict[str, dict[str, object]]:
    components = sbom["components"]
    assert isinstance(components, list)
    return {component["name"].lower(): component for component in components}


def _sha256_of(component: dict[str, object]) -> list[str]:
    return [entry["content"] for entry in component.get("hashes", []) if entry["alg"] == "SHA-256"]


@pytest.mark.e2e
def test_the_sbom_lists_the_runtime_with_its_asset_and_licence(install_only_build: ProvenanceBuild,
                                                               fake_release: FakeRelease) -> None:
    cpython = _components(install_only_build.sbom)["cpython"]
    flavor = "install_only_stripped"
    assert cpython["type"] == "platform"
    assert cpython["version"] == fake_release.python_version
    assert _sha256_of(cpython) == [fake_release.sha256(flavor)]
    assert cpython["purl"].startswith(f"pkg:generic/python-build-standalone/cpython@{fake_release.python_version}?")
    assert f"checksum=sha256:{fake_release.sha256(flavor)}" in cpython["purl"]
    assert cpython["licenses"] == [{"license": {"id": "Python-2.0", "acknowledgement": "declared"}}]
    urls = [reference["url"] for reference in cpython["externalReferences"]]
    assert any(url.endswith(fake_release.asset_name(flavor).replace("+", "%2B")) for url in urls)


@pytest.mark.e2e
def test_the_sbom_lists_the_dependencies_with_versions_hashes_and_licences(install_only_build: ProvenanceBuild,
                                                                           wheelhouse: Path) -> None:
    files = _wheelhouse_files(wheelhouse)
    components = _components(install_only_build.sbom)
    assert set(components) == {"cpython", *files}
    for name in ("rich", "orjson"):
        version = parse_wheel_filename(files[name].name)[1].public
        assert components[name]["version"] == version
        assert components[name]["purl"] == f"pkg:pypi/{name}@{version}?file_name={files[name].name}"
        assert _sha256_of(components[name]) == [sha256_hex(files[name])]
        assert components[name]["licenses"], name  # both declare one (License / License-Expression)
    application = install_only_build.sbom["metadata"]["component"]
    assert (application["name"], application["version"]) == ("pbs-demo", "1.0.0")
    assert _sha256_of(application) == [install_only_build.project_wheel_sha256]
    archive_reference = application["externalReferences"][0]
    assert archive_reference["url"] == install_only_build.archive.name
    assert archive_reference["hashes"] == [{"alg": "SHA-256", "content": sha256_hex(install_only_build.archive)}]
    depends = {entry["ref"]: set(entry.get("dependsOn", [])) for entry in install_only_build.sbom["dependencies"]}
    assert {components["rich"]["bom-ref"], components["orjson"]["bom-ref"],
            components["cpython"]["bom-ref"]} <= depends[application["bom-ref"]]


@pytest.mark.e2e
def test_a_full_runtime_takes_its_licences_from_python_json(full_build: ProvenanceBuild,
                                                            fake_release: FakeRelease) -> None:
    runtime = full_build.manifest["runtime"]
    assert runtime["flavor"] == "full"
    assert runtime["sha256"] == fake_release.sha256("full")
    assert runtime["python_json"]["licenses"] == ["Python-2.0", "CNRI-Python"]  # the fake release's PYTHON.json
    _validate(full_build.sbom_path.read_text(encoding="utf-8"))
    cpython = _components(full_build.sbom)["cpython"]
    assert _sha256_of(cpython) == [fake_release.sha256("full")]
    assert sorted(entry["license"]["id"] for entry in cpython["licenses"]) == ["CNRI-Python", "Python-2.0"]
    properties = {entry["name"]: entry["value"] for entry in cpython["properties"]}
    assert properties["hatch-pbs:runtime:licenses-source"] == "PYTHON.json"
    assert properties["hatch-pbs:runtime:flavor"] == "full"


@pytest.mark.e2e
def test_the_manifest_in_the_archive_matches_the_sbom(install_only_build: ProvenanceBuild) -> None:
    components = _components(install_only_build.sbom)
    for entry in install_only_build.manifest["distributions"]:
        key = entry["name"].lower()
        if key == "pbs-demo":
            continue
        assert _sha256_of(components[key]) == [entry["sha256"]]
    digest = hashlib.sha256(install_only_build.archive.read_bytes()).hexdigest()
    assert install_only_build.sbom["serialNumber"].startswith("urn:uuid:")
    assert digest in json.dumps(install_only_build.sbom)
