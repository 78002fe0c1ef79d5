"""Target triples: parsing, validation and detection of the build machine's (host) triple.

A target triple names the platform a runtime is built for, in the form python-build-standalone uses for its
assets (``{arch}-{vendor}-{os}[-{env}]``), e.g. ``x86_64-unknown-linux-gnu``, ``aarch64-apple-darwin``,
``x86_64-pc-windows-msvc``. The list of released triples is taken from python-build-standalone's release
tooling (``src/release.rs``, summarised in docs/pbs-facts.md).
"""

from __future__ import annotations

import difflib
import platform
import re
import sys
from dataclasses import dataclass, replace

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
#: ``glibc-max-symbol-version:2.17``): the default floor (option ``manylinux``); an older one would not help, since
#: the runtime itself needs glibc 2.17.
MANYLINUX_FLOOR = (2, 17)

#: musl floor of python-build-standalone's musl runtimes (built against musl 1.2): the default (and only) floor
#: (option ``musllinux``).
MUSLLINUX_FLOOR = (1, 2)

#: macOS version wheels are chosen for by default (option ``macos``): 11.0 (Big Sur), the first macOS on arm64 and
#: old enough for Intel Macs in use, while most current wheels (built for 10.12-11.0) qualify.
DEFAULT_MACOS_DEPLOYMENT_TARGET = "11.0"

#: The glibc floors uv can install for (``uv pip install --help``, ``--python-platform``: ``x86_64-manylinux_2_17``,
#: ``..._2_28``, ``..._2_31`` to ``..._2_40``), as option ``manylinux`` spells them.
MANYLINUX_FLOORS: tuple[str, ...] = ("2_17", "2_28", *(f"2_{minor}" for minor in range(31, 41)))

#: The musl floors uv can install for: its ``*-unknown-linux-musl`` platforms mean musllinux_1_2.
MUSLLINUX_FLOORS: tuple[str, ...] = ("1_2",)

#: macOS versions a floor may name, oldest first (PEP 425 ``macosx_X_Y`` tags: minor versions matter before 11).
MACOS_FLOORS: tuple[tuple[int, int], ...] = (*((10, minor) for minor in range(9, 16)),
                                              *((major, 0) for major in (11, 12, 13, 14, 15, 26)))


@dataclass(frozen=True)
class PlatformFloors:
    """The oldest platform versions an artifact is made to run on (options ``manylinux``, ``musllinux``,
    ``macos``): wheels are chosen for them and the audit refuses binaries that need newer ones.

    Attributes:
        manylinux: glibc ``(major, minor)`` of Linux gnu targets, e.g. ``(2, 28)`` (PEP 600 ``manylinux_2_28``).
        musllinux: musl ``(major, minor)`` of Linux musl targets (PEP 656 ``musllinux_1_2``).
        macos: macOS ``(major, minor)`` of macOS targets, e.g. ``(11, 0)`` (``MACOSX_DEPLOYMENT_TARGET``).
    """

    manylinux: tuple[int, int] = MANYLINUX_FLOOR
    musllinux: tuple[int, int] = MUSLLINUX_FLOOR
    macos: tuple[int, int] = (11, 0)

    def for_triple(self, triple: str) -> tuple[str, tuple[int, int]] | None:
        """``(kind, version)`` of ``triple``'s floor: ``("glibc", (2, 17))``, ``("musl", (1, 2))``,
        ``("macos", (11, 0))``; ``None`` for Windows (and other platforms without one)."""
        parsed = parse_triple(triple)
        if parsed.os == "linux":
            return ("musl", self.musllinux) if parsed.is_musl else ("glibc", self.manylinux)
        if parsed.os == "darwin":
            return "macos", self.macos
        return None

    def option_text(self, triple: str) -> str | None:
        """The option setting this floor for ``triple`` as written in ``pyproject.toml``, e.g.
        ``manylinux = "2_17"`` or ``macos = "11.0"``; ``None`` for Windows."""
        floor = self.for_triple(triple)
        if floor is None:
            return None
        kind, (major, minor) = floor
        option = {"glibc": "manylinux", "musl": "musllinux", "macos": "macos"}[kind]
        return f'{option} = "{major}.{minor}"' if kind == "macos" else f'{option} = "{major}_{minor}"'

    def raised(self, triple: str, version: tuple[int, int]) -> PlatformFloors:
        """These floors with ``triple``'s replaced by ``version``."""
        kind = (self.for_triple(triple) or ("", ()))[0]
        field = {"glibc": "manylinux", "musl": "musllinux", "macos": "macos"}.get(kind)
        return self if field is None else replace(self, **{field: version})

    def candidates_above(self, triple: str) -> list[tuple[int, int]]:
        """The floors uv can install for that are newer than ``triple``'s, oldest first (none for Windows)."""
        floor = self.for_triple(triple)
        if floor is None:
            return []
        kind, current = floor
        known = {"glibc": [_version_of(text) for text in MANYLINUX_FLOORS],
                 "musl": [_version_of(text) for text in MUSLLINUX_FLOORS], "macos": list(MACOS_FLOORS)}[kind]
        return [version for version in known if version > current]


