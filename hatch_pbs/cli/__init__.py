"""``hatch-pbs``: resolve and fetch python-build-standalone assets from the command line.

``hatch-pbs resolve`` prints the resolved asset as JSON; ``hatch-pbs fetch`` downloads it into the cache (or finds it
there) and prints the cached path. ``hatch-pbs lock`` resolves every target triple of a project's configuration and
writes its ``pbs.lock``; ``hatch-pbs fetch --lock FILE`` warms the cache with every locked asset and
``hatch-pbs mirror DIR`` copies them, with a ``SHA256SUMS``, into a directory that works as ``mirror = "file://DIR"``.
``hatch-pbs cache verify`` checks every cache entry fully and ``hatch-pbs cache clean`` removes damaged, outdated and
unused ones (:mod:`hatch_pbs.cli.cache`). ``hatch-pbs push ARCHIVE REFERENCE`` pushes an image form's OCI layout
archive to a container registry (:mod:`hatch_pbs.cli.push`).
Every failure exits with status 1 and one ``hatch-pbs: error:`` line on stderr; usage errors exit with status 2 and
one such line. Ctrl-C (SIGINT) stops any command within about a second (:mod:`hatch_pbs.interrupts`: downloads,
copies and lock waits are cut short, nothing half-written is left) and exits with status 130 and one
``hatch-pbs: interrupted`` line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from hatch_pbs import __version__, interrupts
from hatch_pbs.cli import cache, lock, mirror, push, resolve
from hatch_pbs.cli.options import selected_cache, validated
from hatch_pbs.errors import HatchPbsError, os_error_cause
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.lock import read_lock


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line error format (no usage block); subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hatch-pbs: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hatch-pbs", description="Resolve and fetch python-build-standalone assets.")
    parser.add_argument("--version", action="version", version=f"hatch-pbs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    resolve.add_commands(commands)
    lock.add_command(commands)
    mirror.add_command(commands)
    cache.add_command(commands)
    push.add_command(commands)
    return parser


def _run(arguments: argparse.Namespace) -> None:
    if arguments.command == "lock":
        lock.run(Path(arguments.project).expanduser().resolve())
        return
    if arguments.command == "cache":
        cache.run(arguments, selected_cache(arguments))
        return
    if arguments.command == "push":
        push.run(arguments)
        return
    arguments = validated(arguments)
    with Downloader(offline=arguments.offline, mirror=arguments.mirror) as downloader:
        if arguments.command == "mirror":
            mirror.run(arguments, read_lock(Path(arguments.lock)), downloader)
        elif arguments.command == "fetch" and arguments.lock is not None:
            for _, path in mirror.locked_downloads(arguments, read_lock(Path(arguments.lock)), downloader):
                print(path)
        else:
            resolve.run(arguments, downloader)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hatch-pbs`` command; returns the exit status."""
    try:
        arguments = _parser().parse_args(argv)
        resolve.check_lock_exclusive(arguments)
        with interrupts.scope():
            _run(arguments)
    # OSError: an unusable cache directory, a full disk, a lock timeout; RuntimeError: `~user` naming no user
    except (HatchPbsError, OSError, RuntimeError) as error:
        message = " ".join((os_error_cause(error) if isinstance(error, OSError) else str(error)).split("\n"))
        print(f"hatch-pbs: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hatch-pbs: interrupted", file=sys.stderr)
        return 130
    return 0

