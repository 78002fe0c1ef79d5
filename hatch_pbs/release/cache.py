"""The on-disk cache: downloaded assets (content-addressed by sha256), release catalogues, and entries derived from
the assets (prepared runtimes, compressed runtime parts, bytecode).

Layout under the cache root::

    assets/{sha256}/{asset file name}          verified archives, immutable once published
    releases/{mirror key}/{release}/SHA256SUMS  release catalogues (a release tag's assets never change)
    runtimes/{key}/python/                      prepared runtimes (:mod:`hatch_pbs.runtime.prepare`),
                                                immutable once published
    runtimes/{key}/prepared.json                its facts and the record of every file below python/
    runtimes/{key}/packed/{name}/part           the compressed python/ part of archives made from it
                                                (:mod:`hatch_pbs.artifact.pack`)
    runtimes/{key}/packed/{name}/record.json    its size, sha256 and uncompressed size
    staging/{random}/                           builds in progress (same file system: runtimes are hard-linked)
    bytecode/{cache tag}/{xx}/{key}.pyc         compiled bytecode by source content, behind a header with its sha256
                                                (:mod:`hatch_pbs.bytecode.worker`)
    built-wheels/{triple}/{python}/{sha256}/    wheels built from source distributions by sdist sha256
                                                (:mod:`hatch_pbs.app.sdists`)

Entries are published atomically (:mod:`hatch_pbs.atomic`): written to a ``.part`` temporary in the same
directory, flushed to the disk (``fsync``) and renamed into place only when complete and verified, so a crashed,
killed or interrupted build (or a full disk) never leaves something that looks like an entry. A ``.part`` left by a
killed build is removed by the next writer of that entry.
Writers of one entry are serialised by a file lock (``filelock``), so concurrent builds sharing a cache download
each asset once.

Every entry records what it must contain and is checked when it is used, so damage done after publication (a
full disk, a crash, a file edited or truncated by hand) is never trusted:

- an asset is hashed again on every use (its directory names its sha256); a mismatch is deleted and downloaded;
- a prepared runtime's ``prepared.json`` lists every file (size, sha256), link (target) and directory below
  ``python/`` (:class:`hatch_pbs.release.records.TreeRecord`). Each use compares names, kinds, sizes and link targets
  (one
  ``lstat`` per path); every sha256 is compared before a trimmed runtime is made from a relocated one, and while the
  runtime's files are read to be packed (a new compressed part, a ``.zip``, a directory artifact);
- a compressed part's size is compared before it is used, and its sha256 while it is copied into the archive;
- a cached ``.pyc`` is read whole to be copied anyway, so its sha256 is compared on every use.

A damaged entry is discarded (renamed away under its lock, then removed: :meth:`Cache.discard`) and made again,
with one warning line; a damaged file never reaches an artifact or a ``SHA256SUMS``. ``hatch-pbs cache verify``
checks every entry fully and ``hatch-pbs cache clean`` removes damaged, outdated and unused ones
(:mod:`hatch_pbs.cli.cache_entries`). Builds refresh the modification time of an entry's record (``prepared.json``,
``record.json``, the ``.pyc``) at most once a day: that is its last use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from hatch_pbs import interrupts
from hatch_pbs.atomic import publishing_directory, publishing_file, withdraw
from hatch_pbs.release.sums import SUMS_FILE_NAME

#: Seconds to wait for another build that holds an entry's lock (a large download can take a while).
LOCK_TIMEOUT = 30 * 60


class Cache:
    """A cache rooted at ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def asset_path(self, sha256: str, file_name: str) -> Path:
        """Where the verified asset with this sha256 lives (it may not exist yet)."""
        return self.root / "assets" / sha256 / file_name

    def catalogue_path(self, mirror: str, release: str) -> Path:
        """Where the ``SHA256SUMS`` of ``release`` as served by ``mirror`` is kept."""
        mirror_key = hashlib.sha256(mirror.encode()).hexdigest()[:16]
        return self.root / "releases" / mirror_key / release / SUMS_FILE_NAME

    @property
    def bytecode_dir(self) -> Path:
        """Where compiled bytecode is kept for reuse (see :func:`hatch_pbs.bytecode.compiler.compile_bytecode`)."""
        return self.root / "bytecode"

    def built_wheel_dir(self, triple: str, python_version: str, sdist_sha256: str) -> Path:
        """Where the wheel built from the sdist with this sha256 for ``triple``'s runtime of ``python_version``
        (e.g. ``"3.12.7"``) is kept (see :mod:`hatch_pbs.app.sdists`); it may not exist yet."""
        return self.root / "built-wheels" / triple / python_version / sdist_sha256

    def runtime_path(self, key: str) -> Path:
        """Where the prepared runtime with this key lives (it may not exist yet)."""
        return self.runtimes_dir / key

    @property
    def assets_dir(self) -> Path:
        """Where verified assets are kept (``assets/{sha256}/{asset file name}``)."""
        return self.root / "assets"

    @property
    def runtimes_dir(self) -> Path:
        """Where prepared runtimes are kept (``runtimes/{key}/``)."""
        return self.root / "runtimes"

    @property
    def staging_dir(self) -> Path:
        """Where builds in progress stage their trees (:meth:`staging`)."""
        return self.root / "staging"

    @contextmanager
    def publishing_directory(self, entry: Path) -> Iterator[Path]:
        """Like :meth:`publishing`, for a directory entry (:func:`hatch_pbs.atomic.publishing_directory`). Call
        with the entry's :meth:`lock` held."""
        with publishing_directory(entry) as temporary:
            yield temporary

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private, empty directory below ``staging/`` for one build, removed afterwards (see
        :func:`staging_directory`)."""
        with staging_directory(self.staging_dir) as directory:
            yield directory

    @contextmanager
    def lock(self, entry: Path, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the lock of ``entry`` (a sibling ``.lock`` file) for the duration of the block.

        Raises:
            filelock.Timeout: another process held it for more than ``timeout`` seconds (default
                :data:`LOCK_TIMEOUT`; ``0``: do not wait).
            BuildInterrupted: the build was interrupted while waiting for it.
        """
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(entry) + ".lock")
        interrupts.acquire(lock, timeout)
        try:
            yield
        finally:
            lock.release()

    def discard(self, entry: Path) -> None:
        """Remove the entry ``entry`` (a file or a directory tree), if it exists: it is renamed to a temporary name
        first, so no reader ever finds half of it under its name. Call with the entry's :meth:`lock` held."""
        withdraw(entry)

    @contextmanager
    def publishing(self, entry: Path) -> Iterator[Path]:
        """Yield a temporary file next to ``entry``, published as ``entry`` when the block succeeds and removed
        when it raises (:func:`hatch_pbs.atomic.publishing_file`). Call with the entry's :meth:`lock` held."""
        with publishing_file(entry) as temporary:
            yield temporary


