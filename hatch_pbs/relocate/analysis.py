"""Read-only analysis of an artifact tree: what must change for it to run from any directory.

A runtime is built for a fixed prefix (``/install`` for python-build-standalone, docs/pbs-facts.md "Quirks that matter
for relocation"); the build prefix is read from the runtime's own ``_sysconfigdata_*.py`` (``prefix`` /
``exec_prefix``) rather than assumed. Absolute paths under that prefix, or under the directory where the tree is
being assembled, are *inside* the artifact and are rewritten relative to the file that holds them.

Mach-O files (macOS) are handled like ELF files, with dyld's tokens instead of ``$ORIGIN``:

- a dylib's own install name (``LC_ID_DYLIB``) under a build prefix becomes ``@rpath/<file name>`` (the form PBS
  itself uses since 20251209);
- a dependency (``LC_LOAD_DYLIB`` and its weak/re-export/lazy/upward variants) naming a file inside the tree by an
  absolute path becomes ``@executable_path/<relative path>`` in executables, ``@loader_path/<relative path>`` in
  dylibs and bundles (extension modules); a (non-weak) dependency under a build prefix whose file the tree does
  not have is a problem (:attr:`RelocationPlan.problems`), since no rewrite can make it load;
- ``LC_RPATH`` entries pointing into the tree become ``@executable_path/...``/``@loader_path/...`` the same way;
  entries pointing outside (absolute, relative to the working directory, or ``@loader_path`` climbing out) are
  removed and reported (:attr:`RelocationPlan.removed_entries`), like ELF search-path entries.

Only files that need a change are listed; every listed Mach-O file is re-signed ad-hoc after it is rewritten
(:attr:`RelocationPlan.signed`). Universal (fat) and 32-bit Mach-O files are left alone when they need nothing,
and are a problem when they would need a change (universal2 is out of scope).
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hatch_pbs import interrupts
from hatch_pbs.binaries.elf import ELF_MAGIC, read_search_paths
from hatch_pbs.binaries.macho import LoadCommands, macho_kind, read_load_commands

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
        lines: how many leading lines the preamble spans: 1 for ``#!/path/python``, 3 for the ``/bin/sh``
            polyglot that pip, uv and distlib write when the interpreter path is too long or has spaces.
    """

    path: str
    shebang: str
    interpreter: str
    arguments: str
    lines: int = 1


@dataclass(frozen=True)
class MachOChange:
    """New install name, dependency names and rpaths for one (thin) Mach-O file.

    Attributes:
        path: the file, relative to the artifact root.
        file_type: ``"EXECUTE"``, ``"DYLIB"``, ``"BUNDLE"``, ...
        install_name: ``(before, after)`` of ``LC_ID_DYLIB``, or ``None`` if unchanged.
        dylibs: ``(before, after)`` of each changed dependency name.
        rpaths_before: the ``LC_RPATH`` entries as found.
        rpaths_after: the entries to write (empty: remove them all).
        removed: rpath entries dropped because they do not lead to a directory inside the artifact.
        reasons: why each entry of ``removed`` was dropped (same order).
    """

    path: str
    file_type: str
    install_name: tuple[str, str] | None
    dylibs: tuple[tuple[str, str], ...]
    rpaths_before: tuple[str, ...]
    rpaths_after: tuple[str, ...]
    removed: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass
class RelocationPlan:
    """Everything relocation will change in one artifact tree.

    Attributes:
        root: the artifact root.
        build_prefixes: absolute paths that mean "the runtime" in the files (build prefix, staging path).
        search_paths: per-ELF changes.
        shebangs: per-script changes.
        macho: per-Mach-O changes.
        signed: Mach-O files (relative paths) that get a new ad-hoc code signature once rewritten.
        problems: files that need relocation but cannot get it (e.g. a universal Mach-O file naming the build
            prefix); applying a plan with problems fails before anything is written.
    """

    root: Path
    build_prefixes: tuple[str, ...]
    search_paths: list[SearchPathChange] = field(default_factory=list)
    shebangs: list[ShebangChange] = field(default_factory=list)
    macho: list[MachOChange] = field(default_factory=list)
    signed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def removed_entries(self) -> list[str]:
        """Human-readable notes of dropped search-path entries, e.g.
        ``"lib/x.so: removed RUNPATH entry /usr/local/lib (points outside the artifact)"``."""
        return [f"{change.path}: removed {change.tag} entry {entry} ({reason})"
                for change in self.search_paths for entry, reason in zip(change.removed, change.reasons, strict=True)
                ] + [f"{change.path}: removed LC_RPATH entry {entry} ({reason})"
                     for change in self.macho for entry, reason in zip(change.removed, change.reasons, strict=True)]


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


