"""Checking and cleaning a cache: ``hatch-pbs cache verify`` and ``hatch-pbs cache clean``.

The entries of a cache (:class:`~hatch_pbs.release.cache.Cache`) and how each is checked fully:

- an *asset* (``assets/{sha256}/{file name}``): its sha256 is the one its directory names;
- a *prepared runtime* (``runtimes/{key}/``): every file, link and directory below ``python/`` against the record
  in ``prepared.json``, sha256 included (:func:`hatch_pbs.runtime.prepare.entry_verdict`);
- a *compressed runtime part* (``runtimes/{key}/packed/{name}/``): its size and sha256 against its
  ``record.json`` (:func:`hatch_pbs.artifact.pack.part_verdicts`);
- a *bytecode* entry (``bytecode/{cache tag}/{xx}/{key}.pyc``): the sha256 in its header
  (:func:`hatch_pbs.bytecode.worker.entry_verdict`).

Release catalogues carry no digest of their own (they are the root of trust) and are not checked.

:func:`clean_cache` removes damaged entries (any kind), *outdated* ones (made by another hatch-pbs version or in an
older format: this version never reads them), derived entries (prepared runtimes, compressed parts, bytecode) not
used for more than a number of days (their record's modification time, refreshed by builds at most once a day), with
``everything`` every derived entry, and the temporaries and staging directories of killed builds. Assets are
removed only when damaged (they are checked on every use anyway). An entry is removed under its lock, renamed out
of the way first; an entry whose lock a build holds is left alone.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import Timeout

from hatch_pbs.artifact.pack import PART_RECORD, part_verdicts
from hatch_pbs.atomic import abandoned_temporaries, remove_path
from hatch_pbs.bytecode import worker as bytecode_worker
from hatch_pbs.release.cache import (
    Cache,
    freed_bytes,
    remove_abandoned_staging,
    sha256_of,
)
from hatch_pbs.release.records import DAMAGED, INTACT, OUTDATED, Verdict
from hatch_pbs.runtime.prepare import entry_record_path, entry_verdict

ASSET, RUNTIME, PART, BYTECODE = "asset", "prepared runtime", "compressed runtime part", "bytecode"
#: The kinds of entries derived from assets, which ``clean_cache`` removes when unused.
DERIVED = (RUNTIME, PART, BYTECODE)
#: The temporary names writers use: ``.{entry}.{12 hex digits}.part`` (hidden) or ``{entry}.{12 hex}.part``.
_TEMPORARY = re.compile(r"^(?P<hidden>\.)?(?P<entry>.+)\.[0-9a-f]{12}\.part$")


@dataclass(frozen=True)
class Entry:
    """One cache entry and what checking it found.

    Attributes:
        kind: :data:`ASSET`, :data:`RUNTIME`, :data:`PART` or :data:`BYTECODE`.
        path: the entry (a file or a directory).
        verdict: the check's result.
        last_use: when a build last used it (seconds since the epoch); ``None`` for assets.
    """

    kind: str
    path: Path
    verdict: Verdict
    last_use: float | None


@dataclass(frozen=True)
class Removal:
    """What :func:`clean_cache` removed: the entry's ``kind`` (or ``"temporary"``, ``"staging directory"``), its
    ``path``, why (``reason``) and the bytes that freed (``freed``)."""

    kind: str
    path: Path
    reason: str
    freed: int


def cache_entries(cache: Cache, *, digests: bool = True) -> Iterator[Entry]:
    """Every entry of ``cache`` with its verdict, assets first, then prepared runtimes (each followed by its
    compressed parts), then bytecode; with ``digests`` (the default), each is checked fully, else by sizes."""
    for directory in _listing(cache.assets_dir):
        for path in _listing(directory):
            if not _is_bookkeeping(path):
                yield Entry(ASSET, path, _asset_verdict(path, directory.name, digests), None)
    for entry in _listing(cache.runtimes_dir):
        if _is_bookkeeping(entry) or not entry.is_dir():
            continue
        yield Entry(RUNTIME, entry, entry_verdict(entry, digests=digests), _mtime(entry_record_path(entry)))
        for part, verdict in part_verdicts(entry / "packed", digests=digests):
            yield Entry(PART, part, verdict, _mtime(part / PART_RECORD if part.is_dir() else part))
    for walked, subdirectories, names in os.walk(cache.bytecode_dir):
        subdirectories.sort()
        for name in sorted(names):
            path = Path(walked, name)
            if name.endswith(".pyc"):
                yield Entry(BYTECODE, path, _bytecode_verdict(path), _mtime(path))


def clean_cache(cache: Cache, *, older_than: float, everything: bool = False, now: float | None = None
                ) -> list[Removal]:
    """Remove from ``cache`` what :mod:`this module <hatch_pbs.cli.cache_entries>` says: damaged and outdated
    entries, derived entries unused for more than ``older_than`` seconds (all of them with ``everything``), and
    the temporaries and staging directories of killed builds.

    Returns:
        What was removed, in the order of :func:`cache_entries`, temporaries and staging directories last.
    """
    now = time.time() if now is None else now
    removed = []
    for entry in cache_entries(cache, digests=True):
        reason = _removal_reason(entry, older_than, everything, now)
        if reason is None:
            continue
        # Bytecode entries and an older hatch-pbs's part files have no lock (a lock file would only be litter).
        freed = _remove(cache, entry.path, lock=entry.kind in (ASSET, RUNTIME) or entry.path.is_dir())
        if freed is not None:
            removed.append(Removal(entry.kind, entry.path, reason, freed))
    removed += _remove_temporaries(cache)
    removed += [Removal("staging directory", path, "left by a killed build", freed)
                for path, freed in remove_abandoned_staging(cache.staging_dir)]
    _remove_empty_directories(cache.bytecode_dir)
    return removed


def _removal_reason(entry: Entry, older_than: float, everything: bool, now: float) -> str | None:
    if entry.verdict.state in (DAMAGED, OUTDATED):
        return f"{entry.verdict.state}: {entry.verdict.reason}"
    if entry.kind not in DERIVED:
        return None
    if everything:
        return "--all"
    if entry.last_use is not None and now - entry.last_use > older_than:
        return f"unused for {(now - entry.last_use) / 86400:.0f} days"
    return None


def _remove(cache: Cache, path: Path, *, lock: bool) -> int | None:
    """Remove the entry ``path`` (under its lock unless ``lock`` is false); returns the bytes freed, or ``None``
    when a build holds the lock or the entry is gone already."""
    if not lock:
        freed = freed_bytes(path)
        try:
            path.unlink()
        except OSError:
            return None
        return freed
    try:
        with cache.lock(path, timeout=0):
            if not (path.exists() or path.is_symlink()):
                return None
            freed = freed_bytes(path)
            cache.discard(path)
            return freed
    except Timeout:
        return None


def _remove_temporaries(cache: Cache) -> list[Removal]:
    """Remove the ``.part`` temporaries of killed builds anywhere in the cache: those whose lock is free
    (:func:`hatch_pbs.atomic.abandoned_temporaries`; a running writer holds its temporary's)."""
    removed = []
    for directory in _entry_directories(cache):
        for path in abandoned_temporaries(directory):
            freed = freed_bytes(path)
            remove_path(path)
            removed.append(Removal("temporary", path, "left by a killed build", freed))
    return removed


def _entry_directories(cache: Cache) -> Iterator[Path]:
    """The directories where entries (and so their temporaries) are written: ``assets/``, ``assets/{sha256}/``,
    ``releases/**``, ``runtimes/``, ``runtimes/{key}/packed/``, ``bytecode/**``; never into a runtime's tree."""
    yield cache.assets_dir
    yield from _listing(cache.assets_dir)
    for top in (cache.root / "releases", cache.bytecode_dir):
        for directory, subdirectories, _ in os.walk(top):
            subdirectories[:] = sorted(name for name in subdirectories if not _TEMPORARY.match(name))
            yield Path(directory)
    yield cache.runtimes_dir
    for entry in _listing(cache.runtimes_dir):
        if entry.is_dir() and not _TEMPORARY.match(entry.name):
            yield entry
            yield entry / "packed"


def _remove_empty_directories(root: Path) -> None:
    for directory, _, _ in sorted(os.walk(root), reverse=True):
        if Path(directory) != root:
            try:
                os.rmdir(directory)
            except OSError:
                pass  # not empty


def _asset_verdict(path: Path, sha256: str, digests: bool) -> Verdict:
    if not digests:
        return Verdict(INTACT)
    try:
        found = sha256_of(path)
    except OSError as error:
        return Verdict(DAMAGED, f"unreadable ({error.strerror or error})")
    return Verdict(INTACT) if found == sha256 else Verdict(DAMAGED, f"its sha256 is {found}, not {sha256}")


def _bytecode_verdict(path: Path) -> Verdict:
    try:
        return Verdict(*bytecode_worker.entry_verdict(path))
    except OSError as error:
        return Verdict(DAMAGED, f"unreadable ({error.strerror or error})")


def _listing(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except OSError:
        return []


def _is_bookkeeping(path: Path) -> bool:
    """Lock files and temporaries, which are not entries."""
    return path.name.endswith(".lock") or bool(_TEMPORARY.match(path.name))


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


__all__ = ["ASSET", "BYTECODE", "PART", "RUNTIME", "Entry", "Removal", "cache_entries", "clean_cache"]
