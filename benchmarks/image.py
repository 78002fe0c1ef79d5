"""Container images of example_project: build, rebuild after a code change, bytes pushed; and a Dockerfile estimate.

Usage (from the repository root, in an environment with hatch-pbs and its test dependencies installed, and
Debian's ``docker-registry`` on this machine)::

    python3 benchmarks/image.py            # prints a Markdown report; also written to .build/image/report.md

The runtime is a PBS-layout release of this interpreter (as the tests make it), the base image a minimal root
file system of this machine's ``/bin/sh`` and C libraries (tests/oci_support.py) served by a local
``docker-registry``, the dependencies (rich, orjson) wheels downloaded once into ``.build/image/wheelhouse``.
Builds are ``python -m hatchling build -t app --hooks-only``; measured:

1. the archive alone, warm (no option ``image``), then with option ``image``: a first image build (empty layer
   cache) and a second one (layers cached);
2. a rebuild after a code-only change (a comment appended to ``pbs_demo/cli.py``), and what pushing it after the
   first image uploads (``hatch_pbs.registry.push.push_layout`` against the local registry);
3. the estimate for a Dockerfile doing the same (``FROM <python base>``, ``COPY . /src``, ``RUN pip install /src``):
   Docker cannot run here, so its ``RUN`` step is measured as what it executes, building the project's wheel and
   ``pip install`` of it into a fresh virtual environment from the same wheels, and its pushed layer as that
   environment's ``site-packages`` compressed with gzip (the layer a code change makes Docker rebuild and push in
   full, since ``COPY .`` precedes the install). An arm64 image built that way on this x86_64 machine runs the same
   step under QEMU emulation.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".build" / "image"
sys.path.insert(0, str(REPO / "tests"))

from e2e_support import copy_example_project, run_hatchling  # noqa: E402
from oci_support import BaseImage, host_base_files, write_base_layout  # noqa: E402
from pbs_release import build_release  # noqa: E402
from registry_support import LocalRegistry, publish_with_skopeo  # noqa: E402

from hatch_pbs.registry.push import push_layout  # noqa: E402
from hatch_pbs.registry.reference import ImageReference  # noqa: E402

MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"


def _wheelhouse() -> Path:
    directory = WORK / "wheelhouse"
    if not any(directory.glob("orjson-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest",
                        str(directory), "rich", "orjson", "hatchling"], check=True)
    return directory


def _timed_build(project: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = run_hatchling(project, "app", env, "--hooks-only")
    if result.returncode != 0:
        sys.exit(result.stdout + result.stderr)
    return time.perf_counter() - started


def _set_image(project: Path, table: str) -> None:
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text()
    marker = "[tool.hatch.build.hooks.pbs]\n"
    pyproject.write_text(text.replace(marker, marker + table + "\n", 1))


def _dockerfile_estimate(wheelhouse: Path, project: Path) -> tuple[float, int]:
    """Seconds of ``pip install <project>`` into a fresh venv (offline, same wheels), and the gzip size in bytes
    of the ``site-packages`` it fills (the layer such a Dockerfile pushes again on every code change)."""
    venv = WORK / "dockerfile-venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    started = time.perf_counter()
    # `pip install /src` builds the project's wheel, then installs it and its dependencies: the same two steps
    # (the wheel built with this environment's hatchling, as the build backend is not on the offline wheelhouse)
    built = run_hatchling(project, "wheel", {"PATH": os.environ["PATH"]})
    if built.returncode != 0:
        sys.exit(built.stdout + built.stderr)
    wheel = max((project / "dist").glob("pbs_demo-*.whl"), key=lambda path: path.stat().st_mtime)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-index", "--find-links", str(wheelhouse), str(wheel)], check=True)
    seconds = time.perf_counter() - started
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as layer:
        layer.add(venv / "lib" / f"python{MINOR}" / "site-packages", arcname="site-packages")
    return seconds, len(gzip.compress(raw.getvalue(), compresslevel=6, mtime=0))


def main() -> int:
    shutil.rmtree(WORK / "project", ignore_errors=True)
    shutil.rmtree(WORK / "cache", ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    wheelhouse = _wheelhouse()
    release = build_release(WORK / "release")
    project = copy_example_project(WORK / "project", hook_table=f'python-version = "{release.python_version}"')
    env = {"HATCH_PBS_MIRROR": release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(WORK / "cache"),
           "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(WORK / "uv"),
           "PATH": os.environ["PATH"]}
    _timed_build(project, env)  # the runtime and the wheels into the caches
    archive_only = _timed_build(project, env)
    shutil.rmtree(WORK / "registry", ignore_errors=True)
    with LocalRegistry(WORK / "registry") as registry:
        elf = [release.source_prefix / "bin" / f"python{MINOR}",
               *(release.source_prefix / "lib" / f"python{MINOR}" / "lib-dynload").glob("*.so")]
        base = f"{registry.host}/bench/base:1"
        publish_with_skopeo(write_base_layout(WORK / "base.tar", [
            BaseImage({"os": "linux", "architecture": "amd64"}, host_base_files(elf))]), base)
        _set_image(project, f'image = {{ base = "{base}" }}')
        first_image = _timed_build(project, env)
        layout = project / "dist" / "app" / "pbs-demo-1.0.0-oci.tar"
        kept = WORK / "first-oci.tar"
        shutil.copyfile(layout, kept)
        second_image = _timed_build(project, env)
        cli = project / "src" / "pbs_demo" / "cli.py"
        cli.write_text(cli.read_text() + "\n# a code-only change\n")
        changed = _timed_build(project, env)
        reference = ImageReference.parse(f"{registry.host}/bench/pbs-demo")
        first_push = push_layout(kept, reference.with_tag("1"))
        second_push = push_layout(layout, reference.with_tag("2"))
    pip_seconds, site_packages_gz = _dockerfile_estimate(wheelhouse, project)
    report = "\n".join([
        "| step | seconds | bytes pushed |", "|---|---|---|",
        f"| archive only (warm, no `image`) | {archive_only:.2f} | |",
        f"| with `image`, first (empty layer cache) | {first_image:.2f} | {first_push.bytes_uploaded:,} "
        f"({first_push.blobs_uploaded} blobs) |",
        f"| with `image`, again (layers cached) | {second_image:.2f} | |",
        f"| after a code-only change | {changed:.2f} | {second_push.bytes_uploaded:,} "
        f"({second_push.blobs_uploaded} blobs; {second_push.blobs_skipped} already there) |",
        f"| Dockerfile estimate: `RUN pip install` (native) | {pip_seconds:.2f} | {site_packages_gz:,} "
        "(site-packages layer, every code change) |",
        "", f"Layout archive: {layout.stat().st_size:,} bytes; Python {sys.version.split()[0]}."])
    (WORK / "report.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
