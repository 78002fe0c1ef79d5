"""A full disk while extracting, packing and downloading: a clear hatch-pbs error naming "No space left on device",
and nothing partial left behind.

The disk is a small tmpfs mounted in a private mount namespace (``unshare -m``) that only the child process doing
the operation sees; these tests skip, saying why, where unprivileged namespaces or tmpfs mounts are not allowed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pbs_release import FakeRelease, ReleaseServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs and mount namespaces are Linux")

REPORT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from hatch_pbs.errors import HatchPbsError

    def report(mount, error):
        left = sorted(str(path.relative_to(mount)) for path in Path(mount).rglob("*"))
        print(json.dumps({"type": type(error).__name__ if error else None,
                          "hatch_pbs_error": isinstance(error, HatchPbsError), "message": str(error or ""),
                          "left": left}))
""")


@cache
def namespace_problem() -> str | None:
    """Why a tmpfs cannot be mounted in a private mount namespace here, or ``None`` when it can."""
    if shutil.which("unshare") is None:
        return "the unshare command (util-linux) is not installed"
    with tempfile.TemporaryDirectory() as directory:
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "-o", "size=1m",
                                "hatch-pbs-probe", directory], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a private mount namespace: {(probe.stderr or probe.stdout).strip()}"
    return None


def run_on_full_disk(mountpoint: Path, size: str, body: str) -> dict[str, Any]:
    """Run ``body`` (Python, with ``MOUNT`` the tmpfs path and ``report(MOUNT, error)`` to call once) in a child
    process that sees a ``size`` tmpfs at ``mountpoint``; returns what it reported."""
    problem = namespace_problem()
    if problem:
        pytest.skip(problem)
    mountpoint.mkdir(parents=True, exist_ok=True)
    script = REPORT + f"MOUNT = Path({str(mountpoint)!r})\n" + textwrap.dedent(body)
    process = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o size="$1" hatch-pbs-full "$2" && exec "$3" -c "$4"', "sh", size, str(mountpoint),
         sys.executable, script],
        capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode == 0, process.stderr
    result: dict[str, Any] = json.loads(process.stdout.strip().splitlines()[-1])
    assert list(mountpoint.iterdir()) == []  # outside the namespace the directory was never written
    return result


def test_extracting_onto_a_full_disk(fake_release: FakeRelease, tmp_path: Path) -> None:
    archive = fake_release.assets["install_only"]  # about 100 MB unpacked
    result = run_on_full_disk(tmp_path / "disk", "16m", f"""
        from hatch_pbs.runtime.extract import extract_runtime
        error = None
        try:
            extract_runtime(Path({str(archive)!r}), MOUNT / "build" / "python", full=False)
        except Exception as caught:
            error = caught
        report(MOUNT, error)
    """)
    print(result["message"])
    assert result["type"] == "ExtractError" and result["hatch_pbs_error"]
    assert "No space left on device" in result["message"]
    assert archive.name in result["message"] and "/build/python" in result["message"]
    assert result["left"] == ["build"]  # the destination (and everything in it) was removed


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_packing_onto_a_full_disk(tmp_path: Path, suffix: str) -> None:
    tree = tmp_path / "app-1.0-x86_64-unknown-linux-gnu"
    (tree / "lib").mkdir(parents=True)
    for index in range(4):
        (tree / "lib" / f"blob{index}.bin").write_bytes(os.urandom(2 << 20))  # incompressible: 8 MiB packed
    result = run_on_full_disk(tmp_path / "disk", "4m", f"""
        from hatch_pbs.artifact.pack import pack_tree
        error = None
        try:
            pack_tree(Path({str(tree)!r}), MOUNT / "dist" / "{tree.name}{suffix}")
        except Exception as caught:
            error = caught
        report(MOUNT, error)
    """)
    print(result["message"])
    assert result["type"] == "PackError" and result["hatch_pbs_error"]
    assert "No space left on device" in result["message"]
    assert f"{tree.name}{suffix}" in result["message"]
    assert result["left"] == ["dist"]  # neither the archive nor its .part file


