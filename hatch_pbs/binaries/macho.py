"""Reading and writing Mach-O install names, dependent-library load commands and rpaths with LIEF.

The load commands concerned (``mach-o/loader.h``): ``LC_ID_DYLIB`` (a dylib's own install name, copied into
whatever links against it), ``LC_LOAD_DYLIB`` and its variants ``LC_LOAD_WEAK_DYLIB``, ``LC_REEXPORT_DYLIB``,
``LC_LAZY_LOAD_DYLIB``, ``LC_LOAD_UPWARD_DYLIB`` (the libraries dyld loads, by path or ``@rpath``/``@loader_path``/
``@executable_path`` form) and ``LC_RPATH`` (the directories ``@rpath/`` is tried in, in order).

Editing a Mach-O file invalidates its code signature: :func:`write_load_commands` takes a ``finish`` callback
(the patcher passes :func:`hatch_pbs.binaries.codesign.sign_adhoc`) that runs on the written temporary file before it
replaces the original, so a file is either fully rewritten and re-signed, or untouched.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hatch_pbs.atomic import publishing_file


def _lief() -> Any:
    """LIEF, imported when a Mach-O file is first parsed (importing it costs a few tenths of a second)."""
    import lief

    lief.logging.disable()
    return lief

THIN_64_MAGICS = (b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")  # MH_MAGIC_64 little- and big-endian
THIN_32_MAGICS = (b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xce")  # MH_MAGIC
FAT_MAGICS = (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf")  # FAT_MAGIC, FAT_MAGIC_64 (always big-endian)
MACHO_MAGICS = THIN_64_MAGICS + THIN_32_MAGICS + FAT_MAGICS

DEPENDENCY_COMMANDS = ("LOAD_DYLIB", "LOAD_WEAK_DYLIB", "REEXPORT_DYLIB", "LAZY_LOAD_DYLIB", "LOAD_UPWARD_DYLIB")
"""The ``LC_*`` commands naming a library to load (LIEF's names, without ``LC_``)."""


def macho_kind(head: bytes) -> str | None:
    """``"thin64"``, ``"thin32"``, ``"fat"`` or ``None`` (not Mach-O), from a file's first 8 bytes.

    ``0xcafebabe`` also starts Java class files; there the next 4 bytes are the class file version (major >= 45),
    while a fat header has the number of architectures, a small number (the test ``file(1)`` uses too).
    """
    magic = head[:4]
    if magic in THIN_64_MAGICS:
        return "thin64"
    if magic in THIN_32_MAGICS:
        return "thin32"
    if magic in FAT_MAGICS and len(head) >= 8 and 0 < struct.unpack(">I", head[4:8])[0] < 45:
        return "fat"
    return None


@dataclass(frozen=True)
class LoadCommands:
    """The path-bearing load commands of one Mach-O image (one architecture).

    Attributes:
        file_type: ``"EXECUTE"``, ``"DYLIB"``, ``"BUNDLE"`` (extension modules), ...
        cpu: ``"ARM64"``, ``"X86_64"``, ...
        install_name: the ``LC_ID_DYLIB`` name, ``None`` if there is none.
        dylibs: ``(command, name)`` of every dependency command, in file order, e.g.
            ``("LOAD_DYLIB", "/usr/lib/libSystem.B.dylib")``.
        rpaths: the ``LC_RPATH`` entries, in file order.
    """

    file_type: str
    cpu: str
    install_name: str | None
    dylibs: tuple[tuple[str, str], ...]
    rpaths: tuple[str, ...]

    @property
    def is_executable(self) -> bool:
        return self.file_type == "EXECUTE"


def _name(enum: object) -> str:
    return str(enum).rsplit(".", 1)[-1]  # "TYPE.LOAD_DYLIB" -> "LOAD_DYLIB"


def _parse(path: Path, *, for_writing: bool = False) -> Any:
    # The quick configuration skips the dyld info (binds, rebases, exports): enough to read load commands, but a
    # binary parsed that way is written back *without* them (LIEF 1.0), so writing needs the full parse.
    lief = _lief()
    config = lief.MachO.ParserConfig.deep if for_writing else lief.MachO.ParserConfig.quick
    fat = lief.MachO.parse(str(path), config)
    if fat is None or fat.size == 0:
        raise ValueError(f"not a parseable Mach-O file: {path}")
    return fat


def _load_commands(binary: Any) -> LoadCommands:
    install_name = None
    dylibs = []
    rpaths = []
    for command in binary.commands:
        kind = _name(command.command)
        if kind == "ID_DYLIB":
            install_name = command.name
        elif kind in DEPENDENCY_COMMANDS:
            dylibs.append((kind, command.name))
        elif kind == "RPATH":
            rpaths.append(command.path)
    return LoadCommands(_name(binary.header.file_type), _name(binary.header.cpu_type), install_name, tuple(dylibs),
                        tuple(rpaths))


def read_load_commands(path: Path) -> list[LoadCommands]:
    """The load commands of every architecture in ``path`` (one entry for a thin file).

    Raises:
        ValueError: LIEF cannot parse the file as Mach-O.
    """
    fat = _parse(path)
    return [_load_commands(fat.at(index)) for index in range(fat.size)]


def write_load_commands(path: Path, *, install_name: str | None = None, dylibs: Mapping[str, str] | None = None,
                        rpaths: tuple[str, ...] | None = None,
                        finish: Callable[[Path], None] | None = None) -> None:
    """Change load commands of the thin Mach-O file ``path``; rewritten atomically, keeping its mode.

    Args:
        install_name: the new ``LC_ID_DYLIB`` name (``None``: unchanged).
        dylibs: old name -> new name for dependency commands (every variant); others are unchanged.
        rpaths: the complete new ``LC_RPATH`` list, in order (``None``: unchanged; empty: remove all).
        finish: called with the written temporary file before it replaces ``path`` (e.g. to re-sign it).

    Raises:
        ValueError: LIEF cannot parse or write the file, it is universal (fat), or the result does not read back
            as requested.
    """
    fat = _parse(path, for_writing=True)
    if fat.size != 1:
        raise ValueError(f"{path} is a universal (fat) Mach-O file; universal2 is out of scope")
    binary = fat.at(0)
    dylibs = dict(dylibs or {})
    rpath_indices = []
    for index, command in enumerate(binary.commands):
        kind = _name(command.command)
        if kind == "ID_DYLIB" and install_name is not None:
            command.name = install_name
        elif kind in DEPENDENCY_COMMANDS and command.name in dylibs:
            command.name = dylibs[command.name]
        elif kind == "RPATH":
            rpath_indices.append(index)
        # Drop the wrapper now: a Python object still referring to a command LIEF removes below dangles, and
        # nanobind may hand it out again for a new object at the same address (seen with LIEF 1.0).
        del command
    if rpaths is not None:
        for index, entry in zip(rpath_indices, rpaths, strict=False):  # extra entries are added, missing ones removed
            binary.commands[index].path = entry
        for index in reversed(rpath_indices[len(rpaths):]):
            if not binary.remove_command(index):
                raise ValueError(f"LIEF could not remove an LC_RPATH command of {path}")
        for entry in rpaths[len(rpath_indices):]:
            binary.add(_lief().MachO.RPathCommand.create(entry))
    expected = _load_commands(binary)
    # Built in memory and written by Python, whose writes fail loudly (``binary.write(path)`` ignores a full disk).
    content = bytes(binary.write_to_bytes())
    with publishing_file(path, mode=path.stat().st_mode & 0o7777) as temporary:
        temporary.write_bytes(content)
        _check_written(temporary, len(content), expected, path.name)
        if finish is not None:
            finish(temporary)


def _check_written(temporary: Path, size: int, expected: LoadCommands, name: str) -> None:
    """Check that the rewritten file ``temporary`` is ``size`` bytes, reads back with ``expected`` load commands and
    holds every segment's file image.

    Raises:
        ValueError: it does not.
    """
    fat = _parse(temporary)
    written = [_load_commands(fat.at(index)) for index in range(fat.size)]
    if written != [expected]:
        raise ValueError(f"the rewritten {name} does not read back as written")
    end = max((segment.file_offset + segment.file_size for segment in fat.at(0).segments), default=0)
    if temporary.stat().st_size != size or end > size:
        raise ValueError(f"the rewritten {name} is short: {temporary.stat().st_size} bytes written of "
                         f"{size}, its segments end at byte {end}")
