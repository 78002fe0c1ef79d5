"""Extraction of PBS archives (hatch_pbs.runtime.extract): real archives of the fake release, and hostile archives built
here with tarfile. A hostile archive must raise ExtractError, leave no destination behind and write nothing
outside it."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard
from pbs_release import FakeRelease
from runtime_tree import XY

from hatch_pbs.config import DEFAULT_MAX_UNPACKED_SIZE
from hatch_pbs.errors import ExtractError
from hatch_pbs.runtime import extract as extract_module
from hatch_pbs.runtime.extract import extract_runtime

# --------------------------------------------------------------------------------------------------------------
# Real archives of the fake release


def archive_members(path: Path) -> list[tarfile.TarInfo]:
    """Members of a .tar.gz or .tar.zst, read independently of hatch_pbs."""
    if path.name.endswith(".zst"):
        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader, \
                tarfile.open(fileobj=reader, mode="r|") as tar:
            return list(tar)
    with tarfile.open(path, "r:gz") as tar:
        return tar.getmembers()


def assert_matches_archive(root: Path, members: list[tarfile.TarInfo], prefix: str) -> int:
    """Every member below ``prefix`` exists below ``root`` with its type, link target, mode and mtime; returns
    the number of regular files checked."""
    files = 0
    for member in members:
        if not member.name.startswith(prefix) or member.name == prefix.rstrip("/"):
            continue
        path = root / member.name[len(prefix):]
        st = path.lstat()
        if member.issym():
            assert stat.S_ISLNK(st.st_mode), f"{path} should be a symbolic link"
            assert os.readlink(path) == member.linkname
        elif member.isdir():
            assert stat.S_ISDIR(st.st_mode), f"{path} should be a directory"
            assert stat.S_IMODE(st.st_mode) == (member.mode & 0o777) | 0o700
            assert int(st.st_mtime) == int(member.mtime), f"mtime of directory {path}"
        else:
            assert member.isfile()
            assert stat.S_ISREG(st.st_mode), f"{path} should be a regular file"
            assert st.st_size == member.size
            assert stat.S_IMODE(st.st_mode) == member.mode & 0o777, f"mode of {path}"
            assert int(st.st_mtime) == int(member.mtime), f"mtime of {path}"
            files += 1
    return files


def test_install_only_tar_gz(fake_release: FakeRelease, tmp_path: Path) -> None:
    archive = fake_release.assets["install_only"]
    destination = tmp_path / "runtime"

    result = extract_runtime(archive, destination, full=False)

    assert result.root == destination
    assert result.build_metadata == {}
    files = assert_matches_archive(destination, archive_members(archive), "python/")
    assert result.files == files > 1000
    interpreter = destination / "bin" / f"python{XY}"
    assert interpreter.is_file() and os.access(interpreter, os.X_OK)
    assert (destination / "bin" / "python3").is_symlink()
    assert os.readlink(destination / "bin" / "python3") == f"python{XY}"
    assert (destination / "share" / "hatch-pbs-fixture" / "flavor.txt").read_text() == "install_only\n"
    # The tree is a working interpreter (its RUNPATH still points at the source prefix, which exists here).
    proc = subprocess.run([str(destination / "bin" / "python3"), "-c", "import sys; print(sys.prefix)"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == str(destination)


def test_full_tar_zst(fake_release: FakeRelease, tmp_path: Path) -> None:
    archive = fake_release.assets["full"]
    members = archive_members(archive)
    assert members[0].name == "python/PYTHON.json"
    destination = tmp_path / "runtime"

    result = extract_runtime(archive, destination, full=True)

    with archive.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader, \
            tarfile.open(fileobj=reader, mode="r|") as tar:
        expected_metadata = json.load(tar.extractfile(next(iter(tar))))
    assert result.build_metadata == expected_metadata
    assert result.build_metadata["python_exe"] == f"install/bin/python{XY}"
    files = assert_matches_archive(destination, members, "python/install/")
    assert result.files == files > 1000
    # Only python/install/ is the runtime: no PYTHON.json, licenses/, build/ or install/ level in it.
    assert sorted(path.name for path in destination.iterdir()) == ["bin", "include", "lib", "share"]
    assert (destination / result.build_metadata["python_exe"].removeprefix("install/")).is_file()
    assert (destination / "share" / "hatch-pbs-fixture" / "flavor.txt").read_text() == "full\n"


def test_executables_symlinks_and_times_survive(fake_release: FakeRelease, tmp_path: Path) -> None:
    destination = tmp_path / "runtime"
    extract_runtime(fake_release.assets["install_only"], destination, full=False)
    source_bin = fake_release.source_prefix / "bin"
    for name in (f"python{XY}", "pip3"):
        extracted, original = destination / "bin" / name, source_bin / name
        assert stat.S_IMODE(extracted.stat().st_mode) == stat.S_IMODE(original.stat().st_mode)
        assert extracted.stat().st_mode & stat.S_IXUSR
        assert int(extracted.stat().st_mtime) == int(original.stat().st_mtime)
    # Timestamp-based .pyc files stay valid only if source mtimes are kept: compare with the source stdlib.
    for relative in (f"lib/python{XY}/os.py", f"lib/python{XY}/json/__init__.py"):
        source = fake_release.source_prefix / relative
        assert int((destination / relative).stat().st_mtime) == int(source.stat().st_mtime)
    # A link keeps its own time too: a time of extraction would leak the moment of the build into the prepared
    # runtime's times (the relocated files are given the asset's newest time).
    with tarfile.open(fake_release.assets["install_only"]) as archive:
        link = archive.getmember(f"python/bin/python{XY[0]}")
    assert link.issym()
    assert int((destination / "bin" / f"python{XY[0]}").lstat().st_mtime) == link.mtime


def test_full_flag_on_install_only_archive_finds_no_runtime(fake_release: FakeRelease, tmp_path: Path) -> None:
    destination = tmp_path / "runtime"
    with pytest.raises(ExtractError, match=r"holds no runtime: no member under python/install/"):
        extract_runtime(fake_release.assets["install_only"], destination, full=True)
    assert not destination.exists()


def test_non_empty_destination_is_refused_and_kept(fake_release: FakeRelease, tmp_path: Path) -> None:
    destination = tmp_path / "runtime"
    destination.mkdir()
    (destination / "precious.txt").write_text("keep me")
    with pytest.raises(ExtractError, match="non-empty directory"):
        extract_runtime(fake_release.assets["install_only"], destination, full=False)
    assert [path.name for path in destination.iterdir()] == ["precious.txt"]
    assert (destination / "precious.txt").read_text() == "keep me"


def test_empty_existing_destination_is_used(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "ok.tar.gz", [directory("python"), regular("python/a.txt", b"a")])
    destination = tmp_path / "runtime"
    destination.mkdir()
    result = extract_runtime(archive, destination, full=False)
    assert result.files == 1
    assert (destination / "a.txt").read_bytes() == b"a"


# --------------------------------------------------------------------------------------------------------------
# Hand-made archives

Member = tuple[tarfile.TarInfo, bytes | None]
MTIME = 1_700_000_000


def regular(name: str, data: bytes = b"data\n", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, MTIME
    return info, data


def directory(name: str, mode: int = 0o755) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, MTIME
    return info, None


def symlink(name: str, target: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, MTIME
    return info, None


def hardlink(name: str, target: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = tarfile.LNKTYPE, target, 0o644, MTIME
    return info, None


def special(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, 0o666, MTIME
    info.devmajor, info.devminor = (1, 3) if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE) else (0, 0)
    return info, None


def write_archive(path: Path, members: list[Member]) -> Path:
    """Write ``members`` verbatim (no name sanitizing) as a .tar.gz or .tar.zst, chosen by ``path``'s suffix.

    zstd frames get a content checksum: without one, flipped bytes in stored blocks cannot be noticed (the
    pipeline checks the asset's sha256 before extracting anyway)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    if path.name.endswith(".zst"):
        path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(raw))
    else:
        path.write_bytes(gzip.compress(raw, mtime=0))
    return path


