"""Pushing an OCI image layout archive (image spec ``image-layout.md``: ``oci-layout``, ``index.json``,
``blobs/sha256/<hex>``) to a registry, read member by member from the tar without extracting it.

The layout's ``index.json`` lists one image (an index, or a single manifest) named by its
``org.opencontainers.image.ref.name`` annotation, and any number of referrer manifests (an SBOM: an image manifest
with ``artifactType`` and a ``subject``). The push follows the distribution spec's order (content before what
refers to it, https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push): every blob (skipped
when a HEAD finds it), the platform manifests by digest, the index under each tag, the referrer manifests by
digest. A registry that does not index referrers (no ``OCI-Subject`` header in the answer to a manifest with a
``subject``, as distribution 2.8) gets the "referrers tag schema" fallback: an image index tagged
``sha256-<hex of the subject digest>`` that lists the referrers' descriptors with their ``artifactType``, merged
with what the tag already lists (distribution-spec v1.1, "Referrers Tag Schema",
https://github.com/opencontainers/distribution-spec/blob/main/spec.md#referrers-tag-schema).

Every blob's sha256 and size are checked while it is read from the archive: a blob that does not match its name
raises :class:`~hatch_pbs.errors.ImageError` (its upload is abandoned; the registry checks the digest too).
"""

from __future__ import annotations

