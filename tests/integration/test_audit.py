"""Audit of an assembled artifact (hatch_pbs.artifact.audit) on real binaries.

Foreign binaries are compiled offline with zig (the ``ziglang`` package) for Linux (glibc 2.17 and musl, static
and dynamic), macOS and Windows (MinGW), cached like tests/foreign_release.py caches its stand-ins; a universal
(fat) Mach-O file is assembled here from two thin ones (``<mach-o/fat.h>``). Nothing is mocked: the audit reads the
files' headers as it does in a build.
"""

from __future__ import annotations

import os
import platform
import shutil
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from hatch_pbs.artifact.audit import (
    Binary,
    binaries,
    check_architectures,
    check_floor,
    check_static_runtime,
    identify,
    is_static_elf,
)
from hatch_pbs.binaries.floors import glibc_needed, macos_needed
from hatch_pbs.errors import AuditError
from hatch_pbs.release.triples import ALL_TARGETS, PlatformFloors

pytest.importorskip("ziglang", reason="the ziglang package (zig's C cross-compiler) builds the foreign binaries")

from foreign_release import _cached_build

LINUX_HOST = "x86_64-unknown-linux-gnu"

MAIN_C = '#include <stdio.h>\nint main(void) { puts("audit"); return 0; }\n'
LIB_C = '#include <stdio.h>\nint demo(void) { return puts("demo"); }\n'
_EXE = ["-o", "prog", "main.c"]

#: label -> (zig target, [(output, zig cc arguments)])
PLAN: dict[str, tuple[str, list[tuple[str, list[str]]]]] = {
    "linux-aarch64-gnu": ("aarch64-linux-gnu.2.17", [
        ("prog", _EXE),
        ("libdemo.so", ["-shared", "-fPIC", "-o", "libdemo.so", "lib.c"]),
    ]),
    "linux-aarch64-musl": ("aarch64-linux-musl", [
        ("prog-static", ["-static", "-o", "prog-static", "main.c"]),
    ]),
    "linux-x86_64-musl": ("x86_64-linux-musl", [
        ("prog-static", ["-static", "-o", "prog-static", "main.c"]),
        ("prog-static-pie", ["-static", "-fPIE", "-o", "prog-static-pie", "main.c"]),
        ("prog-dynamic", ["-dynamic", "-o", "prog-dynamic", "main.c"]),
        ("libdemo.so", ["-shared", "-fPIC", "-o", "libdemo.so", "lib.c"]),
    ]),
    "macos-aarch64": ("aarch64-macos", [
        ("prog", _EXE),
        ("libdemo.dylib", ["-shared", "-o", "libdemo.dylib", "lib.c"]),
    ]),
    "macos-x86_64": ("x86_64-macos", [("prog", _EXE)]),
    "windows-x86_64": ("x86_64-windows-gnu", [
        ("prog.exe", ["-o", "prog.exe", "main.c"]),
        ("demo.dll", ["-shared", "-o", "demo.dll", "lib.c"]),
    ]),
    "windows-aarch64": ("aarch64-windows-gnu", [
        ("prog.exe", ["-o", "prog.exe", "main.c"]),
        ("demo.dll", ["-shared", "-o", "demo.dll", "lib.c"]),
    ]),
}


@dataclass(frozen=True)
class Zig:
    """The compiled binaries: ``zig["linux-x86_64-musl", "prog-static"]`` is a path (copy it before editing)."""

    directories: dict[str, Path]
    fat: Path
    """A universal Mach-O executable: x86_64 slice, then arm64, assembled from the two thin ``prog`` files."""
    fat_x86_64_only: Path
    """A universal Mach-O file with a single x86_64 slice."""

    def __getitem__(self, key: tuple[str, str]) -> Path:
        label, name = key
        return self.directories[label] / name


def fat_file(slices: list[Path]) -> bytes:
    """A universal (fat) Mach-O file of thin ``slices`` (``mach-o/fat.h``: big-endian ``fat_header`` and
    ``fat_arch`` entries; each slice at a 2^14-aligned offset)."""
    align = 14
    header = struct.pack(">2I", 0xCAFEBABE, len(slices))
    entries, body = b"", b""
    offset = 1 << align
    for path in slices:
        data = path.read_bytes()
        cputype, cpusubtype = struct.unpack_from("<2I", data, 4)
        entries += struct.pack(">5I", cputype, cpusubtype, offset, len(data), align)
        padded = data + b"\0" * (-len(data) % (1 << align))
        body += padded
        offset += len(padded)
    start = header + entries
    return start + b"\0" * ((1 << align) - len(start)) + body


@pytest.fixture(scope="session")
def zig(tmp_path_factory: pytest.TempPathFactory) -> Zig:
    build_dir = tmp_path_factory.mktemp("zig-audit")
    sources = {"main.c": MAIN_C, "lib.c": LIB_C}

    def build(label: str) -> tuple[str, Path]:
        target, steps = PLAN[label]
        return label, _cached_build(build_dir, label, target, sources, steps)

    with ThreadPoolExecutor(max_workers=4) as pool:
        directories = dict(pool.map(build, PLAN))
    fat = build_dir / "fat-prog"
    fat.write_bytes(fat_file([directories["macos-x86_64"] / "prog", directories["macos-aarch64"] / "prog"]))
    single = build_dir / "fat-x86_64"
    single.write_bytes(fat_file([directories["macos-x86_64"] / "prog"]))
    return Zig(directories, fat, single)


