"""Orchestration of one build, usable without Hatch: config -> resolve -> fetch -> extract -> relocate ->
install -> launchers -> pack -> manifest.

Data flows one way: each stage takes the previous stage's result and nothing reaches back. The Hatch adapter
(:mod:`hatch_pbs.plugin`) only turns Hatch's view of the project into a :class:`Project` and calls
:func:`build_artifacts`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import SpecifierSet

from hatch_pbs import __version__
from hatch_pbs.cache import Cache
from hatch_pbs.config import HookConfig
from hatch_pbs.download import Downloader
from hatch_pbs.errors import HatchPbsError, ResolveError
from hatch_pbs.extract import extract_runtime
from hatch_pbs.fetch import fetch_asset, latest_release_tag, load_catalogue
from hatch_pbs.install import (
    compile_bytecode,
    install_distributions,
    installed_distributions,
    write_app_pth,
)
from hatch_pbs.launchers import write_launcher
from hatch_pbs.pack import pack_tar_gz, sha256_of, write_checksums
from hatch_pbs.patching import apply_plan, plan_relocation
from hatch_pbs.resolve import ResolvedAsset, select_asset
from hatch_pbs.triples import host_triple

MANIFEST_NAME = "hatch-pbs-manifest.json"
RUNTIME_DIR = "python"
APP_DIR = "app"


@dataclass(frozen=True)
class Project:
    """What the pipeline needs to know about the project being shipped.

    Attributes:
        name: distribution name, e.g. ``"pbs-demo"`` (used in archive names as written).
        version: its version.
        requires_python: ``requires-python`` (``None``: any).
        scripts: ``[project.scripts]`` and ``[project.gui-scripts]`` entries, name -> ``module:function``.
        wheel: the project's built wheel.
    """

    name: str
    version: str
    requires_python: SpecifierSet | None
    scripts: Mapping[str, str]
    wheel: Path


@dataclass(frozen=True)
class BuiltArtifact:
    """One archive a build wrote.

    Attributes:
        triple: its target triple.
        path: the archive.
        sha256: the archive's sha256 (lowercase hex).
        size: the archive's size in bytes.
        resolved: the runtime asset it was built from.
        relocation_notes: search-path entries removed because they pointed outside the artifact.
        seconds: wall time spent on this archive (extract to pack), in seconds.
    """

    triple: str
    path: Path
    sha256: str
    size: int
    resolved: ResolvedAsset
    relocation_notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


Reporter = Callable[[str], None]


def artifact_stem(project: Project, triple: str) -> str:
    """``<name>-<version>-<triple>``: the archive's top directory and file name stem."""
    return f"{project.name}-{project.version}-{triple}"


def resolve_assets(config: HookConfig, requires_python: SpecifierSet | None, cache: Cache,
                   downloader: Downloader) -> dict[str, ResolvedAsset]:
    """The runtime asset of every target triple of ``config``.

    Raises:
        ResolveError, DownloadError: as :func:`~hatch_pbs.resolve.select_asset` and the fetch stage.
    """
    release = config.release
    if release == "latest":
        release = latest_release_tag(downloader, config.mirror)
    catalogue = load_catalogue(cache, downloader, config.mirror, release)
    resolved = {}
    for triple in config.targets:
        asset, sha256 = select_asset(catalogue, target=triple, flavor=config.flavor,
                                     python_version=config.python_version, requires_python=requires_python)
        resolved[triple] = ResolvedAsset(asset, sha256, asset.url(config.mirror))
    return resolved


def build_artifacts(config: HookConfig, project: Project, output_dir: Path, *,
                    report: Reporter = lambda message: None,
                    warn: Reporter = lambda message: None) -> list[BuiltArtifact]:
    """Build one archive per target triple into ``output_dir`` and (re)write its ``SHA256SUMS``.

    ``report`` receives progress lines, ``warn`` the search-path entries relocation removed.

    Raises:
        HatchPbsError: any stage failed; nothing partial is left in ``output_dir`` or the cache.
    """
    host = host_triple()
    foreign = [triple for triple in config.targets if triple != host]
    if foreign:
        raise ResolveError(f"building for {', '.join(foreign)} on this {host} machine is not supported yet; "
                           f"targets must be [\"host\"] (or \"{host}\")")
    cache = Cache(config.cache_dir)
    with Downloader(offline=config.offline) as downloader:
        resolved = resolve_assets(config, project.requires_python, cache, downloader)
        archives = {triple: fetch_asset(cache, downloader, asset) for triple, asset in resolved.items()}
    built = []
    for triple, asset in resolved.items():
        report(f"{triple}: building from {asset.asset.file_name}")
        built.append(_build_one(config, project, asset, archives[triple], output_dir, warn))
    write_checksums(output_dir, [artifact.path for artifact in built])
    return built


