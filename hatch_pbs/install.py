"""Installing the project's wheel and its dependencies into the artifact's ``app/`` site directory.

The installer is uv (``uv pip install --target``) with ``--python-platform`` and ``--python-version`` set for the
*target*: wheels are chosen for the target's platform, ABI and Python version, and environment markers
(``sys_platform``, ``platform_machine``, ``os_name``...) are evaluated for the target, whatever the build machine
is. Linux gnu targets use the manylinux floor of python-build-standalone's runtimes (glibc 2.17), so the
artifact runs wherever its runtime runs. For foreign targets only wheels are accepted (``--only-binary :all:``):
a source distribution cannot be built for another platform here. uv reads its usual configuration and
environment (``UV_INDEX_URL``, ``UV_FIND_LINKS``, ``UV_OFFLINE``...), so private indexes and
air-gapped wheelhouses work as they do for uv itself.

Bytecode is compiled afterwards by an interpreter of the target's exact Python version (the target's own runtime
for the host triple; the host triple's runtime of the same version otherwise), with
``--invalidation-mode unchecked-hash``: an artifact is never edited in place, so checking sources on every import
would only cost start-up time, and hash-based ``.pyc`` files do not depend on file times.
"""

from __future__ import annotations

import os
import re
import subprocess
from importlib.metadata import distributions
from pathlib import Path

from hatch_pbs.errors import InstallError
from hatch_pbs.triples import macos_deployment_target, parse_triple, uv_python_platform, wheel_platform_tags

#: Name of the ``.pth`` file placed in the runtime's ``site-packages`` that puts ``app/`` on ``sys.path``.
APP_PTH_NAME = "_hatch_pbs_app.pth"
#: Its content: ``app/`` is the sibling of the runtime directory (``sys.prefix``), added as a site directory so
#: ``.pth`` files of installed distributions are honoured. Works for every interpreter start, launcher or not.
APP_PTH_LINE = "import os, site, sys; site.addsitedir(os.path.join(os.path.dirname(sys.prefix), 'app'))\n"


def uv_executable() -> str:
    """Path of the uv binary shipped by the ``uv`` wheel (a dependency of hatch-pbs)."""
    from uv import find_uv_bin

    return find_uv_bin()


def install_distributions(installer_python: Path, site_dir: Path, requirements: list[str], *, triple: str,
                          python_version: str, foreign: bool) -> None:
    """Install ``requirements`` (wheel paths or requirement strings) and their dependencies into ``site_dir``.

    Args:
        installer_python: an interpreter uv may run for the install (the target runtime's for the host triple, the
            host runtime of the same Python version for foreign triples); it never decides what is installed.
        site_dir: the artifact's ``app/`` directory (created).
        requirements: what to install, e.g. ``["/tmp/x/pbs_demo-1.0.0-py3-none-any.whl"]``.
        triple: the target triple the wheels must suit.
        python_version: the target runtime's full Python version, e.g. ``"3.12.7"``.
        foreign: the target is not the build machine's triple: only wheels are accepted.

    Raises:
        InstallError: uv failed; for a distribution without a usable wheel the message names it, the triple and
            the wheel tags that would have been acceptable, followed by the end of uv's output.
    """
    try:
        platform = uv_python_platform(triple)
    except ValueError as error:
        raise InstallError(str(error)) from None
    site_dir.mkdir(parents=True, exist_ok=True)
    command = [uv_executable(), "pip", "install", "--quiet", "--target", str(site_dir), "--python",
               str(installer_python), "--python-platform", platform, "--python-version", python_version,
               "--link-mode", "copy", "--no-progress", *(["--only-binary", ":all:"] if foreign else []),
               *requirements]
    environment = {}
    if parse_triple(triple).os == "darwin":  # uv reads the macOS version to choose wheels for from here
        environment["MACOSX_DEPLOYMENT_TARGET"] = macos_deployment_target()
    uv_lock = site_dir / ".lock"  # uv's lock of the --target directory (world-writable): no part of an artifact
    keep_lock = uv_lock.exists()
    try:
        _run(command, f"installing the application and its dependencies for {triple} with uv", environment)
    except InstallError as error:
        missing = _distribution_without_wheel(str(error))
        if missing is None:
            raise
        raise InstallError(
            f"{missing} has no usable wheel for {triple} (Python {python_version}); acceptable wheel tags: "
            f"{', '.join(acceptable_wheel_tags(triple, python_version))}\n{error}") from None
    finally:
        if not keep_lock and uv_lock.is_file() and not uv_lock.is_symlink():
            uv_lock.unlink()


def acceptable_wheel_tags(triple: str, python_version: str, *, limit: int = 8) -> list[str]:
    """The most specific wheel tags (``python-abi-platform``) a CPython ``python_version`` runtime for ``triple``
    accepts, e.g. ``["cp312-cp312-manylinux_2_17_aarch64", ..., "py3-none-any"]``; at most ``limit`` of them,
    with ``"..."`` standing for the rest. Order and rules: ``packaging.tags`` (PEP 425)."""
    from packaging import tags

    major, minor = (int(part) for part in python_version.split(".")[:2])
    platforms = wheel_platform_tags(triple)
    specific = [str(tag) for tag in tags.cpython_tags((major, minor), platforms=platforms)]
    if len(specific) < limit:
        return [*specific, "py3-none-any"]
    return [*specific[: limit - 1], "...", "py3-none-any"]


def _distribution_without_wheel(uv_output: str) -> str | None:
    """The distribution uv could not find a wheel for, from uv's resolver message, or ``None``.

    uv says ``Wheels are required for `name```, ``name==1.0 has no usable wheels``, ``all versions of name have no
    wheels with a matching platform tag``, ``Wheels are available for `name` (v1.0) on the following platform``
    or, for a source distribution given directly, ``attempted to build `name```.
    """
    name = r"([A-Za-z0-9][A-Za-z0-9._-]*)"
    for pattern in (r"Wheels are required for `([^`]+)`", rf"(?<!\S){name}\S* (?:has|have) no (?:usable )?wheels",
                    r"Wheels are available for `([^`]+)`", r"attempted to build `([^`]+)`"):
        match = re.search(pattern, uv_output)
        if match:
            return match.group(1)
    return None


def compile_bytecode(interpreter: Path, site_dir: Path) -> None:
    """Compile every ``.py`` below ``site_dir`` with ``interpreter``, which must be of the target's exact Python
    version (so the ``.pyc`` magic and cache tag match).

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


def _run(command: list[str], purpose: str, extra_environment: dict[str, str] | None = None) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    environment.pop("VIRTUAL_ENV", None)
    environment.update(extra_environment or {})
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    except OSError as error:
        raise InstallError(f"{purpose} failed: cannot run {command[0]}: {error}") from None
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip().splitlines()
        tail = "\n".join(output[-25:])
        raise InstallError(f"{purpose} failed (exit status {completed.returncode}):\n{tail}")
