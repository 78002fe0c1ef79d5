"""Read-only analysis of an artifact tree: what must change for it to run from any directory.

A runtime is built for a fixed prefix (``/install`` for python-build-standalone, PBS-FACTS.md "Quirks that matter
for relocation"); the build prefix is read from the runtime's own ``_sysconfigdata_*.py`` (``prefix`` /
``exec_prefix``) rather than assumed. Absolute paths under that prefix, or under the directory where the tree is
being assembled, are *inside* the artifact and are rewritten relative to the file that holds them.
"""

from __future__ import annotations

import ast
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hatch_pbs.patching.elf import ELF_MAGIC, read_search_paths

ORIGIN_TOKENS = ("$ORIGIN", "${ORIGIN}")


@dataclass(frozen=True)
class SearchPathChange:
    """New ``DT_RPATH``/``DT_RUNPATH`` entries for one ELF file.

    Attributes:
        path: the file, relative to the artifact root.
        tag: ``"RPATH"`` or ``"RUNPATH"``.
        before: the entries as found.
        after: the entries to write (empty: remove the tag).
        removed: entries dropped because they do not lead to a directory inside the artifact.
        reasons: why each entry of ``removed`` was dropped (same order).
    """

    path: str
    tag: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    removed: tuple[str, ...]
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShebangChange:
    """An absolute ``#!`` line naming an interpreter inside the artifact.

    Attributes:
        path: the script, relative to the artifact root.
        shebang: the original first line, without ``#!`` and the newline.
        interpreter: the interpreter's path relative to the script's directory, e.g. ``"../../python/bin/python3"``.
        arguments: interpreter arguments that followed it on the line (``""`` if none).
    """

    path: str
    shebang: str
    interpreter: str
    arguments: str


@dataclass
class RelocationPlan:
    """Everything relocation will change in one artifact tree.

    Attributes:
        root: the artifact root.
        build_prefixes: absolute paths that mean "the runtime" in the files (build prefix, staging path).
        search_paths: per-ELF changes.
        shebangs: per-script changes.
    """

    root: Path
    build_prefixes: tuple[str, ...]
    search_paths: list[SearchPathChange] = field(default_factory=list)
    shebangs: list[ShebangChange] = field(default_factory=list)

    @property
    def removed_entries(self) -> list[str]:
        """Human-readable notes of dropped search-path entries, e.g.
        ``"lib/x.so: removed RUNPATH entry /usr/local/lib (points outside the artifact)"``."""
        return [f"{change.path}: removed {change.tag} entry {entry} ({reason})"
                for change in self.search_paths for entry, reason in zip(change.removed, change.reasons, strict=True)]


def read_build_prefixes(runtime: Path) -> tuple[str, ...]:
    """The ``prefix`` and ``exec_prefix`` the runtime was configured with, from ``lib/python3.*/_sysconfigdata_*.py``.

    Returns an empty tuple when the runtime has no sysconfig data (Windows layouts).
    """
    prefixes: list[str] = []
    for sysconfigdata in sorted(runtime.glob("lib/python3*/_sysconfigdata_*.py")):
        variables = _literal_assignment(sysconfigdata, "build_time_vars")
        for key in ("prefix", "exec_prefix"):
            value = variables.get(key)
            if isinstance(value, str) and value.startswith("/") and value.rstrip("/") not in prefixes:
                prefixes.append(value.rstrip("/"))
    return tuple(prefixes)


