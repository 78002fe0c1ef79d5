"""Packing (hatch_pbs.artifact.pack): the release archive and the SHA256SUMS beside it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from runtime_tree import cannot_hide_directories

from hatch_pbs.artifact.pack import (
    CHECKSUMS_NAME,
    FALLBACK_EPOCH,
    MemberTimes,
    pack_directory,
    pack_tree,
    part_verdicts,
    sha256_of,
    source_date_epoch,
    write_checksums,
)
from hatch_pbs.errors import DamagedCacheError, PackError

MTIME = 1_700_000_000
STEM = "demo-1.0-x86_64-unknown-linux-gnu"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small artifact-like tree: nested directories, an executable, a symlink, an empty directory, names whose
    plain string order differs from path order (``a.txt`` vs ``a/``)."""
    root = tmp_path / "staging" / STEM
    files = {
        "bin/demo": (b"#!/bin/sh\necho demo\n", 0o755),
        "python/bin/python3.12": (b"\x7fELF fake", 0o755),
        "python/lib/python3.12/os.py": (b"# os\n", 0o644),
        "python/lib/python3.12/json/__init__.py": (b"# json\n", 0o644),
        "app/demo/__init__.py": (b"def main():\n    return 0\n", 0o644),
        "app/demo.txt": (b"sorted before app/demo/ as a string, after it as a path\n", 0o600),
        "manifest.json": (b"{}\n", 0o644),
    }
    for relative, (data, mode) in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
    (root / "python/bin/python3").symlink_to("python3.12")
    (root / "python/lib/empty").mkdir()
    (root / "python/lib/private").mkdir(mode=0o700)
    (root / "python/lib/private").chmod(0o700)
    for directory, subdirectories, names in os.walk(root):
        for name in [*subdirectories, *names]:
            os.utime(Path(directory, name), (MTIME, MTIME), follow_symlinks=False)
    os.utime(root, (MTIME, MTIME))
    return root


def members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive, "r:gz") as tar:
        return tar.getmembers()


def path_key(name: str) -> list[str]:
    return name.split("/")


def test_layout_order_and_owners(tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "dist" / f"{STEM}.tar.gz"
    size = pack_tree(tree, destination)

    assert size == destination.stat().st_size > 0
    infos = members(destination)
    names = [info.name for info in infos]
    assert names[0] == STEM
    assert all(name == STEM or name.startswith(STEM + "/") for name in names)
    assert names == sorted(names, key=path_key), "members are not in sorted path order"
    assert len(names) == len(set(names))
    seen: set[str] = set()
    for name in names:  # parents before children
        parent = name.rpartition("/")[0]
        assert not parent or parent in seen, f"{name} comes before its directory"
        seen.add(name)
    expected = {STEM} | {f"{STEM}/{path.relative_to(tree).as_posix()}" for path in tree.rglob("*")}
    assert set(names) == expected
    for info in infos:
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", ""), info.name
        assert int(info.mtime) == MTIME, info.name


def test_modes_symlinks_and_contents_are_kept(tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "dist" / f"{STEM}.tar.gz"
    pack_tree(tree, destination)
    by_name = {info.name.removeprefix(STEM + "/"): info for info in members(destination)}

    assert by_name["bin/demo"].isfile() and by_name["bin/demo"].mode == 0o755
    assert by_name["python/bin/python3.12"].mode == 0o755
    assert by_name["python/lib/python3.12/os.py"].mode == 0o644
    # Modes are normalized (reproducible archives): 0644 files, 0755 directories and executables.
    assert by_name["app/demo.txt"].mode == 0o644
    assert by_name["python/lib/private"].isdir() and by_name["python/lib/private"].mode == 0o755
    assert by_name["python/lib/empty"].isdir()
    assert by_name["python/bin/python3"].issym() and by_name["python/bin/python3"].linkname == "python3.12"

    # Round trip through an independent extractor: tar(1).
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(destination), "-C", str(unpacked)], check=True)
    out = unpacked / STEM
    assert os.readlink(out / "python/bin/python3") == "python3.12"
    assert stat.S_IMODE((out / "bin/demo").stat().st_mode) == 0o755
    assert (out / "python/lib/python3.12/json/__init__.py").read_bytes() == b"# json\n"
    assert subprocess.run([str(out / "bin/demo")], capture_output=True, text=True, check=True).stdout == "demo\n"


