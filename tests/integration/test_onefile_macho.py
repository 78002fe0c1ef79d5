"""Single-file executables for macOS, made from the committed Mach-O bootstraps (x86_64 and aarch64) with small real
payloads: Mach-O structure (checked with LIEF against the bootstrap), payload round trip, ad-hoc signature (checked
with hatch_pbs's verifier and the independent reader of ``tests/codesign_support.py``), reproducibility, damage, and
the bootstrap's own segment lookup (``findMachoSegment`` in bootstrap.zig, built for this host by zig).

No macOS machine runs them here; see hatch_pbs/onefile/bootstrap/README.md."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import lief
import onefile_support
import pytest
import zstandard
from codesign_support import assert_valid_signature
from lief_support import macho_slice

from hatch_pbs.binaries.codesign import read_code_directory, signature_problems
from hatch_pbs.onefile.macho import SEGMENT_ALIGNMENT, find_segment
from hatch_pbs.onefile.payload import MAGIC, TRAILER_SIZE, read_trailer, write_onefile

BOOTSTRAP_DIR = Path(__file__).resolve().parents[2] / "hatch_pbs" / "onefile" / "bootstrap"
ARCHITECTURES = ("aarch64", "x86_64")
TOP = "demo-1.0"
FILES = {
    "bin/demo": (b"#!/bin/sh\necho demo\n", 0o755),
    "share/data.txt": (b"hello data\n", 0o644),
}
NOISE_SIZE = 100_000


def bootstrap(arch: str) -> Path:
    return BOOTSTRAP_DIR / f"bootstrap-{arch}-apple-darwin"


def make_payload(path: Path) -> Path:
    """A ``.tar.zst`` of :data:`FILES` below ``TOP/`` plus ``share/noise.bin`` (random bytes, incompressible: the
    segment spans several pages)."""
    return onefile_support.make_payload(path, {**FILES, "share/noise.bin": (os.urandom(NOISE_SIZE), 0o644)}, TOP)


def members(archive: bytes) -> dict[str, bytes]:
    """Name -> content of the files of a ``.tar.zst``."""
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(archive)) as reader:
        raw = reader.read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()  # type: ignore[union-attr]
                if member.isfile()}


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_payload(tmp_path_factory.mktemp("payload") / "demo.tar.zst")


@pytest.fixture(scope="module", params=ARCHITECTURES)
def onefile(request: pytest.FixtureRequest, payload: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``demo-1.0-<arch>-apple-darwin`` made from the committed bootstrap and :func:`payload` (do not change it)."""
    arch = request.param
    destination = tmp_path_factory.mktemp(arch) / f"demo-1.0-{arch}-apple-darwin"
    size = write_onefile(bootstrap(arch), payload, "bin/demo", destination)
    assert size == destination.stat().st_size and destination.stat().st_mode & 0o777 == 0o755
    return destination


def arch_of(path: Path) -> str:
    return next(arch for arch in ARCHITECTURES if arch in path.name)


def parse(path: Path) -> lief.MachO.Binary:
    lief.logging.disable()
    return macho_slice(path)  # the parent stays alive: a slice of a freed FatBinary dangles


def test_segment_before_linkedit_holds_payload_entry_and_trailer(onefile: Path, payload: Path) -> None:
    binary, original = parse(onefile), parse(bootstrap(arch_of(onefile)))
    names = [segment.name for segment in binary.segments]
    assert names == [*(segment.name for segment in original.segments)][:-1] + ["__HPBSONE", "__LINKEDIT"]
    segment, linkedit = binary.get_segment("__HPBSONE"), binary.get_segment("__LINKEDIT")
    old_linkedit = original.get_segment("__LINKEDIT")
    assert segment.file_offset == old_linkedit.file_offset and segment.virtual_address == old_linkedit.virtual_address
    assert segment.file_size == segment.virtual_size and segment.file_size % SEGMENT_ALIGNMENT == 0
    assert segment.init_protection == segment.max_protection == 1  # VM_PROT_READ
    [section] = segment.sections
    assert (section.name, section.offset, section.size) == ("__payload", segment.file_offset, segment.file_size)
    assert linkedit.file_offset == old_linkedit.file_offset + segment.file_size
    assert linkedit.virtual_address == old_linkedit.virtual_address + segment.file_size
    assert linkedit.file_offset + linkedit.file_size == onefile.stat().st_size

    trailer = read_trailer(onefile)
    end = segment.file_offset + segment.file_size
    assert trailer.payload_offset == segment.file_offset and trailer.payload_size == payload.stat().st_size
    assert trailer.entry_offset == trailer.payload_offset + trailer.payload_size and trailer.entry == "bin/demo"
    content = onefile.read_bytes()
    assert content[end - TRAILER_SIZE:end - TRAILER_SIZE + 8] == MAGIC
    assert set(content[trailer.entry_offset + trailer.entry_size:end - TRAILER_SIZE]) <= {0}  # padding
    assert find_segment(content[:65536], onefile).offset == segment.file_offset  # type: ignore[union-attr]


