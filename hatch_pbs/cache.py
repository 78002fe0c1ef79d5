"""The on-disk cache: downloaded assets (content-addressed by sha256) and release catalogues.

Layout under the cache root::

    assets/{sha256}/{asset file name}          verified archives, immutable once published
    releases/{mirror key}/{release}/SHA256SUMS  release catalogues (a release tag's assets never change)
    runtimes/{key}/                             prepared runtimes (:mod:`hatch_pbs.prepare`), immutable once published
    staging/{random}/                           builds in progress (same file system: runtimes are hard-linked)
    bytecode/{cache tag}/{xx}/{key}.pyc         compiled bytecode by source content (:mod:`hatch_pbs.bytecode_worker`)

Entries are published atomically: written to a ``.part`` file in the same directory, flushed to the disk
(``fsync``) and renamed into place only when complete and verified, so a crashed, killed or interrupted build (or a
full disk) never leaves something that looks like an entry. A ``.part`` file left by a killed build is removed by
the next writer of that entry.
Writers of one entry are serialised by a file lock (``filelock``), so concurrent builds sharing a cache download
each asset once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from hatch_pbs import interrupts

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
        return self.root / "releases" / mirror_key / release / "SHA256SUMS"

    @property
    def bytecode_dir(self) -> Path:
        """Where compiled bytecode is kept for reuse (see :func:`hatch_pbs.install.compile_bytecode`)."""
        return self.root / "bytecode"

    def runtime_path(self, key: str) -> Path:
        """Where the prepared runtime with this key lives (it may not exist yet)."""
        return self.root / "runtimes" / key

    @contextmanager
    def publishing_directory(self, entry: Path) -> Iterator[Path]:
        """Like :meth:`publishing`, for a directory entry: yield an empty temporary directory next to ``entry``,
        renamed to ``entry`` when the block succeeds and removed when it raises. Call with the entry's
        :meth:`lock` held; stale temporary directories of the same entry are removed first."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        for stale in entry.parent.glob(f".{entry.name}.*.part"):
            shutil.rmtree(stale, ignore_errors=True)
        temporary = entry.parent / f".{entry.name}.{uuid.uuid4().hex[:12]}.part"
        temporary.mkdir()
        try:
            yield temporary
            os.replace(temporary, entry)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private, empty directory below ``staging/`` for one build, removed afterwards (see
        :func:`staging_directory`)."""
        with staging_directory(self.root / "staging") as directory:
            yield directory

    @contextmanager
    def lock(self, entry: Path) -> Iterator[None]:
        """Hold the lock of ``entry`` (a sibling ``.lock`` file) for the duration of the block.

        Raises:
            filelock.Timeout: another process held it for more than :data:`LOCK_TIMEOUT` seconds.
            BuildInterrupted: the build was interrupted while waiting for it.
        """
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(entry) + ".lock")
        interrupts.acquire(lock, LOCK_TIMEOUT)
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def publishing(self, entry: Path) -> Iterator[Path]:
        """Yield a temporary path next to ``entry``; rename it to ``entry`` when the block succeeds, delete it
        when the block raises. Call with the entry's :meth:`lock` held. Stale ``.part`` files of the same entry
        (left by a killed build) are removed first."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        for stale in entry.parent.glob(f".{entry.name}.*.part"):
            stale.unlink(missing_ok=True)
        temporary = entry.parent / f".{entry.name}.{uuid.uuid4().hex[:12]}.part"
        try:
            yield temporary
            with temporary.open("rb+") as written:  # its bytes reach the disk before its name does
                os.fsync(written.fileno())
            os.replace(temporary, entry)
        finally:
            temporary.unlink(missing_ok=True)


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
    for lock_file in root.glob("*.lock"):
        stale = FileLock(str(lock_file), timeout=0)
        try:
            with stale:
                shutil.rmtree(lock_file.with_suffix(""), ignore_errors=True)
                lock_file.unlink(missing_ok=True)
        except Timeout:  # a build in progress
            continue
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
