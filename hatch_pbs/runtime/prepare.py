"""Prepared runtimes: a runtime asset extracted, relocated, trimmed and byte-compiled once, kept in the cache, and
copied into each build cheaply.

Two kinds of cache entries (``runtimes/{key}/`` of :class:`~hatch_pbs.release.cache.Cache`), each a ``python/``
directory
and a ``prepared.json``:

- the *relocated* runtime of an asset: extracted (:mod:`hatch_pbs.runtime.extract`) and relocated
  (:mod:`hatch_pbs.relocate`), nothing removed. Foreign targets' builds run it as their compiler. Its key is the
  asset's sha256 and :data:`PREPARATION_VERSION`.
- a *trimmed* runtime: a hard-linked copy of the relocated one, with the ``stdlib`` preset and the ``python/``
  part of ``exclude`` applied (:mod:`hatch_pbs.runtime.trim`), the standard library's bytecode as option ``bytecode``
  wants it, and the ``.pth`` file that puts ``app/`` on ``sys.path``. Its key adds those options.

Each asset is therefore extracted once per cache, whatever options and targets use it. Entries are immutable
once published (written in a temporary directory, renamed into place under the entry's lock). ``prepared.json``
records who made the entry from what (hatch-pbs version, :data:`PREPARATION_VERSION`, asset sha256, for a trimmed
runtime the relocated one's key) and everything below ``python/`` (:class:`~hatch_pbs.release.records.TreeRecord`:
sizes and
sha256s, hashed when the entry is made). Every use checks the entry against it by sizes (:func:`entry_verdict`); a
trimmed runtime is made only from a relocated one whose every sha256 matches. A damaged entry is discarded and
prepared again, with one warning line. Everything a
preparation writes or changes gets the newest modification time among the asset's members (*the asset time*), and
so does every directory, so a prepared runtime, and the archive members made from it, are the same bytes
whichever build prepared it and when.

:func:`copy_runtime` copies an entry into a build's staging tree with hard links (the staging directory is in the
cache, on the same file system); files are never modified in place afterwards: everything that rewrites a file
writes a new one and renames it over the old (relocation, ``compileall``), which leaves the cache's copy intact.
Where hard links are not possible (another file system, a link count limit), files are copied.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatch_pbs import __version__, interrupts
from hatch_pbs.bytecode.compiler import compile_bytecode, remove_bytecode
from hatch_pbs.errors import ConfigError, DamagedCacheError, ExtractError, ResolveError
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.records import (
    DAMAGED,
    INTACT,
    OUTDATED,
    TreeRecord,
    Verdict,
    describe_problems,
    mark_used,
    record_tree,
    tree_problems,
)
from hatch_pbs.release.resolve import ResolvedAsset
from hatch_pbs.release.triples import parse_triple
from hatch_pbs.relocate import apply_plan, plan_relocation
from hatch_pbs.runtime.extract import DEFAULT_MAX_UNPACKED_SIZE, extract_runtime
from hatch_pbs.runtime.site import write_app_pth
from hatch_pbs.runtime.trim import (
    TrimResult,
    compile_patterns,
    stdlib_patterns,
    trim_tree,
    under,
)

#: Bumped whenever what a preparation produces changes, so older cache entries are not reused (2: records).
PREPARATION_VERSION = 2
RUNTIME_DIR = "python"
_RECORD = "prepared.json"

#: Receives one line per damaged cache entry found (the pipeline's ``warn``).
Warn = Callable[[str], None]


def _quiet(message: str) -> None:
    """A :data:`Warn` that drops its line."""


@dataclass(frozen=True)
class Trim:
    """The options that shape a trimmed runtime (``stdlib``, ``bytecode``, ``exclude``; see
    :class:`~hatch_pbs.config.HookConfig`)."""

    stdlib: str = "default"
    bytecode: str = "compile"
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreparedRuntime:
    """A runtime ready to be copied into an artifact or run.

    Attributes:
        root: its ``python/`` directory.
        interpreter: its interpreter executable (inside ``root``).
        build_metadata: the parsed ``PYTHON.json`` of a ``full`` asset, ``{}`` otherwise.
        relocation_notes: search-path entries relocation removed because they pointed outside the runtime.
        trimmed: what trimming removed (files, bytes).
        contents: the record of everything below ``root`` (``None``: not recorded).
    """

    root: Path
    interpreter: Path
    build_metadata: dict[str, Any] = field(default_factory=dict)
    relocation_notes: tuple[str, ...] = ()
    trimmed: TrimResult = TrimResult()
    contents: TreeRecord | None = None

    def moved_to(self, root: Path) -> PreparedRuntime:
        """The same runtime, found at ``root``."""
        return PreparedRuntime(root, root / self.interpreter.relative_to(self.root), self.build_metadata,
                               self.relocation_notes, self.trimmed, self.contents)


def entry_key(resolved: ResolvedAsset, trim: Trim | None) -> str:
    """The cache key of the relocated (``trim`` is ``None``) or trimmed runtime of ``resolved``: hex sha256 of the
    asset's sha256, hatch-pbs's version, :data:`PREPARATION_VERSION` and the trim options."""
    identity = {"asset_sha256": resolved.sha256, "hatch_pbs": __version__, "preparation": PREPARATION_VERSION,
                "trim": None if trim is None else [trim.stdlib, trim.bytecode, list(trim.exclude)]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:40]


def relocated_runtime(cache: Cache, archive: Path, resolved: ResolvedAsset, *,
                      max_unpacked_size: int = DEFAULT_MAX_UNPACKED_SIZE, warn: Warn = _quiet) -> PreparedRuntime:
    """The relocated runtime of ``resolved`` (whose verified asset is ``archive``), prepared now if the cache has
    none, or has one that no longer matches its record (sizes, names, link targets: :func:`entry_verdict` without
    digests). A damaged entry is discarded with one ``warn`` line, together with the trimmed runtimes made from it
    that share its damage, and prepared again.

    Raises:
        ExtractError, RelocateError, SigningError: the asset cannot be extracted or relocated (nothing is
            published then).
        ResolveError: the runtime has no interpreter where python-build-standalone puts it.
    """
    entry = cache.runtime_path(entry_key(resolved, None))
    with cache.lock(entry):
        runtime = _reusable(cache, entry, warn, source=True)
        if runtime is None:
            with cache.publishing_directory(entry) as work:
                _relocate(archive, resolved, work, max_unpacked_size)
            runtime = _load(entry)
        return runtime


def trimmed_runtime(cache: Cache, relocated: PreparedRuntime, resolved: ResolvedAsset, trim: Trim, *,
                    compiler: Path | None = None, warn: Warn = _quiet) -> PreparedRuntime:
    """The runtime of ``resolved`` trimmed as ``trim`` says, prepared from ``relocated`` now if the cache has none
    (or a damaged one, discarded with one ``warn`` line as in :func:`relocated_runtime`). Before anything is made
    from ``relocated``, every one of its files is checked against its record, sha256 included.

    Args:
        compiler: an interpreter of the same Python version that runs on the build machine, for the standard
            library's sourceless bytecode (``bytecode = "only"``) of a foreign target; ``None``: the runtime's own.

    Raises:
        ConfigError: option ``exclude`` removes the runtime's interpreter.
        InstallError: the standard library could not be byte-compiled.
        DamagedCacheError: ``relocated`` does not match its record (discard it with :func:`discard_prepared` and
            prepare it again).
    """
    entry = cache.runtime_path(entry_key(resolved, trim))
    with cache.lock(entry):
        runtime = _reusable(cache, entry, warn, source=False)
        if runtime is None:
            if relocated.contents is not None:
                problems = tree_problems(relocated.root, relocated.contents, digests=True)
                if problems:
                    raise DamagedCacheError(f"the prepared runtime {relocated.root.parent} is damaged "
                                            f"({describe_problems(problems)})")
            with cache.publishing_directory(entry) as work:
                _trim(relocated, resolved, trim, work, compiler)
            runtime = _load(entry)
        return runtime


def discard_prepared(cache: Cache, resolved: ResolvedAsset, trim: Trim | None) -> None:
    """Remove the trimmed runtime of ``resolved`` for ``trim`` (unless ``None``) and its relocated runtime from the
    cache (each under its lock), so that the next build prepares both again from the verified asset."""
    for key in ([] if trim is None else [entry_key(resolved, trim)]) + [entry_key(resolved, None)]:
        entry = cache.runtime_path(key)
        with cache.lock(entry):
            cache.discard(entry)


def entry_verdict(entry: Path, *, digests: bool) -> Verdict:
    """Whether the prepared runtime ``entry`` (a ``runtimes/{key}/`` directory) matches the record in its
    ``prepared.json``: :data:`~hatch_pbs.release.records.OUTDATED` when another hatch-pbs version (or
    :data:`PREPARATION_VERSION`) made it; with ``digests``, every file's sha256 is checked too."""
    return _checked(entry, digests=digests)[0]