@dataclass
class Layout:
    """``work/`` holds the destination ``work/dest`` and an empty ``work/sentinel``; ``outside/`` holds a file
    an archive may try to link to or overwrite."""

    work: Path
    destination: Path
    sentinel: Path
    outside: Path
    secret: Path

    def assert_nothing_escaped(self) -> None:
        assert not self.destination.exists() and not self.destination.is_symlink(), "destination was not removed"
        assert list(self.sentinel.iterdir()) == [], "something was written next to the destination"
        assert sorted(path.name for path in self.work.iterdir()) == ["sentinel"]
        assert [path.name for path in self.outside.iterdir()] == ["secret.txt"]
        assert self.secret.read_text() == "secret\n"
        st = self.secret.stat()
        assert st.st_nlink == 1, "a hard link to a file outside the destination was made"
        assert stat.S_IMODE(st.st_mode) == 0o600 and int(st.st_mtime) == 1_000_000_000
        sentinel_st = self.sentinel.stat()
        assert stat.S_IMODE(sentinel_st.st_mode) == 0o700 and int(sentinel_st.st_mtime) == 1_000_000_000, \
            "the directory next to the destination was modified"


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    work, outside = tmp_path / "work", tmp_path / "outside"
    sentinel = work / "sentinel"
    sentinel.mkdir(parents=True)
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("secret\n")
    secret.chmod(0o600)
    os.utime(secret, (1_000_000_000, 1_000_000_000))
    sentinel.chmod(0o700)
    os.utime(sentinel, (1_000_000_000, 1_000_000_000))
    return Layout(work, work / "dest", sentinel, outside, secret)


