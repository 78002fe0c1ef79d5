"""The image layers of one artifact, reproducible, in the order that keeps pushes small:

1. the runtime (``python/``), which changes only with the runtime asset and the trim options;
2. the dependencies (``app/`` but the project's own files), which change with the locked versions;
3. the project itself (its files in ``app/`` as its ``RECORD`` lists them, with their bytecode), the launchers
   (``bin/``) and the manifest: a code-only change changes only this layer.

Every member is placed under the image prefix (``/opt/<name>``), with its parent directories, owned by root
(uid/gid 0, no names), modes as the archive records them (:func:`~hatch_pbs.artifact.archive.normalized_mode`),
in sorted order, as a POSIX (PAX) tar compressed with gzip (level 6, no name, time 0). Times: the runtime's Python
sources keep their own (the asset's, as in the archive: the standard library's timestamp-based bytecode needs them), the
project's files get ``SOURCE_DATE_EPOCH`` and everything else (directories, the dependencies, the runtime's other
files) the fixed time :data:`FIXED_LAYER_TIME`, so a new commit, which moves ``SOURCE_DATE_EPOCH``, does
not change the first two layers. The same inputs give the same bytes on any machine with the same zlib (the
uncompressed layers, whose digests are the image config's ``diff_ids``, are the same whatever the zlib).

Compressed layers are kept in the cache by the sha256 of their uncompressed bytes (``oci/layers/<hex>.tar.gz``
with a record of the compressed size and sha256), so a rebuild compresses only the layers that changed; a kept
layer that does not match its record is discarded with a warning and compressed again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import posixpath
import shutil
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from packaging.utils import canonicalize_name

from hatch_pbs import interrupts
from hatch_pbs.artifact.pack import FALLBACK_EPOCH
from hatch_pbs.atomic import publishing_file
from hatch_pbs.errors import ImageError
from hatch_pbs.oci.members import ArtifactMember, artifact_members
from hatch_pbs.release.cache import Cache, sha256_of

#: The OCI media type of a gzip-compressed layer (image-spec ``layer.md``).
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
#: gzip level of the layers: zlib's default, as for the ``tar.gz`` archives.
LAYER_GZIP_LEVEL = 6
#: The time of the layer members that keep none of their own (see the module docstring): fixed, so that the
#: runtime's and the dependencies' layers depend only on what they hold.
FIXED_LAYER_TIME = FALLBACK_EPOCH
#: The layer names, in image order.
LAYER_NAMES = ("runtime", "dependencies", "project")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Layer:
    """One compressed layer.

    Attributes:
        name: ``"runtime"``, ``"dependencies"`` or ``"project"``.
        path: the compressed blob (in the cache).
        digest: ``sha256:<hex>`` of the compressed bytes (the manifest's layer digest).
        size: the compressed size in bytes.
        diff_id: ``sha256:<hex>`` of the uncompressed tar (the image config's ``rootfs.diff_ids`` entry).
        reused: whether the compressed blob was taken from the cache.
    """

    name: str
    path: Path
    digest: str
    size: int
    diff_id: str
    reused: bool


def project_files(members: Iterable[ArtifactMember], project_name: str) -> frozenset[str]:
    """The member names of the project's own files in ``app/``: those its ``RECORD`` lists (the wheel's
    ``*.dist-info`` whose name is ``project_name``, PEP 503-normalized), with the dist-info itself.

    Raises:
        ImageError: the artifact holds no ``RECORD`` of the project.
    """
    wanted = canonicalize_name(project_name)
    for member in members:
        parts = member.name.split("/")
        if (len(parts) == 3 and parts[0] == "app" and parts[1].endswith(".dist-info") and parts[2] == "RECORD"
                and canonicalize_name(parts[1].removesuffix(".dist-info").rsplit("-", 1)[0]) == wanted):
            with member.open() as stream:
                lines = stream.read().decode("utf-8").splitlines()
            listed = {posixpath.normpath("app/" + line.rsplit(",", 2)[0]) for line in lines if line.strip()}
            return frozenset(listed | {f"app/{parts[1]}"})
    raise ImageError(f"the artifact holds no RECORD of the project {project_name} in app/")


def layer_of(name: str, own: frozenset[str], holding: frozenset[str] = frozenset()) -> str:
    """Which layer (:data:`LAYER_NAMES`) the member ``name`` goes to; ``own`` is :func:`project_files`,
    ``holding`` the directories holding its files (:func:`holding_directories`). A
    directory of ``app/`` holding a file of the project goes to the project's layer (the dependencies' layer gets
    it as a parent of its own members), so renaming a package of the project leaves the dependencies' layer as it
    was."""
    top = name.split("/", 1)[0]
    if top == "python":
        return "runtime"
    if top != "app":
        return "project"  # bin/, the manifest
    if name in own or name in holding or _bytecode_source(name) in own or any(
            parent in own for parent in _parents(name)) or _bytecode_directory_of(name) in holding:
        return "project"
    return "dependencies"


def holding_directories(own: frozenset[str]) -> frozenset[str]:
    """Every directory that holds one of ``own`` (``app`` itself included)."""
    return frozenset(parent for name in own for parent in _parents(name))


def _bytecode_source(name: str) -> str:
    """``app/x/y.py`` for ``app/x/__pycache__/y.cpython-312.pyc`` (else ``name``)."""
    directory, _, file_name = name.rpartition("/")
    if directory.endswith("/__pycache__") and file_name.endswith(".pyc"):
        return f"{directory[:-len('/__pycache__')]}/{file_name.split('.', 1)[0]}.py"
    return name


def _bytecode_directory_of(name: str) -> str | None:
    """``app/x`` for the bytecode directory ``app/x/__pycache__`` (else ``None``)."""
    return name.removesuffix("/__pycache__") if name.endswith("/__pycache__") else None


def _parents(name: str) -> Iterator[str]:
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        yield name


def write_layers(artifact: Path, project_name: str, prefix: str, work: Path, cache: Cache, *, epoch: int,
                 warn: Callable[[str], None]) -> list[Layer]:
    """The three layers of ``artifact`` under ``prefix`` (absolute, e.g. ``/opt/demo``), in image order;
    ``epoch`` is ``SOURCE_DATE_EPOCH`` (seconds), the time of the project's files.

    The uncompressed layers are written in ``work`` (made if missing; the tars are removed afterwards) and their
    compressed blobs kept in ``cache`` (see the module docstring).

    Raises:
        ImageError: see :func:`project_files`, :func:`~hatch_pbs.oci.members.artifact_members`;
        OSError: a file cannot be read or written.
    """
    own = project_files(artifact_members(artifact), project_name)
    holding = holding_directories(own)
    root = prefix.strip("/")
    work.mkdir(parents=True, exist_ok=True)
    tars = {name: work / f"{name}.tar" for name in LAYER_NAMES}
    writers = {name: _LayerTar(tars[name], root) for name in LAYER_NAMES}
    try:
        for member in artifact_members(artifact):
            interrupts.check()
            name = layer_of(member.name, own, holding)
            writers[name].add(member, mtime=_member_time(name, member, epoch))
    finally:
        for writer in writers.values():
            writer.close()
    layers = [_compressed(name, tars[name], writers[name].diff_id, cache, warn) for name in LAYER_NAMES]
    for path in tars.values():
        path.unlink(missing_ok=True)
    return layers


def _member_time(layer: str, member: ArtifactMember, epoch: int) -> int:
    """A member's time in its layer: the project's files ``epoch``; the runtime's Python sources their own (the
    asset's: the bytecode PBS ships records them, PEP 552 timestamp-based); everything else (directories, the
    dependencies, the runtime's other files) :data:`FIXED_LAYER_TIME`."""
    if member.kind != "dir" and layer == "project":
        return epoch
    if member.kind == "file" and layer == "runtime" and member.name.endswith(".py"):
        return member.mtime
    return FIXED_LAYER_TIME