def place(root: Path, files: dict[str, Path | bytes | str]) -> Path:
    """Create ``root`` with ``files``: relative path -> binary to copy, bytes, or text."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            shutil.copyfile(source, path)
        elif isinstance(source, bytes):
            path.write_bytes(source)
        else:
            path.write_text(source, encoding="utf-8")
    return root


def host_binary() -> Path:
    return Path(sys.executable).resolve()


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


# ----------------------------------------------------------------------------------------------------------------
# identify()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the running interpreter is an ELF file on Linux")
def test_identify_the_host_interpreter() -> None:
    assert identify(host_binary()) == ("ELF", (host_arch(),))


@pytest.mark.parametrize(("label", "name", "expected"), [
    ("linux-aarch64-gnu", "prog", ("ELF", ("aarch64",))),
    ("linux-aarch64-gnu", "libdemo.so", ("ELF", ("aarch64",))),
    ("linux-aarch64-musl", "prog-static", ("ELF", ("aarch64",))),
    ("linux-x86_64-musl", "prog-static", ("ELF", ("x86_64",))),
    ("linux-x86_64-musl", "prog-dynamic", ("ELF", ("x86_64",))),
    ("linux-x86_64-musl", "libdemo.so", ("ELF", ("x86_64",))),
    ("macos-aarch64", "prog", ("Mach-O", ("aarch64",))),
    ("macos-aarch64", "libdemo.dylib", ("Mach-O", ("aarch64",))),
    ("macos-x86_64", "prog", ("Mach-O", ("x86_64",))),
    ("windows-x86_64", "prog.exe", ("PE", ("x86_64",))),
    ("windows-x86_64", "demo.dll", ("PE", ("x86_64",))),
    ("windows-aarch64", "prog.exe", ("PE", ("aarch64",))),
    ("windows-aarch64", "demo.dll", ("PE", ("aarch64",))),
])
def test_identify_foreign_binaries(zig: Zig, label: str, name: str, expected: tuple[str, tuple[str, ...]]) -> None:
    assert identify(zig[label, name]) == expected


def test_identify_a_fat_mach_o_lists_its_slices_in_order(zig: Zig) -> None:
    assert zig.fat.read_bytes()[:8] == b"\xca\xfe\xba\xbe\x00\x00\x00\x02"
    assert identify(zig.fat) == ("Mach-O", ("x86_64", "aarch64"))
    assert identify(zig.fat_x86_64_only) == ("Mach-O", ("x86_64",))


@pytest.mark.parametrize(("version", "description"), [
    (struct.pack(">HH", 0, 52), "Java 8 (major 52, minor 0)"),
    (struct.pack(">HH", 3, 45), "Java 1.1 (major 45, minor 3)"),
    (struct.pack(">HH", 0, 65), "Java 21"),
])
def test_identify_a_java_class_is_not_mach_o(tmp_path: Path, version: bytes, description: str) -> None:
    """Java class files share 0xcafebabe; the next four bytes (minor, major version) read as a big "count"."""
    path = tmp_path / "Main.class"
    # magic, version, constant pool count 2, one CONSTANT_Utf8 "Main", access flags ...
    path.write_bytes(b"\xca\xfe\xba\xbe" + version + b"\x00\x02\x01\x00\x04Main" + b"\x00\x21" + b"\0" * 64)
    assert identify(path) is None, description


def test_identify_a_truncated_fat_header_is_not_a_binary(tmp_path: Path, zig: Zig) -> None:
    path = tmp_path / "truncated"
    path.write_bytes(zig.fat.read_bytes()[:8 + 20 + 7])  # header, first entry, part of the second
    assert identify(path) is None


@pytest.mark.parametrize(("name", "content"), [
    ("script.py", "#!/usr/bin/env python3\nprint('hello')\n"),
    ("README.txt", "A text file that is long enough to have a 64 byte header like a binary would have.\n" * 3),
    ("empty", ""),
    ("elf-magic-only", b"\x7fELF"),
    ("mz-text", "MZ is how this text starts, but there is no PE header anywhere in it at all. " * 4),
    ("mach-o-magic-only", b"\xcf\xfa\xed\xfe"),
    ("fat-zero-count", b"\xca\xfe\xba\xbe\x00\x00\x00\x00" + b"\0" * 64),
    ("data.bin", bytes(range(256)) * 4),
])
def test_identify_other_files_is_none(tmp_path: Path, name: str, content: str | bytes) -> None:
    path = place(tmp_path, {name: content}) / name
    assert identify(path) is None


def test_identify_unknown_machines_are_named_by_number(tmp_path: Path, zig: Zig) -> None:
    elf = bytearray(zig["linux-x86_64-musl", "prog-static"].read_bytes())
    elf[18:20] = struct.pack("<H", 0x1234)
    pe = bytearray(zig["windows-x86_64", "prog.exe"].read_bytes())
    (pe_offset,) = struct.unpack_from("<I", pe, 0x3C)
    pe[pe_offset + 4:pe_offset + 6] = struct.pack("<H", 0x5064)  # IMAGE_FILE_MACHINE_RISCV64
    macho = bytearray(zig["macos-aarch64", "prog"].read_bytes())
    macho[4:8] = struct.pack("<I", 0x01000012)  # CPU_TYPE_POWERPC64
    place(tmp_path, {"elf": bytes(elf), "pe": bytes(pe), "macho": bytes(macho)})
    assert identify(tmp_path / "elf") == ("ELF", ("elf-machine-4660",))
    assert identify(tmp_path / "pe") == ("PE", ("pe-machine-0x5064",))
    assert identify(tmp_path / "macho") == ("Mach-O", ("cpu-0x1000012",))


def test_binaries_are_sorted_and_symbolic_links_skipped(tmp_path: Path, zig: Zig) -> None:
    root = place(tmp_path / "tree", {
        "python/bin/python3.11": zig["linux-x86_64-musl", "prog-dynamic"],
        "python/lib/libdemo.so": zig["linux-x86_64-musl", "libdemo.so"],
        "app/a/_x.so": zig["linux-aarch64-gnu", "libdemo.so"],
        "app/a/__init__.py": "",
        "python/lib/python3.11/os.py": "# os\n",
    })
    (root / "python/bin/python3").symlink_to("python3.11")
    (root / "python/lib/linked-dir").symlink_to(root / "app", target_is_directory=True)
    assert binaries(root) == [
        Binary("app/a/_x.so", "ELF", ("aarch64",)),
        Binary("python/bin/python3.11", "ELF", ("x86_64",)),
        Binary("python/lib/libdemo.so", "ELF", ("x86_64",)),
    ]


# ----------------------------------------------------------------------------------------------------------------
# check_architectures(): trees that pass


def correct_tree(root: Path, zig: Zig, triple: str) -> tuple[Path, list[Binary]]:
    """An artifact-like tree for ``triple`` whose binaries all suit it, with pip's Windows launcher templates of
    every architecture inside installed packages (as pip ships them on every platform); returns the binaries
    the audit must report as the target's own."""
    templates = {  # pip/_vendor/distlib/*.exe, in the runtime's site-packages and in app/
        "python/lib/python3.11/site-packages/pip/_vendor/distlib/t64.exe": zig["windows-x86_64", "prog.exe"],
        "python/lib/python3.11/site-packages/pip/_vendor/distlib/t64-arm.exe": zig["windows-aarch64", "prog.exe"],
        "python/Lib/site-packages/pip/_vendor/distlib/w64-arm.exe": zig["windows-aarch64", "prog.exe"],
        "app/pip/_vendor/distlib/t64.exe": zig["windows-x86_64", "prog.exe"],
        "app/pip/_vendor/distlib/t64-arm.exe": zig["windows-aarch64", "prog.exe"],
    }
    text = {"app/demo/__init__.py": "def main():\n    return 0\n", "bin/demo": "#!/bin/sh\nexec python3 \"$@\"\n",
            "manifest.json": "{}\n"}
    if triple.endswith("windows-msvc"):
        arch = "x86_64" if triple.startswith("x86_64") else "aarch64"
        own = {"python/python.exe": zig[f"windows-{arch}", "prog.exe"],
               "python/python311.dll": zig[f"windows-{arch}", "demo.dll"],
               "python/DLLs/_demo.pyd": zig[f"windows-{arch}", "demo.dll"],
               "app/demo/_speedups.pyd": zig[f"windows-{arch}", "demo.dll"],
               "bin/demo.exe": zig[f"windows-{arch}", "prog.exe"]}
        arch_name, fmt = arch, "PE"
    elif triple.endswith("apple-darwin"):
        arch = "x86_64" if triple.startswith("x86_64") else "aarch64"
        own = {"python/bin/python3.11": zig[f"macos-{arch}", "prog"],
               "python/lib/libpython3.11.dylib": zig.fat,
               "app/demo/_speedups.cpython-311-darwin.so": zig.fat}
        if arch == "aarch64":
            own["python/lib/libdemo.dylib"] = zig["macos-aarch64", "libdemo.dylib"]
        arch_name, fmt = arch, "Mach-O"
    else:
        arch = "aarch64" if triple.startswith("aarch64") else "x86_64"
        label = "linux-aarch64-gnu" if arch == "aarch64" else "linux-x86_64-musl"
        library = zig[label, "libdemo.so"]
        own = {"python/bin/python3.11": zig[label, "prog" if arch == "aarch64" else "prog-dynamic"],
               "python/lib/libpython3.11.so.1.0": library,
               "python/lib/python3.11/lib-dynload/_demo.so": library,
               "app/demo/_speedups.so": library}
        arch_name, fmt = arch, "ELF"
    root = place(root, {**templates, **text, **own})
    if (root / "python/bin").is_dir():
        (root / "python/bin/python3").symlink_to("python3.11")
    expected = [Binary(relative, fmt, identify(root / relative)[1]) for relative in sorted(own)]
    assert all(arch_name in binary.architectures for binary in expected)
    return root, expected


