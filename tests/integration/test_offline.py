"""Offline mode (``HATCH_PBS_OFFLINE=1`` or option ``offline = true``) opens no connection at all: asserted at the
socket level, by a loopback server that counts every TCP connection it accepts. A cache miss names what is
missing and the ``hatch-pbs fetch`` command that fills the cache; running that command online makes the offline
build work."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs.config import parse_hook_config
from hatch_pbs.errors import OfflineError
from hatch_pbs.pipeline import Project, build_artifacts
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.fetch import fetch_asset, latest_release_tag, load_catalogue
from hatch_pbs.release.resolve import ResolvedAsset, select_asset

FLAVOR = "install_only_stripped"


def hatch_pbs_command() -> list[str]:
    """The installed ``hatch-pbs`` console script of this environment (``python -m hatch_pbs.cli`` if absent)."""
    script = Path(sys.executable).parent / ("hatch-pbs.exe" if os.name == "nt" else "hatch-pbs")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hatch_pbs.cli"]


def run_cli(arguments: list[str], *, offline: bool) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HATCH_PBS_")}
    if offline:
        env["HATCH_PBS_OFFLINE"] = "1"
    return subprocess.run([*hatch_pbs_command(), *arguments], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def fetch_arguments(release: FakeRelease, mirror: str, cache: Path) -> list[str]:
    return ["fetch", "--release", release.tag, "--python-version", release.python_version, "--target",
            release.triple, "--flavor", FLAVOR, "--mirror", mirror, "--cache-dir", str(cache)]


def test_offline_downloader_opens_no_connection(release_server: ReleaseServer, fake_release: FakeRelease,
                                                tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    mirror = release_server.base_url
    with Downloader(offline=True, progress=False, mirror=mirror) as client:
        with pytest.raises(OfflineError, match="latest-release.json"):
            latest_release_tag(client, mirror)
        with pytest.raises(OfflineError, match=r"catalogue \(SHA256SUMS\) of release .* is not cached"):
            load_catalogue(cache, client, mirror, fake_release.tag)
        with pytest.raises(OfflineError):
            client.download(release_server.url(f"{fake_release.tag}/{fake_release.asset_name(FLAVOR)}"),
                            tmp_path / "out", sha256=fake_release.sha256(FLAVOR))
    assert release_server.connections == 0
    assert release_server.requests == []


def test_offline_cli_opens_no_connection_and_names_the_fetch_command(release_server: ReleaseServer,
                                                                     fake_release: FakeRelease,
                                                                     tmp_path: Path) -> None:
    mirror, cache = release_server.base_url, tmp_path / "cache"
    arguments = fetch_arguments(fake_release, mirror, cache)

    # Cold cache: the catalogue is missing.
    cold = run_cli(arguments, offline=True)
    assert cold.returncode == 1
    assert "catalogue (SHA256SUMS) of release" in cold.stderr and "hatch-pbs fetch --release" in cold.stderr
    assert release_server.connections == 0

    # Catalogue cached (by `resolve`, online), asset missing: the message names the asset and the command.
    assert run_cli(["resolve", *arguments[1:]], offline=False).returncode == 0
    online = release_server.connections
    assert online > 0
    missing = run_cli(arguments, offline=True)
    assert missing.returncode == 1
    asset = fake_release.asset_name(FLAVOR)
    assert f"{asset} is not in the cache" in missing.stderr
    command = re.search(r"run `(hatch-pbs fetch [^`]+)` while online", missing.stderr)
    assert command is not None, missing.stderr
    assert release_server.connections == online

    # The command it names, run online, fills the cache; then the offline fetch succeeds without a connection.
    words = shlex.split(command.group(1))
    filled = run_cli(words[1:], offline=False)
    assert filled.returncode == 0, filled.stderr
    online = release_server.connections
    warm = run_cli(arguments, offline=True)
    assert warm.returncode == 0, warm.stderr
    assert Path(warm.stdout.strip()) == Path(filled.stdout.strip())
    assert Path(warm.stdout.strip()).name == asset
    assert release_server.connections == online


def test_offline_option_build_opens_no_connection(release_server: ReleaseServer, fake_release: FakeRelease,
                                                  tmp_path: Path) -> None:
    """``offline = true`` in the hook table: the whole build pipeline refuses before any connection."""
    config = parse_hook_config({"offline": True, "mirror": release_server.base_url, "release": fake_release.tag,
                                "cache-dir": str(tmp_path / "cache"), "python-version": fake_release.python_version,
                                "targets": [fake_release.triple]},
                               project_scripts={"demo": "demo:main"}, root=tmp_path, environ={})
    assert config.offline
    project = Project(name="demo", version="1.0", requires_python=None, scripts={"demo": "demo:main"},
                      wheel=tmp_path / "demo-1.0-py3-none-any.whl")
    with pytest.raises(OfflineError, match="hatch-pbs fetch"):
        build_artifacts(config, project, tmp_path / "dist")
    assert release_server.connections == 0
    assert not (tmp_path / "dist").exists() or list((tmp_path / "dist").iterdir()) == []


def test_environment_variable_turns_an_online_config_offline(release_server: ReleaseServer,
                                                             fake_release: FakeRelease, tmp_path: Path) -> None:
    config = parse_hook_config({"mirror": release_server.base_url, "release": "latest",
                                "cache-dir": str(tmp_path / "cache"), "targets": [fake_release.triple]},
                               project_scripts={}, root=tmp_path, environ={"HATCH_PBS_OFFLINE": "1"})
    project = Project(name="demo", version="1.0", requires_python=None, scripts={},
                      wheel=tmp_path / "demo-1.0-py3-none-any.whl")
    with pytest.raises(OfflineError, match='release = "latest" needs the network'):
        build_artifacts(config, project, tmp_path / "dist")
    assert release_server.connections == 0


def test_warm_cache_fetch_asset_offline_opens_no_connection(release_server: ReleaseServer,
                                                            fake_release: FakeRelease, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    mirror = release_server.base_url
    with Downloader(backoff=0, progress=False) as client:
        catalogue = load_catalogue(cache, client, mirror, fake_release.tag)
        asset, sha256 = select_asset(catalogue, target=fake_release.triple, flavor=FLAVOR,
                                     python_version=fake_release.python_version)
        resolved = ResolvedAsset(asset, sha256, asset.url(mirror))
        fetch_asset(cache, client, resolved)
    online = release_server.connections
    with Downloader(offline=True, progress=False) as client:
        assert load_catalogue(cache, client, mirror, fake_release.tag).release == fake_release.tag
        assert fetch_asset(cache, client, resolved).is_file()
    assert release_server.connections == online
