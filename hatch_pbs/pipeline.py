"""Orchestration of one build, usable without Hatch: config -> resolve -> fetch -> extract -> relocate ->
install -> launchers -> audit -> pack -> manifest, once per target triple.

Data flows one way: each stage takes the previous stage's result and nothing reaches back. The Hatch adapter
(:mod:`hatch_pbs.hatch.hook`) only turns Hatch's view of the project into a :class:`Project` and calls
:func:`build_artifacts`.

Foreign targets (any triple but the build machine's) need an interpreter of the same Python version on the build
machine, to run the installer and compile bytecode: the host triple's runtime of exactly that version is resolved
from the same release, fetched through the same cache and prepared once per build. Downloads run concurrently,
and so do the targets' builds (their expensive parts, installing and compressing, run outside the GIL).

A build runs in an :func:`hatch_pbs.interrupts.scope`: Ctrl-C (SIGINT) stops every worker thread and child
process within about a second, at a check point (every stage, every downloaded chunk, every file copied or
packed), and the build raises :class:`~hatch_pbs.interrupts.BuildInterrupted` having published nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.specifiers import SpecifierSet

from hatch_pbs import __version__, interrupts
from hatch_pbs.app.imports import imported_top_levels, top_level_name
from hatch_pbs.app.install import (
    check_requirements_file,
    install_distributions,
    normalize_installed_metadata,
    uv_executable,
)
from hatch_pbs.app.launchers import write_launcher, write_windows_launcher
from hatch_pbs.app.universal import check_wheels, universal_lock
from hatch_pbs.artifact.archive import ArchiveFormat, archive_suffix
from hatch_pbs.artifact.audit import (
    binaries,
    check_architectures,
    check_floor,
    check_static_runtime,
)
from hatch_pbs.artifact.pack import (
    FALLBACK_EPOCH,
    MemberTimes,
    output_staging,
    pack_directory,
    pack_tree,
    publish_outputs,
    sha256_of,
    write_checksums,
)
from hatch_pbs.artifact.sbom import write_sbom
from hatch_pbs.artifact.sizes import SizeRow, measure_artifact, size_table
from hatch_pbs.bytecode.compiler import compile_bytecode
from hatch_pbs.config import HookConfig
from hatch_pbs.errors import (
    ChecksumError,
    DamagedCacheError,
    HatchPbsError,
    ResolveError,
)
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.fetch import (
    catalogue_is_cached,
    fetch_asset,
    latest_release_tag,
    load_catalogue,
)
from hatch_pbs.release.lock import Lock, locked_assets, locked_release
from hatch_pbs.release.resolve import ReleaseCatalogue, ResolvedAsset, select_asset
from hatch_pbs.release.triples import host_triple, parse_triple
from hatch_pbs.relocate import apply_plan, plan_relocation
from hatch_pbs.runtime.prepare import (
    PreparedRuntime,
    Trim,
    copy_runtime,
    discard_prepared,
    relocated_runtime,
    trimmed_runtime,
)
from hatch_pbs.runtime.trim import TrimResult, compile_patterns, trim_tree

MANIFEST_NAME = "hatch-pbs-manifest.json"
RUNTIME_DIR = "python"
APP_DIR = "app"
#: Most targets built at once; beyond the core count they only compete for the CPU.
MAX_PARALLEL_TARGETS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Project:
    """What the pipeline needs to know about the project being shipped.

    Attributes:
        name: distribution name, e.g. ``"pbs-demo"`` (used in archive names as written).
        version: its version.
        requires_python: ``requires-python`` (``None``: any).
        scripts: ``[project.scripts]`` and ``[project.gui-scripts]`` entries, name -> ``module:function``.
        wheel: the project's built wheel.
        gui_scripts: the names of ``scripts`` that come from ``[project.gui-scripts]`` (Windows launchers for
            them use the windowed interpreter and start no console).
    """

    name: str
    version: str
    requires_python: SpecifierSet | None
    scripts: Mapping[str, str]
    wheel: Path
    gui_scripts: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class BuiltArtifact:
    """One artifact a build wrote.

    Attributes:
        triple: its target triple.
        path: the archive (or, with ``archive-format = "dir"``, the directory).
        sha256: the archive's sha256 (lowercase hex); ``None`` for a directory.
        size: the archive's size in bytes (a directory: the sum of its files' sizes).
        resolved: the runtime asset it was built from.
        relocation_notes: search-path entries removed because they pointed outside the artifact.
        seconds: wall time spent on this artifact (prepare to pack), in seconds.
        stage_seconds: wall time per stage, in seconds, in pipeline order (``prepare``, ``copy``, ``install``,
            ``bytecode``, ``trim``, ``relocate``, ``launchers``, ``audit``, ``pack``, ``sbom``).
        sizes: the size table rows (runtime, each distribution in ``app/``, launchers and manifest), unpacked bytes.
        trimmed: what the ``stdlib`` preset and ``exclude`` removed (files, bytes).
        interpreter: the runtime's interpreter relative to the artifact's top directory, e.g.
            ``python/bin/python3.12`` (as the manifest records it).
    """

    triple: str
    path: Path
    sha256: str | None
    size: int
    resolved: ResolvedAsset
    relocation_notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    sizes: list[SizeRow] = field(default_factory=list)
    trimmed: TrimResult = TrimResult()
    interpreter: str = ""


Reporter = Callable[[str], None]
#: Writes further outputs from the built artifacts before anything is published: called with the staged output
#: directory, the artifacts (their paths in it) and the build's private staging directory; returns the files it
#: wrote there, which ``SHA256SUMS`` lists too (the container image layout archive, :mod:`hatch_pbs.forms.image`).
Finisher = Callable[[Path, "list[BuiltArtifact]", Path], "list[Path]"]


def artifact_stem(project: Project, triple: str) -> str:
    """``<name>-<version>-<triple>``: the archive's top directory and file name stem."""
    return f"{project.name}-{project.version}-{triple}"


