"""``SHA256SUMS`` files: reading and writing the checksum list of a release or of a build's output directory.

The format is python-build-standalone's (PBS-FACTS.md, "Release assets"), the one ``sha256sum`` writes: one line
per file, ``<sha256>  <file name>``, the sha256 as 64 lowercase hex digits. When reading, any run of blanks may
separate the two fields and a ``*`` before the name (``sha256sum --binary``) is dropped; blank lines are skipped.

Used by the release catalogue (:class:`~hatch_pbs.release.resolve.ReleaseCatalogue`), the build's checksum file
(:func:`~hatch_pbs.artifact.pack.write_checksums`) and ``hatch-pbs mirror``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: The checksum file's name, in a release (beside its assets) and in a build's output directory.
SUMS_FILE_NAME = "SHA256SUMS"

_SUMS_LINE_RE = re.compile(r"^(?P<sha256>[0-9a-f]{64})[ \t]+\*?(?P<name>\S+)$")


class MalformedSumsLine(ValueError):
    """A line of a ``SHA256SUMS`` file is not ``<sha256>  <file name>``.

    Attributes:
        number: the line's number, counted from 1.
        line: the line as read (without its line break).
    """

    def __init__(self, number: int, line: str) -> None:
        super().__init__(f"malformed at line {number}: {line[:120]!r}")
        self.number = number
        self.line = line


def parse_sums(text: str, *, skip_malformed: bool = False) -> list[tuple[str, str]]:
    """The ``(file name, sha256)`` pairs of the ``SHA256SUMS`` text ``text``, in file order.

    Args:
        skip_malformed: leave out malformed lines instead of raising (for files written by hand or by other tools,
            whose valid lines are still wanted).

    Raises:
        MalformedSumsLine: a non-blank line is not ``<sha256>  <file name>`` (unless ``skip_malformed``).
    """
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _SUMS_LINE_RE.match(line.strip())
        if match:
            entries.append((match["name"], match["sha256"]))
        elif not skip_malformed:
            raise MalformedSumsLine(number, line)
    return entries


def render_sums(entries: Mapping[str, str]) -> str:
    """The ``SHA256SUMS`` text listing ``entries`` (file name -> lowercase hex sha256): ``<sha256>  <file name>``
    lines sorted by file name, each ending in ``\\n``."""
    return "".join(f"{entries[name]}  {name}\n" for name in sorted(entries))


__all__ = ["SUMS_FILE_NAME", "MalformedSumsLine", "parse_sums", "render_sums"]
