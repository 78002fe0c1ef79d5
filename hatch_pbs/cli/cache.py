"""``hatch-pbs cache verify`` and ``hatch-pbs cache clean``: the printing side of :mod:`hatch_pbs.cli.cache_entries`
(imported only when the command runs: it imports the binary patchers, LIEF)."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from hatch_pbs.config import ENV_CACHE_DIR
from hatch_pbs.errors import DamagedCacheError
from hatch_pbs.release.cache import Cache

#: Default of ``hatch-pbs cache clean --older-than``, in days.
DEFAULT_UNUSED_DAYS = 30.0


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add ``cache verify`` and ``cache clean`` to the ``hatch-pbs`` subcommands ``commands``."""
    help_text = "check or clean the cache (prepared runtimes, compressed runtime parts, bytecode, assets)"
    cache = commands.add_parser("cache", help=help_text, description=help_text)
    cache.set_defaults(subparser=cache)
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    help_text = ("check every cache entry fully (sha256 of every asset and of every file of every prepared runtime, "
                 "compressed runtime part and cached bytecode) and list the damaged ones; exit 1 if there are any")
    verify = actions.add_parser("verify", help=help_text, description=help_text)
    verify.set_defaults(subparser=verify)
    verify.add_argument("--cache-dir", default=None, help=f"cache directory (default: ${ENV_CACHE_DIR})")
    help_text = ("remove damaged entries, entries made by other hatch-pbs versions, prepared runtimes, compressed "
                 "runtime parts and bytecode unused for --older-than days, and what killed builds left behind")
    clean = actions.add_parser("clean", help=help_text, description=help_text)
    clean.set_defaults(subparser=clean)
    clean.add_argument("--cache-dir", default=None, help=f"cache directory (default: ${ENV_CACHE_DIR})")
    clean.add_argument("--older-than", type=_days, default=DEFAULT_UNUSED_DAYS, metavar="DAYS",
                       help=f"remove derived entries unused for more than DAYS days (default: {DEFAULT_UNUSED_DAYS:g})")
    clean.add_argument("--all", action="store_true", dest="everything",
                       help="remove every prepared runtime, compressed runtime part and bytecode entry (assets and "
                            "release catalogues stay); do not run it while a build uses the cache")


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        days = -1.0
    if not days >= 0 or days == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of days, 0 or more; got {value!r}")
    return days


def run(arguments: argparse.Namespace, cache: Cache) -> None:
    """``hatch-pbs cache verify`` or ``hatch-pbs cache clean`` on ``cache``."""
    if arguments.cache_command == "verify":
        verify(cache)
    else:
        clean(cache, arguments.older_than, arguments.everything)


def verify(cache: Cache) -> None:
    """``hatch-pbs cache verify``: one ``damaged`` line per damaged entry, then a summary line.

    Raises:
        DamagedCacheError: some entry is damaged (after the list is printed).
    """
    from hatch_pbs.cli.cache_entries import (
        cache_entries,  # imports the binary patchers (LIEF): only when needed
    )

    counts: dict[str, int] = {}
    damaged, outdated, size = 0, 0, 0
    for entry in cache_entries(cache, digests=True):
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
        size += _size(entry.path)
        if entry.verdict.state == "damaged":
            damaged += 1
            print(f"damaged: {entry.kind} {entry.path}: {entry.verdict.reason}")
        elif entry.verdict.state == "outdated":
            outdated += 1
    checked = ", ".join(f"{count} {kind} entr{'y' if count == 1 else 'ies'}" for kind, count in counts.items())
    print(f"checked {checked or 'no entries'} in {cache.root} ({size / 1e6:.1f} MB): {damaged} damaged"
          + (f", {outdated} made by other hatch-pbs versions (not checked)" if outdated else ""))
    if damaged:
        command = shlex.join(["hatch-pbs", "cache", "clean", "--cache-dir", str(cache.root)])
        raise DamagedCacheError(f"{damaged} damaged cache entr{'y' if damaged == 1 else 'ies'} in {cache.root}; "
                                f"`{command}` removes them (builds replace them anyway)")


def clean(cache: Cache, older_than_days: float, everything: bool) -> None:
    """``hatch-pbs cache clean``: one ``removed`` line per entry removed (bytecode entries unused or outdated are
    counted per reason), then the bytes freed."""
    from hatch_pbs.cli.cache_entries import (  # imports LIEF: only when needed
        BYTECODE,
        clean_cache,
    )

    removed = clean_cache(cache, older_than=older_than_days * 86400, everything=everything)
    grouped: dict[str, list[int]] = {}
    for removal in removed:
        if removal.kind == BYTECODE and not removal.reason.startswith("damaged"):
            grouped.setdefault(removal.reason, []).append(removal.freed)
        else:
            print(f"removed {removal.kind} {removal.path} ({removal.reason}): {removal.freed / 1e6:.1f} MB freed")
    for reason, freed in grouped.items():
        print(f"removed {len(freed)} bytecode entr{'y' if len(freed) == 1 else 'ies'} ({reason}): "
              f"{sum(freed) / 1e6:.1f} MB freed")
    total = sum(removal.freed for removal in removed)
    print(f"freed {total} bytes ({total / 1e6:.1f} MB) in {cache.root}")


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(Path(directory, name).lstat().st_size for directory, _, names in os.walk(path) for name in names)
    return path.lstat().st_size if path.exists() else 0