def archive_format(triple: str, configured: ArchiveFormat | None = None) -> ArchiveFormat:
    """The artifact format of ``triple``: option ``archive-format`` when set, else ``zip`` for Windows targets and
    ``tar.gz`` for the others."""
    return configured or ("zip" if parse_triple(triple).is_windows else "tar.gz")


def archive_name(project: Project, triple: str, configured: ArchiveFormat | None = None) -> str:
    """The artifact's file name: ``<stem>.tar.gz``, ``<stem>.tar.zst``, ``<stem>.zip``, or ``<stem>`` for a
    directory (see :func:`archive_format`; suffixes from :data:`~hatch_pbs.artifact.archive.ARCHIVE_SUFFIXES`)."""
    chosen = archive_format(triple, configured)
    return artifact_stem(project, triple) + archive_suffix(chosen)


def resolve_assets(config: HookConfig, requires_python: SpecifierSet | None, catalogue: ReleaseCatalogue
                   ) -> dict[str, ResolvedAsset]:
    """The runtime asset of every target triple of ``config``, from the release's catalogue.

    Raises:
        ResolveError: a triple has no matching asset (the message starts with the triple).
    """
    resolved = {}
    for triple in config.targets:
        try:
            asset, sha256 = select_asset(catalogue, target=triple, flavor=config.flavor,
                                         python_version=config.python_version, requires_python=requires_python)
        except ResolveError as error:
            raise ResolveError(f"{triple}: {error}") from None
        resolved[triple] = ResolvedAsset(asset, sha256, asset.url(config.mirror))
    return resolved


def resolve_runtimes(config: HookConfig, requires_python: SpecifierSet | None, cache: Cache,
                     downloader: Downloader, *, lock: Lock | None = None, refresh: bool = False
                     ) -> tuple[ReleaseCatalogue, dict[str, ResolvedAsset]]:
    """The release's catalogue and the runtime asset of every target triple, as a build (and ``hatch-pbs lock``)
    resolves them.

    Without ``lock``, ``release = "latest"`` reads ``latest-release.json``. With ``lock``, the locked release tag
    is used (``latest-release.json`` is not read) and the result must equal the lock (:func:`locked_assets`).

    A target triple missing from a cached catalogue makes it be read from the mirror again, once, unless
    offline (``refresh``, see :func:`~hatch_pbs.release.fetch.load_catalogue`): a mirror grows.

    Raises:
        ResolveError, DownloadError, OfflineError: as :func:`resolve_assets`, :func:`load_catalogue`; a miss
            names the cached ``SHA256SUMS`` file.
        LockError: a target triple is not locked, or the release tag, asset or sha256 differ from the lock's.
    """
    if lock is not None:
        release = locked_release(lock, config.targets, config.release)
    else:
        release = latest_release_tag(downloader, config.mirror) if config.release == "latest" else config.release
    refreshable = catalogue_is_cached(cache, downloader, config.mirror, release)
    catalogue = load_catalogue(cache, downloader, config.mirror, release, refresh=refresh)
    try:
        resolved = resolve_assets(config, requires_python, catalogue)
    except ResolveError as error:
        if refreshable and not refresh:  # the mirror may have grown since SHA256SUMS was cached
            return resolve_runtimes(config, requires_python, cache, downloader, lock=lock, refresh=True)
        raise ResolveError(f"{error} (catalogue: {cache.catalogue_path(config.mirror, release)})") from None
    return catalogue, (resolved if lock is None else locked_assets(lock, resolved))


