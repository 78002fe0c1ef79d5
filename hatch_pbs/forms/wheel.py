"""Runtime wheels: platform wheels that carry a prepared artifact, so that their console scripts run the project on
the bundled CPython instead of the interpreter that installed the wheel.

A runtime wheel is made from the project's ordinary wheel (built by hatchling) and one artifact tree per target
triple (:mod:`hatch_pbs.pipeline`, format ``dir``):

- every file of the ordinary wheel, except its ``RECORD``, ``WHEEL`` and ``entry_points.txt``, and without the
  ``Requires-Dist`` lines of its ``METADATA``: the dependencies are installed inside the bundled runtime, not into
  the installing environment;
- the artifact tree under ``<module>.pbs-runtime/`` (a name no ``import`` can reach). Wheels cannot hold symbolic
  links (installers write them as regular files, if at all), so links are left out; the launchers and the runtime's
  interpreter, its shared libraries and modules are all regular files in python-build-standalone's layout;
- a dispatcher module ``_pbs_launch_<module>.py`` and an ``entry_points.txt`` whose ``console_scripts`` and
  ``gui_scripts`` point at it: the installer writes its usual wrappers, and each runs
  ``<runtime interpreter> -I -c <bootstrap> <script> <arguments>`` (``exec`` on POSIX, a child process whose exit
  status is passed on elsewhere), with the same bootstrap code as the artifact's launchers;
- ``WHEEL`` with ``Root-Is-Purelib: false`` and the tag ``py3-none-<platform>``, the platform being the oldest the
  artifact supports (options ``manylinux``, ``musllinux``, ``macos``: by default ``manylinux_2_17`` with its
  ``manylinux2014`` alias, ``musllinux_1_2``, ``macosx_11_0``; ``win_amd64``/``win_arm64``/``win32``): any Python 3
  may install it;
- a ``RECORD`` listing every file with its sha256 and size (PEP 376, PEP 427 "The .dist-info directory").

Entries are written in sorted order with the artifact's member times and normalized modes, as the archives are.
"""

from __future__ import annotations

import calendar
import os
import re
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from hatch_pbs import __version__, interrupts
from hatch_pbs.app.launchers import bootstrap_code
from hatch_pbs.app.record import record_row, render_record
from hatch_pbs.artifact.archive import open_zip, zip_member
from hatch_pbs.artifact.pack import MemberTimes, source_date_epoch
from hatch_pbs.atomic import publishing_file
from hatch_pbs.errors import PackError, os_error_cause
from hatch_pbs.forms import FormContext, Stage
from hatch_pbs.forms.archive import build_archives
from hatch_pbs.pipeline import BuiltArtifact
from hatch_pbs.release.triples import PlatformFloors, parse_triple, wheel_platform_tags