def test_no_temporary_file_remains(tree: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    pack_tree(tree, dist / f"{STEM}.tar.gz")
    assert [path.name for path in dist.iterdir()] == [f"{STEM}.tar.gz"]


def test_packing_is_deterministic(tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one" / f"{STEM}.tar.gz", tmp_path / "two" / f"{STEM}.tar.gz"
    pack_tree(tree, first)
    pack_tree(tree, second)
    assert first.read_bytes() == second.read_bytes()


def test_existing_archive_is_replaced(tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "dist" / f"{STEM}.tar.gz"
    destination.parent.mkdir()
    destination.write_bytes(b"old")
    pack_tree(tree, destination)
    assert members(destination)[0].name == STEM


def assert_nothing_written(dist: Path, name: str) -> None:
    if dist.is_dir():
        leftovers = [path.name for path in dist.iterdir()]
        assert name not in leftovers
        assert not [n for n in leftovers if n.endswith(".part")], leftovers


def test_missing_tree_is_a_pack_error(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    with pytest.raises(PackError, match=r"cannot write .*: No such file or directory \(.*/no-such-tree\)"):
        pack_tree(tmp_path / "no-such-tree", dist / "x.tar.gz")
    assert_nothing_written(dist, "x.tar.gz")
    assert dist.is_dir() and list(dist.iterdir()) == []


def test_output_directory_that_is_a_file_is_a_pack_error(tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "dist"
    blocker.write_text("not a directory")
    with pytest.raises(PackError, match="cannot write"):
        pack_tree(tree, blocker / f"{STEM}.tar.gz")
    assert blocker.read_text() == "not a directory"


def test_destination_that_is_a_directory_is_a_pack_error(tree: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / f"{STEM}.tar.gz").mkdir(parents=True)
    with pytest.raises(PackError, match="cannot write"):
        pack_tree(tree, dist / f"{STEM}.tar.gz")
    assert sorted(path.name for path in dist.iterdir()) == [f"{STEM}.tar.gz"]
    assert list((dist / f"{STEM}.tar.gz").iterdir()) == []


@pytest.mark.skipif(sys.platform != "linux", reason="uses a read-only bind mount")
def test_read_only_output_directory_is_a_pack_error(tree: Path, tmp_path: Path) -> None:
    """A really unwritable directory (as root, permission bits do not stop writes: use a read-only bind mount in a
    private mount namespace, and pack in a child process there)."""
    dist = tmp_path / "dist"
    dist.mkdir()
    if os.geteuid() != 0:
        dist.chmod(0o555)
        try:
            with pytest.raises(PackError, match="Permission denied"):
                pack_tree(tree, dist / f"{STEM}.tar.gz")
        finally:
            dist.chmod(0o755)
        assert list(dist.iterdir()) == []
        return
    reason = cannot_hide_directories()
    if reason:
        pytest.skip(f"cannot make a read-only mount: {reason}")
    code = ("import sys; from pathlib import Path; from hatch_pbs.artifact.pack import pack_tree; "
            "from hatch_pbs.errors import PackError\n"
            "try:\n    pack_tree(Path(sys.argv[1]), Path(sys.argv[2]))\n"
            "except PackError as error:\n    print(error); sys.exit(3)\n")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(dist), sys.executable, "-c", code,
                           str(tree), str(dist / f"{STEM}.tar.gz")], capture_output=True, text=True, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "Read-only file system" in proc.stdout
    assert list(dist.iterdir()) == []


# --------------------------------------------------------------------------------------------------------------
# SHA256SUMS

LINE = re.compile(r"^([0-9a-f]{64})  ([^/\n]+)$")


def read_sums(path: Path) -> list[tuple[str, str]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    rows = []
    for line in text.splitlines():
        match = LINE.match(line)
        assert match, f"malformed line {line!r}"
        rows.append((match[1], match[2]))
    return rows


def test_sha256_of_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)  # more than one read block
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_of(path) == hashlib.sha256(data).hexdigest()


def test_write_checksums_format(tmp_path: Path) -> None:
    archives = {}
    for name in ("zeta-1.0-x86_64-unknown-linux-gnu.tar.gz", "alpha-1.0-aarch64-apple-darwin.tar.gz",
                 "alpha-1.0+local-x86_64-unknown-linux-gnu.tar.gz"):
        (tmp_path / name).write_bytes(os.urandom(1000))
        archives[name] = tmp_path / name

    path = write_checksums(tmp_path, list(archives.values()))

    assert path == tmp_path / CHECKSUMS_NAME
    rows = read_sums(path)
    assert [name for _, name in rows] == sorted(archives)
    for digest, name in rows:
        assert digest == hashlib.sha256(archives[name].read_bytes()).hexdigest()
    expected = "".join(f"{hashlib.sha256(archives[n].read_bytes()).hexdigest()}  {n}\n" for n in sorted(archives))
    assert path.read_text(encoding="utf-8") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*archives, CHECKSUMS_NAME])


def test_write_checksums_keeps_existing_and_drops_deleted(tmp_path: Path) -> None:
    old, gone, new = (tmp_path / f"{name}.tar.gz" for name in ("old", "gone", "new"))
    old.write_bytes(b"old build")
    gone.write_bytes(b"gone soon")
    write_checksums(tmp_path, [old, gone])
    assert [name for _, name in read_sums(tmp_path / CHECKSUMS_NAME)] == ["gone.tar.gz", "old.tar.gz"]

    gone.unlink()
    old.write_bytes(b"old build, rebuilt by hand")  # a kept entry is hashed anew
    new.write_bytes(b"new build")
    write_checksums(tmp_path, [new])

    rows = {name: digest for digest, name in read_sums(tmp_path / CHECKSUMS_NAME)}
    assert rows == {
        "new.tar.gz": hashlib.sha256(b"new build").hexdigest(),
        "old.tar.gz": hashlib.sha256(b"old build, rebuilt by hand").hexdigest(),
    }


def test_write_checksums_ignores_foreign_lines(tmp_path: Path) -> None:
    (tmp_path / "a.tar.gz").write_bytes(b"a")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.tar.gz").write_bytes(b"b")
    (tmp_path / CHECKSUMS_NAME).write_text(
        f"{'0' * 64}  sub/b.tar.gz\n{'0' * 64}  ../etc/passwd\nnot a checksum line\n{'0' * 64}  sub\n",
        encoding="utf-8")
    write_checksums(tmp_path, [tmp_path / "a.tar.gz"])
    assert read_sums(tmp_path / CHECKSUMS_NAME) == [(hashlib.sha256(b"a").hexdigest(), "a.tar.gz")]


# --------------------------------------------------------------------------------------------------------------
# .zip archives (Windows targets)

ZIP_STEM = "demo-1.0-x86_64-pc-windows-msvc"
ZIP_EPOCH_DATE = (1980, 1, 1, 0, 0, 0)


@pytest.fixture
def zip_tree(tree: Path) -> Path:
    """The tree fixture renamed to a Windows artifact's name, plus files older than a zip can record (the Unix
    epoch, and one second before 1980)."""
    root = tree.rename(tree.with_name(ZIP_STEM))
    old = {"python/Lib/epoch.py": 0, "python/Lib/late1979.py": 315532799}
    for relative, mtime in old.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# mtime {mtime}\n")
        os.utime(path, (mtime, mtime))
    os.utime(root / "python/Lib", (MTIME, MTIME))
    os.utime(root / "python", (MTIME, MTIME))
    os.utime(root, (MTIME, MTIME))
    return root


def zip_entries(archive: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(archive) as opened:
        return opened.infolist()


def test_zip_layout_and_order(zip_tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "dist" / f"{ZIP_STEM}.zip"
    size = pack_tree(zip_tree, destination)

    assert size == destination.stat().st_size > 0
    assert zipfile.is_zipfile(destination)
    names = [entry.filename for entry in zip_entries(destination)]
    assert names[0] == ZIP_STEM + "/"
    assert all(name.startswith(ZIP_STEM + "/") for name in names)
    assert len(names) == len(set(names))
    bare = [name.rstrip("/") for name in names]
    assert bare == sorted(bare, key=path_key), "entries are not in sorted path order"
    seen: set[str] = set()
    for name in bare:  # parents before children
        parent = name.rpartition("/")[0]
        assert not parent or parent in seen, f"{name} comes before its directory"
        seen.add(name)
    directories = {f"{ZIP_STEM}/{path.relative_to(zip_tree).as_posix()}/" for path in zip_tree.rglob("*")
                   if path.is_dir() and not path.is_symlink()} | {ZIP_STEM + "/"}
    others = {f"{ZIP_STEM}/{path.relative_to(zip_tree).as_posix()}" for path in zip_tree.rglob("*")
              if path.is_symlink() or not path.is_dir()}
    assert set(names) == directories | others
    for entry in zip_entries(destination):
        assert entry.is_dir() == entry.filename.endswith("/"), entry.filename
        assert entry.filename.endswith("/") == (entry.filename in directories)
    # An independent reader agrees: python -m zipfile -l / -t.
    listing = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(destination)], capture_output=True,
                             text=True, check=True).stdout
    assert f"{ZIP_STEM}/bin/demo " in listing
    subprocess.run([sys.executable, "-m", "zipfile", "-t", str(destination)], check=True, capture_output=True)


def test_zip_records_unix_modes(zip_tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "dist" / f"{ZIP_STEM}.zip"
    pack_tree(zip_tree, destination)
    by_name = {entry.filename.removeprefix(ZIP_STEM + "/"): entry for entry in zip_entries(destination)}

    for entry in by_name.values():
        assert entry.create_system == 3, entry.filename  # Unix: external_attr's high 16 bits are st_mode
    assert by_name["bin/demo"].external_attr == (stat.S_IFREG | 0o755) << 16
    assert by_name["python/bin/python3.12"].external_attr == (stat.S_IFREG | 0o755) << 16
    assert by_name["python/lib/python3.12/os.py"].external_attr == (stat.S_IFREG | 0o644) << 16
    assert by_name["app/demo.txt"].external_attr == (stat.S_IFREG | 0o644) << 16
    assert by_name[""].external_attr == (stat.S_IFDIR | stat.S_IMODE(zip_tree.stat().st_mode)) << 16 | 0x10
    assert by_name["python/lib/private/"].external_attr == (stat.S_IFDIR | 0o755) << 16 | 0x10
    assert by_name["python/lib/empty/"].external_attr >> 16 & ~0o7777 == stat.S_IFDIR
    assert by_name["python/lib/empty/"].external_attr & 0x10  # the MS-DOS directory flag, for Windows tools
    assert by_name["python/lib/empty/"].file_size == 0

    # Python's zipfile does not restore modes: do it from the attributes, as a Windows-agnostic extractor would.
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(destination) as opened:
        for entry in opened.infolist():
            mode = entry.external_attr >> 16
            if stat.S_ISLNK(mode):
                continue
            path = Path(opened.extract(entry, unpacked))
            path.chmod(stat.S_IMODE(mode))
    out = unpacked / ZIP_STEM
    assert stat.S_IMODE((out / "bin/demo").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "app/demo.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "python/lib/private").stat().st_mode) == 0o755
    assert subprocess.run([str(out / "bin/demo")], capture_output=True, text=True, check=True).stdout == "demo\n"


def test_zip_stores_symbolic_links_as_links(zip_tree: Path, tmp_path: Path) -> None:
    (zip_tree / "python/lib/linked").symlink_to("python3.12", target_is_directory=True)
    destination = tmp_path / "dist" / f"{ZIP_STEM}.zip"
    pack_tree(zip_tree, destination)
    with zipfile.ZipFile(destination) as opened:
        link = opened.getinfo(f"{ZIP_STEM}/python/bin/python3")
        assert stat.S_ISLNK(link.external_attr >> 16)
        assert link.compress_type == zipfile.ZIP_STORED
        assert opened.read(link) == b"python3.12"
        directory_link = opened.getinfo(f"{ZIP_STEM}/python/lib/linked")  # not followed, no "linked/" entry
        assert stat.S_ISLNK(directory_link.external_attr >> 16)
        assert opened.read(directory_link) == b"python3.12"
        assert not [name for name in opened.namelist() if name.startswith(f"{ZIP_STEM}/python/lib/linked/")]


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP unzip is not installed")
def test_zip_extracts_with_unzip(zip_tree: Path, tmp_path: Path) -> None:
    """Info-ZIP's unzip (what users of a Unix build machine have) restores modes and symbolic links."""
    destination = tmp_path / "dist" / f"{ZIP_STEM}.zip"
    pack_tree(zip_tree, destination)
    info = subprocess.run(["unzip", "-Z", str(destination)], capture_output=True, text=True, check=True).stdout
    lines = {line.rsplit(" ", 1)[-1]: line for line in info.splitlines()}
    assert lines[f"{ZIP_STEM}/bin/demo"].startswith("-rwxr-xr-x") and " unx " in lines[f"{ZIP_STEM}/bin/demo"]
    assert lines[f"{ZIP_STEM}/python/bin/python3"].startswith("lrwxrwxrwx")
    assert lines[f"{ZIP_STEM}/python/lib/private/"].startswith("drwxr-xr-x")

    unpacked = tmp_path / "unpacked"
    subprocess.run(["unzip", "-q", str(destination), "-d", str(unpacked)], check=True)
    out = unpacked / ZIP_STEM
    assert os.readlink(out / "python/bin/python3") == "python3.12"
    assert stat.S_IMODE((out / "bin/demo").stat().st_mode) == 0o755
    assert (out / "python/lib/python3.12/json/__init__.py").read_bytes() == b"# json\n"
    assert (out / "python/lib/empty").is_dir()
    assert subprocess.run([str(out / "bin/demo")], capture_output=True, text=True, check=True).stdout == "demo\n"
    assert int((out / "app/demo/__init__.py").stat().st_mtime) == MTIME


def test_zip_timestamps_are_clamped_to_what_zip_can_record(zip_tree: Path, tmp_path: Path) -> None:
    future = zip_tree / "python/Lib/future.py"  # 2200-01-01: MS-DOS dates end in 2107
    future.write_text("# from the future\n")
    os.utime(future, (7_258_118_400, 7_258_118_400))
    destination = tmp_path / "dist" / f"{ZIP_STEM}.zip"
    pack_tree(zip_tree, destination)
    by_name = {entry.filename.removeprefix(ZIP_STEM + "/"): entry for entry in zip_entries(destination)}
    assert by_name["python/Lib/epoch.py"].date_time == ZIP_EPOCH_DATE
    assert by_name["python/Lib/late1979.py"].date_time == ZIP_EPOCH_DATE
    assert by_name["python/Lib/future.py"].date_time == (2107, 12, 31, 23, 59, 58)
    assert by_name["bin/demo"].date_time == time.gmtime(MTIME)[:6]  # an even second: exact in MS-DOS time
    assert by_name["python/lib/empty/"].date_time == time.gmtime(MTIME)[:6]


def test_zip_packing_is_deterministic_and_leaves_no_temporary_file(zip_tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one" / f"{ZIP_STEM}.zip", tmp_path / "two" / f"{ZIP_STEM}.zip"
    pack_tree(zip_tree, first)
    pack_tree(zip_tree, second)
    assert first.read_bytes() == second.read_bytes()
    assert [path.name for path in first.parent.iterdir()] == [f"{ZIP_STEM}.zip"]
    first.write_bytes(b"an older archive")
    pack_tree(zip_tree, first)  # replaced
    assert first.read_bytes() == second.read_bytes()
    assert [path.name for path in first.parent.iterdir()] == [f"{ZIP_STEM}.zip"]


def test_zip_of_a_missing_tree_is_a_pack_error(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    with pytest.raises(PackError, match=r"cannot write .*/x\.zip: No such file or directory \(.*/no-such-tree\)"):
        pack_tree(tmp_path / "no-such-tree", dist / "x.zip")
    assert dist.is_dir() and list(dist.iterdir()) == []


def test_zip_unreadable_entry_is_a_pack_error_and_nothing_is_left(zip_tree: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that cannot be read half-way through fails the archive: no final name, no ``.part``. (A Unix socket
    cannot be opened for reading, even by root, for whom permission bits would not do.)"""
    dist = tmp_path / "dist"
    pack_tree(zip_tree, dist / "before.zip")  # a first archive in the directory stays untouched
    before = (dist / "before.zip").read_bytes()
    server = socket.socket(socket.AF_UNIX)
    try:
        monkeypatch.chdir(zip_tree / "app")  # a relative name: socket paths are limited to ~100 bytes
        server.bind("zz.sock")
        with pytest.raises(PackError) as info:
            pack_tree(zip_tree, dist / f"{ZIP_STEM}.zip")
    finally:
        server.close()
    assert str(info.value) == (f"cannot write {dist / f'{ZIP_STEM}.zip'}: No such device or address "
                               f"({zip_tree / 'app' / 'zz.sock'})")
    assert [path.name for path in dist.iterdir()] == ["before.zip"]
    assert (dist / "before.zip").read_bytes() == before


def test_zip_destination_that_is_a_directory_is_a_pack_error(zip_tree: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / f"{ZIP_STEM}.zip").mkdir(parents=True)
    with pytest.raises(PackError, match="cannot write"):
        pack_tree(zip_tree, dist / f"{ZIP_STEM}.zip")
    assert sorted(path.name for path in dist.iterdir()) == [f"{ZIP_STEM}.zip"]
    assert list((dist / f"{ZIP_STEM}.zip").iterdir()) == []


def test_tar_gz_is_chosen_by_name(zip_tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "dist" / f"{ZIP_STEM}.tar.gz"
    pack_tree(zip_tree, destination)
    assert tarfile.is_tarfile(destination) and not zipfile.is_zipfile(destination)


def test_member_times_keep_older_files_and_stamp_the_builds_own(tmp_path: Path) -> None:
    tree = tmp_path / "demo-1.0-x86_64-unknown-linux-gnu"
    (tree / "python").mkdir(parents=True)
    old = tree / "python" / "os.py"
    old.write_text("# from the runtime asset\n")
    os.utime(old, (1_700_000_000.75, 1_700_000_000.75))
    started = time.time() - 1
    (tree / "app").mkdir()
    (tree / "app" / "new.py").write_text("# written by the build\n")
    for suffix in ("tar.gz", "zip"):
        destination = tmp_path / f"out.{suffix}"
        pack_tree(tree, destination, times=MemberTimes(started, 1_600_000_000))
        if suffix == "zip":
            with zipfile.ZipFile(destination) as archive:
                stamps = {info.filename.split("/", 1)[-1]: info.date_time for info in archive.infolist()}
            assert stamps["python/os.py"] == time.gmtime(1_700_000_000)[:6]
            assert stamps["app/new.py"] == time.gmtime(1_600_000_000)[:6]
        else:
            with tarfile.open(destination) as archive:
                stamps = {info.name.split("/", 1)[-1]: info.mtime for info in archive.getmembers()}
            assert stamps["python/os.py"] == 1_700_000_000  # integral: no fractional PAX time
            assert stamps["app/new.py"] == 1_600_000_000


def test_source_date_epoch_from_environment_git_or_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert source_date_epoch(tmp_path) == FALLBACK_EPOCH == 315532800
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    env = {**os.environ, "GIT_AUTHOR_DATE": "@1700000123 +0000", "GIT_COMMITTER_DATE": "@1700000123 +0000",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "c"], check=True, env=env)
    assert source_date_epoch(tmp_path) == 1700000123
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    assert source_date_epoch(tmp_path) == 1234
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(PackError, match="SOURCE_DATE_EPOCH must be a non-negative integer"):
        source_date_epoch(tmp_path)


def test_write_checksums_uses_digests_the_caller_already_has(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"archive bytes")
    other = tmp_path / "b.zip"
    other.write_bytes(b"other bytes")
    given = "0" * 64  # not the real digest: proves the given one is written without re-reading the file
    write_checksums(tmp_path, [archive, other], known={"a.tar.gz": given})
    assert (tmp_path / CHECKSUMS_NAME).read_text() == (
        f"{given}  a.tar.gz\n{hashlib.sha256(b'other bytes').hexdigest()}  b.zip\n")


# --- tar.zst, reused runtime parts, directories ----------------------------------------------------------------


def _tar_stream(archive: Path) -> bytes:
    """The uncompressed tar stream of a .tar.gz or .tar.zst archive (every gzip member / zstd frame)."""
    import gzip

    import zstandard

    data = archive.read_bytes()
    if archive.name.endswith(".tar.zst"):
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
            return reader.read()
    return gzip.decompress(data)


def test_tar_stream_is_what_tarfile_writes(tree: Path, tmp_path: Path) -> None:
    """The members are written by hand (so that the runtime part can be compressed on its own): the stream must
    be byte for byte what tarfile itself writes for the same members, end-of-archive padding included."""
    from hatch_pbs.artifact.pack import _normalizer, _sorted_tree

    (tree / "zz-after-python.txt").write_text("a member after python/\n")
    pack_tree(tree, tmp_path / "out.tar.gz")
    expected = tmp_path / "expected.tar"
    with tarfile.open(expected, "w", format=tarfile.PAX_FORMAT) as archive:
        for path in _sorted_tree(tree):
            archive.add(path, arcname=path.relative_to(tree.parent).as_posix(), recursive=False,
                        filter=_normalizer(None))
    assert _tar_stream(tmp_path / "out.tar.gz") == expected.read_bytes()


def test_tar_zst_holds_the_same_tar_stream_and_gnu_tar_reads_it(tree: Path, tmp_path: Path) -> None:
    times = MemberTimes(time.time() - 3600, FALLBACK_EPOCH)  # everything counts as written before the build
    pack_tree(tree, tmp_path / "a.tar.gz", times=times)
    pack_tree(tree, tmp_path / "a.tar.zst", times=times)
    assert _tar_stream(tmp_path / "a.tar.zst") == _tar_stream(tmp_path / "a.tar.gz")
    assert (tmp_path / "a.tar.zst").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame magic
    for archive, flag in (("a.tar.zst", "--zstd"), ("a.tar.gz", "-z")):
        destination = tmp_path / f"x-{flag}"
        destination.mkdir()
        subprocess.run(["tar", flag, "-xf", str(tmp_path / archive), "-C", str(destination)], check=True)
        assert (destination / STEM / "python/lib/python3.12/json/__init__.py").read_bytes() == b"# json\n"
        assert os.readlink(destination / STEM / "python/bin/python3") == "python3.12"


def test_zstd_output_does_not_depend_on_the_number_of_threads(tree: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import hatch_pbs.artifact.pack

    (tree / "python" / "big.bin").write_bytes(os.urandom(1 << 20) * 6)  # large enough for several jobs
    outputs = []
    for threads in (1, 2, 8):
        monkeypatch.setattr(hatch_pbs.artifact.pack, "ZSTD_THREADS", threads)
        pack_tree(tree, tmp_path / f"{threads}.tar.zst")
        outputs.append((tmp_path / f"{threads}.tar.zst").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
def test_reused_runtime_part_gives_the_same_bytes(tree: Path, tmp_path: Path, suffix: str) -> None:
    times = MemberTimes(time.time() + 3600, 1_234_567_890)
    reuse = tmp_path / "packed"
    pack_tree(tree, tmp_path / f"plain{suffix}", times=times)
    pack_tree(tree, tmp_path / f"first{suffix}", times=times, reuse=reuse)
    (kept,) = [path for path, _ in part_verdicts(reuse, digests=True)]
    assert sorted(path.name for path in kept.iterdir()) == ["part", "record.json"]
    pack_tree(tree, tmp_path / f"second{suffix}", times=times, reuse=reuse)
    assert [path for path, _ in part_verdicts(reuse, digests=True)] == [kept]
    plain = (tmp_path / f"plain{suffix}").read_bytes()
    assert (tmp_path / f"first{suffix}").read_bytes() == plain == (tmp_path / f"second{suffix}").read_bytes()
    # The part really is reused, not recompressed: the caller's contract is that `reuse` goes with one content.
    (tree / "python" / "lib" / "python3.12" / "os.py").write_bytes(b"# changed\n")
    pack_tree(tree, tmp_path / f"third{suffix}", times=times, reuse=reuse)
    assert (tmp_path / f"third{suffix}").read_bytes() == plain


def _damage(path: Path, how: str) -> None:
    """Damage the file at ``path`` for real: ``empty``, ``half`` (truncated to half its size) or ``flipped`` (one
    byte changed in place, same size)."""
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "half":
        path.write_bytes(data[:len(data) // 2])
    else:
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:])


@pytest.mark.parametrize("suffix", [".tar.gz", ".tar.zst"])
@pytest.mark.parametrize("how", ["empty", "half", "flipped"])
def test_a_damaged_kept_part_is_compressed_again_with_one_warning(tree: Path, tmp_path: Path, suffix: str,
                                                                  how: str) -> None:
    times = MemberTimes(time.time() + 3600, 1_234_567_890)
    reuse = tmp_path / "packed"
    pack_tree(tree, tmp_path / f"plain{suffix}", times=times)
    pack_tree(tree, tmp_path / f"first{suffix}", times=times, reuse=reuse)
    (kept,) = [path for path, _ in part_verdicts(reuse, digests=True)]
    _damage(kept / "part", how)
    assert part_verdicts(reuse, digests=True)[0][1].state == "damaged"
    # Only a full check sees a same-size change; the cheap one (sizes) sees the truncations.
    assert part_verdicts(reuse, digests=False)[0][1].state == ("intact" if how == "flipped" else "damaged")
    warnings: list[str] = []
    pack_tree(tree, tmp_path / f"second{suffix}", times=times, reuse=reuse, warn=warnings.append)
    assert len(warnings) == 1 and warnings[0].startswith(f"the compressed runtime part {kept} is damaged (")
    assert warnings[0].endswith("); compressing it again")
    assert (tmp_path / f"second{suffix}").read_bytes() == (tmp_path / f"plain{suffix}").read_bytes()
    assert [(path, verdict.state) for path, verdict in part_verdicts(reuse, digests=True)] == [(kept, "intact")]
    warnings.clear()
    pack_tree(tree, tmp_path / f"third{suffix}", times=times, reuse=reuse, warn=warnings.append)
    assert warnings == [] and (tmp_path / f"third{suffix}").read_bytes() == (tmp_path / f"plain{suffix}").read_bytes()
    assert not list(tmp_path.glob(".*.part")) and not list(reuse.glob(".*.part"))


def test_a_kept_part_without_its_record_is_damaged_and_an_old_format_part_is_outdated(tree: Path,
                                                                                      tmp_path: Path) -> None:
    reuse = tmp_path / "packed"
    pack_tree(tree, tmp_path / "first.tar.gz", reuse=reuse)
    (kept,) = [path for path, _ in part_verdicts(reuse, digests=True)]
    (kept / "record.json").unlink()
    (reuse / "0123456789abcdef0123456789abcdef.2048").write_bytes(b"an older hatch-pbs kept its parts so")
    verdicts = dict(part_verdicts(reuse, digests=False))
    assert verdicts[kept] == ("damaged", "record.json: missing")
    assert verdicts[reuse / "0123456789abcdef0123456789abcdef.2048"].state == "outdated"
    warnings: list[str] = []
    pack_tree(tree, tmp_path / "second.tar.gz", reuse=reuse, warn=warnings.append)
    assert len(warnings) == 1 and "record.json: missing" in warnings[0]
    assert (tmp_path / "second.tar.gz").read_bytes() == (tmp_path / "first.tar.gz").read_bytes()


def _recorded(tree: Path) -> dict[str, tuple[int, str]]:
    from hatch_pbs.release.records import record_tree

    return dict(record_tree(tree / "python").files)


@pytest.mark.parametrize("name", ["out.tar.gz", "out.tar.zst", "out.zip", "dir"])
def test_runtime_files_that_differ_from_their_record_never_reach_an_artifact(tree: Path, tmp_path: Path,
                                                                               name: str) -> None:
    recorded = _recorded(tree)
    reuse = tmp_path / "packed"
    destination = tmp_path / "dist" / name
    # Same size, other bytes: only the digest, computed while the file is packed, can tell.
    (tree / "python/lib/python3.12/os.py").write_bytes(b"# OS\n")

    def pack() -> None:
        if name == "dir":
            pack_directory(tree, destination, recorded=recorded)
        else:
            pack_tree(tree, destination, reuse=reuse, recorded=recorded)

    with pytest.raises(DamagedCacheError, match=r"^python/lib/python3.12/os.py: its sha256 differs"):
        pack()
    assert not destination.exists() and not list((tmp_path / "dist").iterdir())
    assert part_verdicts(reuse, digests=True) == []  # no part was kept from the damaged runtime
    (tree / "python/lib/python3.12/os.py").write_bytes(b"# os\n")
    pack()
    assert destination.exists()


def test_runtime_members_keep_their_times_and_the_rest_get_the_epoch(tree: Path, tmp_path: Path) -> None:
    times = MemberTimes(MTIME - 1, 1_234_567_890)  # every file of the tree was "written by the build"
    pack_tree(tree, tmp_path / "out.tar.gz", times=times)
    found = {member.name.removeprefix(STEM + "/"): member.mtime for member in members(tmp_path / "out.tar.gz")}
    assert found["python/lib/python3.12/os.py"] == MTIME and found["python"] == MTIME
    assert found["app/demo/__init__.py"] == 1_234_567_890 and found["bin/demo"] == 1_234_567_890


def test_pack_directory_copies_real_files_and_replaces_the_previous_one(tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "dist" / STEM
    size = pack_directory(tree, destination)
    assert size == sum(path.lstat().st_size for path in tree.rglob("*") if not path.is_dir() or path.is_symlink())
    copied = destination / "python" / "bin" / "python3.12"
    assert copied.read_bytes() == b"\x7fELF fake" and copied.stat().st_ino != (tree / "python/bin/python3.12").stat().st_ino
    assert os.readlink(destination / "python/bin/python3") == "python3.12"
    (destination / "stray").write_text("x")
    pack_directory(tree, destination)
    assert not (destination / "stray").exists()
    assert sorted(path.name for path in destination.parent.iterdir()) == [STEM]  # no temporary left


def test_pack_directory_into_a_file_is_a_pack_error(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "dist").write_text("not a directory")
    with pytest.raises(PackError, match="cannot write"):
        pack_directory(tree, tmp_path / "dist" / STEM)


def test_pack_directory_normalizes_modes_as_the_archives_do(tree: Path, tmp_path: Path) -> None:
    # Modes a build can meet: setuid and world-writable executables, a group-writable file, a 0700 directory, a
    # umask of 0 for everything the build writes.
    os.chmod(tree / "python/bin/python3.12", 0o4777)
    os.chmod(tree / "app/demo/__init__.py", 0o666)
    os.chmod(tree / "app/demo", 0o2777)
    os.chmod(tree / "bin", 0o700)
    old_umask = os.umask(0)
    try:
        pack_directory(tree, tmp_path / "dist" / STEM)
    finally:
        os.umask(old_umask)
    root = tmp_path / "dist" / STEM
    modes = {path.relative_to(root).as_posix(): stat.S_IMODE(path.lstat().st_mode)
             for path in [root, *root.rglob("*")] if not path.is_symlink()}
    assert modes["python/bin/python3.12"] == 0o755
    assert modes["app/demo/__init__.py"] == 0o644
    assert modes["app/demo"] == modes["bin"] == modes["."] == 0o755
    assert set(modes.values()) <= {0o755, 0o644}, modes
    assert os.readlink(root / "python/bin/python3") == "python3.12"  # links kept as links
