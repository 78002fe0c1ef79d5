"""A container registry client (the OCI distribution spec, https://github.com/opencontainers/distribution-spec):
image references, credentials, pulling base images into the cache and pushing OCI layout archives.

Modules: :mod:`~hatch_pbs.registry.reference` (parsing ``[registry/]repository[:tag][@digest]`` as Docker does),
:mod:`~hatch_pbs.registry.credentials` (podman's, skopeo's and Docker's credentials files and helpers),
:mod:`~hatch_pbs.registry.client` (the HTTP API, its token and Basic authentication),
:mod:`~hatch_pbs.registry.pull` (platform selection, the cache's blob store) and :mod:`~hatch_pbs.registry.push`.

Decision: an own small client on httpx, which the project already depends on (:mod:`hatch_pbs.release.download`),
rather than oras-py or python-dxf (both on requests, a second HTTP stack; oras-py also pulls in jsonschema and
selects no platform from an index) or skopeo (a system binary, not on PyPI: a build would need it installed).
The distribution API a build needs is small: manifests, blobs, uploads, referrers and two authentication schemes.
"""