def fetch_runtimes(config: HookConfig, requires_python: SpecifierSet | None, cache: Cache,
                   downloader: Downloader, host: str, *, lock: Lock | None = None
                   ) -> tuple[dict[str, ResolvedAsset], dict[str, ResolvedAsset], dict[str, Path]]:
    """Resolve (:func:`resolve_runtimes`, :func:`resolve_compilers`) and fetch every runtime asset.

    A download that does not match the cached catalogue's sha256 makes the catalogue be read from the mirror
    again, once (not offline): the mirror may have fixed the line.

    Returns:
        ``(resolved, compilers, archives)``: triple -> asset, Python version -> host asset, sha256 -> cached
        archive path.

    Raises:
        ChecksumError: the download does not match the mirror's current catalogue either (the message names the
            cached ``SHA256SUMS``).
        ResolveError, DownloadError, OfflineError, LockError: as :func:`resolve_runtimes`.
    """
    for refresh in (False, True):
        catalogue, resolved = resolve_runtimes(config, requires_python, cache, downloader, lock=lock,
                                               refresh=refresh)
        refreshable = catalogue_is_cached(cache, downloader, config.mirror, catalogue.release)
        compilers = resolve_compilers(resolved, catalogue, config.mirror, host)
        wanted = {asset.sha256: asset for asset in [*resolved.values(), *compilers.values()]}
        try:
            fetched = interrupts.parallel_map(lambda asset: fetch_asset(cache, downloader, asset), wanted.values(),
                                              max_workers=min(4, len(wanted)))
            archives = dict(zip(wanted, fetched, strict=True))
        except ChecksumError as error:
            if refreshable and not refresh:
                continue
            raise ChecksumError(f"{error} (catalogue: {cache.catalogue_path(config.mirror, catalogue.release)})"
                                ) from None
        return resolved, compilers, archives
    raise AssertionError("unreachable: the second pass returns or raises")


def resolve_compilers(resolved: Mapping[str, ResolvedAsset], catalogue: ReleaseCatalogue, mirror: str,
                      host: str) -> dict[str, ResolvedAsset]:
    """For every Python version foreign targets use, the host triple's runtime of exactly that version.

    Returns:
        Python version -> resolved host asset (the host target's own asset when it is being built anyway).

    Raises:
        ResolveError: the release has no runtime of that version for the build machine.
    """
    compilers: dict[str, ResolvedAsset] = {}
    for triple, target in resolved.items():
        version = target.asset.python_version
        if triple == host or version in compilers:
            continue
        if host in resolved and resolved[host].asset.python_version == version:
            compilers[version] = resolved[host]
            continue
        try:
            asset, sha256 = select_asset(catalogue, target=host, flavor="install_only_stripped",
                                         python_version=version)
        except ResolveError as error:
            raise ResolveError(f"{triple}: building for another platform needs CPython {version} for this "
                               f"{host} machine (to install and compile bytecode), but {error}") from None
        compilers[version] = ResolvedAsset(asset, sha256, asset.url(mirror))
    return compilers


