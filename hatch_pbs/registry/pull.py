"""Pulling a base image's per-platform manifests, configs and layers into the cache.

The cache is an OCI blob store (image spec ``image-layout.md``): ``<cache_dir>/oci/blobs/sha256/<hex>`` holds every
manifest, index, config and layer, each published atomically once its sha256 matched, and checked again whenever a
pull finds it (a damaged blob is downloaded again). ``<cache_dir>/oci/refs/<registry>/<repository>/<tag>.json``
records what a tag resolved to (``{"digest", "mediaType"}``), so that an offline pull of a tag works from the cache.
Online, a tag is always resolved again (tags move); blobs found in the cache are never downloaded twice.

Platform selection (image spec ``image-index.md``, ``platform``): the index entry whose ``os`` and ``architecture``
are the wanted ones; for ``arm64`` the variant ``v8`` or none is preferred; entries of platform ``unknown/unknown``
(BuildKit's attestation manifests) are never chosen. A single image manifest serves the one platform its config
names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from hatch_pbs import interrupts
from hatch_pbs.atomic import write_file
from hatch_pbs.errors import OfflineError, RegistryError
from hatch_pbs.registry.client import FetchedManifest, RegistryClient
from hatch_pbs.registry.descriptors import (
    DIGEST_PATTERN,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    json_object,
)
from hatch_pbs.registry.reference import ImageReference

#: Seconds a pull waits for another build downloading the same blob.
LOCK_TIMEOUT = 600.0
#: Bytes read per step when hashing a cached blob.
CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class PulledImage:
    """One platform's image of a pulled reference, its blobs in the cache.

    Attributes:
        reference: the reference pulled (as given: its tag and/or digest).
        digest: the digest of this platform's image manifest (``sha256:...``).
        platform: the OCI platform (``{"os": "linux", "architecture": "arm64", "variant": "v8"}``).
        manifest: the parsed image manifest.
        config: the parsed image config (``config.json`` of the image spec).
        config_descriptor: the config's descriptor, from the manifest.
        layers: the layers' descriptors, base first.
        blob_directory: the cache's ``oci/blobs/sha256`` directory (see :meth:`blob_path`).
    """

    reference: ImageReference
    digest: str
    platform: dict[str, str]
    manifest: dict[str, Any]
    config: dict[str, Any]
    config_descriptor: Descriptor
    layers: tuple[Descriptor, ...]
    blob_directory: Path = field(kw_only=True)

    def blob_path(self, digest: str) -> Path:
        """The cached file of the blob ``digest`` (``sha256:<hex>``): ``<cache_dir>/oci/blobs/sha256/<hex>``."""
        return self.blob_directory / digest.split(":", 1)[1]


class BlobStore:
    """The cache's OCI blob store and tag records below ``root`` (``<cache_dir>/oci``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blob_directory = self.root / "blobs" / "sha256"
        self._verified: set[str] = set()

    def path(self, digest: str) -> Path:
        """The file of the blob ``digest``.

        Raises:
            RegistryError: ``digest`` is not ``sha256:<64 hex digits>``.
        """
        if not DIGEST_PATTERN.fullmatch(digest):
            raise RegistryError(f"unsupported digest {digest!r} (only sha256:<64 hex digits> is supported)")
        return self.blob_directory / digest[7:]

    def holds(self, digest: str) -> bool:
        """Whether the blob is cached and its bytes hash to ``digest`` (checked once per store)."""
        if digest in self._verified:
            return True
        path = self.path(digest)
        try:
            with path.open("rb") as source:
                hasher = hashlib.sha256()
                for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
                    interrupts.check()
                    hasher.update(chunk)
        except OSError:
            return False
        if f"sha256:{hasher.hexdigest()}" != digest:
            return False
        self._verified.add(digest)
        return True

    def read(self, digest: str) -> bytes | None:
        """The bytes of the cached blob ``digest`` when they match it, else ``None``."""
        return self.path(digest).read_bytes() if self.holds(digest) else None

    def write(self, digest: str, content: bytes) -> None:
        """Publish ``content`` (already verified to hash to ``digest``) as the blob ``digest``."""
        write_file(self.path(digest), content)
        self._verified.add(digest)

    def fetch(self, client: RegistryClient, reference: ImageReference, digest: str) -> int | None:
        """Download the blob ``digest`` unless the cache holds it (under a lock: one download per blob at a time).

        Returns:
            The bytes downloaded, or ``None`` when the blob was cached.

        Raises:
            RegistryError: as :meth:`RegistryClient.download_blob`. OfflineError: offline and not cached.
        """
        if self.holds(digest):
            return None
        lock_path = self.root / "locks" / f"{digest[7:]}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path))
        interrupts.acquire(lock, LOCK_TIMEOUT)
        try:
            if self.holds(digest):
                return None
            size = client.download_blob(reference, digest, self.path(digest))
            self._verified.add(digest)
            return size
        finally:
            lock.release()

    def tag_record(self, reference: ImageReference) -> Path:
        """``<root>/refs/<registry>/<repository>/<tag>.json`` (a registry's ``:port`` as ``_port``)."""
        return self.root / "refs" / reference.registry.replace(":", "_") / reference.repository / \
            f"{reference.tag}.json"


