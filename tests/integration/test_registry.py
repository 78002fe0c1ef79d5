"""The registry client against a real registry (Debian's docker-registry, distribution 2.8, on a loopback port):
pulling images published by skopeo, pushing layout archives checked with skopeo, HTTP Basic (htpasswd) and
bearer-token authentication (a loopback token service signing real JWTs that the registry verifies), and the
``hatch-pbs push`` command."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_support import (
    PLATFORMS,
    REF_NAME,
    SBOM_MEDIA_TYPE,
    Layout,
    LocalRegistry,
    TokenServer,
    multi_platform_layout,
    platform_image,
    publish_with_skopeo,
    skopeo,
)

from hatch_pbs.cli import main
from hatch_pbs.errors import ImageError, OfflineError, RegistryError
from hatch_pbs.registry.client import ENV_INSECURE_REGISTRIES, RegistryClient
from hatch_pbs.registry.pull import pull_image
from hatch_pbs.registry.push import push_layout
from hatch_pbs.registry.reference import ImageReference

BOTH = [("linux", "amd64"), ("linux", "arm64")]


@pytest.fixture(autouse=True)
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Docker config directory, and none of the other credentials files: the tests' own only."""
    docker = tmp_path / "docker-config"
    docker.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(docker))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv(ENV_INSECURE_REGISTRIES, raising=False)
    return docker


def _login(docker_config: Path, host: str, user: str, password: str) -> None:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path / "registry") as server:
        yield server


@pytest.fixture
def published(registry: LocalRegistry, tmp_path: Path) -> ImageReference:
    """A two-platform image (linux/amd64, linux/arm64/v8) published with skopeo as ``base/image:1.0``."""
    publish_with_skopeo(multi_platform_layout(tmp_path / "base.tar"), f"{registry.host}/base/image:1.0")
    return ImageReference.parse(f"{registry.host}/base/image:1.0")


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_pull_both_platforms_then_nothing_again(published: ImageReference, tmp_path: Path) -> None:
    cache, lines = tmp_path / "cache", []
    pulled = pull_image(published, BOTH, cache_dir=cache, report=lines.append)
    assert set(pulled) == set(BOTH)
    assert pulled[("linux", "arm64")].platform == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    for image in pulled.values():
        assert image.config["architecture"] == image.platform["architecture"]
        assert image.config["config"]["Labels"]["salt"] == f"base-{image.platform['architecture']}"
        assert image.manifest["config"]["digest"] == image.config_descriptor.digest
        assert len(image.layers) == 1
        for descriptor in (image.config_descriptor, *image.layers):
            path = image.blob_path(descriptor.digest)
            assert path == cache / "oci" / "blobs" / "sha256" / descriptor.digest[7:]
            assert _sha256(path) == descriptor.digest and path.stat().st_size == descriptor.size
        assert _sha256(image.blob_path(image.digest)) == image.digest  # the manifest is a blob too
    assert len(lines) == 4 and all(line.startswith("pulled base/image ") for line in lines)
    record = json.loads((cache / "oci" / "refs" / published.registry.replace(":", "_") / "base" / "image" /
                         "1.0.json").read_text())
    assert record["mediaType"] == "application/vnd.oci.image.index.v1+json"
    again: list[str] = []
    assert pull_image(published, BOTH, cache_dir=cache, report=again.append) == pulled
    assert again == []
    assert not list((cache / "oci" / "blobs" / "sha256").glob(".*"))  # no temporaries left


def test_offline_pull_works_from_the_cache_only(published: ImageReference, tmp_path: Path) -> None:
    with pytest.raises(OfflineError, match=f"the image {published} is not in the cache"):
        pull_image(published, BOTH, cache_dir=tmp_path / "cache", offline=True)
    online = pull_image(published, BOTH, cache_dir=tmp_path / "cache")
    assert pull_image(published, BOTH, cache_dir=tmp_path / "cache", offline=True) == online
    pinned = published.with_digest(online[("linux", "amd64")].digest)
    assert pull_image(pinned, [("linux", "amd64")], cache_dir=tmp_path / "cache", offline=True)[
        ("linux", "amd64")].digest == pinned.digest
    with pytest.raises(OfflineError, match="offline mode"):
        pull_image(published.with_tag("2.0"), BOTH, cache_dir=tmp_path / "cache", offline=True)


