"""End to end: build example_project with the real hatchling backend against a loopback PBS mirror, unpack the
archive somewhere else and run it with the source interpreter's prefix hidden."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import (
    can_hide_directories,
    copy_example_project,
    run_hatchling,
    run_hidden,
)
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs.binaries.elf import ELF_MAGIC, read_search_paths

pytestmark = pytest.mark.e2e

STEM_FORMAT = "pbs-demo-1.0.0-{triple}"


@dataclass
class ExampleBuild:
    project: Path
    archive: Path
    unpacked: Path
    server: ReleaseServer
    env: dict[str, str]
    build_output: str


def _minor(release: FakeRelease) -> str:
    return ".".join(release.python_version.split(".")[:2])


def _build_env(server_url: str, cache: Path, wheelhouse: Path, uv_cache: Path) -> dict[str, str]:
    return {"HATCH_PBS_MIRROR": server_url, "HATCH_PBS_CACHE_DIR": str(cache), "UV_OFFLINE": "1",
            "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(uv_cache)}


@pytest.fixture(scope="module")
def example_build(fake_release: FakeRelease, wheelhouse: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleBuild]:
    base = tmp_path_factory.mktemp("e2e")
    project = copy_example_project(base / "project", hook_table=f'python-version = "{_minor(fake_release)}"')
    with ReleaseServer(fake_release.root) as server:
        env = _build_env(server.base_url, base / "cache", wheelhouse, base / "uv-cache")
        result = run_hatchling(project, "app", env, "--hooks-only")
        assert result.returncode == 0, result.stdout + result.stderr
        archive = project / "dist" / "app" / f"{STEM_FORMAT.format(triple=fake_release.triple)}.tar.gz"
        unpacked = base / "unpacked with space"
        unpacked.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="tar")
        yield ExampleBuild(project, archive, unpacked / archive.name.removesuffix(".tar.gz"), server, env,
                           result.stdout + result.stderr)


def test_archive_and_checksums_are_written(example_build: ExampleBuild) -> None:
    sums = (example_build.archive.parent / "SHA256SUMS").read_text(encoding="utf-8")
    digest = hashlib.sha256(example_build.archive.read_bytes()).hexdigest()
    assert sums == f"{digest}  {example_build.archive.name}\n"
    assert sorted(path.name for path in example_build.archive.parent.iterdir()) == sorted(
        [example_build.archive.name, f"{example_build.archive.name}.cdx.json", "SHA256SUMS"])


def test_layout_and_manifest(example_build: ExampleBuild, fake_release: FakeRelease) -> None:
    with tarfile.open(example_build.archive) as tar:
        names = tar.getnames()
    top = example_build.archive.name.removesuffix(".tar.gz")
    assert all(name == top or name.startswith(top + "/") for name in names)
    root = example_build.unpacked
    assert sorted(path.name for path in root.iterdir()) == ["app", "bin", "hatch-pbs-manifest.json", "python"]
    assert os.access(root / "bin" / "pbs-demo", os.X_OK)
    manifest = json.loads((root / "hatch-pbs-manifest.json").read_text(encoding="utf-8"))
    flavor = "install_only_stripped"
    assert manifest["tool"]["name"] == "hatch-pbs"
    assert manifest["target"] == fake_release.triple
    assert manifest["python_version"] == fake_release.python_version
    assert manifest["runtime"]["release"] == fake_release.tag
    assert manifest["runtime"]["asset"] == fake_release.asset_name(flavor)
    assert manifest["runtime"]["sha256"] == fake_release.sha256(flavor)
    installed = {entry["name"].lower(): entry["version"] for entry in manifest["distributions"]}
    assert installed["pbs-demo"] == "1.0.0"
    assert {"rich", "orjson", "pygments", "markdown-it-py", "mdurl"} <= set(installed)


def test_no_elf_keeps_an_absolute_search_path(example_build: ExampleBuild) -> None:
    checked = 0
    for path in example_build.unpacked.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == ELF_MAGIC:
            for tag, entries in read_search_paths(path).items():
                assert all(entry.startswith("$ORIGIN") for entry in entries), (path, tag, entries)
            checked += 1
    assert checked > 50  # the runtime's interpreter, libpython, lib-dynload and orjson's extension


def _hidden_run(example_build: ExampleBuild, fake_release: FakeRelease, *arguments: str,
                launcher: Path | None = None, cwd: Path | None = None):
    reason = can_hide_directories()
    if reason:
        pytest.skip(f"cannot hide the source prefix: {reason}")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd or example_build.unpacked), "PYTHONPATH": "/nonexistent/evil"}
    command = [str(launcher or example_build.unpacked / "bin" / "pbs-demo"), *arguments]
    return run_hidden(fake_release.source_prefix, command, cwd=cwd or Path("/"), env=env)


def test_runs_with_the_source_prefix_hidden(example_build: ExampleBuild, fake_release: FakeRelease) -> None:
    result = _hidden_run(example_build, fake_release, "doctor")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    root = str(example_build.unpacked)
    assert report["python_executable"].startswith(root + "/python/")
    assert report["python_version"] == fake_release.python_version
    assert report["orjson_file"].startswith(root + "/app/orjson/")
    assert report["orjson_file"].endswith(".so")
    assert report["rich_file"].startswith(root + "/app/rich/")
    assert report["flags_isolated"] == 1
    assert report["cwd_on_path"] is False
    assert not any("evil" in entry for entry in report["sys_path"])


def test_summary_uses_rich_and_orjson_from_the_artifact(example_build: ExampleBuild,
                                                        fake_release: FakeRelease, tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text('{"a": 1, "b": [1, 2, 3]}', encoding="utf-8")
    result = _hidden_run(example_build, fake_release, "summary", "data.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "data.json" in result.stdout and "object" in result.stdout and "┃" in result.stdout


def test_arguments_and_exit_status_pass_through_a_symlink(example_build: ExampleBuild, fake_release: FakeRelease,
                                                          tmp_path: Path) -> None:
    link = tmp_path / "elsewhere" / "demo"
    link.parent.mkdir()
    link.symlink_to(example_build.unpacked / "bin" / "pbs-demo")
    arguments = ["two words", "", 'say "hi"', "it's", "$HOME", "*", "-x", "ünï"]
    result = _hidden_run(example_build, fake_release, "echo", *arguments, launcher=link, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == arguments
    result = _hidden_run(example_build, fake_release, "exit", "42", launcher=link, cwd=tmp_path)
    assert result.returncode == 42


def test_second_build_uses_the_cache(example_build: ExampleBuild, fake_release: FakeRelease) -> None:
    asset = fake_release.asset_name("install_only_stripped")
    assert example_build.server.request_count(asset) == 1
    result = run_hatchling(example_build.project, "app", example_build.env, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    assert example_build.server.request_count(asset) == 1
    assert example_build.server.request_count("SHA256SUMS") == 1


def test_wheel_and_sdist_builds_are_unaffected(fake_release: FakeRelease, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table='python-version = "3.11"\nflavor = "full"')
    env = {"HATCH_PBS_MIRROR": "http://127.0.0.1:9/unreachable", "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache")}
    for target in ("wheel", "sdist"):
        result = run_hatchling(project, target, env)
        assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(path.suffix for path in (project / "dist").iterdir()) == [".gz", ".whl"]
    assert not (tmp_path / "cache").exists()


def test_full_flavor_from_a_file_mirror_offline(fake_release: FakeRelease, wheelhouse: Path, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project",
                                   hook_table=f'python-version = "{fake_release.python_version}"\nflavor = "full"')
    env = _build_env(fake_release.root.as_uri(), tmp_path / "cache", wheelhouse, tmp_path / "uv-cache")
    env["HATCH_PBS_OFFLINE"] = "1"
    result = run_hatchling(project, "binary", env, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    archive = project / "dist" / "binary" / f"{STEM_FORMAT.format(triple=fake_release.triple)}.tar.gz"
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="tar")
        manifest = json.load(tar.extractfile(f"{archive.name.removesuffix('.tar.gz')}/hatch-pbs-manifest.json"))
    assert manifest["runtime"]["asset"] == fake_release.asset_name("full")
    assert manifest["runtime"]["python_json"]["python_tag"].startswith("cp3")
    root = tmp_path / "unpacked" / archive.name.removesuffix(".tar.gz")
    assert (root / "python" / "bin").is_dir() and not (root / "python" / "install").exists()
    reason = can_hide_directories()
    if reason:
        pytest.skip(f"built; cannot hide the source prefix to run it: {reason}")
    result = run_hidden(fake_release.source_prefix, [str(root / "bin" / "pbs-demo"), "--version"], cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "pbs-demo 1.0.0\n"), result.stderr


def test_configuration_errors_are_reported_without_traceback(tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table='flavor = "tiny"\npython-version = 3.12')
    result = run_hatchling(project, "app", {"HATCH_PBS_CACHE_DIR": str(tmp_path / "cache")}, "--hooks-only")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "Option `flavor` for build hook `pbs` must be one of 'install_only', 'install_only_stripped', 'full'; " \
           "got 'tiny'" in output
    assert 'Option `python-version` for build hook `pbs` must be a CPython version such as "3.12" or "3.12.7"; ' \
           "got 3.12" in output
    assert not (project / "dist" / "app").exists() or not any((project / "dist" / "app").iterdir())


def test_checksum_failure_leaves_no_archive_and_no_cache_entry(fake_release: FakeRelease, wheelhouse: Path,
                                                               release_server: ReleaseServer, tmp_path: Path) -> None:
    asset = fake_release.asset_name("install_only_stripped")
    release_server.add_fault(asset, "wrong-body", times=10)
    project = copy_example_project(tmp_path / "project", hook_table=f'python-version = "{_minor(fake_release)}"')
    env = _build_env(release_server.base_url, tmp_path / "cache", wheelhouse, tmp_path / "uv-cache")
    result = run_hatchling(project, "app", env, "--hooks-only")
    assert result.returncode != 0
    assert "sha256 mismatch" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    app_dir = project / "dist" / "app"
    assert not app_dir.exists() or list(app_dir.iterdir()) == []
    assert not list((tmp_path / "cache").rglob(asset))
    assert not list((tmp_path / "cache").rglob("*.part"))


def _dynamic_version_project(destination: Path, release: FakeRelease, *, hook_version: str | None) -> Path:
    """example_project with ``dynamic = ["version"]``: the version comes from ``[tool.hatch.version]`` (what
    ``hatch new`` writes) or, with ``hook_version``, from a custom metadata hook that sets it."""
    project = copy_example_project(destination, hook_table=f'python-version = "{_minor(release)}"')
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8").replace('version = "1.0.0"\n', 'dynamic = ["version"]\n', 1)
    if hook_version is None:
        (project / "src" / "pbs_demo" / "__init__.py").write_text('__version__ = "2.3.4"\n', encoding="utf-8")
        text += '\n[tool.hatch.version]\npath = "src/pbs_demo/__init__.py"\n'
    else:
        (project / "hatch_build.py").write_text(
            "from hatchling.metadata.plugin.interface import MetadataHookInterface\n\n\n"
            "class CustomMetadataHook(MetadataHookInterface):\n"
            "    def update(self, metadata):\n"
            f"        metadata['version'] = {hook_version!r}\n", encoding="utf-8")
        text += "\n[tool.hatch.metadata.hooks.custom]\n"
    pyproject.write_text(text, encoding="utf-8")
    return project


@pytest.mark.parametrize("hook_version", [None, "5.6.7"], ids=["version-source", "metadata-hook"])
def test_dynamic_version_names_the_artifact_manifest_and_sbom(fake_release: FakeRelease, wheelhouse: Path,
                                                              release_server: ReleaseServer, tmp_path: Path,
                                                              hook_version: str | None) -> None:
    expected = hook_version or "2.3.4"
    project = _dynamic_version_project(tmp_path / "project", fake_release, hook_version=hook_version)
    env = _build_env(release_server.base_url, tmp_path / "cache", wheelhouse, tmp_path / "uv-cache")
    result = run_hatchling(project, "app", env, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    stem = f"pbs-demo-{expected}-{fake_release.triple}"
    app_dir = project / "dist" / "app"
    assert sorted(path.name for path in app_dir.iterdir()) == ["SHA256SUMS", f"{stem}.tar.gz",
                                                               f"{stem}.tar.gz.cdx.json"]
    with tarfile.open(app_dir / f"{stem}.tar.gz") as tar:
        manifest = json.load(tar.extractfile(f"{stem}/hatch-pbs-manifest.json"))
    assert manifest["project"] == {"name": "pbs-demo", "version": expected}
    sbom = json.loads((app_dir / f"{stem}.tar.gz.cdx.json").read_text(encoding="utf-8"))
    assert sbom["metadata"]["component"]["version"] == expected
    assert f"  {stem}.tar.gz\n" in (app_dir / "SHA256SUMS").read_text(encoding="utf-8")


def test_unusable_paths_and_patterns_are_config_errors_without_traceback(tmp_path: Path) -> None:
    # TOML "\u0000" is a NUL character in the mirror; "[z-a]" is a character range Python's re refuses.
    project = copy_example_project(tmp_path / "project", hook_table='cache-dir = "/dev/null/x"\n'
                                   'mirror = "https://mirror.example/pbs\\u0000"\nexclude = ["[z-a]"]')
    result = run_hatchling(project, "app", {}, "--hooks-only")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output, output
    assert ("Option `cache-dir` for build hook `pbs` names /dev/null/x, which cannot be created: /dev/null is not a "
            "directory") in output
    assert "Option `mirror` for build hook `pbs` must be a base URL" in output
    assert ("Entry #1 of option `exclude` for build hook `pbs` is not a valid gitignore-style pattern (bad character "
            "range z-a") in output
    result = run_hatchling(copy_example_project(tmp_path / "env", hook_table=""), "app",
                           {"HATCH_PBS_CACHE_DIR": "/etc/passwd"}, "--hooks-only")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output, output
    assert "Environment variable `HATCH_PBS_CACHE_DIR` must name a directory, but /etc/passwd is a file" in output
