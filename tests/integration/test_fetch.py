"""Tests of ``hatch_pbs.release.fetch``: catalogue, ``latest``, and assets through the cache, served by a real loopback
server (``release_server``) or a ``file://`` mirror."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs.errors import ChecksumError, DownloadError, OfflineError, ResolveError
from hatch_pbs.release.assets import GITHUB_DOWNLOAD_PREFIX, LATEST_RELEASE_URL
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.fetch import (
    fetch_asset,
    latest_release_tag,
    latest_release_url,
    load_catalogue,
)
from hatch_pbs.release.resolve import ResolvedAsset, select_asset

FLAVOR = "install_only_stripped"


@pytest.fixture
def downloader() -> Iterator[Downloader]:
    with Downloader(attempts=3, backoff=0, timeout=30, progress=False) as client:
        yield client


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def resolve(cache: Cache, downloader: Downloader, mirror: str, release: FakeRelease,
            flavor: str = FLAVOR) -> ResolvedAsset:
    """What a build does before fetching: the catalogue, then the asset of the served interpreter."""
    catalogue = load_catalogue(cache, downloader, mirror, release.tag)
    asset, sha256 = select_asset(catalogue, target=release.triple, flavor=flavor,
                                 python_version=release.python_version)
    return ResolvedAsset(asset, sha256, asset.url(mirror))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def leftovers(cache: Cache) -> list[Path]:
    """Files in the cache's asset area other than lock files (what a failed fetch must not leave)."""
    assets = cache.root / "assets"
    if not assets.exists():
        return []
    return sorted(path for path in assets.rglob("*") if path.is_file() and not path.name.endswith(".lock"))


# --------------------------------------------------------------------------------------------------------------
# fetch_asset: success and the warm cache


@pytest.mark.parametrize("flavor", ["install_only", "install_only_stripped", "full"])
def test_fetch_asset_downloads_verifies_and_publishes(release_server: ReleaseServer, fake_release: FakeRelease,
                                                      cache: Cache, downloader: Downloader, flavor: str) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release, flavor)
    assert resolved.sha256 == fake_release.sha256(flavor)
    path = fetch_asset(cache, downloader, resolved)
    assert path == cache.root / "assets" / fake_release.sha256(flavor) / fake_release.asset_name(flavor)
    assert file_sha256(path) == fake_release.sha256(flavor)
    assert release_server.request_count(fake_release.asset_name(flavor)) == 1
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")] == [path.name]


def test_warm_cache_makes_no_request(release_server: ReleaseServer, fake_release: FakeRelease, tmp_path: Path,
                                     ) -> None:
    """Two builds sharing a cache: the archive and SHA256SUMS are each requested once in all."""
    name = fake_release.asset_name(FLAVOR)
    paths = []
    for _build in range(2):
        cache = Cache(tmp_path / "cache")
        with Downloader(backoff=0, progress=False) as client:
            paths.append(fetch_asset(cache, client, resolve(cache, client, release_server.base_url, fake_release)))
    assert paths[0] == paths[1]
    assert release_server.request_count(name) == 1
    assert release_server.request_count("SHA256SUMS") == 1
    assert len(release_server.requests) == 2


def test_warm_cache_works_offline(release_server: ReleaseServer, fake_release: FakeRelease, cache: Cache,
                                  downloader: Downloader) -> None:
    online = fetch_asset(cache, downloader, resolve(cache, downloader, release_server.base_url, fake_release))
    release_server.requests.clear()
    with Downloader(offline=True, progress=False) as offline:
        resolved = resolve(cache, offline, release_server.base_url, fake_release)
        assert fetch_asset(cache, offline, resolved) == online
    assert release_server.requests == []


