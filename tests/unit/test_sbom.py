"""The CycloneDX SBOM (hatch_pbs.artifact.sbom) for small constructed inputs: its exact components, licences, dependency
graph and reproducibility, checked against the CycloneDX 1.6 JSON schema with cyclonedx-python-lib's validator."""

from __future__ import annotations

import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from provenance_support import make_dist_info

from hatch_pbs.artifact.sbom import (
    PackageInfo,
    build_bom,
    read_packages,
    render,
    sbom_path,
    write_sbom,
)
from hatch_pbs.errors import PackError
from hatch_pbs.release.triples import marker_environment

ASSET = "cpython-3.12.7+20241016-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz"
ASSET_URL = ("https://github.com/astral-sh/python-build-standalone/releases/download/20241016/"
             "cpython-3.12.7%2B20241016-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz")
ARCHIVE = "demo-2.0-x86_64-unknown-linux-gnu.tar.gz"
CPYTHON_REF = "pkg:generic/python-build-standalone/cpython@3.12.7"


def manifest(*, flavor: str = "install_only_stripped", python_json: dict[str, Any] | None = None,
             url: str = ASSET_URL, target: str = "x86_64-unknown-linux-gnu") -> dict[str, Any]:
    runtime: dict[str, Any] = {"release": "20241016", "asset": ASSET, "url": url, "sha256": "a" * 64,
                               "flavor": flavor, "build_options": "pgo+lto" if flavor == "full" else None,
                               "interpreter": "python/bin/python3.12"}
    if python_json is not None:
        runtime["python_json"] = python_json
    return {
        "manifest_version": 1, "tool": {"name": "hatch-pbs", "version": "0.1.0"},
        "project": {"name": "Demo", "version": "2.0"}, "target": target, "python_version": "3.12.7",
        "runtime": runtime,
        "distributions": [
            {"name": "Demo", "version": "2.0", "wheel": "demo-2.0-py3-none-any.whl", "sha256": "d" * 64},
            {"name": "lib_one", "version": "1.1", "wheel": "lib_one-1.1-cp312-cp312-manylinux_2_17_x86_64.whl",
             "sha256": "1" * 64},
            {"name": "libtwo", "version": "2.2", "wheel": "libtwo-2.2-py3-none-any.whl", "sha256": "2" * 64},
            {"name": "winonly", "version": "0.1", "wheel": "winonly-0.1-py3-none-any.whl", "sha256": "3" * 64},
            {"name": "built", "version": "0.5", "wheel": None, "sdist": "built-0.5.tar.gz", "sha256": "5" * 64},
        ],
    }


PACKAGES = {
    "demo": PackageInfo("Demo", "2.0", license_expression="MIT", requires=[
        "lib-one>=1", 'winonly; sys_platform == "win32"', 'libtwo[fast]; python_version >= "3.8"',
        'pytest; extra == "test"']),
    "lib-one": PackageInfo("lib_one", "1.1", license="Apache-2.0"),
    "libtwo": PackageInfo("libtwo", "2.2", classifiers=["OSI Approved :: MIT License", "OSI Approved :: BSD License"],
                          requires=['built; extra == "fast"', 'lib_one; extra == "slow"']),
    "winonly": PackageInfo("winonly", "0.1", license_expression="MPL-2.0 AND (Apache-2.0 OR MIT)"),
    "built": PackageInfo("built", "0.5"),
}


def document(data: dict[str, Any] | None = None, packages: dict[str, PackageInfo] | None = None, **kwargs: Any
             ) -> dict[str, Any]:
    bom = build_bom(data or manifest(), PACKAGES if packages is None else packages, archive_name=ARCHIVE,
                    archive_sha256="f" * 64, epoch=1_700_000_000, **kwargs)
    text = render(bom)
    validate(text)
    return json.loads(text)


@cache
def validator() -> Any:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6)


def validate(text: str) -> None:
    errors = validator().validate_str(text)
    assert errors is None, errors


