"""Relocation: make a runtime and the application installed beside it work from any directory.

Split in two, so what will change can be inspected (and reported) before anything is written:

- :mod:`hatch_pbs.relocate.analysis` reads the tree (ELF search paths, Mach-O install names/dependencies/rpaths,
  script shebangs, the build prefix) and returns a :class:`~hatch_pbs.relocate.analysis.RelocationPlan`; it
  never writes.
- :mod:`hatch_pbs.relocate.apply` applies a plan: LIEF rewrites ELF ``DT_RPATH``/``DT_RUNPATH`` and Mach-O load
  commands (then :mod:`hatch_pbs.binaries.codesign` re-signs those ad-hoc), scripts get a relocatable ``/bin/sh``
  trampoline.
"""

from hatch_pbs.relocate.analysis import RelocationPlan, plan_relocation
from hatch_pbs.relocate.apply import apply_plan

__all__ = ["RelocationPlan", "apply_plan", "plan_relocation"]
