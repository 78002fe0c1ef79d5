"""Handing a built artifact to Hatch's PyApp builder, so that ``hatch build -t app`` (or ``-t binary``) makes
single-file binaries that never need the network.

Hatchling's ``binary`` builder (``app`` is its deprecated alias) runs after the build hooks'
``initialize()``: it runs ``cargo install pyapp --force --root <tmp>`` with a copy of ``os.environ`` plus
``PYAPP_PROJECT_NAME``, ``PYAPP_PROJECT_VERSION``, ``PYAPP_PYTHON_VERSION`` and, per script, ``PYAPP_EXEC_SPEC``
(hatchling ``builders/binary.py``). PyApp's ``build.rs`` reads the rest of its configuration from the environment
(PyApp's documentation, "Configuration"). This module computes those variables:

- ``PYAPP_DISTRIBUTION_PATH``: the artifact's archive, embedded in the binary (tar.gz, tar.zst and zip are formats
  PyApp infers from the file name). Its single top directory is kept, so
- ``PYAPP_DISTRIBUTION_PYTHON_PATH`` is ``<name>-<version>-<triple>/python/bin/python3.X`` (PyApp requires it with
  a custom distribution) and ``PYAPP_DISTRIBUTION_SITE_PACKAGES_PATH`` is ``<name>-<version>-<triple>/app`` (read
  by ``self metadata``);
- ``PYAPP_FULL_ISOLATION=1``: PyApp unpacks the archive into its own directory and runs that interpreter directly,
  with no virtual environment, so the ``.pth`` file in the runtime finds ``app/`` beside it;
- ``PYAPP_SKIP_INSTALL=1``: nothing is installed at first start (the project and its dependencies are in
  ``app/``), and, with full isolation, PyApp does not run ``ensurepip`` either.

Variables PyApp would reject together with these, or that would change what it embeds or installs
(``PYAPP_DISTRIBUTION_SOURCE``: "Both distribution path and source are set"; ``PYAPP_DISTRIBUTION_EMBED``,
``PYAPP_DISTRIBUTION_FORMAT``, ``PYAPP_DISTRIBUTION_PATH_PREFIX``, ``PYAPP_PROJECT_PATH``,
``PYAPP_PROJECT_DEPENDENCY_FILE``, ``PYAPP_PIP_EXTERNAL``, ``PYAPP_UV_ENABLED``), are removed for the build.
:class:`EnvironmentPatch` restores the environment afterwards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

from hatch_pbs.errors import ConfigError
from hatch_pbs.release.triples import host_triple, parse_triple

#: Variables removed for the build: PyApp rejects them next to PYAPP_DISTRIBUTION_PATH, or they would make the
#: binary download or install something at first start.
CONFLICTING = ("PYAPP_DISTRIBUTION_SOURCE", "PYAPP_DISTRIBUTION_EMBED", "PYAPP_DISTRIBUTION_FORMAT",
               "PYAPP_DISTRIBUTION_PATH_PREFIX", "PYAPP_PROJECT_PATH", "PYAPP_PROJECT_DEPENDENCY_FILE",
               "PYAPP_PIP_EXTERNAL", "PYAPP_UV_ENABLED")


def find_cargo(environ: Mapping[str, str]) -> str | None:
    """The cargo hatchling will run: ``$CARGO`` if set, else ``cargo`` on ``PATH``; ``None`` if there is none."""
    if environ.get("CARGO"):
        return environ["CARGO"]
    return shutil.which("cargo", path=environ.get("PATH"))


def cargo_target_triple(environ: Mapping[str, str], targets: tuple[str, ...]) -> str:
    """The target triple of the binary cargo builds: ``CARGO_BUILD_TARGET`` (Rust's triples for the platforms
    python-build-standalone supports are spelled as PBS spells them), else the build machine's triple. It must be
    one of ``targets``, whose artifact is embedded.

    Raises:
        ConfigError: ``CARGO_BUILD_TARGET`` is no target triple, or the triple is not among ``targets``.
    """
    wanted = environ.get("CARGO_BUILD_TARGET") or host_triple()
    try:
        parse_triple(wanted)
    except ValueError:
        raise ConfigError([f"Environment variable `CARGO_BUILD_TARGET` must be a target triple python-build-"
                           f"standalone builds for, such as \"x86_64-unknown-linux-gnu\"; got {wanted!r}"]) from None
    if wanted not in targets:
        raise ConfigError([f"PyApp builds for {wanted} (CARGO_BUILD_TARGET or the build machine), but option "
                           f"`targets` for build hook `pbs` does not include it ({', '.join(targets)}); add it, or set "
                           f"option `pyapp` to false"])
    return wanted


def handoff_variables(archive: str, top: str, interpreter: str, python_version: str) -> dict[str, str]:
    """The ``PYAPP_*`` variables that embed ``archive`` (an artifact whose single top directory is ``top``, with its
    interpreter at ``interpreter`` relative to that directory, e.g. ``python/bin/python3.12``)."""
    major_minor = ".".join(python_version.split(".")[:2])
    return {
        "PYAPP_DISTRIBUTION_PATH": archive,
        "PYAPP_DISTRIBUTION_PYTHON_PATH": f"{top}/{interpreter}",
        "PYAPP_DISTRIBUTION_SITE_PACKAGES_PATH": f"{top}/app",
        "PYAPP_FULL_ISOLATION": "1",
        "PYAPP_SKIP_INSTALL": "1",
        "PYAPP_PYTHON_VERSION": major_minor,
    }


@dataclass
class EnvironmentPatch:
    """Changes to an environment (``os.environ`` by default) that can be undone exactly.

    Attributes:
        values: variables to set.
        removed: variables to unset.
    """

    values: dict[str, str]
    removed: tuple[str, ...] = CONFLICTING
    _saved: dict[str, str | None] = field(default_factory=dict)

    def apply(self, environ: MutableMapping[str, str] = os.environ) -> list[str]:
        """Set and unset the variables; returns the names of variables that had a value and were removed."""
        dropped = []
        for name in [*self.values, *self.removed]:
            self._saved.setdefault(name, environ.get(name))
        for name in self.removed:
            if environ.pop(name, None) is not None:
                dropped.append(name)
        environ.update(self.values)
        return dropped

    def restore(self, environ: MutableMapping[str, str] = os.environ) -> None:
        """Put every variable :meth:`apply` touched back as it was (idempotent)."""
        for name, value in self._saved.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        self._saved.clear()


__all__ = ["CONFLICTING", "EnvironmentPatch", "cargo_target_triple", "find_cargo", "handoff_variables"]
