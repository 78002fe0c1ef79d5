"""Packing a staged artifact tree into its release archive (``.tar.gz``; ``.zip`` for Windows targets), and the
``SHA256SUMS`` beside the archives.

Archives are written to a temporary file in the output directory and renamed into place only when complete, so
an interrupted build never leaves a file with the final name.

Archives are reproducible (https://reproducible-builds.org/docs/archives/): members in sorted path order, owner
and group 0 without names, modes normalized (``0755`` for directories and executables, ``0644`` for other files),
no timestamp in the gzip header, and member times from :class:`MemberTimes`: a file that already existed before
the build started keeps its (integral) time, which for a runtime is the time recorded in the release asset: the
runtime's timestamp-based ``.pyc`` files stay valid; everything the build wrote gets ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import stat
import subprocess
import tarfile
import time
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from hatch_pbs.cache import sha256_of
from hatch_pbs.errors import PackError

#: gzip level: 6 is gzip's own default, the usual size/time balance (level 9 is ~6x slower for ~2 % less).
GZIP_LEVEL = 6
CHECKSUMS_NAME = "SHA256SUMS"


#: The time used when neither ``SOURCE_DATE_EPOCH`` nor a git commit gives one: 1980-01-01T00:00:00Z, the earliest
#: time a zip archive can record.
FALLBACK_EPOCH = 315532800


def source_date_epoch(project_root: Path | None = None) -> int:
    """The reproducible build time, in seconds since the Unix epoch: ``SOURCE_DATE_EPOCH`` if set
    (reproducible-builds.org specification), else the time of the last commit when ``project_root`` is in a git
    work tree, else :data:`FALLBACK_EPOCH`.

    Raises:
        PackError: ``SOURCE_DATE_EPOCH`` is not a non-negative integer.
    """
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if value:
        if not value.isdigit():
            raise PackError(f"SOURCE_DATE_EPOCH must be a non-negative integer (seconds); got {value!r}")
        return int(value)
    if project_root is not None:
        try:
            commit = subprocess.run(["git", "-C", str(project_root), "log", "-1", "--format=%ct"],
                                    capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return FALLBACK_EPOCH
        if commit.returncode == 0 and commit.stdout.strip().isdigit():
            return int(commit.stdout.strip())
    return FALLBACK_EPOCH


class MemberTimes:
    """Member modification times of a reproducible archive.

    Args:
        build_started: when the build began (seconds); files modified since were written by the build.
        epoch: ``SOURCE_DATE_EPOCH`` for everything the build wrote.
    """

    def __init__(self, build_started: float, epoch: int) -> None:
        self.build_started = build_started
        self.epoch = epoch

    def __call__(self, mtime: float) -> int:
        return int(mtime) if mtime < self.build_started else self.epoch


def _kept_times(mtime: float) -> int:
    return int(mtime)


def _normalized_mode(mode: int) -> int:
    if stat.S_ISLNK(mode):
        return 0o777
    if stat.S_ISDIR(mode) or mode & 0o111:
        return 0o755
    return 0o644


def _normalizer(times: MemberTimes | None):  # noqa: ANN202 - a tarfile filter
    member_time = times or _kept_times

    def normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = member_time(info.mtime)
        info.mode = _normalized_mode(info.mode | {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK}.get(
            info.type, 0))
        return info

    return normalized


def _sorted_tree(root: Path) -> Iterator[Path]:
    """``root`` and everything below it in sorted path order (depth first, siblings sorted by name, so parents
    come before children); links not followed."""
    yield root
    if root.is_dir() and not root.is_symlink():
        for name in sorted(os.listdir(root)):
            yield from _sorted_tree(root / name)


@contextlib.contextmanager
def _atomic_output(destination: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``, renamed onto it when the block succeeds.

    Raises:
        PackError: writing failed (nothing is left at ``destination`` or the temporary path then).
    """
    temporary = destination.parent / f".{destination.name}.{uuid.uuid4().hex[:12]}.part"
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        os.replace(temporary, destination)
    except OSError as error:
        culprit = f" ({error.filename})" if error.filename else ""
        raise PackError(f"cannot write {destination}: {error.strerror or error}{culprit}") from None
    finally:
        with contextlib.suppress(OSError):  # e.g. the output "directory" is a file: nothing was created
            temporary.unlink(missing_ok=True)


