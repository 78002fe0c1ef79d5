"""The size table a build prints per artifact: the runtime, each distribution in ``app/``, the launchers and
manifest, and the archive. Distributions the scripts' code never imports (:mod:`hatch_pbs.app.imports`) are
marked, with the ``exclude`` patterns that leave them out.

Files in ``app/`` are attributed to a distribution by the top-level names its ``*.dist-info/RECORD`` lists (PEP 376/
PEP 627: one line per installed file), matched by name without suffixes, so a module's bytecode
(``__pycache__/six.cpython-312.pyc``, or ``six.pyc`` when sourceless) counts with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from hatch_pbs.app.record import parse_record
from hatch_pbs.runtime.trim import measure

RUNTIME_LABEL = "runtime (python/)"
LAUNCHERS_LABEL = "launchers and manifest"
OTHER_LABEL = "app/ (other files)"


@dataclass(frozen=True)
class SizeRow:
    """One part of an artifact: its ``label``, number of ``files`` (regular files and links) and ``size`` in
    bytes (unpacked). A distribution's row also says whether the scripts' code imports it (``imported``; ``None``:
    not known, or not a distribution) and lists the paths below the artifact root it installed at the top of
    ``app/`` (``entries``: ``("app/pip/", "app/pip-26.0.dist-info/", "app/bin/pip")``), what ``exclude`` drops."""

    label: str
    files: int
    size: int
    imported: bool | None = None
    entries: tuple[str, ...] = ()


def measure_artifact(tree: Path, *, imported: frozenset[str] | None = None) -> list[SizeRow]:
    """The size rows of the staged artifact ``tree``: the runtime, each distribution in ``app/`` (labelled
    ``name version``, largest first), files of ``app/`` no distribution lists, and the rest (launchers, manifest).
    With ``imported`` (top-level names of ``app/`` the scripts can import), each distribution's row says whether
    one of its top-level names is among them."""
    rows = [SizeRow(RUNTIME_LABEL, *measure(tree / "python"))]
    app = tree / "app"
    owners = _top_level_owners(app) if app.is_dir() else {}
    entries = _entries(app) if app.is_dir() else {}
    per_owner: dict[str, list[int]] = {}
    for entry in sorted(app.iterdir()) if app.is_dir() else []:
        if entry.name == "__pycache__" and entry.is_dir():
            for cached in sorted(entry.iterdir()):
                _add(per_owner, owners.get(_stem(cached.name), OTHER_LABEL), *measure(cached))
            continue
        _add(per_owner, owners.get(_stem(entry.name), OTHER_LABEL), *measure(entry))
    stems: dict[str, set[str]] = {}
    for stem, label in owners.items():
        stems.setdefault(label, set()).add(stem)
    rows += sorted((SizeRow(label, files, size, None if imported is None else bool(stems.get(label, set()) & imported),
                            tuple(entries.get(label, ())))
                    for label, (files, size) in per_owner.items() if label != OTHER_LABEL),
                   key=lambda row: (-row.size, row.label))
    if OTHER_LABEL in per_owner:
        files, size = per_owner[OTHER_LABEL]
        rows.append(SizeRow(OTHER_LABEL, files, size))
    rest = [entry for entry in tree.iterdir() if entry.name not in ("python", "app")]
    measured = [measure(entry) for entry in rest]
    rows.append(SizeRow(LAUNCHERS_LABEL, sum(files for files, _ in measured), sum(size for _, size in measured)))
    return rows


def size_table(rows: list[SizeRow], *, archive_name: str, archive_size: int | None) -> list[str]:
    """The rows as aligned text lines, with the unpacked total and the archive's size (``None``: the artifact is a
    directory, no archive line). Sizes in MB (10^6 bytes)."""
    total = SizeRow("total unpacked", sum(row.files for row in rows), sum(row.size for row in rows))
    width = max(len(row.label) for row in [*rows, total, SizeRow(archive_name, 0, 0)])
    lines = [f"{'part':<{width}}  {'files':>6}  {'MB':>8}"]
    lines += [f"{row.label:<{width}}  {row.files:>6}  {row.size / 1e6:>8.2f}" for row in [*rows, total]]
    if archive_size is not None:
        lines.append(f"{archive_name:<{width}}  {'':>6}  {archive_size / 1e6:>8.2f}")
    unused = [row for row in rows if row.imported is False]
    if unused:
        lines[1:1 + len(rows)] = [f"{line}  {'not imported' if row.imported is False else ''}".rstrip()
                                  for line, row in zip(lines[1:1 + len(rows)], rows, strict=True)]
        names = ", ".join(row.label for row in unused)
        patterns = ", ".join(f'"{entry}"' for row in unused for entry in row.entries)
        lines.append(f"not imported by the scripts' code (a static scan; a plugin or a module imported by name is "
                     f"not seen): {names}, {sum(row.size for row in unused) / 1e6:.2f} MB; to leave "
                     f"{'it' if len(unused) == 1 else 'them'} out: exclude = [{patterns}]")
    return lines


def _top_level_owners(app: Path) -> dict[str, str]:
    """Top-level name without suffixes -> ``"name version"`` of the distribution whose RECORD lists it."""
    owners: dict[str, str] = {}
    for dist_info in sorted(app.glob("*.dist-info")):
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
        label = f"{canonicalize_name(name)} {version}"
        owners[dist_info.name] = label
        record = dist_info / "RECORD"
        if not record.is_file():
            continue
        for row in parse_record(record.read_text(encoding="utf-8", errors="replace")):
            if not row[0].startswith(("..", "/")):
                top = row[0].split("/", 1)[0]
                if top != "__pycache__":
                    owners.setdefault(_stem(top), label)
    return owners


def _entries(app: Path) -> dict[str, list[str]]:
    """``"name version"`` -> the paths (relative to the artifact root, directories with a trailing ``/``) of the
    top-level entries of ``app/`` its RECORD lists, its dist-info and its scripts in ``app/bin/`` included."""
    found: dict[str, list[str]] = {}
    for dist_info in sorted(app.glob("*.dist-info")):
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
        paths = {f"app/{dist_info.name}/"}
        record = dist_info / "RECORD"
        rows = parse_record(record.read_text(encoding="utf-8", errors="replace")) if record.is_file() else []
        for row in rows:
            parts = row[0].split("/")
            if row[0].startswith(("..", "/")) or parts[0] == "__pycache__":
                continue
            if parts[0] == "bin" and len(parts) == 2:
                paths.add(f"app/{row[0]}")
            elif len(parts) > 1:
                paths.add(f"app/{parts[0]}/")
            else:
                paths.add(f"app/{parts[0]}")
        found[f"{canonicalize_name(name)} {version}"] = sorted(path for path in paths if not path.endswith("/RECORD"))
    return found


def _stem(name: str) -> str:
    return name if name.endswith(".dist-info") else name.split(".", 1)[0]


def _add(totals: dict[str, list[int]], label: str, files: int, size: int) -> None:
    entry = totals.setdefault(label, [0, 0])
    entry[0] += files
    entry[1] += size


__all__ = ["SizeRow", "measure", "measure_artifact", "size_table"]