class _LayerTar:
    """An uncompressed layer tar being written, members sorted at the end (:meth:`close`), its sha256 computed."""

    def __init__(self, path: Path, root: str) -> None:
        self.path, self.root = path, root
        self.spool = path.with_suffix(".spool")
        self.entries: list[tuple[str, tarfile.TarInfo, int]] = []  # name, header, offset of content in spool
        self.spool_file: BinaryIO = self.spool.open("wb")
        self.diff_id = ""

    def add(self, member: ArtifactMember, *, mtime: int) -> None:
        header = tarfile.TarInfo(f"{self.root}/{member.name}")
        header.mode, header.mtime, header.uid, header.gid, header.uname, header.gname = (
            member.mode, mtime, 0, 0, "", "")
        header.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE}.get(member.kind, tarfile.REGTYPE)
        header.linkname = member.link
        offset = self.spool_file.tell()
        if member.kind == "file":
            with member.open() as source:
                shutil.copyfileobj(source, self.spool_file, _CHUNK)
            header.size = self.spool_file.tell() - offset
            if header.size != member.size:
                raise ImageError(f"member {member.name} holds {header.size} bytes, not the {member.size} recorded")
        self.entries.append((header.name, header, offset))

    def close(self) -> None:
        if self.spool_file.closed:
            return
        self.spool_file.close()
        try:
            self.diff_id = self._write_sorted()
        finally:
            self.spool.unlink(missing_ok=True)

    def _write_sorted(self) -> str:
        """Write the tar (parent directories of every member added, members sorted by name); its sha256."""
        names = {name for name, _, _ in self.entries}
        directories = sorted({parent for name in names for parent in _parents(name)} - names)
        digest = hashlib.sha256()
        with self.path.open("wb") as raw, self.spool.open("rb") as spool:
            sink = _Hashing(raw, digest)
            with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
                entries = [(name, _directory_header(name), -1) for name in directories]
                for _, header, offset in sorted(entries + self.entries, key=lambda entry: entry[0]):
                    if header.isfile():
                        spool.seek(offset)
                        archive.addfile(header, _Limited(spool, header.size))
                    else:
                        archive.addfile(header)
        return f"sha256:{digest.hexdigest()}"


