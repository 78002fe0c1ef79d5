"""Helpers shared by the extraction, relocation and launcher tests: a runtime extracted from the fake PBS release
(optionally relocated with hatch-pbs itself), ELF inspection with ``readelf``, and running a command while a
directory (the source interpreter's prefix) is hidden under a tmpfs in a private mount namespace."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pbs_release import FakeRelease

from hatch_pbs.binaries.elf import is_elf
from hatch_pbs.relocate import RelocationPlan, apply_plan, plan_relocation
from hatch_pbs.runtime.extract import extract_runtime

XY = f"{sys.version_info.major}.{sys.version_info.minor}"
INTERPRETER = f"python/bin/python{XY}"
"""The runtime's interpreter, relative to an artifact root."""
SITE_PACKAGES = f"python/lib/python{XY}/site-packages"


def extract_install_only(release: FakeRelease, root: Path) -> Path:
    """Extract ``release``'s install_only asset into ``root/python`` (an artifact-like tree); returns ``root``."""
    extract_runtime(release.assets["install_only"], root / "python", full=False)
    return root


def relocate(root: Path) -> RelocationPlan:
    """Plan and apply the relocation of the artifact tree ``root`` (runtime in ``root/python``)."""
    plan = plan_relocation(root, root / "python")
    apply_plan(plan)
    return plan


def elf_files(root: Path) -> list[Path]:
    """Every regular ELF file below ``root``, sorted."""
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink() and is_elf(path):
                found.append(path)
    return sorted(found)


_READELF_PATHS = re.compile(r"\((RPATH|RUNPATH)\)\s+Library (?:rpath|runpath): \[(.*)\]")


def readelf_search_paths(path: Path) -> dict[str, tuple[str, ...]]:
    """``RPATH``/``RUNPATH`` entries of ``path`` as ``readelf -d`` (binutils) prints them."""
    output = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return {tag: tuple(part for part in value.split(":") if part) for tag, value in _READELF_PATHS.findall(output)}


def copy_tree(source: Path, destination: Path) -> Path:
    """Copy an artifact tree keeping symbolic links as links (like unpacking it elsewhere would)."""
    shutil.copytree(source, destination, symlinks=True)
    return destination


@functools.cache
def cannot_hide_directories() -> str:
    """Empty string when ``unshare -m`` plus a tmpfs mount really hide a directory here, else why not."""
    if not shutil.which("unshare"):
        return "the unshare command is not installed"
    with tempfile.TemporaryDirectory() as probe_dir:
        Path(probe_dir, "visible").write_text("x")
        script = 'mount -t tmpfs none "$1" && test ! -e "$1/visible"'
        try:
            probe = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", probe_dir], capture_output=True,
                                   text=True, timeout=30, check=False)
        except OSError as error:
            return f"unshare cannot be run: {error}"
    if probe.returncode != 0:
        return f"unshare -m with a tmpfs mount is not permitted here: {probe.stderr.strip() or probe.returncode}"
    return ""


def run_hidden(hidden: Path, command: list[str], *, cwd: Path, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a private mount namespace in which ``hidden`` is covered by an empty tmpfs (so nothing
    inside it can be loaded); fails the command if ``hidden`` is still visible there."""
    script = 'mount -t tmpfs none "$1" && test -z "$(ls -A "$1")" && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(hidden), *command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
