"""The adapter between Hatch and the pipeline: the ``pbs`` build hook."""
