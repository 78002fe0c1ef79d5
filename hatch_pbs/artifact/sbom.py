"""The CycloneDX SBOM written beside each archive: ``<archive name>.cdx.json`` (CycloneDX 1.6, JSON).

It is produced with cyclonedx-python-lib (the OWASP CycloneDX project's library) from the archive's manifest
(:func:`hatch_pbs.pipeline.build_manifest`) and the installed distributions' metadata, and lists:

- ``metadata.component``: the application (``pkg:pypi/<name>@<version>``, the sha256 of its wheel), with the archive
  it describes as a ``distribution`` external reference carrying the archive's sha256;
- the Python runtime, a ``platform`` component ``cpython`` with the purl
  ``pkg:generic/python-build-standalone/cpython@<python version>?checksum=sha256:<asset sha256>&download_url=...``,
  the asset's sha256, its download URL and its licences: the SPDX identifiers of ``PYTHON.json``'s ``licenses``
  field for ``full`` archives (PBS's distribution format: "license shortname identifiers from the SPDX license list
  for the Python distribution"); ``Python-2.0`` (CPython's licence, the PSF licence stack) for ``install_only``
  archives, which carry no ``PYTHON.json``;
- every other installed distribution (``pkg:pypi/<name>@<version>?file_name=<wheel>``, the wheel's sha256, its
  declared licence: ``License-Expression``, else a one-line ``License``, else ``License ::`` classifiers);
- ``dependencies``: the application on the runtime, and every distribution on the installed distributions its
  ``Requires-Dist`` names, with markers evaluated for the target (extras as requested by the dependents).

The document is reproducible: its serial number is derived from the archive's name and sha256, its timestamp is
``SOURCE_DATE_EPOCH`` when given, and the library sorts every list.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import compat32
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

from packaging.markers import InvalidMarker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from hatch_pbs import __version__
from hatch_pbs.atomic import write_file
from hatch_pbs.errors import PackError, os_error_cause
from hatch_pbs.release.assets import GITHUB_DOWNLOAD_PREFIX, release_file_url
from hatch_pbs.release.triples import marker_environment

#: The SBOM's file name suffix: ``<archive name>.cdx.json`` beside the archive.
SBOM_SUFFIX = ".cdx.json"
#: CPython's licence as SPDX names it: the Python License 2.0 with the PSF, BeOpen, CNRI and CWI licences it
#: includes. Used when the runtime asset carries no PYTHON.json (``install_only`` flavors).
CPYTHON_LICENSE = "Python-2.0"
_PROPERTY_PREFIX = "hatch-pbs:"
#: Trove classifiers that name exactly one SPDX licence; other ``License ::`` classifiers are kept as names.
_CLASSIFIER_SPDX = {
    "Apache Software License 2.0 (Apache-2.0)": "Apache-2.0",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "ISC License (ISCL)": "ISC",
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "Universal Permissive License (UPL)": "UPL-1.0",
    "zlib/libpng License": "Zlib",
}


@dataclass
class PackageInfo:
    """What the SBOM takes from one installed distribution's ``METADATA``.

    Attributes:
        name: ``Name`` as written.
        version: ``Version``.
        license_expression: ``License-Expression`` (PEP 639), if any.
        license: ``License``, if a single line of at most 100 characters (longer ones are licence texts).
        classifiers: the ``License ::`` classifiers, without that prefix.
        requires: the ``Requires-Dist`` entries.
    """

    name: str
    version: str
    license_expression: str | None = None
    license: str | None = None
    classifiers: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)


def sbom_path(archive: Path) -> Path:
    """Where the SBOM of ``archive`` goes: ``<archive>.cdx.json`` in the same directory."""
    return archive.with_name(archive.name + SBOM_SUFFIX)


def read_packages(site_dir: Path) -> dict[str, PackageInfo]:
    """Canonical name -> :class:`PackageInfo` of every distribution installed in ``site_dir``."""
    found: dict[str, PackageInfo] = {}
    for dist_info in sorted(site_dir.glob("*.dist-info")):
        try:
            message = BytesParser(policy=compat32).parsebytes((dist_info / "METADATA").read_bytes())
        except OSError:
            continue
        name, version = message.get("Name"), message.get("Version")
        if not name or not version:
            continue
        declared = str(message.get("License") or "").strip()
        found[canonicalize_name(str(name))] = PackageInfo(
            name=str(name).strip(),
            version=str(version).strip(),
            license_expression=str(message.get("License-Expression") or "").strip() or None,
            license=declared if declared and "\n" not in declared and len(declared) <= 100
            and declared.upper() != "UNKNOWN" else None,
            classifiers=[str(value).strip().removeprefix("License ::").strip()
                         for value in message.get_all("Classifier") or [] if str(value).startswith("License ::")],
            requires=[str(value).strip() for value in message.get_all("Requires-Dist") or []],
        )
    return found


def write_sbom(archive: Path, manifest: Mapping[str, Any], site_dir: Path, *, archive_sha256: str | None,
               epoch: int | None = None) -> Path:
    """Write the CycloneDX SBOM of ``archive`` beside it (atomically: a temporary file renamed into place).

    Args:
        archive: the archive the SBOM describes (its name goes into the SBOM).
        manifest: the archive's manifest (see docs/artifact-layout.md).
        site_dir: the artifact's ``app/`` directory, for the distributions' licences and dependencies.
        archive_sha256: the archive's sha256; ``None`` for an artifact that is a directory
            (``archive-format = "dir"``).
        epoch: ``SOURCE_DATE_EPOCH`` for the document's timestamp; ``None``: the current time.

    Returns:
        The SBOM's path, :func:`sbom_path` of ``archive``.

    Raises:
        PackError: the SBOM cannot be written.
    """
    document = render(build_bom(manifest, read_packages(site_dir), archive_name=archive.name,
                                archive_sha256=archive_sha256, epoch=epoch))
    destination = sbom_path(archive)
    try:
        write_file(destination, document.encode("utf-8"))
    except OSError as error:
        raise PackError(f"cannot write the SBOM {destination}: {os_error_cause(error, destination)}") from None
    return destination


def render(bom: Any) -> str:
    """The CycloneDX 1.6 JSON text of ``bom``, indented, ending with a newline."""
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion

    return make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2) + "\n"


def build_bom(manifest: Mapping[str, Any], packages: Mapping[str, PackageInfo], *, archive_name: str,
              archive_sha256: str | None, epoch: int | None = None) -> Any:
    """The :class:`cyclonedx.model.bom.Bom` of one archive (see the module's documentation for its content).

    Args:
        manifest: the archive's manifest: ``project``, ``target``, ``python_version``, ``runtime`` and
            ``distributions`` (with ``wheel`` and ``sha256``) are used.
        packages: :func:`read_packages` of the archive's ``app/``.
        archive_name: the archive's file name.
        archive_sha256: the archive's sha256 (``None``: a directory, recorded without a hash).
        epoch: the document's timestamp (seconds since the epoch); ``None``: the current time.
    """
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType

    app_key = canonicalize_name(manifest["project"]["name"])
    components = _distribution_components(manifest, packages, app_key)
    app = _application_component(manifest, components.pop(app_key, None), app_key, archive_name, archive_sha256)

    runtime = _runtime_component(manifest)
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"hatch-pbs:{archive_name}:{archive_sha256 or ''}"))
    if epoch is not None:
        bom.metadata.timestamp = datetime.fromtimestamp(epoch, tz=timezone.utc)
    bom.metadata.component = app
    bom.metadata.tools.components.add(Component(type=ComponentType.APPLICATION, name="hatch-pbs",
                                                version=__version__))
    try:
        bom.metadata.tools.components.add(Component(type=ComponentType.LIBRARY, name="cyclonedx-python-lib",
                                                    version=distribution_version("cyclonedx-python-lib")))
    except PackageNotFoundError:  # pragma: no cover - imported above, so installed
        pass
    bom.components.add(runtime)
    for component in components.values():
        bom.components.add(component)

    everything = {**components, app_key: app}
    edges = _dependency_edges(packages, set(everything), manifest["target"], manifest["python_version"])
    bom.register_dependency(app, [runtime, *(everything[key] for key in sorted(edges.get(app_key, ())))])
    bom.register_dependency(runtime, [])
    for key, component in sorted(components.items()):
        bom.register_dependency(component, [everything[name] for name in sorted(edges.get(key, ()))])
    return bom


def _distribution_components(manifest: Mapping[str, Any], packages: Mapping[str, PackageInfo], app_key: str
                             ) -> dict[str, Any]:
    """One :class:`cyclonedx.model.component.Component` per installed distribution of the manifest, by
    canonical name (the project's, ``app_key``, an application; the others libraries), with its wheel's (or
    sdist's) file name, sha256 and licenses."""
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    distributions = {canonicalize_name(entry["name"]): entry for entry in manifest.get("distributions", [])}
    components: dict[str, Component] = {}
    for key, entry in sorted(distributions.items()):
        info = packages.get(key)
        sha256 = entry.get("sha256")
        qualifiers = {"file_name": entry["wheel"]} if entry.get("wheel") else (
            {"file_name": entry["sdist"]} if entry.get("sdist") else {})
        purl = PackageURL(type="pypi", name=key, version=entry["version"], qualifiers=qualifiers)
        components[key] = Component(
            type=ComponentType.APPLICATION if key == app_key else ComponentType.LIBRARY,
            name=entry["name"], version=entry["version"], purl=purl, bom_ref=f"pkg:pypi/{key}@{entry['version']}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=sha256)] if sha256 else [],
            licenses=_package_licenses(info) if info else [],
        )
    return components


def _application_component(manifest: Mapping[str, Any], app: Any, app_key: str, archive_name: str,
                           archive_sha256: str | None) -> Any:
    """The project's component (``app``, or a new one when the manifest lists no distribution of the project),
    with the archive as its distribution reference (sha256 when it is a file) and the target triple."""
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        Property,
        XsUri,
    )
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    project = manifest["project"]
    if app is None:  # the project's own distribution is always installed; be total anyway
        purl = PackageURL(type="pypi", name=app_key, version=project["version"])
        app = Component(type=ComponentType.APPLICATION, name=project["name"], version=project["version"],
                        purl=purl, bom_ref=f"pkg:pypi/{app_key}@{project['version']}")
    app.external_references.add(ExternalReference(
        type=ExternalReferenceType.DISTRIBUTION, url=XsUri(archive_name),
        comment=f"the archive this SBOM describes, for {manifest['target']}",
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=archive_sha256)] if archive_sha256 else []))
    app.properties.add(Property(name=f"{_PROPERTY_PREFIX}target", value=manifest["target"]))
    return app


