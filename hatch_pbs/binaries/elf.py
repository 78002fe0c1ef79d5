"""Reading and writing ELF library search paths (``DT_RPATH``/``DT_RUNPATH``).

Reading is done here, from the program headers and the dynamic segment (System V ABI, "Dynamic Section"): a build
reads every ELF file it ships, most of which need no change, and importing LIEF alone costs a few tenths of a second.
Writing is LIEF's job, imported only when a file is rewritten.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatch_pbs.atomic import write_file

ELF_MAGIC = b"\x7fELF"
SEARCH_PATH_TAGS = ("RPATH", "RUNPATH")

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 0, 5, 15, 29
_TAG_NAMES = {_DT_RPATH: "RPATH", _DT_RUNPATH: "RUNPATH"}


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


def read_search_paths(path: Path) -> dict[str, tuple[str, ...]]:
    """The ``RPATH`` and ``RUNPATH`` entries of an ELF file, e.g. ``{"RUNPATH": ("$ORIGIN/../lib",)}`` (empty
    entries dropped; a file without a dynamic segment has none).

    Raises:
        ValueError: the file is not a well-formed ELF file.
    """
    data = path.read_bytes()
    try:
        return _search_paths(data)
    except (struct.error, IndexError, KeyError, UnicodeDecodeError) as error:
        raise ValueError(f"not a parseable ELF file: {path} ({type(error).__name__}: {error})") from None


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
            KeyError: no loaded segment holds it.
        """
        for vaddr, offset, filesz in self.loads:
            if vaddr <= address < vaddr + filesz:
                return address - vaddr + offset
        raise KeyError(f"address {address:#x} is in no loaded segment")

    def first(self, tag: int) -> int | None:
        """The value of the first entry with ``tag``, or ``None``."""
        return next((value for found, value in self.entries if found == tag), None)


def read_dynamic(data: bytes) -> DynamicSection | None:
    """The dynamic segment of the ELF file ``data`` (bytes), or ``None`` for a file without one (static).

    Raises:
        KeyError, IndexError, struct.error: ``data`` is not a well-formed ELF file.
    """
    if data[:4] != ELF_MAGIC or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise KeyError("no ELF identification")
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        phoff, = struct.unpack_from(order + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x36)
        header, entry = order + "IIQQQQQQ", order + "qQ"  # p_type, p_flags, p_offset, p_vaddr, ..., p_filesz
    else:
        phoff, = struct.unpack_from(order + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 0x2A)
        header, entry = order + "IIIIIIII", order + "iI"  # p_type, p_offset, p_vaddr, p_paddr, p_filesz, ...
    loads, dynamic = [], None
    for index in range(phnum):
        fields = struct.unpack_from(header, data, phoff + index * phentsize)
        if wide:
            kind, offset, vaddr, filesz = fields[0], fields[2], fields[3], fields[5]
        else:
            kind, offset, vaddr, filesz = fields[0], fields[1], fields[2], fields[4]
        if kind == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif kind == _PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return None
    entries: list[tuple[int, int]] = []
    size = struct.calcsize(entry)
    for position in range(dynamic[0], dynamic[0] + dynamic[1] - size + 1, size):
        tag, value = struct.unpack_from(entry, data, position)
        if tag == _DT_NULL:
            break
        entries.append((tag, value))
    return DynamicSection(order, tuple(loads), tuple(entries))


def _search_paths(data: bytes) -> dict[str, tuple[str, ...]]:
    dynamic = read_dynamic(data)
    if dynamic is None:
        return {}
    strtab = dynamic.first(_DT_STRTAB)
    found: dict[str, tuple[str, ...]] = {}
    for tag, value in dynamic.entries:
        if tag in _TAG_NAMES:
            if strtab is None:
                raise KeyError("a search path without a string table")
            start = dynamic.file_offset(strtab) + value
            text = data[start:data.index(b"\0", start)].decode("utf-8", errors="surrogateescape")
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
    except (struct.error, IndexError, KeyError, UnicodeDecodeError) as error:
        raise ValueError(f"LIEF built an unreadable {path.name} ({type(error).__name__}: {error})") from None
    if end > len(content):
        raise ValueError(f"LIEF built a short {path.name}: {len(content)} bytes, its contents end at byte {end}")
    if found != search_paths:
        raise ValueError(f"the rewritten {path.name} reads back with search paths {found}, not {search_paths}")


def _extent(data: bytes) -> int:
    """Where the last byte the ELF file ``data`` describes ends: its segments' file images and its section header
    table (System V ABI, "ELF Header" and "Program Header")."""
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        phoff, shoff = struct.unpack_from(order + "QQ", data, 0x20)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", data, 0x36)
    else:
        phoff, shoff = struct.unpack_from(order + "II", data, 0x1C)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", data, 0x2A)
    end = max(phoff + phnum * phentsize, shoff + shnum * shentsize)
    # p_offset and p_filesz: at 8 and 32 in a 64-bit program header, at 4 and 16 in a 32-bit one
    fields = ((8, 32), order + "Q") if wide else ((4, 16), order + "I")
    for index in range(phnum):
        start = phoff + index * phentsize
        offset, filesz = (struct.unpack_from(fields[1], data, start + at)[0] for at in fields[0])
        end = max(end, offset + filesz)
    return end