# Every hostile archive starts with legitimate members, so that something was written before the refusal.
PREAMBLE = [directory("python"), directory("python/bin"), regular("python/bin/python3", b"#!/bin/sh\n", 0o755)]

HostileCase = Callable[[Layout], list[Member]]

HOSTILE: dict[str, tuple[HostileCase, str]] = {
    "dotdot-member": (lambda l: [regular("python/../sentinel/pwned")], "contains '..'"),
    "dotdot-deep-member": (lambda l: [regular("python/bin/../../../outside/secret.txt", b"owned\n")],
                           "contains '..'"),
    "absolute-member": (lambda l: [regular(str(l.sentinel / "pwned"))], "absolute path"),
    "absolute-member-overwrite": (lambda l: [regular(str(l.secret), b"owned\n")], "absolute path"),
    "absolute-symlink": (lambda l: [symlink("python/evil", str(l.sentinel)), regular("python/evil/pwned")],
                         "is absolute"),
    "relative-symlink-escape-etc": (lambda l: [symlink("python/x", "../../etc")], "points outside"),
    "relative-symlink-escape": (lambda l: [symlink("python/x", "../sentinel"), regular("python/x/pwned")],
                                "points outside"),
    "nested-symlink-escape": (lambda l: [directory("python/lib"), symlink("python/lib/up", "../../sentinel")],
                              "points outside"),
    "hardlink-dotdot": (lambda l: [hardlink("python/h", "python/../../outside/secret.txt")], "outside"),
    "hardlink-absolute": (lambda l: [hardlink("python/h", str(l.secret))], "outside"),
    "hardlink-outside-runtime": (lambda l: [hardlink("python/h", "etc/passwd")], "outside the runtime"),
    "hardlink-missing": (lambda l: [hardlink("python/h", "python/nope")], "not an extracted regular file"),
    # Writing through a symbolic link that stays inside (harmless here, but never needed by a runtime).
    "write-through-inner-symlink": (lambda l: [symlink("python/link", "bin"), regular("python/link/pwned")],
                                    "through the symbolic link"),
    # `x -> d/sub/..` looks like `d` lexically; with `d/sub -> ..` it really is the parent of the destination.
    "write-through-chained-symlink": (lambda l: [directory("python/d"), symlink("python/d/sub", ".."),
                                                 symlink("python/x", "d/sub/.."), regular("python/x/sentinel/pwned")],
                                      "through the symbolic link"),
    "directory-through-chained-symlink": (lambda l: [directory("python/d"), symlink("python/d/sub", ".."),
                                                     symlink("python/x", "d/sub/.."), directory("python/x", 0o777)],
                                          "would replace a symbolic link"),
    "chained-symlink-left-behind": (lambda l: [directory("python/d"), symlink("python/d/sub", ".."),
                                               symlink("python/x", "d/sub/..")],
                                    "leads outside the runtime through another link"),
    "chained-symlink-made-later": (lambda l: [directory("python/d"), symlink("python/x", "d/sub/../sentinel"),
                                              symlink("python/d/sub", "..")],
                                   "leads outside the runtime through another link"),
    "hardlink-through-chained-symlink": (lambda l: [directory("python/d"), symlink("python/d/sub", ".."),
                                                    symlink("python/x", "d/sub/.."),
                                                    hardlink("python/h", "python/x/../outside/secret.txt")],
                                         "outside"),
    "hardlink-through-escaping-symlink": (lambda l: [directory("python/d"), symlink("python/d/sub", ".."),
                                                     symlink("python/x", "d/sub/../../outside"),
                                                     hardlink("python/h", "python/x/secret.txt")],
                                          "outside the runtime through a symbolic link"),
    "character-device": (lambda l: [special("python/null", tarfile.CHRTYPE)], "device file or FIFO"),
    "block-device": (lambda l: [special("python/disk", tarfile.BLKTYPE)], "device file or FIFO"),
    "fifo": (lambda l: [special("python/fifo", tarfile.FIFOTYPE)], "device file or FIFO"),
    # A later member of the same name as a directory: replacing the directory would drop what is in it, and a
    # link in its place would redirect the members that follow.
    "directory-replaced-by-escaping-symlink": (lambda l: [directory("python/lib"), regular("python/lib/a"),
                                                          symlink("python/lib", "../sentinel"),
                                                          regular("python/lib/pwned")],
                                               "points outside"),
    "directory-replaced-by-inner-symlink": (lambda l: [directory("python/lib"), regular("python/lib/a"),
                                                       symlink("python/lib", "bin"), regular("python/lib/pwned")],
                                            "would replace a directory with a symbolic link"),
    "directory-replaced-by-hardlink": (lambda l: [directory("python/lib"), hardlink("python/lib", "python/bin/python3")],
                                       "would replace a directory with a hard link"),
    "directory-replaced-by-file": (lambda l: [directory("python/lib"), regular("python/lib/a"),
                                              regular("python/lib", b"x")],
                                   "would replace a directory with a file"),
    "file-replaced-by-directory": (lambda l: [regular("python/x"), directory("python/x")],
                                   "directory python/x would replace a file"),
    "hardlink-to-symlink": (lambda l: [symlink("python/s", "bin/python3"), hardlink("python/h", "python/s")],
                            "not an extracted regular file"),
    "hardlink-to-directory": (lambda l: [hardlink("python/h", "python/bin")], "not an extracted regular file"),
    "windows-drive-member": (lambda l: [regular("C:/Windows/pwned")], "absolute path"),
    "backslash-dotdot-member": (lambda l: [regular("python\\..\\..\\sentinel\\pwned")], "contains '..'"),
}


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_is_refused(case: str, suffix: str, layout: Layout, tmp_path: Path) -> None:
    build, message = HOSTILE[case]
    members = PREAMBLE + build(layout)
    archive = write_archive(tmp_path / f"hostile{suffix}", members)
    # tarfile must have stored the names and link targets verbatim, or the case tests nothing.
    stored = archive_members(archive)
    assert [(m.name, m.linkname) for m in stored] == [(info.name, info.linkname) for info, _ in members]

    with pytest.raises(ExtractError, match=message) as caught:
        extract_runtime(archive, layout.destination, full=False)

    assert archive.name in str(caught.value)
    layout.assert_nothing_escaped()
    assert not (tmp_path.parent / "etc").exists()


