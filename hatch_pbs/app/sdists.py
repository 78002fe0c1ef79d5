"""Dependencies built from source distributions (option ``build-from-source``, the build machine's triple only),
and the wheels built from them, kept in the cache.

uv resolves into a PEP 751 lock (``pylock.toml``); a distribution the lock offers only as an ``sdist`` has no wheel
for the target's floor. uv would build it while installing, but it does not find its own built wheel again on the
next build: the wheel is tagged for the build machine (``cp312-cp312-linux_x86_64``), which is not among the tags of
the floor's ``--python-platform`` (``x86_64-manylinux_2_17``), so every warm rebuild compiled again (a Pillow app:
34 s each time). Here the sdist is built once with ``uv build --wheel`` by the target's own runtime, the wheel is
kept in the cache under the sdist's sha256, and uv installs a copy of the lock whose entry names that wheel
instead of the sdist (uv installs the files a lock lists whatever their tags). The manifest still names the sdist
(:mod:`hatch_pbs.app.provenance` reads the original lock).

A wheel built here needs the build machine's C library; the audit refuses it when that is newer than the floor.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from hatch_pbs.errors import DownloadError, InstallError
from hatch_pbs.release.cache import Cache, sha256_of
from hatch_pbs.release.download import Downloader

try:
    import tomllib
except ImportError:  # Python 3.10: hatchling depends on tomli there
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class LockedSdist:
    """A distribution a lock offers only as a source distribution.

    Attributes:
        name: the distribution's name as the lock spells it.
        version: its version, e.g. ``"13.0.0"``.
        file_name: the sdist's file name, e.g. ``pillow-13.0.0.tar.gz``.
        location: a ``file:``/``https:`` URL, or a path (absolute, or relative to the lock's directory).
        sha256: its sha256 as the lock records it (lowercase hex).
    """

    name: str
    version: str
    file_name: str
    location: str
    sha256: str


def sdist_only_packages(lock: Path) -> list[LockedSdist]:
    """The packages of a PEP 751 lock with an ``sdist`` and no ``wheels``, in the lock's order.

    Raises:
        InstallError: the lock cannot be read, or such a package has no sha256 (nothing could be cached by it).
    """
    found = []
    for package in _read(lock).get("packages", []):
        sdist = package.get("sdist")
        if not isinstance(sdist, Mapping) or package.get("wheels"):
            continue
        location = sdist.get("url") or sdist.get("path")
        sha256 = (sdist.get("hashes") or {}).get("sha256")
        if not isinstance(location, str) or not isinstance(sha256, str):
            raise InstallError(f"the lock {lock} gives {package.get('name')} {package.get('version')} as a source "
                               f"distribution without a location and sha256; cannot build it")
        file_name = sdist.get("name") or unquote(urlsplit(location).path if "://" in location else location
                                                 ).replace("\\", "/").rsplit("/", 1)[-1]
        found.append(LockedSdist(str(package.get("name")), str(package.get("version")), file_name, location,
                                 sha256.lower()))
    return found


def built_wheel(cache: Cache, sdist: LockedSdist, *, lock_dir: Path, triple: str, python_version: str,
                downloader: Downloader, build: Callable[[Path, Path], None]) -> tuple[Path, bool]:
    """The wheel built from ``sdist`` for ``triple``'s runtime of ``python_version``, from the cache or built now.

    The cache entry is ``built-wheels/<triple>/<python_version>/<sdist sha256>/<wheel>``, published atomically
    under the entry's lock, so concurrent builds build it once.

    Args:
        lock_dir: the directory a relative sdist path is relative to (the lock's).
        downloader: fetches an sdist the lock names by ``http(s)`` URL (checked against the lock's sha256).
        build: ``build(sdist file, output directory)`` writes exactly one wheel into the output directory
            (``uv build --wheel`` with the target runtime), raising :class:`InstallError` on failure.

    Returns:
        ``(wheel, reused)``: the cached wheel file, and whether it was there already.

    Raises:
        InstallError: the sdist cannot be had (download failed, sha256 differs), or ``build`` failed or wrote no
            single wheel.
    """
    entry = cache.built_wheel_dir(triple, python_version, sdist.sha256)
    wheels = sorted(entry.glob("*.whl")) if entry.is_dir() else []
    if wheels:
        return wheels[0], True
    with cache.lock(entry):
        wheels = sorted(entry.glob("*.whl")) if entry.is_dir() else []
        if wheels:
            return wheels[0], True
        with cache.publishing_directory(entry) as work:
            source = _sdist_file(sdist, lock_dir, work / "sdist", downloader)
            (work / "wheel").mkdir()
            build(source, work / "wheel")
            written = list((work / "wheel").glob("*.whl"))
            if len(written) != 1:
                raise InstallError(f"building {sdist.name} {sdist.version} from {sdist.file_name} wrote "
                                   f"{len(written)} wheels instead of one")
            (built,) = written
            shutil.move(str(built), work / built.name)
            shutil.rmtree(work / "wheel")
            shutil.rmtree(work / "sdist", ignore_errors=True)  # a download; a local sdist is used in place
        return next(entry.glob("*.whl")), False


def lock_with_built_wheels(lock: Path, built: Mapping[str, Path], destination: Path) -> Path:
    """Write a copy of ``lock`` to ``destination`` in which every package named in ``built`` (lock name -> wheel
    file) offers that wheel (by absolute path, with its sha256) and no sdist; returns ``destination``."""
    import tomli_w

    document = _read(lock)
    for package in document.get("packages", []):
        wheel = built.get(str(package.get("name")))
        if wheel is not None:
            package.pop("sdist", None)
            package["wheels"] = [{"name": wheel.name, "path": str(wheel), "hashes": {"sha256": sha256_of(wheel)}}]
    destination.write_text(tomli_w.dumps(document), encoding="utf-8")
    return destination


def _read(lock: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InstallError(f"cannot read the lock file {lock}: {error}") from None


def _sdist_file(sdist: LockedSdist, lock_dir: Path, directory: Path, downloader: Downloader) -> Path:
    """``sdist`` as a local file whose sha256 is the lock's (a local file is used in place)."""
    location = sdist.location
    if location.startswith("file:"):
        local: Path | None = Path(url2pathname(urlsplit(location).path))
    elif "://" not in location:
        local = lock_dir / location
    else:
        local = None
    if local is not None:
        if not local.is_file() or sha256_of(local) != sdist.sha256:
            raise InstallError(f"the source distribution of {sdist.name} {sdist.version} ({local}) is missing or "
                               f"its sha256 is not the lock's {sdist.sha256}")
        return local
    directory.mkdir()
    target = directory / sdist.file_name
    try:
        downloader.download(location, target, sha256=sdist.sha256, label=sdist.file_name)
    except DownloadError as error:
        raise InstallError(f"cannot download the source distribution of {sdist.name} {sdist.version}: {error}"
                           ) from None
    return target


__all__ = ["LockedSdist", "built_wheel", "lock_with_built_wheels", "sdist_only_packages"]
