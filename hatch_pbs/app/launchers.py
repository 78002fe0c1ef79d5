"""Launchers: ``bin/<script>`` POSIX shell scripts that run an entry point on the bundled runtime.

A launcher finds its own location (following symbolic links, so it can be linked from ``/usr/local/bin``), then
``exec``\\ s the runtime's interpreter in isolated mode (``-I``: ``PYTHON*`` variables, the user site directory and
the current directory stay out of ``sys.path``). ``sys.argv[0]`` is the launcher's path as invoked and every
argument is passed through unchanged; the entry point's return value becomes the exit status, as with the console
scripts pip and uv write (entry point semantics: PyPA "Entry points specification").

Windows launchers are ``bin/<script>.exe``: a prebuilt C program (``hatch_pbs/app/launcher/launcher.c``, built for
x86_64, aarch64 and i686, console and GUI subsystems) followed by a payload naming the interpreter relative to the
launcher and its ``-I -c <bootstrap code>`` arguments. The program runs
``"<interpreter>" -I -c "<code>" "<launcher path>" <its own arguments, verbatim>`` and exits with the interpreter's
exit code; see the comment at the top of ``launcher.c``.
"""

from __future__ import annotations

import re
import struct
import subprocess
from importlib import resources
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
        *) case $self in */*) self=${{self%/*}}/$link ;; *) self=$link ;; esac ;;
    esac
done
case $self in
    */*) dir=${{self%/*}} ;;
    *) dir=. ;;
esac
root=$(CDPATH='' cd -P -- "${{dir:-/}}/.." && pwd -P) || exit 127
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


#: Last 8 bytes of a Windows launcher; the 4 bytes before them are the payload length (little-endian).
WINDOWS_LAUNCHER_MAGIC = b"HPBSLNC1"
#: Architectures (the target triple's, without CPU level) with a prebuilt Windows launcher.
WINDOWS_LAUNCHER_ARCHES = ("x86_64", "aarch64", "i686")
_WINDOWS_TRAILER = struct.Struct("<I8s")


def windows_launcher_program(arch: str, gui: bool) -> bytes:
    """The prebuilt launcher program ``hatch_pbs/app/launcher/launcher-<arch>-<console|gui>.exe``, without payload.

    Raises:
        InstallError: no launcher is built for ``arch``.
    """
    if arch not in WINDOWS_LAUNCHER_ARCHES:
        raise InstallError(f"no Windows launcher for architecture {arch!r}; "
                           f"available: {', '.join(WINDOWS_LAUNCHER_ARCHES)}")
    name = f"launcher-{arch}-{'gui' if gui else 'console'}.exe"
    return resources.files("hatch_pbs.app").joinpath("launcher", name).read_bytes()


def windows_launcher_payload(interpreter: str, arguments: str) -> bytes:
    """The bytes appended to a launcher program: ``interpreter \\0 arguments \\0 <u32 LE length> HPBSLNC1``.

    ``interpreter`` and ``arguments`` are UTF-8 encoded; the length counts the bytes before it (both fields and
    their NULs).

    Raises:
        InstallError: a field contains a NUL character or ``interpreter`` is empty.
    """
    if not interpreter or "\0" in interpreter or "\0" in arguments:
        raise InstallError(f"invalid Windows launcher payload: interpreter {interpreter!r}, "
                           f"arguments {arguments!r} (non-empty, no NUL characters)")
    data = interpreter.encode("utf-8") + b"\0" + arguments.encode("utf-8") + b"\0"
    return data + _WINDOWS_TRAILER.pack(len(data), WINDOWS_LAUNCHER_MAGIC)


def read_windows_launcher_payload(launcher: bytes) -> tuple[str, str]:
    """``(interpreter, arguments)`` of a Windows launcher's bytes (the inverse of :func:`write_windows_launcher`).

    Raises:
        InstallError: no payload, or a corrupt one (the launcher program rejects the same cases).
    """
    if len(launcher) < _WINDOWS_TRAILER.size:
        raise InstallError("not a hatch-pbs Windows launcher: too short")
    length, magic = _WINDOWS_TRAILER.unpack(launcher[-_WINDOWS_TRAILER.size:])
    if magic != WINDOWS_LAUNCHER_MAGIC:
        raise InstallError("not a hatch-pbs Windows launcher: no payload")
    if not 2 <= length <= len(launcher) - _WINDOWS_TRAILER.size:
        raise InstallError(f"corrupt Windows launcher payload: length {length}")
    data = launcher[-_WINDOWS_TRAILER.size - length:-_WINDOWS_TRAILER.size]
    fields = data.split(b"\0")
    if len(fields) != 3 or fields[2] or not fields[0]:
        raise InstallError("corrupt Windows launcher payload: expected interpreter NUL arguments NUL")
    try:
        return fields[0].decode("utf-8"), fields[1].decode("utf-8")
    except UnicodeDecodeError as error:
        raise InstallError(f"corrupt Windows launcher payload: {error}") from None


def write_windows_launcher(bin_dir: Path, name: str, entry_point: str, *, arch: str, gui: bool,
                           interpreter: str) -> Path:
    """Write ``bin_dir/<name>.exe``: the prebuilt launcher for ``arch`` and subsystem plus its payload.

    The launcher runs ``"<bin_dir>\\<interpreter>" -I -c "<bootstrap code>" "<path of the .exe>" <arguments>``;
    the bootstrap code (:func:`bootstrap_code`) turns the launcher path into ``sys.argv[0]``.

    Args:
        bin_dir: the artifact's ``bin/`` directory.
        name: the script name from ``[project.scripts]`` / ``[project.gui-scripts]``, without ``.exe``.
        entry_point: ``module:function``.
        arch: the target triple's architecture without CPU level: ``"x86_64"``, ``"aarch64"`` or ``"i686"``.
        gui: a GUI launcher (windows subsystem: no console window) instead of a console one.
        interpreter: the interpreter path relative to ``bin_dir``, Windows form (``/`` is accepted and turned into
            ``\\``), e.g. ``..\\python\\python.exe``, or ``..\\python\\pythonw.exe`` for GUI scripts.

    Returns:
        The path of the written ``.exe``.

    Raises:
        InstallError: invalid script name or entry point, unsupported ``arch``, or an ``interpreter`` that is empty,
            absolute or contains a NUL.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise InstallError(f"script name {name!r} cannot be a file name of a launcher")
    windows_interpreter = interpreter.replace("/", "\\")
    if not windows_interpreter or "\0" in windows_interpreter or windows_interpreter.startswith("\\") \
            or re.match(r"[A-Za-z]:", windows_interpreter):
        raise InstallError(f"Windows launcher interpreter {interpreter!r} must be a path relative to bin/, "
                           "e.g. ..\\python\\python.exe")
    arguments = subprocess.list2cmdline(["-I", "-c", bootstrap_code(entry_point)])
    program = windows_launcher_program(arch, gui)
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"{name}.exe"
    path.write_bytes(program + windows_launcher_payload(windows_interpreter, arguments))
    path.chmod(0o755)
    return path
