"""hatch-pbs: ship a Python application as a ready-to-run archive on a python-build-standalone runtime."""

__version__ = "0.1.0"