def pack_tree(tree: Path, destination: Path, *, times: MemberTimes | None = None) -> int:
    """Write ``tree`` as ``destination``, a ``.tar.gz`` or ``.zip`` chosen by its name; the tree's directory name
    becomes the archive's top directory. ``times`` decides member times (default: every file keeps its own).

    Returns:
        The archive size in bytes.

    Raises:
        PackError: the archive could not be written (nothing is left at ``destination`` then).
    """
    with _atomic_output(destination) as temporary:
        if destination.name.endswith(".zip"):
            _write_zip(tree, temporary, times or _kept_times)
        else:
            _write_tar_gz(tree, temporary, times)
    return destination.stat().st_size


def pack_tar_gz(tree: Path, destination: Path) -> int:
    """:func:`pack_tree` for a ``.tar.gz`` destination."""
    return pack_tree(tree, destination)


def _write_tar_gz(tree: Path, output: Path, times: MemberTimes | None) -> None:
    normalized = _normalizer(times)
    with output.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL,
                                                 mtime=0) as compressed, \
            tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in _sorted_tree(tree):
            archive.add(path, arcname=path.relative_to(tree.parent).as_posix(), recursive=False, filter=normalized)


_ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can record
_ZIP_LAST = 4354819198  # 2107-12-31T23:59:58Z, the latest (MS-DOS dates count years from 1980 in 7 bits)


def _write_zip(tree: Path, output: Path, member_time: MemberTimes | type(_kept_times)) -> None:
    """Zip with Unix modes in the external attributes (so ``unzip`` restores executability) and symbolic links
    stored as links (the PKWARE/Info-ZIP convention: mode ``S_IFLNK``, the target as the entry's data)."""
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=GZIP_LEVEL) as archive:
        for path in _sorted_tree(tree):
            status = path.lstat()
            name = path.relative_to(tree.parent).as_posix()
            stamp = time.gmtime(min(max(member_time(status.st_mtime), _ZIP_EPOCH), _ZIP_LAST))[:6]
            mode = stat.S_IFMT(status.st_mode) | _normalized_mode(status.st_mode)
            if stat.S_ISDIR(status.st_mode):
                entry = zipfile.ZipInfo(name + "/", stamp)
                entry.create_system = 3
                entry.external_attr = mode << 16 | 0x10  # 0x10: MS-DOS directory flag
                archive.writestr(entry, b"")
                continue
            entry = zipfile.ZipInfo(name, stamp)
            entry.external_attr = mode << 16
            entry.create_system = 3  # Unix: the external attributes hold a Unix mode
            if stat.S_ISLNK(status.st_mode):
                archive.writestr(entry, os.readlink(path).encode(), compress_type=zipfile.ZIP_STORED)
            else:
                entry.compress_type = zipfile.ZIP_DEFLATED
                with path.open("rb") as source, archive.open(entry, "w") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)



def write_checksums(directory: Path, archives: Iterable[Path], *, known: Mapping[str, str] | None = None) -> Path:
    """Write ``directory/SHA256SUMS`` (``{sha256}  {file name}`` lines, sorted by name) for ``archives``.

    ``known`` maps file names to digests the caller already computed (the build hashes each archive once); other
    files are hashed here. Files listed by an earlier build that still exist in ``directory`` stay listed, hashed
    anew.

    Returns:
        The checksum file's path.
    """
    path = directory / CHECKSUMS_NAME
    names = {archive.name for archive in archives}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            name = line.partition("  ")[2]
            if name and "/" not in name and (directory / name).is_file():
                names.add(name)
    temporary = directory / f".{CHECKSUMS_NAME}.{uuid.uuid4().hex[:12]}.part"
    known = known or {}
    temporary.write_text("".join(f"{known.get(name) or sha256_of(directory / name)}  {name}\n"
                                 for name in sorted(names)), encoding="utf-8")
    os.replace(temporary, path)
    return path