def plan_relocation(root: Path, runtime: Path, *, extra_prefixes: tuple[str, ...] = (),
                    within: Path | None = None) -> RelocationPlan:
    """Analyse every regular file below ``root`` (or only those below ``within``, a directory inside ``root``).

    Args:
        root: the artifact root (contains the runtime and, later, ``app/``).
        runtime: the runtime directory inside ``root`` (what the build prefix stands for).
        extra_prefixes: further absolute paths that mean the runtime (e.g. where it was extracted).
        within: analyse only this part of the tree (a prepared runtime is relocated already; a build then
            relocates only what it installed); paths in the plan stay relative to ``root``.

    Returns:
        The plan; applying it changes nothing outside ``root``.
    """
    root = root.resolve()
    runtime = runtime.resolve()
    prefixes = tuple(dict.fromkeys(read_build_prefixes(runtime) + extra_prefixes + (str(runtime),)))
    plan = RelocationPlan(root=root, build_prefixes=prefixes)
    for path, magic in _regular_files(root if within is None else within.resolve()):
        relative = path.relative_to(root).as_posix()
        if magic[:4] == ELF_MAGIC:
            plan.search_paths.extend(_plan_search_paths(root, runtime, prefixes, path, relative))
        elif macho_kind(magic) is not None:
            _plan_macho(plan, runtime, path, relative, macho_kind(magic))
        elif magic[:2] == b"#!" and os.access(path, os.X_OK):
            change = _plan_shebang(root, runtime, prefixes, path, relative)
            if change is not None:
                plan.shebangs.append(change)
    return plan