def _runtime_component(manifest: Mapping[str, Any]) -> Any:
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        Property,
        XsUri,
    )
    from cyclonedx.model.component import Component, ComponentType
    from packageurl import PackageURL

    runtime = manifest["runtime"]
    version = manifest["python_version"]
    canonical = release_file_url(GITHUB_DOWNLOAD_PREFIX, runtime["release"], runtime["asset"])
    sha256 = runtime["sha256"]
    purl = PackageURL(type="generic", namespace="python-build-standalone", name="cpython", version=version,
                      qualifiers={"download_url": canonical, "checksum": f"sha256:{sha256}"})
    python_json = runtime.get("python_json") or {}
    declared = python_json.get("licenses") if runtime.get("flavor") == "full" else None
    if isinstance(declared, list) and declared and all(isinstance(item, str) for item in declared):
        licenses = [_license(item) for item in declared]
        source = "PYTHON.json"
    else:
        licenses = [_license(CPYTHON_LICENSE)]
        source = "CPython's licence (the asset has no PYTHON.json)"
    hashes = [HashType(alg=HashAlgorithm.SHA_256, content=sha256)]
    component = Component(
        type=ComponentType.PLATFORM, name="cpython", version=version, purl=purl,
        bom_ref=f"pkg:generic/python-build-standalone/cpython@{version}",
        description=f"CPython {version} runtime for {manifest['target']} from python-build-standalone release "
                    f"{runtime['release']} ({runtime['asset']})",
        hashes=hashes, licenses=licenses,
        external_references=[ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(canonical),
                                               hashes=hashes)],
    )
    if runtime.get("url") and runtime["url"] != canonical:
        component.external_references.add(ExternalReference(
            type=ExternalReferenceType.DISTRIBUTION, url=XsUri(runtime["url"]), hashes=hashes,
            comment="the mirror the build fetched the asset from"))
    for key in ("release", "asset", "flavor", "build_options"):
        if runtime.get(key):
            component.properties.add(Property(name=f"{_PROPERTY_PREFIX}runtime:{key}", value=str(runtime[key])))
    component.properties.add(Property(name=f"{_PROPERTY_PREFIX}runtime:licenses-source", value=source))
    return component


