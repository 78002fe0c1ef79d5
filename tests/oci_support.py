"""Base images the container tests build themselves, from this machine's files: no registry on the internet.

:func:`host_base_files` is a minimal Debian-like root file system for ``linux/amd64``: ``/bin/sh`` (dash), the
host's ``/etc/passwd`` entries ``root`` and ``nobody``, and the shared libraries (with the dynamic loader) that
the given ELF files need, found with ``ldd`` and placed at the paths the loader looks them up at.
:func:`aarch64_base_files` is the same for ``linux/arm64`` from Debian's cross glibc (``libc6-arm64-cross``): the
loader and ``libc``/``libm``, enough for the aarch64 stand-in runtime to run under ``qemu-aarch64 -L <rootfs>``.

:func:`write_base_layout` packs such file sets as a multi-platform OCI image layout archive (one gzip layer per
platform, byte-reproducible); publish it into a registry with ``registry_support.publish_with_skopeo``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from registry_support import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, REF_NAME, Layout, canonical

AARCH64_GLIBC = Path("/usr/aarch64-linux-gnu/lib")
BASE_EPOCH = 1_700_000_000
BASE_LABEL = ("org.example.base", "hatch-pbs test base")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
_LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


@dataclass(frozen=True)
class BaseImage:
    """One platform of a base image: ``platform`` (OCI ``os``/``architecture``[/``variant``]) and ``files``
    (path in the image, absolute -> file on this machine, or ``bytes``)."""

    platform: Mapping[str, str]
    files: Mapping[str, Path | bytes]


def host_base_files(elf_files: Iterable[Path]) -> dict[str, Path | bytes]:
    """``/bin/sh``, ``/etc/passwd`` and the libraries ``elf_files`` (and dash) need, at the paths ``ldd`` names."""
    files: dict[str, Path | bytes] = {"/bin/sh": Path(shutil.which("dash") or "/bin/dash").resolve(),
                                      "/etc/passwd": PASSWD.encode(), "/tmp/": b""}
    for elf in [files["/bin/sh"], *elf_files]:
        assert isinstance(elf, Path)
        listing = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, check=False).stdout
        for line in listing.splitlines():
            match = _LDD_LINE.match(line)
            if match and not match.group(1).startswith(("/root/", "/tmp/")):
                files.setdefault(match.group(1), Path(match.group(1)).resolve())
    return files


def aarch64_base_files() -> dict[str, Path | bytes]:
    """The aarch64 glibc loader, ``libc.so.6`` and ``libm.so.6`` of ``libc6-arm64-cross``, and ``/etc/passwd``."""
    return {"/lib/ld-linux-aarch64.so.1": (AARCH64_GLIBC / "ld-linux-aarch64.so.1").resolve(),
            "/lib/aarch64-linux-gnu/libc.so.6": (AARCH64_GLIBC / "libc.so.6").resolve(),
            "/lib/aarch64-linux-gnu/libm.so.6": (AARCH64_GLIBC / "libm.so.6").resolve(),
            "/etc/passwd": PASSWD.encode(), "/tmp/": b""}


def _layer(files: Mapping[str, Path | bytes]) -> tuple[bytes, str]:
    """A gzip tar of ``files`` (a name ending in ``/`` is a directory) and its uncompressed digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directories = sorted({"/".join(name.strip("/").split("/")[:depth])
                              for name in files for depth in range(1, name.strip("/").count("/") + 1)})
        for directory in directories:
            member = tarfile.TarInfo(directory)
            member.type, member.mode, member.mtime = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755, BASE_EPOCH
            tar.addfile(member)
        for name in sorted(name for name in files if not name.endswith("/")):
            source = files[name]
            content = source if isinstance(source, bytes) else source.read_bytes()
            member = tarfile.TarInfo(name.lstrip("/"))
            member.size, member.mtime = len(content), BASE_EPOCH
            member.mode = 0o644 if isinstance(source, bytes) or ".so" in name and "ld-" not in name else 0o755
            tar.addfile(member, io.BytesIO(content))
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), "sha256:" + hashlib.sha256(uncompressed).hexdigest()


def write_base_layout(destination: Path, images: Iterable[BaseImage], *, tag: str = "1") -> Path:
    """Write an OCI image layout archive at ``destination``: an index (tag ``tag``) of one image per entry."""
    layout = Layout()
    manifests = []
    for image in images:
        layer, diff_id = _layer(image.files)
        config = {"architecture": image.platform["architecture"], "os": image.platform["os"],
                  "config": {"Env": [f"PATH={PATH}"], "Cmd": ["/bin/sh"], "Labels": dict([BASE_LABEL])},
                  "rootfs": {"type": "layers", "diff_ids": [diff_id]}, "created": "2023-11-14T22:13:20Z"}
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": layout.add(OCI_CONFIG, canonical(config)),
                    "layers": [layout.add(OCI_LAYER, layer)]}
        manifests.append(layout.add(OCI_MANIFEST, canonical(manifest), platform=dict(image.platform)))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    layout.entries.append(layout.add(OCI_INDEX, canonical(index), annotations={REF_NAME: tag}))
    return layout.write(destination)


def run_bundle(layout_archive: Path, tag: str, work: Path, *, architecture: str = "amd64", args: Iterable[str] = (),
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the ``architecture`` image of the layout archive's index tagged ``tag`` as a container: ``skopeo``
    copies that platform's image into a layout directory, ``umoci`` unpacks it into a runtime bundle, ``runc``
    runs it (``process.rlimits`` removed: this sandbox refuses them) with extra ``args`` after the entrypoint.

    The exit status, stdout and stderr are the container's."""
    work.mkdir(parents=True, exist_ok=True)
    bundle = work / "bundle"
    for command in (["skopeo", "copy", "--quiet", "--override-os", "linux", "--override-arch", architecture,
                     f"oci-archive:{layout_archive}:{tag}", f"oci:{work / 'layout'}:run"],
                    ["umoci", "unpack", "--image", f"{work / 'layout'}:run", str(bundle)]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}: {done.stderr}"
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"].pop("rlimits", None)
    config["process"]["terminal"] = False
    config["process"]["args"] = [*config["process"]["args"], *args]
    config_path.write_text(json.dumps(config))
    name = f"hatch-pbs-test-{hashlib.sha256(str(work).encode()).hexdigest()[:12]}"
    try:
        return subprocess.run(["runc", "--root", str(work / "runc"), "run", "--bundle", str(bundle), name],
                              capture_output=True, text=True, timeout=timeout, check=False)
    finally:
        subprocess.run(["runc", "--root", str(work / "runc"), "delete", "--force", name], capture_output=True,
                       check=False)