def _build_one(config: HookConfig, project: Project, resolved: ResolvedAsset, archive: Path, output_dir: Path,
               warn: Reporter) -> BuiltArtifact:
    started = time.perf_counter()
    stem = artifact_stem(project, resolved.asset.triple)
    staging = Path(tempfile.mkdtemp(prefix="hatch-pbs-"))
    try:
        tree = staging / stem
        runtime = extract_runtime(archive, tree / RUNTIME_DIR, full=resolved.asset.flavor == "full")
        notes = _relocate(tree)
        interpreter = find_interpreter(runtime.root, resolved.asset.python_version)
        site_dir = tree / APP_DIR
        install_distributions(interpreter, site_dir, [str(project.wheel)])
        compile_bytecode(interpreter, site_dir)
        write_app_pth(find_site_packages(runtime.root, resolved.asset.python_version))
        notes += _relocate(tree)
        interpreter_path = interpreter.relative_to(tree).as_posix()
        for name in config.scripts:
            write_launcher(tree / "bin", name, project.scripts[name], interpreter_path)
        manifest = build_manifest(project, resolved, interpreter_path, installed_distributions(site_dir),
                                  runtime.build_metadata)
        (tree / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for note in notes:
            warn(f"{resolved.asset.triple}: {note}")
        destination = output_dir / f"{stem}.tar.gz"
        size = pack_tar_gz(tree, destination)
    except HatchPbsError as error:
        raise type(error)(f"{resolved.asset.triple}: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BuiltArtifact(resolved.asset.triple, destination, sha256_of(destination), size, resolved, notes,
                         time.perf_counter() - started)


def _relocate(tree: Path) -> list[str]:
    plan = plan_relocation(tree, tree / RUNTIME_DIR)
    apply_plan(plan)
    return plan.removed_entries


def find_interpreter(runtime: Path, python_version: str) -> Path:
    """The runtime's interpreter executable: ``bin/python3.X`` (POSIX layouts).

    Raises:
        ResolveError: the runtime has no interpreter where python-build-standalone puts it.
    """
    major_minor = ".".join(python_version.split(".")[:2])
    for name in (f"bin/python{major_minor}", f"bin/python{major_minor}t", "bin/python3"):
        if (runtime / name).is_file():
            return runtime / name
    raise ResolveError(f"the runtime has no interpreter at {runtime / 'bin'}/python{major_minor}")


def find_site_packages(runtime: Path, python_version: str) -> Path:
    """The runtime's ``lib/python3.X/site-packages`` directory."""
    major_minor = ".".join(python_version.split(".")[:2])
    for name in (f"lib/python{major_minor}", f"lib/python{major_minor}t"):
        if (runtime / name).is_dir():
            return runtime / name / "site-packages"
    return runtime / f"lib/python{major_minor}/site-packages"


def build_manifest(project: Project, resolved: ResolvedAsset, interpreter: str, distributions: list[dict[str, str]],
                   build_metadata: Mapping[str, object]) -> dict[str, object]:
    """The JSON manifest stored at the archive root (see docs/artifact-layout.md for its fields)."""
    manifest: dict[str, object] = {
        "manifest_version": 1,
        "tool": {"name": "hatch-pbs", "version": __version__},
        "project": {"name": project.name, "version": project.version},
        "target": resolved.asset.triple,
        "python_version": resolved.asset.python_version,
        "runtime": {
            "release": resolved.asset.release,
            "asset": resolved.asset.file_name,
            "url": resolved.url,
            "sha256": resolved.sha256,
            "flavor": resolved.asset.flavor,
            "build_options": resolved.asset.build_options,
            "interpreter": interpreter,
        },
        "distributions": distributions,
    }
    if build_metadata:
        manifest["runtime"]["python_json"] = {  # type: ignore[index]
            key: build_metadata[key] for key in ("python_tag", "python_abi_tag", "python_platform_tag",
                                                 "crt_features", "licenses") if key in build_metadata}
    return manifest
