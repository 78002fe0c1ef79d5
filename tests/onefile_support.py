"""Helpers for the single-file executable tests: small ``.tar.zst`` payloads made the way the pipeline makes them."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import zstandard


def make_payload(path: Path, files: dict[str, tuple[bytes, int]], top: str, *, link: bool = False) -> Path:
    """Write ``path``, a ``.tar.zst`` of ``files`` (name -> (content, mode)) below ``top/``, compressed the way the
    pipeline does (streaming: no content size in the frame header); ``link``: with a symlink ``bin/demo-link`` ->
    ``demo``. Returns ``path``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, (content, mode) in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
        if link:
            symlink = tarfile.TarInfo(f"{top}/bin/demo-link")
            symlink.type, symlink.linkname = tarfile.SYMTYPE, "demo"
            archive.addfile(symlink)
    with open(path, "wb") as out, zstandard.ZstdCompressor(level=10).stream_writer(out, closefd=False) as writer:
        writer.write(raw.getvalue())
    return path