@pytest.mark.parametrize("triple", [*ALL_TARGETS, "x86_64_v3-unknown-linux-gnu", "x86_64_v2-unknown-linux-musl"])
def test_correct_trees_pass(tmp_path: Path, zig: Zig, triple: str) -> None:
    root, expected = correct_tree(tmp_path / "artifact", zig, triple)
    assert check_architectures(root, triple, host=LINUX_HOST) == expected


@pytest.mark.parametrize("host", ["aarch64-unknown-linux-gnu", "x86_64-pc-windows-msvc", "aarch64-apple-darwin"])
def test_correct_trees_pass_on_any_build_machine(tmp_path: Path, zig: Zig, host: str) -> None:
    for triple in ALL_TARGETS:
        root, expected = correct_tree(tmp_path / triple, zig, triple)
        assert check_architectures(root, triple, host=host) == expected, (triple, host)


def test_default_host_is_this_machine(tmp_path: Path, zig: Zig) -> None:
    root, expected = correct_tree(tmp_path / "artifact", zig, "aarch64-apple-darwin")
    assert check_architectures(root, "aarch64-apple-darwin") == expected


def test_empty_tree_passes(tmp_path: Path) -> None:
    assert check_architectures(tmp_path, "aarch64-apple-darwin", host=LINUX_HOST) == []