_WHEEL_NAME_RE = re.compile(r"^(?P<distribution>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def wheel_platform_tag(triple: str, floors: PlatformFloors = PlatformFloors()) -> str:
    """The platform part of a runtime wheel's tag for ``triple``, e.g. ``manylinux_2_17_x86_64.manylinux2014_x86_64``
    or ``macosx_11_0_arm64``: the floor (options ``manylinux``, ``musllinux``, ``macos``), the oldest platform the
    artifact runs on, and its legacy alias where there is one.

    Raises:
        ValueError: the triple's platform has no wheel tags known here.
    """
    tags = wheel_platform_tags(triple, floors)
    if parse_triple(triple).os == "linux" and len(tags) > 1 and tags[1].startswith("manylinux2014_"):
        return ".".join(tags[:2])
    return tags[0]


def runtime_wheel_name(base_wheel: str, triple: str, floors: PlatformFloors = PlatformFloors()) -> str:
    """``<distribution>-<version>-py3-none-<platform>.whl`` for the ordinary wheel file name ``base_wheel``.

    Raises:
        ValueError: ``base_wheel`` is not a wheel file name.
    """
    match = _WHEEL_NAME_RE.match(base_wheel)
    if not match:
        raise ValueError(f"not a wheel file name: {base_wheel!r}")
    return f"{match['distribution']}-{match['version']}-py3-none-{wheel_platform_tag(triple, floors)}.whl"


def dispatcher_source(module: str, scripts: Mapping[str, str], gui_scripts: frozenset[str], interpreter: str,
                      gui_interpreter: str) -> str:
    """The dispatcher module: one function per script (name -> entry point) that runs it on the bundled runtime.

    Args:
        module: the runtime directory's name prefix (the project's import name, e.g. ``pbs_demo``).
        interpreter: the runtime's interpreter relative to the artifact root (``python/bin/python3.12``).
        gui_interpreter: the interpreter of GUI scripts (``python/pythonw.exe`` on Windows, else ``interpreter``).
    """
    codes = {name: bootstrap_code(entry_point) for name, entry_point in sorted(scripts.items())}
    functions = "".join(
        f"\n\ndef {_function_name(name)}():\n    _run({codes[name]!r}, "
        f"{(gui_interpreter if name in gui_scripts else interpreter)!r})\n" for name in codes)
    return f'''"""Runs the console scripts of this wheel on the CPython bundled with it
(written by hatch-pbs {__version__})."""

import os
import subprocess
import sys

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), {module + ".pbs-runtime"!r})


def _run(code, interpreter):
    executable = os.path.join(_ROOT, *interpreter.split("/"))
    arguments = [executable, "-I", "-c", code, sys.argv[0], *sys.argv[1:]]
    if os.name == "nt":
        sys.exit(subprocess.call(arguments))
    os.execv(executable, arguments)
{functions}'''


def _function_name(script: str) -> str:
    return "script_" + re.sub(r"\W", "_", script)


def write_runtime_wheel(base_wheel: Path, tree: Path, destination: Path, *, triple: str, module: str,
                        scripts: Mapping[str, str], gui_scripts: frozenset[str], interpreter: str,
                        times: MemberTimes | None = None, floors: PlatformFloors = PlatformFloors()) -> Path:
    """Write the runtime wheel of ``triple`` to ``destination`` (atomically), from the ordinary wheel ``base_wheel``
    and the artifact ``tree``.

    Args:
        module: the project's import name; names the runtime directory and the dispatcher module.
        scripts: the console and GUI scripts (name -> entry point) the wheel provides.
        gui_scripts: which of ``scripts`` are GUI scripts.
        interpreter: the runtime's interpreter relative to ``tree``.
        times: member times as for archives (default: every file keeps its own).
        floors: the platform floors the wheel's tag names (see :func:`wheel_platform_tag`).

    Returns:
        ``destination``.

    Raises:
        PackError: the wheel cannot be read or written (nothing is left at ``destination`` then).
    """
    windows = parse_triple(triple).is_windows
    gui_interpreter = interpreter.rsplit("/", 1)[0] + "/pythonw.exe" if windows else interpreter
    members: dict[str, tuple[bytes, int, int]] = {}  # name -> (data, mode, time)
    try:
        with zipfile.ZipFile(base_wheel) as base:
            dist_info = _dist_info_directory(base)
            for entry in base.infolist():
                if entry.is_dir() or entry.filename in {f"{dist_info}/{name}" for name in
                                                        ("RECORD", "WHEEL", "entry_points.txt")}:
                    continue
                data = base.read(entry)
                if entry.filename == f"{dist_info}/METADATA":
                    data = _without_requirements(data)
                stamp = calendar.timegm(entry.date_time + (0, 0, 0))  # zip times are written as UTC below
                members[entry.filename] = (data, (entry.external_attr >> 16) or 0o644, stamp)
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise PackError(f"cannot read the project's wheel {base_wheel}: {error}") from None
    built = int(times.epoch) if times else int(time.time())
    for path, relative in _tree_files(tree):
        status = path.stat()
        stamp = times(status.st_mtime) if times else int(status.st_mtime)
        members[f"{module}.pbs-runtime/{relative}"] = (path.read_bytes(), status.st_mode, stamp)
    source = dispatcher_source(module, scripts, gui_scripts, interpreter, gui_interpreter)
    members[f"_pbs_launch_{module}.py"] = (source.encode(), 0o644, built)
    members[f"{dist_info}/entry_points.txt"] = (_entry_points(module, scripts, gui_scripts), 0o644, built)
    members[f"{dist_info}/WHEEL"] = (_wheel_file(triple, floors), 0o644, built)
    _write_wheel(destination, dist_info, members)
    return destination


def _dist_info_directory(base: zipfile.ZipFile) -> str:
    names = {name.split("/", 1)[0] for name in base.namelist() if name.split("/", 1)[0].endswith(".dist-info")}
    if len(names) != 1:
        raise KeyError(f"expected one .dist-info directory, found {sorted(names)}")
    return names.pop()


def _without_requirements(metadata: bytes) -> bytes:
    """``METADATA`` without its ``Requires-Dist`` headers (the header block ends at the first empty line)."""
    header, separator, body = metadata.partition(b"\n\n")
    kept = [line for line in header.split(b"\n") if not line.lower().startswith(b"requires-dist:")]
    return b"\n".join(kept) + separator + body


def _entry_points(module: str, scripts: Mapping[str, str], gui_scripts: frozenset[str]) -> bytes:
    sections = []
    for group, names in (("console_scripts", [name for name in sorted(scripts) if name not in gui_scripts]),
                         ("gui_scripts", [name for name in sorted(scripts) if name in gui_scripts])):
        if names:
            sections.append(f"[{group}]\n" + "".join(f"{name} = _pbs_launch_{module}:{_function_name(name)}\n"
                                                     for name in names))
    return "\n".join(sections).encode()


def _wheel_file(triple: str, floors: PlatformFloors) -> bytes:
    tags = "".join(f"Tag: py3-none-{platform}\n" for platform in wheel_platform_tag(triple, floors).split("."))
    return (f"Wheel-Version: 1.0\nGenerator: hatch-pbs {__version__}\nRoot-Is-Purelib: false\n{tags}").encode()


def _tree_files(tree: Path) -> Iterator[tuple[Path, str]]:
    """Regular files below ``tree`` in sorted order (links left out), with their paths relative to it."""
    for directory, subdirectories, files in os.walk(tree):
        subdirectories.sort()
        for name in sorted(files):
            path = Path(directory, name)
            if stat.S_ISREG(path.lstat().st_mode):
                yield path, path.relative_to(tree).as_posix()


def _write_wheel(destination: Path, dist_info: str, members: dict[str, tuple[bytes, int, int]]) -> None:
    rows = [record_row(name, members[name][0]) for name in sorted(members)] + [[f"{dist_info}/RECORD", "", ""]]
    members[f"{dist_info}/RECORD"] = (render_record(rows).encode(), 0o644, max(stamp for _, _, stamp in
                                                                                members.values()))
    try:
        with publishing_file(destination, mode=0o644) as temporary, open_zip(temporary) as wheel:
            # dist-info last, RECORD at the very end (PEP 427 recommends it)
            order = sorted(members, key=lambda name: (name.startswith(f"{dist_info}/"),
                                                      name == f"{dist_info}/RECORD", name))
            for name in order:
                data, mode, stamp = members[name]
                wheel.writestr(zip_member(name, stamp, stat.S_IFREG | stat.S_IMODE(mode)), data)
    except OSError as error:
        raise PackError(f"cannot write {destination}: {os_error_cause(error, destination)}") from None


__all__ = ["dispatcher_source", "runtime_wheel_name", "wheel_platform_tag", "write_runtime_wheel"]


class RuntimeWheelForm:
    """Runtime wheels beside hatchling's own wheel (``wheel`` target with ``wheel = true``): :meth:`initialize`
    builds every target's artifact as a directory in a temporary place and makes hatchling's wheel a platform
    wheel of the first target; :meth:`finalize` turns that wheel into one runtime wheel per target."""

    def __init__(self, context: FormContext) -> None:
        self.context = context
        self._work: tempfile.TemporaryDirectory[str] | None = None
        self._built: list[BuiltArtifact] | None = None
        self._times: MemberTimes | None = None

    def initialize(self, build_data: dict[str, Any]) -> None:
        config = self.context.config
        with interrupts.scope():
            self._work = tempfile.TemporaryDirectory(prefix="hatch-pbs-runtime-wheels-")
            # Taken before anything is built: files written from now on get SOURCE_DATE_EPOCH in the wheels.
            self._times = MemberTimes(time.time(), source_date_epoch(self.context.root))
            self._built = build_archives(self.context, Path(self._work.name) / "artifacts",
                                         config=replace(config, archive_format="dir", pyapp="false"))
        build_data["tag"] = f"py3-none-{wheel_platform_tag(self._built[0].triple, config.floors)}"
        build_data["pure_python"] = False

    def finalize(self, artifact_path: Path) -> None:
        """Write one runtime wheel per target beside ``artifact_path`` (hatchling's wheel), each atomically."""
        floors = self.context.config.floors
        module = re.sub(r"[-_.]+", "_", self.context.name).lower()
        with interrupts.scope():
            for artifact in self._built or []:
                interrupts.check()  # between two wheels: each is written whole (atomically) or not at all
                destination = artifact_path.parent / runtime_wheel_name(artifact_path.name, artifact.triple, floors)
                write_runtime_wheel(artifact_path, artifact.path, destination, triple=artifact.triple, module=module,
                                    scripts=self.context.scripts, gui_scripts=self.context.gui_scripts,
                                    interpreter=artifact.interpreter, times=self._times, floors=floors)
                self.context.success(f"{destination} (runtime wheel: CPython "
                                     f"{artifact.resolved.asset.python_version} for {artifact.triple})")
        self._built = None

    def close(self) -> None:
        """Remove the temporary artifact directories."""
        if self._work is not None:
            self._work.cleanup()
            self._work = None

    def interrupted(self, stage: Stage) -> str:
        if stage == "finalize":
            return f"hatch-pbs: interrupted while writing the runtime wheels to {self.context.output_dir}"
        return f"hatch-pbs: interrupted; {self.context.output_dir} was left as it was"

    def failed(self, stage: Stage) -> str:
        return "cannot write the runtime wheels" if stage == "finalize" else "cannot build the artifacts"
