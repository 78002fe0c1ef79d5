"""Unit tests of hatch_pbs.release.resolve: release catalogues from SHA256SUMS and asset selection."""

from __future__ import annotations

import hashlib

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from hatch_pbs.errors import HatchPbsError, ResolveError
from hatch_pbs.release.assets import GITHUB_DOWNLOAD_PREFIX, parse_asset_name
from hatch_pbs.release.resolve import ReleaseCatalogue, ResolvedAsset, select_asset

TAG = "20261021"
LINUX = "x86_64-unknown-linux-gnu"
MAC = "aarch64-apple-darwin"
WINDOWS = "x86_64-pc-windows-msvc"
MUSL = "x86_64-unknown-linux-musl"


def sha(name: str) -> str:
    """A distinct, deterministic sha256 per file name, so a wrong pairing of name and hash shows."""
    return hashlib.sha256(name.encode()).hexdigest()


def sums(names: list[str]) -> str:
    """A SHA256SUMS text as PBS writes it: sorted by name, two spaces, trailing newline."""
    return "".join(f"{sha(name)}  {name}\n" for name in sorted(names))


def release_names(tag: str = TAG) -> list[str]:
    """The CPython assets of a realistic release: several minors (one with two patches), a prerelease,
    four triples, both install-only flavors, full builds with several build options, free-threaded builds."""
    versions = ["3.10.19", "3.11.14", "3.12.11", "3.12.12", "3.13.9", "3.14.0", "3.15.0rc1"]
    full_options = {LINUX: ["pgo+lto", "lto", "noopt", "debug"], MAC: ["pgo+lto", "debug"],
                    WINDOWS: ["pgo", "debug"], MUSL: ["lto", "lto+static", "noopt", "debug"]}
    freethreaded_full = {LINUX: ["freethreaded+pgo+lto", "freethreaded+debug"],
                         MAC: ["freethreaded+pgo+lto", "freethreaded+debug"],
                         WINDOWS: ["freethreaded+pgo", "freethreaded+debug"], MUSL: ["freethreaded+lto"]}
    names = []
    for version in versions:
        for triple in (LINUX, MAC, WINDOWS, MUSL):
            head = f"cpython-{version}+{tag}-{triple}"
            names += [f"{head}-install_only.tar.gz", f"{head}-install_only_stripped.tar.gz"]
            names += [f"{head}-{options}-full.tar.zst" for options in full_options[triple]]
            if Version(version) >= Version("3.13"):
                names += [f"{head}-freethreaded-install_only.tar.gz",
                          f"{head}-freethreaded-install_only_stripped.tar.gz"]
                names += [f"{head}-{options}-full.tar.zst" for options in freethreaded_full[triple]]
    return names


@pytest.fixture(scope="module")
def catalogue() -> ReleaseCatalogue:
    return ReleaseCatalogue.parse(TAG, sums(release_names()))


def pick(catalogue: ReleaseCatalogue, **kwargs: object) -> tuple[str, str]:
    asset, digest = select_asset(catalogue, **{"target": LINUX, "flavor": "install_only_stripped", **kwargs})
    return asset.file_name, digest


