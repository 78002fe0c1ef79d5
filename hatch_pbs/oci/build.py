"""One OCI image layout archive from the artifacts of a build: one image per Linux target triple, on the base
image pulled for its platform (:mod:`hatch_pbs.registry.pull`), gathered in one image index tagged with the
project's version, each image's SBOM attached as a referrer.

Each image is the base image's layers, then the artifact's three layers (:mod:`hatch_pbs.oci.layers`) under the
prefix; its config is the base's with ``Entrypoint`` the launcher (``<prefix>/bin/<script>``), ``PATH`` starting
with ``<prefix>/bin``, ``WorkingDir``, ``User``, ``Env`` and the labels (:func:`~hatch_pbs.oci.image.metadata_labels`
over the base's, option ``image.labels`` over both).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatch_pbs.config.image import ImageOptions
from hatch_pbs.errors import ImageError, RegistryError
from hatch_pbs.oci.image import (
    CONFIG_MEDIA_TYPE,
    EMPTY_CONTENT,
    EMPTY_MEDIA_TYPE,
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    SBOM_MEDIA_TYPE,
    TARGET_ANNOTATION,
    Blob,
    ImageSettings,
    canonical_json,
    image_config,
    image_index,
    image_manifest,
    metadata_labels,
    platform_of,
    sbom_manifest,
    timestamp,
)
from hatch_pbs.oci.layers import Layer, write_layers
from hatch_pbs.oci.layout import IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION, write_layout_archive
from hatch_pbs.registry.pull import PulledImage, pull_image
from hatch_pbs.registry.reference import ImageReference
from hatch_pbs.release.cache import Cache

#: The layout archive's file name suffix: ``<name>-<version>-oci.tar``.
LAYOUT_SUFFIX = "-oci.tar"
_TAG_INVALID = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class ImageProject:
    """The project as the image records it.

    Attributes:
        name, version: as hatchling resolved them.
        description: ``description`` of the metadata, or ``None``.
        license_expression: the SPDX license expression (``license``, PEP 639), or ``None``.
        urls: ``[project.urls]`` (label -> URL).
        scripts: the launcher scripts (option ``scripts``), in order.
    """

    name: str
    version: str
    description: str | None = None
    license_expression: str | None = None
    urls: Mapping[str, str] = field(default_factory=dict)
    scripts: Sequence[str] = ()


@dataclass(frozen=True)
class ImageTarget:
    """One artifact to make an image of: its ``triple``, the ``artifact`` (archive or directory), its ``sbom``
    (CycloneDX JSON, or ``None``) and its ``interpreter`` (``python/bin/python3.12``, relative to the artifact)."""

    triple: str
    artifact: Path
    sbom: Path | None
    interpreter: str


@dataclass(frozen=True)
class PlatformImage:
    """One image of the index: its ``triple``, ``platform`` (OCI), ``manifest`` descriptor and ``layers``."""

    triple: str
    platform: Mapping[str, str]
    manifest: Mapping[str, Any]
    layers: Sequence[Layer]


@dataclass(frozen=True)
class BuiltImage:
    """The layout archive written: its ``path``, ``size`` in bytes, the image index ``digest`` (``sha256:...``),
    the ``tag`` it is named by (the version, made a valid tag) and the ``images``, in target order."""

    path: Path
    size: int
    digest: str
    tag: str
    images: Sequence[PlatformImage]


def layout_name(name: str, version: str) -> str:
    """``<name>-<version>-oci.tar``."""
    return f"{name}-{version}{LAYOUT_SUFFIX}"


def version_tag(version: str) -> str:
    """``version`` as an image tag (``[A-Za-z0-9_.-]``, at most 128 characters): ``1.0+local`` -> ``1.0-local``."""
    return _TAG_INVALID.sub("-", version)[:128]


@dataclass
class _Blobs:
    """The layout's blobs by digest (bytes, or the file holding them)."""

    by_digest: dict[str, bytes | Path] = field(default_factory=dict)

    def add(self, media_type: str, content: bytes) -> Blob:
        blob = Blob.of(media_type, content)
        self.by_digest[blob.digest] = content
        return blob


#: The pulled base image, per OCI ``(os, architecture)``.
BaseImages = Mapping[tuple[str, str], PulledImage]


def pull_base(options: ImageOptions, triples: Sequence[str], cache: Cache, *, offline: bool = False,
              timeout: float = 30.0, report: Callable[[str], None] = lambda line: None) -> BaseImages:
    """Pull the base image (option ``image.base``) for the platforms of ``triples`` (Linux target triples) into
    ``cache``: before anything is built, so that a missing base or platform fails the build at once.

    Raises:
        ImageError: no Linux triple;
        RegistryError: the reference is malformed, or the base cannot be pulled or has no image for a platform;
        OfflineError: offline, and the base's tag was never pulled.
    """
    if not triples:
        raise ImageError("option `image` needs at least one Linux target triple in `targets`")
    platforms = {(platform["os"], platform["architecture"]) for platform in map(platform_of, triples)}
    try:
        reference = ImageReference.parse(options.base)
        return pull_image(reference, sorted(platforms), cache_dir=cache.root, offline=offline, timeout=timeout,
                          report=report)
    except RegistryError as error:
        raise RegistryError(f"cannot pull the base image {options.base} (option `image.base`): {error}") from None


