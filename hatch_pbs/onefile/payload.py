"""The single-file executable format: a prebuilt bootstrap followed by a payload, an entry and a trailer.

Layout of ``<script>-<version>-<triple>[.exe]`` (ELF and PE; for Mach-O see below)::

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

Mach-O (macOS): the code signature must stay at the end of the file, so payload, entry, zero padding and trailer
form the file range of a segment ``__HPBSONE`` inserted before ``__LINKEDIT`` (:mod:`hatch_pbs.onefile.macho`),
whose size is a multiple of 16384 bytes; the trailer is that range's last 80 bytes (offsets still from the start of
the file), and the file is then signed ad hoc (:func:`hatch_pbs.binaries.codesign.sign_adhoc`).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hatch_pbs.atomic import publishing_file
from hatch_pbs.binaries.codesign import sign_adhoc, signature_problems
from hatch_pbs.binaries.macho import macho_kind
from hatch_pbs.onefile.macho import SEGMENT_ALIGNMENT, SEGMENT_NAME, find_segment, insert_segment, is_thin64_little

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

#: Bytes read from the start of a file to find its Mach-O load commands (more if they do not fit).
HEADER_READ = 65536

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
    renamed when complete), mode ``0o755``. The payload is streamed (read in 1 MiB blocks).

    A Mach-O ``bootstrap`` (by its magic) gets them as its ``__HPBSONE`` segment instead, and the result a fresh
    ad-hoc signature with the identifier ``destination.name``; the written file is read back (segment, trailer,
    signature) before it is published. That reads the whole file into memory once, to sign it.

    Args:
        bootstrap: the prebuilt bootstrap program for the target.
        payload_archive: the artifact archive.
        entry: the launcher's path relative to the archive's top directory (``/`` or ``\\`` separated).

    Returns:
        The size of ``destination`` in bytes.

    Raises:
        ValueError: ``entry`` is empty, absolute, has ``.``/``..``/empty components or is longer than
            :data:`ENTRY_SIZE_MAX` bytes; a Mach-O bootstrap is not thin little-endian 64-bit or cannot take the
            segment (see :func:`hatch_pbs.onefile.macho.insert_segment`); the written Mach-O file does not read back
            as written (trailer or signature).
        hatch_pbs.errors.SigningError: the Mach-O file cannot be signed.
        OSError: an input cannot be read or ``destination`` cannot be written (it is then left as it was).
    """
    encoded = _check_entry(entry)
    program = Path(bootstrap).read_bytes()  # a bootstrap is a few hundred KB
    if macho_kind(program[:8]) is not None:
        return _write_macho(program, Path(bootstrap), Path(payload_archive), encoded, Path(destination))
    with publishing_file(destination, mode=0o755) as temporary, open(temporary, "wb") as out:
        out.write(program)
        payload_offset = out.tell()
        digest, payload_size = _copy_payload(payload_archive, out)
        entry_offset = out.tell()
        out.write(encoded)
        out.write(struct.pack(TRAILER_FORMAT, MAGIC, FORMAT_VERSION, PAYLOAD_TAR_ZST, payload_offset, payload_size,
                              digest, entry_offset, len(encoded), 0))
        size = out.tell()
    return size