# ----------------------------------------------------------------------------------------------------------------
# check_architectures(): problems, with the exact message


def audit_error(root: Path, triple: str, host: str = LINUX_HOST) -> str:
    with pytest.raises(AuditError) as info:
        check_architectures(root, triple, host=host)
    return str(info.value)


def test_wrong_architecture_on_linux(tmp_path: Path, zig: Zig) -> None:
    root = place(tmp_path / "artifact", {
        "python/bin/python3.11": zig["linux-x86_64-musl", "prog-dynamic"],
        "python/lib/libpython3.11.so.1.0": zig["linux-aarch64-gnu", "libdemo.so"],
        "app/demo/_speedups.so": zig["linux-x86_64-musl", "libdemo.so"],
        "app/demo/__init__.py": "",
        "python/lib/python3.11/site-packages/pip/_vendor/distlib/t64.exe": zig["windows-x86_64", "prog.exe"],
        "python/share/prog-for-mac": zig["macos-aarch64", "prog"],  # neither the target's nor the host's format
    })
    assert audit_error(root, "aarch64-unknown-linux-gnu") == (
        "binaries that cannot run on aarch64-unknown-linux-gnu (ELF for aarch64 expected):\n"
        "  app/demo/_speedups.so: ELF for x86_64\n"
        "  python/bin/python3.11: ELF for x86_64")


def test_wrong_architecture_and_host_binaries_on_macos(tmp_path: Path, zig: Zig) -> None:
    root = place(tmp_path / "artifact", {
        "python/bin/python3.11": zig["macos-x86_64", "prog"],
        "python/lib/libpython3.11.dylib": zig.fat,  # has an arm64 slice: fine
        "python/lib/libx86.dylib": zig.fat_x86_64_only,
        "app/demo/_speedups.cpython-311-darwin.so": zig["macos-aarch64", "libdemo.dylib"],
        "app/demo/_native.cpython-311-x86_64-linux-gnu.so": zig["linux-x86_64-musl", "libdemo.so"],
        "app/demo/_native2.so": zig["linux-aarch64-gnu", "libdemo.so"],
        "bin/demo": zig["linux-x86_64-musl", "prog-dynamic"],
        "app/pip/_vendor/distlib/t64.exe": zig["windows-x86_64", "prog.exe"],  # PE: data here
        "python/share/tool.exe": zig["windows-x86_64", "prog.exe"],  # PE, neither target's nor host's format
    })
    assert audit_error(root, "aarch64-apple-darwin") == (
        "binaries that cannot run on aarch64-apple-darwin (Mach-O for aarch64 expected):\n"
        "  app/demo/_native.cpython-311-x86_64-linux-gnu.so: ELF for x86_64 (built for the build machine?)\n"
        "  app/demo/_native2.so: ELF for aarch64 (built for the build machine?)\n"
        "  bin/demo: ELF for x86_64 (built for the build machine?)\n"
        "  python/bin/python3.11: Mach-O for x86_64\n"
        "  python/lib/libx86.dylib: Mach-O for x86_64")


def test_a_fat_file_without_the_target_slice_lists_its_architectures(tmp_path: Path, zig: Zig) -> None:
    root = place(tmp_path / "artifact", {"python/lib/libpython3.11.dylib": zig.fat})
    (root / "python/lib/libpython3.11.dylib").write_bytes(
        fat_file([zig["macos-x86_64", "prog"], zig["macos-x86_64", "prog"]]))
    assert audit_error(root, "aarch64-apple-darwin") == (
        "binaries that cannot run on aarch64-apple-darwin (Mach-O for aarch64 expected):\n"
        "  python/lib/libpython3.11.dylib: Mach-O for x86_64/x86_64")