def test_hostile_full_archive_is_refused(layout: Layout, tmp_path: Path) -> None:
    members = [regular("python/PYTHON.json", b"{}"), directory("python/install"),
               regular("python/install/ok.txt"), symlink("python/install/x", "../../../sentinel"),
               regular("python/install/x/pwned")]
    archive = write_archive(tmp_path / "hostile-full.tar.zst", members)
    with pytest.raises(ExtractError, match="points outside"):
        extract_runtime(archive, layout.destination, full=True)
    layout.assert_nothing_escaped()


def test_unsafe_names_outside_the_runtime_are_refused_too(layout: Layout, tmp_path: Path) -> None:
    """A ``..`` member is refused even where the runtime would skip it (``python/build/`` of a full archive)."""
    members = [regular("python/PYTHON.json", b"{}"), directory("python/install"), regular("python/install/ok.txt"),
               regular("python/build/../../sentinel/pwned")]
    archive = write_archive(tmp_path / "hostile-full.tar.zst", members)
    with pytest.raises(ExtractError, match=r"contains '\.\.'"):
        extract_runtime(archive, layout.destination, full=True)
    layout.assert_nothing_escaped()


def test_inner_relative_symlinks_are_kept(tmp_path: Path) -> None:
    members = [directory("python"), directory("python/bin"), regular("python/bin/python3.12", b"x", 0o755),
               symlink("python/bin/python3", "python3.12"), directory("python/lib"),
               symlink("python/lib/up", "../bin/python3"), symlink("python/dangling", "lib/not-there")]
    archive = write_archive(tmp_path / "ok.tar.gz", members)
    destination = tmp_path / "runtime"
    extract_runtime(archive, destination, full=False)
    assert os.readlink(destination / "bin/python3") == "python3.12"
    assert os.readlink(destination / "lib/up") == "../bin/python3"
    assert (destination / "lib/up").read_bytes() == b"x"
    assert os.readlink(destination / "dangling") == "lib/not-there"