def test_cache_entries_are_shared_across_mirrors(release_server: ReleaseServer, fake_release: FakeRelease,
                                                 cache: Cache, downloader: Downloader) -> None:
    """Assets are content-addressed: an archive fetched through one mirror serves a build using another."""
    first = fetch_asset(cache, downloader, resolve(cache, downloader, fake_release.root.as_uri(), fake_release))
    second = fetch_asset(cache, downloader, resolve(cache, downloader, release_server.base_url, fake_release))
    assert first == second
    assert release_server.request_count(fake_release.asset_name(FLAVOR)) == 0
    assert release_server.request_count("SHA256SUMS") == 1  # catalogues are kept per mirror


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_cache_entry_is_never_used_and_is_replaced(release_server: ReleaseServer,
                                                           fake_release: FakeRelease, cache: Cache,
                                                           downloader: Downloader, damage: str) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release)
    entry = fetch_asset(cache, downloader, resolved)
    good = entry.read_bytes()
    entry.write_bytes({"garbage": b"x" * len(good), "truncated": good[: len(good) // 2], "empty": b""}[damage])
    with Downloader(offline=True, progress=False) as offline, pytest.raises(OfflineError, match="is not in the cache"):
        fetch_asset(cache, offline, resolved)  # offline, the damaged entry is refused, not used
    assert fetch_asset(cache, downloader, resolved) == entry
    assert entry.read_bytes() == good
    assert release_server.request_count(resolved.asset.file_name) == 2


# --------------------------------------------------------------------------------------------------------------
# fetch_asset: failures publish nothing


def test_wrong_body_is_a_checksum_error_and_nothing_is_cached(release_server: ReleaseServer,
                                                              fake_release: FakeRelease, cache: Cache,
                                                              downloader: Downloader) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release)
    name = fake_release.asset_name(FLAVOR)
    release_server.add_fault(name, "wrong-body")
    with pytest.raises(ChecksumError) as caught:
        fetch_asset(cache, downloader, resolved)
    reversed_sha = hashlib.sha256(fake_release.assets[FLAVOR].read_bytes()[::-1]).hexdigest()
    message = str(caught.value)
    assert f"expected {fake_release.sha256(FLAVOR)}" in message
    assert f"got {reversed_sha}" in message
    assert not cache.asset_path(resolved.sha256, name).exists()
    assert leftovers(cache) == []
    # The next attempt (fault gone) downloads and publishes normally.
    assert file_sha256(fetch_asset(cache, downloader, resolved)) == resolved.sha256
    assert release_server.request_count(name) == 2


def test_wrong_expected_sha256_publishes_nothing(release_server: ReleaseServer, fake_release: FakeRelease,
                                                 cache: Cache, downloader: Downloader) -> None:
    good = resolve(cache, downloader, release_server.base_url, fake_release)
    bad = ResolvedAsset(good.asset, "0" * 64, good.url)
    with pytest.raises(ChecksumError, match=f"expected {'0' * 64}.*got {good.sha256}"):
        fetch_asset(cache, downloader, bad)
    assert not cache.asset_path(bad.sha256, good.asset.file_name).exists()
    assert not cache.asset_path(good.sha256, good.asset.file_name).exists()
    assert leftovers(cache) == []


def test_404_fails_at_once_and_publishes_nothing(release_server: ReleaseServer, fake_release: FakeRelease,
                                                 cache: Cache, downloader: Downloader) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release)
    name = fake_release.asset_name(FLAVOR)
    release_server.add_fault(name, "404", times=5)
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        fetch_asset(cache, downloader, resolved)
    assert not isinstance(caught.value, (ChecksumError, OfflineError))
    assert release_server.request_count(name) == 1
    assert leftovers(cache) == []


@pytest.mark.parametrize("fault", ["truncate", "500", "503", "reset"])
def test_transient_fault_then_success(release_server: ReleaseServer, fake_release: FakeRelease, cache: Cache,
                                      downloader: Downloader, fault: str) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release)
    name = fake_release.asset_name(FLAVOR)
    release_server.add_fault(name, fault)
    path = fetch_asset(cache, downloader, resolved)
    assert file_sha256(path) == resolved.sha256
    assert release_server.request_count(name) == 2
    assert leftovers(cache) == [path]


