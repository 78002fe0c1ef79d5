"""Ad-hoc code signing of Mach-O files (hatch_pbs.binaries.codesign), checked against real binaries linked by zig.

macOS binaries cannot be run on this (Linux) machine, so nothing here executes them: signatures are checked by
parsing them with a small, independent reader written in this module (struct + hashlib, none of hatch_pbs's
code), by comparing with the signature zig's linker wrote for the same file, and with LIEF.

zig (the ``ziglang`` package) cross-compiles the test programs for ``aarch64-macos`` and ``x86_64-macos``. Its
linker signs arm64 output ad-hoc (``CodeSignature.zig``: CodeDirectory only, flags adhoc|linker-signed, 16 KiB
pages) and leaves x86_64 output unsigned. Compiled outputs are cached for the session (:func:`zig_demo`).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import lief
import pytest
from lief_support import macho_slice

from hatch_pbs.binaries.codesign import (
    read_code_directory,
    sign_adhoc,
    signature_problems,
)
from hatch_pbs.errors import RelocateError, SigningError

pytest.importorskip("ziglang", reason="the ziglang package (zig's C cross-compiler) is needed to build Mach-O files")

TARGETS = ("aarch64-macos", "x86_64-macos")

DEMO_C = "int demo_value(void) { return 42; }\n"
MAIN_C = '#include <stdio.h>\nint demo_value(void);\nint main(void) { printf("%d\\n", demo_value()); return 0; }\n'
EXT_C = "int demo_value(void);\nint ext_value(void) { return demo_value() + 1; }\n"


# ----------------------------------------------------------------------------------------------------------------
# Building test binaries with zig (cached per session)


def zig_cc(target: str, output: Path, *arguments: str | Path) -> Path:
    command = [sys.executable, "-m", "ziglang", "cc", "-target", target, "-o", str(output), *map(str, arguments)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=output.parent)
    if proc.returncode != 0:
        pytest.fail(f"zig cc failed ({' '.join(command)}):\n{proc.stderr}")
    return output


@dataclass(frozen=True)
class DemoBinaries:
    """Binaries for one target, as older PBS releases shipped libpython: install names under ``/install``."""

    target: str
    library: Path
    """``libdemo.dylib``, install name ``/install/lib/libdemo.dylib``."""
    executable: Path
    """``demo``, linking the library by that install name, LC_RPATH ``/install/lib`` and ``/build/stage/python/lib``."""
    extension: Path
    """``ext.so``: a library (the shape of an extension module) linking libdemo, install name under
    ``/install/lib/python3.11/lib-dynload``, LC_RPATH ``/install/lib``, ``/opt/homebrew/lib``,
    ``@loader_path/../..``."""
    relocatable: Path
    """``libok.dylib``: install name ``@rpath/libok.dylib``, nothing to relocate."""
    weak_executable: Path
    """``weakdemo``: links libdemo weakly (``LC_LOAD_WEAK_DYLIB /install/lib/libdemo.dylib``)."""


@functools.cache
def _build_directory() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="hatch-pbs-zig-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


@functools.cache
def zig_demo(target: str) -> DemoBinaries:
    """Compile the demo binaries for ``target`` once per session; callers copy them before changing them."""
    directory = _build_directory() / target
    directory.mkdir()
    for name, source in (("demo.c", DEMO_C), ("main.c", MAIN_C), ("ext.c", EXT_C)):
        (directory / name).write_text(source)
    library = zig_cc(target, directory / "libdemo.dylib", "-shared", "demo.c",
                     "-Wl,-install_name,/install/lib/libdemo.dylib")
    executable = zig_cc(target, directory / "demo", "main.c", "libdemo.dylib", "-Wl,-rpath,/install/lib",
                        "-Wl,-rpath,/build/stage/python/lib")
    extension = zig_cc(target, directory / "ext.so", "-shared", "ext.c", "libdemo.dylib",
                       "-Wl,-install_name,/install/lib/python3.11/lib-dynload/ext.so", "-Wl,-rpath,/install/lib",
                       "-Wl,-rpath,/opt/homebrew/lib", "-Wl,-rpath,@loader_path/../..")
    relocatable = zig_cc(target, directory / "libok.dylib", "-shared", "demo.c",
                         "-Wl,-install_name,@rpath/libok.dylib")
    weak_executable = zig_cc(target, directory / "weakdemo", "main.c", "-L.", "-Wl,-weak-ldemo")
    return DemoBinaries(target, library, executable, extension, relocatable, weak_executable)


def fat_file(slices: list[Path]) -> bytes:
    """A universal (fat) Mach-O file of ``slices`` (``mach-o/fat.h``: big-endian header, 16 KiB aligned)."""
    header = struct.pack(">2I", 0xCAFEBABE, len(slices))
    offset = 16384
    entries, body = b"", b""
    for path in slices:
        data = path.read_bytes()
        cputype, cpusubtype = struct.unpack_from("<2I", data, 4)
        entries += struct.pack(">5I", cputype, cpusubtype, offset, len(data), 14)
        body += data + b"\0" * (-len(data) % 16384)
        offset += len(data) + (-len(data) % 16384)
    head = header + entries
    return head + b"\0" * (16384 - len(head)) + body


# ----------------------------------------------------------------------------------------------------------------
# An independent reader of embedded signatures (cs_blobs.h), used to check what hatch_pbs.binaries.codesign writes.

LC_SEGMENT_64, LC_CODE_SIGNATURE = 0x19, 0x1D


@dataclass
class Parsed:
    ncmds: int
    filetype: int
    dataoff: int
    datasize: int
    linkedit: tuple[int, int]  # fileoff, filesize
    text: tuple[int, int]
    blobs: dict[int, bytes]
    """Slot type -> blob bytes."""
    cd: dict[str, object]
    """CodeDirectory fields, plus ``ident``, ``special`` (slot -> hash) and ``hashes``."""


CD_FIELDS = ("magic", "length", "version", "flags", "hashOffset", "identOffset", "nSpecialSlots", "nCodeSlots",
             "codeLimit", "hashSize", "hashType", "platform", "pageSize", "spare2", "scatterOffset", "teamOffset",
             "spare3", "codeLimit64", "execSegBase", "execSegLimit", "execSegFlags")


def parse(data: bytes) -> Parsed:
    """Parse a thin little-endian 64-bit Mach-O file's embedded signature."""
    assert data[:4] == b"\xcf\xfa\xed\xfe", "not a thin 64-bit little-endian Mach-O file"
    filetype, ncmds, sizeofcmds = struct.unpack_from("<3I", data, 12)
    offset, signature, segments = 32, None, {}
    for _ in range(ncmds):
        cmd, cmdsize = struct.unpack_from("<2I", data, offset)
        if cmd == LC_CODE_SIGNATURE:
            signature = struct.unpack_from("<2I", data, offset + 8)
        elif cmd == LC_SEGMENT_64:
            name = data[offset + 8:offset + 24].rstrip(b"\0").decode()
            segments[name] = struct.unpack_from("<2Q", data, offset + 40)
        offset += cmdsize
    assert offset == 32 + sizeofcmds
    assert signature is not None, "no LC_CODE_SIGNATURE"
    dataoff, datasize = signature
    superblob = data[dataoff:dataoff + datasize]
    magic, length, count = struct.unpack_from(">3I", superblob)
    assert magic == 0xFADE0CC0 and length <= datasize
    blobs = {}
    for index in range(count):
        slot, blob_offset = struct.unpack_from(">2I", superblob, 12 + 8 * index)
        blob_length = struct.unpack_from(">I", superblob, blob_offset + 4)[0]
        blobs[slot] = superblob[blob_offset:blob_offset + blob_length]
    raw = blobs[0]
    cd = dict(zip(CD_FIELDS, struct.unpack_from(">9I4B4I4Q", raw), strict=True))
    assert cd["magic"] == 0xFADE0C02 and cd["length"] == len(raw)
    cd["ident"] = raw[cd["identOffset"]:raw.index(b"\0", cd["identOffset"])].decode()
    hash_offset, size = cd["hashOffset"], cd["hashSize"]
    cd["special"] = {slot: raw[hash_offset - slot * size:hash_offset - (slot - 1) * size]
                     for slot in range(1, cd["nSpecialSlots"] + 1)}
    cd["hashes"] = [raw[hash_offset + i * size:hash_offset + (i + 1) * size] for i in range(cd["nCodeSlots"])]
    return Parsed(ncmds, filetype, dataoff, datasize, segments["__LINKEDIT"], segments["__TEXT"], blobs, cd)


