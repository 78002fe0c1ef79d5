"""Container images end to end: example_project built with option ``image`` for Linux amd64 (gnu, musl), arm64
and macOS, on a base image the test builds from this machine's files and serves from a local registry
(Debian's ``docker-registry`` on loopback); the amd64 image run with ``umoci`` + ``runc``, the arm64 one unpacked
and its interpreter run under ``qemu-aarch64``; pushed with ``hatch-pbs push`` and read back with ``skopeo``;
rebuilt from scratch (same digests) and after a code-only change (only the project's layer differs)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lief
import pytest
from e2e_support import copy_example_project, require_cross_wheels, run_hatchling
from foreign_release import CrossRelease
from oci_support import AARCH64_GLIBC, BaseImage, aarch64_base_files, host_base_files, run_bundle, write_base_layout
from pbs_release import FakeRelease
from registry_support import LocalRegistry, publish_with_skopeo, skopeo

from hatch_pbs.cli import main as cli_main
from hatch_pbs.registry.push import push_layout
from hatch_pbs.registry.reference import ImageReference

pytestmark = pytest.mark.e2e

MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
HOST = "x86_64-unknown-linux-gnu"
TARGETS = [HOST, "aarch64-unknown-linux-gnu", "x86_64-unknown-linux-musl", "aarch64-apple-darwin"]
IMAGE_TRIPLES = TARGETS[:3]
LAYOUT = "pbs-demo-1.0.0-oci.tar"
PREFIX = "/opt/pbs-demo"


def _require_tools() -> None:
    for tool, package in [("docker-registry", "docker-registry"), ("skopeo", "skopeo"), ("umoci", "umoci"),
                          ("runc", "runc")]:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian package {package})")
    if sys.platform != "linux" or HOST not in TARGETS or not Path("/lib64/ld-linux-x86-64.so.2").exists():
        pytest.skip("the image tests run on x86_64 glibc Linux")
    for triple in TARGETS:
        require_cross_wheels(triple)


def _runtime_elf_files(fake_release: FakeRelease) -> list[Path]:
    """The ELF files of the running CPython that the fake release repackages (the base needs their libraries)."""
    prefix = fake_release.source_prefix
    candidates = [prefix / "bin" / f"python{MINOR}", *(prefix / "lib").glob("libpython*.so*"),
                  *(prefix / "lib" / f"python{MINOR}" / "lib-dynload").glob("*.so")]
    gcc = Path("/lib/x86_64-linux-gnu/libgcc_s.so.1")  # orjson (Rust) links it
    return [path for path in candidates if path.is_file()] + ([gcc] if gcc.exists() else [])


@dataclass
class ImageBuild:
    project: Path
    layout: Path
    output: str
    registry: LocalRegistry
    base: str
    env: dict[str, str]


def _hook_table(release: CrossRelease, base: str) -> str:
    return (f'python-version = "{release.python_version}"\ntargets = {json.dumps(TARGETS)}\n'
            f'image = {{ base = "{base}", user = "65534:65534", env = {{ GREETING = "hello" }}, '
            f'labels = {{ "org.example.team" = "packaging" }} }}')


def _build(project: Path, env: dict[str, str]) -> str:
    result = run_hatchling(project, "app", env, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def image_build(cross_release: CrossRelease, cross_wheelhouse: Path, fake_release: FakeRelease,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageBuild]:
    _require_tools()
    work = tmp_path_factory.mktemp("image")
    with LocalRegistry(work / "registry") as registry:
        base_layout = write_base_layout(work / "base.tar", [
            BaseImage({"os": "linux", "architecture": "amd64"}, host_base_files(_runtime_elf_files(fake_release))),
            BaseImage({"os": "linux", "architecture": "arm64", "variant": "v8"}, aarch64_base_files())])
        base = f"{registry.host}/test/base:1"
        publish_with_skopeo(base_layout, base)
        env = {"HATCH_PBS_MIRROR": cross_release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(work / "cache"),
               "UV_OFFLINE": "1", "UV_FIND_LINKS": str(cross_wheelhouse), "UV_CACHE_DIR": str(work / "uv")}
        project = copy_example_project(work / "project", hook_table=_hook_table(cross_release, base))
        output = _build(project, env)
        yield ImageBuild(project, project / "dist" / "app" / LAYOUT, output, registry, base, env)


def _raw(reference: str) -> dict:
    return json.loads(skopeo("inspect", "--raw", "--tls-verify=false", reference))


def _layout_documents(layout: Path) -> tuple[dict, dict[str, bytes]]:
    """The layout's index.json and its blobs by digest."""
    with tarfile.open(layout) as archive:
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
        blobs = {f"sha256:{member.name.rsplit('/', 1)[1]}": archive.extractfile(member).read()  # type: ignore[union-attr]
                 for member in archive.getmembers() if member.name.startswith("blobs/sha256/") and member.isfile()}
    return index, blobs