def test_setuid_and_sticky_bits_are_dropped(tmp_path: Path) -> None:
    members = [directory("python"), directory("python/tmp", 0o1777), regular("python/su", b"x", 0o4755),
               regular("python/sg", b"x", 0o2750), regular("python/ro", b"x", 0o444)]
    destination = tmp_path / "runtime"
    extract_runtime(write_archive(tmp_path / "modes.tar.gz", members), destination, full=False)
    assert stat.S_IMODE((destination / "su").stat().st_mode) == 0o755
    assert stat.S_IMODE((destination / "sg").stat().st_mode) == 0o750
    assert stat.S_IMODE((destination / "ro").stat().st_mode) == 0o444
    assert stat.S_IMODE((destination / "tmp").stat().st_mode) == 0o777
    assert int((destination / "su").stat().st_mtime) == MTIME
    assert int((destination / "tmp").stat().st_mtime) == MTIME


def test_inner_hardlink_is_extracted(tmp_path: Path) -> None:
    members = [directory("python"), regular("python/a", b"same\n", 0o755), hardlink("python/b", "python/a")]
    destination = tmp_path / "runtime"
    result = extract_runtime(write_archive(tmp_path / "links.tar.gz", members), destination, full=False)
    assert result.files == 2
    assert (destination / "b").read_bytes() == b"same\n"
    assert (destination / "a").stat().st_ino == (destination / "b").stat().st_ino


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_archive_without_python_members_is_refused(suffix: str, layout: Layout, tmp_path: Path) -> None:
    archive = write_archive(tmp_path / f"other{suffix}", [directory("other"), regular("other/file.txt"),
                                                          directory("python"), regular("pythonic.txt")])
    with pytest.raises(ExtractError, match=r"holds no runtime: no member under python/"):
        extract_runtime(archive, layout.destination, full=False)
    layout.assert_nothing_escaped()


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated-half": lambda data: data[: len(data) // 2],
    "truncated-tail": lambda data: data[:-64],
    "garbage": lambda data: os.urandom(len(data)),
    "empty": lambda data: b"",
    "flipped-middle": lambda data: data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:],
}


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_archive_is_refused(corruption: str, suffix: str, layout: Layout, tmp_path: Path) -> None:
    # Incompressible payloads keep the compressed stream large enough for every corruption to hit member data.
    members = [directory("python"), directory("python/lib")]
    members += [regular(f"python/lib/file{i}.bin", os.urandom(4096)) for i in range(8)]
    good = write_archive(tmp_path / f"good{suffix}", members)
    archive = tmp_path / f"corrupt{suffix}"
    archive.write_bytes(CORRUPTIONS[corruption](good.read_bytes()))

    with pytest.raises(ExtractError) as caught:
        extract_runtime(archive, layout.destination, full=False)

    assert archive.name in str(caught.value)
    layout.assert_nothing_escaped()


