"""Authenticated mirrors: ``HATCH_PBS_MIRROR_TOKEN`` (bearer) or the netrc entry of the mirror host (basic) is sent
to the mirror's origin (scheme, host and port) only, never to another origin, and never along a redirect to
another host. Two real loopback servers on different ports; every header is what the servers received."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs import cli
from hatch_pbs.errors import DownloadError
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import (
    ENV_MIRROR_TOKEN,
    ENV_NETRC,
    Downloader,
    _mirror_auth,
)
from hatch_pbs.release.fetch import fetch_asset, latest_release_tag, load_catalogue
from hatch_pbs.release.resolve import ResolvedAsset, select_asset

TOKEN = "s3cr3t-token-value"
BEARER = f"Bearer {TOKEN}"


@pytest.fixture
def mirror(fake_release: FakeRelease) -> Iterator[ReleaseServer]:
    """The configured mirror."""
    with ReleaseServer(fake_release.root) as server:
        yield server


@pytest.fixture
def elsewhere(fake_release: FakeRelease) -> Iterator[ReleaseServer]:
    """Another origin (same host, another port) serving the same files: a CDN a mirror redirects to."""
    with ReleaseServer(fake_release.root) as server:
        yield server


def downloader(mirror: str, environ: dict[str, str]) -> Downloader:
    return Downloader(attempts=2, backoff=0, timeout=30, progress=False, mirror=mirror, environ=environ)


def resolved_asset(cache: Cache, client: Downloader, mirror: str, release: FakeRelease) -> ResolvedAsset:
    catalogue = load_catalogue(cache, client, mirror, release.tag)
    asset, sha256 = select_asset(catalogue, target=release.triple, flavor="install_only_stripped",
                                 python_version=release.python_version)
    return ResolvedAsset(asset, sha256, asset.url(mirror))


def authorizations(server: ReleaseServer) -> list[str | None]:
    return [headers.get("authorization") for _method, _path, headers in server.request_headers]


def test_token_is_sent_to_the_mirror_for_every_request(mirror: ReleaseServer, fake_release: FakeRelease,
                                                       tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    with downloader(mirror.base_url, {ENV_MIRROR_TOKEN: TOKEN}) as client:
        assert latest_release_tag(client, mirror.base_url) == fake_release.tag
        path = fetch_asset(cache, client, resolved_asset(cache, client, mirror.base_url, fake_release))
    assert path.is_file()
    assert authorizations(mirror) == [BEARER, BEARER, BEARER]  # latest-release.json, SHA256SUMS, the asset


def test_token_is_not_sent_to_another_port_or_host_name(mirror: ReleaseServer, elsewhere: ReleaseServer,
                                                        fake_release: FakeRelease) -> None:
    path = f"{fake_release.tag}/SHA256SUMS"
    port = mirror.base_url.rsplit(":", 1)[1]
    with downloader(mirror.base_url, {ENV_MIRROR_TOKEN: TOKEN}) as client:
        client.read_bytes(elsewhere.url(path))  # same host, another port
        client.read_bytes(f"http://localhost:{port}/{path}")  # same port, another host name
        client.read_bytes(mirror.url(path))
    assert authorizations(elsewhere) == [None]
    assert authorizations(mirror) == [None, BEARER]


def test_token_is_dropped_on_a_redirect_to_another_host(mirror: ReleaseServer, elsewhere: ReleaseServer,
                                                        fake_release: FakeRelease, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    mirror.redirect_base = elsewhere.base_url
    with downloader(mirror.base_url, {ENV_MIRROR_TOKEN: TOKEN}) as client:
        resolved = resolved_asset(cache, client, mirror.base_url, fake_release)
        mirror.add_fault(resolved.asset.file_name, "redirect")
        path = fetch_asset(cache, client, resolved)
    assert path.is_file()
    assert mirror.headers_of(resolved.asset.file_name)[0]["authorization"] == BEARER  # the mirror got it ...
    redirected = elsewhere.headers_of(resolved.asset.file_name)
    assert len(redirected) == 1
    assert "authorization" not in redirected[0]  # ... the redirect target did not
    assert all(TOKEN not in value for value in redirected[0].values())


def test_netrc_credentials_go_to_the_mirror_host_only(mirror: ReleaseServer, elsewhere: ReleaseServer,
                                                      fake_release: FakeRelease, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login builder password hunter2\n"
                     "default login anyone password everywhere\n")
    basic = "Basic " + base64.b64encode(b"builder:hunter2").decode()
    mirror.redirect_base = elsewhere.base_url
    path = f"{fake_release.tag}/SHA256SUMS"
    mirror.add_fault("SHA256SUMS", "redirect")
    with downloader(mirror.base_url, {ENV_NETRC: str(netrc)}) as client:
        client.read_bytes(mirror.url(path))  # redirected to the other port
        client.read_bytes(f"http://localhost:{mirror.base_url.rsplit(':', 1)[1]}/{path}")
        client.read_bytes(mirror.url(path))
    assert authorizations(mirror) == [basic, None, basic]
    assert authorizations(elsewhere) == [None]  # neither the entry of 127.0.0.1 nor the `default` entry


def test_token_takes_precedence_over_netrc(mirror: ReleaseServer, tmp_path: Path, fake_release: FakeRelease) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login builder password hunter2\n")
    with downloader(mirror.base_url, {ENV_NETRC: str(netrc), ENV_MIRROR_TOKEN: TOKEN}) as client:
        client.read_bytes(mirror.url(f"{fake_release.tag}/SHA256SUMS"))
    assert authorizations(mirror) == [BEARER]


def test_no_credentials_without_a_configured_mirror(mirror: ReleaseServer, fake_release: FakeRelease) -> None:
    with downloader("", {ENV_MIRROR_TOKEN: TOKEN}) as client:
        client.read_bytes(mirror.url(f"{fake_release.tag}/SHA256SUMS"))
    assert authorizations(mirror) == [None]


@pytest.mark.parametrize("mirror_url", [
    "https://github.com/astral-sh/python-build-standalone/releases/download",  # the default: never
    "file:///srv/pbs",
    "",
])
def test_token_is_never_attached_to_the_default_or_a_file_mirror(mirror_url: str) -> None:
    assert _mirror_auth(mirror_url, {ENV_MIRROR_TOKEN: TOKEN}) is None


def test_mirror_path_does_not_narrow_the_origin() -> None:
    """The scope is the origin (scheme, host, port), as the header is in HTTP; the default port is implied."""
    auth = _mirror_auth("https://pbs.example.com/mirror/pbs", {ENV_MIRROR_TOKEN: TOKEN})
    assert auth is not None and auth.origin == ("https", "pbs.example.com", 443)
    assert auth.header == BEARER


def test_unreadable_netrc_is_a_download_error_naming_the_file(mirror: ReleaseServer, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login builder password hunter2 port 8080\n")  # `port` is no netrc token
    with downloader(mirror.base_url, {ENV_NETRC: str(netrc)}) as client:
        with pytest.raises(DownloadError, match=f"cannot read the netrc file {netrc}"):
            client.read_bytes(mirror.url("latest-release.json"))
    assert mirror.connections == 0


def test_token_is_not_in_error_messages(mirror: ReleaseServer, tmp_path: Path) -> None:
    with downloader(mirror.base_url, {ENV_MIRROR_TOKEN: TOKEN}) as client:
        with pytest.raises(DownloadError) as caught:
            client.download(mirror.url("nope/missing.tar.gz"), tmp_path / "out", sha256="0" * 64)
    assert TOKEN not in str(caught.value)
    assert authorizations(mirror) == [BEARER]


def test_cli_fetch_sends_the_token_from_the_environment(mirror: ReleaseServer, fake_release: FakeRelease,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(ENV_MIRROR_TOKEN, TOKEN)
    monkeypatch.delenv("HATCH_PBS_OFFLINE", raising=False)
    status = cli.main(["fetch", "--release", fake_release.tag, "--python-version", fake_release.python_version,
                       "--target", fake_release.triple, "--mirror", mirror.base_url,
                       "--cache-dir", str(tmp_path / "cache")])
    assert status == 0, capsys.readouterr().err
    assert Path(capsys.readouterr().out.strip()).is_file()
    assert authorizations(mirror) == [BEARER, BEARER]