def _copy_payload(payload_archive: Path, out: BinaryIO) -> tuple[bytes, int]:
    """Copy ``payload_archive`` to ``out`` in 1 MiB blocks; return its sha256 digest and size (bytes)."""
    digest = hashlib.sha256()
    size = 0
    with open(payload_archive, "rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
            out.write(block)
            size += len(block)
    return digest.digest(), size


def _write_macho(program: bytes, bootstrap: Path, payload_archive: Path, encoded: bytes, destination: Path) -> int:
    """:func:`write_onefile` for the Mach-O bootstrap ``program`` (read from ``bootstrap``): insert the segment,
    fill it, sign the file, check it, publish it; return its size in bytes."""
    if not is_thin64_little(program):
        raise ValueError(f"{bootstrap}: a Mach-O bootstrap must be a thin little-endian 64-bit file")
    payload_size = os.stat(payload_archive).st_size
    content = payload_size + len(encoded) + TRAILER_SIZE
    segment_size = -(-content // SEGMENT_ALIGNMENT) * SEGMENT_ALIGNMENT
    head, linkedit = insert_segment(program, segment_size, bootstrap)
    payload_offset = len(head)
    entry_offset = payload_offset + payload_size
    with publishing_file(destination, mode=0o755) as temporary:
        with open(temporary, "wb") as out:
            out.write(head)
            digest, copied = _copy_payload(payload_archive, out)
            if copied != payload_size:
                raise OSError(f"{payload_archive} changed while it was read ({payload_size} then {copied} bytes)")
            out.write(encoded)
            out.write(b"\0" * (segment_size - content))
            out.write(struct.pack(TRAILER_FORMAT, MAGIC, FORMAT_VERSION, PAYLOAD_TAR_ZST, payload_offset,
                                  payload_size, digest, entry_offset, len(encoded), 0))
            out.write(linkedit)
        sign_adhoc(temporary, destination.name, in_place=True)
        expected = Trailer(payload_offset, payload_size, digest, entry_offset, len(encoded), encoded.decode("utf-8"))
        _check_macho(temporary, expected, destination)
        size = temporary.stat().st_size
    return size


def _check_macho(path: Path, expected: Trailer, destination: Path) -> None:
    """Read the written Mach-O onefile ``path`` back: its trailer must be ``expected`` and its signature valid.

    Raises:
        ValueError: it is not.
    """
    try:
        found = read_trailer(path)
    except ValueError as error:
        raise ValueError(f"the written onefile {destination} does not read back: {error}") from None
    if found != expected:
        raise ValueError(f"the written onefile {destination} does not read back: trailer {found}, wrote {expected}")
    problems = signature_problems(path)
    if problems:
        raise ValueError(f"the written onefile {destination} has an invalid signature: {'; '.join(problems)}")


def read_trailer(path: Path) -> Trailer:
    """The trailer (and entry) of the single-file executable ``path``: at the end of the file, or of the
    ``__HPBSONE`` segment's file range in a Mach-O file.

    Raises:
        ValueError: ``path`` has no valid trailer (wrong magic, version, payload format or bounds), or is a Mach-O
            file without a valid ``__HPBSONE`` segment.
        OSError: ``path`` cannot be read.
    """
    with open(path, "rb") as stream:
        start, trailer_end = _trailer_range(stream, Path(path))
        if trailer_end - start < TRAILER_SIZE:
            raise ValueError(f"{path}: too short for a onefile trailer")
        stream.seek(trailer_end - TRAILER_SIZE)
        fields = struct.unpack(TRAILER_FORMAT, stream.read(TRAILER_SIZE))
        magic, version, payload_format, payload_offset, payload_size, sha256, entry_offset, entry_size, _ = fields
        if magic != MAGIC:
            raise ValueError(f"{path}: no {MAGIC.decode()} trailer")
        if version != FORMAT_VERSION or payload_format != PAYLOAD_TAR_ZST:
            raise ValueError(f"{path}: unsupported onefile format {version}/payload format {payload_format}")
        end = trailer_end - TRAILER_SIZE
        if not (start <= payload_offset and payload_offset + payload_size <= entry_offset
                and entry_offset + entry_size <= end and 0 < entry_size <= ENTRY_SIZE_MAX):
            raise ValueError(f"{path}: corrupt onefile trailer")
        stream.seek(entry_offset)
        entry = stream.read(entry_size).decode("utf-8")
    return Trailer(payload_offset, payload_size, sha256, entry_offset, entry_size, entry)


def _trailer_range(stream: BinaryIO, path: Path) -> tuple[int, int]:
    """``(start, end)``: the file offsets (bytes) between which payload, entry and trailer lie, the trailer ending
    at ``end``: the whole file, or a Mach-O file's ``__HPBSONE`` segment.

    Raises:
        ValueError: a Mach-O file that is not thin little-endian 64-bit or lacks the segment.
    """
    size = stream.seek(0, 2)
    stream.seek(0)
    head = stream.read(HEADER_READ)
    if macho_kind(head[:8]) is None:
        return 0, size
    if len(head) >= 24 and is_thin64_little(head):
        sizeofcmds = struct.unpack_from("<I", head, 20)[0]
        if 32 + sizeofcmds > len(head):
            stream.seek(0)
            head = stream.read(32 + sizeofcmds)
    segment = find_segment(head, path)
    if segment is None:
        raise ValueError(f"{path}: a Mach-O file without a {SEGMENT_NAME} segment (no onefile payload)")
    if segment.offset + segment.size > size:
        raise ValueError(f"{path}: the {SEGMENT_NAME} segment runs past the end of the file")
    return segment.offset, segment.offset + segment.size


def _check_entry(entry: str) -> bytes:
    encoded = entry.encode("utf-8")
    parts = entry.replace("\\", "/").split("/")
    if (not entry or entry[0] in "/\\" or (len(entry) > 1 and entry[1] == ":") or len(encoded) > ENTRY_SIZE_MAX
            or "\0" in entry or any(part in ("", ".", "..") for part in parts)):
        raise ValueError(f"invalid onefile entry {entry!r}: a relative path without '.', '..' or empty parts")
    return encoded