def test_windows_pip_templates_are_ignored_but_extension_modules_are_not(tmp_path: Path, zig: Zig) -> None:
    arm_exe, arm_dll = zig["windows-aarch64", "prog.exe"], zig["windows-aarch64", "demo.dll"]
    root = place(tmp_path / "artifact", {
        "python/python.exe": zig["windows-x86_64", "prog.exe"],
        "python/python311.dll": zig["windows-x86_64", "demo.dll"],
        # pip's launcher templates (distlib) of other architectures: never run by the artifact, ignored
        "python/Lib/site-packages/pip/_vendor/distlib/t64-arm.exe": arm_exe,
        "app/pip/_vendor/distlib/t64-arm.exe": arm_exe,
        "app/pip/_vendor/distlib/w64-arm.exe": arm_exe,
        # ... but not wrong-architecture extension modules and DLLs, nor executables elsewhere
        "app/demo/_speedups.pyd": arm_dll,
        "python/Lib/site-packages/other/_ext.pyd": arm_dll,
        "python/Lib/site-packages/other/helper.dll": arm_dll,
        "python/Scripts/tool.exe": arm_exe,
        "bin/demo.exe": arm_exe,
        "python/DLLs/libdemo.so": zig["linux-x86_64-musl", "libdemo.so"],
        "python/DLLs/libmac.dylib": zig["macos-aarch64", "libdemo.dylib"],  # Mach-O: neither format, ignored
    })
    assert audit_error(root, "x86_64-pc-windows-msvc") == (
        "binaries that cannot run on x86_64-pc-windows-msvc (PE for x86_64 expected):\n"
        "  app/demo/_speedups.pyd: PE for aarch64\n"
        "  bin/demo.exe: PE for aarch64\n"
        "  python/DLLs/libdemo.so: ELF for x86_64 (built for the build machine?)\n"
        "  python/Lib/site-packages/other/_ext.pyd: PE for aarch64\n"
        "  python/Lib/site-packages/other/helper.dll: PE for aarch64\n"
        "  python/Scripts/tool.exe: PE for aarch64")


def test_templates_are_ignored_for_a_windows_build_machine_too(tmp_path: Path, zig: Zig) -> None:
    """On a Windows build machine PE is the host's format: pip's templates in a Linux artifact are still data,
    other PE files are reported as built for the build machine."""
    root = place(tmp_path / "artifact", {
        "python/bin/python3.11": zig["linux-x86_64-musl", "prog-dynamic"],
        "python/lib/python3.11/site-packages/pip/_vendor/distlib/t64.exe": zig["windows-x86_64", "prog.exe"],
        "app/pip/_vendor/distlib/t64-arm.exe": zig["windows-aarch64", "prog.exe"],
        "app/demo/_speedups.pyd": zig["windows-x86_64", "demo.dll"],
        "bin/demo.exe": zig["windows-x86_64", "prog.exe"],
    })
    assert audit_error(root, "x86_64-unknown-linux-musl", host="x86_64-pc-windows-msvc") == (
        "binaries that cannot run on x86_64-unknown-linux-musl (ELF for x86_64 expected):\n"
        "  app/demo/_speedups.pyd: PE for x86_64 (built for the build machine?)\n"
        "  bin/demo.exe: PE for x86_64 (built for the build machine?)")


def test_mach_o_in_a_windows_artifact_built_on_macos(tmp_path: Path, zig: Zig) -> None:
    root = place(tmp_path / "artifact", {
        "python/python.exe": zig["windows-aarch64", "prog.exe"],
        "app/demo/_speedups.cpython-311-darwin.so": zig["macos-aarch64", "libdemo.dylib"],
        "app/demo/_linux.so": zig["linux-aarch64-gnu", "libdemo.so"],  # neither format: ignored
    })
    assert audit_error(root, "aarch64-pc-windows-msvc", host="aarch64-apple-darwin") == (
        "binaries that cannot run on aarch64-pc-windows-msvc (PE for aarch64 expected):\n"
        "  app/demo/_speedups.cpython-311-darwin.so: Mach-O for aarch64 (built for the build machine?)")


def test_cpu_level_triples_accept_baseline_binaries(tmp_path: Path, zig: Zig) -> None:
    root = place(tmp_path / "artifact", {"python/bin/python3.11": zig["linux-x86_64-musl", "prog-dynamic"],
                                         "app/_a.so": zig["linux-x86_64-musl", "libdemo.so"]})
    for triple in ("x86_64_v2-unknown-linux-gnu", "x86_64_v3-unknown-linux-gnu", "x86_64_v4-unknown-linux-musl"):
        assert [b.path for b in check_architectures(root, triple, host=LINUX_HOST)] == \
            ["app/_a.so", "python/bin/python3.11"]
    place(root, {"app/_b.so": zig["linux-aarch64-gnu", "libdemo.so"]})
    assert audit_error(root, "x86_64_v3-unknown-linux-gnu") == (
        "binaries that cannot run on x86_64_v3-unknown-linux-gnu (ELF for x86_64 expected):\n"
        "  app/_b.so: ELF for aarch64")


# ----------------------------------------------------------------------------------------------------------------
# is_static_elf() and check_static_runtime()


@pytest.mark.parametrize(("label", "name", "static"), [
    ("linux-x86_64-musl", "prog-static", True),
    ("linux-aarch64-musl", "prog-static", True),
    ("linux-x86_64-musl", "prog-static-pie", True),  # ET_DYN without PT_INTERP, DF_1_PIE
    ("linux-x86_64-musl", "prog-dynamic", False),
    ("linux-aarch64-gnu", "prog", False),
    # A shared library has no PT_INTERP either, but it is no statically linked executable.
    ("linux-x86_64-musl", "libdemo.so", False),
    ("linux-aarch64-gnu", "libdemo.so", False),
    ("macos-aarch64", "prog", False),
    ("windows-x86_64", "prog.exe", False),
])
def test_is_static_elf(zig: Zig, label: str, name: str, static: bool) -> None:
    assert is_static_elf(zig[label, name]) is static


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the running interpreter is an ELF file on Linux")
def test_the_host_interpreter_is_not_static() -> None:
    assert is_static_elf(host_binary()) is False


