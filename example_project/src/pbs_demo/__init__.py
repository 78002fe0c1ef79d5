"""pbs-demo: a tiny JSON-summarising CLI used to demonstrate hatch-pbs."""

__version__ = "1.0.0"
