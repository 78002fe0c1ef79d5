"""``hatch-pbs``: resolve and fetch python-build-standalone assets from the command line.

``hatch-pbs resolve`` prints the resolved asset as JSON; ``hatch-pbs fetch`` downloads it into the cache (or finds it
there) and prints the cached path. Every failure exits with status 1 and one ``hatch-pbs: error:`` line on stderr;
usage errors exit with status 2 and one such line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from hatch_pbs import __version__
from hatch_pbs.assets import FLAVORS, GITHUB_DOWNLOAD_PREFIX
from hatch_pbs.cache import Cache
from hatch_pbs.config import (
    DEFAULT_FLAVOR,
    DEFAULT_RELEASE,
    ENV_CACHE_DIR,
    ENV_MIRROR,
    check_flavor,
    check_mirror,
    check_python_version,
    check_release,
    check_target,
    default_cache_dir,
    parse_offline,
)
from hatch_pbs.download import Downloader
from hatch_pbs.errors import ConfigError, HatchPbsError
from hatch_pbs.fetch import fetch_asset, latest_release_tag, load_catalogue
from hatch_pbs.resolve import ResolvedAsset, select_asset


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line error format (no usage block); subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hatch-pbs: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hatch-pbs", description="Resolve and fetch python-build-standalone assets.")
    parser.add_argument("--version", action="version", version=f"hatch-pbs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in (("resolve", "print the asset a build would use, as JSON"),
                            ("fetch", "download the asset into the cache and print its path")):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--release", default=DEFAULT_RELEASE,
                             help=f'release tag or "latest" (default: {DEFAULT_RELEASE})')
        command.add_argument("--python-version", default=None,
                             help='"3.12" (newest patch) or "3.12.7"; default: newest in the release')
        command.add_argument("--target", default="host", help='target triple (default: "host")')
        command.add_argument("--flavor", default=DEFAULT_FLAVOR, help=f"one of {', '.join(FLAVORS)}")
        command.add_argument("--mirror", default=None,
                             help=f"base URL before /<release tag>/ (default: ${ENV_MIRROR} or GitHub)")
        command.add_argument("--cache-dir", default=None, help=f"cache directory (default: ${ENV_CACHE_DIR})")
    return parser


def _validated(arguments: argparse.Namespace) -> argparse.Namespace:
    problems = []
    checks = (("release", "--release", check_release), ("python_version", "--python-version", check_python_version),
              ("target", "--target", check_target), ("flavor", "--flavor", check_flavor),
              ("mirror", "--mirror", check_mirror))
    if arguments.mirror is None:
        arguments.mirror = os.environ.get(ENV_MIRROR) or GITHUB_DOWNLOAD_PREFIX
    for attribute, option, check in checks:
        value = getattr(arguments, attribute)
        if value is None:
            continue
        try:
            setattr(arguments, attribute, check(value, f"Option {option}"))
        except ValueError as error:
            problems.append(str(error))
    try:
        arguments.offline = parse_offline(os.environ)
    except ValueError as error:
        problems.append(str(error))
    if problems:
        raise ConfigError(problems)
    cache_dir = arguments.cache_dir or os.environ.get(ENV_CACHE_DIR)
    arguments.cache = Cache(Path(cache_dir).expanduser().resolve() if cache_dir else default_cache_dir())
    return arguments


def _resolve(arguments: argparse.Namespace, downloader: Downloader) -> ResolvedAsset:
    release = arguments.release
    if release == "latest":
        release = latest_release_tag(downloader, arguments.mirror)
    catalogue = load_catalogue(arguments.cache, downloader, arguments.mirror, release)
    asset, sha256 = select_asset(catalogue, target=arguments.target, flavor=arguments.flavor,
                                 python_version=arguments.python_version)
    return ResolvedAsset(asset, sha256, asset.url(arguments.mirror))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hatch-pbs`` command; returns the exit status."""
    arguments = _parser().parse_args(argv)
    try:
        arguments = _validated(arguments)
        with Downloader(offline=arguments.offline) as downloader:
            resolved = _resolve(arguments, downloader)
            if arguments.command == "resolve":
                print(json.dumps(resolved.to_json(), indent=2))
            else:
                print(fetch_asset(arguments.cache, downloader, resolved))
    except (HatchPbsError, OSError) as error:  # OSError: an unusable cache directory, a full disk, a lock timeout
        message = " ".join(str(error).split("\n"))
        print(f"hatch-pbs: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hatch-pbs: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