def test_corrupt_real_runtime_is_refused(fake_release: FakeRelease, layout: Layout, tmp_path: Path) -> None:
    data = fake_release.assets["install_only"].read_bytes()
    archive = tmp_path / fake_release.asset_name("install_only")
    archive.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ExtractError, match="is not a readable archive"):
        extract_runtime(archive, layout.destination, full=False)
    layout.assert_nothing_escaped()


def test_missing_archive_is_an_extract_error(layout: Layout, tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match="cannot extract"):
        extract_runtime(tmp_path / "missing.tar.gz", layout.destination, full=False)
    layout.assert_nothing_escaped()


# --------------------------------------------------------------------------------------------------------------
# Decompression bombs: the `max-unpacked-size` ceiling, the member count, oversized headers, zstd windows


def write_bomb(path: Path, members: list[tuple[tarfile.TarInfo, int]], *, trailing_zeros: int = 0) -> Path:
    """A .tar.gz or .tar.zst of members whose data is all zeros, written block by block (tarfile's own stream
    writer copies its buffer for every 10 KiB: hopeless for gigabytes). ``trailing_zeros`` more zero bytes follow
    the end-of-archive blocks inside the compressed stream."""
    zeros = bytes(8 << 20)

    def write_zeros(sink: Any, count: int) -> None:
        while count > 0:
            sink.write(zeros[:min(count, len(zeros))])
            count -= len(zeros)

    with path.open("wb") as raw:
        if path.name.endswith(".zst"):
            sink: Any = zstandard.ZstdCompressor(level=1).stream_writer(raw, closefd=False)
        else:
            sink = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)
        with sink:
            for info, size in members:
                info.size = size
                sink.write(info.tobuf(format=tarfile.GNU_FORMAT if info.type in (
                    tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE) else tarfile.PAX_FORMAT))
                write_zeros(sink, size + (-size % tarfile.BLOCKSIZE))
            write_zeros(sink, 2 * tarfile.BLOCKSIZE + trailing_zeros)
    return path


def big(name: str, size: int) -> tuple[tarfile.TarInfo, int]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, MTIME
    return info, size


BOMB_PREAMBLE = [(directory("python")[0], 0), (directory("python/lib")[0], 0), big("python/lib/ok.txt", 100)]


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_compressed_bomb_stops_at_the_ceiling_naming_the_option(suffix: str, layout: Layout,
                                                                tmp_path: Path) -> None:
    archive = write_bomb(tmp_path / f"bomb{suffix}", [*BOMB_PREAMBLE, big("python/lib/zeros.bin", 256 << 20)])
    assert archive.stat().st_size < 2 << 20  # > 100:1
    limit = 16 << 20
    with pytest.raises(ExtractError) as caught:
        extract_runtime(archive, layout.destination, full=False, max_unpacked_size=limit)
    message = str(caught.value)
    assert archive.name in message
    assert "option `max-unpacked-size`" in message and f"more than {limit} bytes" in message
    layout.assert_nothing_escaped()


def test_zstd_bomb_over_the_default_ceiling_is_refused_before_its_data(layout: Layout, tmp_path: Path) -> None:
    """5 GiB of zeros in about 150 KiB: refused at its header under the default ceiling (4 GiB) without
    decompressing (let alone writing) the payload."""
    archive = write_bomb(tmp_path / "bomb.tar.zst", [*BOMB_PREAMBLE, big("python/lib/zeros.bin", 5 << 30)])
    assert archive.stat().st_size < 1 << 20
    started = time.monotonic()
    with pytest.raises(ExtractError, match=f"more than {DEFAULT_MAX_UNPACKED_SIZE} bytes .*`max-unpacked-size`"):
        extract_runtime(archive, layout.destination, full=False)
    assert time.monotonic() - started < 10
    layout.assert_nothing_escaped()


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_many_members_adding_up_past_the_ceiling_are_refused(suffix: str, layout: Layout, tmp_path: Path) -> None:
    members = [*BOMB_PREAMBLE, *(big(f"python/lib/part{index}.bin", 1 << 20) for index in range(40))]
    archive = write_bomb(tmp_path / f"bomb{suffix}", members)
    with pytest.raises(ExtractError, match="`max-unpacked-size`"):
        extract_runtime(archive, layout.destination, full=False, max_unpacked_size=8 << 20)
    layout.assert_nothing_escaped()


