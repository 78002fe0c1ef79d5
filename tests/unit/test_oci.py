"""Unit tests of hatch_pbs.oci: which layer each artifact member goes to, reproducible layer bytes, the cache of
compressed layers, the image documents and the layout archive. Real tar files throughout."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from hatch_pbs.errors import ImageError
from hatch_pbs.oci.image import (
    Blob,
    ImageSettings,
    image_config,
    image_manifest,
    merged_env,
    metadata_labels,
    platform_of,
    sbom_manifest,
)
from hatch_pbs.oci.layers import (
    FIXED_LAYER_TIME,
    LAYER_NAMES,
    holding_directories,
    layer_of,
    write_layers,
)
from hatch_pbs.oci.layout import write_layout_archive
from hatch_pbs.release.cache import Cache

RUNTIME_TIME = 1_650_000_000
PROJECT_TIME = 1_700_000_000
RECORD = "demo/__init__.py,sha256=x,10\ndemo/cli.py,sha256=y,20\ndemo-1.0.dist-info/METADATA,,\n" \
         "demo-1.0.dist-info/RECORD,,\n../../bin/ignored,,\n"


def make_artifact(root: Path, *, code: str = "print('v1')\n") -> Path:
    """An artifact directory as the pipeline lays it out: runtime, one dependency, the project, a launcher."""
    files = {
        "python/bin/python3.12": ("\x7fELF runtime", RUNTIME_TIME, 0o755),
        "python/lib/python3.12/os.py": ("# os\n", RUNTIME_TIME, 0o644),
        "app/rich/__init__.py": ("# rich\n", PROJECT_TIME, 0o644),
        "app/rich/__pycache__/__init__.cpython-312.pyc": ("pyc", PROJECT_TIME, 0o644),
        "app/rich-13.0.dist-info/RECORD": ("rich/__init__.py,,\n", PROJECT_TIME, 0o644),
        "app/demo/__init__.py": ("", PROJECT_TIME, 0o644),
        "app/demo/cli.py": (code, PROJECT_TIME, 0o644),
        "app/demo/__pycache__/cli.cpython-312.pyc": (f"pyc {code}", PROJECT_TIME, 0o644),
        "app/demo-1.0.dist-info/METADATA": ("Name: demo\n", PROJECT_TIME, 0o644),
        "app/demo-1.0.dist-info/RECORD": (RECORD, PROJECT_TIME, 0o644),
        "bin/demo": ("#!/bin/sh\n", PROJECT_TIME, 0o755),
        "pbs-manifest.json": ("{}", PROJECT_TIME, 0o644),
    }
    for name, (content, mtime, mode) in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
        os.utime(path, (mtime, mtime))
    os.symlink("python3.12", root / "python/bin/python3")
    return root


def members_of(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as layer:
        return layer.getmembers()


class TestLayerOf:
    OWN = frozenset({"app/demo/__init__.py", "app/demo/cli.py", "app/demo-1.0.dist-info",
                     "app/demo-1.0.dist-info/RECORD"})

    @pytest.mark.parametrize(("name", "layer"), [
        ("python", "runtime"), ("python/lib/python3.12/os.py", "runtime"),
        ("app/rich/__init__.py", "dependencies"), ("app/rich", "dependencies"),
        ("app/rich/__pycache__/__init__.cpython-312.pyc", "dependencies"),
        ("app/demo/cli.py", "project"), ("app/demo/__pycache__/cli.cpython-312.opt-1.pyc", "project"),
        ("app/demo", "project"), ("app/demo/__pycache__", "project"), ("app/rich/__pycache__", "dependencies"),
        ("app/demo-1.0.dist-info/RECORD", "project"),
        ("app/demo-1.0.dist-info/METADATA", "project"),  # below the dist-info the project owns
        ("bin/demo", "project"), ("pbs-manifest.json", "project"),
    ])
    def test_member_layers(self, name: str, layer: str) -> None:
        assert layer_of(name, self.OWN, holding_directories(self.OWN)) == layer

    def test_holding_directories(self) -> None:
        assert holding_directories(frozenset({"app/a/b/c.py"})) == {"app", "app/a", "app/a/b"}


class TestWriteLayers:
    def test_three_layers_under_the_prefix(self, tmp_path: Path) -> None:
        layers = write_layers(make_artifact(tmp_path / "artifact"), "demo", "/opt/demo", tmp_path / "work",
                              Cache(tmp_path / "cache"), epoch=PROJECT_TIME, warn=pytest.fail)
        assert [layer.name for layer in layers] == list(LAYER_NAMES)
        names = {layer.name: [member.name for member in members_of(layer.path)] for layer in layers}
        assert names["runtime"] == ["opt", "opt/demo", "opt/demo/python", "opt/demo/python/bin",
                                    "opt/demo/python/bin/python3", "opt/demo/python/bin/python3.12",
                                    "opt/demo/python/lib", "opt/demo/python/lib/python3.12",
                                    "opt/demo/python/lib/python3.12/os.py"]
        assert "opt/demo/app/rich/__pycache__/__init__.cpython-312.pyc" in names["dependencies"]
        assert not any(name.startswith("opt/demo/app/demo") for name in names["dependencies"])
        assert names["project"] == sorted(names["project"])
        assert {"opt/demo/bin/demo", "opt/demo/pbs-manifest.json", "opt/demo/app/demo/cli.py",
                "opt/demo/app/demo/__pycache__/cli.cpython-312.pyc",
                "opt/demo/app/demo-1.0.dist-info/METADATA"} <= set(names["project"])
        assert not any("python/" in name or "rich" in name for name in names["project"])
        for layer in layers:
            with gzip.open(layer.path) as raw:
                assert layer.diff_id == "sha256:" + hashlib.sha256(raw.read()).hexdigest()
            assert layer.digest == "sha256:" + hashlib.sha256(layer.path.read_bytes()).hexdigest()
            assert layer.size == layer.path.stat().st_size
        assert not list((tmp_path / "work").iterdir())  # the uncompressed tars are gone

    def test_owners_modes_times_and_links(self, tmp_path: Path) -> None:
        layers = write_layers(make_artifact(tmp_path / "artifact"), "demo", "/opt/demo", tmp_path / "work",
                              Cache(tmp_path / "cache"), epoch=PROJECT_TIME, warn=pytest.fail)
        by_name = {member.name: member for layer in layers for member in members_of(layer.path)}
        assert {(member.uid, member.gid, member.uname, member.gname) for member in by_name.values()} == {
            (0, 0, "", "")}
        assert by_name["opt/demo/python/bin/python3"].issym()
        assert by_name["opt/demo/python/bin/python3"].linkname == "python3.12"
        assert by_name["opt/demo/python/bin/python3.12"].mode == 0o755
        assert by_name["opt/demo/python/lib/python3.12/os.py"].mtime == RUNTIME_TIME
        assert by_name["opt/demo/app/rich/__init__.py"].mtime == FIXED_LAYER_TIME
        assert by_name["opt/demo/bin/demo"].mode == 0o755
        assert by_name["opt/demo/app/demo/cli.py"].mtime == PROJECT_TIME
        assert by_name["opt/demo/python/bin/python3.12"].mtime == FIXED_LAYER_TIME  # not a Python source
        assert {member.mtime for member in by_name.values() if member.isdir()} == {FIXED_LAYER_TIME}

    def test_same_inputs_same_digests_and_cached(self, tmp_path: Path) -> None:
        first = write_layers(make_artifact(tmp_path / "a"), "demo", "/opt/demo", tmp_path / "work",
                             Cache(tmp_path / "cache-1"), epoch=PROJECT_TIME, warn=pytest.fail)
        make_artifact(tmp_path / "b")
        for directory in (path for path in (tmp_path / "b").rglob("*") if path.is_dir()):
            os.utime(directory, (1_000_000, 1_000_000))  # directory times are not kept: they differ here
        second = write_layers(tmp_path / "b", "demo", "/opt/demo", tmp_path / "work",
                              Cache(tmp_path / "cache-2"), epoch=PROJECT_TIME, warn=pytest.fail)
        assert [layer.digest for layer in first] == [layer.digest for layer in second]
        assert [layer.path.read_bytes() for layer in first] == [layer.path.read_bytes() for layer in second]
        again = write_layers(tmp_path / "a", "demo", "/opt/demo", tmp_path / "work", Cache(tmp_path / "cache-1"),
                             epoch=PROJECT_TIME, warn=pytest.fail)
        assert [layer.reused for layer in again] == [True, True, True]
        assert [layer.digest for layer in again] == [layer.digest for layer in first]

    def test_code_only_change_changes_only_the_project_layer(self, tmp_path: Path) -> None:
        cache = Cache(tmp_path / "cache")
        before = write_layers(make_artifact(tmp_path / "a"), "demo", "/opt/demo", tmp_path / "work", cache, epoch=PROJECT_TIME, warn=pytest.fail)
        after = write_layers(make_artifact(tmp_path / "b", code="print('v2')\n"), "demo", "/opt/demo",
                             tmp_path / "work", cache, epoch=PROJECT_TIME, warn=pytest.fail)
        assert [b.digest == a.digest for b, a in zip(before, after, strict=True)] == [True, True, False]
        assert [layer.reused for layer in after] == [True, True, False]

    def test_a_new_source_date_epoch_changes_only_the_project_layer(self, tmp_path: Path) -> None:
        artifact = make_artifact(tmp_path / "a")
        first, second = (write_layers(artifact, "demo", "/opt/demo", tmp_path / "work", Cache(tmp_path / "cache"),
                                      epoch=epoch, warn=pytest.fail) for epoch in (PROJECT_TIME, PROJECT_TIME + 86400))
        assert [b.diff_id == a.diff_id for b, a in zip(first, second, strict=True)] == [True, True, False]

    def test_damaged_cached_layer_is_compressed_again(self, tmp_path: Path) -> None:
        cache = Cache(tmp_path / "cache")
        first = write_layers(make_artifact(tmp_path / "a"), "demo", "/opt/demo", tmp_path / "work", cache, epoch=PROJECT_TIME, warn=pytest.fail)
        first[0].path.write_bytes(b"damaged")
        warnings: list[str] = []
        second = write_layers(tmp_path / "a", "demo", "/opt/demo", tmp_path / "work", cache, epoch=PROJECT_TIME, warn=warnings.append)
        assert len(warnings) == 1 and "the cached runtime layer" in warnings[0] and "compressed again" in warnings[0]
        assert [layer.digest for layer in second] == [layer.digest for layer in first]
        assert [layer.reused for layer in second] == [False, True, True]

    def test_archive_and_directory_give_the_same_layers(self, tmp_path: Path) -> None:
        artifact = make_artifact(tmp_path / "demo-1.0-x86_64-unknown-linux-gnu")
        archive = tmp_path / "demo-1.0-x86_64-unknown-linux-gnu.tar.gz"
        with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as bundle:
            bundle.add(artifact, arcname=artifact.name)
        from_directory = write_layers(artifact, "demo", "/opt/demo", tmp_path / "work", Cache(tmp_path / "c1"),
                                      epoch=PROJECT_TIME, warn=pytest.fail)
        from_archive = write_layers(archive, "demo", "/opt/demo", tmp_path / "work", Cache(tmp_path / "c2"),
                                    epoch=PROJECT_TIME, warn=pytest.fail)
        assert [layer.diff_id for layer in from_archive] == [layer.diff_id for layer in from_directory]

    def test_artifact_without_the_project_record(self, tmp_path: Path) -> None:
        artifact = make_artifact(tmp_path / "a")
        (artifact / "app/demo-1.0.dist-info/RECORD").unlink()
        with pytest.raises(ImageError, match="the artifact holds no RECORD of the project demo in app/"):
            write_layers(artifact, "demo", "/opt/demo", tmp_path / "work", Cache(tmp_path / "cache"),
                         epoch=PROJECT_TIME, warn=pytest.fail)


SETTINGS = ImageSettings(entrypoint=["/opt/demo/bin/demo"], path_entry="/opt/demo/bin", workdir="/opt/demo",
                         user="65534", env={"PORT": "8000"}, labels={"org.example": "x"}, created=PROJECT_TIME)


class TestImageDocuments:
    @pytest.mark.parametrize(("triple", "platform"), [
        ("x86_64-unknown-linux-gnu", {"os": "linux", "architecture": "amd64"}),
        ("x86_64_v3-unknown-linux-gnu", {"os": "linux", "architecture": "amd64", "variant": "v3"}),
        ("x86_64-unknown-linux-musl", {"os": "linux", "architecture": "amd64"}),
        ("aarch64-unknown-linux-gnu", {"os": "linux", "architecture": "arm64"}),
    ])
    def test_platform_of(self, triple: str, platform: dict[str, str]) -> None:
        assert platform_of(triple) == platform

    def test_platform_of_a_non_linux_triple(self) -> None:
        with pytest.raises(ValueError, match="aarch64-apple-darwin has no OCI platform"):
            platform_of("aarch64-apple-darwin")

    def test_merged_env_puts_the_launchers_first_once(self) -> None:
        assert merged_env(["PATH=/opt/demo/bin:/usr/bin", "LANG=C.UTF-8"], SETTINGS) == [
            "PATH=/opt/demo/bin:/usr/bin", "LANG=C.UTF-8", "PORT=8000"]
        assert merged_env([], SETTINGS) == [
            "PORT=8000", "PATH=/opt/demo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

    def test_image_config_over_the_base(self, tmp_path: Path) -> None:
        layers = write_layers(make_artifact(tmp_path / "a"), "demo", "/opt/demo", tmp_path / "work",
                              Cache(tmp_path / "cache"), epoch=PROJECT_TIME, warn=pytest.fail)
        base = {"architecture": "amd64", "os": "linux", "created": "2020-01-01T00:00:00Z",
                "config": {"Cmd": ["bash"], "Env": ["PATH=/usr/bin"], "Labels": {"org.example": "base",
                                                                                 "maintainer": "debian"}},
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
                "history": [{"created_by": "debian"}]}
        config = image_config(base, {"os": "linux", "architecture": "amd64"}, layers, SETTINGS)
        assert "Cmd" not in config["config"]
        assert config["config"]["Entrypoint"] == ["/opt/demo/bin/demo"]
        assert config["config"]["User"] == "65534" and config["config"]["WorkingDir"] == "/opt/demo"
        assert config["config"]["Labels"] == {"org.example": "x", "maintainer": "debian"}
        assert config["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, *(layer.diff_id for layer in layers)]
        assert [entry["created_by"] for entry in config["history"]] == [
            "debian", "hatch-pbs: runtime", "hatch-pbs: dependencies", "hatch-pbs: project"]
        assert config["created"] == "2023-11-14T22:13:20Z"

    def test_manifest_turns_docker_layer_types_into_oci_ones(self, tmp_path: Path) -> None:
        config = Blob.of("application/vnd.oci.image.config.v1+json", b"{}")
        base_layer = {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "sha256:" + "2" * 64,
                      "size": 10}
        manifest = image_manifest(config, [base_layer], [], {"a": "b"})
        assert manifest["layers"] == [{**base_layer, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]
        assert manifest["config"] == {"mediaType": config.media_type, "digest": config.digest, "size": 2}

    def test_sbom_referrer(self) -> None:
        subject = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "3" * 64,
                   "size": 5, "platform": {"os": "linux"}}
        sbom = Blob.of("application/vnd.cyclonedx+json", b"{}")
        manifest = sbom_manifest(subject, sbom, "demo.cdx.json", PROJECT_TIME)
        assert manifest["artifactType"] == "application/vnd.cyclonedx+json"
        assert manifest["subject"] == {key: subject[key] for key in ("mediaType", "digest", "size")}
        assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
        assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(b"{}").hexdigest()

    def test_metadata_labels(self) -> None:
        labels = metadata_labels(name="demo", version="1.0", description="A demo", license_expression="MIT",
                                 urls={"Homepage": "https://example.org", "Source Code": "https://git.example/d"},
                                 created=PROJECT_TIME, base_name="docker.io/library/debian:12",
                                 base_digest="sha256:" + "4" * 64)
        assert labels == {
            "org.opencontainers.image.title": "demo", "org.opencontainers.image.version": "1.0",
            "org.opencontainers.image.created": "2023-11-14T22:13:20Z",
            "org.opencontainers.image.base.name": "docker.io/library/debian:12",
            "org.opencontainers.image.base.digest": "sha256:" + "4" * 64,
            "org.opencontainers.image.description": "A demo", "org.opencontainers.image.licenses": "MIT",
            "org.opencontainers.image.url": "https://example.org",
            "org.opencontainers.image.source": "https://git.example/d"}


class TestLayoutArchive:
    def test_layout_archive_is_complete_and_reproducible(self, tmp_path: Path) -> None:
        blob_file = tmp_path / "layer"
        blob_file.write_bytes(b"layer bytes")
        blobs: dict[str, bytes | Path] = {
            "sha256:" + hashlib.sha256(b"layer bytes").hexdigest(): blob_file,
            "sha256:" + hashlib.sha256(b"{}").hexdigest(): b"{}"}
        manifests = [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + "5" * 64,
                      "size": 1}]
        sizes = [write_layout_archive(tmp_path / name, manifests, blobs, PROJECT_TIME) for name in ("a.tar", "b.tar")]
        assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
        assert sizes[0] == (tmp_path / "a.tar").stat().st_size
        with tarfile.open(tmp_path / "a.tar") as layout:
            names = layout.getnames()
            assert json.load(layout.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}  # type: ignore[arg-type]
            assert json.load(layout.extractfile("index.json"))["manifests"] == manifests  # type: ignore[arg-type]
            for digest in blobs:
                member = layout.extractfile(f"blobs/sha256/{digest[7:]}")
                assert member is not None
                assert "sha256:" + hashlib.sha256(member.read()).hexdigest() == digest
            assert {member.mtime for member in layout.getmembers()} == {PROJECT_TIME}
        assert set(names) == {"blobs", "blobs/sha256", "index.json", "oci-layout",
                              *(f"blobs/sha256/{digest[7:]}" for digest in blobs)}

    def test_failed_write_leaves_nothing(self, tmp_path: Path) -> None:
        destination = tmp_path / "out" / "demo-oci.tar"
        destination.parent.mkdir()
        destination.write_bytes(b"previous")
        with pytest.raises(OSError):
            write_layout_archive(destination, [], {"sha256:" + "6" * 64: tmp_path / "missing"}, PROJECT_TIME)
        assert destination.read_bytes() == b"previous"
        assert [path.name for path in destination.parent.iterdir()] == ["demo-oci.tar"]


def test_gzip_header_has_no_name_or_time(tmp_path: Path) -> None:
    layers = write_layers(make_artifact(tmp_path / "a"), "demo", "/opt/demo", tmp_path / "work",
                          Cache(tmp_path / "cache"), epoch=PROJECT_TIME, warn=pytest.fail)
    header = layers[0].path.read_bytes()[:10]
    assert header[3] & 0x08 == 0  # FNAME not set
    assert header[4:8] == b"\0\0\0\0"  # MTIME 0
    assert io.BytesIO(header).read(2) == b"\x1f\x8b"
