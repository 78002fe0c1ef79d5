"""Unit tests of hatch_pbs.release.assets: PBS asset file names and download URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pbs_installer  # a test dependency: a missing corpus must fail the tests, not skip them
import pytest

from hatch_pbs.errors import AssetNameError, HatchPbsError
from hatch_pbs.release.assets import (
    FLAVORS,
    GITHUB_DOWNLOAD_PREFIX,
    Asset,
    parse_asset_name,
    release_file_url,
)

GH = GITHUB_DOWNLOAD_PREFIX


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, str]]:
    """Every CPython file entry of pbs-installer's versions.json (PyPy names are skipped)."""
    entries = json.loads((Path(pbs_installer.__file__).parent / "versions.json").read_text(encoding="utf-8"))
    return [file for entry in entries for file in entry["files"] if file["filename"].startswith("cpython-")]


class TestPbsInstallerCorpus:
    """Every real CPython asset name known to pbs-installer parses and formats back to the same name and URL."""

    def test_corpus_is_large(self, corpus: list[dict[str, str]]) -> None:
        assert len(corpus) > 1000
        assert len({file["filename"] for file in corpus}) > 1000

    def test_every_name_round_trips(self, corpus: list[dict[str, str]]) -> None:
        failures = []
        for file in corpus:
            name, url = file["filename"], file["url"]
            tag = url.rsplit("/", 2)[-2]
            try:
                asset = parse_asset_name(name, release=tag)
            except AssetNameError as error:
                failures.append(f"{name}: {error}")
                continue
            if asset.file_name != name:
                failures.append(f"{name}: formats back as {asset.file_name}")
            if asset.url() != url:
                failures.append(f"{name}: URL {asset.url()} != {url}")
            if asset.release != tag:
                failures.append(f"{name}: release {asset.release} != {tag}")
        assert failures == []

    def test_parsed_fields_agree_with_pbs_installer(self, corpus: list[dict[str, str]]) -> None:
        arch_of = {"x86_64": "x86_64", "aarch64": "aarch64", "i686": "i686", "x86": "i686", "arm64": "aarch64",
                   "amd64": "x86_64"}
        platform_of = {"linux": "-linux-", "macos": "-apple-darwin", "windows": "-windows-msvc"}
        mismatches = []
        for file in corpus:
            asset = parse_asset_name(file["filename"], release=file["url"].rsplit("/", 2)[-2])
            if asset.flavor.startswith("install_only") != file["install_only"]:
                mismatches.append(f"{file['filename']}: flavor {asset.flavor}, install_only={file['install_only']}")
            if not asset.triple.startswith(arch_of.get(file["arch"], file["arch"])):
                mismatches.append(f"{file['filename']}: triple {asset.triple}, arch {file['arch']}")
            if platform_of[file["platform"]] not in asset.triple:
                mismatches.append(f"{file['filename']}: triple {asset.triple}, platform {file['platform']}")
        assert mismatches == []

    def test_corpus_covers_every_flavor_and_scheme(self, corpus: list[dict[str, str]]) -> None:
        assets = [parse_asset_name(file["filename"], release=file["url"].rsplit("/", 2)[-2]) for file in corpus]
        assert {asset.flavor for asset in assets} == set(FLAVORS)
        assert any(asset.freethreaded for asset in assets)
        assert any(asset.build_stamp for asset in assets)
        assert any(asset.platform_alias for asset in assets)


