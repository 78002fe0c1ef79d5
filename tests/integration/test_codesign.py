"""Ad-hoc code signing of Mach-O files (hatch_pbs.binaries.codesign), checked against real binaries linked by zig.

macOS binaries cannot be run on this (Linux) machine, so nothing here executes them: signatures are checked by
parsing them with a small, independent reader (``tests/codesign_support.py``: struct + hashlib, none of
hatch_pbs's code), by comparing with the signature zig's linker wrote for the same file, and with LIEF.

zig (the ``ziglang`` package) cross-compiles the test programs for ``aarch64-macos`` and ``x86_64-macos``. Its
linker signs arm64 output ad-hoc (``CodeSignature.zig``: CodeDirectory only, flags adhoc|linker-signed, 16 KiB
pages) and leaves x86_64 output unsigned. Compiled outputs are cached for the session (:func:`zig_demo`).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import lief
import pytest
from codesign_support import (
    TARGETS,
    assert_valid_signature,
    copy,
    fat_file,
    parse,
    strip_signature,
    zig_demo,
)
from lief_support import macho_slice

from hatch_pbs.binaries.codesign import (
    read_code_directory,
    sign_adhoc,
    signature_problems,
)
from hatch_pbs.errors import RelocateError, SigningError

pytest.importorskip("ziglang", reason="the ziglang package (zig's C cross-compiler) is needed to build Mach-O files")

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