def assert_valid_signature(path: Path, identifier: str | None = None) -> Parsed:
    """Recompute every page hash and special-slot hash of ``path``'s signature and compare."""
    data = path.read_bytes()
    parsed = parse(data)
    cd = parsed.cd
    assert cd["hashType"] == 2 and cd["hashSize"] == 32  # SHA-256
    assert cd["codeLimit"] == parsed.dataoff, "the hashes must cover the file up to the signature"
    page = 1 << cd["pageSize"]
    expected = [hashlib.sha256(data[start:min(start + page, parsed.dataoff)]).digest()
                for start in range(0, parsed.dataoff, page)]
    assert cd["hashes"] == expected, f"{path}: page hashes do not match the file"
    for slot, digest in cd["special"].items():
        if slot in parsed.blobs:
            assert hashlib.sha256(parsed.blobs[slot]).digest() == digest, f"special slot {slot}"
        else:
            assert digest == b"\0" * 32, f"special slot {slot} hashes a blob the signature does not have"
    # The signature ends __LINKEDIT and the file.
    fileoff, filesize = parsed.linkedit
    assert fileoff + filesize == parsed.dataoff + parsed.datasize == len(data)
    assert cd["execSegBase"] == parsed.text[0] and cd["execSegLimit"] == parsed.text[1]
    assert cd["execSegFlags"] == (1 if parsed.filetype == 2 else 0)
    assert cd["flags"] & 0x2, "not ad-hoc"
    if identifier is not None:
        assert cd["ident"] == identifier
    return parsed


