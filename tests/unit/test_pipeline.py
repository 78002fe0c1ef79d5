"""Pipeline orchestration pieces and the Hatch adapter's registration (the whole pipeline runs in test_e2e)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from hatch_pbs.errors import ResolveError
from hatch_pbs.hatch.hook import ACTIVE_TARGETS, PbsBuildHook
from hatch_pbs.hooks import hatch_register_build_hook
from hatch_pbs.pipeline import (
    Project,
    archive_name,
    artifact_stem,
    resolve_compilers,
)
from hatch_pbs.release.resolve import ReleaseCatalogue, ResolvedAsset, select_asset


def _project(tmp_path: Path) -> Project:
    return Project(name="pbs-demo", version="1.0.0", requires_python=SpecifierSet(">=3.10"),
                   scripts={"pbs-demo": "pbs_demo.cli:main"}, wheel=tmp_path / "missing.whl")


def test_entry_point_registers_the_hook() -> None:
    names = {entry.name: entry.value for entry in entry_points(group="hatch")}
    assert names["pbs"] == "hatch_pbs.hooks"
    assert hatch_register_build_hook() is PbsBuildHook
    assert PbsBuildHook.PLUGIN_NAME == "pbs"
    assert ACTIVE_TARGETS == {"app", "binary"}


def test_artifact_stem_uses_name_version_and_triple(tmp_path: Path) -> None:
    assert artifact_stem(_project(tmp_path), "aarch64-apple-darwin") == "pbs-demo-1.0.0-aarch64-apple-darwin"


def test_compilers_are_the_host_runtime_of_each_foreign_version(tmp_path: Path) -> None:
    sums = "\n".join(f"{index:064x}  cpython-{version}+20261021-{triple}-install_only_stripped.tar.gz"
                     for index, (version, triple) in enumerate([
                         ("3.12.12", "x86_64-unknown-linux-gnu"), ("3.13.9", "x86_64-unknown-linux-gnu"),
                         ("3.12.12", "aarch64-apple-darwin"), ("3.13.9", "x86_64-pc-windows-msvc"),
                         ("3.11.14", "aarch64-unknown-linux-gnu")], 1))
    catalogue = ReleaseCatalogue.parse("20261021", sums)
    mirror = "https://mirror.example/pbs"
    resolved = {}
    for triple, version in (("aarch64-apple-darwin", "3.12"), ("x86_64-pc-windows-msvc", "3.13"),
                            ("x86_64-unknown-linux-gnu", "3.12")):
        asset, sha256 = select_asset(catalogue, target=triple, flavor="install_only_stripped", python_version=version)
        resolved[triple] = ResolvedAsset(asset, sha256, asset.url(mirror))
    compilers = resolve_compilers(resolved, catalogue, mirror, "x86_64-unknown-linux-gnu")
    assert sorted(compilers) == ["3.12.12", "3.13.9"]
    assert compilers["3.12.12"] is resolved["x86_64-unknown-linux-gnu"]  # the host target's own runtime, reused
    assert compilers["3.13.9"].asset.file_name == \
        "cpython-3.13.9+20261021-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
    aarch64 = select_asset(catalogue, target="aarch64-unknown-linux-gnu", flavor="install_only_stripped",
                           python_version="3.11")
    with pytest.raises(ResolveError, match="^aarch64-unknown-linux-gnu: building for another platform needs "
                                           "CPython 3.11.14 for this x86_64-unknown-linux-gnu machine"):
        resolve_compilers({"aarch64-unknown-linux-gnu": ResolvedAsset(*aarch64, "u")}, catalogue, mirror,
                          "x86_64-unknown-linux-gnu")


def test_archive_names_per_platform(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert archive_name(project, "x86_64-pc-windows-msvc") == "pbs-demo-1.0.0-x86_64-pc-windows-msvc.zip"
    assert archive_name(project, "x86_64_v3-unknown-linux-gnu") == "pbs-demo-1.0.0-x86_64_v3-unknown-linux-gnu.tar.gz"
    assert archive_name(project, "x86_64-pc-windows-msvc", "tar.gz") == "pbs-demo-1.0.0-x86_64-pc-windows-msvc.tar.gz"
    assert archive_name(project, "aarch64-apple-darwin", "tar.zst") == "pbs-demo-1.0.0-aarch64-apple-darwin.tar.zst"
    assert archive_name(project, "aarch64-apple-darwin", "zip") == "pbs-demo-1.0.0-aarch64-apple-darwin.zip"
    assert archive_name(project, "aarch64-apple-darwin", "dir") == "pbs-demo-1.0.0-aarch64-apple-darwin"