def _checked(entry: Path, *, digests: bool) -> tuple[Verdict, PreparedRuntime | None]:
    """:func:`entry_verdict`, and the runtime when the entry is intact (its record is read once)."""
    try:
        record = json.loads((entry / _RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Verdict(DAMAGED, f"{_RECORD}: missing"), None
    except (OSError, ValueError) as error:
        return Verdict(DAMAGED, f"{_RECORD}: unreadable ({error})"), None
    made_by = (record.get("hatch_pbs"), record.get("preparation")) if isinstance(record, dict) else (None, None)
    if made_by != (__version__, PREPARATION_VERSION):
        maker = f"hatch-pbs {made_by[0]}" if made_by[0] else "an older hatch-pbs"
        return Verdict(OUTDATED, f"made by {maker} (preparation version {made_by[1] or 1}), which this one never "
                                 f"reads"), None
    try:
        runtime = _from_record(entry, record)
    except (ValueError, KeyError, TypeError) as error:
        return Verdict(DAMAGED, f"{_RECORD}: malformed ({error!r})"), None
    if runtime.contents is None:
        return Verdict(DAMAGED, f"{_RECORD}: no file list"), None
    problems = tree_problems(runtime.root, runtime.contents, digests=digests)
    return (Verdict(DAMAGED, describe_problems(problems)), None) if problems else (Verdict(INTACT), runtime)


def entry_record_path(entry: Path) -> Path:
    """The record file of the prepared runtime ``entry``; its modification time is the entry's last use."""
    return entry / _RECORD


def _reusable(cache: Cache, entry: Path, warn: Warn, *, source: bool) -> PreparedRuntime | None:
    """The prepared runtime at ``entry`` if there is one that matches its record (sizes); ``None`` when there is
    none or it was damaged (then it is discarded, ``source``: with the trimmed runtimes made from it that do not
    match theirs, and ``warn`` gets one line). Call with the entry's lock held."""
    if not (entry.exists() or entry.is_symlink()):
        return None
    verdict, runtime = _checked(entry, digests=False)
    if runtime is not None:
        mark_used(entry / _RECORD)
        return runtime
    derived = _discard_damaged_derived(cache, entry) if source else 0
    also = f", with the {derived} trimmed runtime{'s' if derived > 1 else ''} made from it" if derived else ""
    warn(f"the prepared runtime {entry} is damaged ({verdict.reason}); preparing it again{also}")
    cache.discard(entry)
    return None


def _discard_damaged_derived(cache: Cache, source: Path) -> int:
    """Discard the trimmed runtimes made from the relocated runtime ``source`` that do not match their records
    (they share its files through hard links, hence its damage); returns how many."""
    discarded = 0
    for entry in sorted(source.parent.iterdir()):
        if entry == source or entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            record = json.loads((entry / _RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or record.get("source") != source.name:
            continue
        with cache.lock(entry):
            if entry.is_dir() and entry_verdict(entry, digests=False).state == DAMAGED:
                cache.discard(entry)
                discarded += 1
    return discarded


def copy_runtime(runtime: PreparedRuntime, destination: Path) -> PreparedRuntime:
    """Copy ``runtime`` to ``destination`` (which must not exist) with hard links where possible; directories and
    symbolic links keep their modification times. Returns the copy.

    Raises:
        BuildInterrupted: the build was interrupted (the caller removes the partial copy with its staging
            directory).
    """
    link = True
    for source_dir, subdirectories, files in os.walk(runtime.root):
        target_dir = destination / Path(source_dir).relative_to(runtime.root)
        target_dir.mkdir(parents=True)
        for name in [*files, *(name for name in subdirectories if Path(source_dir, name).is_symlink())]:
            interrupts.check()
            source, target = Path(source_dir, name), target_dir / name
            if source.is_symlink():
                os.symlink(os.readlink(source), target)
                os.utime(target, ns=_times(source), follow_symlinks=False)
            elif link:
                try:
                    os.link(source, target)
                except OSError as error:
                    if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                        raise
                    link = False
                    shutil.copy2(source, target)
            else:
                shutil.copy2(source, target)
    _copy_directory_times(runtime.root, destination)
    return runtime.moved_to(destination)


def _times(path: Path) -> tuple[int, int]:
    status = path.lstat()
    return status.st_atime_ns, status.st_mtime_ns


def _copy_directory_times(source: Path, destination: Path) -> None:
    for directory, _, _ in os.walk(source, topdown=False):
        os.utime(destination / Path(directory).relative_to(source), ns=_times(Path(directory)))


def _relocate(archive: Path, resolved: ResolvedAsset, work: Path, max_unpacked_size: int) -> None:
    started = time.time()
    runtime_dir = work / RUNTIME_DIR
    extracted = extract_runtime(archive, runtime_dir, full=resolved.asset.flavor == "full",
                                max_unpacked_size=max_unpacked_size)
    plan = plan_relocation(work, runtime_dir)
    apply_plan(plan)
    interpreter = find_interpreter(runtime_dir, resolved.asset.python_version, resolved.asset.triple)
    _settle_times(runtime_dir, started, _asset_time(runtime_dir, started))
    _write_record(work, resolved, None, interpreter.relative_to(runtime_dir).as_posix(), extracted.build_metadata,
                  plan.removed_entries, TrimResult())


def _trim(relocated: PreparedRuntime, resolved: ResolvedAsset, trim: Trim, work: Path, compiler: Path | None
          ) -> None:
    started = time.time()
    asset_time = max(_asset_time(relocated.root, float("inf")), 0)
    runtime = copy_runtime(relocated, work / RUNTIME_DIR)
    version, triple = resolved.asset.python_version, resolved.asset.triple
    windows = parse_triple(triple).is_windows
    patterns = under(RUNTIME_DIR, stdlib_patterns(trim.stdlib, python_version=version, windows=windows))
    trimmed = trim_tree(runtime.root, compile_patterns([*patterns, *trim.exclude]), prefix=RUNTIME_DIR)
    if not runtime.interpreter.is_file():
        raise ConfigError([f"Option `exclude` for build hook `pbs` removes the runtime's interpreter "
                           f"{RUNTIME_DIR}/{runtime.interpreter.relative_to(runtime.root).as_posix()}, which the "
                           f"launchers run; got {list(trim.exclude)!r}"])
    stdlib = find_stdlib(runtime.root, version, triple)
    if trim.bytecode == "only":
        compile_bytecode(compiler or runtime.interpreter, stdlib, sourceless=True, strict=False,
                         recorded_as=f"{RUNTIME_DIR}/{stdlib.relative_to(runtime.root).as_posix()}")
    elif trim.bytecode == "none":
        remove_bytecode(runtime.root)
    write_app_pth(stdlib / "site-packages")
    _settle_times(runtime.root, started, asset_time)
    _write_record(work, resolved, trim, runtime.interpreter.relative_to(runtime.root).as_posix(),
                  runtime.build_metadata, list(relocated.relocation_notes), trimmed)


def _asset_time(root: Path, before: float) -> float:
    """The newest modification time of a regular file below ``root`` older than ``before`` (the asset's own times).

    Symbolic links do not count: where a link's own time cannot be set, it is the time it was made, and the file
    system's clock is coarse (a file made just after ``before`` was taken can be stamped a few milliseconds before
    it), which made the time depend on the moment of the build."""
    newest = 0.0
    for directory, _, files in os.walk(root):
        for name in files:
            status = Path(directory, name).lstat()
            if stat.S_ISLNK(status.st_mode):
                continue
            mtime = status.st_mtime
            if newest < mtime < before:
                newest = mtime
    return newest


def _settle_times(root: Path, started: float, asset_time: float) -> None:
    """Give every directory, and every file or link written since ``started``, the asset time."""
    stamp = int(asset_time) * 1_000_000_000
    for directory, subdirectories, files in os.walk(root, topdown=False):
        for name in [*files, *subdirectories]:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_dir():
                if path.lstat().st_mtime >= started:
                    os.utime(path, ns=(stamp, stamp), follow_symlinks=False)
        os.utime(directory, ns=(stamp, stamp))


def _write_record(work: Path, resolved: ResolvedAsset, trim: Trim | None, interpreter: str,
                  build_metadata: dict[str, Any], notes: list[str], trimmed: TrimResult) -> None:
    """``prepared.json``: who made the entry from what (``source``: the relocated runtime's key, for a trimmed one),
    the runtime's facts, and the record of everything below ``python/`` (every file hashed now)."""
    record = {"hatch_pbs": __version__, "preparation": PREPARATION_VERSION, "asset_sha256": resolved.sha256,
              "source": None if trim is None else entry_key(resolved, None),
              "trim": None if trim is None else [trim.stdlib, trim.bytecode, list(trim.exclude)],
              "interpreter": interpreter, "build_metadata": build_metadata, "relocation_notes": notes,
              "trimmed": {"files": trimmed.files, "size": trimmed.size},
              "contents": record_tree(work / RUNTIME_DIR).to_json()}
    (work / _RECORD).write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")


def _load(entry: Path) -> PreparedRuntime:
    """The runtime just published at ``entry``."""
    try:
        return _from_record(entry, json.loads((entry / _RECORD).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ExtractError(f"the prepared runtime in {entry} is damaged ({error}); delete that directory") from None


def _from_record(entry: Path, record: dict[str, Any]) -> PreparedRuntime:
    """The runtime that ``record`` (the parsed ``prepared.json``) describes at ``entry``.

    Raises:
        ValueError, KeyError, TypeError: the record is malformed.
    """
    root = entry / RUNTIME_DIR
    return PreparedRuntime(root, root / record["interpreter"], record["build_metadata"],
                           tuple(record["relocation_notes"]), TrimResult(**record["trimmed"]),
                           TreeRecord.from_json(record["contents"]))


def find_interpreter(runtime: Path, python_version: str, triple: str | None = None) -> Path:
    """The runtime's interpreter executable: ``bin/python3.X`` (POSIX layouts) or ``python.exe`` (Windows).

    Raises:
        ResolveError: the runtime has no interpreter where python-build-standalone puts it.
    """
    major_minor = ".".join(python_version.split(".")[:2])
    if triple and parse_triple(triple).is_windows:
        candidates: tuple[str, ...] = ("python.exe",)
    else:
        candidates = (f"bin/python{major_minor}", f"bin/python{major_minor}t", "bin/python3")
    for name in candidates:
        if (runtime / name).is_file():
            return runtime / name
    raise ResolveError(f"the runtime has no interpreter at {runtime / candidates[0]}")


def find_stdlib(runtime: Path, python_version: str, triple: str | None = None) -> Path:
    """The runtime's standard library directory: ``lib/python3.X`` (``3.Xt``) or ``Lib`` (Windows)."""
    if triple and parse_triple(triple).is_windows:
        return runtime / "Lib"
    major_minor = ".".join(python_version.split(".")[:2])
    for name in (f"lib/python{major_minor}", f"lib/python{major_minor}t"):
        if (runtime / name).is_dir():
            return runtime / name
    return runtime / f"lib/python{major_minor}"


__all__ = ["PreparedRuntime", "Trim", "copy_runtime", "discard_prepared", "entry_key", "entry_record_path",
           "entry_verdict", "find_interpreter", "find_stdlib", "relocated_runtime", "trimmed_runtime"]
