"""Distribution forms built from one prepared artifact: the archive, runtime wheels, PyApp binaries."""
