"""Launchers: ``bin/<script>`` POSIX shell scripts that run an entry point on the bundled runtime.

A launcher finds its own location (following symbolic links, so it can be linked from ``/usr/local/bin``), then
``exec``\\ s the runtime's interpreter in isolated mode (``-I``: ``PYTHON*`` variables, the user site directory and
the current directory stay out of ``sys.path``). ``sys.argv[0]`` is the launcher's path as invoked and every
argument is passed through unchanged; the entry point's return value becomes the exit status, as with the console
scripts pip and uv write (entry point semantics: PyPA "Entry points specification").
"""

from __future__ import annotations

import re
from pathlib import Path

from hatch_pbs import __version__
from hatch_pbs.errors import InstallError

_ENTRY_POINT_RE = re.compile(
    r"^\s*(?P<module>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*"
    r"(?::\s*(?P<attribute>[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*))?\s*(?:\[[^\]]*\])?\s*$"
)

LAUNCHER_TEMPLATE = """\
#!/bin/sh
# {name}: launcher written by hatch-pbs {version}; runs {entry_point} on the bundled Python runtime.
self=$0
while [ -L "$self" ]; do
    link=$(readlink -- "$self") || break
    case $link in
        /*) self=$link ;;
        *) self=$(dirname -- "$self")/$link ;;
    esac
done
root=$(CDPATH='' cd -P -- "$(dirname -- "$self")/.." && pwd -P) || exit 127
exec "$root/{interpreter}" -I -c '{code}' "$0" "$@"
"""


def _parse_entry_point(entry_point: str) -> tuple[str, str | None]:
    """``(module, attribute or None)`` of ``module[:attribute[.attribute]] [extras]``.

    Raises:
        InstallError: ``entry_point`` is not a valid entry point reference.
    """
    match = _ENTRY_POINT_RE.match(entry_point)
    if not match:
        raise InstallError(f"invalid entry point {entry_point!r}: expected 'module:function'")
    return match["module"], match["attribute"]


def bootstrap_code(entry_point: str) -> str:
    """The ``python -c`` program of a launcher for ``entry_point`` (``module:attribute[.attribute]``).

    Raises:
        InstallError: ``entry_point`` is not a valid entry point reference.
    """
    module, attribute = _parse_entry_point(entry_point)
    # The code sits in single quotes in the launcher: it must not contain any (names cannot).
    lines = ["import sys", "sys.argv[0:2] = sys.argv[1:2]"]
    if attribute:
        lines += [f"from {module} import {attribute.split('.')[0]}", f"sys.exit({attribute}())"]
    else:
        # What `python -m` runs (the interpreter itself calls it by this name), but keeping sys.argv[0] the
        # launcher's path (run_module would set it to the module's file, and argparse would show that as `prog`).
        lines += ["import runpy", f'runpy._run_module_as_main("{module}", alter_argv=False)']
    return "\n".join(lines)


def write_launcher(bin_dir: Path, name: str, entry_point: str, interpreter: str) -> Path:
    """Write ``bin_dir/name`` (mode 0755).

    Args:
        bin_dir: the artifact's ``bin/`` directory.
        name: the script name from ``[project.scripts]``.
        entry_point: ``module:function``.
        interpreter: the interpreter path relative to the artifact root, e.g. ``python/bin/python3.12``.

    Raises:
        InstallError: invalid script name or entry point.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise InstallError(f"script name {name!r} cannot be a file name of a launcher")
    module, attribute = _parse_entry_point(entry_point)
    # The normalized reference, not the raw string: extras may hold a newline, which would end the comment.
    reference = f"{module}:{attribute}" if attribute else module
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(
        LAUNCHER_TEMPLATE.format(name=name, version=__version__, entry_point=reference, interpreter=interpreter,
                                 code=bootstrap_code(entry_point)),
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path
