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
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatch_pbs import interrupts
from hatch_pbs.artifact.archive import top_directory
from hatch_pbs.artifact.pack import pack_tree
from hatch_pbs.errors import ConfigError
from hatch_pbs.forms import FormContext
from hatch_pbs.forms.archive import ArchiveForm, build_archives
from hatch_pbs.pipeline import BuiltArtifact
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


class PyAppForm(ArchiveForm):
    """The archives, then a hand-off to hatchling's ``binary`` builder, which compiles PyApp with cargo around the
    archive of cargo's target triple (option ``pyapp``; ``hatch build -t app`` without ``--hooks-only``).

    Args:
        context: the build.
        builder: hatchling's binary builder object (``build_config.builder``): a cargo failure in it is made one
            line (:meth:`_report_cargo_failure`); ``None`` leaves its failures as hatchling shows them.
        verbosity: hatchling's verbosity (below 0: ``-q``, cargo's output was not shown).
        abort: shows a line and exits (hatchling's ``app.abort``).
    """

    def __init__(self, context: FormContext, *, builder: Any, verbosity: int, abort: Callable[[str], None]) -> None:
        super().__init__(context)
        self._builder = builder
        self._verbosity = verbosity
        self._abort = abort
        self._patch: EnvironmentPatch | None = None
        self._sigint: interrupts.SigintExit | None = None
        self._work: tempfile.TemporaryDirectory[str] | None = None

    def initialize(self, build_data: dict[str, Any]) -> None:  # noqa: ARG002 - hatchling's builder reads the env
        with interrupts.scope():
            triple = self._handoff_triple()  # checked before the long part
            self.built = build_archives(self.context, self.context.output_dir, onefile=True)
            if triple is not None:
                self._hand_off(next(artifact for artifact in self.built if artifact.triple == triple))
        if triple is not None:  # installed once the scope has put the default handler back
            self._sigint = interrupts.SigintExit("hatch-pbs: interrupted while PyApp was being compiled; the "
                                                 f"archives in {self.context.output_dir} are complete")
            self._sigint.install()
        self._report_cargo_failure()

    def close(self) -> None:
        """Undo the hand-off: ``PYAPP_*`` variables, the SIGINT handler, temporary files."""
        if self._patch is not None:
            self._patch.restore()
            self._patch = None
        if self._sigint is not None:
            self._sigint.restore()
            self._sigint = None
        if self._work is not None:
            self._work.cleanup()
            self._work = None

    def _handoff_triple(self) -> str | None:
        """The target triple whose artifact PyApp will embed, or ``None`` for no hand-off (option ``pyapp``;
        ``"auto"`` without cargo says once that only the archives are built).

        Raises:
            ConfigError: ``pyapp = true`` and no cargo; cargo's target triple is not among the targets.
        """
        config = self.context.config
        if config.pyapp == "false":
            return None
        if find_cargo(os.environ) is None:
            if config.pyapp == "true":
                raise ConfigError(['Option `pyapp` for build hook `pbs` is true, but cargo was not found (neither '
                                   '$CARGO nor cargo on PATH): install Rust (https://rustup.rs), or set it to "auto" '
                                   "or false"])
            self.context.warning(
                "hatch-pbs: only the archives will be built: Hatch's binary builder needs Rust's cargo to make "
                "single-file binaries and none was found. Run `hatch build -t app --hooks-only` for the archives "
                "alone, or install Rust (https://rustup.rs) for offline single-file binaries.")
            return None
        return cargo_target_triple(os.environ, config.targets)

    def _hand_off(self, artifact: BuiltArtifact) -> None:
        """Set the ``PYAPP_*`` variables that embed ``artifact`` (restored by :meth:`close`)."""
        archive, top = artifact.path, artifact.path.name
        if artifact.sha256 is None:  # archive-format "dir": PyApp embeds an archive
            self._work = tempfile.TemporaryDirectory(prefix="hatch-pbs-pyapp-")
            archive = Path(self._work.name) / f"{artifact.path.name}.tar.gz"
            pack_tree(artifact.path, archive)
        else:
            top = top_directory(artifact.path.name)
        self._patch = EnvironmentPatch(handoff_variables(str(archive), top, artifact.interpreter,
                                                         artifact.resolved.asset.python_version))
        for name in self._patch.apply():
            self.context.warning(f"hatch-pbs: {name} is ignored for this build: PyApp embeds the {artifact.triple} "
                                 f"artifact instead")
        self.context.info(f"hatch-pbs: PyApp will embed {archive.name} (offline first start, no install)")

    def _report_cargo_failure(self) -> None:
        """Make a failure of cargo in hatchling's binary builder, which runs after ``initialize()``
        (``cargo install pyapp``: without access to crates.io it cannot fetch PyApp), one line saying that the
        archives are complete and how to build them without PyApp, instead of hatchling's traceback of
        ``OSError("Compilation failed (code N)")``.

        The builder's public ``cargo_build`` method, which runs cargo and raises that ``OSError``, is wrapped for
        this builder object only. cargo's own messages still go to the terminal as hatchling shows them.
        """
        cargo_build = getattr(self._builder, "cargo_build", None)
        if cargo_build is None:  # another hatchling: its failures are shown as it shows them
            return
        output_dir, target_name = self.context.output_dir, self.context.target_name

        def reporting_cargo_build(*args: Any, **kwargs: Any) -> None:
            try:
                cargo_build(*args, **kwargs)
            except OSError as error:
                status = re.search(r"\(code (-?\d+)\)", str(error))
                failure = f"exited with status {status.group(1)}" if status else f"failed ({error})"
                shown = "; its messages are above" if self._verbosity >= 0 else ""
                self.close()
                self._abort(f"hatch-pbs: PyApp was not built: cargo {failure}{shown} (it fetches PyApp from "
                            f"crates.io, or the registry its configuration names). The archives in {output_dir} "
                            f"are complete; `hatch build -t {target_name} --hooks-only` builds them without PyApp.")
                raise

        self._builder.cargo_build = reporting_cargo_build