def _regular_files(root: Path) -> Iterator[tuple[Path, bytes]]:
    for directory, _, files in os.walk(root):
        for name in files:
            interrupts.check()
            path = Path(directory, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                with path.open("rb") as stream:
                    yield path, stream.read(8)


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
            return _kept_if_inside(root, directory, entry, token)
    return _anchored(root, runtime, prefixes, directory, entry, "$ORIGIN")


def _kept_if_inside(root: Path, directory: Path, entry: str, token: str) -> tuple[str | None, str]:
    """A ``token``-relative entry (``$ORIGIN/..``, ``@loader_path/..``) stays if it leads inside ``root``."""
    target = Path(posixpath.normpath(posixpath.join(str(directory), entry[len(token):].lstrip("/"))))
    return (entry, "") if _inside(target, root) else (None, OUTSIDE)


def _anchored(root: Path, runtime: Path, prefixes: tuple[str, ...], directory: Path, entry: str,
              anchor: str) -> tuple[str | None, str]:
    """An absolute search-path entry rewritten relative to ``anchor`` (the file's directory), or the reason it
    must go: relative to the working directory, outside the artifact, or a directory the runtime lacks."""
    if not entry.startswith("/"):
        return None, "relative to the working directory"
    target = _map_into_tree(entry, runtime, prefixes)
    if target is None or not _inside(target, root):
        return None, OUTSIDE
    if not target.is_dir():
        return None, "names a directory the runtime does not have"
    relative = os.path.relpath(target, directory)
    return (anchor if relative == "." else f"{anchor}/{Path(relative).as_posix()}"), ""


def _inside(path: Path, root: Path) -> bool:
    normalized = Path(os.path.normpath(path))
    return normalized == root or root in normalized.parents


#: Second line of the ``/bin/sh`` preamble installers write instead of a ``#!`` line that would be too long for the
#: kernel (over 127 bytes) or that contains spaces: ``'''exec' '/path/to/python' "$0" "$@"``.
_POLYGLOT_EXEC_RE = re.compile(r"""^'''exec' (['"]?)(?P<interpreter>/[^'"]+)\1 (?P<arguments>.*?)"\$0" "\$@"$""")


def _read_preamble(path: Path) -> tuple[str, str, str, int] | None:
    """``(shebang text, interpreter, arguments, lines)`` of a script, or ``None``."""
    with path.open("rb") as stream:
        head = [stream.readline(4096) for _ in range(3)]
    try:
        first, second = head[0][2:].decode("utf-8").strip(), head[1].decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if first == "/bin/sh" and (match := _POLYGLOT_EXEC_RE.match(second)):
        return first, match["interpreter"], match["arguments"].strip(), 3
    interpreter, _, arguments = first.partition(" ")
    return first, interpreter, arguments.strip(), 1


def _plan_shebang(root: Path, runtime: Path, prefixes: tuple[str, ...], path: Path,
                  relative: str) -> ShebangChange | None:
    preamble = _read_preamble(path)
    if preamble is None:
        return None
    shebang, interpreter, arguments, lines = preamble
    if not interpreter.startswith("/"):
        return None
    target = _map_into_tree(interpreter, runtime, prefixes)
    if target is None or not (target.is_file() or target.is_symlink()) or not _inside(target, root):
        return None
    return ShebangChange(
        path=relative,
        shebang=shebang,
        interpreter=Path(os.path.relpath(target, path.parent)).as_posix(),
        arguments=arguments,
        lines=lines,
    )


MACHO_ANCHORS = ("@loader_path", "@executable_path")


def _plan_macho(plan: RelocationPlan, runtime: Path, path: Path, relative: str, kind: str | None) -> None:
    try:
        images = read_load_commands(path)
    except ValueError:
        return
    changes = []
    for image in images:
        change, problems = _macho_change(plan.root, runtime, plan.build_prefixes, path, relative, image)
        for problem in problems:
            if problem not in plan.problems:  # once per file, not once per architecture
                plan.problems.append(problem)
        if change is not None:
            changes.append(change)
    if not changes:
        return
    if kind != "thin64" or len(images) != 1:
        what = "a universal (fat)" if kind == "fat" else "a 32-bit"
        plan.problems.append(f"{relative}: {what} Mach-O file that needs relocation (its load commands name "
                             f"{_first_absolute(changes[0])}); universal2 and 32-bit Mach-O files are out of scope: "
                             "use single-architecture (thin, 64-bit) runtimes and wheels")
        return
    plan.macho.append(changes[0])
    plan.signed.append(relative)


def _first_absolute(change: MachOChange) -> str:
    befores = ([change.install_name[0]] if change.install_name else []) + [old for old, _ in change.dylibs]
    return (befores + list(change.rpaths_before) + ["?"])[0]


def _macho_change(root: Path, runtime: Path, prefixes: tuple[str, ...], path: Path, relative: str,
                  image: LoadCommands) -> tuple[MachOChange | None, list[str]]:
    """What must change in one Mach-O image, and why parts of it cannot be relocated."""
    anchor = "@executable_path" if image.is_executable else "@loader_path"
    problems = []
    install_name = None
    if image.install_name and image.install_name.startswith("/"):
        target = _map_into_tree(image.install_name, runtime, prefixes)
        if target is not None and _inside(target, root):
            install_name = (image.install_name, f"@rpath/{posixpath.basename(image.install_name)}")
    dylibs = []
    for command, name in image.dylibs:
        if not name.startswith("/"):
            continue
        target = _map_into_tree(name, runtime, prefixes)
        if target is None:
            continue  # a system library, or one the audit reports
        if not _inside(target, root) or not target.is_file():
            if command != "LOAD_WEAK_DYLIB":  # dyld skips a missing weak dependency; any other one fails to load
                problems.append(f"{relative}: LC_{command} {name} names a file the runtime does not have")
            continue
        new_name = f"{anchor}/{Path(os.path.relpath(target, path.parent)).as_posix()}"
        if (name, new_name) not in dylibs:
            dylibs.append((name, new_name))
    after: list[str] = []
    removed: list[str] = []
    reasons: list[str] = []
    for entry in image.rpaths:
        new_entry, reason = _relocated_rpath(root, runtime, prefixes, path.parent, entry, anchor, image.is_executable)
        if new_entry is None:
            removed.append(entry)
            reasons.append(reason)
        elif new_entry not in after:
            after.append(new_entry)
    if install_name is None and not dylibs and tuple(after) == image.rpaths:
        return None, problems
    return MachOChange(relative, image.file_type, install_name, tuple(dylibs), image.rpaths, tuple(after),
                       tuple(removed), tuple(reasons)), problems


def _relocated_rpath(root: Path, runtime: Path, prefixes: tuple[str, ...], directory: Path, entry: str, anchor: str,
                     executable: bool) -> tuple[str | None, str]:
    """``(new entry, "")``, or ``(None, reason)`` when the ``LC_RPATH`` entry must go."""
    for token in MACHO_ANCHORS:
        if entry == token or entry.startswith(token + "/"):
            if token == "@executable_path" and not executable:
                return entry, ""  # relative to whichever program loads the library: cannot be judged here
            return _kept_if_inside(root, directory, entry, token)
    if entry.startswith("@"):
        return entry, ""  # another dyld token (e.g. @rpath): left as it is
    return _anchored(root, runtime, prefixes, directory, entry, anchor)
