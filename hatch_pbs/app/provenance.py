"""Which file every distribution installed into an artifact came from: its wheel's name and sha256.

uv installs from a PEP 751 lock (``pylock.toml``): the one uv writes for the target with ``uv pip compile
--format pylock.toml --python-platform ... --python-version ...`` (see
:func:`hatch_pbs.app.install.install_distributions`),
or the user's own (option ``requirements``). Such a lock lists, per distribution, the exact version and every
candidate file with its sha256; uv installs only what it lists and refuses a file whose sha256 differs. What the
lock cannot say is which candidate uv picked when several suit the target (``cp312-cp312-...``, ``cp312-abi3-...``,
``py3-none-any``; a universal lock lists every platform's wheels): that is read back from the installed
distribution's ``*.dist-info/WHEEL``, whose ``Tag`` (and ``Build``) lines are those of the wheel it was installed
from (PEP 427). Nothing here decides what is installed; it only identifies, after the fact, the file uv used.

A distribution uv built from a source distribution (allowed for the build machine's own triple only) has no
upstream wheel: its entry names the sdist and that file's sha256 instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from hatch_pbs.errors import InstallError
from hatch_pbs.release.cache import sha256_of

try:
    import tomllib
except ImportError:  # Python 3.10: hatchling depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]

_BUILD_TAG_RE = re.compile(r"^(\d+)(.*)$")


@dataclass(frozen=True)
class Candidate:
    """One file a lock (or the build itself) offers for a distribution.

    Attributes:
        name: the distribution's canonical name.
        version: its version, if known.
        file_name: the file's name, e.g. ``orjson-3.10.7-cp312-cp312-manylinux_2_17_x86_64.whl``.
        sha256: the file's sha256 (lowercase hex), if the lock records one.
        kind: ``"wheel"`` or ``"sdist"`` (a source archive uv builds a wheel from).
        local: the file, when the lock names one on this machine (``file:`` URL or path).
    """

    name: str
    version: str | None
    file_name: str
    sha256: str | None
    kind: str
    local: Path | None = field(default=None, compare=False)

    @property
    def wheel_tags(self) -> tuple[tuple[int, str] | tuple[()], frozenset[Tag]] | None:
        """``(build tag, tags)`` from a wheel's file name, ``None`` for an sdist or an unparsable name."""
        if self.kind != "wheel":
            return None
        try:
            _, _, build, tags = parse_wheel_filename(self.file_name)
        except InvalidWheelFilename:
            return None
        return build, tags


def lock_candidates(lock: Path) -> list[Candidate]:
    """Every file a PEP 751 lock lists: its ``wheels``, ``archive`` (a wheel or an sdist given by path or URL) and
    ``sdist`` entries; ``vcs`` and ``directory`` sources have no file and are left out.

    Raises:
        InstallError: the lock cannot be read or is not TOML.
    """
    try:
        document = tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InstallError(f"cannot read the lock file {lock}: {error}") from None
    found: list[Candidate] = []
    for package in document.get("packages", []):
        if not isinstance(package, Mapping) or not isinstance(package.get("name"), str):
            continue
        name, version = canonicalize_name(package["name"]), package.get("version")
        version = version if isinstance(version, str) else None
        entries: list[tuple[Any, str | None]] = [(wheel, "wheel") for wheel in package.get("wheels", [])]
        entries += [(package.get("archive"), None), (package.get("sdist"), "sdist")]
        for entry, kind in entries:
            if not isinstance(entry, Mapping):
                continue
            file_name = _file_name(entry)
            if not file_name:
                continue
            hashes = entry.get("hashes")
            sha256 = hashes.get("sha256") if isinstance(hashes, Mapping) else None
            found.append(Candidate(name, version, file_name, sha256.lower() if isinstance(sha256, str) else None,
                                   kind or ("wheel" if file_name.endswith(".whl") else "sdist"),
                                   _local_file(entry, lock.parent)))
    return found


def wheel_candidates(paths: Iterable[Path]) -> list[Candidate]:
    """Local wheel files installed as they are (the project's own wheel), hashed here.

    Raises:
        InstallError: a name is not a wheel file name.
    """
    found = []
    for path in paths:
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except InvalidWheelFilename as error:
            raise InstallError(f"{path} is not a wheel: {error}") from None
        found.append(Candidate(name, str(version), path.name, sha256_of(path), "wheel"))
    return found


