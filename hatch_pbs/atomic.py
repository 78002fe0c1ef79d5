"""Atomic publication of files and directories: the one place hatch-pbs writes something others may read.

Every file or directory that a reader can find (a cache entry, an artifact, an SBOM, ``SHA256SUMS``, a lock file, a
runtime file rewritten by the relocation) is written under a temporary name in the same directory,
``.<name>.<12 hex digits>.part``, flushed to the disk (``fsync``) and renamed over its final name only when the
block writing it succeeded; the directory is then flushed too, so the new name survives a power cut. A block that
raises (a full disk, a failed check, Ctrl-C) removes its temporary and leaves the final name as it was: whatever
is at a final name is complete.

While a temporary exists, its writer holds an exclusive ``flock`` on it (POSIX; on Windows an open file cannot be
removed, which protects it the same way). :func:`sweep_temporaries` removes only temporaries whose lock is free:
those of killed builds, never those of a build in progress; the publishing functions sweep the stale temporaries of
the name they write first.

This module uses the standard library only: :mod:`hatch_pbs.bytecode.worker`, which runs inside the bundled
runtime where hatch-pbs is not installed, loads it by path. It must keep running on every CPython that PBS ships
(3.8 and later).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: open files cannot be removed, see the module docstring
    fcntl = None  # type: ignore[assignment]

#: Suffix of every temporary; ``.<name>.<token>.part``.
TEMPORARY_SUFFIX = ".part"


def temporary_path(destination: Path) -> Path:
    """A fresh temporary name beside ``destination``: ``.<name>.<12 hex digits>.part`` (not created)."""
    return destination.parent / f".{destination.name}.{uuid.uuid4().hex[:12]}{TEMPORARY_SUFFIX}"


@contextlib.contextmanager
def publishing_file(destination: Path, *, mode: int | None = None, durable: bool = True) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``destination`` for the caller to write (by any means: ``open``,
    :mod:`tarfile`, LIEF); when the block succeeds it is flushed to the disk, given ``mode`` (permission bits, e.g.
    ``0o644``; ``None``: as created, umask applied) and renamed to ``destination``, replacing what was there.

    The caller must write the yielded path in place (open it for writing), not replace it with another file.
    ``durable=False`` skips the flushes: for entries that are checked whenever they are read (cached bytecode),
    where a power cut may cost a recompilation but never a wrong result, and thousands of ``fsync`` calls would
    cost seconds.

    Raises:
        OSError: the temporary cannot be created, flushed or renamed (the parent directory is created if missing);
            the temporary is removed and ``destination`` left as it was. Whatever the block raises is re-raised
            after the same clean-up.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(destination.parent, name=destination.name)
    temporary, descriptor = _create_locked(destination, directory=False)
    try:
        yield temporary
        if durable:  # the same inode the caller wrote: its bytes reach the disk before its name does
            os.fsync(descriptor)
        if mode is not None:
            os.chmod(temporary, mode)
        if fcntl is None:  # Windows cannot rename an open file
            os.close(descriptor)
            descriptor = -1
        os.replace(temporary, destination)
        if durable:
            fsync_directory(destination.parent)
    finally:
        if descriptor >= 0:
            os.close(descriptor)
        remove_path(temporary)


def write_file(destination: Path, content: bytes, *, mode: int = 0o644) -> None:
    """Publish ``content`` (bytes) as the file ``destination`` with ``mode``; see :func:`publishing_file`.

    Raises:
        OSError: as :func:`publishing_file` (a short write on a full disk is ``ENOSPC``, never a short file).
    """
    with publishing_file(destination, mode=mode) as temporary, open(temporary, "wb") as stream:
        stream.write(content)


def copy_file(source: Path, destination: Path, *, mode: int | None = 0o644, durable: bool = True) -> None:
    """Publish a copy of the file ``source`` as ``destination`` with ``mode``; see :func:`publishing_file`.

    Raises:
        OSError: ``source`` cannot be read, or as :func:`publishing_file`.
    """
    with publishing_file(destination, mode=mode, durable=durable) as temporary:
        shutil.copyfile(source, temporary)


@contextlib.contextmanager
def publishing_directory(destination: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a new, empty temporary directory beside ``destination`` for the caller to fill; when the block
    succeeds every file and directory in it is flushed to the disk and it is renamed to ``destination``.

    Args:
        replace: an existing directory at ``destination`` is replaced (moved aside under a temporary name, then
            removed; put back if the rename fails). Without it, ``destination`` must not exist (a cache entry is
            published once, under its lock).

    Raises:
        OSError: the temporary cannot be created, flushed or renamed; it is removed and ``destination`` left as
            it was. Whatever the block raises is re-raised after the same clean-up.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(destination.parent, name=destination.name)
    temporary, descriptor = _create_locked(destination, directory=True)
    previous = None
    try:
        yield temporary
        fsync_tree(temporary)
        if replace and (destination.is_dir() and not destination.is_symlink()):
            previous = temporary_path(destination)
            os.replace(destination, previous)
        elif replace and (destination.exists() or destination.is_symlink()):
            destination.unlink()
        try:
            os.replace(temporary, destination)
        except OSError:
            if previous is not None:
                os.replace(previous, destination)
                previous = None
            raise
        fsync_directory(destination.parent)
    finally:
        if descriptor >= 0:
            os.close(descriptor)
        remove_path(temporary)
        if previous is not None:
            remove_path(previous)


def withdraw(path: Path) -> None:
    """Remove the file or directory tree ``path`` if it exists, atomically for readers: it is renamed to a
    temporary name first (so nobody finds half of it under its name), then deleted.

    Raises:
        OSError: it cannot be renamed.
    """
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    doomed = temporary_path(path)
    os.replace(path, doomed)
    remove_path(doomed)


def sweep_temporaries(directory: Path, *, name: str | None = None) -> list:
    """Remove the temporaries (``.<name>.<token>.part``, files or directories) in ``directory`` whose writer is
    gone (:func:`abandoned_temporaries`). ``name``: only the temporaries of that final name; ``None``: all.

    Returns:
        The paths removed (a list of :class:`~pathlib.Path`); a missing or unreadable directory is empty.
    """
    removed = []
    for temporary in abandoned_temporaries(directory, name=name):
        remove_path(temporary)
        removed.append(temporary)
    return removed


def abandoned_temporaries(directory: Path, *, name: str | None = None) -> Iterator[Path]:
    """The temporaries in ``directory`` whose lock is free: their writer was killed (never a live writer's). Each is
    yielded with its lock held by this process until the next one is asked for, so the caller can measure and
    remove it (:func:`remove_path`) without racing anyone. ``name``: only the temporaries of that final name.

    A missing or unreadable directory has none. On Windows every temporary is yielded: removing one that is open
    fails there, and :func:`remove_path` ignores that.
    """
    pattern = f".{name}.*{TEMPORARY_SUFFIX}" if name is not None else f".*{TEMPORARY_SUFFIX}"
    try:
        candidates = sorted(Path(directory).glob(pattern))
    except OSError:
        return
    for candidate in candidates:
        if fcntl is None:
            yield candidate
            continue
        try:
            descriptor = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue  # gone already, or unreadable: leave it
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a build in progress holds it
            yield candidate
        finally:
            os.close(descriptor)


def fsync_directory(directory: Path) -> None:
    """Flush ``directory``'s entries (names just renamed into it) to the disk; a no-op where directories cannot
    be opened (Windows)."""
    if fcntl is None:
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:  # some file systems refuse fsync on a directory: nothing more can be done there
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def fsync_tree(root: Path) -> None:
    """Flush every regular file and directory below ``root`` (and ``root``) to the disk; links are not followed.

    On Linux this is one ``sync()`` (which waits for the writes there, unlike on some other systems): for a
    prepared runtime of about 5,000 files it took 1.0-1.5 s where one ``fsync`` per file took 6.5-10 s (measured on
    this project's 2-core CI machine). Elsewhere each file and directory is flushed.
    """
    if sys.platform.startswith("linux"):
        os.sync()
        return
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                descriptor = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        fsync_directory(Path(directory))


def _create_locked(destination: Path, *, directory: bool) -> tuple:
    """Create a temporary (a file or a directory) beside ``destination`` and lock it; returns ``(path, open
    descriptor)`` (the descriptor is -1 for a directory on Windows). A sweeper that saw the new temporary before it
    was locked may have removed it: then another is made."""
    while True:
        temporary = temporary_path(destination)
        if directory:
            temporary.mkdir()
            if fcntl is None:
                return temporary, -1
            descriptor = os.open(temporary, os.O_RDONLY)
        else:
            descriptor = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        if fcntl is None:
            return temporary, descriptor
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        if os.fstat(descriptor).st_nlink > 0:
            return temporary, descriptor
        os.close(descriptor)


def remove_path(path: Path) -> None:
    """Remove the file or directory tree ``path`` if it exists; errors are ignored (the next sweep retries)."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


__all__ = ["TEMPORARY_SUFFIX", "abandoned_temporaries", "copy_file", "fsync_directory", "fsync_tree",
           "publishing_directory", "publishing_file", "remove_path", "sweep_temporaries", "temporary_path", "withdraw",
           "write_file"]