def build_artifacts(config: HookConfig, project: Project, output_dir: Path, *,
                    report: Reporter = lambda message: None,
                    warn: Reporter = lambda message: None,
                    source_date_epoch: int = FALLBACK_EPOCH,
                    lock: Lock | None = None, finish: Finisher | None = None) -> list[BuiltArtifact]:
    """Build one archive per target triple into ``output_dir`` and (re)write its ``SHA256SUMS``.

    With a ``lock`` (the project's ``pbs.lock``), the build uses exactly the locked runtime assets: every target
    triple must be locked, the locked release tag is used (also for ``release = "latest"``, without reading
    ``latest-release.json``), and the release tag, asset name and sha256 the configuration resolves to from the
    mirror's catalogue must equal the lock's (only the mirror part of the URL may differ). The build machine's
    runtime for foreign targets comes from the same release and is verified against its ``SHA256SUMS``.

    ``source_date_epoch`` (seconds) is the time of every archive member the build writes (see
    :class:`~hatch_pbs.artifact.pack.MemberTimes`), so the same inputs give byte-identical archives.

    ``report`` receives progress lines, ``warn`` the search-path entries relocation removed and one line per
    damaged cache entry the build discarded and made again (a prepared runtime, a compressed runtime part, cached
    bytecode); both are called from worker threads, one line at a time, each prefixed with its triple.

    ``finish`` (see :data:`Finisher`) writes further outputs from the artifacts, published with them.

    Everything the build publishes (archives or directories, SBOMs, ``SHA256SUMS``) is written to a staging
    directory inside ``output_dir`` and moved into place only when every target succeeded: a build that fails
    for one triple, or is interrupted, leaves ``output_dir`` with the previous complete set.

    Raises:
        HatchPbsError: any stage failed (the message starts with the triple it concerns); nothing partial is
            left in ``output_dir`` or the cache, and nothing in ``output_dir`` is replaced.
        BuildInterrupted: SIGINT (Ctrl-C) arrived before the outputs were published (see
            :func:`hatch_pbs.interrupts.scope`); the same guarantees hold.
    """
    with interrupts.scope():
        return _build_artifacts(config, project, output_dir, report=report, warn=warn,
                                source_date_epoch=source_date_epoch, lock=lock, finish=finish)


def _build_artifacts(config: HookConfig, project: Project, output_dir: Path, *, report: Reporter, warn: Reporter,
                     source_date_epoch: int, lock: Lock | None, finish: Finisher | None) -> list[BuiltArtifact]:
    check_requirements_file(config.requirements)
    host = host_triple()
    times = MemberTimes(time.time(), source_date_epoch)
    cache = Cache(config.cache_dir)
    with Downloader(offline=config.offline, timeout=config.timeout, mirror=config.mirror) as downloader:
        resolved, compilers, archives = fetch_runtimes(config, project.requires_python, cache, downloader, host,
                                                       lock=lock)
    with cache.staging() as staging, output_staging(output_dir) as outputs:
        prepared = {version: copy_runtime(relocated_runtime(cache, archives[asset.sha256], asset,
                                                            max_unpacked_size=config.max_unpacked_size,
                                                            warn=lambda line: warn(f"{host}: {line}")),
                                          staging / f"compiler-{version}" / RUNTIME_DIR)
                    for version, asset in compilers.items()}
        universal = resolve_universally(config, project, resolved, prepared, staging, report=report)
        jobs = [_Job(config, project, resolved[triple], archives[resolved[triple].sha256], outputs, cache,
                     staging, prepared.get(resolved[triple].asset.python_version) if triple != host else None,
                     report, warn, times, universal) for triple in config.targets]
        built = interrupts.parallel_map(_Job.run, jobs, max_workers=min(MAX_PARALLEL_TARGETS, len(jobs)))
        archives_built = [artifact for artifact in built if artifact.sha256 is not None]
        extra = finish(outputs, built, staging) if finish is not None else []
        write_checksums(outputs, [artifact.path for artifact in archives_built] + extra, earlier=output_dir,
                        known={artifact.path.name: artifact.sha256 for artifact in archives_built
                               if artifact.sha256 is not None})
        interrupts.check()  # the last point where an interrupt keeps the previous outputs
        publish_outputs(outputs, output_dir)  # only now, with every target built: all or nothing
    return [replace(artifact, path=output_dir / artifact.path.name) for artifact in built]