def strip_signature(source: Path, destination: Path) -> None:
    """Remove zig's signature by hand: drop LC_CODE_SIGNATURE (the last load command), truncate the file at its
    data and shrink __LINKEDIT: the file as zig's linker had it just before signing."""
    data = bytearray(source.read_bytes())
    ncmds, sizeofcmds = struct.unpack_from("<2I", data, 16)
    offset, linkedit, signature = 32, None, None
    for index in range(ncmds):
        cmd, cmdsize = struct.unpack_from("<2I", data, offset)
        if cmd == LC_CODE_SIGNATURE:
            assert index == ncmds - 1
            signature = (offset, *struct.unpack_from("<2I", data, offset + 8))
        elif cmd == LC_SEGMENT_64 and data[offset + 8:offset + 24].rstrip(b"\0") == b"__LINKEDIT":
            linkedit = offset
        offset += cmdsize
    assert signature is not None and linkedit is not None
    command, dataoff, _ = signature
    data[command:command + 16] = bytes(16)
    struct.pack_into("<2I", data, 16, ncmds - 1, sizeofcmds - 16)
    fileoff = struct.unpack_from("<Q", data, linkedit + 40)[0]
    struct.pack_into("<Q", data, linkedit + 48, dataoff - fileoff)
    del data[dataoff:]
    destination.write_bytes(bytes(data))


def copy(source: Path, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, destination)
    return destination


# ----------------------------------------------------------------------------------------------------------------
# zig's own signature, reproduced


@pytest.mark.parametrize("kind", ["executable", "library"])
def test_linker_style_reproduces_zigs_signature_byte_for_byte(kind: str, tmp_path: Path) -> None:
    """Signing a zig-linked arm64 file whose signature was removed gives back zig's CodeDirectory, byte for byte
    (and the whole file), with ``style="linker"``: flags adhoc|linker-signed, 16 KiB pages, no special slots."""
    original = getattr(zig_demo("aarch64-macos"), kind)
    zig = parse(original.read_bytes())
    assert zig.cd["flags"] == 0x20002 and zig.cd["pageSize"] == 14 and zig.cd["nSpecialSlots"] == 0
    assert list(zig.blobs) == [0]
    assert_valid_signature(original, original.name)

    stripped = tmp_path / original.name  # same name: zig's identifier is the output file name
    strip_signature(original, stripped)
    with pytest.raises(SigningError, match="no code signature"):
        read_code_directory(stripped)
    sign_adhoc(stripped, style="linker")

    ours = assert_valid_signature(stripped, original.name)
    assert ours.blobs[0] == zig.blobs[0]
    assert read_code_directory(stripped).raw == read_code_directory(original).raw == zig.blobs[0]
    assert stripped.read_bytes() == original.read_bytes()


