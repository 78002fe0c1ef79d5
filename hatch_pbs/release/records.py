"""Records of derived cache entries: what a prepared runtime or a compressed runtime part must contain, written
when the entry is published and checked whenever it is used.

A *tree record* (:class:`TreeRecord`, kept in a prepared runtime's ``prepared.json`` under ``contents``) lists
every path below a directory tree (POSIX, relative to the tree): each regular file with its size in bytes and
its sha256, each symbolic link with its target, each directory. :func:`tree_problems` compares a tree with its
record either cheaply (names, kinds, sizes, link targets: one ``lstat`` per path, as every build does) or fully
(also every file's sha256: ``hatch-pbs cache verify``, and the derivation of a trimmed runtime from a relocated
one). :func:`verified_blocks` checks a file's bytes against its record while a caller reads them anyway (packing
an archive), so the digest costs no extra read.

An entry's *last use* is the modification time of its record file, refreshed by :func:`mark_used` at most once a
day (``hatch-pbs cache clean`` removes entries unused for longer than a number of days).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from hatch_pbs.errors import DamagedCacheError
from hatch_pbs.release.cache import sha256_of

#: Seconds between two refreshes of an entry's last-use time (one day): a build writes nothing to an entry it
#: used the same day.
USE_RESOLUTION = 24 * 3600
#: At most this many problems are named in one message (the rest are counted).
NAMED_PROBLEMS = 1

#: The states of an entry (:class:`Verdict`): it matches its record; it does not (or has no readable record); it
#: was made by another hatch-pbs version or in an older format, which this version never reads.
INTACT, DAMAGED, OUTDATED = "intact", "damaged", "outdated"


class Verdict(NamedTuple):
    """What checking an entry found: ``state`` (:data:`INTACT`, :data:`DAMAGED` or :data:`OUTDATED`) and, unless
    intact, why (one clause, e.g. ``"python/bin/python3.12: 0 bytes, 1234 recorded"``)."""

    state: str
    reason: str = ""


@dataclass(frozen=True)
class TreeRecord:
    """What a directory tree must contain.

    Attributes:
        files: relative POSIX path -> ``(size in bytes, lowercase hex sha256)`` of every regular file.
        links: relative POSIX path -> target of every symbolic link.
        directories: relative POSIX paths of every directory below the tree (not the tree itself).
    """

    files: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    directories: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``{"files": {path: [size, sha256]}, "links": {path: target}, "directories": [...]}``,
        sorted."""
        return {"files": {path: list(self.files[path]) for path in sorted(self.files)},
                "links": {path: self.links[path] for path in sorted(self.links)},
                "directories": sorted(self.directories)}

    @classmethod
    def from_json(cls, value: Any) -> TreeRecord:
        """The record :meth:`to_json` wrote.

        Raises:
            ValueError: ``value`` is not such a record.
        """
        try:
            files = {str(path): (int(size), str(digest)) for path, (size, digest) in value["files"].items()}
            links = {str(path): str(target) for path, target in value["links"].items()}
            directories = frozenset(str(path) for path in value["directories"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"malformed contents record ({error!r})") from None
        return cls(files, links, directories)


def record_tree(root: Path) -> TreeRecord:
    """The record of the tree at ``root`` as it is now (every file read and hashed; links not followed)."""
    files, links, directories = {}, {}, set()
    for relative, path, status in _walk(root):
        if stat.S_ISLNK(status.st_mode):
            links[relative] = os.readlink(path)
        elif stat.S_ISDIR(status.st_mode):
            directories.add(relative)
        elif stat.S_ISREG(status.st_mode):
            files[relative] = (status.st_size, sha256_of(Path(path)))
    return TreeRecord(files, links, frozenset(directories))


def tree_problems(root: Path, record: TreeRecord, *, digests: bool) -> list[str]:
    """How the tree at ``root`` differs from ``record`` (empty: it matches), e.g. ``["lib/os.py: 0 bytes, 1234
    recorded", "bin/python3.12: missing"]``; with ``digests``, every file's sha256 is compared too."""
    problems = []
    seen = set()
    if not root.is_dir() or root.is_symlink():
        return [f"{root.name}/: missing"]
    for relative, path, status in _walk(root):
        seen.add(relative)
        problem = _path_problem(relative, path, status, record, digests)
        if problem:
            problems.append(problem)
    for relative in sorted({*record.files, *record.links, *record.directories} - seen):
        problems.append(f"{relative}: missing")
    return problems


def _path_problem(relative: str, path: str, status: os.stat_result, record: TreeRecord, digests: bool
                  ) -> str | None:
    if relative in record.files:
        size, digest = record.files[relative]
        if not stat.S_ISREG(status.st_mode):
            return f"{relative}: not a regular file"
        if status.st_size != size:
            return f"{relative}: {status.st_size} bytes, {size} recorded"
        if digests and sha256_of(Path(path)) != digest:
            return f"{relative}: its sha256 differs from the recorded one"
        return None
    if relative in record.links:
        if not stat.S_ISLNK(status.st_mode):
            return f"{relative}: not a symbolic link"
        if os.readlink(path) != record.links[relative]:
            return f"{relative}: points to {os.readlink(path)!r}, {record.links[relative]!r} recorded"
        return None
    if relative in record.directories:
        return None if stat.S_ISDIR(status.st_mode) and not stat.S_ISLNK(status.st_mode) else (
            f"{relative}: not a directory")
    return f"{relative}: not recorded"


def describe_problems(problems: list[str]) -> str:
    """``problems`` as a short clause for a one-line message: the first ones and how many more."""
    named = "; ".join(problems[:NAMED_PROBLEMS])
    more = len(problems) - NAMED_PROBLEMS
    return named + (f"; and {more} more" if more > 0 else "")


def verified_blocks(path: Path, recorded: tuple[int, str], *, name: str, block_size: int = 1 << 20
                    ) -> Iterator[bytes]:
    """The bytes of the file at ``path`` in blocks, checked against ``recorded`` (size, sha256) as they are read.

    Raises:
        DamagedCacheError: after the last block, when the size or the sha256 differs (``name`` names the file).
    """
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as source:
        for block in iter(lambda: source.read(block_size), b""):
            digest.update(block)
            size += len(block)
            yield block
    if size != recorded[0]:
        raise DamagedCacheError(f"{name}: {size} bytes, {recorded[0]} recorded")
    if digest.hexdigest() != recorded[1]:
        raise DamagedCacheError(f"{name}: its sha256 differs from the recorded one")


def mark_used(record: Path, *, now: float | None = None) -> None:
    """Refresh the last-use time of the entry whose record file is ``record`` (its modification time), unless it
    was refreshed less than :data:`USE_RESOLUTION` seconds ago; a read-only cache is left as it is."""
    now = time.time() if now is None else now
    try:
        if now - record.stat().st_mtime >= USE_RESOLUTION:
            os.utime(record, (now, now))
    except OSError:
        pass


def _walk(root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(relative POSIX path, path, lstat)`` of everything below ``root``, links not followed (paths are strings:
    a build checks thousands of them)."""
    top = len(str(root)) + 1
    for directory, subdirectories, names in os.walk(root):
        prefix = directory[top:].replace(os.sep, "/")
        for name in [*subdirectories, *names]:
            path = os.path.join(directory, name)
            yield f"{prefix}/{name}" if prefix else name, path, os.lstat(path)


__all__ = ["DAMAGED", "INTACT", "OUTDATED", "TreeRecord", "Verdict", "describe_problems", "mark_used", "record_tree",
           "tree_problems", "verified_blocks"]