def by_name(sbom: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {component["name"]: component for component in sbom["components"]}


def declared(**license_: str) -> dict[str, Any]:
    return {"license": {**license_, "acknowledgement": "declared"}}


def test_exact_components() -> None:
    sbom = document()
    assert sbom["specVersion"] == "1.6"
    assert sorted((c["name"], c["version"], c["type"], c["bom-ref"]) for c in sbom["components"]) == [
        ("built", "0.5", "library", "pkg:pypi/built@0.5"),
        ("cpython", "3.12.7", "platform", CPYTHON_REF),
        ("lib_one", "1.1", "library", "pkg:pypi/lib-one@1.1"),
        ("libtwo", "2.2", "library", "pkg:pypi/libtwo@2.2"),
        ("winonly", "0.1", "library", "pkg:pypi/winonly@0.1"),
    ]
    components = by_name(sbom)
    assert components["lib_one"]["purl"] == (
        "pkg:pypi/lib-one@1.1?file_name=lib_one-1.1-cp312-cp312-manylinux_2_17_x86_64.whl")
    assert components["lib_one"]["hashes"] == [{"alg": "SHA-256", "content": "1" * 64}]
    assert components["built"]["purl"] == "pkg:pypi/built@0.5?file_name=built-0.5.tar.gz"  # built from its sdist
    assert "licenses" not in components["built"]


def test_the_application_is_the_subject() -> None:
    sbom = document()
    application = sbom["metadata"]["component"]
    assert (application["name"], application["version"], application["type"]) == ("Demo", "2.0", "application")
    assert application["purl"] == "pkg:pypi/demo@2.0?file_name=demo-2.0-py3-none-any.whl"
    assert application["hashes"] == [{"alg": "SHA-256", "content": "d" * 64}]
    assert application["licenses"] == [declared(id="MIT")]
    assert application["externalReferences"] == [{
        "type": "distribution", "url": ARCHIVE, "comment": "the archive this SBOM describes, for "
        "x86_64-unknown-linux-gnu", "hashes": [{"alg": "SHA-256", "content": "f" * 64}]}]
    assert application["properties"] == [{"name": "hatch-pbs:target", "value": "x86_64-unknown-linux-gnu"}]
    tools = sbom["metadata"]["tools"]["components"]
    assert {tool["name"] for tool in tools} == {"hatch-pbs", "cyclonedx-python-lib"}


def test_the_runtime_of_an_install_only_asset() -> None:
    cpython = by_name(document())["cpython"]
    assert cpython["purl"] == (
        "pkg:generic/python-build-standalone/cpython@3.12.7?checksum=sha256:" + "a" * 64 + "&download_url="
        + ASSET_URL.replace("%", "%25"))
    assert cpython["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert cpython["licenses"] == [declared(id="Python-2.0")]
    assert cpython["externalReferences"] == [
        {"type": "distribution", "url": ASSET_URL, "hashes": [{"alg": "SHA-256", "content": "a" * 64}]}]
    assert {p["name"]: p["value"] for p in cpython["properties"]} == {
        "hatch-pbs:runtime:asset": ASSET, "hatch-pbs:runtime:flavor": "install_only_stripped",
        "hatch-pbs:runtime:licenses-source": "CPython's licence (the asset has no PYTHON.json)",
        "hatch-pbs:runtime:release": "20241016"}


def test_the_runtime_of_a_full_asset_takes_python_json_licences() -> None:
    data = manifest(flavor="full", python_json={"licenses": ["Python-2.0", "CNRI-Python"], "python_tag": "cp312"})
    cpython = by_name(document(data))["cpython"]
    assert sorted(cpython["licenses"], key=str) == sorted([declared(id="CNRI-Python"), declared(id="Python-2.0")],
                                                           key=str)
    properties = {p["name"]: p["value"] for p in cpython["properties"]}
    assert properties["hatch-pbs:runtime:licenses-source"] == "PYTHON.json"
    assert properties["hatch-pbs:runtime:build_options"] == "pgo+lto"


@pytest.mark.parametrize("python_json", [None, {}, {"licenses": []}, {"licenses": "Python-2.0"}])
def test_a_full_asset_without_usable_licences_falls_back_to_cpythons(python_json: dict[str, Any] | None) -> None:
    cpython = by_name(document(manifest(flavor="full", python_json=python_json)))["cpython"]
    assert cpython["licenses"] == [declared(id="Python-2.0")]


def test_a_mirror_url_is_a_second_reference() -> None:
    mirror = "https://mirror.example/pbs/20241016/" + ASSET_URL.rsplit("/", 1)[1]
    cpython = by_name(document(manifest(url=mirror)))["cpython"]
    assert [reference["url"] for reference in cpython["externalReferences"]] == [ASSET_URL, mirror]
    assert cpython["externalReferences"][1]["comment"] == "the mirror the build fetched the asset from"


def test_licences_from_metadata() -> None:
    components = by_name(document())
    assert components["lib_one"]["licenses"] == [declared(id="Apache-2.0")]  # License: a single SPDX id
    assert sorted(components["libtwo"]["licenses"], key=str) == sorted(  # from the classifiers
        [declared(name="BSD License"), declared(id="MIT")], key=str)
    assert components["winonly"]["licenses"] == [
        {"expression": "MPL-2.0 AND (Apache-2.0 OR MIT)", "acknowledgement": "declared"}]


def test_dependencies_follow_markers_and_extras_for_the_target() -> None:
    sbom = document()
    graph = {entry["ref"]: entry.get("dependsOn", []) for entry in sbom["dependencies"]}
    assert graph == {
        "pkg:pypi/demo@2.0": [CPYTHON_REF, "pkg:pypi/lib-one@1.1", "pkg:pypi/libtwo@2.2"],  # winonly: win32 only
        "pkg:pypi/libtwo@2.2": ["pkg:pypi/built@0.5"],  # extra "fast", which Demo asks for; not "slow"
        "pkg:pypi/lib-one@1.1": [], "pkg:pypi/winonly@0.1": [], "pkg:pypi/built@0.5": [], CPYTHON_REF: [],
    }
    windows = document(manifest(target="x86_64-pc-windows-msvc"))
    graph = {entry["ref"]: entry.get("dependsOn", []) for entry in windows["dependencies"]}
    assert "pkg:pypi/winonly@0.1" in graph["pkg:pypi/demo@2.0"]


def test_the_document_is_reproducible() -> None:
    first, second = document(), document()
    assert first == second
    assert first["serialNumber"] == f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'hatch-pbs:{ARCHIVE}:' + 'f' * 64)}"
    assert first["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"
    text = render(build_bom(manifest(), PACKAGES, archive_name=ARCHIVE, archive_sha256="f" * 64, epoch=1))
    assert text == render(build_bom(manifest(), PACKAGES, archive_name=ARCHIVE, archive_sha256="f" * 64, epoch=1))


@pytest.mark.parametrize(("triple", "expected"), [
    ("x86_64-unknown-linux-gnu", ("linux", "Linux", "posix", "x86_64")),
    ("aarch64-unknown-linux-musl", ("linux", "Linux", "posix", "aarch64")),
    ("x86_64_v3-unknown-linux-gnu", ("linux", "Linux", "posix", "x86_64")),
    ("aarch64-apple-darwin", ("darwin", "Darwin", "posix", "arm64")),
    ("x86_64-pc-windows-msvc", ("win32", "Windows", "nt", "AMD64")),
    ("aarch64-pc-windows-msvc", ("win32", "Windows", "nt", "ARM64")),
])
def test_marker_environment(triple: str, expected: tuple[str, str, str, str]) -> None:
    environment = marker_environment(triple, "3.13.1")
    assert (environment["sys_platform"], environment["platform_system"], environment["os_name"],
            environment["platform_machine"]) == expected
    assert (environment["python_version"], environment["python_full_version"]) == ("3.13", "3.13.1")


def test_read_packages(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "Rich", "13.0", license="MIT", requires=("pygments>=2",))
    make_dist_info(site, "long", "1.0", license="Copyright (c) someone\nPermission is hereby granted...",
                   classifiers=("License :: OSI Approved :: ISC License (ISCL)", "Programming Language :: Python"))
    make_dist_info(site, "unknown", "1.0", license="UNKNOWN")
    packages = read_packages(site)
    assert packages["rich"] == PackageInfo("Rich", "13.0", license="MIT", requires=["pygments>=2"])
    assert packages["long"] == PackageInfo("long", "1.0", classifiers=["OSI Approved :: ISC License (ISCL)"])
    assert packages["unknown"].license is None


def test_write_sbom_beside_the_archive(tmp_path: Path) -> None:
    site = tmp_path / "app"
    make_dist_info(site, "Demo", "2.0", license_expression="MIT")
    archive = tmp_path / "dist" / ARCHIVE
    archive.parent.mkdir()
    archive.write_bytes(b"archive")
    path = write_sbom(archive, manifest(), site, archive_sha256="f" * 64, epoch=0)
    assert path == sbom_path(archive) == archive.parent / f"{ARCHIVE}.cdx.json"
    assert sorted(entry.name for entry in archive.parent.iterdir()) == [ARCHIVE, f"{ARCHIVE}.cdx.json"]
    text = path.read_text(encoding="utf-8")
    validate(text)
    assert text.endswith("}\n")
    assert json.loads(text)["metadata"]["component"]["licenses"] == [declared(id="MIT")]


def test_write_sbom_failure_is_a_pack_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    archive = tmp_path / "a-file" / ARCHIVE
    with pytest.raises(PackError, match="cannot write the SBOM"):
        write_sbom(archive, manifest(), tmp_path, archive_sha256="f" * 64)