@pytest.mark.parametrize("kind", ["executable", "library"])
def test_default_style_is_what_codesign_writes(kind: str, tmp_path: Path) -> None:
    """The default (``codesign -s -``) signature of the same stripped file: CodeDirectory, empty Requirements and an
    empty CMS wrapper; the CodeDirectory agrees with zig's in every field zig sets except the three that differ by
    design (flags without linker-signed, 4 KiB pages, the two special slots), and so in the hashes."""
    original = getattr(zig_demo("aarch64-macos"), kind)
    zig = parse(original.read_bytes())
    path = tmp_path / original.name
    strip_signature(original, path)
    sign_adhoc(path)

    ours = assert_valid_signature(path, original.name)
    assert list(ours.blobs) == [0, 2, 0x10000]
    assert ours.blobs[2] == bytes.fromhex("fade0c01" "0000000c" "00000000")  # Requirements, count 0
    assert ours.blobs[0x10000] == bytes.fromhex("fade0b01" "00000008")  # BlobWrapper, no CMS: ad-hoc
    assert ours.cd["special"] == {1: bytes(32), 2: hashlib.sha256(ours.blobs[2]).digest()}
    assert ours.cd["flags"] == 0x2 and zig.cd["flags"] == 0x2 | 0x20000
    assert ours.cd["pageSize"] == 12 and zig.cd["pageSize"] == 14
    assert ours.dataoff % 16 == 0 and ours.datasize % 16 == 0
    same = ("magic", "version", "identOffset", "codeLimit", "hashSize", "hashType", "platform", "spare2",
            "scatterOffset", "teamOffset", "spare3", "codeLimit64", "execSegBase", "execSegLimit", "execSegFlags",
            "ident")
    assert {name: ours.cd[name] for name in same} == {name: zig.cd[name] for name in same}
    assert ours.cd["version"] == 0x20400
    # The 4 KiB page hashes of ours and zig's 16 KiB ones both cover the same bytes up to codeLimit, apart from
    # the header (LC_CODE_SIGNATURE's datasize and __LINKEDIT's filesize differ with the signature's size).
    ours_data, zig_data = path.read_bytes(), original.read_bytes()
    assert ours_data[4096:ours.dataoff] == zig_data[4096:zig.dataoff]


# ----------------------------------------------------------------------------------------------------------------
# Signing files zig left unsigned (x86_64), re-signing, options, failures


@pytest.mark.parametrize("kind", ["executable", "library", "extension"])
def test_unsigned_x86_64_file_gets_a_load_command_and_a_signature(kind: str, tmp_path: Path) -> None:
    original = getattr(zig_demo("x86_64-macos"), kind)
    before = macho_slice(str(original))
    assert not before.has_code_signature
    path = copy(original, tmp_path / original.name)
    path.chmod(0o751)
    sign_adhoc(path)

    parsed = assert_valid_signature(path, original.name)
    assert parsed.ncmds == len(before.commands) + 1
    assert parsed.dataoff % 16 == 0
    data, old = path.read_bytes(), original.read_bytes()
    assert data[4096:len(old)] == old[4096:]  # only the header (first page) changed before the signature
    assert data[len(old):parsed.dataoff] == bytes(parsed.dataoff - len(old))  # alignment padding
    after = macho_slice(str(path))
    assert after.has_code_signature
    assert (after.code_signature.data_offset, after.code_signature.data_size) == (parsed.dataoff, parsed.datasize)
    assert [str(c.command) for c in after.commands][-1] == "TYPE.CODE_SIGNATURE"
    # Everything else is where it was: segments' content and the symbol table.
    assert [(s.name, bytes(s.content)) for s in after.sections] == [(s.name, bytes(s.content)) for s in before.sections]
    assert sorted(s.name for s in after.symbols) == sorted(s.name for s in before.symbols)
    assert path.stat().st_mode & 0o777 == 0o751
    assert signature_problems(path) == []


@pytest.mark.parametrize("target", TARGETS)
def test_resigning_is_deterministic_and_keeps_the_signature_in_place(target: str, tmp_path: Path) -> None:
    path = copy(zig_demo(target).executable, tmp_path / "demo")
    sign_adhoc(path)
    first = path.read_bytes()
    sign_adhoc(path)
    assert path.read_bytes() == first
    assert_valid_signature(path, "demo")