@contextmanager
def staging_directory(root: Path, *, remove_empty_root: bool = False) -> Iterator[Path]:
    """A private, empty directory below ``root`` (created if needed) for one build, held by a file lock
    (``<directory>.lock``) and removed when the block ends, however it ends. Directories of builds that were killed
    (their lock is free) are removed first; a live build's directory is never touched. With ``remove_empty_root``,
    ``root`` itself is removed when nothing is left in it.

    Raises:
        OSError: ``root`` cannot be created.
    """
    root.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(root)
    directory = Path(tempfile.mkdtemp(dir=root))
    try:
        with FileLock(str(directory) + ".lock", timeout=0):
            yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        Path(str(directory) + ".lock").unlink(missing_ok=True)
        if remove_empty_root:
            with suppress(OSError):  # not empty: another build is staging there
                root.rmdir()


def remove_abandoned_staging(root: Path) -> list[tuple[Path, int]]:
    """Remove the staging directories below ``root`` of builds that were killed (their ``<directory>.lock`` is
    free), never a live build's; returns those removed with the bytes that freed (:func:`freed_bytes`)."""
    removed = []
    for lock_file in sorted(root.glob("*.lock")) if root.is_dir() else []:
        stale = FileLock(str(lock_file), timeout=0)
        try:
            with stale:
                directory = lock_file.with_suffix("")
                if directory.exists():
                    removed.append((directory, freed_bytes(directory)))
                shutil.rmtree(directory, ignore_errors=True)
                lock_file.unlink(missing_ok=True)
        except Timeout:  # a build in progress
            continue
    return removed


def freed_bytes(path: Path) -> int:
    """The bytes removing the file or tree ``path`` would free: the sizes of its files that have no other hard
    link (a prepared runtime shares most of its files with the one it was made from, and with builds' copies)."""
    try:
        status = path.lstat()
    except OSError:
        return 0
    if not stat.S_ISDIR(status.st_mode):
        return status.st_size if status.st_nlink == 1 else 0
    total = 0
    for directory, _, names in os.walk(path):
        for name in names:
            with suppress(OSError):
                status = os.lstat(os.path.join(directory, name))
                total += status.st_size if status.st_nlink == 1 else 0
    return total


def sha256_of(path: Path) -> str:
    """Lowercase hex sha256 of the bytes of the file at ``path`` (read in 1 MiB blocks).

    Raises:
        BuildInterrupted: the build was interrupted.
    """
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            interrupts.check()
            digest.update(block)
    return digest.hexdigest()
