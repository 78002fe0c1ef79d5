"""Target triples: parsing, validation and detection of the build machine's (host) triple.

A target triple names the platform a runtime is built for, in the form python-build-standalone uses for its
assets (``{arch}-{vendor}-{os}[-{env}]``), e.g. ``x86_64-unknown-linux-gnu``, ``aarch64-apple-darwin``,
``x86_64-pc-windows-msvc``. The list of released triples is taken from python-build-standalone's release
tooling (``src/release.rs``, summarised in PBS-FACTS.md).
"""

from __future__ import annotations

import difflib
import os
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

#: The targets of ``targets = ["all"]``: the platforms most applications ship to.
ALL_TARGETS: tuple[str, ...] = (
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "aarch64-pc-windows-msvc",
)

#: glibc floor of python-build-standalone's Linux gnu runtimes (PYTHON.json ``crt_features``
#: ``glibc-max-symbol-version:2.17``): wheels for a newer manylinux would not run everywhere the runtime runs.
MANYLINUX_FLOOR = (2, 17)

#: macOS version wheels are chosen for unless ``MACOSX_DEPLOYMENT_TARGET`` says otherwise: 11.0 (Big Sur), the first
#: macOS on arm64 and old enough for Intel Macs in use, while most current wheels (built for 10.12-11.0) qualify.
DEFAULT_MACOS_DEPLOYMENT_TARGET = "11.0"

#: glibc 2.x -> legacy manylinux tag of the same glibc (PEP 513, 571, 599).
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}

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

    @property
    def base_arch(self) -> str:
        """The architecture without a CPU level: ``"x86_64"`` for ``"x86_64_v3"``."""
        return re.sub(r"_v\d$", "", self.arch)

    @property
    def is_musl(self) -> bool:
        return self.libc == "musl"


#: uv's ``--python-platform`` value per (os, libc, base arch): the platform whose wheels a runtime can load
#: (uv's documented platform list; manylinux pinned to :data:`MANYLINUX_FLOOR`).
_UV_PLATFORMS = {
    ("linux", "gnu", "x86_64"): "x86_64-manylinux_2_17",
    ("linux", "gnu", "aarch64"): "aarch64-manylinux_2_17",
    ("linux", "musl", "x86_64"): "x86_64-unknown-linux-musl",
    ("linux", "musl", "aarch64"): "aarch64-unknown-linux-musl",
    ("darwin", "", "x86_64"): "x86_64-apple-darwin",
    ("darwin", "", "aarch64"): "aarch64-apple-darwin",
    ("windows", "msvc", "x86_64"): "x86_64-pc-windows-msvc",
    ("windows", "msvc", "aarch64"): "aarch64-pc-windows-msvc",
    ("windows", "msvc", "i686"): "i686-pc-windows-msvc",
}


def uv_python_platform(triple: str) -> str:
    """uv's ``--python-platform`` for installing wheels for ``triple``.

    Raises:
        ValueError: uv cannot install for that platform (e.g. ``ppc64le``, ``s390x``, ``armv7``).
    """
    parsed = parse_triple(triple)
    try:
        return _UV_PLATFORMS[(parsed.os, parsed.libc, parsed.base_arch)]
    except KeyError:
        supported = ", ".join(sorted({f"{arch}-{os}-{libc}".rstrip("-") for os, libc, arch in _UV_PLATFORMS}))
        raise ValueError(f"installing wheels for {triple} is not supported (uv knows no such platform); "
                         f"supported: {supported}") from None


def macos_deployment_target() -> str:
    """``MACOSX_DEPLOYMENT_TARGET`` if set (e.g. ``"12.0"``), else :data:`DEFAULT_MACOS_DEPLOYMENT_TARGET`."""
    return os.environ.get("MACOSX_DEPLOYMENT_TARGET", "").strip() or DEFAULT_MACOS_DEPLOYMENT_TARGET


def wheel_platform_tags(triple: str) -> list[str]:
    """Wheel platform tags a runtime for ``triple`` accepts, most specific first (PEP 600 manylinux with the legacy
    aliases, PEP 656 musllinux, macOS and Windows tags), e.g. ``["manylinux_2_17_aarch64", "manylinux2014_aarch64"]``;
    manylinux goes down to glibc 2.5 on x86 and stops at 2.17 elsewhere, as ``packaging.tags`` does.

    macOS tags go down from :func:`macos_deployment_target` as ``packaging.tags`` orders them; ``universal2`` is
    included.

    Raises:
        ValueError: the triple's platform has no wheel tags known here.
    """
    from packaging import tags

    parsed = parse_triple(triple)
    arch = parsed.base_arch
    if parsed.os == "linux" and parsed.libc in ("gnu", "gnueabihf"):  # manylinux armv7l is hard-float (PEP 599)
        glibc_arch = {"i686": "i686", "armv7": "armv7l"}.get(arch, arch)
        oldest = 5 if glibc_arch in ("x86_64", "i686") else 17  # manylinux predates glibc 2.17 on x86 only
        found = []
        for minor in range(MANYLINUX_FLOOR[1], oldest - 1, -1):
            found.append(f"manylinux_2_{minor}_{glibc_arch}")
            if minor in _LEGACY_MANYLINUX:  # PEP 600: the legacy alias right after its equivalent
                found.append(f"{_LEGACY_MANYLINUX[minor]}_{glibc_arch}")
        return found
    if parsed.os == "linux" and parsed.libc == "musl":
        return [f"musllinux_1_{minor}_{arch}" for minor in (2, 1)]
    if parsed.os == "darwin":
        major, minor = (int(part) for part in (macos_deployment_target() + ".0").split(".")[:2])
        return list(tags.mac_platforms((major, minor), "arm64" if arch == "aarch64" else "x86_64"))
    windows = {"x86_64": "win_amd64", "aarch64": "win_arm64", "i686": "win32"}
    if parsed.os == "windows" and arch in windows:
        return [windows[arch]]
    raise ValueError(f"no wheel platform tags known for {triple}")  # soft-float armv7 (gnueabi), unknown CPUs


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