def test_a_missing_platform_lists_the_platforms_there_are(published: ImageReference, tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as raised:
        pull_image(published, [("linux", "amd64"), ("linux", "s390x")], cache_dir=tmp_path / "cache")
    assert str(raised.value) == (f"the image {published} has no image for linux/s390x; it has: linux/amd64, "
                                 f"linux/arm64/v8")


def test_a_damaged_cached_blob_is_downloaded_again(published: ImageReference, tmp_path: Path) -> None:
    image = pull_image(published, [("linux", "amd64")], cache_dir=tmp_path / "cache")[("linux", "amd64")]
    layer = image.blob_path(image.layers[0].digest)
    layer.write_bytes(b"damaged")
    lines: list[str] = []
    pull_image(published, [("linux", "amd64")], cache_dir=tmp_path / "cache", report=lines.append)
    assert lines == [f"pulled base/image {image.layers[0].digest[7:19]} 0.0 MB"]
    assert _sha256(layer) == image.layers[0].digest


def test_a_blob_the_registry_serves_damaged_is_not_kept(published: ImageReference, registry: LocalRegistry,
                                                        tmp_path: Path) -> None:
    image = pull_image(published, [("linux", "amd64")], cache_dir=tmp_path / "first")[("linux", "amd64")]
    digest = image.layers[0].digest
    stored = registry.directory / "storage" / "docker" / "registry" / "v2" / "blobs" / "sha256" / digest[7:9] / \
        digest[7:] / "data"
    stored.write_bytes(b"not the layer")
    with pytest.raises(RegistryError, match=f"the blob {digest} of .* does not match its digest: got sha256:"):
        pull_image(published, [("linux", "amd64")], cache_dir=tmp_path / "second")
    blobs = tmp_path / "second" / "oci" / "blobs" / "sha256"
    assert not (blobs / digest[7:]).exists() and not list(blobs.glob(f".{digest[7:]}*"))


def test_pull_a_single_platform_manifest(registry: LocalRegistry, tmp_path: Path) -> None:
    layout = Layout()
    manifest = platform_image(layout, PLATFORMS[1], "single")
    manifest.pop("platform")
    layout.entries.append({**manifest, "annotations": {REF_NAME: "one"}})
    publish_with_skopeo(layout.write(tmp_path / "single.tar"), f"{registry.host}/single:one")
    reference = ImageReference.parse(f"{registry.host}/single:one")
    pulled = pull_image(reference, [("linux", "arm64")], cache_dir=tmp_path / "cache")
    assert pulled[("linux", "arm64")].platform == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    with pytest.raises(RegistryError, match="has no image for linux/amd64; it has: linux/arm64/v8"):
        pull_image(reference, [("linux", "amd64")], cache_dir=tmp_path / "cache")


def test_no_such_image(registry: LocalRegistry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"no such manifest 1\.0 at the registry .* \(repository nothing/here\) "
                                            r"\(HTTP 404\)"):
        pull_image(ImageReference.parse(f"{registry.host}/nothing/here:1.0"), BOTH, cache_dir=tmp_path)


def test_push_then_skopeo_sees_it_and_a_second_push_uploads_nothing(registry: LocalRegistry,
                                                                      tmp_path: Path) -> None:
    archive = multi_platform_layout(tmp_path / "app.tar", tag="2.1", salt="app", sbom=True)
    reference = ImageReference.parse(f"{registry.host}/team/app:2.1")
    lines: list[str] = []
    result = push_layout(archive, reference, tags=["latest"], report=lines.append)
    assert result.tags == ("2.1", "latest")
    assert result.blobs_uploaded == 6 and result.blobs_skipped == 0 and len(lines) == 6
    assert result.bytes_uploaded == _blob_bytes(archive) > 0
    raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/team/app:2.1")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == result.digest
    assert len(json.loads(raw)["manifests"]) == 2
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/team/app:latest"))
    assert {"2.1", "latest"} <= set(inspected["RepoTags"])
    again = push_layout(archive, reference)
    assert (again.digest, again.blobs_uploaded, again.bytes_uploaded, again.blobs_skipped) == (result.digest, 0, 0, 6)


def _blob_bytes(archive: Path) -> int:
    """The bytes of the layout's configs and layers (its manifests and indexes are pushed as manifests)."""
    total = 0
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.name.startswith("blobs/"):
                continue
            content = tar.extractfile(member).read()  # type: ignore[union-attr]
            try:
                document = json.loads(content)
            except (ValueError, UnicodeDecodeError):
                document = None
            if not (isinstance(document, dict) and ("manifests" in document or "layers" in document)):
                total += len(content)
    return total


def test_the_sbom_is_reachable_through_the_referrers_tag(registry: LocalRegistry, tmp_path: Path) -> None:
    archive = multi_platform_layout(tmp_path / "app.tar", sbom=True)
    reference = ImageReference.parse(f"{registry.host}/team/app:1.0")
    push_layout(archive, reference)
    with RegistryClient() as client:
        index = json.loads(client.get_manifest(reference).content)
        subject = index["manifests"][0]["digest"]
        assert client.get_referrers(reference, subject) is None  # distribution 2.8 has no referrers API
        fallback = json.loads(client.get_manifest(reference, subject.replace(":", "-")).content)
        [entry] = fallback["manifests"]
        assert entry["artifactType"] == SBOM_MEDIA_TYPE
        referrer = json.loads(client.get_manifest(reference, entry["digest"]).content)
        assert referrer["subject"]["digest"] == subject
        assert client.blob_exists(reference, referrer["layers"][0]["digest"])
    push_layout(archive, reference)  # pushed again: the tag still lists it once
    with RegistryClient() as client:
        assert len(json.loads(client.get_manifest(reference, subject.replace(":", "-")).content)["manifests"]) == 1


def test_a_damaged_archive_blob_is_an_image_error(registry: LocalRegistry, tmp_path: Path) -> None:
    archive = multi_platform_layout(tmp_path / "app.tar")
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(archive) as source, tarfile.open(damaged, "w") as target:
        for member in source.getmembers():
            content = source.extractfile(member).read()  # type: ignore[union-attr]
            if content.startswith(b"\x1f\x8b"):  # a gzipped layer
                content = content[:-1] + bytes([content[-1] ^ 1])
            target.addfile(member, io.BytesIO(content))
    with pytest.raises(ImageError, match="is damaged: blobs/sha256/"):
        push_layout(damaged, ImageReference.parse(f"{registry.host}/team/app:1.0"))


def test_basic_authentication_with_docker_config_credentials(tmp_path: Path, no_credentials: Path) -> None:
    with LocalRegistry(tmp_path / "registry", users={"alice": "wonderland"}) as registry:
        archive = multi_platform_layout(tmp_path / "app.tar")
        reference = ImageReference.parse(f"{registry.host}/private/app:1.0")
        with pytest.raises(RegistryError, match=f"the registry {registry.host} asks for a user name and password "
                                                f"\\(HTTP Basic\\) for private/app and there are none"):
            push_layout(archive, reference)
        _login(no_credentials, registry.host, "alice", "wrong")
        with pytest.raises(RegistryError, match="authentication failed for .* HTTP 401 \\(credentials from "
                                                ".*config.json \\(auths"):
            push_layout(archive, reference)
        _login(no_credentials, registry.host, "alice", "wonderland")
        assert push_layout(archive, reference).blobs_uploaded == 4
        assert set(pull_image(reference, BOTH, cache_dir=tmp_path / "cache")) == set(BOTH)


def test_bearer_tokens_from_a_token_service(tmp_path: Path, no_credentials: Path) -> None:
    """The registry verifies each JWT against the token service's certificate (``auth: token``): anonymous
    tokens grant pull only, as Docker Hub's do; a login's grant push too."""
    with TokenServer(tmp_path, users={"bob": "builder"}) as tokens, \
            LocalRegistry(tmp_path / "registry", auth=tokens.registry_auth()) as registry:
        archive = multi_platform_layout(tmp_path / "app.tar")
        reference = ImageReference.parse(f"{registry.host}/team/app:1.0")
        with pytest.raises(RegistryError, match="authentication failed for upload of blob .* HTTP 401 \\(no "
                                                "credentials for 127.0.0.1"):
            push_layout(archive, reference)
        _login(no_credentials, registry.host, "bob", "builder")
        assert push_layout(archive, reference).blobs_uploaded == 4
        # the scope is the registry's challenge's, whose actions distribution lists in either order
        assert {(user, scope.replace("push,pull", "pull,push")) for user, scope in tokens.requests} >= {
            ("bob", "repository:team/app:pull,push")}
        (no_credentials / "config.json").unlink()
        tokens.requests.clear()
        assert set(pull_image(reference, BOTH, cache_dir=tmp_path / "cache")) == set(BOTH)
        assert tokens.requests == [(None, "repository:team/app:pull")]  # one token, kept for every request
        _login(no_credentials, registry.host, "bob", "wrong")
        with pytest.raises(RegistryError, match="authentication failed at the token service .* HTTP 401 "
                                                "\\(credentials from "):
            pull_image(reference, BOTH, cache_dir=tmp_path / "other")


def test_https_unless_loopback_or_insecure(monkeypatch: pytest.MonkeyPatch) -> None:
    with RegistryClient() as client:
        assert client.base_url("registry.example.com") == "https://registry.example.com"
        assert client.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    monkeypatch.setenv(ENV_INSECURE_REGISTRIES, "registry.example.com")
    with RegistryClient() as client:
        assert client.base_url("registry.example.com:8080") == "http://registry.example.com:8080"
        assert client.base_url("other.example.com") == "https://other.example.com"


def test_offline_client_contacts_nobody() -> None:
    with RegistryClient(offline=True) as client, pytest.raises(OfflineError, match="forbids contacting the "
                                                                                   "registry registry.example.com"):
        client.get_manifest(ImageReference.parse("registry.example.com/app:1"))


def test_an_unreachable_registry_names_the_host(tmp_path: Path) -> None:
    from registry_support import free_port

    host = f"127.0.0.1:{free_port()}"
    with RegistryClient(attempts=1) as client, pytest.raises(RegistryError, match=f"cannot reach the registry {host}"):
        client.get_manifest(ImageReference.parse(f"{host}/app:1"))


def test_cli_push(registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = multi_platform_layout(tmp_path / "app.tar", tag="3.0")
    assert main(["push", str(archive), f"{registry.host}/cli/app", "--tag", "stable", "--timeout", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"pushed {registry.host}/cli/app@sha256:")
    assert out[0].endswith("(4 blobs, 0.0 MB uploaded, 0 already there)")
    assert out[1:] == [f"{registry.host}/cli/app:3.0", f"{registry.host}/cli/app:stable"]  # the layout's, then --tag
    assert main(["push", str(archive), f"{registry.host}/cli/app:edge"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [f"{registry.host}/cli/app:edge"]  # the reference's own tag instead of the layout's
    assert main(["push", str(archive), f"{registry.host}/cli/app"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("(0 blobs, 0.0 MB uploaded, 4 already there)")
    assert out[1:] == [f"{registry.host}/cli/app:3.0"]


def test_cli_push_bad_reference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(tmp_path / "app.tar"), "Bad/Reference"]) == 1
    err = capsys.readouterr().err
    assert err == ("hatch-pbs: error: invalid image reference 'Bad/Reference': the repository component "
                   "'Reference' must be lowercase letters and digits, separated by '.', '_', '__' or '-'\n")


def test_server_errors_are_retried_a_bounded_number_of_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-registry cannot be made to fail on demand: a loopback server answers 503 for the first tries."""
    import http.server
    import threading

    from hatch_pbs.registry import client as client_module

    monkeypatch.setattr(client_module, "BACKOFF", 0.01)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode()
    answers: list[int] = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        failures = 2

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            status = 503 if len(answers) < Flaky.failures else 200
            answers.append(status)
            body = b"" if status == 503 else manifest
            self.send_response(status)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *arguments: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reference = ImageReference.parse(f"127.0.0.1:{server.server_address[1]}/flaky/app:1")
        with RegistryClient() as client:
            assert client.get_manifest(reference).content == manifest
        assert answers == [503, 503, 200]
        answers.clear()
        Flaky.failures = 3
        with RegistryClient() as client, pytest.raises(RegistryError, match="GET manifest 1 failed at the registry "
                                                                             ".* HTTP 503 Service Unavailable"):
            client.get_manifest(reference)
        assert answers == [503, 503, 503]
    finally:
        server.shutdown()
        server.server_close()