class TestCurrentNames:
    def test_install_only(self) -> None:
        name = "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz"
        asset = parse_asset_name(name)
        assert asset == Asset("3.12.7", "20241016", "x86_64-unknown-linux-gnu", "install_only", "", "", "tar.gz", "")
        assert not asset.freethreaded
        assert asset.file_name == name
        assert asset.url() == (f"{GH}/20241016/cpython-3.12.7%2B20241016-x86_64-unknown-linux-gnu-install_only.tar.gz")

    def test_install_only_stripped(self) -> None:
        name = "cpython-3.13.0+20241016-aarch64-apple-darwin-install_only_stripped.tar.gz"
        asset = parse_asset_name(name, release="20241016")
        assert (asset.python_version, asset.release, asset.triple) == ("3.13.0", "20241016", "aarch64-apple-darwin")
        assert (asset.flavor, asset.build_options, asset.extension) == ("install_only_stripped", "", "tar.gz")
        assert asset.file_name == name

    def test_full(self) -> None:
        name = "cpython-3.12.7+20241016-x86_64-pc-windows-msvc-pgo-full.tar.zst"
        asset = parse_asset_name(name)
        assert (asset.flavor, asset.build_options, asset.extension) == ("full", "pgo", "tar.zst")
        assert asset.triple == "x86_64-pc-windows-msvc"
        assert asset.file_name == name
        assert asset.url() == f"{GH}/20241016/cpython-3.12.7%2B20241016-x86_64-pc-windows-msvc-pgo-full.tar.zst"

    def test_full_pgo_lto_encodes_every_plus(self) -> None:
        name = "cpython-3.12.7+20241016-aarch64-unknown-linux-gnu-pgo+lto-full.tar.zst"
        asset = parse_asset_name(name)
        assert asset.build_options == "pgo+lto"
        assert asset.url() == f"{GH}/20241016/cpython-3.12.7%2B20241016-aarch64-unknown-linux-gnu-pgo%2Blto-full.tar.zst"
        assert "+" not in asset.url()

    @pytest.mark.parametrize("options", ["debug", "noopt", "lto", "lto+static", "pgo"])
    def test_full_build_options(self, options: str) -> None:
        name = f"cpython-3.11.10+20241016-x86_64-unknown-linux-musl-{options}-full.tar.zst"
        asset = parse_asset_name(name)
        assert (asset.flavor, asset.build_options, asset.triple) == ("full", options, "x86_64-unknown-linux-musl")
        assert not asset.freethreaded
        assert asset.file_name == name

    @pytest.mark.parametrize("flavor", ["install_only", "install_only_stripped"])
    def test_freethreaded_install_only(self, flavor: str) -> None:
        name = f"cpython-3.14.0+20261021-x86_64-unknown-linux-gnu-freethreaded-{flavor}.tar.gz"
        asset = parse_asset_name(name)
        assert (asset.flavor, asset.build_options) == (flavor, "freethreaded")
        assert asset.freethreaded
        assert asset.file_name == name

    @pytest.mark.parametrize("options", ["freethreaded+pgo+lto", "freethreaded+debug", "freethreaded+pgo"])
    def test_freethreaded_full(self, options: str) -> None:
        name = f"cpython-3.13.1+20241205-aarch64-apple-darwin-{options}-full.tar.zst"
        asset = parse_asset_name(name)
        assert (asset.flavor, asset.build_options) == ("full", options)
        assert asset.freethreaded
        assert asset.file_name == name
        assert asset.url().endswith("/20241205/cpython-3.13.1%2B20241205-aarch64-apple-darwin-"
                                    + options.replace("+", "%2B") + "-full.tar.zst")

    @pytest.mark.parametrize("version", ["3.14.0a1", "3.14.0b3", "3.15.0rc1"])
    def test_prerelease_versions(self, version: str) -> None:
        name = f"cpython-{version}+20261021-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
        assert parse_asset_name(name).python_version == version

    @pytest.mark.parametrize("triple", ["armv7-unknown-linux-gnueabi", "armv7-unknown-linux-gnueabihf",
                                        "x86_64_v3-unknown-linux-musl", "i686-pc-windows-msvc",
                                        "riscv64-unknown-linux-gnu", "s390x-unknown-linux-gnu"])
    def test_triples_with_unusual_parts(self, triple: str) -> None:
        for name in (f"cpython-3.12.7+20241016-{triple}-install_only.tar.gz",
                     f"cpython-3.12.7+20241016-{triple}-lto-full.tar.zst"):
            asset = parse_asset_name(name)
            assert asset.triple == triple
            assert asset.file_name == name

    def test_older_windows_shared_install_only(self) -> None:
        name = "cpython-3.10.2+20220227-x86_64-pc-windows-msvc-shared-install_only.tar.gz"
        asset = parse_asset_name(name, release="20220227")
        assert (asset.flavor, asset.build_options, asset.triple) == ("install_only", "shared", "x86_64-pc-windows-msvc")
        assert asset.file_name == name

    def test_constructed_asset_formats_its_name(self) -> None:
        full = Asset("3.12.7", "20241016", "x86_64-unknown-linux-gnu", "full", "pgo+lto")
        assert full.extension == "tar.zst"
        assert full.file_name == "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-pgo+lto-full.tar.zst"
        stripped = Asset("3.13.0", "20261021", "aarch64-apple-darwin", "install_only_stripped", "freethreaded")
        assert stripped.extension == "tar.gz"
        assert stripped.file_name == (
            "cpython-3.13.0+20261021-aarch64-apple-darwin-freethreaded-install_only_stripped.tar.gz")

    def test_assets_order_by_version_then_release(self) -> None:
        older = Asset("3.12.6", "20241016", "x86_64-unknown-linux-gnu", "install_only")
        newer = Asset("3.12.7", "20241016", "x86_64-unknown-linux-gnu", "install_only")
        assert sorted([newer, older]) == [older, newer]


