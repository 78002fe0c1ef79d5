"""A real container registry for the tests (Debian's ``docker-registry``, distribution 2.8) on a loopback port,
a builder of small multi-platform OCI layout archives, and ``skopeo`` to publish them independently of our push."""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
REF_NAME = "org.opencontainers.image.ref.name"
PLATFORMS = ({"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def htpasswd_line(user: str, password: str) -> str:
    """One htpasswd line with a bcrypt hash (distribution's htpasswd auth accepts bcrypt only)."""
    if shutil.which("htpasswd"):
        return subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True,
                              text=True).stdout.strip()
    bcrypt = pytest.importorskip("bcrypt")
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"


class LocalRegistry:
    """``docker-registry serve`` on ``127.0.0.1:<free port>``, storing in ``directory``; a context manager.

    Args:
        directory: scratch directory (the config file, the storage and any htpasswd file).
        users: ``{user: password}`` for htpasswd (HTTP Basic) authentication; none: anonymous.
        auth: an ``auth`` section of the config instead (a token server's).
    """

    def __init__(self, directory: Path, *, users: Mapping[str, str] | None = None,
                 auth: Mapping[str, Any] | None = None) -> None:
        if shutil.which("docker-registry") is None:
            pytest.skip("docker-registry (Debian package docker-registry) is not installed")
        self.directory = Path(directory)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.users = dict(users or {})
        self.auth = auth
        self._process: subprocess.Popen[bytes] | None = None

    def _config(self) -> dict[str, Any]:
        storage = self.directory / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "version": 0.1, "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if self.users:
            passwords = self.directory / "htpasswd"
            passwords.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "hatch-pbs-tests", "path": str(passwords)}}
        elif self.auth is not None:
            config["auth"] = dict(self.auth)
        return config

    def __enter__(self) -> LocalRegistry:
        config = self.directory / "config.yml"
        config.write_text(json.dumps(self._config()))  # JSON is YAML
        log = (self.directory / "registry.log").open("wb")
        self._process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.directory / 'registry.log').read_text()}")
            try:
                httpx.get(f"{self.url}/v2/", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("docker-registry did not answer within 15 seconds")

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


def skopeo(*arguments: str) -> str:
    """Run skopeo (skipping the test where it is missing); its standard output."""
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    completed = subprocess.run(["skopeo", "--insecure-policy", *arguments], capture_output=True, text=True,
                               check=False, timeout=120)
    if completed.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(arguments)} failed: {completed.stderr}")
    return completed.stdout


def publish_with_skopeo(archive: Path, destination: str) -> None:
    """Copy the OCI layout archive (every platform) to ``destination`` (``host/repo:tag``) with skopeo."""
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci-archive:{archive}", f"docker://{destination}")


def canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class Layout:
    """An OCI image layout being built: blobs by digest, and the entries of its ``index.json``."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, media_type: str, content: bytes, **extra: Any) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        self.blobs[digest] = content
        return {"mediaType": media_type, "digest": digest, "size": len(content), **extra}

    def write(self, path: Path) -> Path:
        with tarfile.open(path, "w") as archive:
            members = {"oci-layout": canonical({"imageLayoutVersion": "1.0.0"}),
                       "index.json": canonical({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                "manifests": self.entries})}
            members.update({f"blobs/sha256/{digest[7:]}": content for digest, content in self.blobs.items()})
            for name, content in members.items():
                header = tarfile.TarInfo(name)
                header.size, header.mtime, header.mode = len(content), 1700000000, 0o644
                archive.addfile(header, io.BytesIO(content))
        return path


def layer_tar_gz(files: Mapping[str, bytes]) -> bytes:
    """A gzipped tar of ``files`` (name -> content), reproducible."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            header = tarfile.TarInfo(name)
            header.size, header.mtime, header.mode = len(content), 1700000000, 0o644
            archive.addfile(header, io.BytesIO(content))
    return gzip.compress(buffer.getvalue(), mtime=0)


