"""The real platform floor of a binary: the newest glibc an ELF file needs, the oldest macOS a Mach-O file runs on.

Read from the files' headers, without LIEF (a build reads every binary it ships):

- ELF: the version needs of the dynamic segment (``DT_VERNEED``/``DT_VERNEEDNUM``, entries ``Elf_Verneed`` and
  ``Elf_Vernaux``; System V ABI, and the LSB's "Symbol Versioning"): the highest ``GLIBC_x.y[.z]`` version named
  is the oldest glibc the file loads on (``GLIBC_PRIVATE`` is no version). A statically linked file, or one
  linked against musl (which has no symbol versions), needs none. This is what auditwheel checks for manylinux.
- Mach-O: ``minos`` of ``LC_BUILD_VERSION`` (platform macOS) or ``version`` of ``LC_VERSION_MIN_MACOSX``
  (``<mach-o/loader.h>``, versions encoded ``xxxx.yy.zz`` in nibbles); for a fat file, the slice of the target's
  architecture (the highest of all slices when there is none).
"""

from __future__ import annotations

import struct
from pathlib import Path

from hatch_pbs.binaries.elf import DT_STRTAB, ElfFormatError, read_dynamic, read_string

_DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
_LC_VERSION_MIN_MACOSX, _LC_BUILD_VERSION, _PLATFORM_MACOS = 0x24, 0x32, 1
_MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "aarch64"}

Version = tuple[int, ...]


def glibc_needed(path: Path) -> Version | None:
    """The newest glibc ``path`` needs, e.g. ``(2, 34)`` or ``(2, 2, 5)``; ``None`` when it names no glibc
    version (static, musl, not ELF, or malformed)."""
    data = path.read_bytes()
    try:
        names = _version_needs(data)
    except (ElfFormatError, struct.error):  # not ELF, or malformed
        return None
    versions = [_parse_version(name[len("GLIBC_"):]) for name in names if name.startswith("GLIBC_")]
    found = [version for version in versions if version is not None]
    return max(found) if found else None


def macos_needed(path: Path, arch: str) -> Version | None:
    """The oldest macOS the Mach-O file ``path`` runs on for ``arch`` (``"aarch64"``, ``"x86_64"``), e.g.
    ``(11, 0)``; ``None`` when it records none (or is not Mach-O)."""
    data = path.read_bytes()
    try:
        slices = _macho_slices(data)
        found = {cpu: version for cpu, version in ((cpu, _macho_minimum(data, offset)) for cpu, offset in slices)
                 if version is not None}
    except (struct.error, IndexError, ValueError):
        return None
    if arch in found:
        return found[arch]
    return max(found.values()) if found else None


def format_version(version: Version) -> str:
    """``"2.34"`` for ``(2, 34)``, ``"2.2.5"`` for ``(2, 2, 5)``."""
    return ".".join(str(part) for part in version)


def _parse_version(text: str) -> Version | None:
    parts = text.split(".")
    return tuple(int(part) for part in parts) if all(part.isdigit() for part in parts) else None


def _version_needs(data: bytes) -> list[str]:
    """Every ``vna_name`` of the ELF file's version needs.

    Raises:
        ElfFormatError: ``data`` is not a well-formed ELF file (:mod:`hatch_pbs.binaries.elf`).
        struct.error: a version need lies outside ``data``.
    """
    dynamic = read_dynamic(data)
    if dynamic is None:
        return []
    verneed, strtab = dynamic.first(_DT_VERNEED), dynamic.first(DT_STRTAB)
    if verneed is None or strtab is None:
        return []
    order, strings, position = dynamic.order, dynamic.file_offset(strtab), dynamic.file_offset(verneed)
    names = []
    for _ in range(dynamic.first(_DT_VERNEEDNUM) or 0):
        _, count, _, aux, following = struct.unpack_from(order + "HHIII", data, position)
        auxiliary = position + aux
        for _ in range(count):
            _, _, _, name, next_aux = struct.unpack_from(order + "IHHII", data, auxiliary)
            names.append(read_string(data, strings + name).decode("ascii", errors="replace"))
            if not next_aux:
                break
            auxiliary += next_aux
        if not following:
            break
        position += following
    return names


def _macho_slices(data: bytes) -> list[tuple[str, int]]:
    """``(architecture, offset)`` of every Mach-O image in ``data`` (one, or the slices of a fat file)."""
    if data[:4] == b"\xca\xfe\xba\xbe":
        (count,) = struct.unpack_from(">I", data, 4)
        if not 0 < count < 20:  # Java class files share the magic
            raise ValueError("not a fat Mach-O file")
        entries = [struct.unpack_from(">iiIII", data, 8 + 20 * index) for index in range(count)]
        return [(_MACHO_CPUS.get(cpu & 0xFFFFFFFF, f"cpu-{cpu:#x}"), offset) for cpu, _, offset, _, _ in entries]
    return [(_MACHO_CPUS.get(struct.unpack_from("<I", data, 4)[0], "other"), 0)]


def _macho_minimum(data: bytes, offset: int) -> Version | None:
    magic = data[offset:offset + 4]
    if magic not in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):  # little-endian 64-/32-bit Mach-O
        raise ValueError("not Mach-O")
    count, _ = struct.unpack_from("<II", data, offset + 16)
    position = offset + (32 if magic[0] == 0xCF else 28)
    for _ in range(count):
        command, size = struct.unpack_from("<II", data, position)
        if command == _LC_BUILD_VERSION:
            platform, minos = struct.unpack_from("<II", data, position + 8)
            if platform == _PLATFORM_MACOS:
                return _nibbles(minos)
        elif command == _LC_VERSION_MIN_MACOSX:
            return _nibbles(struct.unpack_from("<I", data, position + 8)[0])
        if size < 8:
            raise ValueError("malformed load command")
        position += size
    return None


def _nibbles(value: int) -> Version:
    """``xxxx.yy.zz`` -> ``(major, minor)`` (the patch level never decides a floor)."""
    return value >> 16, (value >> 8) & 0xFF


__all__ = ["Version", "format_version", "glibc_needed", "macos_needed"]
