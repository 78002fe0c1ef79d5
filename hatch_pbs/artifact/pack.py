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
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from hatch_pbs import interrupts
from hatch_pbs.artifact.archive import (
    DEFLATE_LEVEL,
    ZIP_EPOCH,
    archive_format_of,
    normalized_mode,
    open_zip,
    zip_member,
)
from hatch_pbs.atomic import (
    fsync_directory,
    publishing_directory,
    publishing_file,
    sweep_temporaries,
)
from hatch_pbs.errors import DamagedCacheError, PackError, os_error_cause
from hatch_pbs.release.cache import Cache, sha256_of, staging_directory
from hatch_pbs.release.records import (
    DAMAGED,
    INTACT,
    OUTDATED,
    Verdict,
    mark_used,
    verified_blocks,
)
from hatch_pbs.release.sums import SUMS_FILE_NAME, parse_sums, render_sums
from hatch_pbs.runtime.trim import measure

#: gzip level: 6 is gzip's own default, the usual size/time balance (level 9 is ~6x slower for ~2 % less).
GZIP_LEVEL = DEFLATE_LEVEL
#: zstd level (see benchmarks/): compresses better than gzip -6 and several times faster, on every core.
ZSTD_LEVEL = 10
#: zstd worker threads: one per core (the output does not depend on the number, as long as it is at least one).
ZSTD_THREADS = max(1, os.cpu_count() or 1)
#: The checksum file beside the archives (:mod:`hatch_pbs.release.sums`).
CHECKSUMS_NAME = SUMS_FILE_NAME


#: The time used when neither ``SOURCE_DATE_EPOCH`` nor a git commit gives one: 1980-01-01T00:00:00Z, the earliest
#: time a zip archive can record.
FALLBACK_EPOCH = ZIP_EPOCH


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


def _quiet(message: str) -> None:
    """A ``warn`` that drops its line."""


def _kept_times(mtime: float) -> int:
    return int(mtime)