def installed_wheels(site_dir: Path, locks: Sequence[Path] = (), *, local_wheels: Sequence[Path] = ()
                     ) -> list[dict[str, str | None]]:
    """For every distribution installed in ``site_dir``, the file it was installed from.

    Args:
        site_dir: the ``--target`` directory uv installed into.
        locks: the PEP 751 locks uv installed from.
        local_wheels: wheel files installed directly (not through a lock), e.g. the project's own wheel.

    Returns:
        ``[{"name", "version", "wheel", "sha256"}]`` sorted by name (case-insensitively), ``name`` and ``version``
        as the distribution's metadata spells them. For a distribution built from a source distribution ``wheel``
        is ``None``, ``sdist`` names that file and ``sha256`` is its hash; for one no lock lists (a VCS or
        directory source) ``wheel`` and ``sha256`` are ``None``.

    Raises:
        InstallError: several files with different hashes could have been the one installed (the same wheel name
            from two sources with different contents), so the manifest could not say which.
    """
    by_name: dict[str, list[Candidate]] = {}
    for candidate in [*(c for lock in locks for c in lock_candidates(lock)), *wheel_candidates(local_wheels)]:
        by_name.setdefault(candidate.name, []).append(candidate)
    result = []
    for dist_info in sorted(site_dir.glob("*.dist-info")):
        metadata = _headers(dist_info / "METADATA")
        name, version = metadata.get("Name"), metadata.get("Version")
        if not name or not version:
            continue
        candidates = [c for c in by_name.get(canonicalize_name(name), []) if _same_version(c.version, version)]
        chosen = _choose(candidates, _installed_tags(dist_info / "WHEEL"), name, version)
        entry: dict[str, str | None] = {"name": name, "version": version, "wheel": None, "sha256": None}
        if chosen is not None:
            entry.update({"wheel" if chosen.kind == "wheel" else "sdist": chosen.file_name, "sha256": chosen.sha256})
        result.append(entry)
    return sorted(result, key=lambda item: (str(item["name"]).lower(), str(item["version"])))


def _choose(candidates: list[Candidate], installed: tuple[tuple[int, str] | tuple[()], frozenset[Tag]] | None,
            name: str, version: str) -> Candidate | None:
    wheels = [c for c in candidates if c.kind == "wheel"]
    if wheels:
        matching = [c for c in wheels if installed is not None and c.wheel_tags == installed]
        # A wheel whose WHEEL file disagrees with its name (renamed by hand) matches nothing: then it is the
        # lock's only wheel for this version, if the lock has only one (possibly from several sources).
        pool = _hashed(matching or (wheels if len({c.file_name for c in wheels}) == 1 else []))
        known = {c.sha256 for c in pool if c.sha256}
        if len(known) > 1:
            files = ", ".join(sorted(f"{c.file_name} (sha256 {c.sha256})" for c in pool if c.sha256))
            raise InstallError(f"cannot tell which file {name} {version} was installed from: the sources offer "
                               f"different files under the same name: {files}; remove one of them (a rebuilt "
                               f"copy in a find-links directory?)")
        if pool:
            return next((c for c in pool if c.sha256), pool[0])
    sdists = _hashed([c for c in candidates if c.kind == "sdist"])
    return next((c for c in sdists if c.sha256), sdists[0]) if sdists else None


def _hashed(candidates: list[Candidate]) -> list[Candidate]:
    """``candidates``, with the sha256 of those the lock records none for computed from the local file they name
    (older uv versions record no hash for find-links files)."""
    return [replace(c, sha256=sha256_of(c.local)) if c.sha256 is None and c.local is not None
            and c.local.is_file() else c for c in candidates]


def _installed_tags(wheel_file: Path) -> tuple[tuple[int, str] | tuple[()], frozenset[Tag]] | None:
    """``(build tag, tags)`` from an installed ``*.dist-info/WHEEL`` (PEP 427), ``None`` if it has no tags."""
    try:
        message = BytesParser(policy=compat32).parsebytes(wheel_file.read_bytes())
    except OSError:
        return None
    tags: set[Tag] = set()
    for value in message.get_all("Tag") or []:
        tags |= parse_tag(value.strip())
    if not tags:
        return None
    build: tuple[int, str] | tuple[()] = ()
    match = _BUILD_TAG_RE.match((message.get("Build") or "").strip())
    if match:
        build = (int(match.group(1)), match.group(2))
    return build, frozenset(tags)


def _headers(path: Path) -> dict[str, str]:
    try:
        message = BytesParser(policy=compat32).parsebytes(path.read_bytes())
    except OSError:
        return {}
    return {key: str(value).strip() for key, value in message.items()}


def _same_version(listed: str | None, installed: str) -> bool:
    if listed is None:
        return True
    try:
        return Version(listed) == Version(installed)
    except InvalidVersion:
        return listed == installed


def _local_file(entry: Mapping[str, Any], base: Path) -> Path | None:
    """The file a lock entry names on this machine: a ``file:`` URL, or a path (relative to the lock's directory)."""
    location = entry.get("url") or entry.get("path")
    if not isinstance(location, str) or not location:
        return None
    if location.startswith("file:"):
        return Path(url2pathname(urlsplit(location).path))
    if "://" in location:
        return None
    return base / location


def _file_name(entry: Mapping[str, Any]) -> str | None:
    name = entry.get("name")
    if isinstance(name, str) and name:
        return name
    location = entry.get("url") or entry.get("path")
    if not isinstance(location, str) or not location:
        return None
    path = unquote(urlsplit(location).path) if "://" in location else location
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or None


__all__ = ["Candidate", "installed_wheels", "lock_candidates", "wheel_candidates"]