def platform_image(layout: Layout, platform: Mapping[str, str], salt: str) -> dict[str, Any]:
    """One platform's image (a layer, a config, a manifest) in ``layout``; its descriptor with ``platform``."""
    layer_bytes = layer_tar_gz({"etc/hello": f"hello {salt}\n".encode(),
                                "opt/data.bin": hashlib.sha256(salt.encode()).digest() * 2048})
    layer = layout.add(OCI_LAYER, layer_bytes)
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer_bytes)).hexdigest()
    config = layout.add(OCI_CONFIG, canonical({
        **platform, "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"salt": salt}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}}))
    manifest = layout.add(OCI_MANIFEST, canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                                   "config": config, "layers": [layer]}))
    return {**manifest, "platform": dict(platform)}


def multi_platform_layout(path: Path, *, tag: str = "1.0", salt: str = "base",
                          platforms: Sequence[Mapping[str, str]] = PLATFORMS, sbom: bool = False) -> Path:
    """Write an OCI layout archive with one image index (``tag`` as its ref.name) of ``platforms`` (each one
    layer of a few files and a config); ``sbom``: plus a CycloneDX referrer manifest whose subject is the first
    platform's manifest, as :mod:`hatch_pbs.oci.build` writes it."""
    layout = Layout()
    manifests = [platform_image(layout, platform, f"{salt}-{platform['architecture']}") for platform in platforms]
    index = layout.add(OCI_INDEX, canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
                       annotations={REF_NAME: tag})
    layout.entries.append(index)
    if sbom:
        subject = {key: manifests[0][key] for key in ("mediaType", "digest", "size")}
        empty = layout.add(EMPTY_MEDIA_TYPE, b"{}")
        document = layout.add(SBOM_MEDIA_TYPE, canonical({"bomFormat": "CycloneDX", "specVersion": "1.6"}))
        referrer = layout.add(OCI_MANIFEST, canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": SBOM_MEDIA_TYPE, "config": empty,
            "layers": [document], "subject": subject,
            "annotations": {"org.opencontainers.image.created": "2023-11-14T22:13:20Z"}}),
            artifactType=SBOM_MEDIA_TYPE)
        layout.entries.append(referrer)
    return layout.write(path)


def _base64url(content: bytes) -> str:
    return base64.urlsafe_b64encode(content).rstrip(b"=").decode("ascii")


class TokenServer:
    """A token service for docker-registry's ``auth: token`` (the flow of Docker Hub and GHCR,
    https://distribution.github.io/distribution/spec/auth/token/) on a loopback port; a context manager.

    It issues RS256 JWTs signed by a fresh key whose self-signed certificate is the registry's
    ``rootcertbundle`` (the certificate travels in the token's ``x5c`` header). Anonymous requests get ``pull``;
    requests with the Basic credentials ``users`` grant get every action asked for. ``requests`` logs
    ``(authorised user or None, scope)``.
    """

    SERVICE, ISSUER = "hatch-pbs-test-registry", "hatch-pbs-test-issuer"

    def __init__(self, directory: Path, users: Mapping[str, str] | None = None) -> None:
        pytest.importorskip("cryptography")
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hatch-pbs test token issuer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(hours=1))
                       .not_valid_after(now + datetime.timedelta(days=1))
                       .sign(self.key, hashes.SHA256()))
        self.certificate_der = certificate.public_bytes(serialization.Encoding.DER)
        self.bundle = Path(directory) / "token-root.pem"
        self.bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self.users = dict(users or {})
        self.requests: list[tuple[str | None, str]] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def registry_auth(self) -> dict[str, Any]:
        """The ``auth`` section of the registry's config."""
        return {"token": {"realm": self.realm, "service": self.SERVICE, "issuer": self.ISSUER,
                          "rootcertbundle": str(self.bundle)}}

    def token(self, user: str | None, scope: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        if scope:
            kind, _, rest = scope.partition(":")
            repository, _, actions = rest.rpartition(":")
            granted = actions.split(",") if user is not None else [a for a in actions.split(",") if a == "pull"]
            access.append({"type": kind, "name": repository, "actions": granted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.certificate_der).decode()]}
        claims = {"iss": self.ISSUER, "sub": user or "", "aud": self.SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signed = f"{_base64url(canonical(header))}.{_base64url(canonical(claims))}"
        signature = self.key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signed}.{_base64url(signature)}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if server.users.get(name) != password:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = name
                scope = query.get("scope", [""])[0]
                server.requests.append((user, scope))
                body = json.dumps({"token": server.token(user, scope), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *arguments: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> TokenServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