def test_is_static_elf_on_truncated_and_other_files(tmp_path: Path, zig: Zig) -> None:
    data = zig["linux-x86_64-musl", "prog-static"].read_bytes()
    place(tmp_path, {"header-only": data[:64], "short": data[:40], "text": "#!/bin/sh\n", "empty": b""})
    for name in ("header-only", "short", "text", "empty"):
        assert is_static_elf(tmp_path / name) is False, name


def site_with(root: Path, names: list[str]) -> Path:
    site = root / "app"
    place(site, dict.fromkeys(names, b"\x7fELF not really"))
    place(site, {"demo/__init__.py": "", "demo/data.txt": "x"})
    return site


def test_static_runtime_with_extension_modules_is_refused(tmp_path: Path, zig: Zig) -> None:
    interpreter = place(tmp_path, {"python/bin/python3.11": zig["linux-x86_64-musl", "prog-static"]})
    interpreter /= "python/bin/python3.11"
    site = site_with(tmp_path, ["orjson/orjson.cpython-311-x86_64-linux-musl.so"])
    with pytest.raises(AuditError) as info:
        check_static_runtime(interpreter, site, "x86_64-unknown-linux-musl")
    assert str(info.value) == (
        "the x86_64-unknown-linux-musl runtime is statically linked (a +static build) and cannot load extension "
        "modules, but the application has: orjson/orjson.cpython-311-x86_64-linux-musl.so; choose a release "
        "with a dynamic musl runtime (20250311 or newer)")


def test_static_runtime_lists_five_extension_modules_and_counts_the_rest(tmp_path: Path, zig: Zig) -> None:
    interpreter = place(tmp_path, {"python/bin/python3.11": zig["linux-aarch64-musl", "prog-static"]})
    interpreter /= "python/bin/python3.11"
    names = [f"pkg{index}/_m{index}.so" for index in (7, 1, 3, 5, 2, 6, 4)]
    site = site_with(tmp_path, names)
    with pytest.raises(AuditError) as info:
        check_static_runtime(interpreter, site, "aarch64-unknown-linux-musl")
    assert str(info.value) == (
        "the aarch64-unknown-linux-musl runtime is statically linked (a +static build) and cannot load extension "
        "modules, but the application has: pkg1/_m1.so, pkg2/_m2.so, pkg3/_m3.so, pkg4/_m4.so, pkg5/_m5.so "
        "and 2 more; choose a release with a dynamic musl runtime (20250311 or newer)")


@pytest.mark.parametrize(("name", "extensions"), [
    ("prog-static", []),  # static runtime, pure-Python application
    ("prog-dynamic", ["orjson/orjson.cpython-311-x86_64-linux-musl.so"]),  # dynamic runtime loads them
    ("libdemo.so", ["orjson/orjson.cpython-311-x86_64-linux-musl.so"]),  # not a static executable
])
def test_static_runtime_check_passes(tmp_path: Path, zig: Zig, name: str, extensions: list[str]) -> None:
    interpreter = place(tmp_path, {"python/bin/python3.11": zig["linux-x86_64-musl", name]})
    interpreter /= "python/bin/python3.11"
    assert check_static_runtime(interpreter, site_with(tmp_path, extensions), "x86_64-unknown-linux-musl") is None


def test_static_runtime_check_without_an_interpreter_file_passes(tmp_path: Path) -> None:
    site = site_with(tmp_path, ["a/_a.so"])
    assert check_static_runtime(tmp_path / "python/bin/python3.11", site, "x86_64-unknown-linux-musl") is None
    (tmp_path / "python/bin/python3.11").mkdir(parents=True)  # a directory is no interpreter either
    assert check_static_runtime(tmp_path / "python/bin/python3.11", site, "x86_64-unknown-linux-musl") is None


def test_static_runtime_check_follows_the_interpreter_symlink(tmp_path: Path, zig: Zig) -> None:
    place(tmp_path, {"python/bin/python3.11": zig["linux-x86_64-musl", "prog-static"]})
    link = tmp_path / "python/bin/python3"
    link.symlink_to("python3.11")
    with pytest.raises(AuditError, match="runtime is statically linked"):
        check_static_runtime(link, site_with(tmp_path, ["a/_a.so"]), "x86_64-unknown-linux-musl")
    assert os.path.islink(link)


# ----------------------------------------------------------------------------------------------------------------
# Platform floors: glibc_needed(), macos_needed(), check_floor()

THREADS_C = ("#include <pthread.h>\nstatic void *run(void *arg) { return arg; }\n"
             "int start(void) { pthread_t thread; return pthread_create(&thread, 0, run, 0); }\n")
_THREADS_SO = [("libthreads.so", ["-shared", "-fPIC", "-o", "libthreads.so", "threads.c"])]
_THREADS_DYLIB = [("libthreads.dylib", ["-shared", "-o", "libthreads.dylib", "threads.c"])]

