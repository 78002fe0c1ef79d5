"""Target triples: parsing, validation and detection of the build machine's (host) triple.

A target triple names the platform a runtime is built for, in the form python-build-standalone uses for its
assets (``{arch}-{vendor}-{os}[-{env}]``), e.g. ``x86_64-unknown-linux-gnu``, ``aarch64-apple-darwin``,
``x86_64-pc-windows-msvc``. The list of released triples is taken from python-build-standalone's release
tooling (``src/release.rs``, summarised in PBS-FACTS.md).
"""

from __future__ import annotations

import difflib
import platform
import re
import sys
from dataclasses import dataclass

#: Triples python-build-standalone publishes (PBS ``src/release.rs``). CPU-level variants (``x86_64_v2`` ...) are
#: spelled out so that typos can be caught with a suggestion.
KNOWN_TRIPLES: tuple[str, ...] = (
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "i686-pc-windows-msvc",
    "aarch64-pc-windows-msvc",
    "x86_64-unknown-linux-gnu",
    "x86_64_v2-unknown-linux-gnu",
    "x86_64_v3-unknown-linux-gnu",
    "x86_64_v4-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "i686-unknown-linux-gnu",
    "ppc64le-unknown-linux-gnu",
    "s390x-unknown-linux-gnu",
    "riscv64-unknown-linux-gnu",
    "armv7-unknown-linux-gnueabi",
    "armv7-unknown-linux-gnueabihf",
    "x86_64-unknown-linux-musl",
    "x86_64_v2-unknown-linux-musl",
    "x86_64_v3-unknown-linux-musl",
    "x86_64_v4-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
)

#: Regular expression of one triple as it appears inside asset file names.
TRIPLE_PATTERN = r"[a-z0-9_]+-(?:apple-darwin|pc-windows-msvc|unknown-linux-(?:gnueabihf|gnueabi|gnu|musl))"
_TRIPLE_RE = re.compile(rf"^{TRIPLE_PATTERN}$")

_MACHINE_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "i686", "x86": "i686"}


@dataclass(frozen=True)
class TargetTriple:
    """One parsed target triple.

    Attributes:
        triple: the full triple as PBS spells it, e.g. ``"x86_64_v3-unknown-linux-gnu"``.
        arch: CPU architecture including a CPU-level suffix, e.g. ``"x86_64_v3"``.
        os: ``"linux"``, ``"darwin"`` or ``"windows"``.
        libc: ``"gnu"``, ``"gnueabi"``, ``"gnueabihf"``, ``"musl"`` on Linux, ``"msvc"`` on Windows, ``""`` on macOS.
    """

    triple: str
    arch: str
    os: str
    libc: str

    @property
    def is_windows(self) -> bool:
        return self.os == "windows"


def parse_triple(triple: str) -> TargetTriple:
    """Parse ``triple`` into its parts.

    Raises:
        ValueError: ``triple`` does not have the form of a python-build-standalone triple.
    """
    if not _TRIPLE_RE.fullmatch(triple):
        raise ValueError(f"not a target triple: {triple!r}")
    arch, rest = triple.split("-", 1)
    if rest == "apple-darwin":
        return TargetTriple(triple, arch, "darwin", "")
    if rest == "pc-windows-msvc":
        return TargetTriple(triple, arch, "windows", "msvc")
    return TargetTriple(triple, arch, "linux", rest.rsplit("-", 1)[1])


def suggest_triple(text: str) -> str | None:
    """The known triple closest to a mistyped ``text``, or ``None`` when nothing is close."""
    matches = difflib.get_close_matches(text, KNOWN_TRIPLES, n=1, cutoff=0.6)
    return matches[0] if matches else None


def host_triple() -> str:
    """The target triple of the running machine (the build machine).

    Linux distinguishes glibc from musl by the C library the running interpreter links
    (``platform.libc_ver()``), baseline CPU level only (``x86_64``, never ``x86_64_v3``).

    Raises:
        ValueError: the platform is not one python-build-standalone publishes runtimes for.
    """
    machine = platform.machine().lower()
    arch = _MACHINE_ALIASES.get(machine, machine)
    if sys.platform == "darwin":
        triple = f"{arch}-apple-darwin"
    elif sys.platform == "win32":
        triple = f"{arch}-pc-windows-msvc"
    elif sys.platform.startswith("linux"):
        libc_name, _ = platform.libc_ver()
        triple = f"{arch}-unknown-linux-{'gnu' if libc_name == 'glibc' else 'musl'}"
    else:
        raise ValueError(f"python-build-standalone publishes no runtime for this platform ({sys.platform}, {machine})")
    if triple not in KNOWN_TRIPLES:
        raise ValueError(f"python-build-standalone publishes no runtime for this machine ({triple})")
    return triple
