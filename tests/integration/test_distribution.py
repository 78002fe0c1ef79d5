"""hatch-pbs's own wheel ships every file of the package: the prebuilt onefile bootstraps and Windows launchers
included, byte for byte (the single-file executables and launchers are copied from the installed package)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_every_tracked_package_file(tmp_path: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "hatch_pbs"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=False)
    if tracked.returncode != 0:
        pytest.skip(f"not a git checkout: {tracked.stderr.strip()}")
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)], cwd=REPO_ROOT,
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("hatch_pbs-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name: archive.read(name) for name in archive.namelist() if name.startswith("hatch_pbs/")}
    names = tracked.stdout.split()
    bootstraps = [name for name in names if "/onefile/bootstrap/bootstrap-" in name]
    assert len(bootstraps) == 12
    missing = [name for name in names if name not in shipped]
    assert missing == []
    assert all(shipped[name] == (REPO_ROOT / name).read_bytes() for name in names)