import functools
import hashlib
import json
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatch_pbs import interrupts
from hatch_pbs.errors import ImageError
from hatch_pbs.registry.client import RegistryClient
from hatch_pbs.registry.descriptors import (
    DIGEST_PATTERN,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    Descriptor,
    json_object,
)
from hatch_pbs.registry.reference import ImageReference

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CHUNK_SIZE = 1 << 20  # bytes
#: The largest manifest read from an archive, in bytes.
MAX_MANIFEST_SIZE = 4 << 20


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_layout` did.

    Attributes:
        digest: the pushed image's digest (the index's, ``sha256:...``).
        tags: the tags it was pushed under, in order.
        blobs_uploaded, blobs_skipped: blobs sent, and blobs the registry held already.
        bytes_uploaded: the bytes of the blob bodies sent.
        manifests_pushed: manifests and indexes stored (each tag counts, as does the referrers fallback tag).
    """

    digest: str
    tags: tuple[str, ...]
    blobs_uploaded: int
    blobs_skipped: int
    bytes_uploaded: int
    manifests_pushed: int


@dataclass
class _Plan:
    """What to push: manifests children first (descriptor, content), and the blobs they name."""

    manifests: list[tuple[Descriptor, bytes]] = field(default_factory=list)
    blobs: dict[str, Descriptor] = field(default_factory=dict)


class LayoutArchive:
    """An OCI layout tar open for reading (a context manager).

    Raises:
        ImageError: (on opening) the file is not a tar or lacks ``index.json``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._tar = tarfile.open(self.path)  # closed by close()
        except (OSError, tarfile.TarError) as error:
            raise ImageError(f"cannot read the OCI layout archive {self.path}: {error}") from None
        self._members = {member.name.lstrip("./"): member for member in self._tar.getmembers() if member.isfile()}
        self.index = self._json("index.json", f"{self.path}: index.json")

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> LayoutArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def entries(self) -> list[Descriptor]:
        """The descriptors ``index.json`` lists.

        Raises:
            ImageError: ``manifests`` is missing or holds a malformed descriptor.
        """
        manifests = self.index.get("manifests")
        if not isinstance(manifests, list) or not manifests:
            raise ImageError(f"the OCI layout archive {self.path} lists no manifests in its index.json")
        return [self._descriptor(entry, "index.json") for entry in manifests]

    def manifest(self, descriptor: Descriptor) -> tuple[bytes, dict[str, Any]]:
        """The bytes (verified) and parsed JSON of the manifest or index ``descriptor`` names."""
        if descriptor.size > MAX_MANIFEST_SIZE:
            raise ImageError(f"{self.path}: the manifest {descriptor.digest} is larger than {MAX_MANIFEST_SIZE} "
                             f"bytes")
        content = b"".join(self.chunks(descriptor))
        return content, self._json_of(content, f"{self.path}: the manifest {descriptor.digest}")

    def chunks(self, descriptor: Descriptor) -> Iterator[bytes]:
        """The bytes of the blob ``descriptor`` names, in chunks, checked against its digest and size at the end.

        Raises:
            ImageError: the blob is missing, or its bytes do not match (raised after the last chunk).
        """
        source = self._tar.extractfile(self._member(descriptor.digest))
        assert source is not None  # a regular file's member
        hasher, size = hashlib.sha256(), 0
        with source:
            for chunk in iter(lambda: source.read(CHUNK_SIZE), b""):
                interrupts.check()
                hasher.update(chunk)
                size += len(chunk)
                yield chunk
        if f"sha256:{hasher.hexdigest()}" != descriptor.digest or size != descriptor.size:
            raise ImageError(f"the OCI layout archive {self.path} is damaged: blobs/sha256/{descriptor.digest[7:]} "
                             f"({size} bytes, sha256:{hasher.hexdigest()}) does not match its descriptor "
                             f"({descriptor.size} bytes, {descriptor.digest})")

    def _member(self, digest: str) -> tarfile.TarInfo:
        name = f"blobs/sha256/{digest[7:]}"
        if name not in self._members:
            raise ImageError(f"the OCI layout archive {self.path} lacks {name}")
        return self._members[name]

    def _json(self, name: str, where: str) -> dict[str, Any]:
        if name not in self._members:
            raise ImageError(f"{self.path} is not an OCI image layout archive: it has no {name}")
        source = self._tar.extractfile(self._members[name])
        assert source is not None
        with source:
            return self._json_of(source.read(MAX_MANIFEST_SIZE + 1), where)

    @staticmethod
    def _json_of(content: bytes, where: str) -> dict[str, Any]:
        return json_object(content, where, ImageError)

    def _descriptor(self, document: Any, where: str) -> Descriptor:
        if not isinstance(document, dict) or not DIGEST_PATTERN.fullmatch(str(document.get("digest"))) \
                or not isinstance(document.get("size"), int) or not isinstance(document.get("mediaType"), str):
            raise ImageError(f"{self.path}: {where} holds a malformed descriptor {document!r}")
        annotations = document.get("annotations")
        return Descriptor(document["mediaType"], document["digest"], document["size"],
                          dict(annotations) if isinstance(annotations, dict) else None)

    def collect(self, descriptor: Descriptor, plan: _Plan) -> dict[str, Any]:
        """Add the manifest or index ``descriptor`` names, and all it names, to ``plan`` (children first)."""
        content, document = self.manifest(descriptor)
        where = f"the manifest {descriptor.digest}"
        if descriptor.media_type in INDEX_MEDIA_TYPES:
            for child in document.get("manifests") or []:
                child_descriptor = self._descriptor(child, where)
                if all(known.digest != child_descriptor.digest for known, _ in plan.manifests):
                    self.collect(child_descriptor, plan)
        elif descriptor.media_type in MANIFEST_MEDIA_TYPES:
            for blob in [document.get("config"), *(document.get("layers") or [])]:
                blob_descriptor = self._descriptor(blob, where)
                plan.blobs.setdefault(blob_descriptor.digest, blob_descriptor)
        else:
            raise ImageError(f"{self.path}: {where} has the unsupported media type {descriptor.media_type!r}")
        plan.manifests.append((descriptor, content))
        return document


def push_layout(archive: Path, reference: ImageReference, *, tags: Sequence[str] = (), timeout: float = 30.0,
                report: Callable[[str], None] = lambda line: None) -> PushResult:
    """Push the OCI layout ``archive`` to the repository of ``reference``, tagged with the reference's own tag (or,
    when it has none, the layout's ``org.opencontainers.image.ref.name``) and ``tags``; ``timeout`` in seconds;
    ``report`` gets one line per blob uploaded.

    Raises:
        ImageError: the archive is malformed, lists no image, names no tag, or holds a blob that does not match.
        RegistryError: the registry refuses a request or authentication fails. OfflineError: never (no offline).
    """
    with LayoutArchive(archive) as layout, RegistryClient(timeout=timeout) as client:
        images = [entry for entry in layout.entries() if entry.media_type in INDEX_MEDIA_TYPES
                  or not _is_referrer(layout, entry)]
        if len(images) != 1:
            raise ImageError(f"the OCI layout archive {archive} must list exactly one image in its index.json, "
                             f"not {len(images)}")
        image = images[0]
        plan = _Plan()
        layout.collect(image, plan)
        referrers = _Plan()
        for entry in layout.entries():
            if entry.digest != image.digest:
                layout.collect(entry, referrers)
        chosen_tags = _tags(image, reference, tags, archive)
        counts = _push_blobs(client, layout, reference, {**plan.blobs, **referrers.blobs}, report)
        pushed = 0
        for descriptor, content in plan.manifests[:-1]:
            client.put_manifest(reference, descriptor.digest, content, descriptor.media_type)
            pushed += 1
        for tag in chosen_tags:
            client.put_manifest(reference, tag, plan.manifests[-1][1], image.media_type)
            pushed += 1
        pushed += _push_referrers(client, reference, referrers)
    return PushResult(image.digest, chosen_tags, counts[0], counts[1], counts[2], pushed)


def _is_referrer(layout: LayoutArchive, entry: Descriptor) -> bool:
    return entry.media_type in MANIFEST_MEDIA_TYPES and "subject" in layout.manifest(entry)[1]


def _tags(image: Descriptor, reference: ImageReference, tags: Sequence[str], archive: Path) -> tuple[str, ...]:
    """The reference's own tag, else the layout's (its ``ref.name``, the project's version); then ``tags``."""
    primary = reference.tag or (image.annotations or {}).get(REF_NAME_ANNOTATION)
    if primary is None and not tags:
        raise ImageError(f"no tag to push {archive} under: give one in the reference or with --tag (the "
                         f"layout's image has no {REF_NAME_ANNOTATION} annotation)")
    wanted = [reference.with_tag(tag).tag or tag for tag in ([primary] if primary else []) + list(tags)]
    return tuple(dict.fromkeys(wanted))


def _push_blobs(client: RegistryClient, layout: LayoutArchive, reference: ImageReference,
                blobs: Mapping[str, Descriptor], report: Callable[[str], None]) -> tuple[int, int, int]:
    """Upload the blobs the registry lacks; ``(uploaded, skipped, bytes uploaded)``."""
    uploaded = skipped = sent = 0
    for descriptor in blobs.values():
        if client.blob_exists(reference, descriptor.digest, push=True):
            skipped += 1
            continue
        client.upload_blob(reference, descriptor.digest, descriptor.size, functools.partial(layout.chunks, descriptor))
        uploaded += 1
        sent += descriptor.size
        report(f"pushed {reference.repository} {descriptor.digest[7:19]} {descriptor.size / 1e6:.1f} MB")
    return uploaded, skipped, sent


def _push_referrers(client: RegistryClient, reference: ImageReference, referrers: _Plan) -> int:
    """Push the referrer manifests by digest, then the tag fallback for subjects the registry does not index;
    the number of manifests stored."""
    unindexed: dict[str, list[dict[str, Any]]] = {}
    for descriptor, content in referrers.manifests:
        answer = client.put_manifest(reference, descriptor.digest, content, descriptor.media_type)
        document = json.loads(content)
        subject = (document.get("subject") or {}).get("digest")
        if subject and answer.subject != subject:
            entry = {**descriptor.to_json(), "artifactType": document.get("artifactType")
                     or (document.get("config") or {}).get("mediaType")}
            if document.get("annotations"):
                entry["annotations"] = document["annotations"]
            unindexed.setdefault(subject, []).append(entry)
    for subject, entries in unindexed.items():
        _update_fallback_tag(client, reference, subject, entries)
    return len(referrers.manifests) + len(unindexed)


def _update_fallback_tag(client: RegistryClient, reference: ImageReference, subject: str,
                         entries: Sequence[Mapping[str, Any]]) -> None:
    """Merge ``entries`` into the index tagged ``sha256-<hex>`` (the referrers tag schema) and push it."""
    tag = subject.replace(":", "-")
    existing = client.find_manifest(reference, tag)
    listed: list[Mapping[str, Any]] = []
    if existing is not None:
        try:
            listed = [entry for entry in json.loads(existing.content).get("manifests") or []
                      if isinstance(entry, dict)]
        except (ValueError, AttributeError):
            listed = []
    digests = {entry["digest"] for entry in entries}
    merged = [entry for entry in listed if entry.get("digest") not in digests] + list(entries)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": merged}
    client.put_manifest(reference, tag, json.dumps(index, sort_keys=True, separators=(",", ":")).encode(),
                        OCI_INDEX)


__all__ = ["LayoutArchive", "PushResult", "push_layout"]
