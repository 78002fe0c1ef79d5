"""Options several ``hatch-pbs`` commands share: where assets come from (``--mirror``), the cache
(``--cache-dir``), and their validation with the hook table's own checks (:mod:`hatch_pbs.config`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hatch_pbs.config import (
    DEFAULT_FLAVOR,
    DEFAULT_RELEASE,
    ENV_CACHE_DIR,
    ENV_MIRROR,
    check_cache_dir,
    check_flavor,
    check_mirror,
    check_python_version,
    check_release,
    check_target,
    default_cache_dir,
    parse_offline,
)
from hatch_pbs.errors import ConfigError
from hatch_pbs.release.assets import GITHUB_DOWNLOAD_PREFIX
from hatch_pbs.release.cache import Cache


def add_source_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--mirror", default=None,
                         help=f"base URL before /<release tag>/ (default: ${ENV_MIRROR}, else GitHub; with a lock "
                              f"file, else the mirror of each locked URL)")
    command.add_argument("--cache-dir", default=None, help=f"cache directory (default: ${ENV_CACHE_DIR})")


def validated(arguments: argparse.Namespace) -> argparse.Namespace:
    problems = []
    checks = (("release", "--release", check_release), ("python_version", "--python-version", check_python_version),
              ("target", "--target", check_target), ("flavor", "--flavor", check_flavor),
              ("mirror", "--mirror", check_mirror), ("host", "--host", check_target))
    for attribute, default in (("release", DEFAULT_RELEASE), ("target", "host"), ("flavor", DEFAULT_FLAVOR)):
        if hasattr(arguments, attribute) and getattr(arguments, attribute) is None:
            setattr(arguments, attribute, default)
    arguments.mirror_given = arguments.mirror is not None or bool(os.environ.get(ENV_MIRROR))
    if arguments.mirror is None:
        arguments.mirror = os.environ.get(ENV_MIRROR) or GITHUB_DOWNLOAD_PREFIX
    for attribute, option, check in checks:
        value = getattr(arguments, attribute, None)
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
    arguments.cache = selected_cache(arguments)
    return arguments


def selected_cache(arguments: argparse.Namespace) -> Cache:
    """The cache ``--cache-dir`` (else ``HATCH_PBS_CACHE_DIR``, else the per-user cache directory) names.

    Raises:
        ConfigError: the directory is unusable (a file, below a file).
    """
    source = "Option --cache-dir" if arguments.cache_dir else f"Environment variable `{ENV_CACHE_DIR}`"
    cache_dir = arguments.cache_dir or os.environ.get(ENV_CACHE_DIR)
    try:
        return Cache(check_cache_dir(cache_dir, source, Path.cwd()) if cache_dir else default_cache_dir())
    except ValueError as error:
        raise ConfigError([str(error)]) from None
