"""``hatch-pbs resolve`` and ``hatch-pbs fetch``: the asset a build would use, as JSON, or downloaded into the cache
(``fetch --lock FILE``: every locked asset, :mod:`hatch_pbs.cli.mirror`)."""

from __future__ import annotations

import argparse
import json

from hatch_pbs.cli.options import add_source_options
from hatch_pbs.config import DEFAULT_FLAVOR, DEFAULT_RELEASE
from hatch_pbs.release.assets import FLAVORS
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.fetch import fetch_asset, latest_release_tag, load_catalogue
from hatch_pbs.release.resolve import ResolvedAsset, select_asset

_LOCK_EXCLUSIVE = ("release", "python_version", "target", "flavor")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``resolve`` and ``fetch`` to the ``hatch-pbs`` subcommands ``commands``."""
    for name, help_text in (("resolve", "print the asset a build would use, as JSON"),
                            ("fetch", ("download the asset (or, with --lock, every locked asset) into the cache and "
                                       "print its path"))):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(subparser=command)
        # Defaults are applied by options.validated(), so that fetch can tell them apart from options given with --lock.
        command.add_argument("--release", default=None,
                             help=f'release tag or "latest" (default: {DEFAULT_RELEASE})')
        command.add_argument("--python-version", default=None,
                             help='"3.12" (newest patch) or "3.12.7"; default: newest in the release')
        command.add_argument("--target", default=None, help='target triple (default: "host")')
        command.add_argument("--flavor", default=None, help=f"one of {', '.join(FLAVORS)} (default: {DEFAULT_FLAVOR})")
        add_source_options(command)
        if name == "fetch":
            command.add_argument("--lock", default=None, metavar="FILE",
                                 help="fetch every asset locked in FILE (a pbs.lock), and the runtimes the build "
                                      "machine (--host) needs to build its foreign targets")
            command.add_argument("--host", default="host", metavar="TRIPLE",
                                 help='with --lock: the triple of the machine that will build (default: this one)')


def check_lock_exclusive(arguments: argparse.Namespace) -> None:
    """``fetch --lock`` with an option the lock file decides: a usage error (exit status 2)."""
    if arguments.command == "fetch" and arguments.lock is not None:
        given = [f"--{name.replace('_', '-')}" for name in _LOCK_EXCLUSIVE if getattr(arguments, name) is not None]
        if given:
            arguments.subparser.error(f"--lock cannot be combined with {', '.join(given)} (the lock file names "
                                      f"the assets)")


def resolve_asset(arguments: argparse.Namespace, downloader: Downloader) -> ResolvedAsset:
    """The asset ``--release``/``--python-version``/``--target``/``--flavor`` name, from the release's catalogue
    (cached; ``latest`` asks the mirror for the newest release tag).

    Raises:
        ResolveError: no asset matches (the message names what the release has); DownloadError, OfflineError: the
            catalogue cannot be had.
    """
    release = arguments.release
    if release == "latest":
        release = latest_release_tag(downloader, arguments.mirror)
    catalogue = load_catalogue(arguments.cache, downloader, arguments.mirror, release)
    asset, sha256 = select_asset(catalogue, target=arguments.target, flavor=arguments.flavor,
                                 python_version=arguments.python_version)
    return ResolvedAsset(asset, sha256, asset.url(arguments.mirror))


def run(arguments: argparse.Namespace, downloader: Downloader) -> None:
    """``hatch-pbs resolve`` (print the resolved asset as JSON) or ``hatch-pbs fetch`` (print its cached path)."""
    resolved = resolve_asset(arguments, downloader)
    if arguments.command == "resolve":
        print(json.dumps(resolved.to_json(), indent=2))
    else:
        print(fetch_asset(arguments.cache, downloader, resolved))
