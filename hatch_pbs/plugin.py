"""The ``pbs`` build hook: the adapter between Hatch and :mod:`hatch_pbs.pipeline`.

It acts only for the ``app`` and ``binary`` targets (hatchling's ``app`` is an alias of ``binary``); for every other
target it does nothing, so ``hatch build`` of sdists and wheels with the same configuration is unaffected. All its
work happens in ``initialize()``, so ``hatch build -t app --hooks-only`` produces the archives without Rust.
"""

from __future__ import annotations

import tempfile
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from hatch_pbs.config import parse_hook_config
from hatch_pbs.errors import HatchPbsError, InstallError
from hatch_pbs.lock import project_lock
from hatch_pbs.pack import source_date_epoch
from hatch_pbs.pipeline import Project, build_artifacts

ACTIVE_TARGETS = frozenset({"app", "binary"})

# Set while this hook builds the project's own wheel, so a hook configured for every target cannot re-enter.
_BUILDING_WHEEL: ContextVar[bool] = ContextVar("hatch_pbs_building_wheel", default=False)


class PbsBuildHook(BuildHookInterface):
    """Builds one release archive per target triple into ``<build directory>/<target name>/``."""

    PLUGIN_NAME = "pbs"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:  # noqa: ARG002 - Hatch's signature
        if self.target_name not in ACTIVE_TARGETS or _BUILDING_WHEEL.get():
            return
        metadata = self.metadata.core
        scripts = {**metadata.scripts, **metadata.gui_scripts}
        try:
            config = parse_hook_config(self.config, project_scripts=scripts, root=Path(self.root))
            lock = project_lock(Path(self.root))
            if lock is not None:
                self.app.display_info(f"hatch-pbs: using the runtimes locked in {lock.path}")
            if not config.scripts:
                self.app.display_warning("hatch-pbs: the project defines no [project.scripts]; the archives "
                                         "will have no launchers in bin/")
            output_dir = Path(self.directory) / self.target_name
            with tempfile.TemporaryDirectory(prefix="hatch-pbs-wheel-") as wheel_dir:
                project = Project(
                    name=metadata.name,
                    version=metadata.version,
                    requires_python=_requires_python(metadata.requires_python),
                    scripts=scripts,
                    gui_scripts=frozenset(metadata.gui_scripts),
                    wheel=self._build_wheel(Path(wheel_dir)),
                )
                built = build_artifacts(config, project, output_dir, report=self.app.display_info,
                                        warn=self.app.display_warning,
                                        source_date_epoch=source_date_epoch(Path(self.root)), lock=lock)
        except HatchPbsError as error:
            self.app.abort(f"hatch-pbs: {error}")
            raise  # abort() exits; this line only runs with an Application that does not
        for artifact in built:
            self.app.display_success(
                f"{artifact.path} ({artifact.size / 1e6:.1f} MB, {artifact.seconds:.1f} s, "
                f"CPython {artifact.resolved.asset.python_version} from release {artifact.resolved.asset.release})")

    def _build_wheel(self, directory: Path) -> Path:
        """Build the project's wheel in-process with hatchling's own wheel builder (its other hooks run as usual;
        this hook does nothing for the wheel target)."""
        from hatchling.builders.wheel import WheelBuilder

        token = _BUILDING_WHEEL.set(True)
        try:
            builder = WheelBuilder(self.root, metadata=self.metadata, app=self.app)
            wheels = list(builder.build(directory=str(directory), versions=["standard"]))
        except Exception as error:  # hatchling raises plain exceptions for project errors
            raise InstallError(f"building the project's wheel failed: {type(error).__name__}: {error}") from error
        finally:
            _BUILDING_WHEEL.reset(token)
        return Path(wheels[0])


def _requires_python(text: str) -> SpecifierSet | None:
    if not text:
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None