def test_truncation_past_the_attempts_fails_and_publishes_nothing(release_server: ReleaseServer,
                                                                  fake_release: FakeRelease, cache: Cache,
                                                                  downloader: Downloader) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release)
    name = fake_release.asset_name(FLAVOR)
    release_server.add_fault(name, "truncate", times=3)
    with pytest.raises(DownloadError, match="peer closed connection") as caught:
        fetch_asset(cache, downloader, resolved)
    assert not isinstance(caught.value, ChecksumError)
    assert release_server.request_count(name) == 3
    assert leftovers(cache) == []


def test_stale_part_file_is_not_an_entry(release_server: ReleaseServer, fake_release: FakeRelease, cache: Cache,
                                         downloader: Downloader) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release)
    entry = cache.asset_path(resolved.sha256, resolved.asset.file_name)
    entry.parent.mkdir(parents=True)
    stale = entry.parent / f".{entry.name}.0123456789ab.part"
    stale.write_bytes(fake_release.assets[FLAVOR].read_bytes()[:1000])  # a killed download
    path = fetch_asset(cache, downloader, resolved)
    assert path == entry
    assert file_sha256(path) == resolved.sha256
    assert not stale.exists()
    assert release_server.request_count(resolved.asset.file_name) == 1


# --------------------------------------------------------------------------------------------------------------
# Offline mode


def test_offline_cold_cache_names_the_asset_and_the_fetch_command(release_server: ReleaseServer,
                                                                  fake_release: FakeRelease, cache: Cache,
                                                                  downloader: Downloader) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release)  # catalogue cached online
    release_server.requests.clear()
    with Downloader(offline=True, progress=False) as offline, pytest.raises(OfflineError) as caught:
        fetch_asset(cache, offline, resolved)
    assert release_server.requests == []
    message = str(caught.value)
    assert resolved.asset.file_name in message
    expected_command = (f"hatch-pbs fetch --release {fake_release.tag} --python-version {fake_release.python_version} "
                        f"--target {fake_release.triple} --flavor {FLAVOR} --mirror {release_server.base_url} "
                        f"--cache-dir {cache.root}")
    assert f"`{expected_command}`" in message
    assert leftovers(cache) == []


