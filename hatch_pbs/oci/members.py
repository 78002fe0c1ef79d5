"""The members of a built artifact (a ``.tar.gz``, ``.tar.zst`` or ``.zip`` archive, or an artifact directory), read
back in archive order, for the image layers (:mod:`hatch_pbs.oci.layers`).

Names are relative to the artifact's top directory (``python/bin/python3.12``, ``app/demo/__init__.py``,
``bin/demo``); the top directory itself is not a member. Tar archives are read as a stream (one pass, no seeking),
so each member's content can only be read while the iteration is at it.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from hatch_pbs.artifact.archive import archive_format_of, normalized_mode, top_directory
from hatch_pbs.errors import ImageError

MemberKind = str  # "file", "dir", "symlink"


@dataclass(frozen=True)
class ArtifactMember:
    """One member of an artifact.

    Attributes:
        name: its path below the top directory, POSIX separators, no trailing ``/``.
        kind: ``"file"``, ``"dir"`` or ``"symlink"``.
        mode: its permission bits as the archive records them (``0o755``/``0o644``/``0o777``).
        mtime: its modification time, seconds since the Unix epoch.
        size: its size in bytes (``0`` but for files).
        link: a symbolic link's target (``""`` otherwise).
        open: returns a readable binary stream of a file's content (valid only during the iteration at it).
    """

    name: str
    kind: MemberKind
    mode: int
    mtime: int
    size: int
    link: str
    open: Callable[[], IO[bytes]]


def _no_content() -> IO[bytes]:
    return io.BytesIO(b"")


def artifact_members(artifact: Path) -> Iterator[ArtifactMember]:
    """Every member of ``artifact`` (an archive the pipeline wrote, or an artifact directory), in archive order.

    Raises:
        ImageError: the archive is not one of the artifact formats, or its members are not below its top
            directory; OSError, tarfile.TarError, zipfile.BadZipFile: it cannot be read.
    """
    if artifact.is_dir():
        yield from _directory_members(artifact)
        return
    found = archive_format_of(artifact.name)
    if found is None:
        raise ImageError(f"{artifact} is not an artifact archive (.tar.gz, .tar.zst or .zip)")
    top = top_directory(artifact.name)
    if found == "zip":
        yield from _zip_members(artifact, top)
    else:
        yield from _tar_members(artifact, top, zstd=found == "tar.zst")


def _relative(name: str, top: str, artifact: Path) -> str | None:
    """``name`` below ``top`` (``None`` for the top directory itself); ImageError for a member outside it."""
    name = name.rstrip("/")
    if name == top:
        return None
    if not name.startswith(top + "/"):
        raise ImageError(f"{artifact}: member {name!r} is not below the top directory {top}/")
    return name[len(top) + 1:]


def _tar_members(artifact: Path, top: str, *, zstd: bool) -> Iterator[ArtifactMember]:
    with artifact.open("rb") as raw:
        if zstd:
            import zstandard

            stream: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        else:
            stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        with stream, tarfile.open(fileobj=stream, mode="r|") as archive:
            for entry in archive:
                name = _relative(entry.name, top, artifact)
                if name is None:
                    continue
                kind = "dir" if entry.isdir() else "symlink" if entry.issym() else "file" if entry.isfile() else None
                if kind is None:
                    raise ImageError(f"{artifact}: member {entry.name!r} is neither a file, a directory nor a "
                                     f"symbolic link")
                opener = (lambda entry=entry: archive.extractfile(entry)) if kind == "file" else _no_content
                yield ArtifactMember(name, kind, entry.mode & 0o7777, int(entry.mtime),
                                     entry.size if kind == "file" else 0, entry.linkname, opener)  # type: ignore[arg-type]


def _zip_members(artifact: Path, top: str) -> Iterator[ArtifactMember]:
    with zipfile.ZipFile(artifact) as archive:
        for entry in archive.infolist():
            name = _relative(entry.filename, top, artifact)
            if name is None:
                continue
            mode = entry.external_attr >> 16
            kind = "dir" if entry.is_dir() else "symlink" if stat.S_ISLNK(mode) else "file"
            mtime = int(zipfile_time(entry))
            if kind == "symlink":
                yield ArtifactMember(name, kind, 0o777, mtime, 0, archive.read(entry).decode(), _no_content)
            else:
                yield ArtifactMember(name, kind, normalized_mode(mode or 0o644), mtime,
                                     entry.file_size if kind == "file" else 0, "",
                                     functools.partial(archive.open, entry) if kind == "file" else _no_content)


def zipfile_time(entry: zipfile.ZipInfo) -> float:
    """A zip entry's time (recorded as UTC by :func:`~hatch_pbs.artifact.archive.zip_member`), in seconds."""
    import calendar

    return calendar.timegm((*entry.date_time, 0, 0, 0))


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    """A function opening ``path`` for reading bytes."""
    return lambda: path.open("rb")


def _directory_members(root: Path) -> Iterator[ArtifactMember]:
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(directory)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            relative = path.relative_to(root).as_posix()
            status = path.lstat()
            if stat.S_ISLNK(status.st_mode):
                yield ArtifactMember(relative, "symlink", 0o777, int(status.st_mtime), 0, os.readlink(path),
                                     _no_content)
            elif stat.S_ISDIR(status.st_mode):
                yield ArtifactMember(relative, "dir", 0o755, int(status.st_mtime), 0, "", _no_content)
            else:
                yield ArtifactMember(relative, "file", normalized_mode(status.st_mode), int(status.st_mtime),
                                     status.st_size, "", _opener(path))


__all__ = ["ArtifactMember", "artifact_members"]