def pull_image(reference: ImageReference, platforms: Sequence[tuple[str, str]], *, cache_dir: Path,
               offline: bool = False, timeout: float = 30.0,
               report: Callable[[str], None] = lambda line: None) -> dict[tuple[str, str], PulledImage]:
    """Pull the images of ``reference`` for ``platforms`` (``(os, architecture)`` pairs such as
    ``("linux", "arm64")``) into ``cache_dir``; ``timeout`` is in seconds; ``report`` gets one line per blob
    downloaded (``pulled library/debian 1a2b3c4d5e6f 27.1 MB``).

    Returns:
        ``{(os, architecture): PulledImage}`` for every wanted platform.

    Raises:
        RegistryError: a request fails, a digest does not match, the reference is not an image (schema 1, an
            artifact), or it has no image for a wanted platform (the message lists the platforms it has).
        OfflineError: ``offline`` and the cache lacks the tag's resolution or a blob.
    """
    store = BlobStore(Path(cache_dir) / "oci")
    with RegistryClient(timeout=timeout, offline=offline) as client:
        top = _resolve(client, store, reference, offline)
        chosen = _choose(client, store, reference, top, platforms)
        return {wanted: _pull_platform(client, store, reference, manifest, platform, report)
                for wanted, (manifest, platform) in chosen.items()}


def _resolve(client: RegistryClient, store: BlobStore, reference: ImageReference, offline: bool) -> FetchedManifest:
    """The manifest or index the reference names: by digest from the cache or the registry; a tag from the
    registry (recorded), or offline from its record."""
    if reference.digest is not None:
        return _manifest_by_digest(client, store, reference, reference.digest, None)
    record = store.tag_record(reference)
    if offline:
        try:
            recorded = json.loads(record.read_text(encoding="utf-8"))
            digest, media_type = str(recorded["digest"]), str(recorded["mediaType"])
        except (OSError, ValueError, KeyError, TypeError):
            raise OfflineError(f"the image {reference} is not in the cache ({record} is missing or unreadable) and "
                               f"offline mode (HATCH_PBS_OFFLINE) forbids asking the registry; pull it once while "
                               f"online") from None
        return _manifest_by_digest(client, store, reference, digest, media_type)
    fetched = client.get_manifest(reference, reference.tag)
    store.write(fetched.digest, fetched.content)
    media_type = fetched.media_type or _media_type_of(_parse(fetched.content, reference, fetched.digest))
    write_file(record, json.dumps({"digest": fetched.digest, "mediaType": media_type}, sort_keys=True).encode())
    return FetchedManifest(fetched.content, media_type, fetched.digest)


def _manifest_by_digest(client: RegistryClient, store: BlobStore, reference: ImageReference, digest: str,
                        media_type: str | None) -> FetchedManifest:
    content = store.read(digest)
    if content is None:
        fetched = client.get_manifest(reference, digest)
        store.write(digest, fetched.content)
        content, media_type = fetched.content, media_type or fetched.media_type
    return FetchedManifest(content, media_type or _media_type_of(_parse(content, reference, digest)), digest)


def _parse(content: bytes, reference: ImageReference, digest: str) -> dict[str, Any]:
    return json_object(content, f"the manifest {digest} of {reference}", RegistryError)


