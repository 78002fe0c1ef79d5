"""Single-file executables for macOS: the payload as the file range of its own Mach-O segment ``__HPBSONE``.

An ad-hoc code signature covers every byte before it and must stay the last thing in the file (the end of
``__LINKEDIT``), so nothing can be appended to a Mach-O bootstrap. :func:`insert_segment` instead makes room for
a new segment just before ``__LINKEDIT``, in the file and in memory::

    [header + load commands]   + LC_SEGMENT_64 "__HPBSONE" (152 bytes, in the header padding, before __LINKEDIT's)
    [__TEXT, __DATA_CONST, __DATA ...]            unchanged
    [__HPBSONE]  fileoff = __LINKEDIT's old fileoff, filesize = vmsize = a multiple of SEGMENT_ALIGNMENT;
                 vmaddr = __LINKEDIT's old vmaddr; initprot = maxprot = VM_PROT_READ;
                 one section "__payload" covering the whole range; the caller fills it
    [__LINKEDIT] moved by the segment's size (fileoff and vmaddr), and so is every file offset into it: symbol and
                 string tables, dynamic symbol tables, dyld information, function starts, data in code, exports
                 trie, the code signature (which the caller then replaces)

Segment indices of the segments before ``__LINKEDIT`` do not change, so the dyld rebase and bind opcodes (which
name segments by index) stay valid. Chained fixups (``LC_DYLD_CHAINED_FIXUPS``) count the segments and are refused,
as are the rare commands with other offsets (``LC_TWOLEVEL_HINTS``, ``LC_NOTE``); the bootstraps zig links use
``LC_DYLD_INFO_ONLY``. Thin little-endian 64-bit files only (arm64 and x86_64 macOS).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from hatch_pbs.binaries.codesign import (
    HEADER_64,
    LC_CODE_SIGNATURE,
    LC_DYLD_INFO,
    LC_DYLD_INFO_ONLY,
    LC_DYSYMTAB,
    LC_SEGMENT_64,
    LC_SYMTAB,
    LINKEDIT_DATA_COMMANDS,
    MH_MAGIC_64,
    S_ZEROFILL_TYPES,
    SECTION_64,
    SEGMENT_64,
)

#: Name of the segment holding payload, entry and trailer.
SEGMENT_NAME = "__HPBSONE"
#: Name of its one section.
SECTION_NAME = "__payload"
#: The segment's file and memory size is a multiple of this (bytes): arm64's page size, a multiple of x86_64's.
SEGMENT_ALIGNMENT = 16384
VM_PROT_READ = 0x1
CPU_TYPE_ARM64 = 0x0100000C
#: ``LC_DYLD_CHAINED_FIXUPS``, ``LC_TWOLEVEL_HINTS``, ``LC_NOTE``: see the module docstring.
UNSUPPORTED_COMMANDS = {0x80000034: "LC_DYLD_CHAINED_FIXUPS", 0x16: "LC_TWOLEVEL_HINTS", 0x31: "LC_NOTE"}
SEGMENT_COMMAND_SIZE = SEGMENT_64 + SECTION_64
#: Byte offsets of the file-offset fields in LC_SYMTAB, LC_DYSYMTAB and LC_DYLD_INFO(_ONLY) commands.
_OFFSET_FIELDS = {
    LC_SYMTAB: (8, 16),  # symoff, stroff
    LC_DYSYMTAB: (32, 40, 48, 56, 64, 72),  # tocoff, modtaboff, extrefsymoff, indirectsymoff, extreloff, locreloff
    LC_DYLD_INFO: (8, 16, 24, 32, 40),  # rebase, bind, weak bind, lazy bind, export
    LC_DYLD_INFO_ONLY: (8, 16, 24, 32, 40),
}


@dataclass(frozen=True)
class SegmentRange:
    """A segment's file range: ``offset`` from the start of the file and ``size``, in bytes."""

    offset: int
    size: int


