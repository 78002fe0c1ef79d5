"""Audit of an assembled artifact: every binary must suit the target triple.

Binaries are identified from their headers, without LIEF: ELF (``e_machine``, System V ABI), Mach-O (``cputype``,
``<mach-o/loader.h>``; fat files by their architecture list) and PE (``Machine`` of the COFF header, Microsoft PE
format). A binary of the target's own format must be of the target's architecture. A binary in the *build
machine's* format inside an artifact for another platform is something built for the host by mistake. Other
formats are data and are left alone: pip, for instance, ships Windows ``.exe`` launcher templates (for x86, x64
and arm64) inside its package on every platform, so ``.exe`` files inside installed packages (below
``site-packages/`` or ``app/``) are never executed by the artifact and are not audited either.

The platform floor (:func:`check_floor`): the newest glibc an ELF file needs, the oldest macOS a Mach-O file runs
on (:mod:`hatch_pbs.binaries.floors`). The artifact's real floor is the highest over its files and goes into the
manifest;
any file above the declared floor (options ``manylinux``, ``macos``), the runtime's included, is an error
(python-build-standalone's own runtimes need glibc 2.17 and macOS 11.0 or older).
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from hatch_pbs.binaries.elf import (
    ELF_MAGIC,
    PT_INTERP,
    ElfFormatError,
    read_dynamic,
    read_header,
    read_program_headers,
)
from hatch_pbs.binaries.floors import (
    Version,
    format_version,
    glibc_needed,
    macos_needed,
)
from hatch_pbs.errors import AuditError
from hatch_pbs.release.triples import (
    MANYLINUX_FLOORS,
    PlatformFloors,
    host_triple,
    parse_triple,
)

_ELF_MACHINES = {3: "i686", 62: "x86_64", 183: "aarch64", 21: "ppc64le", 22: "s390x", 243: "riscv64", 40: "armv7"}
_MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "aarch64", 7: "i686", 12: "armv7"}
_PE_MACHINES = {0x8664: "x86_64", 0xAA64: "aarch64", 0x14C: "i686", 0x1C4: "armv7"}
_FORMAT_OF_OS = {"linux": "ELF", "darwin": "Mach-O", "windows": "PE"}
_ET_EXEC, _ET_DYN = 2, 3
_DT_FLAGS_1, _DF_1_PIE = 0x6FFFFFFB, 0x08000000


@dataclass(frozen=True)
class Binary:
    """One binary file of an artifact.

    Attributes:
        path: relative to the artifact root, POSIX separators.
        format: ``"ELF"``, ``"Mach-O"`` or ``"PE"``.
        architectures: normalized architectures (``"x86_64"``, ``"aarch64"``...); several for fat Mach-O files.
    """

    path: str
    format: str
    architectures: tuple[str, ...]


def identify(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """``(format, architectures)`` of a binary file, or ``None`` for anything else."""
    with path.open("rb") as stream:
        head = stream.read(64)
        if head[:4] == b"\x7fELF" and len(head) >= 20:
            order = "<" if head[5] == 1 else ">"
            (machine,) = struct.unpack_from(order + "H", head, 18)
            return "ELF", (_ELF_MACHINES.get(machine, f"elf-machine-{machine}"),)
        if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe") and len(head) >= 8:
            (cpu,) = struct.unpack_from("<I", head, 4)
            return "Mach-O", (_MACHO_CPUS.get(cpu, f"cpu-{cpu:#x}"),)
        if head[:4] == b"\xca\xfe\xba\xbe" and len(head) >= 8:
            (count,) = struct.unpack_from(">I", head, 4)
            if 0 < count < 20:  # Java class files share the magic; their "count" is a large version number
                stream.seek(8)
                entries = stream.read(20 * count)
                if len(entries) < 20 * count:  # truncated: not a usable fat file
                    return None
                cpus = [struct.unpack_from(">I", entries, 20 * index)[0] for index in range(count)]
                return "Mach-O", tuple(_MACHO_CPUS.get(cpu, f"cpu-{cpu:#x}") for cpu in cpus)
        if head[:2] == b"MZ" and len(head) >= 64:
            (offset,) = struct.unpack_from("<I", head, 0x3C)
            stream.seek(offset)
            signature = stream.read(6)
            if signature[:4] == b"PE\0\0" and len(signature) == 6:
                (machine,) = struct.unpack_from("<H", signature, 4)
                return "PE", (_PE_MACHINES.get(machine, f"pe-machine-{machine:#x}"),)
    return None


def binaries(root: Path) -> list[Binary]:
    """Every binary below ``root`` (symbolic links not followed), sorted by path."""
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if not stat.S_ISREG(path.lstat().st_mode):
                continue
            identified = identify(path)
            if identified:
                found.append(Binary(path.relative_to(root).as_posix(), *identified))
    return sorted(found, key=lambda binary: binary.path)


def check_architectures(root: Path, triple: str, *, host: str | None = None,
                        found: list[Binary] | None = None) -> list[Binary]:
    """Audit ``root`` for ``triple``; returns the binaries of the target's format.

    Args:
        found: ``binaries(root)``, when the caller has it already.

    Raises:
        AuditError: binaries of the target's format but another architecture, or of the build machine's format
            in an artifact for another platform; the message lists each file.
    """
    target = parse_triple(triple)
    native = _FORMAT_OF_OS[target.os]
    host_format = _FORMAT_OF_OS[parse_triple(host or host_triple()).os]
    problems = []
    own = []
    for binary in binaries(root) if found is None else found:
        if _is_packaged_template(binary):
            continue
        if binary.format == native:
            own.append(binary)
            if target.base_arch not in binary.architectures:
                problems.append(f"{binary.path}: {binary.format} for {'/'.join(binary.architectures)}")
        elif binary.format == host_format:
            problems.append(f"{binary.path}: {binary.format} for {'/'.join(binary.architectures)} "
                            f"(built for the build machine?)")
    if problems:
        raise AuditError(f"binaries that cannot run on {triple} ({native} for {target.base_arch} expected):\n  "
                         + "\n  ".join(problems))
    return own


@dataclass(frozen=True)
class FloorAudit:
    """The platform floor an artifact really has, against the declared one.

    Attributes:
        kind: ``"glibc"``, ``"musl"`` or ``"macos"``.
        declared: the floor the artifact was built for, e.g. ``(2, 17)``.
        needed: the newest version any of its binaries needs, e.g. ``(2, 35)``; ``None`` when none names one
            (musl has no symbol versions).
        needed_by: the first file (relative path, sorted order) needing ``needed``.
    """

    kind: str
    declared: Version
    needed: Version | None
    needed_by: str | None

    def manifest_record(self) -> dict[str, str | None]:
        """The manifest's ``floor``: ``{"kind", "declared", "needed", "needed_by"}``, versions as ``"2.17"``."""
        return {"kind": self.kind, "declared": format_version(self.declared),
                "needed": None if self.needed is None else format_version(self.needed), "needed_by": self.needed_by}