def build_image(targets: Sequence[ImageTarget], project: ImageProject, options: ImageOptions, base: BaseImages,
                cache: Cache, destination: Path, work: Path, *, epoch: int,
                report: Callable[[str], None] = lambda line: None,
                warn: Callable[[str], None] = lambda line: None) -> BuiltImage:
    """Write the layout archive of ``targets`` (Linux triples) on ``base`` (:func:`pull_base`) at
    ``destination``; ``work`` is a scratch directory; ``epoch`` is ``SOURCE_DATE_EPOCH`` (seconds).

    Raises:
        ImageError: no target, a platform ``base`` lacks, or an artifact that cannot be layered;
        OSError: a file cannot be read or written.
    """
    if not targets:
        raise ImageError("option `image` needs at least one Linux target triple in `targets`")
    blobs = _Blobs()
    images, referrers = [], []
    for target in targets:
        platform = platform_of(target.triple)
        pulled = base.get((platform["os"], platform["architecture"]))
        if pulled is None:
            raise ImageError(f"the base image was not pulled for {target.triple}'s platform "
                             f"{platform['os']}/{platform['architecture']}")
        image = _platform_image(target, platform, pulled, project, options, cache, work, blobs, epoch, warn)
        images.append(image)
        report(f"image {target.triple}: " + ", ".join(
            f"{layer.name} {layer.size / 1e6:.1f} MB{' (cached)' if layer.reused else ''}" for layer in image.layers))
        if target.sbom is not None:
            referrers.append(_attached_sbom(image.manifest, target.sbom, blobs, epoch))
    tag = version_tag(project.version)
    index = image_index([image.manifest for image in images], {"org.opencontainers.image.created": timestamp(epoch)})
    index_blob = blobs.add(INDEX_MEDIA_TYPE, canonical_json(index))
    tagged = index_blob.descriptor(annotations={REF_NAME_ANNOTATION: tag,
                                                IMAGE_NAME_ANNOTATION: f"{project.name.lower()}:{tag}"})
    size = write_layout_archive(destination, [tagged, *referrers], blobs.by_digest, epoch)
    return BuiltImage(destination, size, index_blob.digest, tag, images)


def _platform_image(target: ImageTarget, platform: Mapping[str, str], base: PulledImage, project: ImageProject,
                    options: ImageOptions, cache: Cache, work: Path, blobs: _Blobs, epoch: int,
                    warn: Callable[[str], None]) -> PlatformImage:
    """One platform's layers, config and manifest, added to ``blobs``; its descriptor in the index."""
    prefix = options.prefix or f"/opt/{project.name}"
    script = options.entrypoint or next(iter(project.scripts), None)
    entrypoint = [f"{prefix}/bin/{script}"] if script else [f"{prefix}/{target.interpreter}"]
    layers = write_layers(target.artifact, project.name, prefix, work, cache, epoch=epoch,
                          warn=lambda line: warn(f"{target.triple}: {line}"))
    labels = metadata_labels(name=project.name, version=project.version, description=project.description,
                             license_expression=project.license_expression, urls=project.urls, created=epoch,
                             base_name=str(base.reference), base_digest=base.digest)
    settings = ImageSettings(entrypoint=entrypoint, path_entry=f"{prefix}/bin", workdir=options.workdir or prefix,
                             user=options.user, env=options.env, labels={**labels, **options.labels}, created=epoch)
    config = blobs.add(CONFIG_MEDIA_TYPE, canonical_json(image_config(base.config, platform, layers, settings)))
    for base_layer in base.layers:
        blobs.by_digest[base_layer.digest] = base.blob_path(base_layer.digest)
    for layer in layers:
        blobs.by_digest[layer.digest] = layer.path
    annotations = {key: labels[key] for key in labels if key.startswith("org.opencontainers.image.")}
    manifest = image_manifest(config, [base_layer.to_json() for base_layer in base.layers], layers,
                              {**annotations, TARGET_ANNOTATION: target.triple})
    manifest_blob = blobs.add(MANIFEST_MEDIA_TYPE, canonical_json(manifest))
    descriptor = manifest_blob.descriptor(platform=dict(platform), annotations={TARGET_ANNOTATION: target.triple})
    return PlatformImage(target.triple, platform, descriptor, layers)


def _attached_sbom(subject: Mapping[str, Any], sbom: Path, blobs: _Blobs, epoch: int) -> dict[str, Any]:
    """The SBOM's blob and its referrer manifest (with ``subject``) in ``blobs``; the manifest's descriptor."""
    sbom_blob = blobs.add(SBOM_MEDIA_TYPE, sbom.read_bytes())
    blobs.add(EMPTY_MEDIA_TYPE, EMPTY_CONTENT)
    manifest = blobs.add(MANIFEST_MEDIA_TYPE, canonical_json(sbom_manifest(subject, sbom_blob, sbom.name, epoch)))
    return manifest.descriptor(artifactType=SBOM_MEDIA_TYPE)


__all__ = ["LAYOUT_SUFFIX", "BaseImages", "BuiltImage", "ImageProject", "ImageTarget", "PlatformImage", "build_image",
           "layout_name", "pull_base", "version_tag"]