def test_downloading_into_a_full_cache(release_server: ReleaseServer, fake_release: FakeRelease,
                                       tmp_path: Path) -> None:
    result = run_on_full_disk(tmp_path / "disk", "4m", f"""
        from hatch_pbs.release.cache import Cache
        from hatch_pbs.release.download import Downloader
        from hatch_pbs.release.fetch import fetch_asset, load_catalogue
        from hatch_pbs.release.resolve import ResolvedAsset, select_asset
        cache, mirror = Cache(MOUNT / "cache"), {release_server.base_url!r}
        error = None
        with Downloader(backoff=0, progress=False) as client:
            catalogue = load_catalogue(cache, client, mirror, {fake_release.tag!r})
            asset, sha256 = select_asset(catalogue, target={fake_release.triple!r}, flavor="full",
                                         python_version={fake_release.python_version!r})
            try:
                fetch_asset(cache, client, ResolvedAsset(asset, sha256, asset.url(mirror)))
            except Exception as caught:
                error = caught
        report(MOUNT, error)
    """)
    print(result["message"])
    assert result["type"] == "DownloadError" and result["hatch_pbs_error"]
    assert "No space left on device" in result["message"]
    asset_dir = f"cache/assets/{fake_release.sha256('full')}"
    published = [path for path in result["left"] if path.startswith(asset_dir + "/")]
    assert published == [f"{asset_dir}/{fake_release.asset_name('full')}.lock"]  # the lock file, no entry or .part
    assert release_server.request_count(fake_release.asset_name("full")) == 1  # a full disk is not retried


def _relocation_body(fake_release: FakeRelease, action: str) -> str:
    """Child code: prepare the relocated runtime of ``fake_release`` in a cache on the tmpfs, then ``action``."""
    archive = fake_release.assets["install_only"]
    return f"""
        import os, subprocess
        from hatch_pbs.release.assets import parse_asset_name
        from hatch_pbs.release.cache import Cache, sha256_of
        from hatch_pbs.runtime.prepare import relocated_runtime
        from hatch_pbs.release.resolve import ResolvedAsset
        archive = Path({str(archive)!r})
        resolved = ResolvedAsset(parse_asset_name(archive.name, release={fake_release.tag!r}), sha256_of(archive),
                                 archive.as_uri())
        cache = Cache(MOUNT / "cache")
        def used():
            status = os.statvfs(MOUNT)
            return (status.f_blocks - status.f_bfree) * status.f_frsize
        {action}
    """


def test_relocating_onto_a_full_disk_publishes_no_runtime(fake_release: FakeRelease, tmp_path: Path) -> None:
    """Issue 10, point 3: LIEF's ``write`` ignores a full disk and leaves a short ``libpython``; the relocation must
    fail instead, publish no prepared runtime, and the next try (with room) must work without any clean-up."""
    # How much the extracted runtime takes on a tmpfs (page-rounded): measured, then the disk is made that big
    # plus half of libpython, so extraction fits and the rewrite of libpython (a whole new copy) does not.
    measured = run_on_full_disk(tmp_path / "probe", "1g", _relocation_body(fake_release, textwrap.dedent("""
        from hatch_pbs.runtime.extract import extract_runtime
        extract_runtime(archive, MOUNT / "cache" / "probe" / "python", full=False)
        library = max((MOUNT / "cache" / "probe").rglob("libpython*.so*"), key=lambda path: path.stat().st_size)
        print(json.dumps({"used": used(), "library": library.stat().st_size}))
        import shutil; shutil.rmtree(MOUNT / "cache")
    """).replace("\n", "\n        ")))
    size = measured["used"] + measured["library"] // 2 + (1 << 20)
    result = run_on_full_disk(tmp_path / "disk", str(size), _relocation_body(fake_release, textwrap.dedent("""
        error = None
        try:
            relocated_runtime(cache, archive, resolved)
        except Exception as caught:
            error = caught
        left = sorted(str(path.relative_to(MOUNT)) for path in (MOUNT / "cache" / "runtimes").iterdir())
        # With room again (the same mount, grown), the same cache prepares a runtime that runs.
        subprocess.run(["mount", "-o", "remount,size=1g", str(MOUNT)], check=True)
        again = relocated_runtime(cache, archive, resolved)
        ran = subprocess.run([str(again.interpreter), "-I", "-c", "import ssl, json; print('runs')"],
                             capture_output=True, text=True).stdout
        print(json.dumps({"type": type(error).__name__, "message": str(error), "left": left, "ran": ran}))
        import shutil; shutil.rmtree(MOUNT / "cache")
    """).replace("\n", "\n        ")))
    print(result["message"])
    assert result["type"] == "RelocateError"
    assert "No space left on device" in result["message"] and "libpython" in result["message"]
    assert all(name.endswith(".lock") for name in result["left"]), result["left"]  # no entry, no temporary
    assert result["ran"] == "runs\n"


