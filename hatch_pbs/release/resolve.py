"""Resolution: (release, python version, target triple, flavor) -> one release asset with its sha256.

Pure and host-independent: it reads a release catalogue (the release's ``SHA256SUMS``, which lists every asset;
docs/pbs-facts.md, "Release assets") and never touches the network or the file system.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from hatch_pbs.errors import AssetNameError, ResolveError
from hatch_pbs.release.assets import Asset, parse_asset_name
from hatch_pbs.release.sums import MalformedSumsLine, parse_sums
from hatch_pbs.release.triples import suggest_triple

#: Preference among build options of ``full`` archives: the ones install_only archives are made from come first
#: (``pgo+lto`` on macOS and Linux gnu, ``pgo`` on Windows, ``lto`` on musl and other Linux; docs/pbs-facts.md).
FULL_BUILD_OPTIONS_PREFERENCE = ("pgo+lto", "pgo", "lto", "noopt")


@dataclass(frozen=True)
class ResolvedAsset:
    """An asset chosen for a build, with everything needed to fetch and verify it.

    Attributes:
        asset: the parsed asset.
        sha256: lowercase hex sha256 of the archive, from the release's ``SHA256SUMS``.
        url: where to download it from (under the configured mirror).
    """

    asset: Asset
    sha256: str
    url: str

    def to_json(self) -> dict[str, str]:
        """The shape printed by ``hatch-pbs resolve``: asset, url, sha256, python_version, release, target,
        flavor, build_options."""
        return {
            "asset": self.asset.file_name,
            "url": self.url,
            "sha256": self.sha256,
            "python_version": self.asset.python_version,
            "release": self.asset.release,
            "target": self.asset.triple,
            "flavor": self.asset.flavor,
            "build_options": self.asset.build_options,
        }


@dataclass(frozen=True)
class ReleaseCatalogue:
    """Every CPython asset of one release, with its sha256.

    Attributes:
        release: the release tag.
        assets: ``(asset, sha256)`` pairs in ``SHA256SUMS`` order.
    """

    release: str
    assets: tuple[tuple[Asset, str], ...]

    @classmethod
    def parse(cls, release: str, sums_text: str) -> ReleaseCatalogue:
        """Parse a ``SHA256SUMS`` file: lines ``{sha256}  {file name}``; names that are not CPython assets
        (other files of the release) are skipped.

        Raises:
            ResolveError: a line is malformed, or no CPython asset is listed.
        """
        try:
            entries = parse_sums(sums_text)
        except MalformedSumsLine as error:
            raise ResolveError(f"SHA256SUMS of release {release} is {error}") from None
        assets = []
        for name, sha256 in entries:
            try:
                asset = parse_asset_name(name, release=release)
            except AssetNameError:
                continue
            assets.append((asset, sha256))
        if not assets:
            raise ResolveError(f"SHA256SUMS of release {release} lists no CPython asset")
        return cls(release, tuple(assets))

    def triples(self) -> list[str]:
        return sorted({asset.triple for asset, _ in self.assets})


def select_asset(
    catalogue: ReleaseCatalogue,
    *,
    target: str,
    flavor: str,
    python_version: str | None = None,
    requires_python: SpecifierSet | None = None,
    freethreaded: bool = False,
) -> tuple[Asset, str]:
    """Choose the asset of ``catalogue`` for one build.

    Args:
        target: target triple.
        flavor: ``install_only``, ``install_only_stripped`` or ``full``.
        python_version: ``"3.12.7"`` (exactly that), ``"3.12"`` (newest final 3.12 patch) or ``None``
            (the newest final version that ``requires_python`` allows).
        requires_python: the project's ``requires-python``; versions outside it are never chosen, not even when
            ``python_version`` names them (the project could not be installed into that runtime).
        freethreaded: choose a free-threaded build.

    Returns:
        ``(asset, sha256)``.

    Raises:
        ResolveError: nothing matches; the message lists what the release has for ``target``.
    """
    for_target = [(asset, sha) for asset, sha in catalogue.assets if asset.triple == target]
    if not for_target:
        suggestion = suggest_triple(target)
        hint = f' (did you mean "{suggestion}"?)' if suggestion and suggestion in catalogue.triples() else ""
        raise ResolveError(f"release {catalogue.release} has no asset for target triple {target}{hint}; "
                           f"it has: {', '.join(catalogue.triples())}")
    variants = [(asset, sha) for asset, sha in for_target if _flavor_matches(asset, flavor, freethreaded)]
    candidates = [(asset, sha) for asset, sha in variants if _version_matches(asset, python_version, requires_python)]
    if not candidates:
        raise ResolveError(_nothing_matches(catalogue.release, target, flavor, python_version, requires_python,
                                            freethreaded, for_target))
    return max(candidates, key=lambda pair: _rank(pair[0]))


def _core_options(asset: Asset) -> str:
    """Build options without ``freethreaded`` and ``shared`` (older Windows names: ``shared-pgo``,
    ``shared-install_only``), e.g. ``"pgo+lto"``; ``""`` for a plain install-only asset."""
    return "+".join(option for option in re.split(r"[+-]", asset.build_options)
                    if option and option not in ("freethreaded", "shared"))


def _flavor_matches(asset: Asset, flavor: str, freethreaded: bool) -> bool:
    if asset.flavor != flavor or asset.freethreaded != freethreaded:
        return False
    if flavor == "full":
        return not {"debug", "static"} & set(re.split(r"[+-]", asset.build_options))
    return _core_options(asset) == ""


def _version_of(asset: Asset) -> Version | None:
    try:
        return Version(asset.python_version)
    except InvalidVersion:  # pragma: no cover - the asset name grammar only admits valid versions
        return None


def _version_matches(asset: Asset, requested: str | None, requires_python: SpecifierSet | None) -> bool:
    version = _version_of(asset)
    if version is None:
        return False
    exact = requested is not None and requested.count(".") == 2
    if exact and asset.python_version != requested:
        return False
    if not exact and version.is_prerelease:
        return False
    if requested is not None and not exact and f"{version.major}.{version.minor}" != requested:
        return False
    return requires_python is None or requires_python.contains(version, prereleases=exact)


def _rank(asset: Asset) -> tuple[Version, int]:
    options = _core_options(asset)
    preference = FULL_BUILD_OPTIONS_PREFERENCE
    option_rank = len(preference) - preference.index(options) if options in preference else 0
    return (_version_of(asset) or Version("0"), option_rank)


def _nothing_matches(release: str, target: str, flavor: str, python_version: str | None,
                     requires_python: SpecifierSet | None, freethreaded: bool,
                     for_target: Iterable[tuple[Asset, str]]) -> str:
    if python_version and requires_python:
        wanted = f"CPython {python_version} allowed by requires-python {requires_python}"
    elif python_version:
        wanted = f"CPython {python_version}"
    else:
        wanted = f"CPython allowed by requires-python {requires_python or '(any)'}"
    kind = f"{'freethreaded ' if freethreaded else ''}{flavor}"
    offered: dict[str, set[str]] = defaultdict(set)
    for asset, _ in for_target:
        offered[asset.python_version].add(
            f"{asset.flavor}[{asset.build_options}]" if asset.build_options else asset.flavor)
    listing = "; ".join(
        f"{version} ({', '.join(sorted(flavors))})"
        for version, flavors in sorted(offered.items(), key=lambda item: Version(item[0]))
    )
    return f"release {release} has no {kind} asset of {wanted} for {target}; it has: {listing}"