def _directory_header(name: str) -> tarfile.TarInfo:
    header = tarfile.TarInfo(name)
    header.type, header.mode, header.mtime = tarfile.DIRTYPE, 0o755, FIXED_LAYER_TIME
    return header


class _Hashing:
    """A write-only file that also feeds what is written to a hash."""

    def __init__(self, raw: BinaryIO, digest: hashlib._Hash) -> None:
        self.raw, self.digest = raw, digest

    def write(self, block: bytes) -> int:
        self.digest.update(block)
        return self.raw.write(block)

    def tell(self) -> int:
        return self.raw.tell()


class _Limited:
    """A reader of ``size`` bytes of ``source`` from its current position."""

    def __init__(self, source: BinaryIO, size: int) -> None:
        self.source, self.left = source, size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        block = self.source.read(size)
        self.left -= len(block)
        return block


def _compressed(name: str, uncompressed: Path, diff_id: str, cache: Cache, warn: Callable[[str], None]) -> Layer:
    """The cached compressed blob of the layer whose uncompressed tar is ``uncompressed`` (made when missing)."""
    blob = cache.root / "oci" / "layers" / (diff_id.removeprefix("sha256:") + ".tar.gz")
    record_path = blob.with_name(blob.name + ".json")
    with cache.lock(blob):
        kept = _kept(blob, record_path)
        if kept is None and blob.exists():
            warn(f"the cached {name} layer {blob} did not match its record; compressed again")
            cache.discard(blob)
        if kept is not None:
            return Layer(name, blob, kept[0], kept[1], diff_id, reused=True)
        with publishing_file(blob) as temporary:
            with uncompressed.open("rb") as source, temporary.open("wb") as raw, \
                    gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=LAYER_GZIP_LEVEL,
                                  mtime=0) as target:
                for block in iter(lambda: source.read(_CHUNK), b""):
                    interrupts.check()
                    target.write(block)
            digest, size = f"sha256:{sha256_of(temporary)}", temporary.stat().st_size
            record_path.write_text(json.dumps({"digest": digest, "size": size}), encoding="utf-8")
    return Layer(name, blob, digest, size, diff_id, reused=False)


def _kept(blob: Path, record_path: Path) -> tuple[str, int] | None:
    """The kept blob's digest and size when it matches its record, else ``None``."""
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        digest, size = str(record["digest"]), int(record["size"])
        if blob.stat().st_size == size and f"sha256:{sha256_of(blob)}" == digest:
            return digest, size
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


__all__ = ["FIXED_LAYER_TIME", "LAYER_MEDIA_TYPE", "LAYER_NAMES", "Layer", "holding_directories", "layer_of",
           "project_files", "write_layers"]
