"""Builds with a ``pbs.lock`` and with the ``requirements`` option: real hatchling builds of example_project
against a loopback PBS mirror (and ``build_artifacts`` in-process where the build must stop before installing)."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from pathlib import Path

import pytest
from e2e_support import copy_example_project, run_hatchling
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs.cli import main
from hatch_pbs.config import HookConfig, parse_hook_config
from hatch_pbs.errors import ConfigError, LockError
from hatch_pbs.pipeline import Project, build_artifacts
from hatch_pbs.release.lock import LOCK_FILE_NAME, read_lock

pytestmark = pytest.mark.e2e

FLAVOR = "install_only_stripped"
SCRIPTS = {"pbs-demo": "pbs_demo.cli:main"}


def _minor(release: FakeRelease) -> str:
    return ".".join(release.python_version.split(".")[:2])


def _env(mirror: str, tmp_path: Path, wheelhouse: Path) -> dict[str, str]:
    return {"HATCH_PBS_MIRROR": mirror, "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache"), "UV_OFFLINE": "1",
            "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}


def _lock(project: Path, mirror: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run ``hatch-pbs lock`` for ``project`` with ``mirror`` (the URLs it records)."""
    with monkeypatch.context() as patch:
        patch.setenv("HATCH_PBS_MIRROR", mirror)
        patch.setenv("HATCH_PBS_CACHE_DIR", str(cache))
        patch.delenv("HATCH_PBS_OFFLINE", raising=False)
        assert main(["lock", "--project", str(project)]) == 0
    return project / LOCK_FILE_NAME


def _manifest(archive: Path) -> dict[str, object]:
    stem = archive.name.removesuffix(".tar.gz")
    with tarfile.open(archive) as tar:
        return json.load(tar.extractfile(f"{stem}/hatch-pbs-manifest.json"))


def _members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def _archive(project: Path, release: FakeRelease) -> Path:
    return project / "dist" / "app" / f"pbs-demo-1.0.0-{release.triple}.tar.gz"


def _no_archive(project: Path) -> bool:
    app = project / "dist" / "app"
    return not app.exists() or not any(app.glob("*.tar.gz"))


# --------------------------------------------------------------------------------------------------------------
# pbs.lock


