"""The archive form: one release archive per target triple in ``<build directory>/<target name>/``
(``hatch build -t app --hooks-only``), and :func:`build_archives`, which the other forms build on.

All the work happens in :meth:`ArchiveForm.initialize`, so Hatch's builder (PyApp, when it runs) finds the
archives complete.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hatch_pbs import interrupts
from hatch_pbs.artifact.pack import source_date_epoch
from hatch_pbs.config import HookConfig, requires_python_specifier
from hatch_pbs.forms import FormContext, Stage
from hatch_pbs.forms.onefile import OnefileWriter, check_onefile_names
from hatch_pbs.pipeline import BuiltArtifact, Finisher, Project, build_artifacts
from hatch_pbs.release.lock import project_lock


def build_archives(context: FormContext, output_dir: Path, *, config: HookConfig | None = None,
                   finish: Finisher | None = None, onefile: bool = False) -> list[BuiltArtifact]:
    """Build the project's wheel and run the pipeline for ``config`` (default ``context.config``) into
    ``output_dir`` (``finish``: see :data:`~hatch_pbs.pipeline.Finisher`), with the runtimes locked in the
    project's ``pbs.lock`` when it has one; shows one line per artifact written. With ``onefile`` and option
    ``onefile``, the single-file executables are written too (:mod:`hatch_pbs.forms.onefile`, after ``finish``).

    Returns:
        the artifacts, in the order of the targets.

    Raises:
        HatchPbsError: as :func:`~hatch_pbs.pipeline.build_artifacts`; InstallError: the wheel cannot be built.
        BuildInterrupted: the build was interrupted (nothing was published).
    """
    config = config or context.config
    onefiles = OnefileWriter(context) if onefile and config.onefile else None
    if onefiles is not None:
        check_onefile_names(context)
        finish = _chained(finish, onefiles)
    lock = project_lock(context.root)
    if lock is not None:
        context.info(f"hatch-pbs: using the runtimes locked in {lock.path}")
    if not config.scripts:
        context.warning("hatch-pbs: the project defines no [project.scripts]; the artifacts will have no "
                        "launchers in bin/")
    with tempfile.TemporaryDirectory(prefix="hatch-pbs-wheel-") as wheel_dir:
        project = Project(name=context.name, version=context.version,
                          requires_python=requires_python_specifier(context.requires_python),
                          scripts=context.scripts, gui_scripts=context.gui_scripts,
                          wheel=context.build_wheel(Path(wheel_dir)))
        built = build_artifacts(config, project, output_dir, report=context.info, warn=context.warning,
                                source_date_epoch=source_date_epoch(context.root), lock=lock, finish=finish)
    for artifact in built:
        context.success(
            f"{artifact.path} ({artifact.size / 1e6:.1f} MB, {artifact.seconds:.1f} s, "
            f"CPython {artifact.resolved.asset.python_version} from release {artifact.resolved.asset.release})")
    for name, size in onefiles.written if onefiles is not None else ():
        context.success(f"{output_dir / name} ({size / 1e6:.1f} MB, single-file executable)")
    return built


def _chained(first: Finisher | None, second: Finisher) -> Finisher:
    """A finisher running ``first`` (if any), then ``second``; the files both wrote."""
    if first is None:
        return second

    def both(outputs: Path, built: list[BuiltArtifact], staging: Path) -> list[Path]:
        return [*first(outputs, built, staging), *second(outputs, built, staging)]
    return both


class ArchiveForm:
    """Release archives (or directories, ``archive-format = "dir"``) in ``context.output_dir``."""

    def __init__(self, context: FormContext) -> None:
        self.context = context
        self.built: list[BuiltArtifact] | None = None

    def initialize(self, build_data: dict[str, Any]) -> None:  # noqa: ARG002 - the archives need no build data
        with interrupts.scope():
            self.built = build_archives(self.context, self.context.output_dir, onefile=True)

    def finalize(self, artifact_path: Path) -> None:
        """Nothing: the archives were complete after :meth:`initialize`."""

    def close(self) -> None:
        """Nothing to undo."""

    def interrupted(self, stage: Stage) -> str:  # noqa: ARG002 - all the work is in initialize
        if self.built is None:
            return f"hatch-pbs: interrupted; {self.context.output_dir} was left as it was"
        return f"hatch-pbs: interrupted after the artifacts were written to {self.context.output_dir}"

    def failed(self, stage: Stage) -> str:  # noqa: ARG002
        return "cannot build the artifacts"
