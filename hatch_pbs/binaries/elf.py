"""The one ELF reader of hatch-pbs, and writing ELF library search paths (``DT_RPATH``/``DT_RUNPATH``).

Reading is done here, from the ELF header, the program headers and the dynamic segment (System V ABI, "ELF
Header", "Program Header", "Dynamic Section"), for the relocation (search paths), the artifact audit (static
executables) and the platform floors (:mod:`hatch_pbs.binaries.floors`): a build reads every ELF file it ships,
most of which need no change, and importing LIEF alone costs a few tenths of a second. Every reader fails the same
way, with :class:`ElfFormatError` (a :class:`ValueError`). Writing is LIEF's job, imported only when a file is
rewritten.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatch_pbs.atomic import write_file

ELF_MAGIC = b"\x7fELF"
SEARCH_PATH_TAGS = ("RPATH", "RUNPATH")

#: Segment types (``p_type``) and dynamic tags (``d_tag``) of the System V ABI.
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 5, 15, 29
_TAG_NAMES = {DT_RPATH: "RPATH", DT_RUNPATH: "RUNPATH"}


def _lief() -> Any:
    """LIEF, imported when a file is first rewritten (importing it costs a few tenths of a second)."""
    import lief

    lief.logging.disable()
    return lief


def _tag_name(entry: Any) -> str:
    return str(entry.tag).rsplit(".", 1)[-1]  # "TAG.RUNPATH" -> "RUNPATH"


def is_elf(path: Path) -> bool:
    """Whether ``path`` starts with the ELF magic bytes."""
    with path.open("rb") as stream:
        return stream.read(4) == ELF_MAGIC


class ElfFormatError(ValueError):
    """The bytes are not a well-formed ELF file: the one failure of every reader of this module (the ELF
    identification is missing, or a header, table or string lies outside the file or is inconsistent)."""


def read_search_paths(path: Path) -> dict[str, tuple[str, ...]]:
    """The ``RPATH`` and ``RUNPATH`` entries of an ELF file, e.g. ``{"RUNPATH": ("$ORIGIN/../lib",)}`` (empty
    entries dropped; a file without a dynamic segment has none).

    Raises:
        ElfFormatError: the file is not a well-formed ELF file (a :class:`ValueError`, naming ``path``).
    """
    data = path.read_bytes()
    try:
        return _search_paths(data)
    except ElfFormatError as error:
        raise ElfFormatError(f"not a parseable ELF file: {path} ({error})") from None


@dataclass(frozen=True, kw_only=True)
class ElfHeader:
    """The fields of the ELF header this package reads (System V ABI, "ELF Header").

    Attributes:
        wide: ``ELFCLASS64`` (64-bit structures) rather than ``ELFCLASS32``.
        order: the byte order, as :mod:`struct` spells it (``"<"`` or ``">"``).
        e_type: the object file type (``ET_EXEC`` 2, ``ET_DYN`` 3, ...).
        e_machine: the architecture (62 for x86-64, 183 for AArch64, ...).
        phoff, phentsize, phnum: file offset, entry size (bytes) and number of entries of the program header table.
        shoff, shentsize, shnum: the same for the section header table.
    """

    wide: bool
    order: str
    e_type: int
    e_machine: int
    phoff: int
    phentsize: int
    phnum: int
    shoff: int
    shentsize: int
    shnum: int


@dataclass(frozen=True)
class ProgramHeader:
    """One entry of the program header table (System V ABI, "Program Header"); offsets and sizes in bytes.

    Attributes:
        p_type: the segment type (``PT_LOAD`` 1, ``PT_DYNAMIC`` 2, ``PT_INTERP`` 3, ...).
        p_offset: where the segment's file image starts.
        p_vaddr: the virtual address of its first byte.
        p_filesz: the size of its file image.
    """

    p_type: int
    p_offset: int
    p_vaddr: int
    p_filesz: int


def read_header(data: bytes) -> ElfHeader:
    """The ELF header of the ELF file ``data`` (its bytes, or at least its first 52 / 64 bytes).

    Raises:
        ElfFormatError: no ELF identification, or the header is truncated.
    """
    if data[:4] != ELF_MAGIC or len(data) < 6 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfFormatError("no ELF identification")
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        e_type, e_machine = struct.unpack_from(order + "HH", data, 16)
        if wide:
            phoff, shoff = struct.unpack_from(order + "QQ", data, 0x20)
            phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", data, 0x36)
        else:
            phoff, shoff = struct.unpack_from(order + "II", data, 0x1C)
            phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", data, 0x2A)
    except struct.error as error:
        raise ElfFormatError(f"truncated ELF header ({error})") from None
    return ElfHeader(wide=wide, order=order, e_type=e_type, e_machine=e_machine, phoff=phoff, phentsize=phentsize,
                     phnum=phnum, shoff=shoff, shentsize=shentsize, shnum=shnum)


def read_program_headers(data: bytes, header: ElfHeader | None = None) -> tuple[ProgramHeader, ...]:
    """Every entry of the program header table of the ELF file ``data``, in file order.

    Args:
        header: ``read_header(data)``, when the caller has it already.

    Raises:
        ElfFormatError: as :func:`read_header`, or the table's entries are too small or lie outside ``data``.
    """
    header = read_header(data) if header is None else header
    if header.phnum and header.phentsize < (56 if header.wide else 32):
        raise ElfFormatError(f"program header entries of {header.phentsize} bytes")
    # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, ... (64-bit); p_type, p_offset, p_vaddr, p_paddr,
    # p_filesz, ... (32-bit)
    layout, fields = (("IIQQQQQQ", (0, 2, 3, 5)) if header.wide else ("IIIIIIII", (0, 1, 2, 4)))
    found = []
    try:
        for index in range(header.phnum):
            values = struct.unpack_from(header.order + layout, data, header.phoff + index * header.phentsize)
            found.append(ProgramHeader(*(values[at] for at in fields)))
    except struct.error as error:
        raise ElfFormatError(f"truncated program header table ({error})") from None
    return tuple(found)


@dataclass(frozen=True)
class DynamicSection:
    """What the loader reads of an ELF file's dynamic segment (System V ABI, "Program Header" and "Dynamic Section").

    Attributes:
        order: the byte order, as :mod:`struct` spells it (``"<"`` or ``">"``).
        loads: ``(p_vaddr, p_offset, p_filesz)`` of every ``PT_LOAD`` segment.
        entries: ``(d_tag, d_val)`` of every entry before ``DT_NULL``, in file order.
    """

    order: str
    loads: tuple[tuple[int, int, int], ...]
    entries: tuple[tuple[int, int], ...]

    def file_offset(self, address: int) -> int:
        """The file offset of the virtual ``address``.

        Raises:
            ElfFormatError: no loaded segment holds it.
        """
        for vaddr, offset, filesz in self.loads:
            if vaddr <= address < vaddr + filesz:
                return address - vaddr + offset
        raise ElfFormatError(f"address {address:#x} is in no loaded segment")

    def first(self, tag: int) -> int | None:
        """The value of the first entry with ``tag``, or ``None``."""
        return next((value for found, value in self.entries if found == tag), None)


def read_dynamic(data: bytes) -> DynamicSection | None:
    """The dynamic segment of the ELF file ``data`` (bytes), or ``None`` for a file without one (static).

    Raises:
        ElfFormatError: ``data`` is not a well-formed ELF file (the dynamic segment lies outside it, ...).
    """
    header = read_header(data)
    segments = read_program_headers(data, header)
    loads = tuple((segment.p_vaddr, segment.p_offset, segment.p_filesz) for segment in segments
                  if segment.p_type == PT_LOAD)
    dynamic = next((segment for segment in reversed(segments) if segment.p_type == PT_DYNAMIC), None)
    if dynamic is None:
        return None
    entry = header.order + ("qQ" if header.wide else "iI")
    size = struct.calcsize(entry)
    entries: list[tuple[int, int]] = []
    try:
        for position in range(dynamic.p_offset, dynamic.p_offset + dynamic.p_filesz - size + 1, size):
            tag, value = struct.unpack_from(entry, data, position)
            if tag == DT_NULL:
                break
            entries.append((tag, value))
    except struct.error as error:
        raise ElfFormatError(f"truncated dynamic segment ({error})") from None
    return DynamicSection(header.order, loads, tuple(entries))


def read_string(data: bytes, start: int) -> bytes:
    """The NUL-terminated string at file offset ``start`` of ``data`` (without its NUL).

    Raises:
        ElfFormatError: no NUL ends it within ``data``.
    """
    end = data.find(b"\0", start)
    if end < 0:
        raise ElfFormatError(f"unterminated string at offset {start:#x}")
    return data[start:end]


def _search_paths(data: bytes) -> dict[str, tuple[str, ...]]:
    dynamic = read_dynamic(data)
    if dynamic is None:
        return {}
    strtab = dynamic.first(DT_STRTAB)
    found: dict[str, tuple[str, ...]] = {}
    for tag, value in dynamic.entries:
        if tag in _TAG_NAMES:
            if strtab is None:
                raise ElfFormatError("a search path without a string table")
            text = read_string(data, dynamic.file_offset(strtab) + value).decode("utf-8", errors="surrogateescape")
            found[_TAG_NAMES[tag]] = tuple(part for part in text.split(":") if part)
    return found


def write_search_paths(path: Path, search_paths: dict[str, tuple[str, ...]]) -> None:
    """Replace the given tags' entries of ``path``; an empty tuple removes the tag. The file is rewritten
    atomically (:func:`hatch_pbs.atomic.publishing_file`) and keeps its mode.

    LIEF builds the new file in memory; it is checked before it is written (it reads back with the requested
    search paths, and every segment and the section header table lie within it), and written by Python, whose
    writes fail loudly: ``binary.write(path)`` ignores a full disk and leaves a short file.

    Raises:
        ValueError: LIEF cannot parse the file, or what it built does not read back as requested.
        OSError: the file cannot be written (for example ``ENOSPC``); ``path`` is left as it was.
    """
    expected = dict(read_search_paths(path))
    for tag, entries in search_paths.items():
        if entries:
            expected[tag] = tuple(entries)
        else:
            expected.pop(tag, None)
    binary = _lief().ELF.parse(str(path))
    if binary is None:
        raise ValueError(f"not a parseable ELF file: {path}")
    for entry in list(binary.dynamic_entries):
        tag = _tag_name(entry)
        if tag not in search_paths:
            continue
        if search_paths[tag]:
            entry.paths = list(search_paths[tag])
        else:
            binary.remove(entry)
    content = bytes(binary.write_to_bytes())
    check_written(path, content, expected)
    write_file(path, content, mode=path.stat().st_mode & 0o7777)


def check_written(path: Path, content: bytes, search_paths: dict[str, tuple[str, ...]]) -> None:
    """Check that ``content``, the new bytes of the ELF file ``path``, is whole and has ``search_paths``.

    Raises:
        ValueError: a segment or the section header table ends beyond ``content`` (it is short), or its search
            paths are not ``search_paths``.
    """
    try:
        found = _search_paths(content)
        end = _extent(content)
    except ElfFormatError as error:
        raise ValueError(f"LIEF built an unreadable {path.name} ({error})") from None
    if end > len(content):
        raise ValueError(f"LIEF built a short {path.name}: {len(content)} bytes, its contents end at byte {end}")
    if found != search_paths:
        raise ValueError(f"the rewritten {path.name} reads back with search paths {found}, not {search_paths}")


def _extent(data: bytes) -> int:
    """Where the last byte the ELF file ``data`` describes ends: its segments' file images and its section header
    table (System V ABI, "ELF Header" and "Program Header").

    Raises:
        ElfFormatError: as :func:`read_program_headers`.
    """
    header = read_header(data)
    end = max(header.phoff + header.phnum * header.phentsize, header.shoff + header.shnum * header.shentsize)
    for segment in read_program_headers(data, header):
        end = max(end, segment.p_offset + segment.p_filesz)
    return end


__all__ = ["ELF_MAGIC", "SEARCH_PATH_TAGS", "DynamicSection", "ElfFormatError", "ElfHeader", "ProgramHeader",
           "check_written", "is_elf", "read_dynamic", "read_header", "read_program_headers", "read_search_paths",
           "read_string", "write_search_paths"]