def test_memory_and_file_ranges_do_not_overlap(onefile: Path) -> None:
    segments = [segment for segment in parse(onefile).segments if segment.virtual_size]
    by_address = sorted(segments, key=lambda segment: segment.virtual_address)
    for before, after in zip(by_address, by_address[1:], strict=False):
        assert before.virtual_address + before.virtual_size <= after.virtual_address, (before.name, after.name)
    in_file = sorted((segment for segment in segments if segment.file_size and segment.name != "__TEXT"),
                     key=lambda segment: segment.file_offset)
    for before, after in zip(in_file, in_file[1:], strict=False):
        assert before.file_offset + before.file_size <= after.file_offset, (before.name, after.name)


def test_linkedit_contents_read_as_in_the_bootstrap(onefile: Path) -> None:
    """Symbols, binds, rebases, exports, function starts and the entry point, all found through the shifted
    offsets, are those of the bootstrap."""
    binary, original = parse(onefile), parse(bootstrap(arch_of(onefile)))
    assert [symbol.name for symbol in binary.symbols] == [symbol.name for symbol in original.symbols]
    assert len(binary.symbols) > 50

    def binds(image: lief.MachO.Binary) -> list[tuple[int, str]]:
        return sorted((bind.address, bind.symbol.name if bind.has_symbol else "") for bind in image.bindings)

    assert binds(binary) == binds(original) and len(binds(binary)) > 10
    assert sorted(r.address for r in binary.relocations) == sorted(r.address for r in original.relocations)
    assert ([export.node_offset for export in binary.dyld_info.exports]
            == [export.node_offset for export in original.dyld_info.exports])
    assert binary.function_starts.functions == original.function_starts.functions
    assert binary.entrypoint == original.entrypoint
    assert binary.code_signature.data_offset >= binary.get_segment("__LINKEDIT").file_offset


def test_payload_reads_back_byte_identical(onefile: Path, payload: Path) -> None:
    trailer = read_trailer(onefile)
    content = onefile.read_bytes()
    stored = content[trailer.payload_offset:trailer.payload_offset + trailer.payload_size]
    assert stored == payload.read_bytes()
    assert hashlib.sha256(stored).digest() == trailer.sha256
    extracted = members(stored)
    assert extracted == members(payload.read_bytes())
    assert extracted[f"{TOP}/bin/demo"] == FILES["bin/demo"][0] and len(extracted[f"{TOP}/share/noise.bin"]) == NOISE_SIZE