class TestCatalogue:
    def test_every_line_becomes_an_asset_with_its_sha256(self, catalogue: ReleaseCatalogue) -> None:
        names = sorted(release_names())
        assert catalogue.release == TAG
        assert [asset.file_name for asset, _ in catalogue.assets] == names
        assert all(digest == sha(asset.file_name) for asset, digest in catalogue.assets)
        assert all(asset.release == TAG for asset, _ in catalogue.assets)

    def test_triples(self, catalogue: ReleaseCatalogue) -> None:
        assert catalogue.triples() == [MAC, WINDOWS, LINUX, MUSL]

    def test_non_cpython_lines_are_skipped(self) -> None:
        name = f"cpython-3.12.12+{TAG}-{LINUX}-install_only.tar.gz"
        text = "\n".join([
            f"{sha('pypy')}  pypy3.10-v7.3.17-linux64.tar.bz2",
            f"{sha('json')}  latest-release.json",
            f"{sha(name)}  {name}",
            f"{sha('sha')}  {name}.sha256",
            f"{sha('src')}  python-build-standalone-{TAG}.tar.gz",
        ])
        catalogue = ReleaseCatalogue.parse(TAG, text)
        assert [(asset.file_name, digest) for asset, digest in catalogue.assets] == [(name, sha(name))]

    def test_blank_lines_crlf_and_binary_marker(self) -> None:
        first = f"cpython-3.12.12+{TAG}-{LINUX}-install_only.tar.gz"
        second = f"cpython-3.12.12+{TAG}-{MAC}-install_only.tar.gz"
        text = f"\r\n{sha(first)}  {first}\r\n\r\n{sha(second)} *{second}\r\n   \r\n"
        catalogue = ReleaseCatalogue.parse(TAG, text)
        assert [(asset.file_name, digest) for asset, digest in catalogue.assets] == [(first, sha(first)),
                                                                                     (second, sha(second))]

    @pytest.mark.parametrize(("line", "number"), [
        ("not-a-hash  cpython-3.12.12+20261021-x86_64-unknown-linux-gnu-install_only.tar.gz", 2),
        (f"{'a' * 63}  cpython-3.12.12+20261021-x86_64-unknown-linux-gnu-install_only.tar.gz", 2),
        (f"{'A' * 64}  cpython-3.12.12+20261021-x86_64-unknown-linux-gnu-install_only.tar.gz", 2),
        (f"{'a' * 64}", 2),
        (f"{'a' * 64}cpython-3.12.12+20261021-x86_64-unknown-linux-gnu-install_only.tar.gz", 2),
        (f"{'a' * 64}  two words.tar.gz", 2),
        ("<html><body>Not Found</body></html>", 2),
    ])
    def test_malformed_line(self, line: str, number: int) -> None:
        good = f"cpython-3.12.12+{TAG}-{LINUX}-install_only.tar.gz"
        with pytest.raises(ResolveError) as info:
            ReleaseCatalogue.parse(TAG, f"{sha(good)}  {good}\n{line}\n")
        assert str(info.value) == f"SHA256SUMS of release {TAG} is malformed at line {number}: {line[:120]!r}"

    def test_malformed_line_is_quoted_truncated(self) -> None:
        line = "x" * 500
        with pytest.raises(ResolveError) as info:
            ReleaseCatalogue.parse(TAG, line)
        assert str(info.value) == f"SHA256SUMS of release {TAG} is malformed at line 1: {'x' * 120!r}"

    @pytest.mark.parametrize("text", ["", "\n\n", f"{sha('x')}  latest-release.json\n"])
    def test_no_cpython_asset(self, text: str) -> None:
        with pytest.raises(ResolveError) as info:
            ReleaseCatalogue.parse(TAG, text)
        assert str(info.value) == f"SHA256SUMS of release {TAG} lists no CPython asset"


