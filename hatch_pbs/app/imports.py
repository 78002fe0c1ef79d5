"""Which top-level modules of ``app/`` the application's code can import: a static scan, so that the size table can
flag distributions shipped only because another one declares them (httpie pulls in ``pip`` and ``setuptools``,
17.5 MB, which nothing it runs imports).

The scan reads the sources and runs nothing. Starting from the top-level packages of the entry points' modules
(``pbs_demo`` for ``pbs_demo.cli:main``), it follows every ``import x`` and ``from x import ...`` statement (at
any depth, inside functions too) of every ``.py`` file of a reached top-level package or module, to the top-level
names they name. Relative imports stay inside their package. What it cannot see: imports by name
(``importlib.import_module``, ``__import__``), plugins found through entry points, and the imports ``.pth`` files
run at start-up (setuptools' ``distutils-precedence.pth``); a distribution reached only that way is reported as not
imported, a hint to check, never an error. Statements are matched line by line (a regular expression, not a
parser: fast on large trees, and a docstring that looks like an import only counts a module as imported).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

#: ``import a.b, c as d`` or ``from a.b import c`` at the start of a (possibly indented) line; level-0 only.
_IMPORT_RE = re.compile(r"^[ \t]*(?:import[ \t]+([A-Za-z_][\w.]*(?:[ \t]*(?:as[ \t]+\w+)?[ \t]*,[ \t]*"
                        r"[A-Za-z_][\w.]*)*)|from[ \t]+([A-Za-z_]\w*)[\w.]*[ \t]+import\b)", re.MULTILINE)


def top_level_name(module: str) -> str:
    """``"pbs_demo"`` for ``"pbs_demo.cli"``: the top-level package of a dotted module name."""
    return module.strip().split(".", 1)[0]


def imported_top_levels(site_dir: Path, roots: Iterable[str]) -> frozenset[str]:
    """The top-level names of ``site_dir`` (``app/``) reachable from the top-level names ``roots`` through import
    statements (see the module docstring), ``roots`` included when they exist there.

    Returns:
        names as they appear in ``site_dir``, without suffixes: ``{"pbs_demo", "rich", "pygments", ...}``.
    """
    available = _top_levels(site_dir)
    reached: set[str] = set()
    pending = [name for name in roots if name in available]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        pending.extend(imported for imported in _imports_of(available[name]) if imported in available)
    return frozenset(reached)


def _top_levels(site_dir: Path) -> Mapping[str, Path]:
    """Top-level module name -> its package directory or module file, for what ``site_dir`` holds."""
    found: dict[str, Path] = {}
    for entry in sorted(site_dir.iterdir()) if site_dir.is_dir() else []:
        if entry.name in ("__pycache__", "bin") or entry.name.endswith((".dist-info", ".data", ".pth")):
            continue
        name = entry.name.split(".", 1)[0]
        if entry.is_dir() or entry.suffix in (".py", ".pyc", ".so", ".pyd"):
            found.setdefault(name, entry)
    return found


def _imports_of(location: Path) -> Iterator[str]:
    """The top-level names every ``.py`` file of ``location`` (a package directory or a module file) imports."""
    for source in _sources(location):
        try:
            text = source.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for match in _IMPORT_RE.finditer(text):
            if match.group(2):
                yield match.group(2)
            else:
                for part in match.group(1).split(","):
                    yield top_level_name(part.split()[0])


def _sources(location: Path) -> Iterator[Path]:
    if location.is_file():
        if location.suffix == ".py":
            yield location
        return
    for directory, subdirectories, names in os.walk(location):
        subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                yield Path(directory, name)


__all__ = ["imported_top_levels", "top_level_name"]