def test_offline_fetch_command_omits_the_default_mirror(fake_release: FakeRelease, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache dir")
    catalogue_entry = cache.catalogue_path(GITHUB_DOWNLOAD_PREFIX, fake_release.tag)
    catalogue_entry.parent.mkdir(parents=True)
    catalogue_entry.write_bytes((fake_release.release_dir / "SHA256SUMS").read_bytes())
    with Downloader(offline=True, progress=False) as offline:
        resolved = resolve(cache, offline, GITHUB_DOWNLOAD_PREFIX, fake_release)
        assert resolved.url.startswith(GITHUB_DOWNLOAD_PREFIX)
        with pytest.raises(OfflineError) as caught:
            fetch_asset(cache, offline, resolved)
    message = str(caught.value)
    assert "--mirror" not in message
    assert f"--cache-dir '{cache.root}'`" in message  # shell-quoted: the path has a space


def test_offline_cold_catalogue_makes_no_request(release_server: ReleaseServer, fake_release: FakeRelease,
                                                 cache: Cache) -> None:
    with Downloader(offline=True, progress=False) as offline, pytest.raises(OfflineError) as caught:
        load_catalogue(cache, offline, release_server.base_url, fake_release.tag)
    assert release_server.requests == []
    message = str(caught.value)
    assert "SHA256SUMS" in message and fake_release.tag in message
    assert f"hatch-pbs fetch --release {fake_release.tag} --mirror {release_server.base_url}" in message


def test_file_mirror_works_offline(release_server: ReleaseServer, fake_release: FakeRelease, cache: Cache) -> None:
    mirror = fake_release.root.as_uri()
    with Downloader(offline=True, progress=False) as offline:
        resolved = resolve(cache, offline, mirror, fake_release)
        assert resolved.url.startswith("file://") and "%2B" in resolved.url
        path = fetch_asset(cache, offline, resolved)
    assert file_sha256(path) == fake_release.sha256(FLAVOR)
    assert cache.catalogue_path(mirror, fake_release.tag).is_file()
    assert release_server.requests == []


def test_file_mirror_checksum_mismatch_publishes_nothing(fake_release: FakeRelease, cache: Cache,
                                                         downloader: Downloader) -> None:
    good = resolve(cache, downloader, fake_release.root.as_uri(), fake_release)
    with pytest.raises(ChecksumError):
        fetch_asset(cache, downloader, ResolvedAsset(good.asset, "f" * 64, good.url))
    assert leftovers(cache) == []


# --------------------------------------------------------------------------------------------------------------
# Concurrency


def test_concurrent_threads_download_once(release_server: ReleaseServer, fake_release: FakeRelease, cache: Cache,
                                          downloader: Downloader) -> None:
    resolved = resolve(cache, downloader, release_server.base_url, fake_release, "full")
    start = threading.Barrier(3)
    results: list[Path | BaseException] = []

    def build() -> None:
        with Downloader(backoff=0, progress=False) as client:
            start.wait(30)
            try:
                results.append(fetch_asset(Cache(cache.root), client, resolved))
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                results.append(error)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 3 and len(set(results)) == 1, results
    path = results[0]
    assert isinstance(path, Path) and file_sha256(path) == resolved.sha256
    assert release_server.request_count(resolved.asset.file_name) == 1
    assert leftovers(cache) == [path]


def test_concurrent_processes_download_once(release_server: ReleaseServer, fake_release: FakeRelease,
                                            tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from hatch_pbs.release.cache import Cache
        from hatch_pbs.release.download import Downloader
        from hatch_pbs.release.fetch import fetch_asset, load_catalogue
        from hatch_pbs.release.resolve import ResolvedAsset, select_asset
        cache = Cache(Path({str(cache_root)!r}))
        mirror = {release_server.base_url!r}
        with Downloader(backoff=0, progress=False) as client:
            catalogue = load_catalogue(cache, client, mirror, {fake_release.tag!r})
            asset, sha = select_asset(catalogue, target={fake_release.triple!r}, flavor="install_only",
                                      python_version={fake_release.python_version!r})
            print(fetch_asset(cache, client, ResolvedAsset(asset, sha, asset.url(mirror))))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    paths = {out.strip() for out, _err in outputs}
    assert len(paths) == 1
    path = Path(paths.pop())
    assert file_sha256(path) == fake_release.sha256("install_only")
    assert release_server.request_count(fake_release.asset_name("install_only")) == 1
    assert leftovers(Cache(cache_root)) == [path]


# --------------------------------------------------------------------------------------------------------------
# load_catalogue


def test_load_catalogue_reads_and_caches_sha256sums(release_server: ReleaseServer, fake_release: FakeRelease,
                                                    cache: Cache, downloader: Downloader) -> None:
    first = load_catalogue(cache, downloader, release_server.base_url, fake_release.tag)
    second = load_catalogue(Cache(cache.root), downloader, release_server.base_url, fake_release.tag)
    assert first == second
    assert first.release == fake_release.tag
    assert {asset.file_name for asset, _ in first.assets} >= {fake_release.asset_name(f) for f in fake_release.assets}
    assert release_server.requests == [("GET", f"/{fake_release.tag}/SHA256SUMS")]
    entry = cache.catalogue_path(release_server.base_url, fake_release.tag)
    assert entry.read_bytes() == (fake_release.release_dir / "SHA256SUMS").read_bytes()


def test_load_catalogue_retries_server_errors(release_server: ReleaseServer, fake_release: FakeRelease,
                                              cache: Cache, downloader: Downloader) -> None:
    release_server.add_fault("SHA256SUMS", "503")
    release_server.add_fault("SHA256SUMS", "reset")
    load_catalogue(cache, downloader, release_server.base_url, fake_release.tag)
    assert release_server.request_count("SHA256SUMS") == 3


def test_missing_catalogue_is_a_download_error(release_server: ReleaseServer, cache: Cache,
                                               downloader: Downloader) -> None:
    with pytest.raises(DownloadError, match="catalogue of release 20991231.*HTTP 404"):
        load_catalogue(cache, downloader, release_server.base_url, "20991231")
    assert release_server.request_count("SHA256SUMS") == 1
    assert not cache.root.exists() or list(cache.root.rglob("SHA256SUMS")) == []


@pytest.mark.parametrize("body", ["<html>rate limited</html>\n", "", "0123  cpython-3.12.7.tar.gz\n"])
def test_malformed_catalogue_is_a_resolve_error_and_not_cached(tmp_path: Path, downloader: Downloader,
                                                               body: str) -> None:
    root = tmp_path / "mirror"
    (root / "20261021").mkdir(parents=True)
    (root / "20261021" / "SHA256SUMS").write_text(body)
    cache = Cache(tmp_path / "cache")
    with ReleaseServer(root) as server:
        with pytest.raises(ResolveError, match="SHA256SUMS of release 20261021"):
            load_catalogue(cache, downloader, server.base_url, "20261021")
        assert not cache.catalogue_path(server.base_url, "20261021").exists()
    assert not cache.root.exists() or list(cache.root.rglob("*.part")) == []


def test_file_mirror_catalogue(fake_release: FakeRelease, cache: Cache, downloader: Downloader) -> None:
    catalogue = load_catalogue(cache, downloader, fake_release.root.as_uri(), fake_release.tag)
    assert fake_release.triple in catalogue.triples()


# --------------------------------------------------------------------------------------------------------------
# latest_release_tag


def test_latest_release_url() -> None:
    assert latest_release_url(GITHUB_DOWNLOAD_PREFIX) == LATEST_RELEASE_URL
    assert latest_release_url("http://mirror.example/pbs") == "http://mirror.example/pbs/latest-release.json"


def test_latest_release_tag_from_server(release_server: ReleaseServer, fake_release: FakeRelease,
                                        downloader: Downloader) -> None:
    assert latest_release_tag(downloader, release_server.base_url) == fake_release.tag
    assert release_server.requests == [("GET", "/latest-release.json")]


def test_latest_release_tag_from_file_mirror_offline(fake_release: FakeRelease) -> None:
    with Downloader(offline=True, progress=False) as offline:
        assert latest_release_tag(offline, fake_release.root.as_uri()) == fake_release.tag


def test_latest_release_tag_offline_is_refused(release_server: ReleaseServer) -> None:
    with Downloader(offline=True, progress=False) as offline, pytest.raises(OfflineError, match="`release`"):
        latest_release_tag(offline, release_server.base_url)
    assert release_server.requests == []


def test_latest_release_tag_missing_file(tmp_path: Path, downloader: Downloader) -> None:
    with ReleaseServer(tmp_path) as server, pytest.raises(DownloadError, match="HTTP 404"):
        latest_release_tag(downloader, server.base_url)


@pytest.mark.parametrize("body", [
    "not json",
    "",
    "[]",
    '"20261021"',
    '{"version": 1}',
    '{"tag": 20261021}',
    '{"tag": "latest"}',
    '{"tag": "2026-10-21"}',
    '{"tag": "../../etc"}',
    b"\xff\xfe{",
])
def test_malformed_latest_release_json_is_a_resolve_error(tmp_path: Path, downloader: Downloader,
                                                          body: str | bytes) -> None:
    path = tmp_path / "latest-release.json"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    with ReleaseServer(tmp_path) as server, pytest.raises(ResolveError, match="latest-release.json"):
        latest_release_tag(downloader, server.base_url)


def test_latest_release_json_extra_fields_are_ignored(tmp_path: Path, downloader: Downloader) -> None:
    document = {"version": 1, "tag": "20270101", "release_url": "x", "asset_url_prefix": "y", "new": [1]}
    (tmp_path / "latest-release.json").write_text(json.dumps(document))
    assert latest_release_tag(downloader, tmp_path.as_uri()) == "20270101"