def resolve_universally(config: HookConfig, project: Project, resolved: Mapping[str, ResolvedAsset],
                        compilers: Mapping[str, PreparedRuntime], staging: Path, *, report: Reporter) -> Path | None:
    """With several target triples, resolve the project's wheel and its dependencies once for all of them
    (:mod:`hatch_pbs.app.universal`) into ``staging/universal/pylock.toml`` and check that every triple has its
    wheels there; returns the lock, or ``None`` for one triple or with option ``requirements`` (its file pins the
    versions).

    ``compilers`` are the build machine's prepared runtimes by Python version (every build of several triples has
    one: at most one triple is the host's); uv runs the one of the oldest target Python version.

    Raises:
        InstallError: uv cannot resolve, or a version chosen has no wheel for some triple (every such distribution
            and triple named, with the platform floor at which the lock has one).
    """
    if len(config.targets) < 2 or config.requirements is not None or not compilers:
        return None
    versions = {triple: asset.asset.python_version for triple, asset in resolved.items()}
    oldest = min(versions.values(), key=lambda version: tuple(int(part) for part in re.findall(r"\d+", version)))
    interpreter = compilers.get(oldest) or next(iter(compilers.values()))
    work = staging / "universal"
    work.mkdir(parents=True, exist_ok=True)
    requirements_in = work / "requirements.in"
    requirements_in.write_text(f"{project.wheel.resolve()}\n", encoding="utf-8")
    lock = universal_lock(uv_executable(), interpreter.interpreter, requirements_in, work / "pylock.toml",
                          python_version=oldest, only_binary=not config.build_from_source)
    check_wheels(lock, {triple: versions[triple] for triple in config.targets}, config.floors,
                 buildable=[host_triple()] if config.build_from_source else [])
    report(f"resolved once for all {len(config.targets)} target triples ({lock.name})")
    return lock


@dataclass(frozen=True)
class _Assembled:
    """What assembling an artifact's tree gave: its manifest, the relocation notes, what trimming removed, the
    prepared runtime ``python/`` is a copy of, and the top-level names of ``app/`` the scripts can import
    (:func:`~hatch_pbs.app.imports.imported_top_levels`; ``None`` without scripts)."""

    manifest: dict[str, object]
    relocation_notes: list[str]
    trimmed: TrimResult
    prepared: PreparedRuntime
    imported: frozenset[str] | None