def _license(value: str) -> Any:
    """A declared licence: an SPDX identifier, else an SPDX expression, else a named licence."""
    from cyclonedx.model.license import (
        DisjunctiveLicense,
        LicenseAcknowledgement,
        LicenseExpression,
    )
    from cyclonedx.spdx import fixup_id, is_expression

    spdx_id = fixup_id(value)
    if spdx_id:
        return DisjunctiveLicense(id=spdx_id, acknowledgement=LicenseAcknowledgement.DECLARED)
    if is_expression(value):
        return LicenseExpression(value, acknowledgement=LicenseAcknowledgement.DECLARED)
    return DisjunctiveLicense(name=value, acknowledgement=LicenseAcknowledgement.DECLARED)


def _package_licenses(info: PackageInfo) -> list[Any]:
    """The licences a distribution declares: ``License-Expression``, else ``License``, else its classifiers (a
    list of identifiers or names; CycloneDX allows one expression alone, never an expression among others)."""
    if info.license_expression:
        return [_license(info.license_expression)]
    if info.license:
        return [_license(info.license)]
    found: dict[str, Any] = {}
    for classifier in info.classifiers:
        name = classifier.split("::")[-1].strip()
        spdx = _CLASSIFIER_SPDX.get(name)
        if not name or name == "OSI Approved":
            continue
        from cyclonedx.model.license import DisjunctiveLicense, LicenseAcknowledgement

        found.setdefault(spdx or name, DisjunctiveLicense(id=spdx, acknowledgement=LicenseAcknowledgement.DECLARED)
                         if spdx else DisjunctiveLicense(name=name, acknowledgement=LicenseAcknowledgement.DECLARED))
    return list(found.values())


