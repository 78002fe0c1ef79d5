"""Content descriptors and the manifest media types a registry serves.

Descriptor fields: the OCI image spec, ``descriptor.md`` (https://github.com/opencontainers/image-spec/blob/main/
descriptor.md). Docker's media types: https://distribution.github.io/distribution/spec/manifest-v2-2/.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hatch_pbs.errors import HatchPbsError, RegistryError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
#: Media types of documents listing per-platform manifests, and of single-image manifests.
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
#: The only digest form this client reads and writes (the image spec's registered ``sha256`` algorithm).
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
#: The ``Accept`` header of a manifest request: every type this client reads.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))


@dataclass(frozen=True)
class Descriptor:
    """A reference to content by digest.

    Attributes:
        media_type: the content's media type (``application/vnd.oci.image.layer.v1.tar+gzip``).
        digest: ``sha256:<64 hex digits>``.
        size: the content's length in bytes.
        annotations: the descriptor's annotations, or ``None``.
    """

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None

    @classmethod
    def from_json(cls, document: Any, where: str) -> Descriptor:
        """The descriptor in the JSON object ``document`` (``mediaType``, ``digest``, ``size``).

        Raises:
            RegistryError: a field is missing or of the wrong type; the message starts with ``where``.
        """
        try:
            media_type, digest, size = document["mediaType"], document["digest"], document["size"]
        except (KeyError, TypeError):
            raise RegistryError(f"{where}: a descriptor lacks mediaType, digest or size") from None
        if not (isinstance(media_type, str) and isinstance(digest, str) and isinstance(size, int)):
            raise RegistryError(f"{where}: a descriptor's mediaType, digest or size has the wrong type")
        if not DIGEST_PATTERN.fullmatch(digest):
            raise RegistryError(f"{where}: unsupported digest {digest!r} (only sha256 is supported)")
        annotations = document.get("annotations")
        return cls(media_type, digest, size, dict(annotations) if isinstance(annotations, dict) else None)

    def to_json(self) -> dict[str, Any]:
        """``{"mediaType", "digest", "size"}``, plus ``"annotations"`` when there are some."""
        document: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            document["annotations"] = dict(self.annotations)
        return document


def json_object(content: bytes, where: str, error: type[HatchPbsError]) -> dict[str, Any]:
    """``content`` parsed as a JSON object (a manifest, index or config); ``where`` names it in messages.

    Raises:
        error: ``content`` is not UTF-8 JSON, or not an object.
    """
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as problem:
        raise error(f"{where} is not valid JSON: {problem}") from None
    if not isinstance(document, dict):
        raise error(f"{where} is not a JSON object")
    return document


def sha256_digest(content: bytes) -> str:
    """``sha256:<hex>`` of ``content``."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


__all__ = ["DIGEST_PATTERN", "DOCKER_MANIFEST", "DOCKER_MANIFEST_LIST", "INDEX_MEDIA_TYPES", "MANIFEST_ACCEPT",
           "MANIFEST_MEDIA_TYPES", "OCI_INDEX", "OCI_MANIFEST", "Descriptor", "sha256_digest"]