def test_signature_is_valid_and_ad_hoc(onefile: Path) -> None:
    assert signature_problems(onefile) == []
    directory = read_code_directory(onefile)
    assert directory.is_adhoc and not directory.is_linker_signed
    assert directory.identifier == onefile.name
    assert directory.code_limit > read_trailer(onefile).payload_offset  # the payload is covered
    assert_valid_signature(onefile, onefile.name)  # the independent reader


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_rewriting_is_reproducible(arch: str, payload: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "demo", tmp_path / "b" / "demo"
    write_onefile(bootstrap(arch), payload, "bin/demo", first)
    write_onefile(bootstrap(arch), payload, "bin/demo", second)
    assert first.read_bytes() == second.read_bytes()
    write_onefile(bootstrap(arch), payload, "bin/demo", first)  # over an existing file
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("where", ["payload", "padding"])
def test_damage_inside_the_segment_breaks_the_signature(onefile: Path, where: str, tmp_path: Path) -> None:
    damaged = Path(shutil.copy(onefile, tmp_path / onefile.name))
    trailer = read_trailer(damaged)
    offset = trailer.payload_offset + trailer.payload_size // 2 if where == "payload" else \
        trailer.entry_offset + trailer.entry_size + 1
    with open(damaged, "r+b") as stream:
        stream.seek(offset)
        byte = stream.read(1)
        stream.seek(offset)
        stream.write(bytes([byte[0] ^ 0xFF]))
    problems = signature_problems(damaged)
    assert problems == [f"{damaged}: page {offset // 4096} hash mismatch"]


def test_errors(payload: Path, onefile: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="already has a __HPBSONE segment"):
        write_onefile(onefile, payload, "bin/demo", tmp_path / "twice")
    with pytest.raises(ValueError, match="without a __HPBSONE segment"):
        read_trailer(bootstrap(arch_of(onefile)))
    assert not (tmp_path / "twice").exists() and list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------------------------
# The bootstrap's lookup (bootstrap.zig, findMachoSegment), built for this host

HARNESS_ZIG = """\
const std = @import("std");
const bootstrap = @import("bootstrap.zig");

pub fn main(init: std.process.Init) !u8 {
    const io = init.io;
    var args = init.minimal.args.iterate();
    _ = args.skip();
    var buffer: [256]u8 = undefined;
    var writer = std.Io.File.stdout().writer(io, &buffer);
    while (args.next()) |path| {
        const file = try std.Io.Dir.cwd().openFile(io, path, .{});
        defer file.close(io);
        var header: [64 * 1024]u8 = undefined;
        const n = try file.readPositionalAll(io, &header, 0);
        if (bootstrap.findMachoSegment(header[0..n], "__HPBSONE")) |range| {
            try writer.interface.print("{d} {d}\\n", .{ range.offset, range.size });
        } else |err| {
            try writer.interface.print("error {t}\\n", .{err});
        }
    }
    try writer.interface.flush();
    return 0;
}
"""


@pytest.fixture(scope="module")
def lookup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host program printing ``findMachoSegment``'s answer (``<offset> <size>`` or ``error <name>``) for each
    file it is given: bootstrap.zig's function, unchanged, next to a small ``main``."""
    pytest.importorskip("ziglang", reason="the ziglang package builds the lookup harness")
    directory = tmp_path_factory.mktemp("lookup")
    shutil.copy(BOOTSTRAP_DIR / "bootstrap.zig", directory / "bootstrap.zig")
    (directory / "harness.zig").write_text(HARNESS_ZIG)
    command = [sys.executable, "-m", "ziglang", "build-exe", "harness.zig", "-OReleaseSmall", "-fsingle-threaded",
               "--name", "lookup"]
    proc = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return directory / ("lookup.exe" if sys.platform == "win32" else "lookup")


def test_bootstrap_finds_the_trailer_python_wrote(lookup: Path, payload: Path, tmp_path: Path) -> None:
    onefiles = [tmp_path / f"demo-{arch}" for arch in ARCHITECTURES]
    for arch, path in zip(ARCHITECTURES, onefiles, strict=True):
        write_onefile(bootstrap(arch), payload, "bin/demo", path)
    others = [bootstrap("aarch64"), BOOTSTRAP_DIR / "bootstrap-x86_64-unknown-linux-gnu", payload]
    proc = subprocess.run([str(lookup), *map(str, onefiles + others)], capture_output=True, text=True, check=True,
                          timeout=60)
    lines = proc.stdout.splitlines()
    for line, path in zip(lines, onefiles, strict=False):
        offset, size = map(int, line.split())
        content = path.read_bytes()
        segment = find_segment(content[:65536], path)
        assert segment is not None and (offset, size) == (segment.offset, segment.size)
        # The bootstrap reads the trailer at offset + size - 80: where Python wrote it.
        trailer_offset = offset + size - TRAILER_SIZE
        assert content[trailer_offset:trailer_offset + 8] == MAGIC
        assert read_trailer(path).payload_offset == offset
    assert lines[len(onefiles):] == ["error NoSegment", "error NotMachO", "error NotMachO"]
