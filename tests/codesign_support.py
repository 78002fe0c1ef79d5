"""Mach-O test binaries linked by zig, and a small independent reader of their signatures (struct + hashlib,
none of hatch_pbs's code): shared by the code-signing and Mach-O relocation tests.

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

import pytest

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
