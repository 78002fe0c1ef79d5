"""Ad-hoc code signing of thin 64-bit Mach-O files, in pure Python.

Why: any edit of a Mach-O file (relocation rewrites install names and rpaths) invalidates its code signature, and
arm64 macOS kills unsigned or wrongly signed code at ``exec``/``dlopen`` (docs/pbs-facts.md). An *ad-hoc* signature
needs no certificate: it is a table of SHA-256 hashes of the file's pages, so it can be written on any build
machine, without Apple's ``codesign``.

Format (all signature structures are big-endian, whatever the Mach-O byte order). Sources: Apple's
``osfmk/kern/cs_blobs.h`` (xnu) and ``libsecurity_codesigning`` (``codedirectory.h``, ``signer.cpp``); zig's
linker ``src/link/MachO/CodeSignature.zig``; rcodesign (``apple-codesign``, ``macho_signing.rs``); sigtool
(thefloweringash/sigtool, the ad-hoc signer Nix uses on macOS after ``install_name_tool``):

- ``LC_CODE_SIGNATURE`` (``linkedit_data_command``: cmd ``0x1d``, cmdsize 16, ``dataoff``, ``datasize``) names the
  signature, which is the last thing in the file and the end of the ``__LINKEDIT`` segment. Everything before
  ``dataoff`` (header and load commands included) is covered by the page hashes, so the load command and
  ``__LINKEDIT``'s sizes are final before hashing.
- The signature is a SuperBlob ``CSMAGIC_EMBEDDED_SIGNATURE`` (``0xfade0cc0``): ``magic, length, count`` then
  ``count`` index entries ``(slot type, offset from the SuperBlob start)``, then the blobs. Every blob starts
  with ``magic, length``.
- The CodeDirectory (``CSMAGIC_CODEDIRECTORY`` ``0xfade0c02``, slot ``CSSLOT_CODEDIRECTORY`` 0), version
  ``0x20400`` (``CS_SUPPORTSEXECSEG``), has an 88-byte fixed part (see :data:`_CD_HEADER`), then the identifier
  (NUL-terminated), then ``nSpecialSlots`` hashes stored in *reverse* slot order (slot ``-n`` first, slot ``-1``
  just before ``hashOffset``), then ``nCodeSlots`` page hashes starting at ``hashOffset``. Page ``i`` is the SHA-256
  of file bytes ``[i * pageSize, min((i + 1) * pageSize, codeLimit))``; ``codeLimit`` is ``dataoff``.
  ``pageSize`` is stored as log2. ``execSegBase``/``execSegLimit`` are the ``__TEXT`` segment's file offset and
  size; ``execSegFlags`` is ``CS_EXECSEG_MAIN_BINARY`` (1) for ``MH_EXECUTE`` files, else 0.
- ``flags``: ``CS_ADHOC`` (``0x2``); linkers add ``CS_LINKER_SIGNED`` (``0x20000``), which marks a signature
  that any later tool may replace.

Two styles are written:

``"codesign"`` (the default) — what ``codesign -s -`` writes for a plain Mach-O file (and rcodesign and sigtool,
which are checked against it): CodeDirectory with ``flags = CS_ADHOC``, 4096-byte pages, two special slots (slot
-1, the Info.plist, unbound: zeros; slot -2: the hash of the Requirements blob); an empty Requirements blob
(``CSMAGIC_REQUIREMENTS`` ``0xfade0c01``, ``length 12, count 0``, slot 2); an empty CMS BlobWrapper
(``CSMAGIC_BLOBWRAPPER`` ``0xfade0b01``, length 8, slot ``CSSLOT_SIGNATURESLOT`` ``0x10000``): "no signer",
which is what makes it ad-hoc. ``datasize`` is the SuperBlob length rounded up to 16.

``"linker"`` — exactly what zig's linker writes (``CodeSignature.zig``, ``writeAdhocSignature``): CodeDirectory
only, ``flags = CS_ADHOC | CS_LINKER_SIGNED``, no special slots, page size = the architecture's segment page size
(16384 for arm64, 4096 otherwise), ``datasize`` rounded up to 8. Used to check this module against zig's output.
(Apple's ld64 writes the same shape with 4096-byte pages and ``datasize`` rounded up to 16, as seen in the arm64
slice of a Rust-built PyPI wheel.)

The signature is placed where the old one was (``dataoff`` kept, the file truncated there) or, for a file without
one, after the end of ``__LINKEDIT`` rounded up to 16 with a new ``LC_CODE_SIGNATURE`` appended to the load
commands (it must fit in the header padding before the first section). ``__LINKEDIT``'s ``filesize`` (and
``vmsize``, if it must grow) are adjusted to end with the signature.

Out of scope: universal ("fat", ``0xcafebabe``) files, 32-bit Mach-O, files of 4 GiB or more (``codeLimit64``),
entitlements and hardened-runtime flags of a previous signature (not carried over), SHA-1 code directories (only
needed for macOS older than 10.11.4).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from hatch_pbs.atomic import publishing_file
from hatch_pbs.errors import SigningError

# --- Mach-O (mach-o/loader.h, mach-o/fat.h) -----------------------------------------------------------------------
MH_MAGIC_64 = 0xFEEDFACF
MH_MAGIC = 0xFEEDFACE
FAT_MAGIC = 0xCAFEBABE
FAT_MAGIC_64 = 0xCAFEBABF
MH_EXECUTE = 0x2
LC_SEGMENT_64 = 0x19
LC_SYMTAB = 0x2
LC_DYSYMTAB = 0xB
LC_CODE_SIGNATURE = 0x1D
LC_DYLD_INFO = 0x22
LC_DYLD_INFO_ONLY = 0x80000022
#: Load commands laid out as ``linkedit_data_command`` (cmd, cmdsize, dataoff, datasize) whose data lives in
#: ``__LINKEDIT``: segment split info, function starts, data in code, dylib code-sign DRs, linker optimization
#: hints, exports trie, chained fixups, atom info, function variants and their fixups.
LINKEDIT_DATA_COMMANDS = (0x1E, 0x26, 0x29, 0x2B, 0x2E, 0x80000033, 0x80000034, 0x36, 0x37, 0x38)
S_ZEROFILL_TYPES = (0x1, 0xC, 0x12)  # S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL: no file content
CPU_TYPE_ARM64 = 0x0100000C
HEADER_64 = 32
SEGMENT_64 = 72
SECTION_64 = 80

# --- Code signing (xnu osfmk/kern/cs_blobs.h) ---------------------------------------------------------------------
CSMAGIC_REQUIREMENTS = 0xFADE0C01
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_BLOBWRAPPER = 0xFADE0B01
CSSLOT_CODEDIRECTORY = 0
CSSLOT_INFOSLOT = 1
CSSLOT_REQUIREMENTS = 2
CSSLOT_SIGNATURESLOT = 0x10000
CS_SUPPORTSEXECSEG = 0x20400
CS_ADHOC = 0x2
CS_LINKER_SIGNED = 0x20000
CS_HASHTYPE_SHA256 = 2
CS_EXECSEG_MAIN_BINARY = 0x1
SHA256_SIZE = 32

_CD_HEADER = struct.Struct(">9I4B4I4Q")
"""CodeDirectory fixed part, version 0x20400 (88 bytes): magic, length, version, flags, hashOffset, identOffset,
nSpecialSlots, nCodeSlots, codeLimit (u32 each); hashSize, hashType, platform, pageSize (log2) (u8 each); spare2,
scatterOffset, teamOffset, spare3 (u32 each); codeLimit64, execSegBase, execSegLimit, execSegFlags (u64 each)."""

#: What the parsing functions read: a file's bytes, or a buffer being signed in place.
_Bytes = bytes | bytearray

STYLES = ("codesign", "linker")
DEFAULT_PAGE_SIZE = 4096


@dataclass(frozen=True, kw_only=True)
class CodeDirectory:
    """A parsed CodeDirectory blob (field names follow ``CS_CodeDirectory`` in cs_blobs.h).

    Attributes:
        page_size: in bytes (the blob stores its log2).
        special_hashes: slot number (1 = Info.plist, 2 = requirements, ...) -> hash, for slots 1..n_special_slots.
        code_hashes: one hash per page, in file order.
        raw: the whole blob as stored.
        offset: where the blob starts in the file.
    """

    version: int
    flags: int
    hash_offset: int
    ident_offset: int
    n_special_slots: int
    n_code_slots: int
    code_limit: int
    hash_size: int
    hash_type: int
    platform: int
    page_size: int
    scatter_offset: int
    team_offset: int
    code_limit64: int
    exec_seg_base: int
    exec_seg_limit: int
    exec_seg_flags: int
    identifier: str
    special_hashes: dict[int, bytes]
    code_hashes: tuple[bytes, ...]
    raw: bytes
    offset: int

    @property
    def is_adhoc(self) -> bool:
        return bool(self.flags & CS_ADHOC)

    @property
    def is_linker_signed(self) -> bool:
        return bool(self.flags & CS_LINKER_SIGNED)


@dataclass(kw_only=True)
class _Layout:
    """What signing needs from a thin 64-bit Mach-O header."""

    endian: str  # "<" or ">"
    cputype: int
    filetype: int
    ncmds: int
    sizeofcmds: int
    text: tuple[int, int]  # __TEXT (fileoff, filesize)
    linkedit_offset: int  # where __LINKEDIT's segment_command_64 starts in the file
    linkedit: tuple[int, int, int, int]  # vmaddr, vmsize, fileoff, filesize
    signature_command: int | None  # offset of LC_CODE_SIGNATURE in the file
    signature: tuple[int, int] | None  # dataoff, datasize
    payload_end: int  # end of the last __LINKEDIT payload other than the signature
    first_content: int  # lowest file offset of segment/section content after the header
    vm_starts: list[int]  # vmaddr of every other segment


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _check_thin_64(data: _Bytes, path: Path) -> str:
    """The struct byte-order prefix of a thin 64-bit Mach-O file, or :class:`SigningError`."""
    if len(data) < HEADER_64:
        raise SigningError(f"cannot sign {path}: not a Mach-O file (too short)")
    big, little = struct.unpack(">I", data[:4])[0], struct.unpack("<I", data[:4])[0]
    if big in (FAT_MAGIC, FAT_MAGIC_64):
        raise SigningError(f"cannot sign {path}: it is a universal (fat) Mach-O file; universal2 is out of scope "
                           "(use a runtime and wheels built for one architecture)")
    if MH_MAGIC in (big, little):
        raise SigningError(f"cannot sign {path}: 32-bit Mach-O files are not supported")
    if little == MH_MAGIC_64:
        return "<"
    if big == MH_MAGIC_64:
        return ">"
    raise SigningError(f"cannot sign {path}: not a Mach-O file")


def _parse_layout(data: _Bytes, path: Path) -> _Layout:
    """The layout of the thin 64-bit Mach-O file ``data`` (``<mach-o/loader.h>``).

    Raises:
        SigningError: it is not a thin 64-bit Mach-O file, its load commands are malformed, or it lacks ``__TEXT``
            or ``__LINKEDIT``.
    """
    endian = _check_thin_64(data, path)
    _, cputype, _, filetype, ncmds, sizeofcmds, _, _ = struct.unpack_from(endian + "8I", data, 0)
    if HEADER_64 + sizeofcmds > len(data):
        raise SigningError(f"cannot sign {path}: load commands run past the end of the file")
    text = linkedit = signature = None
    linkedit_offset = 0
    signature_command = None
    payload_end = 0
    first_content = len(data)
    vm_starts: list[int] = []
    offset = HEADER_64
    for _ in range(ncmds):
        if offset + 8 > HEADER_64 + sizeofcmds:
            raise SigningError(f"cannot sign {path}: malformed load commands")
        cmd, cmdsize = struct.unpack_from(endian + "2I", data, offset)
        if cmdsize < 8 or offset + cmdsize > HEADER_64 + sizeofcmds:
            raise SigningError(f"cannot sign {path}: malformed load command {cmd:#x}")
        if cmd == LC_SEGMENT_64:
            name = data[offset + 8:offset + 24].rstrip(b"\0")
            vmaddr, vmsize, fileoff, filesize, _, _, nsects, _ = struct.unpack_from(endian + "4Q4I", data,
                                                                                  offset + 24)
            if name == b"__LINKEDIT":
                linkedit, linkedit_offset = (vmaddr, vmsize, fileoff, filesize), offset
            else:
                vm_starts.append(vmaddr)
                if name == b"__TEXT":
                    text = (fileoff, filesize)
                if fileoff > 0 and filesize > 0:
                    first_content = min(first_content, fileoff)
            first_content = min(first_content, _first_section_content(data, endian, offset, nsects))
        elif cmd == LC_CODE_SIGNATURE:
            signature_command = offset
            signature = struct.unpack_from(endian + "2I", data, offset + 8)
        else:
            payload_end = max(payload_end, _linkedit_payload_end(data, endian, offset, cmd))
        offset += cmdsize
    if linkedit is None:
        raise SigningError(f"cannot sign {path}: it has no __LINKEDIT segment")
    if text is None:
        raise SigningError(f"cannot sign {path}: it has no __TEXT segment")
    return _Layout(endian=endian, cputype=cputype, filetype=filetype, ncmds=ncmds, sizeofcmds=sizeofcmds, text=text,
                   linkedit_offset=linkedit_offset, linkedit=linkedit, signature_command=signature_command,
                   signature=signature, payload_end=payload_end, first_content=first_content, vm_starts=vm_starts)


def _first_section_content(data: _Bytes, endian: str, offset: int, nsects: int) -> int:
    """The lowest file offset of the content of the ``nsects`` sections of the ``segment_command_64`` at
    ``offset`` (zero-fill sections have none), or ``len(data)`` when none has content."""
    first = len(data)
    for index in range(nsects):
        section = offset + SEGMENT_64 + index * SECTION_64
        size, file_offset = struct.unpack_from(endian + "QI", data, section + 40)
        flags = struct.unpack_from(endian + "I", data, section + 64)[0]
        if file_offset > 0 and size > 0 and (flags & 0xFF) not in S_ZEROFILL_TYPES:
            first = min(first, file_offset)
    return first


def _linkedit_payload_end(data: _Bytes, endian: str, offset: int, cmd: int) -> int:
    """Where the ``__LINKEDIT`` payloads the load command ``cmd`` at ``offset`` names end (file offset, bytes;
    ``0`` for a command that names none): symbol and string tables, dynamic symbol tables, dyld information and
    ``linkedit_data_command`` blobs (``<mach-o/loader.h>``)."""
    end = 0
    if cmd in LINKEDIT_DATA_COMMANDS:
        dataoff, datasize = struct.unpack_from(endian + "2I", data, offset + 8)
        end = dataoff + datasize
    elif cmd == LC_SYMTAB:
        symoff, nsyms, stroff, strsize = struct.unpack_from(endian + "4I", data, offset + 8)
        end = max(symoff + 16 * nsyms, stroff + strsize)
    elif cmd == LC_DYSYMTAB:
        fields = struct.unpack_from(endian + "18I", data, offset + 8)
        # (offset, count, entry size): tocoff, modtaboff, extrefsymoff, indirectsymoff, extreloff, locreloff
        for table, count, size in ((6, 7, 8), (8, 9, 56), (10, 11, 4), (12, 13, 4), (14, 15, 8), (16, 17, 8)):
            if fields[count]:
                end = max(end, fields[table] + fields[count] * size)
    elif cmd in (LC_DYLD_INFO, LC_DYLD_INFO_ONLY):
        fields = struct.unpack_from(endian + "10I", data, offset + 8)
        for index in range(0, 10, 2):
            if fields[index + 1]:
                end = max(end, fields[index] + fields[index + 1])
    return end


def _code_directory(pages: bytes | memoryview, code_limit: int, identifier: str, page_size: int, flags: int,
                    special: list[bytes], exec_seg: tuple[int, int, int]) -> bytes:
    """A CodeDirectory blob (version 0x20400) over ``pages[:code_limit]``; ``special[i]`` is slot ``i + 1``."""
    ident = identifier.encode("utf-8") + b"\0"
    hashes = [hashlib.sha256(pages[start:min(start + page_size, code_limit)]).digest()
              for start in range(0, code_limit, page_size)]
    ident_offset = _CD_HEADER.size
    hash_offset = ident_offset + len(ident) + SHA256_SIZE * len(special)
    length = hash_offset + SHA256_SIZE * len(hashes)
    header = _CD_HEADER.pack(
        CSMAGIC_CODEDIRECTORY, length, CS_SUPPORTSEXECSEG, flags, hash_offset, ident_offset, len(special),
        len(hashes), code_limit, SHA256_SIZE, CS_HASHTYPE_SHA256, 0, page_size.bit_length() - 1,
        0, 0, 0, 0, 0, *exec_seg)
    return header + ident + b"".join(reversed(special)) + b"".join(hashes)


def _code_directory_size(code_limit: int, identifier: str, page_size: int, n_special: int) -> int:
    pages = -(-code_limit // page_size)
    return _CD_HEADER.size + len(identifier.encode("utf-8")) + 1 + SHA256_SIZE * (n_special + pages)


def _superblob(blobs: list[tuple[int, bytes]]) -> bytes:
    index = b""
    offset = 12 + 8 * len(blobs)
    for slot, blob in blobs:
        index += struct.pack(">2I", slot, offset)
        offset += len(blob)
    return struct.pack(">3I", CSMAGIC_EMBEDDED_SIGNATURE, offset, len(blobs)) + index + b"".join(
        blob for _, blob in blobs)


EMPTY_REQUIREMENTS = struct.pack(">3I", CSMAGIC_REQUIREMENTS, 12, 0)
EMPTY_BLOB_WRAPPER = struct.pack(">2I", CSMAGIC_BLOBWRAPPER, 8)


def signed_bytes(data: bytes, identifier: str, *, style: str = "codesign", path: Path | None = None) -> bytes:
    """``data`` (a thin 64-bit Mach-O file) with a fresh ad-hoc signature; see the module docstring.

    Raises:
        SigningError: the file is not a thin 64-bit Mach-O file, or cannot take a signature.
    """
    buffer = bytearray(data)
    _sign(buffer, identifier, style, path if path is not None else Path(identifier))
    return bytes(buffer)


def _sign(buffer: bytearray, identifier: str, style: str, where: Path) -> int:
    """Give the thin 64-bit Mach-O file ``buffer`` (changed in place, one copy of the file in memory) a fresh
    ad-hoc signature; see the module docstring.

    Returns:
        The signature's file offset (bytes): ``buffer`` is unchanged from there back to its header.

    Raises:
        SigningError: the file is not a thin 64-bit Mach-O file, or cannot take a signature.
    """
    if style not in STYLES:
        raise ValueError(f"unknown signature style {style!r}; expected one of {', '.join(STYLES)}")
    layout = _parse_layout(buffer, where)
    signature_offset = _signature_room(layout, buffer, where)
    segment_page = 16384 if layout.cputype == CPU_TYPE_ARM64 else 4096
    page_size, flags, alignment, specials, others = _style_parameters(style, segment_page)
    size = (12 + 8 * (1 + len(others)) + _code_directory_size(signature_offset, identifier, page_size, len(specials))
            + sum(len(blob) for _, blob in others))
    datasize = _align(size, alignment)

    # Sizes are final before hashing: the header is part of the first page.
    command = layout.signature_command
    if command is None:  # _parse_layout found it with the signature, or _signature_room added it
        raise SigningError(f"cannot sign {where}: it has no LC_CODE_SIGNATURE command")
    struct.pack_into(layout.endian + "2I", buffer, command + 8, signature_offset, datasize)
    _grow_linkedit(layout, buffer, signature_offset + datasize, segment_page, where)

    exec_seg = (layout.text[0], layout.text[1], CS_EXECSEG_MAIN_BINARY if layout.filetype == MH_EXECUTE else 0)
    with memoryview(buffer) as pages:  # released before the buffer grows
        directory = _code_directory(pages, signature_offset, identifier, page_size, flags, specials, exec_seg)
    blobs = [(CSSLOT_CODEDIRECTORY, directory), *others]
    superblob = _superblob(blobs)
    assert len(superblob) == size, (len(superblob), size)
    buffer.extend(superblob + b"\0" * (datasize - size))
    return signature_offset


def _signature_room(layout: _Layout, buffer: bytearray, where: Path) -> int:
    """Make room for the signature in ``buffer`` (the file's bytes, changed in place): drop the old signature, or
    add an ``LC_CODE_SIGNATURE`` command (setting ``layout.signature_command``) and pad ``__LINKEDIT`` to 16 bytes.

    Returns:
        The signature's file offset (bytes).

    Raises:
        SigningError: the old signature is not at the end of ``__LINKEDIT``, bytes follow ``__LINKEDIT``, the header
            has no room for the command, or the file would reach 4 GiB.
    """
    _, _, fileoff, filesize = layout.linkedit
    length = len(buffer)
    if layout.signature is not None:
        dataoff, datasize = layout.signature
        if dataoff < layout.payload_end or dataoff + datasize > length or dataoff < fileoff:
            raise SigningError(f"cannot sign {where}: its code signature is not at the end of __LINKEDIT")
        signature_offset = dataoff
        del buffer[dataoff:]
    else:
        linkedit_end = fileoff + filesize
        if length != linkedit_end:
            raise SigningError(f"cannot sign {where}: {length - linkedit_end} bytes follow __LINKEDIT "
                               f"(the segment ends at {linkedit_end}, the file at {length})")
        signature_offset = _align(linkedit_end, 16)
        command = HEADER_64 + layout.sizeofcmds
        if command + 16 > layout.first_content:
            raise SigningError(f"cannot sign {where}: no room for LC_CODE_SIGNATURE in the header padding "
                               f"({layout.first_content - command} bytes free, 16 needed)")
        buffer[command:command + 16] = struct.pack(layout.endian + "4I", LC_CODE_SIGNATURE, 16, 0, 0)
        struct.pack_into(layout.endian + "2I", buffer, 16, layout.ncmds + 1, layout.sizeofcmds + 16)
        layout.signature_command = command
        buffer.extend(b"\0" * (signature_offset - len(buffer)))
    if signature_offset >= 1 << 32:
        raise SigningError(f"cannot sign {where}: files of 4 GiB or more are not supported")
    return signature_offset


def _style_parameters(style: str, segment_page: int) -> tuple[int, int, int, list[bytes], list[tuple[int, bytes]]]:
    """``(page size, code directory flags, signature alignment, special slot hashes, other blobs)`` of ``style``:
    ``codesign``'s (4 KiB pages, the empty requirements and CMS wrapper) or the linker's (segment pages, none)."""
    if style == "codesign":
        # Slot -1 (Info.plist) unbound, slot -2 the empty Requirements blob; then the empty CMS wrapper.
        specials = [b"\0" * SHA256_SIZE, hashlib.sha256(EMPTY_REQUIREMENTS).digest()]
        others = [(CSSLOT_REQUIREMENTS, EMPTY_REQUIREMENTS), (CSSLOT_SIGNATURESLOT, EMPTY_BLOB_WRAPPER)]
        return DEFAULT_PAGE_SIZE, CS_ADHOC, 16, specials, others
    return segment_page, CS_ADHOC | CS_LINKER_SIGNED, 8, [], []


def _grow_linkedit(layout: _Layout, buffer: bytearray, end: int, segment_page: int, where: Path) -> None:
    """Make ``__LINKEDIT`` end at the file offset ``end`` (bytes) in ``buffer``: its file size, and its memory size
    rounded up to ``segment_page`` when it grows.

    Raises:
        SigningError: another segment follows ``__LINKEDIT`` in memory, so it cannot grow.
    """
    vmaddr, vmsize, fileoff, _ = layout.linkedit
    new_filesize = end - fileoff
    new_vmsize = vmsize
    if new_filesize > vmsize:
        new_vmsize = _align(new_filesize, segment_page)
        if any(vmaddr + vmsize <= start < vmaddr + new_vmsize for start in layout.vm_starts):
            raise SigningError(f"cannot sign {where}: __LINKEDIT cannot grow in memory (another segment follows)")
    # segment_command_64: vmaddr at +24, vmsize at +32, fileoff at +40, filesize at +48.
    struct.pack_into(layout.endian + "Q", buffer, layout.linkedit_offset + 32, new_vmsize)
    struct.pack_into(layout.endian + "Q", buffer, layout.linkedit_offset + 48, new_filesize)


def sign_adhoc(path: Path, identifier: str | None = None, *, style: str = "codesign", in_place: bool = False) -> None:
    """Replace (or add) the ad-hoc code signature of the thin 64-bit Mach-O file ``path``. The file is read into
    memory once (one copy of it).

    Args:
        path: the file; rewritten atomically (temporary file + rename), keeping its mode.
        identifier: the signing identifier; default: the file's name (as ``codesign`` and linkers use).
        style: ``"codesign"`` (what ``codesign -s -`` writes) or ``"linker"`` (what zig's linker writes).
        in_place: write the changed bytes (header, signature) into ``path`` itself, the same inode, not atomically:
            for a temporary file its writer publishes afterwards (:func:`hatch_pbs.atomic.publishing_file`).

    Raises:
        SigningError: the file is universal (fat), 32-bit, not Mach-O, has no room for a signature, or cannot be
            read or written.
    """
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            buffer = bytearray(os.fstat(stream.fileno()).st_size)
            if stream.readinto(buffer) != len(buffer):
                raise OSError(f"short read of {len(buffer)} bytes")
    except OSError as error:
        raise SigningError(f"cannot sign {path}: {error}") from None
    size = len(buffer)
    signature_offset = _sign(buffer, identifier if identifier is not None else path.name, style, path)
    try:
        if in_place:
            _write_changes(path, buffer, min(size, signature_offset))
        else:
            with publishing_file(path, mode=path.stat().st_mode & 0o7777) as temporary, \
                    open(temporary, "wb") as stream:
                stream.write(buffer)
    except OSError as error:
        raise SigningError(f"cannot sign {path}: {error}") from None


def _write_changes(path: Path, buffer: bytearray, tail: int) -> None:
    """Write what signing changed into ``path`` in place: the header and load commands, and ``buffer`` from the
    file offset ``tail`` (bytes) on; then truncate ``path`` to ``len(buffer)``."""
    endian = _check_thin_64(buffer, path)
    header_end = HEADER_64 + struct.unpack_from(endian + "I", buffer, 20)[0]
    with open(path, "r+b") as stream, memoryview(buffer) as view:
        stream.write(view[:header_end])
        stream.seek(tail)
        stream.write(view[tail:])
        stream.truncate()


def _signature_blob(data: bytes, path: Path) -> tuple[bytes, int]:
    """The SuperBlob of ``data`` and its file offset."""
    layout = _parse_layout(data, path)
    if layout.signature is None:
        raise SigningError(f"{path} has no code signature")
    dataoff, datasize = layout.signature
    blob = data[dataoff:dataoff + datasize]
    if len(blob) < 12 or struct.unpack_from(">I", blob)[0] != CSMAGIC_EMBEDDED_SIGNATURE:
        raise SigningError(f"{path}: the code signature is not an embedded-signature SuperBlob")
    return blob, dataoff


def read_blobs(path: Path) -> dict[int, bytes]:
    """The blobs of ``path``'s embedded signature by slot type (0 = CodeDirectory, 2 = requirements, ...).

    Raises:
        SigningError: not a thin 64-bit Mach-O file, no signature, or a malformed one.
    """
    path = Path(path)
    blob, _ = _signature_blob(path.read_bytes(), path)
    return {slot: blob[offset:offset + length] for slot, offset, length in _index(blob, path)}


def _index(blob: bytes, path: Path) -> list[tuple[int, int, int]]:
    _, length, count = struct.unpack_from(">3I", blob)
    if length > len(blob) or 12 + 8 * count > length:
        raise SigningError(f"{path}: malformed code signature SuperBlob")
    entries = []
    for index in range(count):
        slot, offset = struct.unpack_from(">2I", blob, 12 + 8 * index)
        if offset + 8 > length:
            raise SigningError(f"{path}: malformed code signature SuperBlob")
        blob_length = struct.unpack_from(">I", blob, offset + 4)[0]
        if offset + blob_length > length:
            raise SigningError(f"{path}: malformed code signature blob in slot {slot:#x}")
        entries.append((slot, offset, blob_length))
    return entries


def read_code_directory(path: Path) -> CodeDirectory:
    """Parse the CodeDirectory of ``path``'s embedded signature (read-only; for tests and audits).

    Raises:
        SigningError: not a thin 64-bit Mach-O file, no signature, no SHA-256 CodeDirectory, or a malformed one.
    """
    path = Path(path)
    blob, dataoff = _signature_blob(path.read_bytes(), path)
    for slot, offset, length in _index(blob, path):
        if slot != CSSLOT_CODEDIRECTORY:
            continue
        raw = blob[offset:offset + length]
        if length < _CD_HEADER.size or struct.unpack_from(">I", raw)[0] != CSMAGIC_CODEDIRECTORY:
            raise SigningError(f"{path}: the CodeDirectory slot holds no CodeDirectory")
        (_, _, version, flags, hash_offset, ident_offset, n_special, n_code, code_limit, hash_size, hash_type,
         platform, page_shift, _, scatter_offset, team_offset, _, code_limit64, exec_base, exec_limit,
         exec_flags) = _CD_HEADER.unpack_from(raw)
        if hash_offset + n_code * hash_size > length or hash_offset < n_special * hash_size:
            raise SigningError(f"{path}: the CodeDirectory's hash slots run past its end")
        identifier = raw[ident_offset:raw.index(b"\0", ident_offset)].decode("utf-8", errors="replace")
        special = {slot_number: raw[hash_offset - slot_number * hash_size:
                                    hash_offset - (slot_number - 1) * hash_size]
                   for slot_number in range(1, n_special + 1)}
        code = tuple(raw[hash_offset + i * hash_size:hash_offset + (i + 1) * hash_size] for i in range(n_code))
        return CodeDirectory(
            version=version, flags=flags, hash_offset=hash_offset, ident_offset=ident_offset,
            n_special_slots=n_special, n_code_slots=n_code, code_limit=code_limit, hash_size=hash_size,
            hash_type=hash_type, platform=platform, page_size=1 << page_shift if page_shift else 0,
            scatter_offset=scatter_offset, team_offset=team_offset, code_limit64=code_limit64,
            exec_seg_base=exec_base, exec_seg_limit=exec_limit, exec_seg_flags=exec_flags, identifier=identifier,
            special_hashes=special, code_hashes=code, raw=raw, offset=dataoff + offset)
    raise SigningError(f"{path}: the code signature has no CodeDirectory")


def signature_problems(path: Path) -> list[str]:
    """Why ``path``'s ad-hoc signature would be rejected (empty: the SHA-256 page hashes and the special slots of
    the blobs present match the file). Universal, 32-bit or unsigned files give one problem each."""
    path = Path(path)
    try:
        directory = read_code_directory(path)
        blobs = read_blobs(path)
    except SigningError as error:
        return [str(error)]
    data = path.read_bytes()
    problems = []
    if directory.hash_type != CS_HASHTYPE_SHA256 or directory.hash_size != SHA256_SIZE:
        return [f"{path}: CodeDirectory hash type {directory.hash_type} is not SHA-256"]
    if directory.code_limit != _parse_layout(data, path).signature[0]:  # type: ignore[index]
        problems.append(f"{path}: codeLimit {directory.code_limit} is not the signature offset")
    size = directory.page_size
    expected = [hashlib.sha256(data[start:min(start + size, directory.code_limit)]).digest()
                for start in range(0, directory.code_limit, size)] if size else []
    if len(expected) != directory.n_code_slots:
        problems.append(f"{path}: {directory.n_code_slots} page hashes for {len(expected)} pages")
    problems += [f"{path}: page {index} hash mismatch" for index, (found, wanted)
                 in enumerate(zip(directory.code_hashes, expected, strict=False)) if found != wanted]
    for slot, digest in directory.special_hashes.items():
        if slot in blobs and hashlib.sha256(blobs[slot]).digest() != digest:
            problems.append(f"{path}: special slot {slot} hash mismatch")
    return problems
