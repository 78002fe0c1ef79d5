"""Small hand-made wheels and installed ``*.dist-info`` directories for the provenance and SBOM tests."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def metadata_text(name: str, version: str, *, requires: tuple[str, ...] = (), license_expression: str | None = None,
                  license: str | None = None, classifiers: tuple[str, ...] = ()) -> str:
    lines = ["Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}"]
    if license_expression:
        lines.append(f"License-Expression: {license_expression}")
    if license:
        lines.append("License: " + license.replace("\n", "\n        "))
    lines += [f"Classifier: {classifier}" for classifier in classifiers]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    return "\n".join(lines) + "\n\n"


def wheel_text(tags: str, build: str | None = None) -> str:
    """A ``WHEEL`` file for the compressed tag set ``tags`` (``py3-none-any``, ``cp312-abi3-a.b``)."""
    python, abi, platforms = tags.split("-")
    lines = ["Wheel-Version: 1.0", "Generator: hatch-pbs-tests", "Root-Is-Purelib: false"]
    if build:
        lines.append(f"Build: {build}")
    lines += [f"Tag: {py}-{a}-{plat}" for py in python.split(".") for a in abi.split(".") for plat in platforms.split(".")]
    return "\n".join(lines) + "\n"


def make_wheel(directory: Path, name: str, version: str, tags: str, *, build: str | None = None,
               wheel_tags: str | None = None, content: str = "", **metadata: object) -> Path:
    """Write a minimal valid wheel ``<name>-<version>[-<build>]-<tags>.whl`` into ``directory``; its ``WHEEL`` file
    names ``wheel_tags`` (default: ``tags``; another value imitates a wheel renamed by hand)."""
    package = name.lower().replace("-", "_")
    dist_info = f"{package}-{version}.dist-info"
    files = {
        f"{package}/__init__.py": (content or f"BUILT_FOR = {tags!r}\n").encode(),
        f"{dist_info}/METADATA": metadata_text(name, version, **metadata).encode(),  # type: ignore[arg-type]
        f"{dist_info}/WHEEL": wheel_text(wheel_tags or tags, build).encode(),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    file_name = f"{package}-{version}{f'-{build}' if build else ''}-{tags}.whl"
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(directory / file_name, "w") as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return directory / file_name


def make_dist_info(site_dir: Path, name: str, version: str, *, tags: str | None = "py3-none-any",
                   build: str | None = None, **metadata: object) -> Path:
    """An installed distribution's ``*.dist-info`` directory (``METADATA`` and, unless ``tags`` is ``None``,
    ``WHEEL``)."""
    dist_info = site_dir / f"{name.lower().replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(metadata_text(name, version, **metadata), encoding="utf-8")  # type: ignore[arg-type]
    if tags is not None:
        (dist_info / "WHEEL").write_text(wheel_text(tags, build), encoding="utf-8")
    return dist_info


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