_FLOOR_OPTIONS = {"glibc": "manylinux", "musl": "musllinux", "macos": "macos"}
_FLOOR_NAMES = {"glibc": "glibc", "musl": "musl", "macos": "macOS"}


def check_floor(root: Path, triple: str, floors: PlatformFloors, *, runtime_dir: str = "python",
                found: list[Binary] | None = None) -> FloorAudit | None:
    """The real floor of the artifact ``root`` for ``triple`` (``None`` for Windows: no floor).

    Every binary counts, the runtime's too: an artifact promises to run on its declared floor, whoever made the
    file that breaks the promise. python-build-standalone's runtimes need glibc 2.17 (``crt_features`` of their
    ``PYTHON.json``: ``glibc-max-symbol-version:2.17``) and macOS 11.0 or older, the lowest floors allowed, so only a
    runtime built elsewhere (a mirror's) can be above the floor.

    Args:
        floors: the declared floors (options ``manylinux``, ``musllinux``, ``macos``).
        runtime_dir: the runtime's directory below ``root`` (its files are named as the runtime's in errors).
        found: ``binaries(root)``, when the caller has it already.

    Raises:
        AuditError: a file needs a newer glibc or macOS than declared, or (musl targets) names glibc symbol
            versions; the message lists each file with what it needs and the option value that would allow it.
    """
    declared_floor = floors.for_triple(triple)
    if declared_floor is None:
        return None
    kind, declared = declared_floor
    target = parse_triple(triple)
    needs: list[tuple[str, Version]] = []
    for binary in binaries(root) if found is None else found:
        if binary.format == "ELF" and target.os == "linux":
            version = glibc_needed(root / binary.path)
        elif binary.format == "Mach-O" and target.os == "darwin":
            version = macos_needed(root / binary.path, target.base_arch)
        else:
            continue
        if version is not None:
            needs.append((binary.path, version))
    if kind == "musl":
        if needs:
            raise AuditError(f"binaries linked against glibc cannot run on {triple} (musl):\n  " + "\n  ".join(
                f"{path}: glibc {format_version(version)}" for path, version in needs))
        return FloorAudit(kind, declared, None, None)
    above = [(path, version) for path, version in needs if version > declared]
    if above:
        raise AuditError(_floor_problem(triple, kind, declared, above, runtime_dir))
    needed, needed_by = max(((version, path) for path, version in needs), key=lambda item: item[0],
                            default=(None, None))
    return FloorAudit(kind, declared, needed, needed_by)