class TestPythonVersionSelection:
    def test_minor_picks_the_newest_final_patch(self, catalogue: ReleaseCatalogue) -> None:
        name = f"cpython-3.12.12+{TAG}-{LINUX}-install_only_stripped.tar.gz"
        assert pick(catalogue, python_version="3.12") == (name, sha(name))

    def test_exact_older_patch(self, catalogue: ReleaseCatalogue) -> None:
        name = f"cpython-3.12.11+{TAG}-{LINUX}-install_only_stripped.tar.gz"
        assert pick(catalogue, python_version="3.12.11") == (name, sha(name))

    def test_exact_prerelease(self, catalogue: ReleaseCatalogue) -> None:
        name = f"cpython-3.15.0rc1+{TAG}-{LINUX}-install_only_stripped.tar.gz"
        assert pick(catalogue, python_version="3.15.0rc1") == (name, sha(name))
        assert pick(catalogue, python_version="3.15.0rc1",
                    requires_python=SpecifierSet(">=3.10")) == (name, sha(name))

    def test_minor_never_picks_a_prerelease(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            pick(catalogue, python_version="3.15")
        assert "3.15.0rc1 (" in str(info.value)

    def test_none_picks_the_newest_final_version(self, catalogue: ReleaseCatalogue) -> None:
        assert pick(catalogue)[0] == f"cpython-3.14.0+{TAG}-{LINUX}-install_only_stripped.tar.gz"

    @pytest.mark.parametrize(("requires_python", "version"), [
        (">=3.10", "3.14.0"),
        (">=3.10,<3.13", "3.12.12"),
        ("~=3.11.0", "3.11.14"),
        ("<3.12.12,>=3.12", "3.12.11"),
        ("==3.10.*", "3.10.19"),
        ("", "3.14.0"),
    ])
    def test_none_with_requires_python_picks_the_newest_allowed(self, catalogue: ReleaseCatalogue,
                                                                requires_python: str, version: str) -> None:
        name = f"cpython-{version}+{TAG}-{LINUX}-install_only_stripped.tar.gz"
        assert pick(catalogue, requires_python=SpecifierSet(requires_python)) == (name, sha(name))

    def test_requires_python_allowing_only_a_prerelease(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            pick(catalogue, requires_python=SpecifierSet(">=3.15"))
        assert str(info.value).startswith(
            f"release {TAG} has no install_only_stripped asset of CPython allowed by requires-python >=3.15 "
            f"for {LINUX}; it has: 3.10.19 (")

    def test_minor_outside_requires_python_is_refused(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            pick(catalogue, python_version="3.12", requires_python=SpecifierSet(">=3.13"))
        assert str(info.value).startswith(
            f"release {TAG} has no install_only_stripped asset of CPython 3.12 allowed by requires-python >=3.13 "
            f"for {LINUX}; it has: ")

    def test_minor_respects_requires_python_within_the_minor(self, catalogue: ReleaseCatalogue) -> None:
        name = f"cpython-3.12.11+{TAG}-{LINUX}-install_only_stripped.tar.gz"
        assert pick(catalogue, python_version="3.12", requires_python=SpecifierSet("!=3.12.12"))[0] == name

    def test_exact_version_outside_requires_python_is_refused(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError):
            pick(catalogue, python_version="3.10.19", requires_python=SpecifierSet(">=3.11"))

    def test_missing_version_message_lists_the_release(self) -> None:
        names = [f"cpython-3.12.12+{TAG}-{LINUX}-install_only.tar.gz",
                 f"cpython-3.12.12+{TAG}-{LINUX}-install_only_stripped.tar.gz",
                 f"cpython-3.12.12+{TAG}-{LINUX}-pgo+lto-full.tar.zst",
                 f"cpython-3.12.12+{TAG}-{LINUX}-debug-full.tar.zst",
                 f"cpython-3.13.9+{TAG}-{LINUX}-install_only_stripped.tar.gz",
                 f"cpython-3.13.9+{TAG}-{LINUX}-freethreaded-install_only_stripped.tar.gz",
                 f"cpython-3.13.9+{TAG}-{LINUX}-freethreaded+pgo+lto-full.tar.zst",
                 f"cpython-3.9.24+{TAG}-{LINUX}-install_only.tar.gz",
                 f"cpython-3.11.14+{TAG}-{MAC}-install_only_stripped.tar.gz"]
        catalogue = ReleaseCatalogue.parse(TAG, sums(names))
        with pytest.raises(ResolveError) as info:
            pick(catalogue, python_version="3.11")
        assert str(info.value) == (
            "release 20261021 has no install_only_stripped asset of CPython 3.11 for x86_64-unknown-linux-gnu; "
            "it has: 3.9.24 (install_only); "
            "3.12.12 (full[debug], full[pgo+lto], install_only, install_only_stripped); "
            "3.13.9 (full[freethreaded+pgo+lto], install_only_stripped, install_only_stripped[freethreaded])"
        )

    def test_missing_exact_patch(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            pick(catalogue, python_version="3.12.7")
        message = str(info.value)
        assert message.startswith(f"release {TAG} has no install_only_stripped asset of CPython 3.12.7 for {LINUX}; "
                                  "it has: 3.10.19 (")
        assert "; 3.12.11 (" in message and "; 3.12.12 (" in message and "; 3.15.0rc1 (" in message
        # versions are listed in version order, not string order
        assert message.index("3.10.19") < message.index("3.11.14") < message.index("3.15.0rc1")


class TestTargetSelection:
    @pytest.mark.parametrize("target", [LINUX, MAC, WINDOWS, MUSL])
    def test_each_target(self, catalogue: ReleaseCatalogue, target: str) -> None:
        asset, digest = select_asset(catalogue, target=target, flavor="install_only", python_version="3.13")
        assert asset.file_name == f"cpython-3.13.9+{TAG}-{target}-install_only.tar.gz"
        assert digest == sha(asset.file_name)

    def test_missing_triple_with_did_you_mean(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            select_asset(catalogue, target="x86_64-unknown-linux-gnux", flavor="install_only")
        assert str(info.value) == (
            'release 20261021 has no asset for target triple x86_64-unknown-linux-gnux '
            '(did you mean "x86_64-unknown-linux-gnu"?); it has: aarch64-apple-darwin, x86_64-pc-windows-msvc, '
            'x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl'
        )

    def test_missing_triple_typo_of_a_released_one(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            select_asset(catalogue, target="aarch64-apple-darwn", flavor="install_only")
        assert '(did you mean "aarch64-apple-darwin"?)' in str(info.value)

    def test_missing_triple_without_a_close_one_in_the_release(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            select_asset(catalogue, target="aarch64-unknown-linux-gnu", flavor="install_only")
        assert str(info.value) == (
            "release 20261021 has no asset for target triple aarch64-unknown-linux-gnu; it has: "
            "aarch64-apple-darwin, x86_64-pc-windows-msvc, x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl"
        )


class TestFlavorSelection:
    @pytest.mark.parametrize("flavor", ["install_only", "install_only_stripped"])
    def test_install_only_flavors(self, catalogue: ReleaseCatalogue, flavor: str) -> None:
        name = f"cpython-3.12.12+{TAG}-{LINUX}-{flavor}.tar.gz"
        assert pick(catalogue, flavor=flavor, python_version="3.12") == (name, sha(name))

    @pytest.mark.parametrize(("target", "options"), [(LINUX, "pgo+lto"), (MAC, "pgo+lto"), (WINDOWS, "pgo"),
                                                     (MUSL, "lto")])
    def test_full_prefers_the_optimised_build(self, catalogue: ReleaseCatalogue, target: str, options: str) -> None:
        asset, digest = select_asset(catalogue, target=target, flavor="full", python_version="3.12")
        assert asset.file_name == f"cpython-3.12.12+{TAG}-{target}-{options}-full.tar.zst"
        assert digest == sha(asset.file_name)

    def test_full_falls_back_to_noopt_but_never_debug_or_static(self) -> None:
        names = [f"cpython-3.12.12+{TAG}-{MUSL}-{options}-full.tar.zst" for options in ("debug", "lto+static", "noopt")]
        catalogue = ReleaseCatalogue.parse(TAG, sums(names))
        asset, _ = select_asset(catalogue, target=MUSL, flavor="full")
        assert asset.build_options == "noopt"

    def test_full_with_only_debug_builds_is_refused(self) -> None:
        names = [f"cpython-3.12.12+{TAG}-{LINUX}-debug-full.tar.zst",
                 f"cpython-3.12.12+{TAG}-{LINUX}-install_only.tar.gz"]
        catalogue = ReleaseCatalogue.parse(TAG, sums(names))
        with pytest.raises(ResolveError) as info:
            select_asset(catalogue, target=LINUX, flavor="full", python_version="3.12")
        assert str(info.value) == ("release 20261021 has no full asset of CPython 3.12 for x86_64-unknown-linux-gnu; "
                                   "it has: 3.12.12 (full[debug], install_only)")

    def test_install_only_never_picks_a_freethreaded_build(self, catalogue: ReleaseCatalogue) -> None:
        asset, _ = select_asset(catalogue, target=LINUX, flavor="install_only", python_version="3.14")
        assert asset.build_options == ""
        assert not asset.freethreaded


class TestFreethreaded:
    @pytest.mark.parametrize("flavor", ["install_only", "install_only_stripped"])
    def test_install_only(self, catalogue: ReleaseCatalogue, flavor: str) -> None:
        name = f"cpython-3.14.0+{TAG}-{LINUX}-freethreaded-{flavor}.tar.gz"
        assert pick(catalogue, flavor=flavor, freethreaded=True) == (name, sha(name))

    @pytest.mark.parametrize(("target", "options"), [(LINUX, "freethreaded+pgo+lto"), (WINDOWS, "freethreaded+pgo"),
                                                     (MUSL, "freethreaded+lto")])
    def test_full_prefers_the_optimised_build(self, catalogue: ReleaseCatalogue, target: str, options: str) -> None:
        asset, _ = select_asset(catalogue, target=target, flavor="full", python_version="3.13", freethreaded=True)
        assert asset.file_name == f"cpython-3.13.9+{TAG}-{target}-{options}-full.tar.zst"

    def test_full_without_freethreaded_never_picks_one(self, catalogue: ReleaseCatalogue) -> None:
        asset, _ = select_asset(catalogue, target=LINUX, flavor="full", python_version="3.14")
        assert asset.build_options == "pgo+lto"

    def test_version_without_freethreaded_builds(self, catalogue: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            pick(catalogue, python_version="3.12", freethreaded=True)
        assert str(info.value).startswith(
            f"release {TAG} has no freethreaded install_only_stripped asset of CPython 3.12 for {LINUX}; it has: ")

    def test_none_picks_the_newest_freethreaded_version(self, catalogue: ReleaseCatalogue) -> None:
        asset, _ = select_asset(catalogue, target=MAC, flavor="install_only", freethreaded=True,
                                requires_python=SpecifierSet("<3.14"))
        assert asset.file_name == f"cpython-3.13.9+{TAG}-{MAC}-freethreaded-install_only.tar.gz"


class TestOlderReleases:
    """Releases from 2022 named Windows builds ``shared-install_only`` and ``shared-pgo``."""

    OLD = "20220227"

    @pytest.fixture
    def old(self) -> ReleaseCatalogue:
        names = []
        for version in ("3.9.10", "3.10.2"):
            head = f"cpython-{version}+{self.OLD}-{WINDOWS}"
            names += [f"{head}-shared-install_only.tar.gz", f"{head}-shared-noopt-full.tar.zst",
                      f"{head}-shared-pgo-full.tar.zst", f"{head}-static-noopt-full.tar.zst"]
            head = f"cpython-{version}+{self.OLD}-{LINUX}"
            names += [f"{head}-install_only.tar.gz", f"{head}-debug-full.tar.zst", f"{head}-pgo+lto-full.tar.zst"]
        return ReleaseCatalogue.parse(self.OLD, sums(names))

    def test_windows_install_only_is_the_shared_build(self, old: ReleaseCatalogue) -> None:
        asset, _ = select_asset(old, target=WINDOWS, flavor="install_only")
        assert asset.file_name == f"cpython-3.10.2+{self.OLD}-{WINDOWS}-shared-install_only.tar.gz"

    def test_windows_full_prefers_pgo(self, old: ReleaseCatalogue) -> None:
        asset, _ = select_asset(old, target=WINDOWS, flavor="full", python_version="3.9")
        assert asset.file_name == f"cpython-3.9.10+{self.OLD}-{WINDOWS}-shared-pgo-full.tar.zst"

    def test_no_stripped_flavor_before_20240725(self, old: ReleaseCatalogue) -> None:
        with pytest.raises(ResolveError) as info:
            select_asset(old, target=LINUX, flavor="install_only_stripped", python_version="3.10")
        assert str(info.value) == (
            "release 20220227 has no install_only_stripped asset of CPython 3.10 for x86_64-unknown-linux-gnu; "
            "it has: 3.9.10 (full[debug], full[pgo+lto], install_only); "
            "3.10.2 (full[debug], full[pgo+lto], install_only)")


class TestResolvedAsset:
    def test_to_json(self, catalogue: ReleaseCatalogue) -> None:
        asset, digest = select_asset(catalogue, target=LINUX, flavor="full", python_version="3.12")
        resolved = ResolvedAsset(asset, digest, asset.url())
        name = f"cpython-3.12.12+{TAG}-{LINUX}-pgo+lto-full.tar.zst"
        assert resolved.to_json() == {
            "asset": name,
            "url": f"{GITHUB_DOWNLOAD_PREFIX}/{TAG}/cpython-3.12.12%2B{TAG}-{LINUX}-pgo%2Blto-full.tar.zst",
            "sha256": sha(name),
            "python_version": "3.12.12",
            "release": TAG,
            "target": LINUX,
            "flavor": "full",
            "build_options": "pgo+lto",
        }

    def test_to_json_under_a_mirror(self) -> None:
        name = f"cpython-3.13.9+{TAG}-{MAC}-freethreaded-install_only.tar.gz"
        asset = parse_asset_name(name)
        data = ResolvedAsset(asset, sha(name), asset.url("http://127.0.0.1:9/pbs/")).to_json()
        assert data["url"] == f"http://127.0.0.1:9/pbs/{TAG}/cpython-3.13.9%2B{TAG}-{MAC}-freethreaded-install_only.tar.gz"
        assert (data["flavor"], data["build_options"], data["target"]) == ("install_only", "freethreaded", MAC)

    def test_resolve_error_belongs_to_the_error_family(self) -> None:
        assert issubclass(ResolveError, HatchPbsError)
