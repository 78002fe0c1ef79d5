"""Applying a :class:`~hatch_pbs.patching.analysis.RelocationPlan`."""

from __future__ import annotations

import os

from hatch_pbs.errors import RelocateError
from hatch_pbs.patching.analysis import RelocationPlan, ShebangChange
from hatch_pbs.patching.elf import write_search_paths

#: The relocatable preamble python-build-standalone itself puts in its scripts (PBS-FACTS.md): valid as ``/bin/sh``
#: (which execs the interpreter found relative to the script's real location) and as Python (a string literal).
TRAMPOLINE = """#!/bin/sh
'''exec' "$(dirname -- "$(realpath -- "$0")")/{interpreter}" {arguments}"$0" "$@"
' '''
"""


def apply_plan(plan: RelocationPlan) -> None:
    """Write every change of ``plan`` into its tree.

    Raises:
        RelocateError: a file could not be rewritten (the message names it).
    """
    by_file: dict[str, dict[str, tuple[str, ...]]] = {}
    for change in plan.search_paths:
        by_file.setdefault(change.path, {})[change.tag] = change.after
    for relative, search_paths in sorted(by_file.items()):
        try:
            write_search_paths(plan.root / relative, search_paths)
        except (ValueError, OSError) as error:
            raise RelocateError(f"cannot rewrite the library search path of {relative}: {error}") from None
    for change in plan.shebangs:
        rewrite_shebang(plan, change)


def trampoline(change: ShebangChange) -> str:
    """The preamble replacing ``change``'s ``#!`` line."""
    arguments = f"{change.arguments} " if change.arguments else ""
    return TRAMPOLINE.format(interpreter=change.interpreter, arguments=arguments)


def rewrite_shebang(plan: RelocationPlan, change: ShebangChange) -> None:
    path = plan.root / change.path
    try:
        content = path.read_bytes()
        body = content.split(b"\n", 1)[1] if b"\n" in content else b""
        temporary = path.with_name(f".{path.name}.relocating")
        temporary.write_bytes(trampoline(change).encode() + body)
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except OSError as error:
        raise RelocateError(f"cannot rewrite the shebang of {change.path}: {error}") from None
