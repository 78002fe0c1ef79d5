"""The single-file executable format: a prebuilt bootstrap followed by a payload, an entry and a trailer.

Layout of ``<script>-<version>-<triple>[.exe]`` (ELF and PE)::

    [bootstrap program]        hatch_pbs/onefile/bootstrap/bootstrap-<triple>[-gui][.exe]
    [payload]                  the artifact as a .tar.zst whose members are below one top directory
    [entry]                    UTF-8 path of the launcher relative to that top directory ("bin/app", "bin\\app.exe")
    [trailer, 80 bytes]        little-endian:
        magic "HPBSONE1"            8 bytes
        format version              u32 = 1
        payload format              u32 = 1 (tar.zst)
        payload offset              u64, from the start of the file
        payload size                u64, bytes
        payload sha256              32 raw bytes
        entry offset                u64, from the start of the file
        entry size                  u32, bytes (1..4096)
        reserved                    u32 = 0

On its first start the bootstrap extracts the payload (top directory stripped) into
``<cache root>/<sha256 hex>/`` and runs ``<entry>`` there; later starts run it directly
(``hatch_pbs/onefile/bootstrap/README.md`` describes the bootstrap). The zstd frames must declare a window of at
most 8 MiB (the bootstrap's decoder window; ``zstandard`` streaming compression at levels up to 19 does).
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from hatch_pbs.atomic import publishing_file

#: First 8 bytes of the trailer.
MAGIC = b"HPBSONE1"
#: Trailer format version (the bootstrap refuses any other).
FORMAT_VERSION = 1
#: Payload format 1: a zstd-compressed tar.
PAYLOAD_TAR_ZST = 1
#: ``struct`` layout of the trailer: magic, version, payload format, payload offset, payload size, sha256,
#: entry offset, entry size, reserved.
TRAILER_FORMAT = "<8sIIQQ32sQII"
#: Size of the trailer in bytes.
TRAILER_SIZE = struct.calcsize(TRAILER_FORMAT)
#: Largest entry path (bytes of UTF-8) the bootstrap accepts.
ENTRY_SIZE_MAX = 4096

assert TRAILER_SIZE == 80


@dataclass(frozen=True)
class Trailer:
    """The decoded trailer of a single-file executable (offsets and sizes in bytes)."""

    payload_offset: int
    payload_size: int
    sha256: bytes
    entry_offset: int
    entry_size: int
    entry: str


def write_onefile(bootstrap: Path, payload_archive: Path, entry: str, destination: Path) -> int:
    """Write the single-file executable ``destination``: ``bootstrap``, then ``payload_archive`` (a ``.tar.zst``
    whose members are below one top directory), ``entry`` and the trailer; atomically (a temporary beside it,
    renamed when complete), mode ``0o755``.

    Args:
        bootstrap: the prebuilt bootstrap program for the target.
        payload_archive: the artifact archive.
        entry: the launcher's path relative to the archive's top directory (``/`` or ``\\`` separated).

    Returns:
        The size of ``destination`` in bytes.

    Raises:
        ValueError: ``entry`` is empty, absolute, has ``.``/``..``/empty components or is longer than
            :data:`ENTRY_SIZE_MAX` bytes.
        OSError: an input cannot be read or ``destination`` cannot be written (it is then left as it was).
    """
    encoded = _check_entry(entry)
    digest = hashlib.sha256()
    with publishing_file(destination, mode=0o755) as temporary, open(temporary, "wb") as out:
        with open(bootstrap, "rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
        payload_offset = out.tell()
        with open(payload_archive, "rb") as source:
            while block := source.read(1 << 20):
                digest.update(block)
                out.write(block)
        payload_size = out.tell() - payload_offset
        entry_offset = out.tell()
        out.write(encoded)
        out.write(struct.pack(TRAILER_FORMAT, MAGIC, FORMAT_VERSION, PAYLOAD_TAR_ZST, payload_offset, payload_size,
                              digest.digest(), entry_offset, len(encoded), 0))
        size = out.tell()
    return size


def read_trailer(path: Path) -> Trailer:
    """The trailer (and entry) of the single-file executable ``path``.

    Raises:
        ValueError: ``path`` has no valid trailer (wrong magic, version, payload format or bounds).
        OSError: ``path`` cannot be read.
    """
    with open(path, "rb") as stream:
        size = stream.seek(0, 2)
        if size < TRAILER_SIZE:
            raise ValueError(f"{path}: too short for a onefile trailer")
        stream.seek(size - TRAILER_SIZE)
        fields = struct.unpack(TRAILER_FORMAT, stream.read(TRAILER_SIZE))
        magic, version, payload_format, payload_offset, payload_size, sha256, entry_offset, entry_size, _ = fields
        if magic != MAGIC:
            raise ValueError(f"{path}: no {MAGIC.decode()} trailer")
        if version != FORMAT_VERSION or payload_format != PAYLOAD_TAR_ZST:
            raise ValueError(f"{path}: unsupported onefile format {version}/payload format {payload_format}")
        end = size - TRAILER_SIZE
        if not (payload_offset + payload_size <= entry_offset and entry_offset + entry_size <= end
                and 0 < entry_size <= ENTRY_SIZE_MAX):
            raise ValueError(f"{path}: corrupt onefile trailer")
        stream.seek(entry_offset)
        entry = stream.read(entry_size).decode("utf-8")
    return Trailer(payload_offset, payload_size, sha256, entry_offset, entry_size, entry)


def _check_entry(entry: str) -> bytes:
    encoded = entry.encode("utf-8")
    parts = entry.replace("\\", "/").split("/")
    if (not entry or entry[0] in "/\\" or (len(entry) > 1 and entry[1] == ":") or len(encoded) > ENTRY_SIZE_MAX
            or "\0" in entry or any(part in ("", ".", "..") for part in parts)):
        raise ValueError(f"invalid onefile entry {entry!r}: a relative path without '.', '..' or empty parts")
    return encoded