def _dependency_edges(packages: Mapping[str, PackageInfo], installed: set[str], triple: str, python_version: str
                      ) -> dict[str, set[str]]:
    """Canonical name -> the installed distributions its ``Requires-Dist`` entries need on the target.

    Extras are those some installed distribution asks for (``rich[jupyter]``), found by iterating to a fixed
    point; requirements naming something not installed are left out.
    """
    environment = marker_environment(triple, python_version)
    parsed: dict[str, list[Requirement]] = {}
    for key, info in packages.items():
        parsed[key] = []
        for text in info.requires:
            try:
                parsed[key].append(Requirement(text))
            except InvalidRequirement:
                continue
    extras: dict[str, set[str]] = {key: set() for key in packages}
    edges: dict[str, set[str]] = {}
    while True:
        edges = {key: set() for key in packages}
        wanted: dict[str, set[str]] = {key: set() for key in packages}
        for key, requirements in parsed.items():
            for requirement in requirements:
                target = canonicalize_name(requirement.name)
                if target not in installed or not _applies(requirement, environment, extras.get(key, set())):
                    continue
                edges[key].add(target)
                wanted.setdefault(target, set()).update(canonicalize_name(extra) for extra in requirement.extras)
        if all(wanted.get(key, set()) <= extras.get(key, set()) for key in wanted):
            return edges
        for key, more in wanted.items():
            extras.setdefault(key, set()).update(more)


def _applies(requirement: Requirement, environment: Mapping[str, str], extras: Iterable[str]) -> bool:
    if requirement.marker is None:
        return True
    try:
        return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in ("", *extras))
    except (InvalidMarker, ValueError, TypeError):
        return True


__all__ = ["CPYTHON_LICENSE", "SBOM_SUFFIX", "PackageInfo", "build_bom", "read_packages",
           "render", "sbom_path", "write_sbom"]
