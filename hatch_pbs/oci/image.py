"""The JSON documents of an OCI image (image-spec v1.1, https://github.com/opencontainers/image-spec): the image
config, the image manifest, the image index and the SBOM referrer manifest, serialized canonically (sorted keys, no
spaces) so the same inputs give the same digests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from hatch_pbs.oci.layers import LAYER_MEDIA_TYPE, Layer
from hatch_pbs.release.triples import parse_triple

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
#: The empty descriptor's media type and content (image-spec ``manifest.md``, "Guidance for an Empty Descriptor").
EMPTY_MEDIA_TYPE, EMPTY_CONTENT = "application/vnd.oci.empty.v1+json", b"{}"
#: The SBOM's media type (CycloneDX JSON, https://cyclonedx.org/specification/overview/).
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
#: Docker's layer media types, with the OCI type of the same bytes (a base image from Docker Hub has them).
_DOCKER_LAYER_TYPES = {"application/vnd.docker.image.rootfs.diff.tar.gzip": LAYER_MEDIA_TYPE,
                       "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar"}
#: The annotation naming each image's target triple in the index (two triples may share a platform).
TARGET_ANNOTATION = "dev.hatch-pbs.target"
#: GOARCH names (the OCI platform ``architecture``) of the PBS architectures.
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7": "arm", "ppc64le": "ppc64le",
                  "s390x": "s390x", "riscv64": "riscv64"}
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Blob:
    """A content-addressed blob: ``media_type``, ``digest`` (``sha256:<hex>``) and ``size`` in bytes."""

    media_type: str
    digest: str
    size: int

    @classmethod
    def of(cls, media_type: str, content: bytes) -> Blob:
        return cls(media_type, f"sha256:{hashlib.sha256(content).hexdigest()}", len(content))

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """The OCI descriptor (``mediaType``, ``digest``, ``size``, plus ``extra`` fields such as ``platform``)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class ImageSettings:
    """What the image config sets over the base image's.

    Attributes:
        entrypoint: ``Entrypoint`` (absolute paths in the image); the base's ``Cmd`` is dropped, as Docker does
            for a new ``ENTRYPOINT``.
        path_entry: the directory put first in ``PATH`` (``<prefix>/bin``).
        workdir, user: ``WorkingDir`` and ``User`` (``user`` ``None``: the base image's).
        env: variables set over the base's, in order.
        labels: labels over the base's.
        created: the image's creation time, seconds since the Unix epoch (``SOURCE_DATE_EPOCH``).
    """

    entrypoint: Sequence[str]
    path_entry: str
    workdir: str
    user: str | None
    env: Mapping[str, str]
    labels: Mapping[str, str]
    created: int


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """``document`` as UTF-8 JSON with sorted keys and no insignificant spaces."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def timestamp(seconds: int) -> str:
    """RFC 3339 UTC time, e.g. ``"2024-05-01T12:00:00Z"``."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def platform_of(triple: str) -> dict[str, str]:
    """The OCI platform of a Linux target triple: ``{"os": "linux", "architecture": "amd64"}``, with ``variant``
    for CPU levels (``x86_64_v3``: ``v3``, as containerd matches them) and ARMv7 (``v7``).

    Raises:
        ValueError: not a Linux triple, or an architecture without an OCI name.
    """
    parsed = parse_triple(triple)
    if parsed.os != "linux" or parsed.base_arch not in _ARCHITECTURES:
        raise ValueError(f"{triple} has no OCI platform (only Linux targets get images)")
    platform = {"os": "linux", "architecture": _ARCHITECTURES[parsed.base_arch]}
    level = re.search(r"_(v\d)$", parsed.arch)
    if level:
        platform["variant"] = level.group(1)
    elif parsed.base_arch == "armv7":
        platform["variant"] = "v7"
    return platform


def merged_env(base_env: Sequence[str], settings: ImageSettings) -> list[str]:
    """The base image's ``Env`` (``NAME=value`` lines) with ``settings.env`` over it and ``settings.path_entry``
    first in ``PATH`` (once)."""
    variables = dict(line.partition("=")[::2] for line in base_env)
    variables.update(settings.env)
    path = [entry for entry in variables.get("PATH", _DEFAULT_PATH).split(":") if entry != settings.path_entry]
    variables["PATH"] = ":".join([settings.path_entry, *path])
    return [f"{name}={value}" for name, value in variables.items()]