def _normalizer(times: MemberTimes | None):  # noqa: ANN202 - a tarfile filter
    member_time = times or _kept_times

    def normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = member_time(info.mtime)
        info.mode = normalized_mode(info.mode | {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK}.get(
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
    """Yield a temporary path next to ``destination``, published as it (mode 0644) when the block succeeds
    (:func:`hatch_pbs.atomic.publishing_file`).

    Raises:
        PackError: writing failed (nothing is left at ``destination`` or the temporary path then).
    """
    try:
        with publishing_file(destination, mode=0o644) as temporary:
            yield temporary
    except OSError as error:
        raise PackError(f"cannot write {destination}: {os_error_cause(error, destination)}") from None


def pack_tree(tree: Path, destination: Path, *, times: MemberTimes | None = None, reuse: Path | None = None,
              recorded: Mapping[str, tuple[int, str]] | None = None, warn: Callable[[str], None] = _quiet) -> int:
    """Write ``tree`` as ``destination``, a ``.tar.gz``, ``.tar.zst`` or ``.zip`` chosen by its name; the tree's
    directory name becomes the archive's top directory. ``times`` decides member times of everything but the
    runtime (``python/``, whose members keep their own times; default: every file keeps its own).

    ``reuse`` is a directory where the compressed ``python/`` part of a tar archive is kept and found again by
    later builds (the cache entry of the prepared runtime it was copied from): the caller guarantees that one
    ``reuse`` directory always goes with the same ``python/`` content. The archive's bytes do not depend on
    whether the part was reused. A kept part is checked against its record (its size before it is used, its sha256
    while it is copied); a damaged one is compressed again, with one ``warn`` line, and the archive is the same.

    ``recorded`` is the record of the files below ``python/`` (relative POSIX path -> size in bytes, sha256; see
    :class:`~hatch_pbs.release.records.TreeRecord`): their bytes are checked against it while they are packed, so a
    damaged
    runtime never reaches an archive or a kept part.

    Returns:
        The archive size in bytes.

    Raises:
        PackError: the archive could not be written (nothing is left at ``destination`` then).
        DamagedCacheError: a file below ``python/`` does not match ``recorded`` (nothing is left either).
        BuildInterrupted: the build was interrupted (nothing is left at ``destination`` either).
    """
    chosen = archive_format_of(destination.name)
    with _atomic_output(destination) as temporary:
        if chosen == "zip":
            _write_zip(tree, temporary, times or _kept_times, recorded)
        else:
            section = _Section(reuse, recorded, warn)
            if chosen == "tar.zst":
                _write_tar_zst(tree, temporary, times, section)
            else:
                _write_tar_gz(tree, temporary, times, section)
    return destination.stat().st_size


def pack_directory(tree: Path, destination: Path, *, recorded: Mapping[str, tuple[int, str]] | None = None) -> int:
    """Copy ``tree`` to the directory ``destination`` (``archive-format = "dir"``), replacing an earlier one.

    The copy is made of real files (never hard links to the build's cache, which a user editing the output would
    change) in a temporary directory beside ``destination``, renamed into place when complete. Modes are normalized
    as in the archives (``0755``/``0644``, no setuid/setgid/sticky bit, nothing group- or world-writable). Files
    below ``python/`` are checked against ``recorded`` while they are copied, as in :func:`pack_tree`.

    Returns:
        The sum of the sizes of the files copied, in bytes.

    Raises:
        PackError: the copy could not be made (nothing is left at ``destination`` or the temporary path then; an
            earlier directory at ``destination`` is kept).
        DamagedCacheError: a file below ``python/`` does not match ``recorded`` (the same).
    """
    try:
        with publishing_directory(destination, replace=True) as temporary:
            shutil.copytree(tree, temporary, symlinks=True, dirs_exist_ok=True,
                            copy_function=_checked_copier(tree, recorded))
            _normalize_modes(temporary)
    except (OSError, _CopyFailed) as error:
        cause = error.error if isinstance(error, _CopyFailed) else error
        raise PackError(f"cannot write {destination}: {os_error_cause(cause, destination)}") from None
    return measure(destination)[1]


class _CopyFailed(Exception):
    """A file of :func:`pack_directory`'s copy failed: raised through :func:`shutil.copytree` (which would otherwise
    collect the error as text and go on copying), carrying the :class:`OSError` (``error``)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _checked_copier(tree: Path, recorded: Mapping[str, tuple[int, str]] | None) -> Callable[[str, str], None]:
    """A ``shutil.copytree`` copy function that checks the files below ``tree/python/`` against ``recorded`` and
    stops the copy at the first file that fails (:class:`_CopyFailed`)."""
    section = str(tree / REUSABLE_SECTION) + os.sep

    def copy(source: str, target: str) -> None:
        interrupts.check()
        relative = source[len(section):].replace(os.sep, "/") if source.startswith(section) else None
        try:
            if recorded is None or relative is None or relative not in recorded:
                shutil.copy2(source, target)
                return
            with open(target, "wb") as sink:
                for block in verified_blocks(Path(source), recorded[relative],
                                             name=f"{REUSABLE_SECTION}/{relative}"):
                    sink.write(block)
            shutil.copystat(source, target)
        except OSError as error:
            if error.filename2 is None and error.filename in (None, source):
                error.filename2 = target  # a failed write() names no file; this is the one being written
            raise _CopyFailed(error) from None

    return copy


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
                os.chmod(path, normalized_mode(status.st_mode))


def _write_tar_gz(tree: Path, output: Path, times: MemberTimes | None, section: _Section) -> None:
    def compress(data: Iterable[bytes], sink: BinaryIO) -> None:
        with gzip.GzipFile(filename="", mode="wb", fileobj=sink, compresslevel=GZIP_LEVEL, mtime=0) as member:
            for block in data:
                member.write(block)

    with output.open("wb") as raw:
        _write_tar(tree, raw, times, compress, section, f"gzip-{GZIP_LEVEL}")


def _write_tar_zst(tree: Path, output: Path, times: MemberTimes | None, section: _Section) -> None:
    import zstandard

    def compress(data: Iterable[bytes], sink: BinaryIO) -> None:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=ZSTD_THREADS, write_checksum=True)
        with compressor.stream_writer(sink, closefd=False) as frame:
            for block in data:
                frame.write(block)

    with output.open("wb") as raw:
        _write_tar(tree, raw, times, compress, section, f"zstd-{ZSTD_LEVEL}")


#: The part of an artifact tree whose compressed members may be reused (:func:`pack_tree`'s ``reuse``).
REUSABLE_SECTION = "python"
#: Bumped whenever the bytes of a compressed section change, so older reusable sections are not used
#: (2: kept as a directory with a record).
SECTION_VERSION = 2
#: A kept part, ``{reuse}/{name}/``: the compressed bytes and their record (JSON: ``size`` in bytes, ``sha256``,
#: ``uncompressed_size`` in bytes, ``codec``, ``section_version``), whose modification time is the part's last use.
PART_FILE, PART_RECORD = "part", "record.json"


@dataclass(frozen=True)
class _Section:
    """How the ``python/`` section of a tar archive is packed: ``reuse``, ``recorded`` and ``warn`` of
    :func:`pack_tree`."""

    reuse: Path | None
    recorded: Mapping[str, tuple[int, str]] | None
    warn: Callable[[str], None]


def _write_tar(tree: Path, raw: BinaryIO, times: MemberTimes | None,
               compress: Callable[[Iterable[bytes], BinaryIO], None], section: _Section, codec: str) -> None:
    """A POSIX (PAX) tar stream of ``tree`` in ``raw`` as concatenated compressed members (gzip members or zstd
    frames, which decompress as one stream): the members before ``python/``, ``python/`` itself, the members
    after it, and the end-of-archive blocks. Members under ``python/`` keep their own times (a prepared runtime's
    times do not depend on the build), so with ``section.reuse`` their compressed bytes are read from, or saved
    to, a kept part there instead of compressed again."""
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
        recorded = section.recorded if group is inside else None
        blocks = _tar_members(tree, group, normalize, recorded)
        if group is inside and section.reuse is not None:
            offset += _reused_section(section, tree.name, codec, blocks, compress, raw)
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


class _Tee:
    """A writable stream that writes to two streams and hashes (sha256) and counts what it writes."""

    def __init__(self, first: BinaryIO, second: BinaryIO) -> None:
        self.streams = (first, second)
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, block: bytes) -> int:
        for stream in self.streams:
            stream.write(block)
        self.digest.update(block)
        self.size += len(block)
        return len(block)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def _reused_section(section: _Section, top: str, codec: str, blocks: Iterable[bytes],
                    compress: Callable[[Iterable[bytes], BinaryIO], None], raw: BinaryIO) -> int:
    """Copy the compressed section kept in ``section.reuse`` into ``raw``, checked against its record; when there
    is none, or it is damaged (then with one ``section.warn`` line; what was copied of it is cut off ``raw``
    again), compress it into ``raw`` and keep it (published atomically under its lock). Returns its uncompressed
    size."""
    name = hashlib.sha256(f"{SECTION_VERSION}:{codec}:{top}".encode()).hexdigest()[:32]
    reuse = section.reuse
    if reuse is None:
        raise ValueError("_reused_section needs a directory to reuse the section from")
    entry, store, start = reuse / name, Cache(reuse), raw.tell()
    with store.lock(entry):
        if entry.exists() or entry.is_symlink():
            verdict, record = _part_check(entry, digests=False)
            if verdict.state == INTACT:
                try:
                    for block in verified_blocks(entry / PART_FILE, (record["size"], record["sha256"]),
                                                 name=PART_FILE):
                        raw.write(block)
                except DamagedCacheError as error:
                    raw.seek(start)
                    raw.truncate()
                    verdict = Verdict(DAMAGED, str(error))
                else:
                    mark_used(entry / PART_RECORD)
                    return int(record["uncompressed_size"])
            section.warn(f"the compressed runtime part {entry} is damaged ({verdict.reason}); compressing it again")
            store.discard(entry)
        counted = _Counted(blocks)
        with store.publishing_directory(entry) as work:
            with (work / PART_FILE).open("wb") as kept:
                tee = _Tee(raw, kept)
                compress(counted, cast(BinaryIO, tee))  # a write-only stream: all compress uses
            record = {"section_version": SECTION_VERSION, "codec": codec, "size": tee.size,
                      "sha256": tee.digest.hexdigest(), "uncompressed_size": counted.size}
            (work / PART_RECORD).write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
    return counted.size


def _part_check(entry: Path, *, digests: bool) -> tuple[Verdict, dict[str, Any]]:
    """The verdict on the kept part ``entry`` (a directory) and its record (``{}`` when unreadable)."""
    try:
        record = json.loads((entry / PART_RECORD).read_text(encoding="utf-8"))
        size, sha256 = int(record["size"]), str(record["sha256"])
        int(record["uncompressed_size"])
    except FileNotFoundError:
        return Verdict(DAMAGED, f"{PART_RECORD}: missing"), {}
    except (OSError, ValueError, KeyError, TypeError) as error:
        return Verdict(DAMAGED, f"{PART_RECORD}: unreadable ({error!r})"), {}
    if record.get("section_version") != SECTION_VERSION:
        return Verdict(OUTDATED, "made by another hatch-pbs version"), record
    try:
        found = (entry / PART_FILE).stat().st_size
    except OSError:
        return Verdict(DAMAGED, f"{PART_FILE}: missing"), record
    if found != size:
        return Verdict(DAMAGED, f"{PART_FILE}: {found} bytes, {size} recorded"), record
    if digests and sha256_of(entry / PART_FILE) != sha256:
        return Verdict(DAMAGED, f"{PART_FILE}: its sha256 differs from the recorded one"), record
    return Verdict(INTACT), record


def part_verdicts(reuse: Path, *, digests: bool) -> list[tuple[Path, Verdict]]:
    """Every compressed runtime part kept in the ``reuse`` directory of :func:`pack_tree` (a ``{name}/``
    directory; an older hatch-pbs kept a ``{name}.{size}`` file) with its verdict, sorted; with ``digests`` the
    part's sha256 is checked too. The modification time of ``{name}/record.json`` is the part's last use."""
    found = []
    for path in sorted(reuse.iterdir()) if reuse.is_dir() else []:
        if path.name.startswith(".") or path.name.endswith(".lock"):
            continue  # temporaries and lock files
        if path.is_dir() and not path.is_symlink():
            found.append((path, _part_check(path, digests=digests)[0]))
        else:
            found.append((path, Verdict(OUTDATED, "kept in the format of an older hatch-pbs")))
    return found


def _tar_members(tree: Path, paths: list[Path], normalize: Callable[[tarfile.TarInfo], tarfile.TarInfo],
                 recorded: Mapping[str, tuple[int, str]] | None = None) -> Iterator[bytes]:
    """The tar blocks (header, data, padding) of ``paths``, exactly as :meth:`tarfile.TarFile.addfile` writes them
    in PAX format; hard links within ``paths`` are stored as links. Files below ``python/`` that ``recorded``
    lists are checked against it while they are read (:func:`~hatch_pbs.release.records.verified_blocks`)."""
    reader = tarfile.TarFile(fileobj=io.BytesIO(), mode="w", format=tarfile.PAX_FORMAT)  # for gettarinfo()
    for path in paths:
        interrupts.check()
        info = normalize(reader.gettarinfo(str(path), arcname=path.relative_to(tree.parent).as_posix()))
        yield info.tobuf(tarfile.PAX_FORMAT, reader.encoding, reader.errors)
        if info.isreg():
            yield from _file_blocks(tree, path, recorded)
            remainder = info.size % tarfile.BLOCKSIZE
            if remainder:
                yield tarfile.NUL * (tarfile.BLOCKSIZE - remainder)


def _file_blocks(tree: Path, path: Path, recorded: Mapping[str, tuple[int, str]] | None) -> Iterator[bytes]:
    """The bytes of the file ``path`` of ``tree`` in 1 MiB blocks, checked against ``recorded`` when it lists the
    file (paths relative to ``tree/python/``); an interrupted build stops between two blocks (``BuildInterrupted``)."""
    section = tree / REUSABLE_SECTION
    if recorded is not None and section in path.parents:
        relative = path.relative_to(section).as_posix()
        if relative in recorded:
            for block in verified_blocks(path, recorded[relative], name=f"{REUSABLE_SECTION}/{relative}"):
                interrupts.check()
                yield block
            return
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            interrupts.check()
            yield block


def _write_zip(tree: Path, output: Path, member_time: Callable[[float], int],
               recorded: Mapping[str, tuple[int, str]] | None = None) -> None:
    """Zip with Unix modes in the external attributes (so ``unzip`` restores executability) and symbolic links
    stored as links (:func:`~hatch_pbs.artifact.archive.zip_member`)."""
    with open_zip(output) as archive:
        for path in _sorted_tree(tree):
            interrupts.check()
            status = path.lstat()
            entry = zip_member(path.relative_to(tree.parent).as_posix(), member_time(status.st_mtime), status.st_mode)
            if stat.S_ISDIR(status.st_mode):
                archive.writestr(entry, b"")
            elif stat.S_ISLNK(status.st_mode):
                archive.writestr(entry, os.readlink(path).encode(), compress_type=zipfile.ZIP_STORED)
            else:
                with archive.open(entry, "w") as sink:
                    for block in _file_blocks(tree, path, recorded):
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
        text = previous.read_text(encoding="utf-8", errors="replace")
        for name, _ in parse_sums(text, skip_malformed=True):
            if "/" not in name and name not in names and (earlier / name).is_file():
                names[name] = earlier / name
    known = known or {}
    path = directory / CHECKSUMS_NAME
    with _atomic_output(path) as temporary:
        temporary.write_text(render_sums({name: known.get(name) or sha256_of(names[name]) for name in names}),
                             encoding="utf-8")
    return path


#: The directory inside an output directory where a build stages everything it publishes.
OUTPUT_STAGING_DIR = ".hatch-pbs-staging"


@contextlib.contextmanager
def output_staging(output_dir: Path) -> Iterator[Path]:
    """A private directory inside ``output_dir`` (same file system) where a build writes its archives, SBOMs and
    ``SHA256SUMS``; :func:`publish_outputs` moves them into ``output_dir`` once every target succeeded. The
    directory is removed when the block ends, however it ends, so a failed or interrupted build leaves
    ``output_dir`` as it was; directories of killed builds are removed by the next build
    (:func:`~hatch_pbs.release.cache.staging_directory`), and so are temporaries of killed writers in ``output_dir``
    (:func:`~hatch_pbs.atomic.sweep_temporaries`).

    Raises:
        PackError: ``output_dir`` cannot be written.
    """
    root = output_dir / OUTPUT_STAGING_DIR
    try:
        root.mkdir(parents=True, exist_ok=True)
        sweep_temporaries(output_dir)  # left by killed writers (earlier versions wrote archives in place)
    except OSError as error:
        raise PackError(f"cannot write to {output_dir}: {os_error_cause(error, root)}") from None
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
        fsync_directory(output_dir)
    except OSError as error:
        raise PackError(f"cannot publish the build's outputs in {output_dir}: {os_error_cause(error, output_dir)}") \
            from None
