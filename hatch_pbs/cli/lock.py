"""``hatch-pbs lock``: resolve every target triple of a project's configuration exactly as a build does and write
its ``pbs.lock``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet

from hatch_pbs.config import parse_hook_config, requires_python_specifier
from hatch_pbs.errors import ConfigError, LockError, os_error_cause
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.lock import LOCK_FILE_NAME, lock_from_resolved, write_lock

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Where ``hatch-pbs lock`` looks for the hook table, first match wins (hatchling lets a target's own table
#: replace the global one).
HOOK_TABLES = (("targets", "app", "hooks", "pbs"), ("targets", "binary", "hooks", "pbs"), ("hooks", "pbs"))


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add ``lock`` to the ``hatch-pbs`` subcommands ``commands``."""
    help_text = "resolve every target triple of a project's configuration and write its pbs.lock"
    command = commands.add_parser("lock", help=help_text, description=help_text)
    command.set_defaults(subparser=command)
    command.add_argument("--project", default=".", metavar="DIR",
                         help="the project directory, holding pyproject.toml (default: the current directory)")


def run(project_dir: Path) -> None:
    """``hatch-pbs lock``: resolve the project's targets exactly as a build does and write ``pbs.lock``."""
    from hatch_pbs.pipeline import (
        resolve_runtimes,  # imports the binary patchers (LIEF): only when needed
    )

    pyproject = project_dir / "pyproject.toml"
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"cannot read {pyproject}: {error.strerror or error}"]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError([f"{pyproject} is not valid TOML: {error}"]) from None
    table = hook_table(document, pyproject)
    scripts, requires_python = _project_metadata(project_dir, pyproject)
    config = parse_hook_config(table, project_scripts=scripts, root=project_dir, requires_python=requires_python)
    with Downloader(offline=config.offline, timeout=config.timeout, mirror=config.mirror) as downloader:
        _, resolved = resolve_runtimes(config, requires_python, Cache(config.cache_dir), downloader)
    lock = lock_from_resolved(resolved)
    path = project_dir / LOCK_FILE_NAME
    try:
        write_lock(path, lock)
    except OSError as error:
        raise LockError(f"cannot write the lock file {path}: {os_error_cause(error, path)}") from None
    for runtime in lock.runtimes:
        print(f"{runtime.target}: {runtime.asset} (release {runtime.release}, sha256 {runtime.sha256})")
    print(f"wrote {path}")


def _project_metadata(project_dir: Path, pyproject: Path) -> tuple[dict[str, str], SpecifierSet | None]:
    """The project's scripts (console and GUI, name -> entry point) and ``requires-python``, as hatchling's metadata
    resolves them for a build (dynamic fields and metadata hooks included), so a lock is made from what the build
    will see.

    Raises:
        ConfigError: hatchling finds the metadata invalid (one line naming ``pyproject``).
    """
    from hatchling.metadata.core import ProjectMetadata
    from hatchling.plugin.manager import PluginManager

    metadata = ProjectMetadata(str(project_dir), PluginManager())
    try:
        core = metadata.core
        return {**core.scripts, **core.gui_scripts}, requires_python_specifier(core.requires_python)
    except (ValueError, TypeError, OSError) as error:
        raise ConfigError([f"the project metadata in {pyproject} is not valid: {error}"]) from None


def hook_table(document: dict[str, Any], pyproject: Path) -> dict[str, Any]:
    """The hook table of the pyproject ``document`` (the first of :data:`HOOK_TABLES` that it has).

    Raises:
        ConfigError: there is none, or it is not a table.
    """
    hatch_build = document.get("tool", {}).get("hatch", {}).get("build", {})
    for keys in HOOK_TABLES:
        table: Any = hatch_build
        for key in keys:
            table = table.get(key) if isinstance(table, dict) else None
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError([f"[tool.hatch.build.{'.'.join(keys)}] in {pyproject} must be a table"])
            return table
    raise ConfigError([(f"{pyproject} has no [tool.hatch.build.hooks.pbs] table (nor "
                        f"[tool.hatch.build.targets.app.hooks.pbs]): there is nothing to lock")])
