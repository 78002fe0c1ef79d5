"""python-build-standalone asset file names and download URLs.

Naming scheme (PBS ``src/release.rs``; docs/pbs-facts.md, "Release assets"), for releases since 20220227::

    cpython-{python version}+{release tag}-{triple}-install_only.tar.gz
    cpython-{python version}+{release tag}-{triple}-install_only_stripped.tar.gz
    cpython-{python version}+{release tag}-{triple}-freethreaded-install_only[_stripped].tar.gz
    cpython-{python version}+{release tag}-{triple}-{build options}-full.tar.zst

Older releases (until 20220222) used ``cpython-{version}-{triple}-{build options}-{YYYYMMDD}T{HHMM}.tar.{ext}``,
where ``install_only`` took the place of the build options; the first releases (2018-2020) wrote a platform name
(``linux64``, ``macos``, ``windows-amd64``, ``windows-x86``) in place of the triple. Every scheme parses and
formats back to the identical name, so any name seen in a release round-trips.

Download URL: ``{mirror}/{release tag}/{file name}`` with ``+`` percent-encoded as ``%2B``; the default mirror is
:data:`GITHUB_DOWNLOAD_PREFIX`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import quote

from hatch_pbs.errors import AssetNameError
from hatch_pbs.release.triples import TRIPLE_PATTERN

#: Everything before ``/{release tag}/{file name}`` in a release asset URL on GitHub.
GITHUB_DOWNLOAD_PREFIX = "https://github.com/astral-sh/python-build-standalone/releases/download"
#: Where python-build-standalone publishes the newest release tag (PBS docs, "Obtaining Distributions").
LATEST_RELEASE_URL = (
    "https://raw.githubusercontent.com/astral-sh/python-build-standalone/latest-release/latest-release.json"
)

#: A python-build-standalone asset flavor (option ``flavor``), in the order messages list them.
Flavor = Literal["install_only", "install_only_stripped", "full"]
FLAVORS: tuple[Flavor, ...] = get_args(Flavor)

_VERSION = r"(?P<version>\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)"
_MODERN_RE = re.compile(
    rf"^cpython-{_VERSION}\+(?P<tag>\d{{8}})-(?P<triple>{TRIPLE_PATTERN})-"
    r"(?:(?:(?P<io_options>[a-z0-9+_-]+)-)?(?P<install_only>install_only(?:_stripped)?)\.tar\.gz"
    r"|(?P<full_options>[a-z0-9+_-]+)-full\.tar\.zst)$"
)
#: Platform names of the first releases (2018-2020) and the triples they stand for.
_PLATFORM_ALIASES = {
    "linux64": "x86_64-unknown-linux-gnu",
    "macos": "x86_64-apple-darwin",
    "windows-amd64": "x86_64-pc-windows-msvc",
    "windows-x86": "i686-pc-windows-msvc",
}
_LEGACY_RE = re.compile(
    rf"^cpython-{_VERSION}-(?:(?P<triple>{TRIPLE_PATTERN})|(?P<alias>linux64|macos|windows-amd64|windows-x86))-"
    r"(?:(?:(?P<io_options>[a-z0-9+_-]+)-)?(?P<install_only>install_only)-|(?P<full_options>[a-z0-9+_-]+)-)?"
    r"(?P<stamp>(?P<tag>\d{8})T\d{4})\.(?P<ext>tar\.gz|tar\.zst)$"
)


@dataclass(frozen=True, order=True)
class Asset:
    """One downloadable CPython distribution of a release.

    Attributes:
        python_version: full CPython version, e.g. ``"3.12.7"`` or ``"3.14.0rc1"``.
        release: the release tag, e.g. ``"20261021"``.
        triple: the target triple, e.g. ``"x86_64-unknown-linux-gnu"``.
        flavor: ``"install_only"``, ``"install_only_stripped"`` or ``"full"``.
        build_options: ``"pgo+lto"``, ``"freethreaded+pgo+lto"``... for ``full``; ``""`` or ``"freethreaded"``
            (``"shared"`` in some older Windows names) for install-only flavors.
        build_stamp: legacy names only: the ``YYYYMMDDTHHMM`` build stamp; ``""`` for current names.
        extension: ``"tar.gz"`` or ``"tar.zst"``.
        platform_alias: first releases only: the platform name written instead of the triple (``"linux64"``).
    """

    python_version: str
    release: str
    triple: str
    flavor: str
    build_options: str = ""
    build_stamp: str = ""
    extension: str = ""
    platform_alias: str = ""

    def __post_init__(self) -> None:
        if not self.extension:
            object.__setattr__(self, "extension", "tar.zst" if self.flavor == "full" else "tar.gz")

    @property
    def freethreaded(self) -> bool:
        """Whether the runtime is a free-threaded (no-GIL) build."""
        return "freethreaded" in re.split(r"[+-]", self.build_options)

    @property
    def file_name(self) -> str:
        """The asset's file name exactly as the release publishes it."""
        if self.build_stamp:
            options = self.build_options if self.flavor == "full" else _join(self.build_options, "install_only")
            platform = self.platform_alias or self.triple
            return f"cpython-{self.python_version}-{_join(platform, options)}-{self.build_stamp}.{self.extension}"
        head = f"cpython-{self.python_version}+{self.release}-{self.triple}"
        if self.flavor == "full":
            return f"{head}-{self.build_options}-full.tar.zst"
        return f"{head}-{_join(self.build_options, self.flavor)}.tar.gz"

    def url(self, mirror: str = GITHUB_DOWNLOAD_PREFIX) -> str:
        """Download URL of the asset under ``mirror`` (everything before ``/{release tag}/``)."""
        return release_file_url(mirror, self.release, self.file_name)


def _join(*parts: str) -> str:
    return "-".join(part for part in parts if part)


def release_file_url(mirror: str, release: str, file_name: str) -> str:
    """URL of ``file_name`` in ``release`` under ``mirror``; ``+`` becomes ``%2B`` as on GitHub."""
    return f"{mirror.rstrip('/')}/{release}/{quote(file_name, safe='')}"


def parse_asset_name(file_name: str, release: str | None = None) -> Asset:
    """Parse a python-build-standalone CPython asset file name.

    Args:
        file_name: the asset's file name, with a literal ``+``.
        release: the release tag the file was published under. Current names carry it (and must agree);
            legacy names carry only a build stamp, whose date is used when ``release`` is not given
            (legacy assets were sometimes published under a later tag).

    Raises:
        AssetNameError: ``file_name`` is not a CPython asset name of either naming scheme, or its release tag
            differs from ``release``.
    """
    match = _MODERN_RE.fullmatch(file_name)
    if match:
        stamp, extension = "", ""
    else:
        match = _LEGACY_RE.fullmatch(file_name)
        if not match:
            raise AssetNameError(f"not a python-build-standalone CPython asset name: {file_name!r}")
        stamp, extension = match["stamp"], match["ext"]
    tag = match["tag"]
    if release is not None and release != tag:
        if not stamp:
            raise AssetNameError(f"asset {file_name!r} belongs to release {tag}, not {release}")
        tag = release
    if match["install_only"]:
        flavor, options = match["install_only"], match["io_options"] or ""
    else:
        flavor, options = "full", match["full_options"] or ""
    return Asset(
        python_version=match["version"],
        release=tag,
        triple=match["triple"] or _PLATFORM_ALIASES[match["alias"]],
        flavor=flavor,
        build_options=options,
        build_stamp=stamp,
        extension=extension,
        platform_alias=match.groupdict().get("alias") or "",
    )
