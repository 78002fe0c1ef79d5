"""Packing a staged artifact tree into its release archive (``.tar.gz``, ``.tar.zst``, ``.zip``, or a plain
directory), and the ``SHA256SUMS`` beside the archives.

Archives are written to a temporary file in the output directory and renamed into place only when complete, so
an interrupted build never leaves a file with the final name. Every file and every 1 MiB block packed is a check
point of an interrupted build (:mod:`hatch_pbs.interrupts`).

Archives are reproducible (https://reproducible-builds.org/docs/archives/): members in sorted path order, owner
and group 0 without names, modes normalized (``0755`` for directories and executables, ``0644`` for other files),
no timestamp in the gzip header, and member times from :class:`MemberTimes`: a file that already existed before
the build started keeps its (integral) time, which for a runtime is the time recorded in the release asset: the
runtime's timestamp-based ``.pyc`` files stay valid; everything the build wrote gets ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import stat
import subprocess
import tarfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from hatch_pbs import interrupts
from hatch_pbs.cache import sha256_of, staging_directory
from hatch_pbs.errors import PackError
from hatch_pbs.sizes import measure

#: gzip level: 6 is gzip's own default, the usual size/time balance (level 9 is ~6x slower for ~2 % less).
GZIP_LEVEL = 6
#: zstd level (see benchmarks/): compresses better than gzip -6 and several times faster, on every core.
ZSTD_LEVEL = 10
#: zstd worker threads: one per core (the output does not depend on the number, as long as it is at least one).
ZSTD_THREADS = max(1, os.cpu_count() or 1)
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


def pack_tree(tree: Path, destination: Path, *, times: MemberTimes | None = None, reuse: Path | None = None) -> int:
    """Write ``tree`` as ``destination``, a ``.tar.gz``, ``.tar.zst`` or ``.zip`` chosen by its name; the tree's
    directory name becomes the archive's top directory. ``times`` decides member times of everything but the
    runtime (``python/``, whose members keep their own times; default: every file keeps its own).

    ``reuse`` is a directory where the compressed ``python/`` part of a tar archive is kept and found again by
    later builds (the cache entry of the prepared runtime it was copied from): the caller guarantees that one
    ``reuse`` directory always goes with the same ``python/`` content. The archive's bytes do not depend on
    whether the part was reused.

    Returns:
        The archive size in bytes.

    Raises:
        PackError: the archive could not be written (nothing is left at ``destination`` then).
        BuildInterrupted: the build was interrupted (nothing is left at ``destination`` either).
    """
    with _atomic_output(destination) as temporary:
        if destination.name.endswith(".zip"):
            _write_zip(tree, temporary, times or _kept_times)
        elif destination.name.endswith(".tar.zst"):
            _write_tar_zst(tree, temporary, times, reuse)
        else:
            _write_tar_gz(tree, temporary, times, reuse)
    return destination.stat().st_size


def pack_directory(tree: Path, destination: Path) -> int:
    """Copy ``tree`` to the directory ``destination`` (``archive-format = "dir"``), replacing an earlier one.

    The copy is made of real files (never hard links to the build's cache, which a user editing the output would
    change) in a temporary directory beside ``destination``, renamed into place when complete. Modes are normalized
    as in the archives (``0755``/``0644``, no setuid/setgid/sticky bit, nothing group- or world-writable).

    Returns:
        The sum of the sizes of the files copied, in bytes.

    Raises:
        PackError: the copy could not be made (nothing is left at ``destination`` or the temporary path then; an
            earlier directory at ``destination`` is kept).
    """
    temporary = destination.parent / f".{destination.name}.{uuid.uuid4().hex[:12]}.part"
    previous = destination.parent / f".{destination.name}.{uuid.uuid4().hex[:12]}.old"
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tree, temporary, symlinks=True, copy_function=_interruptible_copy)
        _normalize_modes(temporary)
        if destination.is_dir() and not destination.is_symlink():
            os.replace(destination, previous)
        elif destination.exists() or destination.is_symlink():
            destination.unlink()
        os.replace(temporary, destination)
    except (OSError, shutil.Error) as error:
        if previous.exists() and not destination.exists():
            os.replace(previous, destination)
        raise PackError(f"cannot write {destination}: {error}") from None
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
    return measure(destination)[1]


def _interruptible_copy(source: str, destination: str) -> object:
    """:func:`shutil.copy2` after a check point of an interrupted build."""
    interrupts.check()
    return shutil.copy2(source, destination)


def _normalize_modes(root: Path) -> None:
    """Give ``root`` and everything below it the modes archives record (:func:`_normalized_mode`): ``0755`` for
    directories and executables, ``0644`` for other files; no setuid, setgid or sticky bit, nothing group- or
    world-writable, whatever the build's umask or the source files' modes. Symbolic links are left alone."""
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            path = Path(directory, name)
            status = path.lstat()
            if not stat.S_ISLNK(status.st_mode):
                os.chmod(path, _normalized_mode(status.st_mode))


def pack_tar_gz(tree: Path, destination: Path) -> int:
    """:func:`pack_tree` for a ``.tar.gz`` destination."""
    return pack_tree(tree, destination)


def _write_tar_gz(tree: Path, output: Path, times: MemberTimes | None, reuse: Path | None) -> None:
    def compress(data: Iterable[bytes], sink: BinaryIO) -> None:
        with gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=GZIP_LEVEL, mtime=0) as member:
            for block in data:
                member.write(block)

    with output.open("wb") as raw:
        _write_tar(tree, raw, times, compress, reuse, f"gzip-{GZIP_LEVEL}")


def _write_tar_zst(tree: Path, output: Path, times: MemberTimes | None, reuse: Path | None) -> None:
    import zstandard

    def compress(data: Iterable[bytes], sink: BinaryIO) -> None:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True)
        with compressor.stream_writer(sink, closefd=False) as frame:
            for block in data:
                frame.write(block)

    with output.open("wb") as raw:
        _write_tar(tree, raw, times, compress, reuse, f"zstd-{ZSTD_LEVEL}")


#: The part of an artifact tree whose compressed members may be reused (:func:`pack_tree`'s ``reuse``).
REUSABLE_SECTION = "python"
#: Bumped whenever the bytes of a compressed section change, so older reusable sections are not used.
SECTION_VERSION = 1


def _write_tar(tree: Path, raw: BinaryIO, times: MemberTimes | None,
               compress: Callable[[Iterable[bytes], BinaryIO], None], reuse: Path | None, codec: str) -> None:
    """A POSIX (PAX) tar stream of ``tree`` in ``raw`` as concatenated compressed members (gzip members or zstd
    frames, which decompress as one stream): the members before ``python/``, ``python/`` itself, the members
    after it, and the end-of-archive blocks. Members under ``python/`` keep their own times (a prepared runtime's
    times do not depend on the build), so with ``reuse`` their compressed bytes are read from, or saved to, a file
    there instead of compressed again."""
    normalized = _normalizer(times)
    kept = _normalizer(None)
    section_root = tree / REUSABLE_SECTION
    paths = list(_sorted_tree(tree))
    inside = [path for path in paths if path == section_root or section_root in path.parents]
    members = set(inside)
    before = [path for path in paths if path not in members and path < section_root]
    after = [path for path in paths if path not in members and path > section_root]
    offset = 0
    for group, normalize in ((before, normalized), (inside, kept), (after, normalized)):
        if not group:
            continue
        blocks = _tar_members(tree, group, normalize)
        if group is inside and reuse is not None:
            offset += _reused_section(reuse, tree.name, codec, blocks, compress, raw)
        else:
            counted = _Counted(blocks)
            compress(counted, raw)
            offset += counted.size
    # The end of the archive, as tarfile writes it: two zero blocks, then zeros up to a whole record.
    end = tarfile.BLOCKSIZE * 2
    end += (tarfile.RECORDSIZE - (offset + end) % tarfile.RECORDSIZE) % tarfile.RECORDSIZE
    compress([tarfile.NUL * end], raw)


class _Counted:
    """An iterable of byte blocks that counts the bytes it yields."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self.blocks = blocks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for block in self.blocks:
            self.size += len(block)
            yield block