def _version_of(text: str) -> tuple[int, int]:
    """``(2, 28)`` for ``"2_28"``."""
    major, minor = text.split("_")
    return int(major), int(minor)


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
#: (uv's documented platform list; ``{manylinux}`` is replaced by the glibc floor, e.g. ``2_17``).
_UV_PLATFORMS = {
    ("linux", "gnu", "x86_64"): "x86_64-manylinux_{manylinux}",
    ("linux", "gnu", "aarch64"): "aarch64-manylinux_{manylinux}",
    ("linux", "musl", "x86_64"): "x86_64-unknown-linux-musl",
    ("linux", "musl", "aarch64"): "aarch64-unknown-linux-musl",
    ("darwin", "", "x86_64"): "x86_64-apple-darwin",
    ("darwin", "", "aarch64"): "aarch64-apple-darwin",
    ("windows", "msvc", "x86_64"): "x86_64-pc-windows-msvc",
    ("windows", "msvc", "aarch64"): "aarch64-pc-windows-msvc",
    ("windows", "msvc", "i686"): "i686-pc-windows-msvc",
}


def uv_python_platform(triple: str, floors: PlatformFloors = PlatformFloors()) -> str:
    """uv's ``--python-platform`` for installing wheels for ``triple``: e.g. ``x86_64-manylinux_2_28`` with a glibc
    floor of 2.28. uv's musl platforms mean musllinux_1_2; for macOS uv reads the floor from
    ``MACOSX_DEPLOYMENT_TARGET`` (see :func:`uv_environment`).

    Raises:
        ValueError: uv cannot install for that platform (e.g. ``ppc64le``, ``s390x``, ``armv7``).
    """
    parsed = parse_triple(triple)
    try:
        template = _UV_PLATFORMS[(parsed.os, parsed.libc, parsed.base_arch)]
    except KeyError:
        supported = ", ".join(sorted({f"{arch}-{os}-{libc}".rstrip("-") for os, libc, arch in _UV_PLATFORMS}))
        raise ValueError(f"installing wheels for {triple} is not supported (uv knows no such platform); "
                         f"supported: {supported}") from None
    return template.format(manylinux="{}_{}".format(*floors.manylinux))


def uv_environment(triple: str, floors: PlatformFloors = PlatformFloors()) -> dict[str, str]:
    """Environment variables uv needs besides ``--python-platform`` to choose wheels for ``triple``'s floor:
    ``MACOSX_DEPLOYMENT_TARGET`` (e.g. ``"11.0"``) for macOS, nothing for the others."""
    if parse_triple(triple).os == "darwin":
        return {"MACOSX_DEPLOYMENT_TARGET": "{}.{}".format(*floors.macos)}
    return {}


def wheel_platform_tags(triple: str, floors: PlatformFloors = PlatformFloors()) -> list[str]:
    """Wheel platform tags a runtime for ``triple`` accepts at ``floors``, most specific first (PEP 600 manylinux
    with the legacy aliases, PEP 656 musllinux, macOS and Windows tags), e.g. ``["manylinux_2_17_aarch64",
    "manylinux2014_aarch64"]``; manylinux goes down from the glibc floor to glibc 2.5 on x86 and stops at 2.17
    elsewhere, as ``packaging.tags`` does; musllinux from the musl floor to 1.1.

    macOS tags go down from the macOS floor as ``packaging.tags`` orders them; ``universal2`` is included.

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
        for minor in range(floors.manylinux[1], oldest - 1, -1):
            found.append(f"manylinux_2_{minor}_{glibc_arch}")
            if minor in _LEGACY_MANYLINUX:  # PEP 600: the legacy alias right after its equivalent
                found.append(f"{_LEGACY_MANYLINUX[minor]}_{glibc_arch}")
        return found
    if parsed.os == "linux" and parsed.libc == "musl":
        return [f"musllinux_1_{minor}_{arch}" for minor in range(floors.musllinux[1], 0, -1)]
    if parsed.os == "darwin":
        return list(tags.mac_platforms(floors.macos, "arm64" if arch == "aarch64" else "x86_64"))
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


def marker_environment(triple: str, python_version: str) -> dict[str, str]:
    """PEP 508 marker variables of a CPython ``python_version`` runtime for ``triple`` (``extra`` excluded)."""
    parsed = parse_triple(triple)
    arch = parsed.base_arch
    if parsed.os == "windows":
        machine = {"x86_64": "AMD64", "aarch64": "ARM64", "i686": "x86"}.get(arch, arch)
        system, sys_platform, os_name = "Windows", "win32", "nt"
    elif parsed.os == "darwin":
        machine = "arm64" if arch == "aarch64" else arch
        system, sys_platform, os_name = "Darwin", "darwin", "posix"
    else:
        machine = {"armv7": "armv7l"}.get(arch, arch)
        system, sys_platform, os_name = "Linux", "linux", "posix"
    full = re.match(r"\d+\.\d+(\.\d+)?", python_version)
    full_version = full.group(0) if full else python_version
    return {
        "implementation_name": "cpython", "implementation_version": full_version, "os_name": os_name,
        "platform_machine": machine, "platform_python_implementation": "CPython", "platform_release": "",
        "platform_system": system, "platform_version": "", "python_full_version": full_version,
        "python_version": ".".join(full_version.split(".")[:2]), "sys_platform": sys_platform,
    }
