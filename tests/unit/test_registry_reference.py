"""Image references (Docker's normalisation), the scheme chosen per registry host, and credentials read from the
files podman, skopeo and Docker write (and a credential helper on PATH)."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from hatch_pbs.errors import RegistryError
from hatch_pbs.registry.client import ENV_INSECURE_REGISTRIES, is_loopback, registry_base_url
from hatch_pbs.registry.credentials import find_credentials
from hatch_pbs.registry.reference import ImageReference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), [
    ("debian", "docker.io", "library/debian", "latest", None),
    ("debian:bookworm-slim", "docker.io", "library/debian", "bookworm-slim", None),
    ("library/debian:12", "docker.io", "library/debian", "12", None),
    ("docker.io/debian", "docker.io", "library/debian", "latest", None),
    ("index.docker.io/library/debian", "docker.io", "library/debian", "latest", None),
    ("someone/app", "docker.io", "someone/app", "latest", None),
    ("ghcr.io/owner/app:1.0", "ghcr.io", "owner/app", "1.0", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("localhost:5000/a/b/c:v_1.2-x", "localhost:5000", "a/b/c", "v_1.2-x", None),
    ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", None),
    ("[::1]:5000/app", "[::1]:5000", "app", "latest", None),
    (f"quay.io/o/app@{DIGEST}", "quay.io", "o/app", None, DIGEST),
    (f"debian:12@{DIGEST}", "docker.io", "library/debian", "12", DIGEST),
    ("a.b/x__y.z-w---v:T", "a.b", "x__y.z-w---v", "T", None),
])
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    reference = ImageReference.parse(text)
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == \
        (registry, repository, tag, digest)
    assert ImageReference.parse(str(reference)) == reference


def test_canonical_form_and_api_host() -> None:
    reference = ImageReference.parse("debian:bookworm-slim")
    assert str(reference) == "docker.io/library/debian:bookworm-slim"
    assert reference.api_host == "registry-1.docker.io"
    assert ImageReference.parse("ghcr.io/o/a").api_host == "ghcr.io"
    pinned = reference.with_digest(DIGEST)
    assert str(pinned) == f"docker.io/library/debian:bookworm-slim@{DIGEST}"
    assert pinned.pull_reference == DIGEST
    assert str(pinned.with_tag("13")) == "docker.io/library/debian:13"


@pytest.mark.parametrize(("text", "problem"), [
    ("", "it is empty"),
    ("Debian", "repository component 'Debian'"),
    ("ghcr.io/Owner/app", "repository component 'Owner'"),
    ("debian:", "the tag ''"),
    ("debian:-x", "the tag '-x'"),
    ("debian:" + "x" * 129, "the tag"),
    ("debian@sha256:abc", "the digest 'sha256:abc'"),
    ("debian@md5:" + "a" * 32, "the digest"),
    ("ghcr.io/", "repository name is empty"),
    ("a..b", "repository component 'a..b'"),
    ("bad_host.-x:99/app", "the registry 'bad_host.-x:99'"),
])
def test_parse_errors_name_the_reference_and_the_part(text: str, problem: str) -> None:
    with pytest.raises(RegistryError) as raised:
        ImageReference.parse(text)
    assert f"invalid image reference {text!r}" in str(raised.value)
    assert problem in str(raised.value)


def test_with_tag_and_digest_validate() -> None:
    reference = ImageReference.parse("debian")
    with pytest.raises(RegistryError, match="invalid tag"):
        reference.with_tag("a b")
    with pytest.raises(RegistryError, match="invalid digest"):
        reference.with_digest("sha256:XYZ")


def test_scheme_https_unless_loopback_or_listed() -> None:
    assert registry_base_url("registry.example.com", {}) == "https://registry.example.com"
    assert registry_base_url("registry-1.docker.io", {}) == "https://registry-1.docker.io"
    for host in ("localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "localhost"):
        assert is_loopback(host)
        assert registry_base_url(host, {}) == f"http://{host}"
    environ = {ENV_INSECURE_REGISTRIES: " registry.example.com:5000 , lab.local"}
    assert registry_base_url("registry.example.com:5000", environ) == "http://registry.example.com:5000"
    assert registry_base_url("registry.example.com", environ) == "https://registry.example.com"
    assert registry_base_url("lab.local:443", environ) == "http://lab.local:443"
    assert not is_loopback("10.0.0.1:5000")


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "PATH": os.environ.get("PATH", ""), **extra}


def _write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_docker_config_auths(tmp_path: Path) -> None:
    _write(tmp_path / "docker" / "config.json", {"auths": {
        "https://index.docker.io/v1/": {"auth": _auth("hub", "s3cret:with:colons")},
        "ghcr.io": {"username": "gh", "password": "pat"},
        "https://quay.io/v1/": {"identitytoken": "refresh"},
    }})
    environ = _environ(tmp_path, DOCKER_CONFIG=str(tmp_path / "docker"))
    hub = find_credentials("registry-1.docker.io", environ)
    assert hub is not None and (hub.username, hub.password) == ("hub", "s3cret:with:colons")
    assert "config.json" in hub.source and "s3cret" not in repr(hub)
    ghcr = find_credentials("ghcr.io", environ)
    assert ghcr is not None and (ghcr.username, ghcr.password) == ("gh", "pat")
    quay = find_credentials("quay.io", environ)
    assert quay is not None and quay.identity_token == "refresh"
    assert find_credentials("example.com", environ) is None


def test_default_docker_config_is_in_home(tmp_path: Path) -> None:
    _write(tmp_path / "home" / ".docker" / "config.json", {"auths": {"r.io": {"auth": _auth("u", "p")}}})
    found = find_credentials("r.io", _environ(tmp_path))
    assert found is not None and found.username == "u"


def test_registry_auth_file_comes_first(tmp_path: Path) -> None:
    auth_file = _write(tmp_path / "auth.json", {"auths": {"r.io": {"auth": _auth("podman", "p1")}}})
    _write(tmp_path / "run" / "containers" / "auth.json", {"auths": {"r.io": {"auth": _auth("xdg", "p2")}}})
    _write(tmp_path / "docker" / "config.json", {"auths": {"r.io": {"auth": _auth("docker", "p3")}}})
    environ = _environ(tmp_path, DOCKER_CONFIG=str(tmp_path / "docker"), XDG_RUNTIME_DIR=str(tmp_path / "run"))
    assert find_credentials("r.io", {**environ, "REGISTRY_AUTH_FILE": str(auth_file)}).username == "podman"  # type: ignore[union-attr]
    assert find_credentials("r.io", environ).username == "xdg"  # type: ignore[union-attr]
    environ.pop("XDG_RUNTIME_DIR")
    assert find_credentials("r.io", environ).username == "docker"  # type: ignore[union-attr]


def test_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    config = tmp_path / "docker" / "config.json"
    config.parent.mkdir()
    config.write_text("{not json")
    environ = _environ(tmp_path, DOCKER_CONFIG=str(tmp_path / "docker"))
    with pytest.raises(RegistryError, match="is not valid JSON"):
        find_credentials("r.io", environ)
    _write(config, {"auths": {"r.io": {"auth": base64.b64encode(b"nocolon").decode()}}})
    with pytest.raises(RegistryError, match="not base64 of `user:password`"):
        find_credentials("r.io", environ)


def _helper(directory: Path, name: str, script: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"docker-credential-{name}"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.skipif(os.name == "nt", reason="a shell script as the helper")
def test_credential_helpers(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _helper(bin_dir, "test", 'read server; echo "{\\"ServerURL\\": \\"$server\\", \\"Username\\": \\"u-$server\\", '
                             '\\"Secret\\": \\"s\\"}"')
    _helper(bin_dir, "empty", "echo 'credentials not found in native keychain'; exit 1")
    _write(tmp_path / "docker" / "config.json", {"credHelpers": {"r.io": "test", "none.io": "empty"},
                                                 "credsStore": "test", "auths": {"other.io": {}}})
    environ = {**_environ(tmp_path, DOCKER_CONFIG=str(tmp_path / "docker")),
               "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    found = find_credentials("r.io", environ)
    assert found is not None and (found.username, found.password) == ("u-r.io", "s")
    assert "credHelpers" in found.source
    assert find_credentials("none.io", environ) is None
    store = find_credentials("docker.io", environ)  # credsStore, asked for Docker Hub's server name
    assert store is not None and store.username == "u-https://index.docker.io/v1/"
    _write(tmp_path / "docker" / "config.json", {"credHelpers": {"r.io": "missing"}})
    with pytest.raises(RegistryError, match="docker-credential-missing .* is not installed"):
        find_credentials("r.io", environ)
