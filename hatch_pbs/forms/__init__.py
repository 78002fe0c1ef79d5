"""Distribution forms built from one prepared artifact: the archive, container images, runtime wheels, PyApp
binaries.

A form is one module here with one class following the :class:`Form` lifecycle, the build hook's own:

- ``initialize(build_data)`` runs before Hatch's builder (hatchling's ``initialize()`` of a build hook); it may
  set ``build_data`` (the wheel form makes hatchling's wheel a platform wheel);
- ``finalize(artifact_path)`` runs after Hatch's builder wrote ``artifact_path`` (hatchling's ``finalize()``);
- ``close()`` always runs last, also after a failure or an interrupt, and undoes whatever the form changed
  outside its outputs (environment variables, signal handlers, temporary files).

Each form runs its own blocking work inside :func:`hatch_pbs.interrupts.scope`, and says in
:meth:`Form.interrupted` and :meth:`Form.failed` what the one line shown for an interrupt or a file-system error
is. A form gets the project from a :class:`FormContext`, which the Hatch hook (:mod:`hatch_pbs.hatch.hook`)
fills from hatchling's view (metadata, root, display); nothing in this package imports hatchling, except where a
form hands off to one of hatchling's builders (:mod:`hatch_pbs.forms.pyapp`).

Adding a form: a module with a class implementing :class:`Form`, chosen in
:func:`hatch_pbs.hatch.hook.select_form` (by target name and options).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from hatch_pbs.config import HookConfig

#: The two hook stages a message is about.
Stage = Literal["initialize", "finalize"]


@dataclass(frozen=True)
class FormContext:
    """What a form needs from the build that runs it.

    Attributes:
        config: the validated hook table.
        root: the project's root directory.
        name, version: the project's name and version as the build backend resolved them (dynamic versions too).
        requires_python: the project's ``requires-python`` text, or ``None``.
        scripts: every console and GUI script of the project (``name -> "module:function"``).
        gui_scripts: the names of the GUI scripts among them.
        output_dir: where the form writes its outputs (``dist/app/`` for ``hatch build -t app``).
        target_name: the Hatch target being built (``app``, ``binary``, ``wheel``).
        build_wheel: builds the project's ordinary wheel into the directory given; returns its path
            (raises :class:`~hatch_pbs.errors.InstallError`).
        info, warning, success: one-line display functions.
        description: the metadata's ``description``, or ``None``.
        license_expression: the metadata's SPDX license expression (PEP 639), or ``None``.
        urls: ``[project.urls]`` (label -> URL).
    """

    config: HookConfig
    root: Path
    name: str
    version: str
    requires_python: str | None
    scripts: Mapping[str, str]
    gui_scripts: frozenset[str]
    output_dir: Path
    target_name: str
    build_wheel: Callable[[Path], Path]
    info: Callable[[str], None]
    warning: Callable[[str], None]
    success: Callable[[str], None]
    description: str | None = None
    license_expression: str | None = None
    urls: Mapping[str, str] = field(default_factory=dict)


class Form(Protocol):
    """The lifecycle every distribution form follows (see the module docstring)."""

    def initialize(self, build_data: dict[str, Any]) -> None:
        """Build before Hatch's builder runs. Raises :class:`~hatch_pbs.errors.HatchPbsError`, :class:`OSError`,
        :class:`KeyboardInterrupt`."""

    def finalize(self, artifact_path: Path) -> None:
        """Finish after Hatch's builder wrote ``artifact_path``. Raises as :meth:`initialize`."""

    def close(self) -> None:
        """Undo what the form changed outside its outputs; runs always, last, and raises nothing."""

    def interrupted(self, stage: Stage) -> str:
        """The line shown when ``stage`` was interrupted (it says what was left as it was)."""

    def failed(self, stage: Stage) -> str:
        """What could not be done, for a file-system error in ``stage`` (``cannot build the artifacts``)."""
