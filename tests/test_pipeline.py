"""Pipeline orchestration pieces and the Hatch adapter's registration (the whole pipeline runs in test_e2e)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from hatch_pbs.config import HookConfig
from hatch_pbs.errors import ResolveError
from hatch_pbs.hooks import hatch_register_build_hook
from hatch_pbs.pipeline import (
    Project,
    artifact_stem,
    build_artifacts,
    find_interpreter,
    find_site_packages,
)
from hatch_pbs.plugin import ACTIVE_TARGETS, PbsBuildHook
from hatch_pbs.triples import host_triple


def _project(tmp_path: Path) -> Project:
    return Project(name="pbs-demo", version="1.0.0", requires_python=SpecifierSet(">=3.10"),
                   scripts={"pbs-demo": "pbs_demo.cli:main"}, wheel=tmp_path / "missing.whl")


def _config(tmp_path: Path, targets: tuple[str, ...]) -> HookConfig:
    return HookConfig(python_version="3.12", release="20261021", targets=targets, flavor="install_only_stripped",
                      mirror="http://127.0.0.1:9", cache_dir=tmp_path / "cache", scripts=("pbs-demo",))


def test_entry_point_registers_the_hook() -> None:
    names = {entry.name: entry.value for entry in entry_points(group="hatch")}
    assert names["pbs"] == "hatch_pbs.hooks"
    assert hatch_register_build_hook() is PbsBuildHook
    assert PbsBuildHook.PLUGIN_NAME == "pbs"
    assert ACTIVE_TARGETS == {"app", "binary"}


def test_artifact_stem_uses_name_version_and_triple(tmp_path: Path) -> None:
    assert artifact_stem(_project(tmp_path), "aarch64-apple-darwin") == "pbs-demo-1.0.0-aarch64-apple-darwin"


def test_foreign_targets_are_refused_before_any_request(tmp_path: Path) -> None:
    foreign = "aarch64-apple-darwin" if host_triple() != "aarch64-apple-darwin" else "x86_64-pc-windows-msvc"
    with pytest.raises(ResolveError, match=f"building for {foreign} on this {host_triple()} machine is not "
                                           f"supported yet"):
        build_artifacts(_config(tmp_path, (foreign,)), _project(tmp_path), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache").exists()


def test_find_interpreter_and_site_packages(tmp_path: Path) -> None:
    runtime = tmp_path / "python"
    (runtime / "bin").mkdir(parents=True)
    (runtime / "lib" / "python3.13t").mkdir(parents=True)
    (runtime / "bin" / "python3.13t").write_bytes(b"")
    assert find_interpreter(runtime, "3.13.9") == runtime / "bin" / "python3.13t"
    assert find_site_packages(runtime, "3.13.9") == runtime / "lib" / "python3.13t" / "site-packages"
    (runtime / "bin" / "python3.13").write_bytes(b"")
    assert find_interpreter(runtime, "3.13.9") == runtime / "bin" / "python3.13"
    with pytest.raises(ResolveError, match="the runtime has no interpreter at .*/bin/python3.12"):
        find_interpreter(runtime, "3.12.1")
