"""Safe extraction of python-build-standalone archives into a runtime directory.

Archive layout (docs/pbs-facts.md, "Archive layout"): every member is under ``python/``; install-only archives hold the
installation directly below it, ``full`` archives below ``python/install/`` with ``python/PYTHON.json`` describing
the build. Extraction keeps file modes (setuid/setgid/sticky bits dropped), modification times (CPython's
timestamp-based ``.pyc`` files stay valid) and symbolic links, and refuses, before writing anything for it, any
member that could write outside the destination: absolute names, ``..`` components, symbolic or hard links whose
target leaves the destination, device files and FIFOs, members whose parent directory is a link, and members that
would replace a directory with a link or a file. Decompression bombs are stopped: once the uncompressed archive
(headers, padding and member data, counted before a member is written) exceeds ``max_unpacked_size`` bytes (option
``max-unpacked-size``), or it holds more than :data:`MAX_MEMBERS` members, extraction stops. On any failure the
destination is removed, so no partial runtime remains.
"""

from __future__ import annotations

import gzip
import json
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import zstandard

from hatch_pbs import interrupts
from hatch_pbs.errors import ExtractError, os_error_cause

_MODE_MASK = 0o777  # permission bits kept; setuid, setgid and sticky are dropped
#: Most members an archive may have: PBS runtimes have a few thousand (full archives included); a flood of empty
#: members is a bomb of inodes that the size ceiling alone would let through (512 header bytes each).
MAX_MEMBERS = 250_000
#: Largest PAX or GNU long-name header: tarfile reads such a header whole into memory before it yields the member
#: it describes, so one declaring gigabytes would exhaust memory before any size check could run.
MAX_HEADER_SIZE = 1 << 20

#: Default of option ``max-unpacked-size`` (bytes): PBS runtimes unpack to well under 1 GiB (full archives included).
DEFAULT_MAX_UNPACKED_SIZE = 4 << 30


