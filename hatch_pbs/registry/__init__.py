"""A container registry client (the OCI distribution spec, https://github.com/opencontainers/distribution-spec):
image references, credentials, pulling base images into the cache and pushing OCI layout archives."""
