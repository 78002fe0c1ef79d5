"""Applying a :class:`~hatch_pbs.relocate.analysis.RelocationPlan`."""

from __future__ import annotations

from pathlib import Path

from hatch_pbs import interrupts
from hatch_pbs.atomic import write_file
from hatch_pbs.binaries.codesign import signed_bytes
from hatch_pbs.binaries.elf import write_search_paths
from hatch_pbs.binaries.macho import write_load_commands
from hatch_pbs.errors import RelocateError, SigningError
from hatch_pbs.relocate.analysis import MachOChange, RelocationPlan, ShebangChange

#: The relocatable preamble python-build-standalone itself puts in its scripts (docs/pbs-facts.md): valid as ``/bin/sh``
#: (which execs the interpreter found relative to the script's real location) and as Python (a string literal).
TRAMPOLINE = """#!/bin/sh
'''exec' "$(dirname -- "$(realpath -- "$0")")/{interpreter}" {arguments}"$0" "$@"
' '''
"""

#: The same for an interpreter in another directory (``../python/bin/python3`` from ``app/``): the directory is
#: made canonical first (``cd`` + ``pwd -P``), because CPython 3.10 keeps a ``..`` of its own path in ``sys.prefix``
#: (``<root>/app/../python``; 3.11's ``getpath`` normalises it).
TRAMPOLINE_ELSEWHERE = """#!/bin/sh
'''exec' "$(cd -- "$(dirname -- "$(realpath -- "$0")")/{directory}" && pwd -P)/{name}" {arguments}"$0" "$@"
' '''
"""


def apply_plan(plan: RelocationPlan) -> None:
    """Write every change of ``plan`` into its tree. Mach-O files are re-signed ad-hoc as they are rewritten
    (each file is replaced once, rewritten and signed, or not at all).

    Raises:
        RelocateError: the plan has problems (nothing is written then; the message lists them all), or a file
            could not be rewritten (the message names it).
        SigningError: a rewritten Mach-O file could not be re-signed (the file is left as it was).
        BuildInterrupted: the build was interrupted (between two files; the tree is a temporary one).
    """
    if plan.problems:
        raise RelocateError("cannot relocate the runtime:\n" + "\n".join(f"  {problem}" for problem in plan.problems))
    by_file: dict[str, dict[str, tuple[str, ...]]] = {}
    for change in plan.search_paths:
        by_file.setdefault(change.path, {})[change.tag] = change.after
    for relative, search_paths in sorted(by_file.items()):
        interrupts.check()  # between two files: each is rewritten whole or not at all
        try:
            write_search_paths(plan.root / relative, search_paths)
        except (ValueError, OSError) as error:
            raise RelocateError(f"cannot rewrite the library search path of {relative}: {error}") from None
    for macho_change in plan.macho:
        interrupts.check()
        rewrite_macho(plan, macho_change)
    for shebang_change in plan.shebangs:
        interrupts.check()
        rewrite_shebang(plan, shebang_change)


def rewrite_macho(plan: RelocationPlan, change: MachOChange) -> None:
    """Apply one Mach-O change, then re-sign the file ad-hoc (identifier: its file name) if the plan says so."""
    path = plan.root / change.path

    def sign(written: Path) -> None:
        written.write_bytes(signed_bytes(written.read_bytes(), path.name, path=Path(change.path)))

    try:
        write_load_commands(
            path,
            install_name=change.install_name[1] if change.install_name else None,
            dylibs=dict(change.dylibs),
            rpaths=change.rpaths_after if change.rpaths_after != change.rpaths_before else None,
            finish=sign if change.path in plan.signed else None)
    except SigningError:
        raise
    except (ValueError, OSError) as error:
        raise RelocateError(f"cannot rewrite the load commands of {change.path}: {error}") from None


def trampoline(change: ShebangChange) -> str:
    """The preamble replacing ``change``'s ``#!`` line."""
    arguments = f"{change.arguments} " if change.arguments else ""
    directory, _, name = change.interpreter.rpartition("/")
    if directory:
        return TRAMPOLINE_ELSEWHERE.format(directory=directory, name=name, arguments=arguments)
    return TRAMPOLINE.format(interpreter=change.interpreter, arguments=arguments)


def rewrite_shebang(plan: RelocationPlan, change: ShebangChange) -> None:
    path = plan.root / change.path
    try:
        content = path.read_bytes()
        parts = content.split(b"\n", change.lines)
        body = parts[change.lines] if len(parts) > change.lines else b""
        write_file(path, trampoline(change).encode() + body, mode=path.stat().st_mode & 0o7777)
    except OSError as error:
        raise RelocateError(f"cannot rewrite the shebang of {change.path}: {error}") from None
