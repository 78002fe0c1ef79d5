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
        from hatch_pbs.extract import extract_runtime
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
        from hatch_pbs.pack import pack_tree
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
        from hatch_pbs.cache import Cache
        from hatch_pbs.download import Downloader
        from hatch_pbs.fetch import fetch_asset, load_catalogue
        from hatch_pbs.resolve import ResolvedAsset, select_asset
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


def test_bytecode_cache_on_a_full_disk(tmp_path: Path) -> None:
    """The bytecode worker (a separate process of the compiling interpreter) fills the file system of the bytecode
    cache: one InstallError line naming that file system's mount point and the file being written."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "blob.py").write_text(f"BLOB = {os.urandom(1 << 20).hex()!r}\n")  # a 2 MiB constant in its .pyc
    result = run_on_full_disk(tmp_path / "disk", "1m", f"""
        from hatch_pbs.install import compile_bytecode
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
