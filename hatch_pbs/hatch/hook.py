"""The ``pbs`` build hook: the adapter between Hatch and the distribution forms (:mod:`hatch_pbs.forms`).

It translates Hatch's view of the project (metadata with the version hatchling resolved, root, build directory,
display) into a :class:`~hatch_pbs.forms.FormContext`, picks the form (:func:`select_form`), runs the form's
lifecycle from hatchling's ``initialize()`` and ``finalize()``, and turns failures into one ``hatch-pbs:`` line.

It acts for the ``app`` and ``binary`` targets (hatchling's ``app`` is an alias of ``binary``), and for the
``wheel`` target only with option ``wheel = true`` (runtime wheels); for every other target it does nothing, so
``hatch build`` of sdists and ordinary wheels with the same configuration is unaffected. The archives are written
in ``initialize()``, so ``hatch build -t app --hooks-only`` produces them without Rust; without ``--hooks-only``
hatchling's binary builder runs next and the PyApp form hands it an artifact. Hatchling tells a hook nothing
about ``--hooks-only``: it is a command-line flag of ``hatchling build`` (which Hatch passes on) or
``HATCH_BUILD_HOOKS_ONLY``; the hook reads both.

Ctrl-C (SIGINT) during the hook's work stops it within about a second (:mod:`hatch_pbs.interrupts`) and exits with
status 130 and one ``hatch-pbs: interrupted`` line, having published nothing; Hatch passes the status on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

from hatch_pbs import interrupts
from hatch_pbs.config import parse_hook_config, requires_python_specifier
from hatch_pbs.errors import HatchPbsError, InstallError, os_error_cause
from hatch_pbs.forms import Form, FormContext, Stage
from hatch_pbs.forms.archive import ArchiveForm
from hatch_pbs.forms.image import ImageForm
from hatch_pbs.forms.pyapp import PyAppForm
from hatch_pbs.forms.wheel import RuntimeWheelForm

ACTIVE_TARGETS = frozenset({"app", "binary"})

# Set while this hook builds the project's own wheel, so a hook configured for every target cannot re-enter.
_BUILDING_WHEEL: ContextVar[bool] = ContextVar("hatch_pbs_building_wheel", default=False)


class PbsBuildHook(BuildHookInterface):
    """Builds one release archive per target triple into ``<build directory>/<target name>/`` (``app``/``binary``),
    or one runtime wheel per target triple beside hatchling's wheel (``wheel`` with ``wheel = true``)."""

    PLUGIN_NAME = "pbs"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._form: Form | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if _BUILDING_WHEEL.get() or (self.target_name not in ACTIVE_TARGETS and self.target_name != "wheel"):
            return
        if self.target_name == "wheel" and self.config.get("wheel", False) is False:
            return  # ordinary wheels: the table is not even validated, as before option `wheel` existed
        output_dir = Path(self.directory) / (self.target_name if self.target_name != "wheel" else "")
        try:
            self._form = self._select_form(version, output_dir)
        except HatchPbsError as error:
            self.app.abort(f"hatch-pbs: {error}")
            raise  # abort() exits; this line only runs with an Application that does not
        if self._form is not None:
            self._run("initialize", lambda form: form.initialize(build_data))

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:  # noqa: ARG002
        """Let the form finish after Hatch's builder (the runtime wheels), then undo its changes (``close``)."""
        if self._form is None:
            return
        try:
            self._run("finalize", lambda form: form.finalize(Path(artifact_path)))
        finally:
            self._close()

    def _select_form(self, version: str, output_dir: Path) -> Form | None:
        """The form this build makes (:func:`select_form`), from the validated hook table.

        Raises:
            ConfigError: the table is invalid (every problem named).
        """
        metadata = self.metadata.core
        scripts = {**metadata.scripts, **metadata.gui_scripts}
        config = parse_hook_config(self.config, project_scripts=scripts, root=Path(self.root),
                                   requires_python=requires_python_specifier(metadata.requires_python))
        context = FormContext(
            config=config, root=Path(self.root), name=metadata.name,
            version=self.metadata.version,  # resolves [tool.hatch.version] for dynamic versions
            requires_python=metadata.requires_python, scripts=scripts, gui_scripts=frozenset(metadata.gui_scripts),
            output_dir=output_dir, target_name=self.target_name, build_wheel=self._build_wheel,
            info=self.app.display_info, warning=self.app.display_warning, success=self.app.display_success,
            description=metadata.description or None,
            license_expression=metadata.license_expression or None, urls=dict(metadata.urls))
        return select_form(context, version, hooks_only=_hooks_only(), builder=self.build_config.builder,
                           verbosity=self.app.verbosity, abort=self.app.abort)

    def _run(self, stage: Stage, step: Callable[[Form], None]) -> None:
        """Run ``step(form)``; a failure becomes one ``hatch-pbs:`` line and Hatch's exit (status 130 for an
        interrupt), after the form is closed."""
        form = self._form
        assert form is not None
        try:
            step(form)
        except HatchPbsError as error:
            self._close()
            self.app.abort(f"hatch-pbs: {error}")
            raise  # abort() exits; this line only runs with an Application that does not
        except OSError as error:  # the file system's (a full disk, a read-only directory) where no stage names it
            self._close()
            self.app.abort(f"hatch-pbs: {form.failed(stage)}: {os_error_cause(error)}")
            raise
        except KeyboardInterrupt:
            self._close()
            self.app.abort(form.interrupted(stage), code=130)
            raise

    def _close(self) -> None:
        if self._form is not None:
            self._form.close()
            self._form = None

    def _build_wheel(self, directory: Path) -> Path:
        """Build the project's wheel in-process with hatchling's own wheel builder (its other hooks run as usual;
        this hook does nothing for the wheel target). Ctrl-C raises ``KeyboardInterrupt`` in there, as by default.

        Raises:
            InstallError: hatchling failed (the message names its exception).
        """
        from hatchling.builders.wheel import WheelBuilder

        token = _BUILDING_WHEEL.set(True)
        try:
            with interrupts.raising():  # hatchling's code and the project's hooks: no check points of ours
                builder = WheelBuilder(self.root, metadata=self.metadata, app=self.app)
                wheels = list(builder.build(directory=str(directory), versions=["standard"]))
        except Exception as error:  # hatchling raises plain exceptions for project errors
            raise InstallError(f"building the project's wheel failed: {type(error).__name__}: {error}") from error
        finally:
            _BUILDING_WHEEL.reset(token)
        return Path(wheels[0])


