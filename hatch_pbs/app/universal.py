"""One resolution for every target triple of a build, so that all its artifacts hold the same versions.

Resolving each triple on its own lets the resolver pick, for one triple, an older version of a distribution whose
newest one has no wheel there (Pillow 13.0.0 has no ``manylinux_2_17_aarch64`` wheel: a per-triple resolution
gave aarch64 Linux Pillow 12.2.0 and every other triple 13.0.0). Instead, a build of several triples resolves once:

- :func:`universal_lock`: ``uv pip compile --universal --format pylock.toml --generate-hashes`` (uv's
  documentation, "Universal resolution"): one version per distribution (per marker fork, should the project's own
  markers force one), environment markers kept, and every file of each chosen version with its sha256;
- :func:`check_wheels`: before any target is built, every target triple must have a usable wheel in that lock for
  every distribution whose marker applies to it (PEP 508 markers evaluated for the triple, wheel tags per PEP 425
  at the configured platform floors). A gap fails the build naming the distribution, its version, every triple
  without a wheel, and the platform floor (option ``manylinux``, ``musllinux``, ``macos``) at which the lock has
  one;
- each triple then installs that lock (``uv pip install -r pylock.toml --python-platform ...``), which takes the
  triple's wheels from it and checks every file's sha256.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging import tags
from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name

from hatch_pbs.app.provenance import Candidate, lock_candidates
from hatch_pbs.errors import InstallError
from hatch_pbs.interrupts import run_tool
from hatch_pbs.release.triples import PlatformFloors, marker_environment, wheel_platform_tags

try:
    import tomllib
except ImportError:  # Python 3.10: hatchling depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class WheelGap:
    """A distribution of the lock that some target triples have no usable wheel for.

    Attributes:
        distribution: its canonical name, e.g. ``"pillow"``.
        version: the version the lock chose, e.g. ``"13.0.0"``.
        triples: the target triples without a usable wheel, in the order of ``targets``.
        floors: for each of those triples that has a wheel at a higher platform floor, the option setting the
            lowest such floor, e.g. ``{"aarch64-unknown-linux-gnu": 'manylinux = "2_28"'}``.
    """

    distribution: str
    version: str
    triples: tuple[str, ...]
    floors: Mapping[str, str]

    def describe(self) -> str:
        """One line: ``pillow 13.0.0 has no usable wheel for aarch64-unknown-linux-gnu (...)``."""
        notes = []
        for triple in self.triples:
            option = self.floors.get(triple)
            notes.append(f"{triple} (it has one at {option})" if option else f"{triple} (at no platform floor)")
        return f"{self.distribution} {self.version} has no usable wheel for {', '.join(notes)}"


def universal_lock(uv: str, installer_python: Path, requirements_in: Path, destination: Path, *,
                   python_version: str, only_binary: bool = True) -> Path:
    """Resolve the requirements file ``requirements_in`` once for every platform into the PEP 751 lock
    ``destination`` (``pylock.toml``, as uv requires the name), for CPython ``python_version`` and later.

    ``only_binary`` (the default; off with option ``build-from-source``) makes uv choose only versions that have
    wheels. ``installer_python`` is an interpreter uv may run (it decides nothing about what is chosen).

    Returns:
        ``destination``.

    Raises:
        InstallError: uv failed (its own error lines, naming the distribution, end the message).
        BuildInterrupted: the build was interrupted.
    """
    binary = ["--only-binary", ":all:"] if only_binary else []
    command = [uv, "pip", "compile", "--quiet", "--no-header", "--universal", "--generate-hashes", "--format",
               "pylock.toml", "--python", str(installer_python), "--python-version", python_version, "--no-progress",
               *binary, "--output-file", str(destination), str(requirements_in)]
    run_tool(command, "resolving the dependencies once for every target triple with uv (universal resolution)",
             {"PYTHONDONTWRITEBYTECODE": "1"})
    return destination


def check_wheels(lock: Path, targets: Mapping[str, str], floors: PlatformFloors, *,
                 buildable: Iterable[str] = ()) -> None:
    """Check that every triple of ``targets`` (target triple -> its runtime's full Python version) has a usable
    wheel in ``lock`` for every distribution whose marker applies to it.

    Args:
        buildable: triples that may build a distribution from its source distribution when the lock has one
            (option ``build-from-source``: the build machine's triple only).

    Raises:
        InstallError: some distribution lacks a wheel for some triple; the message has one line per distribution
            (:meth:`WheelGap.describe`) and says what to do.
    """
    gaps = wheel_gaps(lock, targets, floors, buildable=frozenset(buildable))
    if gaps:
        lines = "\n".join(f"  {gap.describe()}" for gap in gaps)
        raise InstallError(
            "the dependencies are resolved once for every target triple, and some versions chosen have no wheel "
            f"for some triples:\n{lines}\nSet the platform floor named, pin a version that has wheels for every "
            "target triple, or build those triples with their own configuration.")


def wheel_gaps(lock: Path, targets: Mapping[str, str], floors: PlatformFloors, *,
               buildable: frozenset[str] = frozenset()) -> list[WheelGap]:
    """The :class:`WheelGap` of every distribution in ``lock`` that a triple of ``targets`` cannot install, sorted by
    name (see :func:`check_wheels`).

    Raises:
        InstallError: the lock cannot be read, or a package's marker is not valid PEP 508.
    """
    files: dict[tuple[str, str | None], list[Candidate]] = {}
    for candidate in lock_candidates(lock):
        files.setdefault((candidate.name, candidate.version), []).append(candidate)
    gaps = []
    for (name, version), marker in sorted(_package_markers(lock).items()):
        candidates = files.get((name, version), [])
        missing = [triple for triple, python_version in targets.items()
                   if _applies(marker, triple, python_version)
                   and not _installable(candidates, triple, python_version, floors)
                   and not (triple in buildable and any(candidate.kind == "sdist" for candidate in candidates))]
        if missing:
            advice = {triple: option for triple in missing
                      if (option := _floor_with_wheel(candidates, triple, targets[triple], floors)) is not None}
            gaps.append(WheelGap(name, version or "(unversioned)", tuple(missing), advice))
    return gaps


@functools.lru_cache(maxsize=64)  # asked once per distribution and triple: the same few answers
def accepted_tags(triple: str, python_version: str, floors: PlatformFloors) -> frozenset[tags.Tag]:
    """Every wheel tag a CPython ``python_version`` runtime for ``triple`` installs at ``floors`` (PEP 425 rules as
    :mod:`packaging.tags` orders them: ``cp3X-cp3X-<platform>``, ``cp3X-abi3-<platform>``, ``py3-none-<platform>``,
    ``py3-none-any``...)."""
    major, minor = (int(part) for part in python_version.split(".")[:2])
    platforms = wheel_platform_tags(triple, floors)
    specific = tags.cpython_tags((major, minor), platforms=platforms)
    generic = tags.compatible_tags((major, minor), interpreter=f"cp{major}{minor}", platforms=platforms)
    return frozenset([*specific, *generic])


def _package_markers(lock: Path) -> dict[tuple[str, str | None], str | None]:
    """``(canonical name, version) -> marker`` of every package in ``lock`` (``None``: applies everywhere)."""
    try:
        document = tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InstallError(f"cannot read the lock file {lock}: {error}") from None
    found: dict[tuple[str, str | None], str | None] = {}
    for package in document.get("packages", []):
        if isinstance(package, Mapping) and isinstance(package.get("name"), str):
            version, marker = package.get("version"), package.get("marker")
            found[(canonicalize_name(package["name"]), version if isinstance(version, str) else None)] = (
                marker if isinstance(marker, str) and marker.strip() else None)
    return found


def _applies(marker: str | None, triple: str, python_version: str) -> bool:
    if marker is None:
        return True
    try:
        return Marker(marker).evaluate(marker_environment(triple, python_version))
    except InvalidMarker as error:
        raise InstallError(f"the universal lock has a marker that is not valid PEP 508: {marker!r} ({error})"
                           ) from None


def _installable(candidates: list[Candidate], triple: str, python_version: str, floors: PlatformFloors) -> bool:
    accepted = accepted_tags(triple, python_version, floors)
    for candidate in candidates:
        parsed = candidate.wheel_tags
        if parsed is not None and parsed[1] & accepted:
            return True
    return False


def _floor_with_wheel(candidates: list[Candidate], triple: str, python_version: str, floors: PlatformFloors
                      ) -> str | None:
    """The option setting the lowest platform floor above ``floors`` at which ``candidates`` has a wheel for
    ``triple``, e.g. ``manylinux = "2_28"``; ``None`` when none has (or the triple has no floor: Windows)."""
    for version in floors.candidates_above(triple):
        raised = floors.raised(triple, version)
        if _installable(candidates, triple, python_version, raised):
            return raised.option_text(triple)
    return None


__all__ = ["WheelGap", "accepted_tags", "check_wheels", "universal_lock", "wheel_gaps"]
