"""The OCI image layout archive (image-spec ``image-layout.md``): an uncompressed tar holding ``oci-layout``,
``index.json`` and ``blobs/sha256/<hex>``, the format ``skopeo``'s ``oci-archive:``, ``podman load`` and
``docker load`` (Docker 25 and newer) read. Members are sorted, owned by root and dated ``SOURCE_DATE_EPOCH``, so
the same images give the same bytes.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hatch_pbs import interrupts
from hatch_pbs.atomic import publishing_file
from hatch_pbs.oci.image import INDEX_MEDIA_TYPE, canonical_json

#: ``oci-layout``'s content (image-spec ``image-layout.md``).
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
#: The annotation naming an image in a layout (image-spec ``annotations.md``), and the one ``docker load`` and
#: containerd's importer read for the image name.
REF_NAME_ANNOTATION, IMAGE_NAME_ANNOTATION = "org.opencontainers.image.ref.name", "io.containerd.image.name"
_CHUNK = 1 << 20


def write_layout_archive(destination: Path, manifests: Sequence[Mapping[str, Any]],
                         blobs: Mapping[str, bytes | Path], epoch: int) -> int:
    """Write the layout archive at ``destination`` (atomically: complete or not at all); returns its size in bytes.

    Args:
        manifests: the descriptors ``index.json`` lists (the tagged image index, then any artifact manifests).
        blobs: every blob by digest (``sha256:<hex>``): its bytes, or the file holding them.
        epoch: the members' time, seconds since the Unix epoch.

    Raises:
        OSError: a blob cannot be read, or the archive cannot be written.
    """
    index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": list(manifests)}
    with publishing_file(destination) as temporary, temporary.open("wb") as raw, \
            tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add_directory(archive, "blobs", epoch)
        _add_directory(archive, "blobs/sha256", epoch)
        for digest in sorted(blobs):
            interrupts.check()
            _add_blob(archive, f"blobs/sha256/{digest.removeprefix('sha256:')}", blobs[digest], epoch)
        _add_blob(archive, "index.json", canonical_json(index), epoch)
        _add_blob(archive, "oci-layout", canonical_json(LAYOUT_VERSION), epoch)
    return destination.stat().st_size


def _header(name: str, epoch: int) -> tarfile.TarInfo:
    header = tarfile.TarInfo(name)
    header.mtime, header.uid, header.gid, header.uname, header.gname, header.mode = epoch, 0, 0, "", "", 0o644
    return header


def _add_directory(archive: tarfile.TarFile, name: str, epoch: int) -> None:
    header = _header(name, epoch)
    header.type, header.mode = tarfile.DIRTYPE, 0o755
    archive.addfile(header)


def _add_blob(archive: tarfile.TarFile, name: str, content: bytes | Path, epoch: int) -> None:
    header = _header(name, epoch)
    if isinstance(content, bytes):
        header.size = len(content)
        archive.addfile(header, io.BytesIO(content))
        return
    with content.open("rb") as source:
        header.size = content.stat().st_size
        archive.addfile(header, _Copied(source))


class _Copied:
    """A reader tarfile copies a blob from, in chunks, with an interrupt check point per chunk."""

    def __init__(self, source: io.BufferedReader) -> None:
        self.source = source

    def read(self, size: int = -1) -> bytes:
        interrupts.check()
        return self.source.read(size if size >= 0 else _CHUNK)


__all__ = ["IMAGE_NAME_ANNOTATION", "LAYOUT_VERSION", "REF_NAME_ANNOTATION", "write_layout_archive"]