def _reused_section(reuse: Path, top: str, codec: str, blocks: Iterable[bytes],
                    compress: Callable[[Iterable[bytes], BinaryIO], None], raw: BinaryIO) -> int:
    """Copy the compressed section kept in ``reuse`` into ``raw`` (compressing and keeping it first if there is
    none); returns its uncompressed size. Kept as ``<name>.<uncompressed size>``, written atomically."""
    import hashlib

    name = hashlib.sha256(f"{SECTION_VERSION}:{codec}:{top}".encode()).hexdigest()[:32]
    found = sorted(reuse.glob(f"{name}.*[0-9]")) if reuse.is_dir() else []
    if not found:
        reuse.mkdir(parents=True, exist_ok=True)
        temporary = reuse / f".{name}.{uuid.uuid4().hex[:12]}.part"
        try:
            counted = _Counted(blocks)
            with temporary.open("wb") as sink:
                compress(counted, sink)
            found = [reuse / f"{name}.{counted.size}"]
            os.replace(temporary, found[0])
        finally:
            temporary.unlink(missing_ok=True)
    with found[0].open("rb") as section:
        shutil.copyfileobj(section, raw, 1 << 20)
    return int(found[0].name.rsplit(".", 1)[1])


def _tar_members(tree: Path, paths: list[Path], normalize: Callable[[tarfile.TarInfo], tarfile.TarInfo]
                 ) -> Iterator[bytes]:
    """The tar blocks (header, data, padding) of ``paths``, exactly as :meth:`tarfile.TarFile.addfile` writes them
    in PAX format; hard links within ``paths`` are stored as links."""
    reader = tarfile.TarFile(fileobj=io.BytesIO(), mode="w", format=tarfile.PAX_FORMAT)  # for gettarinfo()
    for path in paths:
        interrupts.check()
        info = normalize(reader.gettarinfo(str(path), arcname=path.relative_to(tree.parent).as_posix()))
        yield info.tobuf(tarfile.PAX_FORMAT, reader.encoding, reader.errors)
        if info.isreg():
            with path.open("rb") as source:
                for block in iter(lambda: source.read(1 << 20), b""):
                    interrupts.check()
                    yield block
            remainder = info.size % tarfile.BLOCKSIZE
            if remainder:
                yield tarfile.NUL * (tarfile.BLOCKSIZE - remainder)


_ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can record
_ZIP_LAST = 4354819198  # 2107-12-31T23:59:58Z, the latest (MS-DOS dates count years from 1980 in 7 bits)


def _write_zip(tree: Path, output: Path, member_time: MemberTimes | type(_kept_times)) -> None:
    """Zip with Unix modes in the external attributes (so ``unzip`` restores executability) and symbolic links
    stored as links (the PKWARE/Info-ZIP convention: mode ``S_IFLNK``, the target as the entry's data)."""
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=GZIP_LEVEL) as archive:
        for path in _sorted_tree(tree):
            interrupts.check()
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
                    for block in iter(lambda: source.read(1 << 20), b""):
                        interrupts.check()
                        sink.write(block)



def write_checksums(directory: Path, archives: Iterable[Path], *, known: Mapping[str, str] | None = None,
                    earlier: Path | None = None) -> Path:
    """Write ``directory/SHA256SUMS`` (``{sha256}  {file name}`` lines, sorted by name) for ``archives``.

    ``known`` maps file names to digests the caller already computed (the build hashes each archive once); other
    files are hashed here. Files listed by the ``SHA256SUMS`` of ``earlier`` (default ``directory``: an earlier
    build's) that still exist there and are not among ``archives`` stay listed, hashed anew.

    Returns:
        The checksum file's path.

    Raises:
        PackError: the file could not be written (a full disk, ...); nothing is left at its path then.
    """
    earlier = directory if earlier is None else earlier
    names = {archive.name: archive for archive in archives}
    previous = earlier / CHECKSUMS_NAME
    if previous.is_file():
        for line in previous.read_text(encoding="utf-8", errors="replace").splitlines():
            name = line.partition("  ")[2]
            if name and "/" not in name and name not in names and (earlier / name).is_file():
                names[name] = earlier / name
    known = known or {}
    path = directory / CHECKSUMS_NAME
    with _atomic_output(path) as temporary:
        temporary.write_text("".join(f"{known.get(name) or sha256_of(names[name])}  {name}\n"
                                     for name in sorted(names)), encoding="utf-8")
    return path


#: The directory inside an output directory where a build stages everything it publishes.
OUTPUT_STAGING_DIR = ".hatch-pbs-staging"


@contextlib.contextmanager
def output_staging(output_dir: Path) -> Iterator[Path]:
    """A private directory inside ``output_dir`` (same file system) where a build writes its archives, SBOMs and
    ``SHA256SUMS``; :func:`publish_outputs` moves them into ``output_dir`` once every target succeeded. The
    directory is removed when the block ends, however it ends, so a failed or interrupted build leaves
    ``output_dir`` as it was; directories of killed builds are removed by the next build
    (:func:`~hatch_pbs.cache.staging_directory`).

    Raises:
        PackError: ``output_dir`` cannot be written.
    """
    root = output_dir / OUTPUT_STAGING_DIR
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PackError(f"cannot write to {output_dir}: {error.strerror or error}") from None
    with staging_directory(root, remove_empty_root=True) as directory:
        yield directory


def publish_outputs(staged: Path, output_dir: Path) -> None:
    """Move everything in ``staged`` into ``output_dir`` (renames on one file system), ``SHA256SUMS`` last, so it
    only ever lists files that are in place; an artifact directory replaces an earlier one of the same name.

    Raises:
        PackError: a rename failed.
    """
    names = sorted(os.listdir(staged), key=lambda name: name == CHECKSUMS_NAME)
    try:
        for name in names:
            source, destination = staged / name, output_dir / name
            if destination.is_dir() and not destination.is_symlink():
                os.replace(destination, staged / f".{name}.previous")  # removed with the staging directory
            os.replace(source, destination)
    except OSError as error:
        raise PackError(f"cannot publish the build's outputs in {output_dir}: {error.strerror or error}") from None
