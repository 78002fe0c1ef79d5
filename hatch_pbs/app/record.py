"""``RECORD`` files of installed distributions and wheels: one row per file, ``path,sha256=<digest>,<size>``.

The format is PEP 376's as PEP 627 and the wheel format (PEP 427, "The .dist-info directory") specify it: a CSV
file, the digest the urlsafe base64 of the file's sha256 without ``=`` padding, the size in bytes; the ``RECORD``
file lists itself with empty hash and size. Used by the install (which rewrites ``RECORD`` after the build changed
files, :mod:`hatch_pbs.app.install`) and by the runtime wheels (:mod:`hatch_pbs.forms.wheel`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Iterable


def record_row(name: str, content: bytes) -> list[str]:
    """The ``RECORD`` row of the file ``name`` (its path relative to the site directory or wheel root, POSIX
    separators) with the bytes ``content``: ``[name, "sha256=<urlsafe base64, unpadded>", "<size in bytes>"]``."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(content))]


def parse_record(text: str) -> list[list[str]]:
    """The non-empty rows of the ``RECORD`` text ``text`` (CSV), in file order."""
    return [row for row in csv.reader(io.StringIO(text)) if row]


def render_record(rows: Iterable[list[str]]) -> str:
    """The ``RECORD`` text of ``rows`` (CSV, ``\\n`` line ends, in the given order)."""
    output = io.StringIO()
    csv.writer(output, lineterminator="\n").writerows(rows)
    return output.getvalue()


__all__ = ["parse_record", "record_row", "render_record"]
