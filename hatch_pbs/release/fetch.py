"""The fetch stage: release metadata and assets, through the cache.

- :func:`latest_release_tag` reads ``latest-release.json`` (docs/pbs-facts.md: ``{"version": 1, "tag": ...}``).
- :func:`load_catalogue` gets a release's ``SHA256SUMS``, cached per mirror and tag (a tag never changes).
- :func:`fetch_asset` returns the cached archive, downloading and verifying it first when needed.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from hatch_pbs.errors import DownloadError, OfflineError, ResolveError, os_error_cause
from hatch_pbs.release.assets import (
    GITHUB_DOWNLOAD_PREFIX,
    LATEST_RELEASE_URL,
    release_file_url,
)
from hatch_pbs.release.cache import Cache, sha256_of
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.resolve import ReleaseCatalogue, ResolvedAsset
from hatch_pbs.release.sums import SUMS_FILE_NAME


def latest_release_url(mirror: str) -> str:
    """Where ``latest-release.json`` is read from: PBS's ``latest-release`` branch for the default mirror,
    ``{mirror}/latest-release.json`` for any other mirror."""
    return LATEST_RELEASE_URL if mirror == GITHUB_DOWNLOAD_PREFIX else f"{mirror}/latest-release.json"


def latest_release_tag(downloader: Downloader, mirror: str) -> str:
    """The newest release tag named by ``latest-release.json``.

    Raises:
        ResolveError: the file is not the documented JSON shape.
        DownloadError, OfflineError: it could not be fetched (``release = "latest"`` needs the network).
    """
    url = latest_release_url(mirror)
    try:
        body = downloader.read_bytes(url, limit=1 << 20)
    except OfflineError:
        raise OfflineError('release = "latest" needs the network to read latest-release.json; in offline mode '
                           'pin a release tag (option `release`)') from None
    try:
        tag = json.loads(body)["tag"]
    except (ValueError, KeyError, TypeError):
        raise ResolveError(f"{url} is not a latest-release.json document (expected a JSON object with \"tag\")") \
            from None
    if not isinstance(tag, str) or not (tag.isdigit() and len(tag) == 8):
        raise ResolveError(f"{url} names an invalid release tag: {tag!r}")
    return tag


def load_catalogue(cache: Cache, downloader: Downloader, mirror: str, release: str, *,
                   refresh: bool = False) -> ReleaseCatalogue:
    """The release's catalogue, from the cache or ``{mirror}/{release}/SHA256SUMS``.

    ``refresh=True`` reads ``SHA256SUMS`` from the mirror again and replaces the cached copy (a mirror can grow:
    ``hatch-pbs mirror`` adds target triples, or a wrong line gets fixed); in offline mode it keeps the cached
    copy. Callers refresh once, on a miss or a sha256 mismatch (:func:`catalogue_is_cached`).

    Raises:
        ResolveError: the release has no (valid) ``SHA256SUMS``: releases before 20220227 have none.
        DownloadError, OfflineError: it could not be fetched and is not cached, or not written into the cache.
    """
    entry = cache.catalogue_path(mirror, release)
    if not entry.is_file() or (refresh and not downloader.offline):
        url = release_file_url(mirror, release, SUMS_FILE_NAME)
        try:
            body = downloader.read_bytes(url)
        except OfflineError:
            command = _fetch_command(cache, mirror, release)
            raise OfflineError(f"the catalogue (SHA256SUMS) of release {release} is not cached ({cache.root}) and "
                               f"offline mode (HATCH_PBS_OFFLINE) forbids downloading {url}; run `{command}` with the "
                               f"build's --python-version, --target and --flavor while online") from None
        except DownloadError as error:
            raise DownloadError(f"cannot read the catalogue of release {release}: {error}") from None
        catalogue = ReleaseCatalogue.parse(release, body.decode("utf-8", "replace"))
        try:
            with cache.lock(entry), cache.publishing(entry) as temporary:  # replaces an older copy
                temporary.write_bytes(body)
        except OSError as error:  # a full disk, a read-only cache directory
            raise DownloadError(f"cannot cache the catalogue (SHA256SUMS) of release {release} as {entry}: "
                                f"{os_error_cause(error, entry)}") from None
        return catalogue
    return ReleaseCatalogue.parse(release, entry.read_text(encoding="utf-8"))


def catalogue_is_cached(cache: Cache, downloader: Downloader, mirror: str, release: str) -> bool:
    """Whether re-reading the release's catalogue could change it: a cached ``SHA256SUMS`` exists (it may be
    older than the mirror's) and the build is not offline."""
    return not downloader.offline and cache.catalogue_path(mirror, release).is_file()


def fetch_asset(cache: Cache, downloader: Downloader, resolved: ResolvedAsset) -> Path:
    """Path of the verified archive of ``resolved`` in the cache; downloaded first if missing.

    A warm cache makes no request, but its entry is hashed again: an entry that no longer matches its sha256
    (a damaged disk, a file edited by hand) is removed and downloaded anew, never used. Concurrent callers for the
    same asset wait for each other (one download).

    Raises:
        ChecksumError: the download does not match the catalogue's sha256 (nothing is cached).
        DownloadError, OfflineError: it could not be downloaded, or not written into the cache (a full file system
            is named by its mount point).
    """
    entry = cache.asset_path(resolved.sha256, resolved.asset.file_name)
    if entry.is_file() and sha256_of(entry) == resolved.sha256:
        return entry
    try:
        return _download_into(cache, downloader, resolved, entry)
    except OSError as error:  # the cache's own writes (lock file, directories, fsync, rename); a full disk
        raise DownloadError(f"cannot cache {resolved.asset.file_name} as {entry}: {os_error_cause(error, entry)}") \
            from None


def _download_into(cache: Cache, downloader: Downloader, resolved: ResolvedAsset, entry: Path) -> Path:
    """:func:`fetch_asset` past its warm-cache check: download ``resolved`` into the cache ``entry``, its lock held."""
    with cache.lock(entry):
        if entry.is_file():
            if sha256_of(entry) == resolved.sha256:
                return entry
            entry.unlink()  # damaged: its bytes are not the asset's any more
        with cache.publishing(entry) as temporary:
            try:
                downloader.download(resolved.url, temporary, sha256=resolved.sha256, label=resolved.asset.file_name)
            except OfflineError:
                asset = resolved.asset
                tail = release_file_url("", asset.release, asset.file_name)  # "/{release}/{file name}"
                mirror = resolved.url[:-len(tail)] if resolved.url.endswith(tail) else GITHUB_DOWNLOAD_PREFIX
                command = _fetch_command(cache, mirror, asset.release, "--python-version", asset.python_version,
                                         "--target", asset.triple, "--flavor", asset.flavor)
                raise OfflineError(
                    f"{asset.file_name} is not in the cache ({cache.root}) and offline mode (HATCH_PBS_OFFLINE) "
                    f"forbids downloading it; run `{command}` while online") from None
    return entry


def _fetch_command(cache: Cache, mirror: str, release: str, *options: str) -> str:
    """The ``hatch-pbs fetch`` command line that fills this cache from this mirror (shell-quoted)."""
    words = ["hatch-pbs", "fetch", "--release", release, *options]
    if mirror != GITHUB_DOWNLOAD_PREFIX:
        words += ["--mirror", mirror]
    return shlex.join([*words, "--cache-dir", str(cache.root)])


__all__ = ["catalogue_is_cached", "fetch_asset", "latest_release_tag", "load_catalogue"]