def _platform_manifests(layout: Path) -> dict[str, dict]:
    """Target triple -> its image manifest, from the layout archive."""
    index, blobs = _layout_documents(layout)
    image_index = json.loads(blobs[index["manifests"][0]["digest"]])
    return {entry["annotations"]["dev.hatch-pbs.target"]: json.loads(blobs[entry["digest"]])
            for entry in image_index["manifests"]}


def test_layout_archive_is_published_with_the_archives(image_build: ImageBuild) -> None:
    dist = image_build.layout.parent
    sums = (dist / "SHA256SUMS").read_text()
    assert f"{hashlib.sha256(image_build.layout.read_bytes()).hexdigest()}  {LAYOUT}" in sums
    assert "no image for aarch64-apple-darwin (images are made for Linux targets)" in image_build.output
    assert f"{LAYOUT} (" in image_build.output and "3 platform(s), tag 1.0.0" in image_build.output


def test_index_has_one_image_per_linux_triple(image_build: ImageBuild) -> None:
    index, blobs = _layout_documents(image_build.layout)
    top = index["manifests"][0]
    assert top["annotations"]["org.opencontainers.image.ref.name"] == "1.0.0"
    image_index = json.loads(blobs[top["digest"]])
    assert [(entry["platform"], entry["annotations"]["dev.hatch-pbs.target"])
            for entry in image_index["manifests"]] == [
        ({"os": "linux", "architecture": "amd64"}, HOST),
        ({"os": "linux", "architecture": "arm64"}, "aarch64-unknown-linux-gnu"),
        ({"os": "linux", "architecture": "amd64"}, "x86_64-unknown-linux-musl")]
    base_layers = len(_raw(f"docker://{image_build.base}")["manifests"])  # two platforms, one layer each
    assert base_layers == 2
    for manifest in _platform_manifests(image_build.layout).values():
        assert len(manifest["layers"]) == 1 + 3  # the base's layer, runtime, dependencies, project


def test_image_config(image_build: ImageBuild) -> None:
    config = json.loads(skopeo("inspect", "--config", "--override-arch", "amd64", f"oci-archive:{image_build.layout}:1.0.0"))
    runtime = config["config"]
    assert runtime["Entrypoint"] == [f"{PREFIX}/bin/pbs-demo"] and "Cmd" not in runtime
    assert runtime["WorkingDir"] == PREFIX and runtime["User"] == "65534:65534"
    assert f"PATH={PREFIX}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in runtime["Env"]
    assert "GREETING=hello" in runtime["Env"]
    labels = runtime["Labels"]
    assert labels["org.opencontainers.image.title"] == "pbs-demo"
    assert labels["org.opencontainers.image.version"] == "1.0.0"
    assert labels["org.opencontainers.image.description"].startswith("Demo CLI for hatch-pbs")
    assert labels["org.opencontainers.image.base.name"] == str(ImageReference.parse(image_build.base))
    assert labels["org.opencontainers.image.base.digest"].startswith("sha256:")
    assert labels["org.example.team"] == "packaging" and labels["org.example.base"] == "hatch-pbs test base"
    assert [entry["created_by"] for entry in config["history"]][-3:] == [
        "hatch-pbs: runtime", "hatch-pbs: dependencies", "hatch-pbs: project"]