def _literal_assignment(path: Path, name: str) -> dict:
    try:
        module = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return {}
    for node in module.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def plan_relocation(root: Path, runtime: Path, *, extra_prefixes: tuple[str, ...] = ()) -> RelocationPlan:
    """Analyse every regular file below ``root``.

    Args:
        root: the artifact root (contains the runtime and, later, ``app/``).
        runtime: the runtime directory inside ``root`` (what the build prefix stands for).
        extra_prefixes: further absolute paths that mean the runtime (e.g. where it was extracted).

    Returns:
        The plan; applying it changes nothing outside ``root``.
    """
    root = root.resolve()
    runtime = runtime.resolve()
    prefixes = tuple(dict.fromkeys(read_build_prefixes(runtime) + extra_prefixes + (str(runtime),)))
    plan = RelocationPlan(root=root, build_prefixes=prefixes)
    for path, magic in _regular_files(root):
        relative = path.relative_to(root).as_posix()
        if magic == ELF_MAGIC:
            plan.search_paths.extend(_plan_search_paths(root, runtime, prefixes, path, relative))
        elif magic[:2] == b"#!" and os.access(path, os.X_OK):
            change = _plan_shebang(root, runtime, prefixes, path, relative)
            if change is not None:
                plan.shebangs.append(change)
    return plan


def _regular_files(root: Path) -> Iterator[tuple[Path, bytes]]:
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                with path.open("rb") as stream:
                    yield path, stream.read(4)


def _map_into_tree(entry: str, runtime: Path, prefixes: tuple[str, ...]) -> Path | None:
    """``entry`` (an absolute path) as a path inside the tree, or ``None`` if it lies outside every prefix."""
    normalized = posixpath.normpath(entry)
    for prefix in prefixes:
        if normalized == prefix or normalized.startswith(prefix + "/"):
            return runtime / normalized[len(prefix):].lstrip("/")
    return None


def _plan_search_paths(root: Path, runtime: Path, prefixes: tuple[str, ...], path: Path,
                       relative: str) -> list[SearchPathChange]:
    try:
        found = read_search_paths(path)
    except ValueError:
        return []
    changes = []
    for tag, entries in found.items():
        after: list[str] = []
        removed: list[str] = []
        reasons: list[str] = []
        for entry in entries:
            new_entry, reason = _relocated_entry(root, runtime, prefixes, path.parent, entry)
            if new_entry is None:
                removed.append(entry)
                reasons.append(reason)
            elif new_entry not in after:
                after.append(new_entry)
        if tuple(after) != entries:
            changes.append(SearchPathChange(relative, tag, entries, tuple(after), tuple(removed), tuple(reasons)))
    return changes


OUTSIDE = "points outside the artifact"


def _relocated_entry(root: Path, runtime: Path, prefixes: tuple[str, ...], directory: Path,
                     entry: str) -> tuple[str | None, str]:
    """``(new entry, "")``, or ``(None, reason)`` when the entry must go."""
    for token in ORIGIN_TOKENS:
        if entry.startswith(token):
            target = Path(posixpath.normpath(posixpath.join(str(directory), entry[len(token):].lstrip("/"))))
            return (entry, "") if _inside(target, root) else (None, OUTSIDE)
    if not entry.startswith("/"):
        return None, "relative to the working directory"
    target = _map_into_tree(entry, runtime, prefixes)
    if target is None or not _inside(target, root):
        return None, OUTSIDE
    if not target.is_dir():
        return None, "names a directory the runtime does not have"
    relative = os.path.relpath(target, directory)
    return ("$ORIGIN" if relative == "." else f"$ORIGIN/{Path(relative).as_posix()}"), ""


def _inside(path: Path, root: Path) -> bool:
    normalized = Path(os.path.normpath(path))
    return normalized == root or root in normalized.parents


def _plan_shebang(root: Path, runtime: Path, prefixes: tuple[str, ...], path: Path,
                  relative: str) -> ShebangChange | None:
    with path.open("rb") as stream:
        first_line = stream.readline(4096)
    try:
        shebang = first_line[2:].decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    interpreter, _, arguments = shebang.partition(" ")
    if not interpreter.startswith("/"):
        return None
    target = _map_into_tree(interpreter, runtime, prefixes)
    if target is None or not (target.is_file() or target.is_symlink()) or not _inside(target, root):
        return None
    return ShebangChange(
        path=relative,
        shebang=shebang,
        interpreter=Path(os.path.relpath(target, path.parent)).as_posix(),
        arguments=arguments.strip(),
    )
