"""Packing (hatch_pbs.pack): the release archive and the SHA256SUMS beside it."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hatch_pbs.errors import PackError
from hatch_pbs.pack import CHECKSUMS_NAME, pack_tar_gz, sha256_of, write_checksums
from runtime_tree import cannot_hide_directories

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
    size = pack_tar_gz(tree, destination)

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
    pack_tar_gz(tree, destination)
    by_name = {info.name.removeprefix(STEM + "/"): info for info in members(destination)}

    assert by_name["bin/demo"].isfile() and by_name["bin/demo"].mode == 0o755
    assert by_name["python/bin/python3.12"].mode == 0o755
    assert by_name["python/lib/python3.12/os.py"].mode == 0o644
    assert by_name["app/demo.txt"].mode == 0o600
    assert by_name["python/lib/private"].isdir() and by_name["python/lib/private"].mode == 0o700
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
    pack_tar_gz(tree, dist / f"{STEM}.tar.gz")
    assert [path.name for path in dist.iterdir()] == [f"{STEM}.tar.gz"]


def test_packing_is_deterministic(tree: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "one" / f"{STEM}.tar.gz", tmp_path / "two" / f"{STEM}.tar.gz"
    pack_tar_gz(tree, first)
    pack_tar_gz(tree, second)
    assert first.read_bytes() == second.read_bytes()


def test_existing_archive_is_replaced(tree: Path, tmp_path: Path) -> None:
    destination = tmp_path / "dist" / f"{STEM}.tar.gz"
    destination.parent.mkdir()
    destination.write_bytes(b"old")
    pack_tar_gz(tree, destination)
    assert members(destination)[0].name == STEM


def assert_nothing_written(dist: Path, name: str) -> None:
    if dist.is_dir():
        leftovers = [path.name for path in dist.iterdir()]
        assert name not in leftovers
        assert not [n for n in leftovers if n.endswith(".part")], leftovers


def test_missing_tree_is_a_pack_error(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    with pytest.raises(PackError, match=r"cannot write .*: No such file or directory \(.*/no-such-tree\)"):
        pack_tar_gz(tmp_path / "no-such-tree", dist / "x.tar.gz")
    assert_nothing_written(dist, "x.tar.gz")
    assert dist.is_dir() and list(dist.iterdir()) == []


def test_output_directory_that_is_a_file_is_a_pack_error(tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "dist"
    blocker.write_text("not a directory")
    with pytest.raises(PackError, match="cannot write"):
        pack_tar_gz(tree, blocker / f"{STEM}.tar.gz")
    assert blocker.read_text() == "not a directory"


def test_destination_that_is_a_directory_is_a_pack_error(tree: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / f"{STEM}.tar.gz").mkdir(parents=True)
    with pytest.raises(PackError, match="cannot write"):
        pack_tar_gz(tree, dist / f"{STEM}.tar.gz")
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
                pack_tar_gz(tree, dist / f"{STEM}.tar.gz")
        finally:
            dist.chmod(0o755)
        assert list(dist.iterdir()) == []
        return
    reason = cannot_hide_directories()
    if reason:
        pytest.skip(f"cannot make a read-only mount: {reason}")
    code = ("import sys; from pathlib import Path; from hatch_pbs.pack import pack_tar_gz; "
            "from hatch_pbs.errors import PackError\n"
            "try:\n    pack_tar_gz(Path(sys.argv[1]), Path(sys.argv[2]))\n"
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

    rows = dict((name, digest) for digest, name in read_sums(tmp_path / CHECKSUMS_NAME))
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