def test_amd64_image_runs_in_a_container(image_build: ImageBuild, tmp_path: Path) -> None:
    result = run_bundle(image_build.layout, "1.0.0", tmp_path, args=["doctor"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["python_executable"].startswith(f"{PREFIX}/python/")
    assert report["orjson_file"].startswith(f"{PREFIX}/app/orjson/")
    assert report["rich_file"].startswith(f"{PREFIX}/app/rich/")
    bundle = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert (bundle["process"]["user"]["uid"], bundle["process"]["cwd"]) == (65534, PREFIX)
    echoed = run_bundle(image_build.layout, "1.0.0", tmp_path / "again", args=["echo", "two words", "ünï"])
    assert (echoed.returncode, json.loads(echoed.stdout)) == (0, ["two words", "ünï"]), echoed.stderr
    failed = run_bundle(image_build.layout, "1.0.0", tmp_path / "exit", args=["exit", "3"])
    assert failed.returncode == 3


def test_arm64_image_holds_an_arm64_runtime_that_runs_under_qemu(image_build: ImageBuild, tmp_path: Path) -> None:
    qemu = shutil.which("qemu-aarch64")
    if qemu is None or not (AARCH64_GLIBC / "ld-linux-aarch64.so.1").exists():
        pytest.skip("qemu-aarch64 and Debian's libc6-arm64-cross are needed to run the arm64 runtime")
    skopeo("copy", "--quiet", "--override-arch", "arm64", f"oci-archive:{image_build.layout}:1.0.0",
           f"oci:{tmp_path / 'layout'}:arm64")
    subprocess.run(["umoci", "unpack", "--image", f"{tmp_path / 'layout'}:arm64", str(tmp_path / "bundle")],
                   check=True, capture_output=True)
    rootfs = tmp_path / "bundle" / "rootfs"
    interpreter = rootfs / PREFIX.lstrip("/") / "python" / "bin" / f"python{MINOR}"
    elf = lief.ELF.parse(str(interpreter))
    assert elf is not None and elf.header.machine_type == lief.ELF.ARCH.AARCH64
    assert (rootfs / PREFIX.lstrip("/") / "bin" / "pbs-demo").is_file()
    result = subprocess.run([qemu, "-L", str(rootfs), str(interpreter), "x"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "stand-in python aarch64-unknown-linux-gnu"


def test_push_then_inspect_with_skopeo(image_build: ImageBuild, capsys: pytest.CaptureFixture[str]) -> None:
    reference = f"{image_build.registry.host}/apps/pbs-demo"
    assert cli_main(["push", str(image_build.layout), reference, "--tag", "latest"]) == 0  # 1.0.0 and latest
    printed = capsys.readouterr().out
    assert f"pushed {reference}" in printed
    index, _ = _layout_documents(image_build.layout)
    pushed = _raw(f"docker://{reference}:1.0.0")
    assert pushed == _raw(f"docker://{reference}:latest")
    assert hashlib.sha256(skopeo("inspect", "--raw", "--tls-verify=false",
                                 f"docker://{reference}:1.0.0").encode()).hexdigest() == \
        index["manifests"][0]["digest"].removeprefix("sha256:")
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", "--override-arch", "arm64",
                                  f"docker://{reference}:1.0.0"))
    assert inspected["Architecture"] == "arm64" and inspected["Labels"]["org.opencontainers.image.version"] == "1.0.0"
    amd64 = pushed["manifests"][0]["digest"]
    referrers = _raw(f"docker://{reference}:sha256-{amd64.removeprefix('sha256:')}")
    assert [entry["artifactType"] for entry in referrers["manifests"]] == ["application/vnd.cyclonedx+json"]


def test_rebuild_is_identical_and_a_code_change_changes_only_the_project_layer(
        image_build: ImageBuild, cross_release: CrossRelease, tmp_path: Path) -> None:
    fresh = copy_example_project(tmp_path / "project", hook_table=_hook_table(cross_release, image_build.base))
    _build(fresh, {**image_build.env, "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache")})  # another cache: no reuse
    rebuilt = fresh / "dist" / "app" / LAYOUT
    assert hashlib.sha256(rebuilt.read_bytes()).hexdigest() == \
        hashlib.sha256(image_build.layout.read_bytes()).hexdigest()

    cli = fresh / "src" / "pbs_demo" / "cli.py"
    cli.write_text(cli.read_text() + "\n# a code-only change\n")
    output = _build(fresh, {**image_build.env, "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache")})
    changed = fresh / "dist" / "app" / LAYOUT
    assert f"image {HOST}: runtime" in output and "(cached)" in output
    before, after = _platform_manifests(image_build.layout), _platform_manifests(changed)
    for triple in IMAGE_TRIPLES:
        old, new = [layer["digest"] for layer in before[triple]["layers"]], [
            layer["digest"] for layer in after[triple]["layers"]]
        assert old[:-1] == new[:-1] and old[-1] != new[-1], triple

    reference = ImageReference.parse(f"{image_build.registry.host}/apps/changed")
    push_layout(image_build.layout, reference.with_tag("1.0.0"))
    _, old_blobs = _layout_documents(image_build.layout)
    _, new_blobs = _layout_documents(changed)
    result = push_layout(changed, reference.with_tag("1.0.1"))
    manifests = {digest for digest, content in new_blobs.items() if content.startswith(b'{"') and b'"schemaVersion"' in content}
    expected = {digest: len(content) for digest, content in new_blobs.items()
                if digest not in old_blobs and digest not in manifests}
    assert (result.blobs_uploaded, result.bytes_uploaded) == (len(expected), sum(expected.values()))
    project_layers = {after[triple]["layers"][-1]["digest"] for triple in IMAGE_TRIPLES}
    assert project_layers <= set(expected)
    assert sum(expected.values()) < 0.05 * sum(len(content) for content in new_blobs.values())


def test_a_missing_base_image_fails_before_anything_is_built(image_build: ImageBuild, cross_release: CrossRelease,
                                                             tmp_path: Path) -> None:
    missing = f"{image_build.registry.host}/test/missing:1"
    project = copy_example_project(tmp_path / "project", hook_table=_hook_table(cross_release, missing))
    (project / "dist" / "app").mkdir(parents=True)
    (project / "dist" / "app" / "SHA256SUMS").write_text("previous\n")
    result = run_hatchling(project, "app", {**image_build.env, "HATCH_PBS_CACHE_DIR": str(tmp_path / "cache")},
                           "--hooks-only")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output, output
    assert f"hatch-pbs: cannot pull the base image {missing} (option `image.base`): no such manifest" in output
    assert [path.name for path in (project / "dist" / "app").iterdir()] == ["SHA256SUMS"]
    assert (project / "dist" / "app" / "SHA256SUMS").read_text() == "previous\n"
    assert not (tmp_path / "cache" / "runtimes").exists()  # failed before any runtime was prepared
