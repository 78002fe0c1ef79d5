"""Registration of the ``pbs`` build hook with Hatch (entry point group ``hatch``)."""

from hatchling.plugin import hookimpl

from hatch_pbs.hatch.hook import PbsBuildHook


@hookimpl
def hatch_register_build_hook():  # noqa: ANN201 - signature fixed by Hatch's plugin interface
    return PbsBuildHook
