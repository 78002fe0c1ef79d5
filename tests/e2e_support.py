"""Helpers for end-to-end tests: copy example_project, run the real hatchling backend, hide a prefix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from pbs_release import runtime_manylinux

#: Wheel platform tag pip downloads orjson for, per triple (pip expands macOS and manylinux tags downwards).
WHEEL_PLATFORMS = {
    "x86_64-unknown-linux-gnu": "manylinux_2_17_x86_64",
    "aarch64-unknown-linux-gnu": "manylinux_2_17_aarch64",
    "x86_64-unknown-linux-musl": "musllinux_1_2_x86_64",
    "aarch64-apple-darwin": "macosx_11_0_arm64",
    "x86_64-apple-darwin": "macosx_11_0_x86_64",
    "x86_64-pc-windows-msvc": "win_amd64",
    "aarch64-pc-windows-msvc": "win_arm64",
}

#: Triple -> why the session's cross wheelhouse has no wheels for it under this CPython (``conftest.cross_wheelhouse``
#: fills it).
WHEELLESS_TRIPLES: dict[str, str] = {}


def require_cross_wheels(triple: str) -> None:
    """Skip the calling test when the cross wheelhouse has no wheels for ``triple``, saying why."""
    if triple in WHEELLESS_TRIPLES:
        pytest.skip(f"no cross build for {triple}: {WHEELLESS_TRIPLES[triple]}")


REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PROJECT = REPO_ROOT / "example_project"


def copy_example_project(destination: Path, *, hook_table: str) -> Path:
    """Copy example_project to ``destination`` with its ``[tool.hatch.build.hooks.pbs]`` table replaced by
    ``hook_table`` (TOML lines without the header), plus the ``manylinux`` floor the fake runtime needs
    (:func:`pbs_release.runtime_manylinux`) unless ``hook_table`` sets one."""
    shutil.copytree(EXAMPLE_PROJECT, destination, ignore=shutil.ignore_patterns("dist", "__pycache__", ".pytest_cache"))
    pyproject = destination / "pyproject.toml"
    lines = pyproject.read_text(encoding="utf-8").splitlines()
    start = lines.index("[tool.hatch.build.hooks.pbs]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    table = hook_table.strip().splitlines()
    if not any(line.split("=")[0].strip() == "manylinux" for line in table):
        table.append(f'manylinux = "{runtime_manylinux()}"')
    lines[start + 1:end] = [*table, ""]
    pyproject.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return destination


def run_hatchling(project: Path, target: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m hatchling build -t <target> [extra]`` in ``project``: the real build backend, in a subprocess."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("HATCH_PBS_", "UV_"))}
    environment.update(env)
    return subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", target, *extra], cwd=project,
                          env=environment, capture_output=True, text=True, timeout=600, check=False)


@cache
def can_hide_directories() -> str:
    """Empty string when ``unshare -m`` + a tmpfs mount work here, else the reason they do not."""
    if not shutil.which("unshare"):
        return "the unshare command is not installed"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        return f"unshare -m with a tmpfs mount is not permitted here: {probe.stderr.strip()}"
    return ""


def run_hidden(hidden: Path, command: list[str], *, cwd: Path, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a private mount namespace where ``hidden`` is covered by an empty tmpfs."""
    script = 'mount -t tmpfs none "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(hidden), *command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
