"""Archive names and reproducible archive members, shared by the artifact archives (:mod:`hatch_pbs.artifact.pack`),
the runtime wheels (:mod:`hatch_pbs.forms.wheel`), the pipeline and the Hatch hook.

Names: an artifact archive is ``<top directory><suffix>``, the suffix being one of :data:`ARCHIVE_SUFFIXES`
(option ``archive-format``: ``tar.gz``, ``tar.zst``, ``zip``; ``dir`` has none), and the archive's members are
below its top directory.

Members are reproducible (https://reproducible-builds.org/docs/archives/): modes normalized (:func:`normalized_mode`)
and zip entry times clamped to what a zip entry can record (MS-DOS dates, 1980 to 2107, UTC here).
"""

from __future__ import annotations

import stat
import time
import zipfile
from pathlib import Path
from typing import Literal

#: An artifact format (option ``archive-format``): an archive, or ``dir``, the tree as a directory.
ArchiveFormat = Literal["tar.gz", "tar.zst", "zip", "dir"]
#: The file name suffix of each archive format (``dir`` is a directory, without one).
ARCHIVE_SUFFIXES: dict[ArchiveFormat, str] = {"tar.gz": ".tar.gz", "tar.zst": ".tar.zst", "zip": ".zip"}

#: deflate level of zip members (and of gzip): 6 is zlib's own default, the usual size/time balance.
DEFLATE_LEVEL = 6
#: 1980-01-01T00:00:00Z, the earliest time a zip entry can record (seconds since the Unix epoch).
ZIP_EPOCH = 315532800
#: 2107-12-31T23:59:58Z, the latest (MS-DOS dates count years from 1980 in 7 bits, seconds in steps of 2).
ZIP_LAST = 4354819198


def archive_suffix(archive_format: ArchiveFormat) -> str:
    """The file name suffix of ``archive_format``: ``".tar.gz"``, ``".tar.zst"``, ``".zip"``, or ``""`` for
    ``"dir"`` (and any format without one)."""
    return ARCHIVE_SUFFIXES.get(archive_format, "")


def archive_format_of(name: str) -> ArchiveFormat | None:
    """The archive format (``"tar.gz"``, ``"tar.zst"``, ``"zip"``) the file name ``name`` ends with, or ``None``."""
    return next((found for found, suffix in ARCHIVE_SUFFIXES.items() if name.endswith(suffix)), None)


def top_directory(archive_name: str) -> str:
    """The top directory of an artifact archive: its file name without its suffix (:data:`ARCHIVE_SUFFIXES`),
    e.g. ``"demo-1.0-x86_64-unknown-linux-gnu"`` for ``"demo-1.0-x86_64-unknown-linux-gnu.tar.gz"``; a name without
    one is returned as it is."""
    found = archive_format_of(archive_name)
    return archive_name if found is None else archive_name.removesuffix(ARCHIVE_SUFFIXES[found])


def normalized_mode(mode: int) -> int:
    """The permission bits an archive records for a member of mode ``mode`` (``st_mode``): ``0o777`` for symbolic
    links, ``0o755`` for directories and executables (any execute bit), ``0o644`` for other files."""
    if stat.S_ISLNK(mode):
        return 0o777
    if stat.S_ISDIR(mode) or mode & 0o111:
        return 0o755
    return 0o644


def open_zip(output: Path) -> zipfile.ZipFile:
    """A new zip archive at ``output`` whose members are deflated at :data:`DEFLATE_LEVEL` by default."""
    return zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=DEFLATE_LEVEL)


def zip_member(name: str, mtime: int, mode: int) -> zipfile.ZipInfo:
    """The entry of one zip member, written the same way whatever the build machine.

    Args:
        name: the member's path in the archive (POSIX separators, no trailing ``/``; added for directories).
        mtime: its modification time in seconds since the Unix epoch, clamped to [:data:`ZIP_EPOCH`,
            :data:`ZIP_LAST`] and recorded as UTC.
        mode: its ``st_mode``; the file type is kept and the permissions normalized (:func:`normalized_mode`),
            in the external attributes with ``create_system`` Unix (so ``unzip`` restores executability).
            Symbolic links follow the PKWARE/Info-ZIP convention: mode ``S_IFLNK``, stored (not deflated), the
            target as the entry's data (the caller writes it).
    """
    stamp = time.gmtime(min(max(mtime, ZIP_EPOCH), ZIP_LAST))[:6]
    recorded = stat.S_IFMT(mode) | normalized_mode(mode)
    if stat.S_ISDIR(mode):
        entry = zipfile.ZipInfo(name + "/", stamp)
        entry.external_attr = recorded << 16 | 0x10  # 0x10: MS-DOS directory flag
    else:
        entry = zipfile.ZipInfo(name, stamp)
        entry.external_attr = recorded << 16
        entry.compress_type = zipfile.ZIP_STORED if stat.S_ISLNK(mode) else zipfile.ZIP_DEFLATED
    entry.create_system = 3  # Unix: the external attributes hold a Unix mode
    return entry


__all__ = ["ARCHIVE_SUFFIXES", "DEFLATE_LEVEL", "ZIP_EPOCH", "ZIP_LAST", "archive_format_of", "archive_suffix",
           "normalized_mode", "open_zip", "top_directory", "zip_member"]