@dataclass(frozen=True)
class _Job:
    """Everything one target's artifact is built from (one worker thread each)."""

    config: HookConfig
    project: Project
    resolved: ResolvedAsset
    archive: Path
    output_dir: Path
    cache: Cache
    staging: Path
    compiler: PreparedRuntime | None  # None: the target is the host triple and compiles with its own runtime
    report: Reporter
    warn: Reporter
    times: MemberTimes | None = None
    universal_lock: Path | None = None  # the build's one resolution for every target triple (several targets)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def triple(self) -> str:
        return self.resolved.asset.triple

    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        interrupts.check()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + time.perf_counter() - started

    @property
    def trim(self) -> Trim:
        return Trim(self.config.stdlib, self.config.bytecode, self.config.exclude)

    def _warn(self, line: str) -> None:
        self.warn(f"{self.triple}: {line}")

    def run(self) -> BuiltArtifact:
        """Build the target's artifact. A prepared runtime found damaged on the way (by the full check before a
        trimmed runtime is made from it, or while its bytes are packed) is discarded with its relocated runtime,
        with one warning line, and the target is built once more from the verified asset."""
        started = time.perf_counter()
        try:
            return self._attempt(started)
        except DamagedCacheError as error:
            self._warn(f"{error}; preparing it again")
            discard_prepared(self.cache, self.resolved, self.trim)
        try:
            return self._attempt(started)
        except DamagedCacheError as error:
            raise DamagedCacheError(f"{self.triple}: {error}") from None

    def _attempt(self, started: float) -> BuiltArtifact:
        tree = self.staging / artifact_stem(self.project, self.triple)
        try:
            self.report(f"{self.triple}: building from {self.resolved.asset.file_name}")
            assembled = self._assemble(tree)
            manifest, notes, trimmed = assembled.manifest, assembled.relocation_notes, assembled.trimmed
            sizes = measure_artifact(tree, imported=assembled.imported)
            destination, sha256, size = self._package(tree, manifest, assembled.prepared)
        except DamagedCacheError:
            raise
        except HatchPbsError as error:
            raise type(error)(f"{self.triple}: {error}") from None
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        for note in notes:
            self.warn(f"{self.triple}: {note}")
        for line in size_table(sizes, archive_name=destination.name, archive_size=None if sha256 is None else size):
            self.report(f"{self.triple}: {line}")
        self.report(f"{self.triple}: stage seconds: " + " ".join(
            f"{name}={seconds:.3f}" for name, seconds in self.stage_seconds.items()))
        runtime_entry = manifest["runtime"]
        assert isinstance(runtime_entry, dict)  # build_manifest's shape
        return BuiltArtifact(triple=self.triple, path=destination, sha256=sha256, size=size, resolved=self.resolved,
                             relocation_notes=notes, seconds=time.perf_counter() - started,
                             stage_seconds=dict(self.stage_seconds), sizes=sizes, trimmed=trimmed,
                             interpreter=str(runtime_entry["interpreter"]))

    def _assemble(self, tree: Path) -> _Assembled:
        """Runtime, application, launchers and manifest in ``tree``, audited."""
        triple, version, config = self.triple, self.resolved.asset.python_version, self.config
        with self._stage("prepare"):
            relocated = relocated_runtime(self.cache, self.archive, self.resolved,
                                          max_unpacked_size=config.max_unpacked_size, warn=self._warn)
            prepared = trimmed_runtime(self.cache, relocated, self.resolved, self.trim,
                                       compiler=self.compiler.interpreter if self.compiler else None,
                                       warn=self._warn)
        with self._stage("copy"):
            runtime = copy_runtime(prepared, tree / RUNTIME_DIR)
        compiler = self.compiler or runtime
        site_dir = tree / APP_DIR
        with self._stage("install"):
            distributions = install_distributions(compiler.interpreter, site_dir, [str(self.project.wheel)],
                                                  triple=triple, python_version=version,
                                                  foreign=self.compiler is not None,
                                                  requirements_file=config.requirements, floors=config.floors,
                                                  build_from_source=config.build_from_source, cache=self.cache,
                                                  offline=config.offline, universal_lock=self.universal_lock)
            if parse_triple(triple).is_windows:
                shutil.rmtree(site_dir / "bin", ignore_errors=True)  # POSIX scripts for the build machine
        with self._stage("trim"):
            trimmed = prepared.trimmed + trim_tree(site_dir, compile_patterns(config.exclude), prefix=APP_DIR)
        with self._stage("relocate"):
            plan = plan_relocation(tree, tree / RUNTIME_DIR, extra_prefixes=(str(compiler.root),), within=site_dir)
            apply_plan(plan)
        # Read while the sources are there (option bytecode = "only" removes them): what the scripts can import.
        imported = imported_top_levels(site_dir, {top_level_name(entry.split(":", 1)[0])
                                                  for entry in self.project.scripts.values()})
        with self._stage("bytecode"):
            self._compile(site_dir, compiler)
        with self._stage("launchers"):
            self._write_launchers(tree, runtime)
        with self._stage("audit"):
            if parse_triple(triple).is_musl:
                check_static_runtime(runtime.interpreter, site_dir, triple)
            found = binaries(tree)
            check_architectures(tree, triple, found=found)
            floor = check_floor(tree, triple, config.floors, runtime_dir=RUNTIME_DIR, found=found)
        manifest = build_manifest(self.project, self.resolved, runtime.interpreter.relative_to(tree).as_posix(),
                                  distributions, runtime.build_metadata,
                                  floor=None if floor is None else floor.manifest_record())
        (tree / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return _Assembled(manifest, [*prepared.relocation_notes, *plan.removed_entries], trimmed, prepared,
                          imported if self.project.scripts else None)

    def _compile(self, site_dir: Path, compiler: PreparedRuntime) -> None:
        """The bytecode stage, after every rewrite of a source (relocated shebangs of scripts): a ``.pyc`` records
        its source's hash, which must be the shipped source's. The RECORD files then describe the files as
        shipped."""
        if self.config.bytecode != "none":
            counts = compile_bytecode(compiler.interpreter, site_dir, sourceless=self.config.bytecode == "only",
                                      cache_dir=self.cache.bytecode_dir, skip=("bin",))
            self.report(f"{self.triple}: bytecode: {counts['compiled']} files compiled, {counts['reused']} reused")
            damaged = counts["damaged"]
            if damaged:
                more = f" and {len(damaged) - 1} more" if len(damaged) > 1 else ""
                self._warn(f"the cached bytecode {damaged[0]}{more} {'was' if len(damaged) == 1 else 'were'} "
                           f"damaged; compiled again")
        normalize_installed_metadata(site_dir)

    def _package(self, tree: Path, manifest: dict[str, object], prepared: PreparedRuntime
                 ) -> tuple[Path, str | None, int]:
        """The artifact and its SBOM in the output directory (never one without the other); returns the artifact,
        its sha256 (``None`` for a directory) and its size in bytes (a directory: its files'). The compressed runtime
        part of a tar archive is kept with the
        prepared runtime and reused by later builds."""
        destination = self.output_dir / archive_name(self.project, self.triple, self.config.archive_format)
        recorded = prepared.contents.files if prepared.contents else None
        with self._stage("pack"):
            try:
                if archive_format(self.triple, self.config.archive_format) == "dir":
                    size = pack_directory(tree, destination, recorded=recorded)
                    sha256 = None
                else:
                    size = pack_tree(tree, destination, times=self.times, reuse=prepared.root.parent / "packed",
                                     recorded=recorded, warn=self._warn)
                    sha256 = sha256_of(destination)
            except DamagedCacheError as error:
                raise DamagedCacheError(f"the prepared runtime {prepared.root.parent} is damaged ({error})") from None
        with self._stage("sbom"):
            try:
                write_sbom(destination, manifest, tree / APP_DIR, archive_sha256=sha256,
                           epoch=self.times.epoch if self.times else None)
            except BaseException:
                if destination.is_dir() and not destination.is_symlink():
                    shutil.rmtree(destination, ignore_errors=True)
                else:
                    destination.unlink(missing_ok=True)
                raise
        return destination, sha256, size

    def _write_launchers(self, tree: Path, runtime: PreparedRuntime) -> None:
        parsed = parse_triple(self.triple)
        for name in self.config.scripts:
            entry_point = self.project.scripts[name]
            if parsed.is_windows:
                gui = name in self.project.gui_scripts
                interpreter = "..\\python\\" + ("pythonw.exe" if gui else "python.exe")
                write_windows_launcher(tree / "bin", name, entry_point, arch=parsed.base_arch, gui=gui,
                                       interpreter=interpreter)
            else:
                write_launcher(tree / "bin", name, entry_point, runtime.interpreter.relative_to(tree).as_posix())


def build_manifest(project: Project, resolved: ResolvedAsset, interpreter: str,
                   distributions: Sequence[Mapping[str, str | None]], build_metadata: Mapping[str, object], *,
                   floor: Mapping[str, str | None] | None = None) -> dict[str, object]:
    """The JSON manifest stored at the archive root (see docs/artifact-layout.md for its fields).

    ``floor`` is the audit's platform floor (:meth:`~hatch_pbs.artifact.audit.FloorAudit.manifest_record`: ``kind``,
    ``declared``, ``needed``, ``needed_by``), ``None`` for Windows targets.

    ``distributions`` is what :func:`~hatch_pbs.app.install.install_distributions` returns: per installed
    distribution its ``name``, ``version``, the ``wheel`` file it was installed from and that file's ``sha256``
    (recorded by the lock uv installed from and checked by uv while installing; ``sdist`` instead of ``wheel``
    for a dependency uv built from source, which only the build machine's own triple allows).
    """
    runtime: dict[str, object] = {
        "release": resolved.asset.release,
        "asset": resolved.asset.file_name,
        "url": resolved.url,
        "sha256": resolved.sha256,
        "flavor": resolved.asset.flavor,
        "build_options": resolved.asset.build_options,
        "interpreter": interpreter,
    }
    if build_metadata:
        runtime["python_json"] = {key: build_metadata[key] for key in (
            "python_tag", "python_abi_tag", "python_platform_tag", "crt_features", "licenses") if key in build_metadata}
    return {
        "manifest_version": 1,
        "tool": {"name": "hatch-pbs", "version": __version__},
        "project": {"name": project.name, "version": project.version},
        "target": resolved.asset.triple,
        "python_version": resolved.asset.python_version,
        "floor": None if floor is None else dict(floor),
        "runtime": runtime,
        "distributions": [dict(entry) for entry in sorted(distributions, key=lambda entry: (
            str(entry["name"]).lower(), str(entry["version"])))],
    }


__all__ = ["BuiltArtifact", "Finisher", "Project", "archive_name", "artifact_stem", "build_artifacts"]
