"""The ``pbs`` build hook: the adapter between Hatch and :mod:`hatch_pbs.pipeline`.

It acts for the ``app`` and ``binary`` targets (hatchling's ``app`` is an alias of ``binary``), and for the ``wheel``
target only with option ``wheel = true`` (runtime wheels, :mod:`hatch_pbs.forms.wheel`); for every other target it does
nothing, so ``hatch build`` of sdists and ordinary wheels with the same configuration is unaffected. All its
work happens in ``initialize()``, so ``hatch build -t app --hooks-only`` produces the archives without Rust.

Without ``--hooks-only``, hatchling's binary builder runs next and compiles PyApp with cargo; the hook then hands it
the artifact of cargo's target triple (:mod:`hatch_pbs.forms.pyapp`, option ``pyapp``) through ``PYAPP_*`` variables set
in ``initialize()`` and restored in ``finalize()``. Hatchling tells a hook nothing about ``--hooks-only``: it is a
command-line flag of ``hatchling build`` (which Hatch passes on) or ``HATCH_BUILD_HOOKS_ONLY``; the hook reads both.

Ctrl-C (SIGINT) during the hook's work stops it within about a second (:mod:`hatch_pbs.interrupts`) and exits with
status 130 and one ``hatch-pbs: interrupted`` line, having published nothing; Hatch passes the status on. From the
hand-off to PyApp until ``finalize()``, a Ctrl-C during cargo's compilation exits alike (:class:`SigintExit`).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

from hatch_pbs import interrupts
from hatch_pbs.artifact.archive import top_directory
from hatch_pbs.artifact.pack import MemberTimes, pack_tree, source_date_epoch
from hatch_pbs.config import HookConfig, parse_hook_config, requires_python_specifier
from hatch_pbs.errors import ConfigError, HatchPbsError, InstallError, os_error_cause
from hatch_pbs.forms.pyapp import (
    EnvironmentPatch,
    cargo_target_triple,
    find_cargo,
    handoff_variables,
)
from hatch_pbs.forms.wheel import (
    runtime_wheel_name,
    wheel_platform_tag,
    write_runtime_wheel,
)
from hatch_pbs.pipeline import BuiltArtifact, Project, build_artifacts
from hatch_pbs.release.lock import project_lock
from hatch_pbs.release.triples import PlatformFloors

ACTIVE_TARGETS = frozenset({"app", "binary"})

# Set while this hook builds the project's own wheel, so a hook configured for every target cannot re-enter.
_BUILDING_WHEEL: ContextVar[bool] = ContextVar("hatch_pbs_building_wheel", default=False)


class PbsBuildHook(BuildHookInterface):
    """Builds one release archive per target triple into ``<build directory>/<target name>/`` (``app``/``binary``),
    or one runtime wheel per target triple beside hatchling's wheel (``wheel`` with ``wheel = true``)."""

    PLUGIN_NAME = "pbs"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pyapp_patch: EnvironmentPatch | None = None
        self._work: tempfile.TemporaryDirectory[str] | None = None
        self._runtime_wheels: list[BuiltArtifact] | None = None
        self._wheel_times: MemberTimes | None = None
        self._runtime_floors = PlatformFloors()
        self._pyapp_sigint: interrupts.SigintExit | None = None

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if _BUILDING_WHEEL.get() or (self.target_name not in ACTIVE_TARGETS and self.target_name != "wheel"):
            return
        if self.target_name == "wheel" and self.config.get("wheel", False) is False:
            return  # ordinary wheels: the table is not even validated, as before option `wheel` existed
        scripts = {**self.metadata.core.scripts, **self.metadata.core.gui_scripts}
        output_dir = Path(self.directory) / (self.target_name if self.target_name != "wheel" else "")
        built: list[BuiltArtifact] | None = None
        try:
            with interrupts.scope():
                config = parse_hook_config(self.config, project_scripts=scripts, root=Path(self.root),
                                           requires_python=requires_python_specifier(self.metadata.core.requires_python))
                if self.target_name == "wheel":
                    if config.wheel and version == "standard":  # editable wheels stay ordinary
                        self._prepare_runtime_wheels(config, build_data)
                    return
                handoff = None if _hooks_only() else self._pyapp_triple(config)  # checked before the long part
                built = self._build_artifacts(config, output_dir)
                if handoff is not None:
                    self._hand_off_to_pyapp(next(artifact for artifact in built if artifact.triple == handoff))
            if handoff is not None:  # installed once the scope has put the default handler back
                self._pyapp_sigint = interrupts.SigintExit(
                    f"hatch-pbs: interrupted while PyApp was being compiled; the archives in {output_dir} are complete")
                self._pyapp_sigint.install()
            if not _hooks_only():
                self._report_cargo_failure(output_dir)
        except HatchPbsError as error:
            self.app.abort(f"hatch-pbs: {error}")
            raise  # abort() exits; this line only runs with an Application that does not
        except OSError as error:  # the file system's (a full disk, a read-only directory) where no stage names it
            self.app.abort(f"hatch-pbs: cannot build the artifacts: {os_error_cause(error)}")
            raise
        except KeyboardInterrupt:
            self._restore_pyapp_handoff()
            self.app.abort(f"hatch-pbs: interrupted; {output_dir} was left as it was" if built is None else
                           f"hatch-pbs: interrupted after the artifacts were written to {output_dir}", code=130)
            raise

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:  # noqa: ARG002
        """Write the runtime wheels (``wheel`` target), or undo the ``PYAPP_*`` environment changes once the binary
        builder is done."""
        try:
            if self._runtime_wheels is not None:
                with interrupts.scope():
                    self._write_runtime_wheels(Path(artifact_path))
        except HatchPbsError as error:
            self.app.abort(f"hatch-pbs: {error}")
            raise
        except KeyboardInterrupt:
            self.app.abort(f"hatch-pbs: interrupted while writing the runtime wheels to {Path(artifact_path).parent}",
                           code=130)
            raise
        except OSError as error:
            self.app.abort(f"hatch-pbs: cannot write the runtime wheels: {os_error_cause(error)}")
            raise
        finally:
            self._restore_pyapp_handoff()

    def _restore_pyapp_handoff(self) -> None:
        """Undo what :meth:`_hand_off_to_pyapp` changed: ``PYAPP_*`` variables, SIGINT handler, temporary files."""
        if self._pyapp_patch is not None:
            self._pyapp_patch.restore()
            self._pyapp_patch = None
        if self._pyapp_sigint is not None:
            self._pyapp_sigint.restore()
            self._pyapp_sigint = None
        if self._work is not None:
            self._work.cleanup()
            self._work = None

    def _report_cargo_failure(self, output_dir: Path) -> None:
        """Make a failure of cargo in hatchling's binary builder, which runs after this hook's ``initialize()``
        (``cargo install pyapp``: without access to crates.io it cannot fetch PyApp), one line saying that the
        archives in ``output_dir`` are complete and how to build them without PyApp, instead of hatchling's
        traceback of ``OSError("Compilation failed (code N)")``.

        The builder is hatchling's ``binary`` builder (``self.build_config.builder``); its public ``cargo_build``
        method, which runs cargo and raises that ``OSError``, is wrapped for this builder object only. cargo's own
        messages still go to the terminal as hatchling shows them (captured only with ``-q``).
        """
        builder = self.build_config.builder
        cargo_build = getattr(builder, "cargo_build", None)
        if cargo_build is None:  # another hatchling: its failures are shown as it shows them
            return

        def reporting_cargo_build(*args: Any, **kwargs: Any) -> None:
            try:
                cargo_build(*args, **kwargs)
            except OSError as error:
                status = re.search(r"\(code (-?\d+)\)", str(error))
                failure = f"exited with status {status.group(1)}" if status else f"failed ({error})"
                shown = "; its messages are above" if self.app.verbosity >= 0 else ""
                self._restore_pyapp_handoff()
                self.app.abort(f"hatch-pbs: PyApp was not built: cargo {failure}{shown} (it fetches PyApp from "
                               f"crates.io, or the registry its configuration names). The archives in {output_dir} "
                               f"are complete; `hatch build -t {self.target_name} --hooks-only` builds them without "
                               f"PyApp.")
                raise

        builder.cargo_build = reporting_cargo_build

    def _build_artifacts(self, config: HookConfig, output_dir: Path) -> list[BuiltArtifact]:
        """Run the pipeline for ``config`` into ``output_dir``.

        Raises:
            HatchPbsError: as :func:`~hatch_pbs.pipeline.build_artifacts`.
        """
        metadata = self.metadata.core
        lock = project_lock(Path(self.root))
        if lock is not None:
            self.app.display_info(f"hatch-pbs: using the runtimes locked in {lock.path}")
        if not config.scripts:
            self.app.display_warning("hatch-pbs: the project defines no [project.scripts]; the artifacts "
                                     "will have no launchers in bin/")
        with tempfile.TemporaryDirectory(prefix="hatch-pbs-wheel-") as wheel_dir:
            project = Project(
                name=metadata.name,
                version=self.metadata.version,  # resolves [tool.hatch.version] for dynamic versions
                requires_python=requires_python_specifier(metadata.requires_python),
                scripts={**metadata.scripts, **metadata.gui_scripts},
                gui_scripts=frozenset(metadata.gui_scripts),
                wheel=self._build_wheel(Path(wheel_dir)),
            )
            built = build_artifacts(config, project, output_dir, report=self.app.display_info,
                                    warn=self.app.display_warning,
                                    source_date_epoch=source_date_epoch(Path(self.root)), lock=lock)
        for artifact in built:
            self.app.display_success(
                f"{artifact.path} ({artifact.size / 1e6:.1f} MB, {artifact.seconds:.1f} s, "
                f"CPython {artifact.resolved.asset.python_version} from release {artifact.resolved.asset.release})")
        return built

    def _prepare_runtime_wheels(self, config: HookConfig, build_data: dict[str, Any]) -> None:
        """Build every target's artifact (as a directory, in a temporary place) and make hatchling's own wheel a
        platform wheel of the first target; :meth:`finalize` turns it into the runtime wheels."""
        self._work = tempfile.TemporaryDirectory(prefix="hatch-pbs-runtime-wheels-")
        # Taken before anything is built: files written from now on get SOURCE_DATE_EPOCH in the wheels.
        self._wheel_times = MemberTimes(time.time(), source_date_epoch(Path(self.root)))
        built = self._build_artifacts(replace(config, archive_format="dir", pyapp="false"),
                                      Path(self._work.name) / "artifacts")
        self._runtime_wheels = built
        self._runtime_floors = config.floors
        build_data["tag"] = f"py3-none-{wheel_platform_tag(built[0].triple, config.floors)}"
        build_data["pure_python"] = False

    def _write_runtime_wheels(self, base_wheel: Path) -> None:
        metadata = self.metadata.core
        module = re.sub(r"[-_.]+", "_", metadata.name).lower()
        for artifact in self._runtime_wheels or []:
            interrupts.check()  # between two wheels: each is written whole (atomically) or not at all
            destination = base_wheel.parent / runtime_wheel_name(base_wheel.name, artifact.triple,
                                                                 self._runtime_floors)
            write_runtime_wheel(base_wheel, artifact.path, destination, triple=artifact.triple, module=module,
                                scripts={**metadata.scripts, **metadata.gui_scripts},
                                gui_scripts=frozenset(metadata.gui_scripts), interpreter=artifact.interpreter,
                                times=self._wheel_times, floors=self._runtime_floors)
            self.app.display_success(f"{destination} (runtime wheel: CPython "
                                     f"{artifact.resolved.asset.python_version} for {artifact.triple})")
        self._runtime_wheels = None

    def _pyapp_triple(self, config: HookConfig) -> str | None:
        """The target triple whose artifact PyApp will embed, or ``None`` for no hand-off (option ``pyapp``;
        ``"auto"`` without cargo says once that only the archives are built).

        Raises:
            ConfigError: ``pyapp = true`` and no cargo; cargo's target triple is not among the targets.
        """
        if config.pyapp == "false":
            return None
        if find_cargo(os.environ) is None:
            if config.pyapp == "true":
                raise ConfigError(['Option `pyapp` for build hook `pbs` is true, but cargo was not found (neither '
                                   '$CARGO nor cargo on PATH): install Rust (https://rustup.rs), or set it to "auto" '
                                   "or false"])
            self.app.display_warning(
                "hatch-pbs: only the archives will be built: Hatch's binary builder needs Rust's cargo to make "
                "single-file binaries and none was found. Run `hatch build -t app --hooks-only` for the archives "
                "alone, or install Rust (https://rustup.rs) for offline single-file binaries.")
            return None
        return cargo_target_triple(os.environ, config.targets)

    def _hand_off_to_pyapp(self, artifact: BuiltArtifact) -> None:
        """Set the ``PYAPP_*`` variables that embed ``artifact`` (restored by :meth:`finalize`)."""
        triple = artifact.triple
        archive, top = artifact.path, artifact.path.name
        if artifact.sha256 is None:  # archive-format "dir": PyApp embeds an archive
            self._work = tempfile.TemporaryDirectory(prefix="hatch-pbs-pyapp-")
            archive = Path(self._work.name) / f"{artifact.path.name}.tar.gz"
            pack_tree(artifact.path, archive)
        else:
            top = top_directory(artifact.path.name)
        self._pyapp_patch = EnvironmentPatch(handoff_variables(str(archive), top, artifact.interpreter,
                                                               artifact.resolved.asset.python_version))
        for name in self._pyapp_patch.apply():
            self.app.display_warning(f"hatch-pbs: {name} is ignored for this build: PyApp embeds the {triple} "
                                     f"artifact instead")
        self.app.display_info(f"hatch-pbs: PyApp will embed {archive.name} (offline first start, no install)")

    def _build_wheel(self, directory: Path) -> Path:
        """Build the project's wheel in-process with hatchling's own wheel builder (its other hooks run as usual;
        this hook does nothing for the wheel target). Ctrl-C raises ``KeyboardInterrupt`` in there, as by default.
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


def _hooks_only() -> bool:
    """Whether hatchling runs only the build hooks (``--hooks-only`` or ``HATCH_BUILD_HOOKS_ONLY``)."""
    flag = os.environ.get("HATCH_BUILD_HOOKS_ONLY", "").strip().lower()
    return flag in {"1", "true", "yes", "on"} or "--hooks-only" in sys.argv