class _GuardedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses oversized extended headers before tarfile reads them."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        extended = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                    tarfile.SOLARIS_XHDTYPE)
        if self.type in extended and self.size > MAX_HEADER_SIZE:
            raise _OversizedHeader(self.size)
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _OversizedHeader(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


@dataclass
class ExtractedRuntime:
    """What extraction produced.

    Attributes:
        root: the runtime directory (contents of ``python/`` or ``python/install/``).
        build_metadata: the parsed ``PYTHON.json`` of a ``full`` archive, ``{}`` otherwise.
        files: number of regular files written.
    """

    root: Path
    build_metadata: dict[str, Any] = field(default_factory=dict)
    files: int = 0


def extract_runtime(archive: Path, destination: Path, *, full: bool,
                    max_unpacked_size: int = DEFAULT_MAX_UNPACKED_SIZE) -> ExtractedRuntime:
    """Extract the runtime of ``archive`` (``.tar.gz`` or ``.tar.zst``) into ``destination``.

    ``destination`` must not exist or be empty; on failure it is removed again, so no partial runtime remains.

    Args:
        archive: the verified asset.
        destination: directory that becomes the runtime root.
        full: the archive is a ``full`` flavor (runtime under ``python/install/``, metadata in PYTHON.json).
        max_unpacked_size: bytes the uncompressed archive may have (option ``max-unpacked-size``).

    Raises:
        ExtractError: a member is unsafe, the archive is corrupt or too large once uncompressed, it holds no
            runtime, or the destination cannot be written (a full disk).
        BuildInterrupted: the build was interrupted (nothing is left in ``destination`` either).
    """
    prefix = "python/install/" if full else "python/"
    destination.mkdir(parents=True, exist_ok=True)
    if any(destination.iterdir()):
        raise ExtractError(f"refusing to extract into non-empty directory {destination}")
    result = ExtractedRuntime(root=destination)
    try:
        with _open_tar(archive, max_unpacked_size) as tar:
            _extract_members(tar, archive, destination, prefix, result, max_unpacked_size)
    except (tarfile.TarError, zstandard.ZstdError, zlib.error, EOFError, OSError) as error:
        shutil.rmtree(destination, ignore_errors=True)
        if isinstance(error, OSError) and error.errno is not None:  # the file system, not the archive's bytes
            where = "" if error.filename == str(archive) else f" into {destination}"
            raise ExtractError(f"cannot extract {archive.name}{where}: {os_error_cause(error, destination)}") \
                from None
        raise ExtractError(f"{archive.name} is not a readable archive: {error}") from None
    except _OversizedHeader as error:
        shutil.rmtree(destination, ignore_errors=True)
        raise ExtractError(f"refusing {archive.name}: it has an extended (PAX or GNU long name) header of "
                           f"{error.size} bytes; at most {MAX_HEADER_SIZE} are accepted") from None
    except BaseException:  # ExtractError, and an interrupted build (KeyboardInterrupt): no partial runtime
        shutil.rmtree(destination, ignore_errors=True)
        raise
    if result.files == 0:
        shutil.rmtree(destination, ignore_errors=True)
        raise ExtractError(f"{archive.name} holds no runtime: no member under {prefix}")
    return result


def _too_large(archive: Path, limit: int) -> ExtractError:
    return ExtractError(f"refusing {archive.name}: it unpacks to more than {limit} bytes ({limit / (1 << 20):.0f} "
                        f"MiB), the ceiling set by the option `max-unpacked-size` of build hook `pbs` (a "
                        f"decompression bomb?); raise the option if the archive is genuine")


@contextmanager
def _open_tar(archive: Path, limit: int) -> Iterator[tarfile.TarFile]:
    with archive.open("rb") as raw:
        if archive.name.endswith(".zst"):
            stream: IO[bytes] | gzip.GzipFile = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        elif raw.read(2) == b"\x1f\x8b":
            raw.seek(0)
            # gzip.GzipFile, not tarfile's own gzip reader: only it checks the CRC-32 and size trailers.
            stream = gzip.GzipFile(fileobj=raw, mode="rb")
        else:
            raw.seek(0)
            with tarfile.open(fileobj=raw, mode="r|*", tarinfo=_GuardedTarInfo) as tar:
                yield tar
            return
        with stream, tarfile.open(fileobj=stream, mode="r|", tarinfo=_GuardedTarInfo) as tar:
            yield tar
            # tarfile stops at the end-of-archive blocks; the compressed stream is verified only at its end.
            # What follows the tar data is uncompressed too, and counts against the ceiling.
            unpacked = tar.offset
            while block := stream.read(1 << 20):
                unpacked += len(block)
                if unpacked > limit:
                    raise _too_large(archive, limit)


def _extract_members(tar: tarfile.TarFile, archive: Path, destination: Path, prefix: str,
                     result: ExtractedRuntime, limit: int) -> None:
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    links: list[Path] = []
    for count, member in enumerate(tar, 1):
        interrupts.check()
        # tar.offset is where the member's data ends in the uncompressed stream: checked before it is written.
        if tar.offset > limit:
            raise _too_large(archive, limit)
        if count > MAX_MEMBERS:
            raise ExtractError(f"refusing {archive.name}: it has more than {MAX_MEMBERS} members (a runtime has a "
                               f"few thousand)")
        name = _checked_name(member, archive)
        if prefix == "python/install/" and name == "python/PYTHON.json" and member.isfile():
            result.build_metadata = _read_json(tar, member, archive)
            continue
        if name + "/" == prefix or not name.startswith(prefix):
            continue
        relative = name[len(prefix):]
        target = destination / relative
        _check_parent(destination, target, member, archive)
        if member.isdir():
            if target.is_symlink():
                raise ExtractError(f"refusing {archive.name}: directory {member.name} would replace a symbolic link")
            if target.exists() and not target.is_dir():
                raise ExtractError(f"refusing {archive.name}: directory {member.name} would replace a file")
            target.mkdir(parents=True, exist_ok=True)
            directories.append((target, member))
        elif member.isfile():
            _write_file(tar, member, target, archive)
            result.files += 1
        elif member.issym():
            _check_symlink(member, relative, archive)
            _replace(target, member, archive, "a symbolic link")
            os.symlink(member.linkname, target)
            if os.utime in os.supports_follow_symlinks:  # the link's own time, as for files (reproducible times)
                os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
            links.append(target)
        elif member.islnk():
            _write_hardlink(member, target, destination, prefix, archive)
            result.files += 1
        else:
            raise ExtractError(f"refusing {archive.name}: member {member.name} is a device file or FIFO")
    # A link can pass the lexical check of _check_symlink yet leave the destination through another link
    # (`x -> d/sub/..` with `d/sub -> ..`): check where every link really leads once all of them exist.
    for link in links:
        if not _resolves_inside(link, destination):
            raise ExtractError(f"refusing {archive.name}: symbolic link {link.relative_to(destination)} -> "
                               f"{os.readlink(link)} leads outside the runtime through another link")
    for path, member in reversed(directories):
        os.chmod(path, (member.mode & _MODE_MASK) | stat.S_IRWXU)
        os.utime(path, (member.mtime, member.mtime))


def _write_hardlink(member: tarfile.TarInfo, target: Path, destination: Path, prefix: str, archive: Path) -> None:
    source_name = _checked_link_name(member, archive)
    if not source_name.startswith(prefix):
        raise ExtractError(f"refusing {archive.name}: hard link {member.name} points outside the runtime "
                           f"({member.linkname})")
    source = destination / source_name[len(prefix):]
    if not _resolves_inside(source, destination):
        raise ExtractError(f"refusing {archive.name}: hard link {member.name} points outside the runtime "
                           f"through a symbolic link ({member.linkname})")
    if not source.is_file() or source.is_symlink():
        raise ExtractError(f"refusing {archive.name}: hard link {member.name} points to a member that is "
                           f"not an extracted regular file ({member.linkname})")
    _replace(target, member, archive, "a hard link")
    os.link(source, target)


def _checked_name(member: tarfile.TarInfo, archive: Path) -> str:
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ExtractError(f"refusing {archive.name}: member {name!r} has an absolute path")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise ExtractError(f"refusing {archive.name}: member {name!r} contains '..'")
    return "/".join(part for part in parts if part not in ("", "."))


def _checked_link_name(member: tarfile.TarInfo, archive: Path) -> str:
    link = member.linkname
    if link.startswith("/") or ".." in link.split("/"):
        raise ExtractError(f"refusing {archive.name}: hard link {member.name} points outside the archive ({link})")
    return "/".join(part for part in link.split("/") if part not in ("", "."))


def _check_symlink(member: tarfile.TarInfo, relative: str, archive: Path) -> None:
    link = member.linkname
    if posixpath.isabs(link):
        raise ExtractError(f"refusing {archive.name}: symbolic link {member.name} -> {link} is absolute")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(relative), link))
    if resolved == ".." or resolved.startswith("../"):
        raise ExtractError(f"refusing {archive.name}: symbolic link {member.name} -> {link} points outside the "
                           f"runtime")


