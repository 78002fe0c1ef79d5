"""The ``[tool.hatch.build.hooks.pbs]`` table, validated once into a frozen :class:`HookConfig`.

Every option is checked and all problems are reported together in one :class:`~hatch_pbs.errors.ConfigError`,
each naming the option, the value given and what is allowed. Environment variables override some options
(``HATCH_PBS_MIRROR``, ``HATCH_PBS_CACHE_DIR``, ``HATCH_PBS_OFFLINE``, ``HATCH_PBS_RELEASE``, and
``MACOSX_DEPLOYMENT_TARGET`` for option ``macos``); they are validated the same way and the message names the
variable.

Each option is declared once, in :mod:`~hatch_pbs.config.options`; the parser, :data:`OPTIONS` and the reference
tables of docs/configuration.md come from that declaration. Modules:

- :mod:`~hatch_pbs.config.values`: choice types (``Literal``) with the allowed-value tuples derived from them,
  defaults the messages name, the ``ENV_*`` variable names.
- :mod:`~hatch_pbs.config.checks`: the value checkers (``ValueError`` with the complete message).
- :mod:`~hatch_pbs.config.options`: :class:`HookConfig` and the :class:`~hatch_pbs.config.options.Option`
  declarations (name, field, check, default, choices, environment override, reference type/default/description).
- :mod:`~hatch_pbs.config.parse`: :func:`parse_hook_config`, a loop over the declarations plus the checks across
  options (unknown keys, ``requires-python``, entry points of the selected scripts).
- :mod:`~hatch_pbs.config.reference`: renders the reference tables;
  ``python -m hatch_pbs.config.reference --write docs/configuration.md`` regenerates them.

Adding an option: one :class:`~hatch_pbs.config.options.Option` in ``OPTION_DECLARATIONS`` and its
:class:`HookConfig` field (a test checks the two agree), then regenerate the docs.
"""

from __future__ import annotations

from hatch_pbs.config.checks import (
    check_cache_dir,
    check_flavor,
    check_macos,
    check_mirror,
    check_python_version,
    check_release,
    check_target,
    default_cache_dir,
    did_you_mean,
    parse_offline,
)
from hatch_pbs.config.options import (
    HATCHLING_HOOK_KEYS,
    OPTION_DECLARATIONS,
    OPTIONS,
    HookConfig,
    Option,
)
from hatch_pbs.config.parse import parse_hook_config, requires_python_specifier
from hatch_pbs.config.values import (
    ARCHIVE_FORMATS,
    BYTECODE_MODES,
    DEFAULT_BYTECODE,
    DEFAULT_FLAVOR,
    DEFAULT_RELEASE,
    DEFAULT_STDLIB,
    DEFAULT_TIMEOUT,
    ENV_CACHE_DIR,
    ENV_MACOS,
    ENV_MIRROR,
    ENV_OFFLINE,
    ENV_RELEASE,
    STDLIB_PRESETS,
    ArchiveFormat,
    BytecodeMode,
    Flavor,
    PyappMode,
    StdlibPreset,
)
from hatch_pbs.release.triples import KNOWN_TRIPLES
from hatch_pbs.runtime.extract import DEFAULT_MAX_UNPACKED_SIZE

# Known triples are re-exported for documentation generators and the CLI's help text.
__all__ = [
    "ARCHIVE_FORMATS",
    "BYTECODE_MODES",
    "DEFAULT_BYTECODE",
    "DEFAULT_FLAVOR",
    "DEFAULT_MAX_UNPACKED_SIZE",
    "DEFAULT_RELEASE",
    "DEFAULT_STDLIB",
    "DEFAULT_TIMEOUT",
    "ENV_CACHE_DIR",
    "ENV_MACOS",
    "ENV_MIRROR",
    "ENV_OFFLINE",
    "ENV_RELEASE",
    "HATCHLING_HOOK_KEYS",
    "KNOWN_TRIPLES",
    "OPTIONS",
    "OPTION_DECLARATIONS",
    "STDLIB_PRESETS",
    "ArchiveFormat",
    "BytecodeMode",
    "Flavor",
    "HookConfig",
    "Option",
    "PyappMode",
    "StdlibPreset",
    "check_cache_dir",
    "check_flavor",
    "check_macos",
    "check_mirror",
    "check_python_version",
    "check_release",
    "check_target",
    "default_cache_dir",
    "did_you_mean",
    "parse_hook_config",
    "parse_offline",
    "requires_python_specifier",
]