class TestUrls:
    NAME = "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz"
    ENCODED = "cpython-3.12.7%2B20241016-x86_64-unknown-linux-gnu-install_only.tar.gz"

    def test_default_mirror_is_github(self) -> None:
        assert GITHUB_DOWNLOAD_PREFIX == "https://github.com/astral-sh/python-build-standalone/releases/download"
        assert parse_asset_name(self.NAME).url() == (
            "https://github.com/astral-sh/python-build-standalone/releases/download/20241016/" + self.ENCODED)

    @pytest.mark.parametrize("mirror", ["https://mirror.example.org/pbs", "https://mirror.example.org/pbs/",
                                        "https://mirror.example.org/pbs//"])
    def test_custom_mirror_with_and_without_trailing_slash(self, mirror: str) -> None:
        assert parse_asset_name(self.NAME).url(mirror) == f"https://mirror.example.org/pbs/20241016/{self.ENCODED}"

    def test_file_mirror(self) -> None:
        assert parse_asset_name(self.NAME).url("file:///srv/pbs/") == f"file:///srv/pbs/20241016/{self.ENCODED}"

    def test_loopback_http_mirror(self) -> None:
        url = parse_asset_name(self.NAME).url("http://127.0.0.1:8765")
        assert url == f"http://127.0.0.1:8765/20241016/{self.ENCODED}"

    def test_release_file_url_for_other_release_files(self) -> None:
        assert release_file_url(GH, "20241016", "SHA256SUMS") == f"{GH}/20241016/SHA256SUMS"
        assert release_file_url("http://h/m/", "20241016", "a+b c.txt") == "http://h/m/20241016/a%2Bb%20c.txt"


