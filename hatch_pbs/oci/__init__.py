"""OCI container images built from the release archives: reproducible layers, image configs, the multi-platform
image index and the OCI image layout archive (https://github.com/opencontainers/image-spec)."""
