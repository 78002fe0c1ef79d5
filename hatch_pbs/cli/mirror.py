"""``hatch-pbs mirror DIR`` and ``hatch-pbs fetch --lock FILE``: every locked asset (and the build machine's runtimes
for the foreign targets) fetched into the cache, or copied with a ``SHA256SUMS`` into a directory that works as
``mirror = "file://DIR"``."""

from __future__ import annotations

import argparse
import functools
import shlex
from collections.abc import Callable
from pathlib import Path

from hatch_pbs import interrupts
from hatch_pbs.artifact.pack import sha256_of
from hatch_pbs.atomic import copy_file, write_file
from hatch_pbs.cli.options import add_source_options
from hatch_pbs.errors import OfflineError, PackError, os_error_cause
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.fetch import fetch_asset, load_catalogue
from hatch_pbs.release.lock import LOCK_FILE_NAME, Lock, locked_in_catalogue
from hatch_pbs.release.resolve import ResolvedAsset
from hatch_pbs.release.sums import SUMS_FILE_NAME, parse_sums, render_sums


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add ``mirror`` to the ``hatch-pbs`` subcommands ``commands``."""
    help_text = ("copy every locked asset from the cache (fetching missing ones unless offline) into "
                 "DIR/<release>/, with a SHA256SUMS, so that DIR works as mirror = \"file://DIR\"")
    command = commands.add_parser("mirror", help=help_text, description=help_text)
    command.set_defaults(subparser=command)
    command.add_argument("directory", metavar="DIR", help="the mirror directory (created)")
    command.add_argument("--lock", default=LOCK_FILE_NAME, metavar="FILE",
                         help=f"the lock file (default: {LOCK_FILE_NAME})")
    command.add_argument("--host", default="host", metavar="TRIPLE",
                         help="the triple of the machine that will build from the mirror (its runtimes of the "
                              "locked Python versions are included for foreign targets; default: this one)")
    add_source_options(command)


def locked_downloads(arguments: argparse.Namespace, lock: Lock, downloader: Downloader
                      ) -> list[tuple[ResolvedAsset, Path]]:
    """Every asset ``lock`` locks, plus the build machine's (``--host``) runtimes for its foreign targets, each
    checked against its release's catalogue (which is cached, so an offline build finds it) and in the cache.

    Assets come from ``--mirror``/``HATCH_PBS_MIRROR`` when given, else from the mirror of each locked URL.

    Raises:
        OfflineError: offline mode and an asset is not in the cache (the message says how to fetch it).
    """
    from hatch_pbs.pipeline import (
        resolve_compilers,  # imports the binary patchers (LIEF): only when needed
    )

    wanted: dict[str, ResolvedAsset] = {}
    sources = sorted({(runtime.release, arguments.mirror if arguments.mirror_given else runtime.mirror)
                      for runtime in lock.runtimes})
    for release, mirror in sources:
        catalogue = load_catalogue(arguments.cache, downloader, mirror, release)
        group = Lock(tuple(runtime for runtime in lock.runtimes if runtime.release == release and
                           (arguments.mirror_given or runtime.mirror == mirror)), path=lock.path)
        resolved = locked_in_catalogue(group, catalogue, mirror)
        compilers = resolve_compilers(resolved, catalogue, mirror, arguments.host)
        for item in [*resolved.values(), *compilers.values()]:
            wanted.setdefault(item.sha256, item)
    if downloader.offline:
        missing = [item.asset.file_name for item in wanted.values()
                   if not arguments.cache.asset_path(item.sha256, item.asset.file_name).is_file()
                   and not item.url.startswith("file:")]
        if missing:
            command = shlex.join(["hatch-pbs", "fetch", "--lock", str(lock.path or LOCK_FILE_NAME), "--cache-dir",
                                  str(arguments.cache.root)])
            raise OfflineError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the cache "
                               f"({arguments.cache.root}) and offline mode (HATCH_PBS_OFFLINE) forbids downloading; "
                               f"run `{command}` while online")
    return [(item, fetch_asset(arguments.cache, downloader, item)) for item in wanted.values()]


def run(arguments: argparse.Namespace, lock: Lock, downloader: Downloader) -> None:
    """``hatch-pbs mirror DIR``: copy the locked assets into ``DIR/<release>/`` and list them in its SHA256SUMS."""
    directory = Path(arguments.directory).expanduser().resolve()
    downloads = locked_downloads(arguments, lock, downloader)
    releases: dict[str, dict[str, str]] = {}
    for item, cached in downloads:
        interrupts.check()
        release_dir = directory / item.asset.release
        release_dir.mkdir(parents=True, exist_ok=True)
        destination = release_dir / item.asset.file_name
        if not (destination.is_file() and sha256_of(destination) == item.sha256):
            _mirror_write(destination, functools.partial(copy_file, cached, destination))
        releases.setdefault(item.asset.release, {})[item.asset.file_name] = item.sha256
        print(destination)
    for release, listed in sorted(releases.items()):
        sums = directory / release / SUMS_FILE_NAME
        entries = dict(parse_sums(sums.read_text(encoding="utf-8"), skip_malformed=True)) if sums.is_file() else {}
        entries.update(listed)
        text = render_sums(entries)
        _mirror_write(sums, functools.partial(write_file, sums, text.encode("utf-8")))
        print(sums)
    print(f'mirror = "{directory.as_uri()}"')


def _mirror_write(destination: Path, write: Callable[[], None]) -> None:
    """Run ``write``, which publishes ``destination`` of a mirror.

    Raises:
        PackError: it failed (a full disk is named by its mount point).
    """
    try:
        write()
    except OSError as error:
        raise PackError(f"cannot write {destination}: {os_error_cause(error, destination)}") from None
