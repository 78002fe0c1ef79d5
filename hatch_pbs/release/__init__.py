"""python-build-standalone releases: target triples, asset names and URLs, resolution, the lock file, downloads and the
cache."""