def image_config(base_config: Mapping[str, Any], platform: Mapping[str, str], layers: Sequence[Layer],
                 settings: ImageSettings) -> dict[str, Any]:
    """The image config: the base image's, with the settings, the layers' ``diff_ids`` and one history entry
    per layer appended (image-spec ``config.md``)."""
    base_runtime = dict(base_config.get("config") or {})
    base_runtime.pop("Cmd", None)
    runtime = {**base_runtime, "Entrypoint": list(settings.entrypoint), "Env": merged_env(
        base_runtime.get("Env") or [], settings), "WorkingDir": settings.workdir,
        "Labels": {**(base_runtime.get("Labels") or {}), **settings.labels}}
    if settings.user is not None:
        runtime["User"] = settings.user
    created = timestamp(settings.created)
    history = [*(base_config.get("history") or []), *({"created": created, "created_by": f"hatch-pbs: {layer.name}"}
                                                       for layer in layers)]
    diff_ids = [*((base_config.get("rootfs") or {}).get("diff_ids") or []), *(layer.diff_id for layer in layers)]
    return {"created": created, **platform, "config": runtime, "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history}


def image_manifest(config: Blob, base_layers: Sequence[Mapping[str, Any]], layers: Sequence[Layer],
                   annotations: Mapping[str, str]) -> dict[str, Any]:
    """The image manifest: the base image's layers (Docker media types turned into the OCI ones for the same
    bytes), then ``layers``."""
    inherited = [{**layer, "mediaType": _DOCKER_LAYER_TYPES.get(layer["mediaType"], layer["mediaType"])}
                 for layer in base_layers]
    own = [Blob(LAYER_MEDIA_TYPE, layer.digest, layer.size).descriptor() for layer in layers]
    return {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "config": config.descriptor(),
            "layers": [*inherited, *own], "annotations": dict(annotations)}


def image_index(manifests: Sequence[Mapping[str, Any]], annotations: Mapping[str, str]) -> dict[str, Any]:
    """The image index of the platform manifests' descriptors."""
    return {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": list(manifests),
            "annotations": dict(annotations)}


def sbom_manifest(subject: Mapping[str, Any], sbom: Blob, file_name: str, created: int) -> dict[str, Any]:
    """An artifact manifest attaching the SBOM ``sbom`` to the image manifest ``subject`` (its descriptor), found
    through the registry's referrers API (distribution-spec v1.1) or its tag fallback."""
    empty = Blob.of(EMPTY_MEDIA_TYPE, EMPTY_CONTENT)
    return {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "artifactType": SBOM_MEDIA_TYPE,
            "config": empty.descriptor(), "layers": [sbom.descriptor(annotations={
                "org.opencontainers.image.title": file_name})],
            "subject": {key: subject[key] for key in ("mediaType", "digest", "size")},
            "annotations": {"org.opencontainers.image.created": timestamp(created)}}


def metadata_labels(*, name: str, version: str, description: str | None, license_expression: str | None,
                    urls: Mapping[str, str], created: int, base_name: str, base_digest: str) -> dict[str, str]:
    """The OCI pre-defined annotations (image-spec ``annotations.md``) the project metadata gives, as labels
    and manifest annotations: title, version, description, licenses, url (``Homepage``), source
    (``Source``/``Repository``), created, base.name and base.digest."""
    labels = {"org.opencontainers.image.title": name, "org.opencontainers.image.version": version,
              "org.opencontainers.image.created": timestamp(created),
              "org.opencontainers.image.base.name": base_name, "org.opencontainers.image.base.digest": base_digest}
    if description:
        labels["org.opencontainers.image.description"] = description
    if license_expression:
        labels["org.opencontainers.image.licenses"] = license_expression
    by_label = {label.lower().replace(" ", "").replace("-", ""): url for label, url in urls.items()}
    if "homepage" in by_label:
        labels["org.opencontainers.image.url"] = by_label["homepage"]
    for key in ("source", "sourcecode", "repository"):
        if key in by_label:
            labels["org.opencontainers.image.source"] = by_label[key]
            break
    return labels


__all__ = ["CONFIG_MEDIA_TYPE", "INDEX_MEDIA_TYPE", "MANIFEST_MEDIA_TYPE", "SBOM_MEDIA_TYPE", "TARGET_ANNOTATION",
           "Blob", "ImageSettings", "canonical_json", "image_config", "image_index", "image_manifest",
           "merged_env", "metadata_labels", "platform_of", "sbom_manifest", "timestamp"]
