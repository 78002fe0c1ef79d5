"""A real container registry for the tests (Debian's ``docker-registry``, distribution 2.8) on a loopback port,
a builder of small multi-platform OCI layout archives, and ``skopeo`` to publish them independently of our push."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
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
