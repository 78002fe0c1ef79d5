"""A cached release catalogue (``SHA256SUMS``) is read from the mirror again, once, when it misses a target triple
or a download does not match it: a mirror grows (``hatch-pbs mirror`` adds triples) and a wrong line gets fixed.
Real HTTP over loopback; the mirror is a copy of the fake release that the tests change between builds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs.config import HookConfig, parse_hook_config
from hatch_pbs.errors import ChecksumError, ResolveError
from hatch_pbs.pipeline import fetch_runtimes, resolve_runtimes
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.fetch import load_catalogue

FLAVOR = "install_only_stripped"


@pytest.fixture
def mirror(fake_release: FakeRelease, tmp_path: Path) -> Path:
    """A writable copy of the fake release (the assets are hard links: nothing rewrites them)."""
    root = tmp_path / "mirror"
    shutil.copytree(fake_release.root, root, copy_function=lambda source, target: Path(target).hardlink_to(source)
                    if not source.endswith("SHA256SUMS") else shutil.copy2(source, target))
    return root


def _sums(mirror: Path, fake: FakeRelease) -> Path:
    return mirror / fake.tag / "SHA256SUMS"


def _config(tmp_path: Path, fake: FakeRelease, mirror_url: str, *, offline: bool = False) -> HookConfig:
    raw = {"python-version": fake.python_version, "targets": [fake.triple], "flavor": FLAVOR, "mirror": mirror_url,
           "cache-dir": str(tmp_path / "cache"), "offline": offline}
    return parse_hook_config(raw, project_scripts={}, root=tmp_path, environ={})


def _cache_catalogue(config: HookConfig, fake: FakeRelease) -> Path:
    """Cache the mirror's catalogue as it is now, as an earlier build would have; returns the cached file."""
    cache = Cache(config.cache_dir)
    with Downloader(mirror=config.mirror) as downloader:
        load_catalogue(cache, downloader, config.mirror, fake.tag)
    return cache.catalogue_path(config.mirror, fake.tag)


def test_a_triple_added_to_the_mirror_is_found(fake_release: FakeRelease, mirror: Path, tmp_path: Path) -> None:
    sums = _sums(mirror, fake_release)
    complete = sums.read_text(encoding="utf-8")
    sums.write_text("".join(line + "\n" for line in complete.splitlines()
                            if not line.endswith(fake_release.asset_name(FLAVOR))), encoding="utf-8")
    with ReleaseServer(mirror) as server:
        config = _config(tmp_path, fake_release, server.base_url)
        cached = _cache_catalogue(config, fake_release)
        sums.write_text(complete, encoding="utf-8")  # the mirror grew
        with Downloader(mirror=config.mirror) as downloader:
            _, resolved = resolve_runtimes(config, None, Cache(config.cache_dir), downloader)
        assert resolved[fake_release.triple].asset.file_name == fake_release.asset_name(FLAVOR)
        assert server.request_count("SHA256SUMS") == 2
    assert cached.read_text(encoding="utf-8") == complete  # the cached copy was replaced


def test_a_triple_still_missing_is_read_once_and_names_the_cached_file(fake_release: FakeRelease, mirror: Path,
                                                                      tmp_path: Path) -> None:
    sums = _sums(mirror, fake_release)
    sums.write_text("".join(line + "\n" for line in sums.read_text(encoding="utf-8").splitlines()
                            if fake_release.triple not in line), encoding="utf-8")
    with ReleaseServer(mirror) as server:
        config = _config(tmp_path, fake_release, server.base_url)
        cached = _cache_catalogue(config, fake_release)
        with Downloader(mirror=config.mirror) as downloader, pytest.raises(ResolveError) as raised:
            resolve_runtimes(config, None, Cache(config.cache_dir), downloader)
        assert server.request_count("SHA256SUMS") == 2  # cached once, re-read once, not more
    assert f"(catalogue: {cached})" in str(raised.value)


def test_offline_a_miss_is_not_re_read_and_names_the_cached_file(fake_release: FakeRelease, mirror: Path,
                                                                  tmp_path: Path) -> None:
    sums = _sums(mirror, fake_release)
    complete = sums.read_text(encoding="utf-8")
    sums.write_text("".join(line + "\n" for line in complete.splitlines()
                            if not line.endswith(fake_release.asset_name(FLAVOR))), encoding="utf-8")
    with ReleaseServer(mirror) as server:
        cached = _cache_catalogue(_config(tmp_path, fake_release, server.base_url), fake_release)
        sums.write_text(complete, encoding="utf-8")
        config = _config(tmp_path, fake_release, server.base_url, offline=True)
        with Downloader(offline=True, mirror=config.mirror) as downloader, pytest.raises(ResolveError) as raised:
            resolve_runtimes(config, None, Cache(config.cache_dir), downloader)
        assert server.request_count("SHA256SUMS") == 1
    assert f"(catalogue: {cached})" in str(raised.value)


def test_a_hash_fixed_on_the_mirror_is_used(fake_release: FakeRelease, mirror: Path, tmp_path: Path) -> None:
    sums = _sums(mirror, fake_release)
    complete = sums.read_text(encoding="utf-8")
    sums.write_text(complete.replace(fake_release.sha256(FLAVOR), "0" * 64), encoding="utf-8")
    with ReleaseServer(mirror) as server:
        config = _config(tmp_path, fake_release, server.base_url)
        _cache_catalogue(config, fake_release)
        sums.write_text(complete, encoding="utf-8")  # the mirror fixed the line
        with Downloader(mirror=config.mirror) as downloader:
            resolved, _, archives = fetch_runtimes(config, None, Cache(config.cache_dir), downloader,
                                                   fake_release.triple)
        assert resolved[fake_release.triple].sha256 == fake_release.sha256(FLAVOR)
        assert archives[fake_release.sha256(FLAVOR)].read_bytes() == fake_release.assets[FLAVOR].read_bytes()
        assert server.request_count("SHA256SUMS") == 2


def test_a_hash_still_wrong_names_the_cached_file(fake_release: FakeRelease, mirror: Path, tmp_path: Path) -> None:
    sums = _sums(mirror, fake_release)
    sums.write_text(sums.read_text(encoding="utf-8").replace(fake_release.sha256(FLAVOR), "0" * 64),
                    encoding="utf-8")
    with ReleaseServer(mirror) as server:
        config = _config(tmp_path, fake_release, server.base_url)
        cached = _cache_catalogue(config, fake_release)
        with Downloader(mirror=config.mirror) as downloader, pytest.raises(ChecksumError) as raised:
            fetch_runtimes(config, None, Cache(config.cache_dir), downloader, fake_release.triple)
        assert server.request_count("SHA256SUMS") == 2
    assert f"(catalogue: {cached})" in str(raised.value)
    assert not list(Path(config.cache_dir).rglob(fake_release.asset_name(FLAVOR)))
