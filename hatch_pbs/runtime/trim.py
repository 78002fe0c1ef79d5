"""Trimming an artifact tree: the ``stdlib`` presets and the ``exclude`` patterns.

Both are gitignore-style patterns (``pathspec``'s ``GitIgnoreSpec``, the syntax of Hatch's own ``exclude``) matched
against paths relative to the artifact root (``python/...``, ``app/...``); a directory is matched with its trailing
slash, so ``python/lib/python3.12/idlelib/`` removes the whole package. The last matching pattern wins, and a
pattern starting with ``!`` keeps what an earlier one dropped.

What the presets drop (paths relative to the runtime directory; ``{stdlib}`` is ``lib/python3.X`` on POSIX
layouts and ``Lib`` on Windows, as python-build-standalone lays them out, docs/pbs-facts.md "Archive layout"):

``full``
    nothing.
``default``
    the standard library's test suites (``{stdlib}/test/``, ``{stdlib}/*/test/``, ``{stdlib}/*/tests/``, the
    ``_test*``/``xxlimited``/``_xxtestfuzz`` extension modules), ``idlelib`` (and ``bin/idle3*``), ``turtledemo``,
    ``ensurepip``, ``lib2to3`` (and ``bin/2to3*``), the runtime's own ``pip`` (python-build-standalone preinstalls
    it; the application is installed at build time and the artifact has no use for an installer, just as it has
    none for ``ensurepip``), and bytecode the runtime never loads: ``.opt-1.pyc`` and
    ``.opt-2.pyc`` (launchers never run with ``-O``) and ``.pyc`` files of another interpreter's cache tag (left by
    another build machine's interpreter).
``minimal``
    also ``tkinter`` with Tcl/Tk (``_tkinter``, ``turtle.py``, ``lib/tcl*``, ``lib/tk*`` and Tcl's packages;
    ``tcl/`` and the Tcl/Tk DLLs on Windows), ``pydoc_data``, ``distutils`` (Python 3.11; kept for 3.10, whose install
    scheme uv reads through
    distutils: 3.10 has no ``venv`` sysconfig scheme), and the files
    only needed to compile C extensions against the runtime: ``include/``, ``lib/pkgconfig/``,
    ``{stdlib}/config-*/`` and ``libs/`` (Windows import libraries), and ``share/man/``.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

_DEFAULT_DROPS = ("{stdlib}/test/", "{stdlib}/*/test/", "{stdlib}/*/tests/", "{stdlib}/idlelib/",
                  "{stdlib}/turtledemo/", "{stdlib}/ensurepip/", "{stdlib}/lib2to3/", "{dynload}/_test*",
                  "{dynload}/xxlimited*", "{dynload}/_xxtestfuzz*", "{dynload}/_ctypes_test*", "bin/idle3*",
                  "bin/2to3*",
                  # the runtime's own pip: the build installs the application; the artifact never runs pip
                  "{stdlib}/site-packages/pip/", "{stdlib}/site-packages/pip-*.dist-info/", "bin/pip*",
                  "Scripts/pip*",
                  # bytecode the runtime never loads
                  "**/__pycache__/*.pyc", "!**/__pycache__/*.{cache_tag}.pyc", "**/__pycache__/*.opt-1.pyc",
                  "**/__pycache__/*.opt-2.pyc")
_MINIMAL_DROPS = ("{stdlib}/tkinter/", "{stdlib}/turtle.py", "{stdlib}/__pycache__/turtle.*",
                  "{stdlib}/pydoc_data/", "{stdlib}/distutils/", "{dynload}/_tkinter*",
                  # Tcl/Tk and Tcl's own packages (POSIX layouts)
                  "lib/tcl*", "lib/tk*", "lib/itcl*", "lib/thread*", "lib/tdbc*", "lib/libtcl*", "lib/libtk*",
                  # Tcl/Tk (Windows layout)
                  "tcl/", "DLLs/tcl*.dll", "DLLs/tk*.dll",
                  # only needed to compile C extensions against the runtime
                  "include/", "lib/pkgconfig/", "{stdlib}/config-*/", "libs/", "share/man/")


@dataclass(frozen=True)
class TrimResult:
    """What a trim removed: ``files`` (regular files and links) and their ``size`` in bytes."""

    files: int = 0
    size: int = 0

    def __add__(self, other: TrimResult) -> TrimResult:
        return TrimResult(self.files + other.files, self.size + other.size)


def stdlib_patterns(preset: str, *, python_version: str, windows: bool) -> list[str]:
    """The patterns of ``preset`` (``"full"``, ``"default"`` or ``"minimal"``), relative to the runtime directory.

    Args:
        python_version: the runtime's CPython version, ``"3.X"`` or ``"3.X.Y"``.
        windows: the runtime has the Windows layout (``Lib/``, ``DLLs/``).

    Raises:
        ValueError: an unknown preset.
    """
    if preset not in ("full", "default", "minimal"):
        raise ValueError(f"unknown stdlib preset {preset!r}")
    major, minor = python_version.split(".")[:2]
    stdlib = "Lib" if windows else f"lib/python{major}.{minor}*"  # `*`: the free-threaded build's `3.Xt`
    fields = {"stdlib": stdlib, "dynload": "DLLs" if windows else f"{stdlib}/lib-dynload",
              "cache_tag": f"cpython-{major}{minor}*"}
    chosen = {"full": (), "default": _DEFAULT_DROPS, "minimal": _DEFAULT_DROPS + _MINIMAL_DROPS}[preset]
    if (int(major), int(minor)) < (3, 11):  # uv reads such an interpreter's install scheme through distutils
        chosen = tuple(pattern for pattern in chosen if pattern != "{stdlib}/distutils/")
    return [pattern.format(**fields) for pattern in chosen]


def under(prefix: str, patterns: Iterable[str]) -> list[str]:
    """Patterns relative to a directory, as patterns relative to its parent: ``prefix`` (e.g. ``"python"``) is put
    in front of each (after a leading ``!``). The patterns must be anchored (contain a slash before their end)."""
    anchored = []
    for pattern in patterns:
        negated, body = (pattern.startswith("!"), pattern.removeprefix("!"))
        anchored.append(f"{'!' if negated else ''}{prefix}/{body.lstrip('/')}")
    return anchored


def compile_patterns(patterns: Iterable[str]) -> GitIgnoreSpec:
    """A matcher for gitignore-style ``patterns`` (paths relative to the artifact root)."""
    return GitIgnoreSpec.from_lines(list(patterns))


def trim_tree(top: Path, spec: GitIgnoreSpec, *, prefix: str) -> TrimResult:
    """Remove everything below ``top`` that ``spec`` matches; ``prefix`` is ``top``'s path relative to the artifact
    root (``"python"``, ``"app"``). A matched directory goes with everything in it; symbolic links are matched by
    their own name and never followed. Links left dangling by the removal are removed too.

    Returns:
        What was removed.
    """
    removed = TrimResult()
    for directory, subdirectories, files in os.walk(top):
        relative = Path(directory).relative_to(top).as_posix()
        base = prefix if relative == "." else f"{prefix}/{relative}"
        for name in list(subdirectories):
            path = Path(directory, name)
            if not path.is_symlink() and spec.match_file(f"{base}/{name}/"):
                removed += TrimResult(*measure(path))
                shutil.rmtree(path)
                subdirectories.remove(name)
        for name in [*files, *(name for name in subdirectories if Path(directory, name).is_symlink())]:
            if spec.match_file(f"{base}/{name}"):
                path = Path(directory, name)
                removed += TrimResult(1, path.lstat().st_size)
                path.unlink()
    return removed + _remove_dangling_links(top)


def _remove_dangling_links(top: Path) -> TrimResult:
    removed = TrimResult()
    for directory, subdirectories, files in os.walk(top):
        for name in [*files, *subdirectories]:
            path = Path(directory, name)
            if stat.S_ISLNK(path.lstat().st_mode) and not path.exists():
                removed += TrimResult(1, path.lstat().st_size)
                path.unlink()
    return removed


__all__ = ["TrimResult", "compile_patterns", "stdlib_patterns", "trim_tree", "under"]


def measure(path: Path) -> tuple[int, int]:
    """``(files, bytes)`` of ``path``: a file or link counts itself (a link its own size, never followed), a
    directory everything below it."""
    if path.is_symlink() or not path.is_dir():
        return (1, path.lstat().st_size) if os.path.lexists(path) else (0, 0)
    files = size = 0
    for directory, subdirectories, names in os.walk(path):
        for name in [*names, *(entry for entry in subdirectories if Path(directory, entry).is_symlink())]:
            files += 1
            size += Path(directory, name).lstat().st_size
    return files, size