def test_a_rewritten_elf_file_on_a_full_disk_is_left_whole(tmp_path: Path) -> None:
    """The relocation's write of one ELF file on a disk that cannot hold the new copy: an ``OSError`` (ENOSPC), and
    the original file unchanged (LIEF's own ``write`` would have left a short file and no error)."""
    library = Path(sys.executable).resolve()
    result = run_on_full_disk(tmp_path / "disk", str(library.stat().st_size * 3 // 2 + (1 << 20)), f"""
        import hashlib, shutil
        from hatch_pbs.binaries.elf import read_search_paths, write_search_paths
        copy = MOUNT / "python"
        shutil.copyfile({str(library)!r}, copy)
        before = hashlib.sha256(copy.read_bytes()).hexdigest()
        ballast = MOUNT / "ballast"
        with ballast.open("wb") as stream:  # fill the disk until less than the file's size is free
            while os.statvfs(MOUNT).f_bavail * os.statvfs(MOUNT).f_frsize > copy.stat().st_size // 2:
                stream.write(bytes(1 << 16))
        error = None
        try:
            write_search_paths(copy, {{"RUNPATH": ("$ORIGIN/../lib",)}})
        except Exception as caught:
            error = caught
        whole = hashlib.sha256(copy.read_bytes()).hexdigest() == before
        ballast.unlink()
        copy.unlink()
        print(json.dumps({{"type": type(error).__name__, "errno": getattr(error, "errno", None), "whole": whole,
                          "left": sorted(path.name for path in MOUNT.iterdir())}}))
    """)
    assert result["type"] in ("OSError", "IOError") and result["errno"] == 28, result
    assert result["whole"]
    assert result["left"] == []


def test_bytecode_cache_on_a_full_disk(tmp_path: Path) -> None:
    """The bytecode worker (a separate process of the compiling interpreter) fills the file system of the bytecode
    cache: one InstallError line naming that file system's mount point and the file being written."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "blob.py").write_text(f"BLOB = {os.urandom(1 << 20).hex()!r}\n")  # a 2 MiB constant in its .pyc
    result = run_on_full_disk(tmp_path / "disk", "1m", f"""
        from hatch_pbs.bytecode.compiler import compile_bytecode
        error = None
        try:
            compile_bytecode(Path(sys.executable), Path({str(site)!r}), cache_dir=MOUNT / "cache" / "bytecode")
        except Exception as caught:
            error = caught
        report(MOUNT, error)
    """)
    message = result["message"]
    print(message)
    assert result["type"] == "InstallError" and "\n" not in message and "Traceback" not in message
    assert message.startswith(f"compiling bytecode with the bundled runtime failed: No space left on device: the "
                              f"file system mounted at {tmp_path / 'disk'} is full (writing {tmp_path / 'disk'}/cache/"
                              f"bytecode/{sys.implementation.cache_tag}/"), message
    assert not [path for path in result["left"] if path.endswith((".pyc", ".part"))]  # no partial cache entry


FILL = """
    with open(MOUNT / "filler", "wb") as filler:  # leave the file system with no free block at all
        try:
            while True:
                filler.write(b"\\0" * 65536)
                filler.flush()
        except OSError:
            pass
"""


def _fetch_on_full_disk(release_server: ReleaseServer, fake_release: FakeRelease, mountpoint: Path, size: str,
                        fill: bool) -> dict[str, Any]:
    """``hatch-pbs fetch`` (the real command, in a child process) with its cache on a ``size`` tmpfs (filled up
    first with ``fill``); returns what the child reported, with ``stderr`` and ``status`` of the command."""
    command = [sys.executable, "-m", "hatch_pbs.cli", "fetch", "--release", fake_release.tag, "--python-version",
               fake_release.python_version, "--target", fake_release.triple, "--flavor", "full", "--mirror",
               release_server.base_url, "--cache-dir", str(mountpoint / "cache")]
    return run_on_full_disk(mountpoint, size, (FILL if fill else "") + f"""
        import subprocess
        fetched = subprocess.run({command!r}, capture_output=True, text=True, check=False)
        (MOUNT / "filler").unlink(missing_ok=True)
        print(json.dumps({{"stderr": fetched.stderr, "status": fetched.returncode,
                          "left": sorted(str(path.relative_to(MOUNT)) for path in MOUNT.rglob("*"))}}))
    """)


def test_fetch_into_a_cache_on_a_full_disk_names_its_mount_point(release_server: ReleaseServer,
                                                                 fake_release: FakeRelease, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    result = _fetch_on_full_disk(release_server, fake_release, disk, "4m", fill=False)
    print(result["stderr"])
    assert result["status"] == 1
    (line,) = result["stderr"].splitlines()
    assert line.startswith("hatch-pbs: error: cannot write "), line
    asset_dir = disk / "cache" / "assets" / fake_release.sha256("full")
    assert (f"No space left on device: the file system mounted at {disk} is full (writing "
            f"{asset_dir}/.{fake_release.asset_name('full')}.") in line
    assert not [path for path in result["left"] if path.endswith(".part")]


def test_fetch_with_no_room_for_the_catalogue_names_the_mount_point(release_server: ReleaseServer,
                                                                   fake_release: FakeRelease, tmp_path: Path) -> None:
    """Even the release's small SHA256SUMS does not fit: the cache's own write (not the download's) names the full
    file system, instead of a bare "[Errno 28] No space left on device" that names nothing."""
    disk = tmp_path / "disk"
    result = _fetch_on_full_disk(release_server, fake_release, disk, "1m", fill=True)
    print(result["stderr"])
    assert result["status"] == 1
    (line,) = result["stderr"].splitlines()
    catalogue = next(path for path in result["left"] if path.endswith("/SHA256SUMS.lock"))[:-len(".lock")]
    assert line == (f"hatch-pbs: error: cannot cache the catalogue (SHA256SUMS) of release {fake_release.tag} as "
                    f"{disk / catalogue}: No space left on device: the file system mounted at {disk} is full "
                    f"(writing {disk / catalogue})"), line


def test_copying_a_directory_artifact_onto_a_full_disk(tmp_path: Path) -> None:
    """``archive-format = "dir"``: the copy stops at the first file that does not fit, and the file system is named
    by its mount point (shutil.copytree would otherwise collect "[Errno 28]" texts and go on copying)."""
    tree = tmp_path / "app-1.0-x86_64-unknown-linux-gnu"
    (tree / "lib").mkdir(parents=True)
    for index in range(4):
        (tree / "lib" / f"blob{index}.bin").write_bytes(os.urandom(2 << 20))
    disk = tmp_path / "disk"
    result = run_on_full_disk(disk, "3m", f"""
        from hatch_pbs.artifact.pack import pack_directory
        error = None
        try:
            pack_directory(Path({str(tree)!r}), MOUNT / "dist" / "{tree.name}")
        except Exception as caught:
            error = caught
        report(MOUNT, error)
    """)
    message = result["message"]
    print(message)
    assert result["type"] == "PackError" and "\n" not in message
    assert message.startswith(f"cannot write {disk}/dist/{tree.name}: No space left on device: the file system "
                              f"mounted at {disk} is full (writing {disk}/dist/.{tree.name}."), message
    assert result["left"] == ["dist"]


@pytest.mark.e2e
def test_a_build_whose_output_directory_is_on_a_full_disk(tmp_path: Path, fake_release: FakeRelease,
                                                         wheelhouse: Path) -> None:
    """``hatchling build -t app`` with ``dist/`` on a full file system (the cache is not): one line naming that
    file system's mount point, and nothing left in ``dist/``."""
    from e2e_support import copy_example_project

    minor = ".".join(fake_release.python_version.split(".")[:2])
    project = copy_example_project(tmp_path / "project", hook_table=f'python-version = "{minor}"')
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("HATCH_PBS_", "UV_"))}
    environment.update({"HATCH_PBS_MIRROR": fake_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache"),
                        "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(tmp_path / "uv-cache")})
    disk = tmp_path / "disk"
    result = run_on_full_disk(disk, "4m", f"""
        import subprocess
        built = subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "app", "--hooks-only", "-d",
                                str(MOUNT / "dist")], cwd={str(project)!r}, env={environment!r}, capture_output=True,
                               text=True, check=False)
        print(json.dumps({{"output": built.stdout + built.stderr, "status": built.returncode,
                          "left": sorted(str(path.relative_to(MOUNT)) for path in MOUNT.rglob("*"))}}))
    """)
    output = result["output"]
    print(output)
    assert result["status"] != 0 and "Traceback" not in output, output
    (line,) = [line for line in output.splitlines() if "No space left on device" in line]
    assert line.startswith("hatch-pbs: "), line
    assert f"No space left on device: the file system mounted at {disk} is full (writing {disk}/dist/app/" in line
    assert [path for path in result["left"] if not path.endswith(".lock")] in ([], ["dist"], ["dist", "dist/app"])
