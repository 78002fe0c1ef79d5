"""Byte-compiling with the bundled runtime: the worker it runs and the marshal normalization that makes ``.pyc`` files
reproducible."""