def test_members_up_to_the_ceiling_are_extracted(tmp_path: Path) -> None:
    members = [*BOMB_PREAMBLE, *(big(f"python/lib/part{index}.bin", 1 << 20) for index in range(4))]
    archive = write_bomb(tmp_path / "fits.tar.gz", members)
    result = extract_runtime(archive, tmp_path / "runtime", full=False, max_unpacked_size=8 << 20)
    assert result.files == 5


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_zeros_after_the_end_of_the_archive_count_too(suffix: str, layout: Layout, tmp_path: Path) -> None:
    archive = write_bomb(tmp_path / f"tail{suffix}", BOMB_PREAMBLE, trailing_zeros=64 << 20)
    with pytest.raises(ExtractError, match="`max-unpacked-size`"):
        extract_runtime(archive, layout.destination, full=False, max_unpacked_size=8 << 20)
    layout.assert_nothing_escaped()


def test_member_flood_is_refused(layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "MAX_MEMBERS", 50)
    members = [directory("python")] + [regular(f"python/f{index}", b"") for index in range(60)]
    archive = write_archive(tmp_path / "flood.tar.gz", members)
    with pytest.raises(ExtractError, match="more than 50 members"):
        extract_runtime(archive, layout.destination, full=False)
    layout.assert_nothing_escaped()


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME])
def test_oversized_extended_header_is_refused_before_it_is_read(kind: bytes, layout: Layout,
                                                                tmp_path: Path) -> None:
    """A PAX or GNU long-name header declaring 3 GiB: tarfile would read it whole into memory."""
    header = tarfile.TarInfo("././@PaxHeader" if kind == tarfile.XHDTYPE else "././@LongLink")
    header.type, header.size, header.mtime = kind, 3 << 30, MTIME
    archive = write_bomb(tmp_path / "header.tar.zst", [*BOMB_PREAMBLE, (header, 3 << 30)])
    started = time.monotonic()
    with pytest.raises(ExtractError, match=r"extended \(PAX or GNU long name\) header of 3221225472 bytes"):
        extract_runtime(archive, layout.destination, full=False)
    assert time.monotonic() - started < 10
    layout.assert_nothing_escaped()


def test_zstd_frame_asking_for_a_huge_window_is_refused(layout: Layout, tmp_path: Path) -> None:
    """A zstd frame header declaring a 2 GiB window (window log 31): the decompressor's default memory limit
    (128 MiB windows) refuses it instead of allocating."""
    frame = bytes.fromhex("28b52ffd") + bytes([0x00, 21 << 3]) + bytes([0x01, 0x00, 0x00])  # one empty raw block
    archive = tmp_path / "window.tar.zst"
    archive.write_bytes(frame)
    with pytest.raises(ExtractError, match="is not a readable archive"):
        extract_runtime(archive, layout.destination, full=False)
    layout.assert_nothing_escaped()


def test_config_ceiling_reaches_extraction(fake_release: FakeRelease, tmp_path: Path) -> None:
    """The option's value reaches extraction in a real build: a 1 MiB ceiling stops the fake runtime (~78 MB)."""
    from packaging.specifiers import SpecifierSet

    from hatch_pbs.config import HookConfig
    from hatch_pbs.pipeline import Project, build_artifacts

    assert inspect_default() == DEFAULT_MAX_UNPACKED_SIZE
    config = HookConfig(python_version=fake_release.python_version, release=fake_release.tag,
                        targets=(fake_release.triple,), flavor="install_only_stripped",
                        mirror=fake_release.root.as_uri(), cache_dir=tmp_path / "cache", scripts=(), offline=True,
                        max_unpacked_size=1 << 20)
    project = Project(name="demo", version="1.0", requires_python=SpecifierSet(">=3.10"), scripts={},
                      wheel=tmp_path / "never-installed.whl")
    with pytest.raises(ExtractError, match=r"more than 1048576 bytes .* the option `max-unpacked-size`"):
        build_artifacts(config, project, tmp_path / "dist")
    assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())


def inspect_default() -> int:
    """extract_runtime's own default ceiling (used when it is called without the option)."""
    import inspect

    return inspect.signature(extract_runtime).parameters["max_unpacked_size"].default