def select_form(context: FormContext, version: str, *, hooks_only: bool, builder: Any = None, verbosity: int = 0,
                abort: Any = None) -> Form | None:
    """The form a build of ``context.target_name`` makes, or ``None`` for none.

    - ``wheel`` (``wheel = true``): :class:`~hatch_pbs.forms.wheel.RuntimeWheelForm` for standard wheels, ``None``
      for editable ones (``version`` is hatchling's wheel version, ``standard`` or ``editable``);
    - ``app``/``binary`` with ``--hooks-only``: :class:`~hatch_pbs.forms.archive.ArchiveForm`, or with option
      ``image`` :class:`~hatch_pbs.forms.image.ImageForm` (the archives and the container image);
    - ``app``/``binary`` otherwise: :class:`~hatch_pbs.forms.pyapp.PyAppForm`, which hands hatchling's binary
      ``builder`` an artifact (unless ``pyapp = false``; ``verbosity`` and ``abort`` are hatchling's, for the
      line a cargo failure in that builder becomes).
    """
    if context.target_name == "wheel":
        return RuntimeWheelForm(context) if context.config.wheel and version == "standard" else None
    if hooks_only:
        return ImageForm(context) if context.config.image is not None else ArchiveForm(context)
    return PyAppForm(context, builder=builder, verbosity=verbosity, abort=abort)


def _hooks_only() -> bool:
    """Whether hatchling runs only the build hooks (``--hooks-only`` or ``HATCH_BUILD_HOOKS_ONLY``)."""
    flag = os.environ.get("HATCH_BUILD_HOOKS_ONLY", "").strip().lower()
    return flag in {"1", "true", "yes", "on"} or "--hooks-only" in sys.argv