def _media_type_of(document: Mapping[str, Any]) -> str:
    """A manifest's media type from its own ``mediaType``, else from its shape (an OCI index has ``manifests``)."""
    declared = document.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def _platform_text(platform: Mapping[str, Any]) -> str:
    parts = [str(platform.get("os", "?")), str(platform.get("architecture", "?"))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def _choose(client: RegistryClient, store: BlobStore, reference: ImageReference, top: FetchedManifest,
            platforms: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[FetchedManifest, dict[str, str]]]:
    """The image manifest (and its platform) for each wanted platform."""
    document = _parse(top.content, reference, top.digest)
    if top.media_type in MANIFEST_MEDIA_TYPES:
        platform = _config_platform(client, store, reference, document, top.digest)
        offered = {(platform["os"], platform["architecture"]): (top, platform)}
        _check_offered(reference, platforms, [platform], offered)
        return {wanted: offered[wanted] for wanted in platforms}
    if top.media_type not in INDEX_MEDIA_TYPES:
        raise RegistryError(f"{reference} is not a container image (its manifest has the media type "
                            f"{top.media_type!r}; schema 1 manifests are not supported)")
    entries = [entry for entry in document.get("manifests") or [] if isinstance(entry, dict)
               and isinstance(entry.get("platform"), dict) and entry["platform"].get("os") != "unknown"]
    best = {wanted: entry for wanted in platforms if (entry := _best_entry(entries, wanted)) is not None}
    _check_offered(reference, platforms, [entry["platform"] for entry in entries], best)
    chosen = {}
    for wanted, entry in best.items():
        descriptor = Descriptor.from_json(entry, f"the index {top.digest} of {reference}")
        manifest = _manifest_by_digest(client, store, reference, descriptor.digest, descriptor.media_type)
        platform = {key: value for key, value in entry["platform"].items() if isinstance(value, str)}
        chosen[wanted] = (manifest, platform)
    return chosen


def _best_entry(entries: Sequence[Mapping[str, Any]], wanted: tuple[str, str]) -> Mapping[str, Any] | None:
    """The index entry for ``(os, architecture)``: for arm64 the variant v8 or none before others."""
    matching = [entry for entry in entries
                if (entry["platform"].get("os"), entry["platform"].get("architecture")) == wanted]
    if wanted[1] == "arm64":
        matching.sort(key=lambda entry: entry["platform"].get("variant") not in (None, "", "v8"))
    return matching[0] if matching else None


def _check_offered(reference: ImageReference, platforms: Sequence[tuple[str, str]],
                   offered: Sequence[Mapping[str, Any]], chosen: Mapping[tuple[str, str], object]) -> None:
    missing = [f"{os_name}/{architecture}" for os_name, architecture in platforms
               if (os_name, architecture) not in chosen]
    if missing:
        has = ", ".join(_platform_text(platform) for platform in offered) or "none"
        raise RegistryError(f"the image {reference} has no image for {', '.join(missing)}; it has: {has}")


def _config_platform(client: RegistryClient, store: BlobStore, reference: ImageReference,
                     manifest: Mapping[str, Any], digest: str) -> dict[str, str]:
    """The platform a single image manifest's config names (its ``os``, ``architecture``, ``variant``)."""
    config_descriptor = Descriptor.from_json(manifest.get("config"), f"the manifest {digest} of {reference}")
    store.fetch(client, reference, config_descriptor.digest)
    config = _parse(store.path(config_descriptor.digest).read_bytes(), reference, config_descriptor.digest)
    return {key: str(config[key]) for key in ("os", "architecture", "variant") if config.get(key)}


def _pull_platform(client: RegistryClient, store: BlobStore, reference: ImageReference, manifest: FetchedManifest,
                   platform: dict[str, str], report: Callable[[str], None]) -> PulledImage:
    """Download one platform's config and layers (those not cached) and describe them."""
    where = f"the manifest {manifest.digest} of {reference}"
    if manifest.media_type not in MANIFEST_MEDIA_TYPES:
        raise RegistryError(f"{where} for {_platform_text(platform)} is not an image manifest "
                            f"({manifest.media_type!r})")
    document = _parse(manifest.content, reference, manifest.digest)
    config_descriptor = Descriptor.from_json(document.get("config"), where)
    layers = tuple(Descriptor.from_json(layer, where) for layer in document.get("layers") or [])
    for descriptor in (config_descriptor, *layers):
        size = store.fetch(client, reference, descriptor.digest)
        if size is not None:
            report(f"pulled {reference.repository} {descriptor.digest[7:19]} {size / 1e6:.1f} MB")
    config = _parse(store.path(config_descriptor.digest).read_bytes(), reference, config_descriptor.digest)
    return PulledImage(reference, manifest.digest, platform, document, config, config_descriptor, layers,
                       blob_directory=store.blob_directory)


__all__ = ["BlobStore", "Descriptor", "PulledImage", "pull_image"]
