"""LIEF objects borrow memory from the binary they were parsed into: a slice or header of a temporary that has
been collected is a dangling pointer (seen here as a segmentation fault). These helpers keep parents alive."""

from __future__ import annotations

from pathlib import Path

import lief

_ALIVE: list[object] = []


def macho_slice(source: Path | str | bytes, index: int = 0) -> lief.MachO.Binary:
    """Slice ``index`` of the Mach-O file ``source`` (a path or the file's bytes), parent kept alive."""
    fat = lief.MachO.parse(bytes(source) if isinstance(source, (bytes, bytearray)) else str(source))
    _ALIVE.append(fat)
    return fat.at(index)


def pe_binary(source: Path | str | bytes) -> lief.PE.Binary:
    """The parsed PE file, kept alive for the session (its header is read after the call)."""
    binary = lief.PE.parse(bytes(source) if isinstance(source, (bytes, bytearray)) else str(source))
    _ALIVE.append(binary)
    return binary
