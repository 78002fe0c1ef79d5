"""The one error family of hatch-pbs.

Every failure a user can cause or fix (bad configuration, a release without the requested asset, a download that
fails verification, a hostile archive, an installer error) is raised as a subclass of :class:`HatchPbsError`.
Its message is complete on its own: the CLI prints it as a single ``error:`` line and the build hook shows it
without a traceback. An :class:`OSError` of the file system (a full disk, a read-only directory) is shown as one
line too, its cause worded by :func:`os_error_cause`, which names a full file system by its mount point. Anything
else escaping the pipeline is a bug in hatch-pbs.
"""

from __future__ import annotations

import errno
import os

#: errno values that mean "the file system being written has no room left": ENOSPC (no free blocks or inodes) and
#: EDQUOT (the user's quota on it is used up; errno(3)).
FILE_SYSTEM_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class HatchPbsError(Exception):
    """Base class of every error hatch-pbs reports to its user."""


class ConfigError(HatchPbsError):
    """The ``[tool.hatch.build.hooks.pbs]`` table (or a CLI option / environment override) is invalid.

    ``problems`` holds one message per invalid option; ``str()`` joins them, one per line.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class AssetNameError(HatchPbsError):
    """A file name does not follow the python-build-standalone asset naming scheme."""


class ResolveError(HatchPbsError):
    """The release has no asset for the requested python version, target triple and flavor,
    or its catalogue (``SHA256SUMS`` / ``latest-release.json``) is missing or malformed."""


class DownloadError(HatchPbsError):
    """A request failed (HTTP status, connection, offline mode) after the allowed retries."""


class ChecksumError(DownloadError):
    """Downloaded bytes do not match the sha256 listed in the release's ``SHA256SUMS``."""


class OfflineError(DownloadError):
    """Offline mode (``HATCH_PBS_OFFLINE=1``) forbids the request and the cache does not have the file."""


class ExtractError(HatchPbsError):
    """An archive member is unsafe (escapes the destination, device file, ...) or the archive is corrupt."""


class RelocateError(HatchPbsError):
    """A binary or script of the runtime could not be made relocatable."""


class InstallError(HatchPbsError):
    """Building the project's wheel or installing it and its dependencies into the artifact failed."""


class PackError(HatchPbsError):
    """Writing the release archive or its checksum file failed."""


class AuditError(HatchPbsError):
    """The assembled artifact contains binaries that cannot run on its target (wrong architecture or format,
    extension modules a static runtime cannot load)."""


class SigningError(RelocateError):
    """A Mach-O file could not be given an ad-hoc code signature (universal or 32-bit file, no room for the
    signature, malformed load commands)."""


class LockError(HatchPbsError):
    """The lock file (``pbs.lock``) is malformed, does not lock a configured target triple, or differs from what
    the release's catalogue or the configuration gives."""


class DamagedCacheError(HatchPbsError):
    """A derived cache entry (a prepared runtime, a compressed runtime part, cached bytecode) does not hold what its
    record says it must (a file missing, of another size, or with other bytes). The build discards the entry and
    makes it again; ``hatch-pbs cache verify`` lists such entries and ``hatch-pbs cache clean`` removes them."""


class RegistryError(HatchPbsError):
    """A container registry refused or failed a request (authentication, a missing image or platform, a digest
    that does not match), or an image reference is malformed."""


class ImageError(HatchPbsError):
    """A container image cannot be built or read: a base image without a needed platform, an OCI layout archive
    that is malformed, a layer that does not match its digest."""


def os_error_cause(error: OSError, writing: str | os.PathLike[str] | None = None) -> str:
    """The cause of a failed file-system operation, for the end of a one-line message
    (``f"cannot write {path}: {os_error_cause(error, path)}"``).

    A full file system (:data:`FILE_SYSTEM_FULL`) is named by its mount point (:func:`mount_point`) of the path
    being written: the error's second file name (the destination of a copy, link or rename, as :mod:`shutil` and
    :func:`os.replace` set it), else its file name, else ``writing`` (a failed ``write()`` names no file), e.g.
    ``"No space left on device: the file system mounted at /tmp/x is full (writing /tmp/x/cache/SHA256SUMS)"``.
    Any other error gives its ``strerror`` followed by the file it names, unless that is ``writing`` (which the
    caller's message names already): ``"Permission denied (/a/b)"``.

    Args:
        error: the error raised by :mod:`os`, :mod:`shutil` or a file object.
        writing: the path the failed operation was writing, or ``None`` when the caller does not know it.

    Returns:
        One line of text, without a trailing period.
    """
    named = error.filename2 or error.filename
    if error.errno in FILE_SYSTEM_FULL:
        target = named if named is not None else writing
        if target is None:
            return error.strerror or str(error)
        target = _path_text(target)
        mount = mount_point(target)
        if error.errno == errno.ENOSPC:
            return f"{error.strerror}: the file system mounted at {mount} is full (writing {target})"
        return f"{error.strerror}: the quota on the file system mounted at {mount} is used up (writing {target})"
    if error.strerror is None:  # raised with a message only, e.g. shutil.Error or OSError("...")
        return str(error)
    culprit = error.filename if error.filename is not None else error.filename2
    if culprit is None or (writing is not None and _path_text(culprit) == _path_text(writing)):
        return error.strerror
    return f"{error.strerror} ({_path_text(culprit)})"


def mount_point(path: str | os.PathLike[str]) -> str:
    """The mount point of the file system that holds ``path`` (which need not exist yet): the nearest of the
    path's (symbolic-link-resolved) ancestors, itself included, for which :func:`os.path.ismount` is true."""
    current = os.path.realpath(os.fspath(path))
    while not os.path.ismount(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def _path_text(path: object) -> str:
    """A file name as an :class:`OSError` holds it (text, bytes, a path object or a file descriptor) as text."""
    return os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