#: label -> (zig target, steps): glibc 2.34 made pthread_create's default version GLIBC_2.34.
FLOOR_PLAN: dict[str, tuple[str, list[tuple[str, list[str]]]]] = {
    "gnu-x86_64-2.17": ("x86_64-linux-gnu.2.17", _THREADS_SO),
    "gnu-x86_64-2.34": ("x86_64-linux-gnu.2.34", _THREADS_SO),
    "gnu-aarch64-2.17": ("aarch64-linux-gnu.2.17", _THREADS_SO),
    "gnu-aarch64-2.34": ("aarch64-linux-gnu.2.34", _THREADS_SO),
    "gnu-x86-2.17": ("x86-linux-gnu.2.17", _THREADS_SO),  # ELFCLASS32
    "musl-x86_64": ("x86_64-linux-musl", _THREADS_SO),
    "macos-aarch64-12": ("aarch64-macos.12.0", _THREADS_DYLIB),  # LC_BUILD_VERSION
    "macos-x86_64-10.13": ("x86_64-macos.10.13", _THREADS_DYLIB),  # LC_VERSION_MIN_MACOSX
}


@pytest.fixture(scope="session")
def floor_binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """label -> the compiled library (``universal`` is a fat file of the two macOS ones, x86_64 slice first)."""
    build_dir = tmp_path_factory.mktemp("zig-floors")

    def build(label: str) -> tuple[str, Path]:
        target, steps = FLOOR_PLAN[label]
        return label, _cached_build(build_dir, label, target, {"threads.c": THREADS_C}, steps) / steps[0][0]

    with ThreadPoolExecutor(max_workers=4) as pool:
        built = dict(pool.map(build, FLOOR_PLAN))
    universal = build_dir / "libthreads-universal.dylib"
    universal.write_bytes(fat_file([built["macos-x86_64-10.13"], built["macos-aarch64-12"]]))
    return {**built, "universal": universal}


def lief_glibc_needed(path: Path) -> tuple[int, ...] | None:
    """The oracle: the GLIBC_ versions LIEF reads from the same file's version requirements."""
    import lief

    binary = lief.ELF.parse(str(path))  # kept alive while its requirements are read (see lief_support)
    versions = [tuple(int(part) for part in aux.name[len("GLIBC_"):].split("."))
                for requirement in binary.symbols_version_requirement
                for aux in requirement.get_auxiliary_symbols() if aux.name.startswith("GLIBC_2")]
    return max(versions) if versions else None


@pytest.mark.parametrize(("label", "expected"), [
    ("gnu-x86_64-2.17", (2, 2, 5)), ("gnu-x86_64-2.34", (2, 34)), ("gnu-aarch64-2.17", (2, 17)),
    ("gnu-aarch64-2.34", (2, 34)), ("gnu-x86-2.17", (2, 1)), ("musl-x86_64", None)])
def test_glibc_needed(floor_binaries: dict[str, Path], label: str, expected: tuple[int, ...] | None) -> None:
    assert glibc_needed(floor_binaries[label]) == expected == lief_glibc_needed(floor_binaries[label])


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the running interpreter links glibc")
def test_glibc_needed_of_the_running_interpreter_agrees_with_lief() -> None:
    for path in (host_binary(), *Path(sys.base_prefix, "lib").glob("libpython*.so*")):
        if path.is_file() and not path.is_symlink():
            assert glibc_needed(path) == lief_glibc_needed(path), path


def test_glibc_needed_of_other_files_is_none(tmp_path: Path, floor_binaries: dict[str, Path]) -> None:
    truncated = tmp_path / "truncated.so"
    truncated.write_bytes(floor_binaries["gnu-x86_64-2.34"].read_bytes()[:200])
    text = place(tmp_path, {"script.py": "print(1)\n"}) / "script.py"
    for path in (truncated, text, floor_binaries["macos-aarch64-12"], floor_binaries["universal"]):
        assert glibc_needed(path) is None


@pytest.mark.parametrize(("label", "arch", "expected"), [
    ("macos-aarch64-12", "aarch64", (12, 0)), ("macos-x86_64-10.13", "x86_64", (10, 13)),
    ("universal", "aarch64", (12, 0)), ("universal", "x86_64", (10, 13)),
    ("universal", "ppc", (12, 0)),  # no slice of that architecture: the highest
    ("gnu-x86_64-2.34", "x86_64", None)])
def test_macos_needed(floor_binaries: dict[str, Path], label: str, arch: str,
                      expected: tuple[int, int] | None) -> None:
    assert macos_needed(floor_binaries[label], arch) == expected


def test_macos_needed_agrees_with_lief(floor_binaries: dict[str, Path]) -> None:
    from lief_support import macho_slice

    for label in ("macos-aarch64-12", "macos-x86_64-10.13"):
        binary = macho_slice(floor_binaries[label])
        version = binary.build_version.minos if binary.has_build_version else binary.version_min.version
        assert macos_needed(floor_binaries[label], "aarch64" if "aarch64" in label else "x86_64") == tuple(
            version[:2])


LINUX_FLOOR_TREE = {"python/lib/libold.so": "gnu-x86_64-2.17", "app/pkg/_new.so": "gnu-x86_64-2.34",
                    "app/pkg/_old.so": "gnu-x86_64-2.17"}


def floor_tree(root: Path, floor_binaries: dict[str, Path], files: dict[str, str]) -> Path:
    return place(root, {relative: floor_binaries[label] for relative, label in files.items()})


def test_an_application_binary_above_the_glibc_floor_is_an_error(tmp_path: Path,
                                                                 floor_binaries: dict[str, Path]) -> None:
    root = floor_tree(tmp_path, floor_binaries, LINUX_FLOOR_TREE)
    with pytest.raises(AuditError) as info:
        check_floor(root, "x86_64-unknown-linux-gnu", PlatformFloors())
    assert str(info.value) == (
        "binaries need a newer glibc than the floor 2.17 (option `manylinux`) of x86_64-unknown-linux-gnu:\n"
        "  app/pkg/_new.so: needs glibc 2.34\n"
        'set manylinux = "2_34" (the artifacts then need glibc 2.34 or newer), or use wheels built for the floor')