def test_identifier_can_be_given(tmp_path: Path) -> None:
    path = copy(zig_demo("aarch64-macos").library, tmp_path / "libdemo.dylib")
    sign_adhoc(path, "org.example.libdemo")
    assert_valid_signature(path, "org.example.libdemo")
    directory = read_code_directory(path)
    assert directory.identifier == "org.example.libdemo"
    assert directory.is_adhoc and not directory.is_linker_signed
    assert directory.page_size == 4096 and directory.special_hashes[1] == bytes(32)
    assert len(directory.code_hashes) == directory.n_code_slots == -(-directory.code_limit // 4096)


def test_read_code_directory_matches_the_independent_reader(tmp_path: Path) -> None:
    original = zig_demo("aarch64-macos").executable
    directory = read_code_directory(original)
    parsed = parse(original.read_bytes())
    assert (directory.version, directory.flags, directory.n_code_slots, directory.code_limit, directory.page_size,
            directory.exec_seg_limit, directory.exec_seg_flags, directory.identifier) == (
        parsed.cd["version"], parsed.cd["flags"], parsed.cd["nCodeSlots"], parsed.cd["codeLimit"],
        1 << parsed.cd["pageSize"], parsed.cd["execSegLimit"], parsed.cd["execSegFlags"], parsed.cd["ident"])
    assert list(directory.code_hashes) == parsed.cd["hashes"]


def test_a_changed_byte_breaks_the_signature(tmp_path: Path) -> None:
    path = copy(zig_demo("aarch64-macos").executable, tmp_path / "demo")
    sign_adhoc(path)
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF  # inside __TEXT, page 1
    path.write_bytes(bytes(data))
    assert signature_problems(path) == [f"{path}: page 1 hash mismatch"]
    with pytest.raises(AssertionError, match="page hashes"):
        assert_valid_signature(path)


def test_universal_file_is_refused(tmp_path: Path) -> None:
    binaries = [zig_demo(target).library for target in TARGETS]
    path = tmp_path / "libdemo.dylib"
    path.write_bytes(fat_file(binaries))
    fat = lief.MachO.parse(str(path))
    assert fat is not None and fat.size == 2  # a well-formed universal file
    before = path.read_bytes()
    with pytest.raises(SigningError, match="universal2 is out of scope") as raised:
        sign_adhoc(path)
    assert isinstance(raised.value, RelocateError)
    assert "universal (fat) Mach-O" in str(raised.value) and str(path) in str(raised.value)
    assert path.read_bytes() == before


def test_32_bit_and_foreign_files_are_refused(tmp_path: Path) -> None:
    thin32 = tmp_path / "old"
    thin32.write_bytes(b"\xce\xfa\xed\xfe" + bytes(60))
    with pytest.raises(SigningError, match="32-bit Mach-O files are not supported"):
        sign_adhoc(thin32)
    text = tmp_path / "script"
    text.write_text("#!/bin/sh\necho hello there, not a Mach-O file\n")
    with pytest.raises(SigningError, match="not a Mach-O file"):
        sign_adhoc(text)


def test_no_room_for_the_load_command_is_refused(tmp_path: Path) -> None:
    """A file whose load commands fill the header padding cannot take an LC_CODE_SIGNATURE: refused, untouched."""
    data = bytearray(zig_demo("x86_64-macos").executable.read_bytes())
    ncmds, sizeofcmds = struct.unpack_from("<2I", data, 16)
    binary = macho_slice(bytes(data))
    first = min(section.offset for section in binary.sections if section.offset)
    free = first - 32 - sizeofcmds
    filler = free - 8  # leave 8 bytes: less than the 16 LC_CODE_SIGNATURE needs
    start = 32 + sizeofcmds
    data[start:start + filler] = struct.pack("<3I", 0x8000001C, filler, 12) + bytes(filler - 12)  # LC_RPATH
    struct.pack_into("<2I", data, 16, ncmds + 1, sizeofcmds + filler)
    path = tmp_path / "demo"
    path.write_bytes(bytes(data))
    with pytest.raises(SigningError, match="no room for LC_CODE_SIGNATURE"):
        sign_adhoc(path)
    assert path.read_bytes() == bytes(data)