def is_thin64_little(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts a thin little-endian 64-bit Mach-O file."""
    return len(head) >= 4 and struct.unpack_from("<I", head)[0] == MH_MAGIC_64


def _commands(header: bytes, path: Path) -> list[tuple[int, int, int]]:
    """``(offset, cmd, cmdsize)`` of every load command of the Mach-O ``header`` (its first bytes, at least the
    header and load commands).

    Raises:
        ValueError: not a thin little-endian 64-bit Mach-O file, or malformed load commands.
    """
    if len(header) < HEADER_64 or not is_thin64_little(header):
        raise ValueError(f"{path}: not a thin little-endian 64-bit Mach-O file")
    ncmds, sizeofcmds = struct.unpack_from("<2I", header, 16)
    end = HEADER_64 + sizeofcmds
    if end > len(header):
        raise ValueError(f"{path}: the Mach-O load commands run past the end of the file")
    commands = []
    offset = HEADER_64
    for _ in range(ncmds):
        if offset + 8 > end:
            raise ValueError(f"{path}: malformed Mach-O load commands")
        cmd, cmdsize = struct.unpack_from("<2I", header, offset)
        if cmdsize < 8 or offset + cmdsize > end or (cmd == LC_SEGMENT_64 and cmdsize < SEGMENT_64):
            raise ValueError(f"{path}: malformed Mach-O load command {cmd:#x}")
        commands.append((offset, cmd, cmdsize))
        offset += cmdsize
    return commands


def _segment_name(header: bytes | bytearray, offset: int) -> str:
    return bytes(header[offset + 8:offset + 24]).rstrip(b"\0").decode("ascii", errors="replace")


def find_segment(header: bytes, path: Path, name: str = SEGMENT_NAME) -> SegmentRange | None:
    """The file range of the segment ``name`` of the Mach-O file whose first bytes (header and load commands at
    least) are ``header``; ``None`` if it has no such segment.

    Raises:
        ValueError: not a thin little-endian 64-bit Mach-O file, or malformed load commands.
    """
    for offset, cmd, _ in _commands(header, path):
        if cmd == LC_SEGMENT_64 and _segment_name(header, offset) == name:
            fileoff, filesize = struct.unpack_from("<2Q", header, offset + 40)
            return SegmentRange(fileoff, filesize)
    return None


def insert_segment(program: bytes, segment_size: int, path: Path) -> tuple[bytes, bytes]:
    """Make room for a :data:`SEGMENT_NAME` segment of ``segment_size`` bytes (a multiple of
    :data:`SEGMENT_ALIGNMENT`) before ``__LINKEDIT`` in the Mach-O executable ``program`` (see the module docstring).

    Returns:
        ``(head, linkedit)``: the new file is ``head`` (the header with the new load command and shifted offsets,
        then everything up to ``__LINKEDIT``; its length is the segment's file offset), then the segment's
        ``segment_size`` bytes, then ``linkedit`` (``__LINKEDIT`` as it was, old signature included).

    Raises:
        ValueError: ``program`` is not a thin little-endian 64-bit Mach-O file, already has the segment, uses chained
            fixups or another unsupported command, has bytes after ``__LINKEDIT``, a misaligned ``__LINKEDIT``, or
            no room in the header padding for the load command.
    """
    if segment_size <= 0 or segment_size % SEGMENT_ALIGNMENT:
        raise ValueError(f"segment size {segment_size} is not a positive multiple of {SEGMENT_ALIGNMENT}")
    commands = _commands(program, path)
    linkedit_command, vmaddr, linkedit_offset = _check_insertable(program, commands, path)
    head = bytearray(program[:linkedit_offset])
    for offset, cmd, _ in commands:
        _shift_offsets(head, offset, cmd, linkedit_offset, segment_size)
    section = struct.pack("<16s16s2Q8I", SECTION_NAME.encode(), SEGMENT_NAME.encode(), vmaddr, segment_size,
                          linkedit_offset, 0, 0, 0, 0, 0, 0, 0)
    command = struct.pack("<2I16s4Q4I", LC_SEGMENT_64, SEGMENT_COMMAND_SIZE, SEGMENT_NAME.encode(), vmaddr,
                          segment_size, linkedit_offset, segment_size, VM_PROT_READ, VM_PROT_READ, 1, 0) + section
    ncmds, sizeofcmds = struct.unpack_from("<2I", head, 16)
    commands_end = HEADER_64 + sizeofcmds
    head[linkedit_command:commands_end + SEGMENT_COMMAND_SIZE] = command + head[linkedit_command:commands_end]
    struct.pack_into("<2I", head, 16, ncmds + 1, sizeofcmds + SEGMENT_COMMAND_SIZE)
    assert len(head) == linkedit_offset
    return bytes(head), program[linkedit_offset:]


def _check_insertable(program: bytes, commands: list[tuple[int, int, int]], path: Path) -> tuple[int, int, int]:
    """``(offset of __LINKEDIT's load command, its vmaddr, its fileoff)`` of ``program``, after checking that a
    segment can be inserted before it (see :func:`insert_segment` for the errors)."""
    segments = {_segment_name(program, offset): offset for offset, cmd, _ in commands if cmd == LC_SEGMENT_64}
    if SEGMENT_NAME in segments:
        raise ValueError(f"{path} already has a {SEGMENT_NAME} segment (it is a onefile, not a bootstrap)")
    if "__LINKEDIT" not in segments:
        raise ValueError(f"{path} has no __LINKEDIT segment")
    for _, cmd, _ in commands:
        if cmd in UNSUPPORTED_COMMANDS:
            raise ValueError(f"{path} has {UNSUPPORTED_COMMANDS[cmd]}, which a onefile segment cannot be inserted "
                             "with (link the bootstrap with LC_DYLD_INFO_ONLY)")
    linkedit_command = segments["__LINKEDIT"]
    vmaddr, _, fileoff, filesize = struct.unpack_from("<4Q", program, linkedit_command + 24)
    cputype = struct.unpack_from("<I", program, 4)[0]
    page = 16384 if cputype == CPU_TYPE_ARM64 else 4096
    if fileoff + filesize != len(program) or fileoff % page or vmaddr % page:
        raise ValueError(f"{path}: __LINKEDIT (file {fileoff}+{filesize}, vm {vmaddr:#x}) is not page-aligned at "
                         f"the end of the {len(program)}-byte file")
    for name, offset in segments.items():
        seg_vmaddr, seg_vmsize, seg_fileoff, seg_filesize = struct.unpack_from("<4Q", program, offset + 24)
        if name != "__LINKEDIT" and (seg_fileoff + seg_filesize > fileoff or seg_vmaddr + seg_vmsize > vmaddr):
            raise ValueError(f"{path}: segment {name} lies after __LINKEDIT")
    free = _first_content(program, commands) - HEADER_64 - struct.unpack_from("<I", program, 20)[0]
    needed = SEGMENT_COMMAND_SIZE + (0 if any(cmd == LC_CODE_SIGNATURE for _, cmd, _ in commands) else 16)
    if free < needed:
        raise ValueError(f"{path}: {free} bytes of header padding, {needed} needed for the {SEGMENT_NAME} load "
                         "command (link the bootstrap with a larger -headerpad)")
    return linkedit_command, vmaddr, fileoff


def _first_content(program: bytes, commands: list[tuple[int, int, int]]) -> int:
    """The lowest file offset of segment or section content after the header (the end of the header padding)."""
    first = len(program)
    for offset, cmd, _ in commands:
        if cmd != LC_SEGMENT_64:
            continue
        fileoff, filesize = struct.unpack_from("<2Q", program, offset + 40)
        if fileoff > 0 and filesize > 0:
            first = min(first, fileoff)
        for index in range(struct.unpack_from("<I", program, offset + 64)[0]):
            section = offset + SEGMENT_64 + index * SECTION_64
            size, file_offset = struct.unpack_from("<QI", program, section + 40)
            flags = struct.unpack_from("<I", program, section + 64)[0]
            if file_offset > 0 and size > 0 and (flags & 0xFF) not in S_ZEROFILL_TYPES:
                first = min(first, file_offset)
    return first


def _shift_offsets(head: bytearray, offset: int, cmd: int, linkedit_offset: int, delta: int) -> None:
    """Move what the load command at ``offset`` in ``head`` places in ``__LINKEDIT`` (file offsets at or after
    ``linkedit_offset``; ``__LINKEDIT``'s own fileoff and vmaddr) by ``delta`` bytes."""
    if cmd == LC_SEGMENT_64:
        if _segment_name(head, offset) == "__LINKEDIT":
            vmaddr, _, fileoff = struct.unpack_from("<3Q", head, offset + 24)
            struct.pack_into("<Q", head, offset + 24, vmaddr + delta)
            struct.pack_into("<Q", head, offset + 40, fileoff + delta)
        return
    fields = (8,) if cmd in LINKEDIT_DATA_COMMANDS or cmd == LC_CODE_SIGNATURE else _OFFSET_FIELDS.get(cmd, ())
    for field in fields:
        value = struct.unpack_from("<I", head, offset + field)[0]
        if value >= linkedit_offset:
            if value + delta >= 1 << 32:
                raise ValueError(f"the onefile would reach 4 GiB (a __LINKEDIT offset of {value + delta} bytes)")
            struct.pack_into("<I", head, offset + field, value + delta)