def _floor_problem(triple: str, kind: str, declared: Version, files: list[tuple[str, Version]],
                   runtime_dir: str) -> str:
    """The error for files above the floor, with the option value that would allow them all."""
    highest = max(version for _, version in files)
    name, option = _FLOOR_NAMES[kind], _FLOOR_OPTIONS[kind]
    if kind == "macos":
        advice = f'set macos = "{highest[0]}.{highest[1] if len(highest) > 1 else 0}"'
    else:
        allowing = [floor for floor in MANYLINUX_FLOORS if tuple(int(part) for part in floor.split("_")) >= highest]
        advice = f'set manylinux = "{allowing[0]}"' if allowing else "no glibc floor uv knows allows them"
    runtime = sorted((path, version) for path, version in files if path.startswith(f"{runtime_dir}/"))
    listed_files = sorted(file for file in files if file not in runtime)
    remedy = "or use wheels built for the floor"
    if runtime:  # one line for the runtime: a runtime built for a newer system has dozens of such files
        top_version = max(version for _, version in runtime)
        top_path = min(path for path, version in runtime if version == top_version)
        more = f" (and {len(runtime) - 1} more of the runtime's files)" if len(runtime) > 1 else ""
        listed_files.append((top_path + more, top_version))
        remedy += (f", or a runtime built for it (the files below {runtime_dir}/ are the runtime's; "
                   "python-build-standalone's own need glibc 2.17 and macOS 11.0)")
    listed = "\n  ".join(f"{path}: needs {name} {format_version(version)}" for path, version in listed_files)
    return (f"binaries need a newer {name} than the floor {format_version(declared)} (option `{option}`) of "
            f"{triple}:\n  {listed}\n{advice} (the artifacts then need {name} {format_version(highest)} or newer), "
            f"{remedy}")


def _is_packaged_template(binary: Binary) -> bool:
    parts = binary.path.split("/")
    return binary.format == "PE" and binary.path.endswith(".exe") and ("site-packages" in parts or parts[0] == "app")


def is_static_elf(path: Path) -> bool:
    """Whether an ELF *executable* is statically linked: no ``PT_INTERP`` program header, and either not position
    independent (``ET_EXEC``) or a static PIE (``ET_DYN`` marked ``DF_1_PIE``). A shared library (``ET_DYN``
    without ``DF_1_PIE``) has no ``PT_INTERP`` either but is no static executable: ``False``, as for anything not
    ELF or truncated (read by :mod:`hatch_pbs.binaries.elf`)."""
    with path.open("rb") as stream:
        if stream.read(4) != ELF_MAGIC:
            return False
    data = path.read_bytes()
    try:
        header = read_header(data)
        if any(segment.p_type == PT_INTERP for segment in read_program_headers(data, header)):
            return False
        if header.e_type == _ET_EXEC:
            return True
        if header.e_type != _ET_DYN:
            return False
        dynamic = read_dynamic(data)
    except ElfFormatError:
        return False
    flags = None if dynamic is None else dynamic.first(_DT_FLAGS_1)
    return flags is not None and bool(flags & _DF_1_PIE)


def check_static_runtime(runtime_interpreter: Path, site_dir: Path, triple: str) -> None:
    """Refuse an application with extension modules on a statically linked runtime (musl ``+static`` builds of
    python-build-standalone cannot load extension modules; docs/pbs-facts.md, musl quirk).

    Raises:
        AuditError: the runtime is static and ``site_dir`` holds extension modules (listed).
    """
    if not runtime_interpreter.is_file() or not is_static_elf(runtime_interpreter):
        return
    extensions = sorted(path.relative_to(site_dir).as_posix() for path in site_dir.rglob("*.so"))
    if extensions:
        listed = ", ".join(extensions[:5]) + (f" and {len(extensions) - 5} more" if len(extensions) > 5 else "")
        raise AuditError(f"the {triple} runtime is statically linked (a +static build) and cannot load extension "
                         f"modules, but the application has: {listed}; choose a release with a dynamic musl "
                         f"runtime (20250311 or newer)")