class TestLegacyNames:
    def test_legacy_install_only(self) -> None:
        name = "cpython-3.10.0-x86_64-unknown-linux-gnu-install_only-20211017T1616.tar.gz"
        asset = parse_asset_name(name)
        assert asset == Asset("3.10.0", "20211017", "x86_64-unknown-linux-gnu", "install_only", "",
                              "20211017T1616", "tar.gz", "")
        assert asset.file_name == name
        assert asset.url() == f"{GH}/20211017/{name}"

    def test_legacy_shared_install_only(self) -> None:
        name = "cpython-3.9.7-x86_64-pc-windows-msvc-shared-install_only-20211017T1616.tar.gz"
        asset = parse_asset_name(name)
        assert (asset.flavor, asset.build_options) == ("install_only", "shared")
        assert asset.file_name == name

    @pytest.mark.parametrize(("name", "options"), [
        ("cpython-3.10.0-aarch64-unknown-linux-gnu-lto-20211017T1616.tar.zst", "lto"),
        ("cpython-3.9.7-x86_64-unknown-linux-gnu-pgo+lto-20211017T1616.tar.zst", "pgo+lto"),
        ("cpython-3.8.9-x86_64-pc-windows-msvc-shared-pgo-20210414T1515.tar.zst", "shared-pgo"),
        ("cpython-3.9.7-x86_64-unknown-linux-gnu-debug-20211017T1616.tar.zst", "debug"),
    ])
    def test_legacy_full(self, name: str, options: str) -> None:
        asset = parse_asset_name(name)
        assert (asset.flavor, asset.build_options, asset.extension) == ("full", options, "tar.zst")
        assert asset.file_name == name

    @pytest.mark.parametrize(("name", "alias", "triple"), [
        ("cpython-3.7.1-linux64-20181218T1905.tar.zst", "linux64", "x86_64-unknown-linux-gnu"),
        ("cpython-3.7.5-macos-20191026T0535.tar.zst", "macos", "x86_64-apple-darwin"),
        ("cpython-3.7.5-windows-amd64-20191025T0540.tar.zst", "windows-amd64", "x86_64-pc-windows-msvc"),
        ("cpython-3.7.6-windows-x86-shared-pgo-20200217T0110.tar.zst", "windows-x86", "i686-pc-windows-msvc"),
    ])
    def test_first_releases_platform_names(self, name: str, alias: str, triple: str) -> None:
        asset = parse_asset_name(name)
        assert (asset.platform_alias, asset.triple, asset.flavor) == (alias, triple, "full")
        assert asset.file_name == name

    def test_stamp_date_is_the_release_unless_given(self) -> None:
        name = "cpython-3.7.6-windows-x86-shared-pgo-20200217T0110.tar.zst"
        assert parse_asset_name(name).release == "20200217"
        published = parse_asset_name(name, release="20200216")
        assert published.release == "20200216"
        assert published.build_stamp == "20200217T0110"
        assert published.file_name == name
        assert published.url() == f"{GH}/20200216/{name}"


class TestRejection:
    @pytest.mark.parametrize("name", [
        "",
        "SHA256SUMS",
        "latest-release.json",
        "pypy3.9-v7.3.15-linux64.tar.bz2",
        "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz.sha256",
        "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.zst",
        "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-pgo+lto-full.tar.gz",
        "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.zip",
        "cpython-3.12+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz",
        "cpython-3.12.7+2024101-x86_64-unknown-linux-gnu-install_only.tar.gz",
        "cpython-3.12.7+20241016-x86_64-unknown-freebsd-install_only.tar.gz",
        "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu.tar.gz",
        "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only_unstripped.tar.gz",
        "cpython-3.12.7+20241016-X86_64-unknown-linux-gnu-install_only.tar.gz",
        "cpython-3.12.7-x86_64-unknown-linux-gnu-install_only.tar.gz",
        "cpython-3.12.7-x86_64-unknown-linux-gnu-install_only-20211017.tar.gz",
        "python-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz",
        " cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz",
        "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz\n",
    ])
    def test_junk(self, name: str) -> None:
        with pytest.raises(AssetNameError) as info:
            parse_asset_name(name)
        assert str(info.value) == f"not a python-build-standalone CPython asset name: {name!r}"

    def test_mismatched_release_tag(self) -> None:
        name = "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz"
        with pytest.raises(AssetNameError) as info:
            parse_asset_name(name, release="20241008")
        assert str(info.value) == f"asset {name!r} belongs to release 20241016, not 20241008"

    def test_matching_release_tag_is_accepted(self) -> None:
        name = "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only.tar.gz"
        assert parse_asset_name(name, release="20241016").release == "20241016"

    def test_error_belongs_to_the_error_family(self) -> None:
        assert issubclass(AssetNameError, HatchPbsError)
