"""The values options may take: choice types (``Literal``; the allowed-value tuples are derived from them with
:func:`typing.get_args`, so each set of choices is written once), defaults the checks' messages name, and the
environment variables that override options.

The option declarations (:mod:`hatch_pbs.config.options`) use these; the checks (:mod:`hatch_pbs.config.checks`)
name some of them in their messages.
"""

from __future__ import annotations

from typing import Literal, get_args

from hatch_pbs.artifact.archive import ArchiveFormat  # unset means tar.gz (zip for Windows targets)
from hatch_pbs.release.assets import FLAVORS, Flavor

#: A ``stdlib`` preset, smallest last (what each drops: :mod:`hatch_pbs.runtime.trim`, docs/configuration.md).
StdlibPreset = Literal["full", "default", "minimal"]
#: A ``bytecode`` mode: ``.py`` and ``.pyc`` / sourceless ``.pyc`` only / no ``.pyc`` at all.
BytecodeMode = Literal["compile", "only", "none"]
#: What ``pyapp`` asks for: hand the artifact to PyApp when cargo is found / cargo required / never.
PyappMode = Literal["auto", "true", "false"]

FLAVOR_CHOICES: tuple[Flavor, ...] = FLAVORS
STDLIB_PRESETS: tuple[StdlibPreset, ...] = get_args(StdlibPreset)
BYTECODE_MODES: tuple[BytecodeMode, ...] = get_args(BytecodeMode)
ARCHIVE_FORMATS: tuple[ArchiveFormat, ...] = get_args(ArchiveFormat)
PYAPP_MODES: tuple[PyappMode, ...] = get_args(PyappMode)

#: The python-build-standalone release used when ``release`` is not set: the newest release when this version of
#: hatch-pbs was made. Pinning it keeps builds reproducible; ``release = "latest"`` opts into the newest release.
DEFAULT_RELEASE = "20261021"
DEFAULT_FLAVOR: Flavor = "install_only_stripped"
DEFAULT_STDLIB: StdlibPreset = "default"
DEFAULT_BYTECODE: BytecodeMode = "compile"
DEFAULT_PYAPP: PyappMode = "auto"
DEFAULT_TIMEOUT = 30.0  # seconds

ENV_MIRROR = "HATCH_PBS_MIRROR"
ENV_CACHE_DIR = "HATCH_PBS_CACHE_DIR"
ENV_OFFLINE = "HATCH_PBS_OFFLINE"
ENV_RELEASE = "HATCH_PBS_RELEASE"
#: The variable macOS build tools read the oldest supported macOS from; it overrides option ``macos``.
ENV_MACOS = "MACOSX_DEPLOYMENT_TARGET"