def test_the_real_glibc_floor_at_a_floor_that_allows_it(tmp_path: Path, floor_binaries: dict[str, Path]) -> None:
    root = floor_tree(tmp_path, floor_binaries, LINUX_FLOOR_TREE)
    audit = check_floor(root, "x86_64-unknown-linux-gnu", PlatformFloors(manylinux=(2, 34)))
    assert audit is not None
    assert audit.manifest_record() == {"kind": "glibc", "declared": "2.34", "needed": "2.34",
                                       "needed_by": "app/pkg/_new.so"}
    with pytest.raises(AuditError, match=r'set manylinux = "2_34"'):  # 2_31: uv's floors jump from 2_28 to 2_31
        check_floor(root, "x86_64-unknown-linux-gnu", PlatformFloors(manylinux=(2, 31)))


def test_a_runtime_binary_above_the_floor_is_an_error_too(tmp_path: Path, floor_binaries: dict[str, Path]) -> None:
    """The artifact promises its declared floor whoever made the file: the runtime's files count, summed up in one
    line (a runtime built for a newer system has dozens)."""
    root = floor_tree(tmp_path, floor_binaries, {"python/lib/libnew.so": "gnu-aarch64-2.34",
                                                 "python/bin/python3": "gnu-aarch64-2.34",
                                                 "app/pkg/_old.so": "gnu-aarch64-2.17"})
    with pytest.raises(AuditError) as info:
        check_floor(root, "aarch64-unknown-linux-gnu", PlatformFloors())
    assert str(info.value) == (
        "binaries need a newer glibc than the floor 2.17 (option `manylinux`) of aarch64-unknown-linux-gnu:\n"
        "  python/bin/python3 (and 1 more of the runtime's files): needs glibc 2.34\n"
        'set manylinux = "2_34" (the artifacts then need glibc 2.34 or newer), or use wheels built for the floor, or '
        "a runtime built for it (the files below python/ are the runtime's; python-build-standalone's own need glibc "
        "2.17 and macOS 11.0)")
    audit = check_floor(root, "aarch64-unknown-linux-gnu", PlatformFloors(manylinux=(2, 34)))
    assert audit is not None and audit.manifest_record() == {"kind": "glibc", "declared": "2.34", "needed": "2.34",
                                                             "needed_by": "python/bin/python3"}


def test_an_application_binary_above_the_macos_floor_is_an_error(tmp_path: Path,
                                                                 floor_binaries: dict[str, Path]) -> None:
    root = floor_tree(tmp_path, floor_binaries, {"app/pkg/_ext.so": "macos-aarch64-12",
                                                 "app/pkg/_fat.so": "universal"})
    with pytest.raises(AuditError) as info:
        check_floor(root, "aarch64-apple-darwin", PlatformFloors())
    assert str(info.value) == (
        "binaries need a newer macOS than the floor 11.0 (option `macos`) of aarch64-apple-darwin:\n"
        "  app/pkg/_ext.so: needs macOS 12.0\n  app/pkg/_fat.so: needs macOS 12.0\n"
        'set macos = "12.0" (the artifacts then need macOS 12.0 or newer), or use wheels built for the floor')
    assert check_floor(root, "aarch64-apple-darwin", PlatformFloors(macos=(12, 0))).manifest_record() == {
        "kind": "macos", "declared": "12.0", "needed": "12.0", "needed_by": "app/pkg/_ext.so"}
    # The x86_64 slice of the universal file needs only 10.13; the arm64 file is no x86_64 binary for the floor.
    audit = check_floor(place(tmp_path / "intel", {"app/pkg/_fat.so": floor_binaries["universal"]}),
                        "x86_64-apple-darwin", PlatformFloors())
    assert audit is not None and audit.needed == (10, 13)


def test_musl_artifacts_have_no_measurable_floor_but_refuse_glibc_binaries(tmp_path: Path,
                                                                           floor_binaries: dict[str, Path]) -> None:
    clean = floor_tree(tmp_path / "clean", floor_binaries, {"app/pkg/_ext.so": "musl-x86_64"})
    assert check_floor(clean, "x86_64-unknown-linux-musl", PlatformFloors()).manifest_record() == {
        "kind": "musl", "declared": "1.2", "needed": None, "needed_by": None}
    mixed = floor_tree(tmp_path / "mixed", floor_binaries, {"app/pkg/_ext.so": "gnu-x86_64-2.17"})
    with pytest.raises(AuditError) as info:
        check_floor(mixed, "x86_64-unknown-linux-musl", PlatformFloors())
    assert str(info.value) == ("binaries linked against glibc cannot run on x86_64-unknown-linux-musl (musl):\n"
                               "  app/pkg/_ext.so: glibc 2.2.5")


def test_windows_artifacts_have_no_floor(tmp_path: Path, floor_binaries: dict[str, Path]) -> None:
    root = floor_tree(tmp_path, floor_binaries, {"app/pkg/_new.so": "gnu-x86_64-2.34"})
    assert check_floor(root, "x86_64-pc-windows-msvc", PlatformFloors()) is None