def _resolves_inside(path: Path, destination: Path) -> bool:
    """Whether ``path``, with every symbolic link on the way resolved, is ``destination`` or below it."""
    resolved, root = os.path.realpath(path), os.path.realpath(destination)
    return resolved == root or resolved.startswith(root.rstrip(os.sep) + os.sep)


def _check_parent(destination: Path, target: Path, member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse writing through a link: every existing ancestor of ``target`` below ``destination`` must be a real
    directory."""
    parent = target.parent
    while parent != destination:
        if parent.is_symlink():
            raise ExtractError(f"refusing {archive.name}: member {member.name} would be written through the "
                               f"symbolic link {parent.relative_to(destination)}")
        parent = parent.parent
    target.parent.mkdir(parents=True, exist_ok=True)


def _replace(target: Path, member: tarfile.TarInfo, archive: Path, kind: str) -> None:
    """Make room for a later member of the same name; a directory is never replaced (its contents would go)."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        raise ExtractError(f"refusing {archive.name}: member {member.name} would replace a directory with {kind}")


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, archive: Path) -> None:
    source = tar.extractfile(member)
    assert source is not None  # regular files always have a body
    _replace(target, member, archive, "a file")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(target, flags, 0o600)
    with os.fdopen(descriptor, "wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    os.chmod(target, member.mode & _MODE_MASK)
    os.utime(target, (member.mtime, member.mtime))


def _read_json(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path) -> dict[str, Any]:
    source = tar.extractfile(member)
    assert source is not None
    try:
        document = json.loads(source.read(4 << 20))
    except ValueError:
        raise ExtractError(f"{archive.name}: python/PYTHON.json is not valid JSON") from None
    if not isinstance(document, dict):
        raise ExtractError(f"{archive.name}: python/PYTHON.json is not a JSON object")
    return document
