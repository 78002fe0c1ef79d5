"""``hatch-pbs lock``: resolve every target triple of a project's configuration exactly as a build does and write
its ``pbs.lock``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet

from hatch_pbs.config import parse_hook_config, requires_python_specifier
from hatch_pbs.errors import ConfigError, LockError, os_error_cause
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.lock import LOCK_FILE_NAME, lock_from_resolved, write_lock

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
    from hatch_pbs.pipeline import resolve_runtimes  # imports the binary patchers (LIEF): only when needed

    table, scripts, requires_python = _project_settings(project_dir)
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


def _project_settings(project_dir: Path) -> tuple[dict[str, Any], dict[str, str], SpecifierSet | None]:
    """The project's hook table, scripts (console and GUI, name -> entry point) and ``requires-python``, as
    hatchling resolves them for a build: ``[tool.hatch]`` with a ``hatch.toml`` beside ``pyproject.toml`` taking
    precedence, dynamic fields and metadata hooks included, so a lock is made from what the build will see.

    Raises:
        ConfigError: ``pyproject.toml`` cannot be read or is not TOML, has no hook table (:func:`hook_table`), or
            hatchling finds the metadata invalid (one line naming ``pyproject.toml``).
    """
    from hatchling.metadata.core import ProjectMetadata
    from hatchling.plugin.manager import PluginManager

    pyproject = project_dir / "pyproject.toml"
    try:
        pyproject.stat()  # hatchling takes a missing file for an empty one
    except OSError as error:
        raise ConfigError([f"cannot read {pyproject}: {error.strerror or error}"]) from None
    metadata = ProjectMetadata(str(project_dir), PluginManager())
    try:
        build_config = metadata.hatch.build_config
    except ValueError as error:  # tomllib.TOMLDecodeError, UnicodeDecodeError
        raise ConfigError([f"{pyproject} (or hatch.toml beside it) is not valid TOML: {error}"]) from None
    except TypeError as error:
        raise ConfigError([f"the Hatch configuration in {pyproject} is not valid: {error}"]) from None
    except OSError as error:
        raise ConfigError([f"cannot read the Hatch configuration of {project_dir}: {os_error_cause(error)}"]
                          ) from None
    table = hook_table(build_config, pyproject)
    try:
        core = metadata.core
        return table, {**core.scripts, **core.gui_scripts}, requires_python_specifier(core.requires_python)
    except (ValueError, TypeError, OSError) as error:
        raise ConfigError([f"the project metadata in {pyproject} is not valid: {error}"]) from None


def hook_table(build_config: dict[str, Any], pyproject: Path) -> dict[str, Any]:
    """The hook table in Hatch's build configuration ``build_config`` (``[tool.hatch.build]``): the first of
    :data:`HOOK_TABLES` that it has.

    Raises:
        ConfigError: there is none, or it is not a table.
    """
    for keys in HOOK_TABLES:
        table: Any = build_config
        for key in keys:
            table = table.get(key) if isinstance(table, dict) else None
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError([f"[tool.hatch.build.{'.'.join(keys)}] in {pyproject} must be a table"])
            return table
    raise ConfigError([(f"{pyproject} has no [tool.hatch.build.hooks.pbs] table (nor "
                        f"[tool.hatch.build.targets.app.hooks.pbs]): there is nothing to lock")])
