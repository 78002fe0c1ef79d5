"""Installing the project's wheel and its dependencies into the artifact's ``app/`` site directory.

The installer is uv (``uv pip install --target``), run against the bundled runtime's own interpreter so wheel
tags and environment markers are those of the target. uv reads its usual configuration and environment
(``UV_INDEX_URL``, ``UV_FIND_LINKS``, ``UV_NO_INDEX``, ``UV_OFFLINE``...), so private indexes and air-gapped
wheelhouses work as they do for uv itself. Bytecode is compiled afterwards by the same runtime, with
``--invalidation-mode unchecked-hash``: an artifact is never edited in place, so checking sources on every import
would only cost start-up time, and hash-based ``.pyc`` files do not depend on file times.
"""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import distributions
from pathlib import Path

from hatch_pbs.errors import InstallError

#: Name of the ``.pth`` file placed in the runtime's ``site-packages`` that puts ``app/`` on ``sys.path``.
APP_PTH_NAME = "_hatch_pbs_app.pth"
#: Its content: ``app/`` is the sibling of the runtime directory (``sys.prefix``), added as a site directory so
#: ``.pth`` files of installed distributions are honoured. Works for every interpreter start, launcher or not.
APP_PTH_LINE = "import os, site, sys; site.addsitedir(os.path.join(os.path.dirname(sys.prefix), 'app'))\n"


def uv_executable() -> str:
    """Path of the uv binary shipped by the ``uv`` wheel (a dependency of hatch-pbs)."""
    from uv import find_uv_bin

    return find_uv_bin()


def install_distributions(interpreter: Path, site_dir: Path, requirements: list[str]) -> None:
    """Install ``requirements`` (wheel paths or requirement strings) and their dependencies into ``site_dir``.

    Args:
        interpreter: the runtime's interpreter; uv reads tags and markers from it.
        site_dir: the artifact's ``app/`` directory (created).
        requirements: what to install, e.g. ``["/tmp/x/pbs_demo-1.0.0-py3-none-any.whl"]``.

    Raises:
        InstallError: uv failed; the message holds the end of its output.
    """
    site_dir.mkdir(parents=True, exist_ok=True)
    command = [uv_executable(), "pip", "install", "--quiet", "--target", str(site_dir), "--python", str(interpreter),
               "--link-mode", "copy", "--no-progress", *requirements]
    _run(command, "installing the application and its dependencies with uv")


def compile_bytecode(interpreter: Path, site_dir: Path) -> None:
    """Compile every ``.py`` below ``site_dir`` with the runtime itself (so the ``.pyc`` magic matches).

    Raises:
        InstallError: compilation failed (for example a syntax error in an installed file).
    """
    command = [str(interpreter), "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
               "unchecked-hash", str(site_dir)]
    _run(command, "compiling bytecode with the bundled runtime")


def write_app_pth(site_packages: Path) -> Path:
    """Write :data:`APP_PTH_NAME` into the runtime's ``site-packages``; returns its path."""
    site_packages.mkdir(parents=True, exist_ok=True)
    path = site_packages / APP_PTH_NAME
    path.write_text(APP_PTH_LINE, encoding="utf-8")
    return path


def installed_distributions(site_dir: Path) -> list[dict[str, str]]:
    """``[{"name": ..., "version": ...}]`` of every distribution installed in ``site_dir``, sorted by name."""
    found = {(dist.metadata["Name"], dist.version) for dist in distributions(path=[str(site_dir)])}
    return [{"name": name, "version": version} for name, version in sorted(found, key=lambda item: item[0].lower())]


def _run(command: list[str], purpose: str) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    environment.pop("VIRTUAL_ENV", None)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    except OSError as error:
        raise InstallError(f"{purpose} failed: cannot run {command[0]}: {error}") from None
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip().splitlines()
        tail = "\n".join(output[-25:])
        raise InstallError(f"{purpose} failed (exit status {completed.returncode}):\n{tail}")