def test_locked_build_uses_the_locked_assets_and_tag(fake_release: FakeRelease, release_server: ReleaseServer,
                                                     wheelhouse: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """release = "latest" with a lock: the locked tag, no latest-release.json request; the lock was written from
    a file:// mirror and the build downloads from the loopback server (mirrors are interchangeable)."""
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{_minor(fake_release)}"\nrelease = "latest"\ntargets = ["{fake_release.triple}"]'))
    lock = read_lock(_lock(project, fake_release.root.as_uri(), tmp_path / "lock-cache", monkeypatch))
    assert lock.runtimes[0].url.startswith(fake_release.root.as_uri())

    result = run_hatchling(project, "app", _env(release_server.base_url, tmp_path, wheelhouse), "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"using the runtimes locked in {project / LOCK_FILE_NAME}" in result.stdout + result.stderr
    assert release_server.request_count("latest-release.json") == 0
    assert [path for _, path in release_server.requests] == [
        f"/{fake_release.tag}/SHA256SUMS", f"/{fake_release.tag}/{fake_release.asset_name(FLAVOR)}"]
    runtime = _manifest(_archive(project, fake_release))["runtime"]
    locked = lock.runtimes[0]
    assert (runtime["release"], runtime["asset"], runtime["sha256"]) == (locked.release, locked.asset, locked.sha256)
    assert runtime["url"] == locked.resolved(release_server.base_url).url


def test_a_lock_whose_sha256_differs_from_the_catalogue_fails(fake_release: FakeRelease,
                                                              release_server: ReleaseServer, wheelhouse: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{_minor(fake_release)}"\ntargets = ["{fake_release.triple}"]'))
    path = _lock(project, release_server.base_url, tmp_path / "lock-cache", monkeypatch)
    real = fake_release.sha256(FLAVOR)
    path.write_text(path.read_text(encoding="utf-8").replace(real, "1" * 64), encoding="utf-8")
    release_server.requests.clear()
    result = run_hatchling(project, "app", _env(release_server.base_url, tmp_path, wheelhouse), "--hooks-only")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert (f"hatch-pbs: {fake_release.triple}: sha256 of {fake_release.asset_name(FLAVOR)} differs from {path}: "
            f"locked '{'1' * 64}', found '{real}'; the release catalogue (SHA256SUMS) from the mirror does not match "
            f"the lock") in " ".join(output.split())
    assert release_server.request_count(fake_release.asset_name(FLAVOR)) == 0  # nothing downloaded
    assert _no_archive(project)


def test_a_malformed_lock_fails_the_build(fake_release: FakeRelease, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table=f'python-version = "{_minor(fake_release)}"')
    (project / LOCK_FILE_NAME).write_text("version = 1\n[[runtime]]\ntarget = 3\n", encoding="utf-8")
    result = run_hatchling(project, "app", {"HATCH_PBS_CACHE_DIR": str(tmp_path / "cache"),
                                            "HATCH_PBS_MIRROR": "http://127.0.0.1:9/unused"}, "--hooks-only")
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert (f"hatch-pbs: {project / LOCK_FILE_NAME} is not a valid lock file: [[runtime]] #1: `target` must be a "
            f"string; got 3; run `hatch-pbs lock` to update the lock file") in " ".join(
        (result.stdout + result.stderr).split())
    assert not (tmp_path / "cache").exists()


def _config(tmp_path: Path, fake: FakeRelease, mirror: str, **options: object) -> HookConfig:
    raw = {"python-version": _minor(fake), "targets": [fake.triple], "mirror": mirror,
           "cache-dir": str(tmp_path / "cache"), **options}
    return parse_hook_config(raw, project_scripts=SCRIPTS, root=tmp_path, environ={})


def _project(tmp_path: Path) -> Project:
    return Project(name="pbs-demo", version="1.0.0", requires_python=None, scripts=SCRIPTS,
                   wheel=tmp_path / "never-used.whl")


@pytest.fixture
def host_lock(fake_release: FakeRelease, release_server: ReleaseServer, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    project = copy_example_project(tmp_path / "locked", hook_table=(
        f'python-version = "{_minor(fake_release)}"\ntargets = ["{fake_release.triple}"]'))
    path = _lock(project, release_server.base_url, tmp_path / "lock-cache", monkeypatch)
    release_server.requests.clear()
    return path


def test_a_target_missing_from_the_lock_fails_before_any_request(fake_release: FakeRelease,
                                                                 release_server: ReleaseServer, host_lock: Path,
                                                                 tmp_path: Path) -> None:
    config = _config(tmp_path, fake_release, release_server.base_url, release="latest",
                     targets=[fake_release.triple, "aarch64-apple-darwin", "x86_64-pc-windows-msvc"])
    with pytest.raises(LockError) as caught:
        build_artifacts(config, _project(tmp_path), tmp_path / "dist", lock=read_lock(host_lock))
    assert str(caught.value) == (
        f"{host_lock} locks no runtime for target triples aarch64-apple-darwin, x86_64-pc-windows-msvc (it locks: "
        f"{fake_release.triple}); run `hatch-pbs lock` to update the lock file")
    assert release_server.requests == []


def test_a_changed_configuration_or_release_fails(fake_release: FakeRelease, release_server: ReleaseServer,
                                                  host_lock: Path, tmp_path: Path) -> None:
    lock = read_lock(host_lock)
    config = _config(tmp_path, fake_release, release_server.base_url, flavor="full")
    with pytest.raises(LockError) as caught:
        build_artifacts(config, _project(tmp_path), tmp_path / "dist", lock=lock)
    assert str(caught.value) == (
        f"{fake_release.triple}: asset differs from {host_lock}: locked '{fake_release.asset_name(FLAVOR)}', found "
        f"'{fake_release.asset_name('full')}'; the configuration (python-version, flavor, requires-python) now "
        f"selects another asset; run `hatch-pbs lock` to update the lock file")
    config = _config(tmp_path, fake_release, release_server.base_url, release="20250101")
    with pytest.raises(LockError) as caught:
        build_artifacts(config, _project(tmp_path), tmp_path / "dist", lock=lock)
    assert str(caught.value) == (
        f"option `release` is 20250101 but {host_lock} locks release {fake_release.tag} (locked "
        f"'{fake_release.tag}', found '20250101'); run `hatch-pbs lock` to update the lock file")
    assert not any(path.endswith(fake_release.asset_name(FLAVOR)) for _, path in release_server.requests)
    assert not (tmp_path / "dist").exists()


# --------------------------------------------------------------------------------------------------------------
# requirements


def _wheels(wheelhouse: Path) -> list[tuple[str, str, Path, str]]:
    """(name, version, path, sha256) of every wheel in the wheelhouse, sorted by name."""
    found = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        found.append((re.sub(r"[-_.]+", "-", name).lower(), version, wheel,
                      hashlib.sha256(wheel.read_bytes()).hexdigest()))
    return found


def _requirements_txt(wheelhouse: Path, *, skip: tuple[str, ...] = (), wrong: str = "") -> str:
    lines = ["# exported with hashes (as `uv export --format requirements-txt` or `poetry export --with-hashes`)"]
    for name, version, _, sha256 in _wheels(wheelhouse):
        if name in skip:
            continue
        digest = "0" * 64 if name == wrong else sha256
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}")
    return "\n".join(lines) + "\n"


def _installed(archive: Path) -> set[str]:
    pattern = re.compile(r"^[^/]+/app/([^/]+)-[^/-]+\.dist-info/METADATA$")
    return {re.sub(r"[-_.]+", "-", match[1]).lower() for name in _members(archive) if (match := pattern.match(name))}


def test_requirements_with_hashes_pin_the_dependencies(fake_release: FakeRelease, release_server: ReleaseServer,
                                                       wheelhouse: Path, tmp_path: Path) -> None:
    """Only what the file pins is installed (orjson is left out on purpose: the project's own dependencies are not
    resolved, its wheel is installed with --no-deps), and the hashes are checked."""
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{_minor(fake_release)}"\nrequirements = "requirements/app.txt"'))
    (project / "requirements").mkdir()
    (project / "requirements" / "app.txt").write_text(_requirements_txt(wheelhouse, skip=("orjson",)),
                                                      encoding="utf-8")
    result = run_hatchling(project, "app", _env(release_server.base_url, tmp_path, wheelhouse), "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    archive = _archive(project, fake_release)
    expected = {name for name, *_ in _wheels(wheelhouse)} - {"orjson"}
    assert _installed(archive) == expected | {"pbs-demo"}
    names = {item["name"].lower() for item in _manifest(archive)["distributions"]}
    assert "orjson" not in names and "rich" in names


def test_a_wrong_hash_fails_the_build_with_uvs_message(fake_release: FakeRelease, release_server: ReleaseServer,
                                                       wheelhouse: Path, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{_minor(fake_release)}"\nrequirements = "requirements.txt"'))
    (project / "requirements.txt").write_text(_requirements_txt(wheelhouse, wrong="rich"), encoding="utf-8")
    result = run_hatchling(project, "app", _env(release_server.base_url, tmp_path, wheelhouse), "--hooks-only")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    rich = next(item for item in _wheels(wheelhouse) if item[0] == "rich")
    assert f"installing the dependencies pinned by {project / 'requirements.txt'} (option `requirements`)" in output
    assert f"Hash mismatch for `rich=={rich[1]}`" in output
    assert f"sha256:{'0' * 64}" in output and f"sha256:{rich[3]}" in output
    assert _no_archive(project)


def test_a_requirement_without_hash_is_refused_when_others_have_one(fake_release: FakeRelease,
                                                                    release_server: ReleaseServer,
                                                                    wheelhouse: Path, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{_minor(fake_release)}"\nrequirements = "requirements.txt"'))
    text = _requirements_txt(wheelhouse, skip=("mdurl",))
    mdurl = next(item for item in _wheels(wheelhouse) if item[0] == "mdurl")
    (project / "requirements.txt").write_text(text + f"mdurl=={mdurl[1]}\n", encoding="utf-8")
    result = run_hatchling(project, "app", _env(release_server.base_url, tmp_path, wheelhouse), "--hooks-only")
    assert result.returncode != 0
    assert "mdurl" in result.stdout + result.stderr
    assert "hash" in (result.stdout + result.stderr).lower()
    assert _no_archive(project)


def test_a_pylock_toml_pins_the_dependencies(fake_release: FakeRelease, release_server: ReleaseServer,
                                             wheelhouse: Path, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{_minor(fake_release)}"\nrequirements = "pylock.toml"'))
    packages = "".join(
        f'\n[[packages]]\nname = "{name}"\nversion = "{version}"\n'
        f'wheels = [{{ url = "{path.as_uri()}", hashes = {{ sha256 = "{sha256}" }} }}]\n'
        for name, version, path, sha256 in _wheels(wheelhouse))
    (project / "pylock.toml").write_text(f'lock-version = "1.0"\ncreated-by = "tests"\n{packages}', encoding="utf-8")
    result = run_hatchling(project, "app", _env(release_server.base_url, tmp_path, wheelhouse), "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _installed(_archive(project, fake_release)) == {name for name, *_ in _wheels(wheelhouse)} | {"pbs-demo"}


def test_a_missing_requirements_file_names_the_option_and_path(fake_release: FakeRelease,
                                                               release_server: ReleaseServer, tmp_path: Path) -> None:
    config = _config(tmp_path, fake_release, release_server.base_url, requirements="locks/requirements.txt")
    with pytest.raises(ConfigError) as caught:
        build_artifacts(config, _project(tmp_path), tmp_path / "dist")
    assert str(caught.value) == (f"Option `requirements` for build hook `pbs` names "
                                 f"{tmp_path / 'locks' / 'requirements.txt'}, which does not exist")
    (tmp_path / "deps.toml").write_text("", encoding="utf-8")
    config = _config(tmp_path, fake_release, release_server.base_url, requirements="deps.toml")
    with pytest.raises(ConfigError) as caught:
        build_artifacts(config, _project(tmp_path), tmp_path / "dist")
    assert str(caught.value) == (f"Option `requirements` for build hook `pbs` names {tmp_path / 'deps.toml'}: a "
                                 f"PEP 751 lock file must be named pylock.toml or pylock.<name>.toml")
    assert release_server.requests == []
