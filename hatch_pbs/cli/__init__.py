"""``hatch-pbs``: resolve and fetch python-build-standalone assets from the command line.

``hatch-pbs resolve`` prints the resolved asset as JSON; ``hatch-pbs fetch`` downloads it into the cache (or finds it
there) and prints the cached path. ``hatch-pbs lock`` resolves every target triple of a project's configuration and
writes its ``pbs.lock``; ``hatch-pbs fetch --lock FILE`` warms the cache with every locked asset and
``hatch-pbs mirror DIR`` copies them, with a ``SHA256SUMS``, into a directory that works as ``mirror = "file://DIR"``.
``hatch-pbs cache verify`` checks every cache entry fully and ``hatch-pbs cache clean`` removes damaged, outdated and
unused ones (:mod:`hatch_pbs.cli.cache`).
Every failure exits with status 1 and one ``hatch-pbs: error:`` line on stderr; usage errors exit with status 2 and
one such line. Ctrl-C (SIGINT) stops any command within about a second (:mod:`hatch_pbs.interrupts`: downloads,
copies and lock waits are cut short, nothing half-written is left) and exits with status 130 and one
``hatch-pbs: interrupted`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from packaging.specifiers import SpecifierSet

from hatch_pbs import __version__, interrupts
from hatch_pbs.artifact.pack import sha256_of
from hatch_pbs.atomic import copy_file, write_file
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
    parse_hook_config,
    parse_offline,
    requires_python_specifier,
)
from hatch_pbs.errors import (
    ConfigError,
    DamagedCacheError,
    HatchPbsError,
    LockError,
    OfflineError,
    PackError,
    os_error_cause,
)
from hatch_pbs.release.assets import FLAVORS, GITHUB_DOWNLOAD_PREFIX
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import Downloader
from hatch_pbs.release.fetch import fetch_asset, latest_release_tag, load_catalogue
from hatch_pbs.release.lock import (
    LOCK_FILE_NAME,
    Lock,
    lock_from_resolved,
    locked_in_catalogue,
    read_lock,
    write_lock,
)
from hatch_pbs.release.resolve import ResolvedAsset, select_asset
from hatch_pbs.release.sums import SUMS_FILE_NAME, parse_sums, render_sums

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Where ``hatch-pbs lock`` looks for the hook table, first match wins (hatchling lets a target's own table
#: replace the global one).
HOOK_TABLES = (("targets", "app", "hooks", "pbs"), ("targets", "binary", "hooks", "pbs"), ("hooks", "pbs"))
_LOCK_EXCLUSIVE = ("release", "python_version", "target", "flavor")


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line error format (no usage block); subcommand parsers inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"hatch-pbs: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hatch-pbs", description="Resolve and fetch python-build-standalone assets.")
    parser.add_argument("--version", action="version", version=f"hatch-pbs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in (("resolve", "print the asset a build would use, as JSON"),
                            ("fetch", ("download the asset (or, with --lock, every locked asset) into the cache and "
                                       "print its path"))):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(subparser=command)
        # Defaults are applied by _validated(), so that fetch can tell them apart from options given with --lock.
        command.add_argument("--release", default=None,
                             help=f'release tag or "latest" (default: {DEFAULT_RELEASE})')
        command.add_argument("--python-version", default=None,
                             help='"3.12" (newest patch) or "3.12.7"; default: newest in the release')
        command.add_argument("--target", default=None, help='target triple (default: "host")')
        command.add_argument("--flavor", default=None, help=f"one of {', '.join(FLAVORS)} (default: {DEFAULT_FLAVOR})")
        _source_options(command)
        if name == "fetch":
            command.add_argument("--lock", default=None, metavar="FILE",
                                 help="fetch every asset locked in FILE (a pbs.lock), and the runtimes the build "
                                      "machine (--host) needs to build its foreign targets")
            command.add_argument("--host", default="host", metavar="TRIPLE",
                                 help='with --lock: the triple of the machine that will build (default: this one)')
    help_text = "resolve every target triple of a project's configuration and write its pbs.lock"
    command = commands.add_parser("lock", help=help_text, description=help_text)
    command.set_defaults(subparser=command)
    command.add_argument("--project", default=".", metavar="DIR",
                         help="the project directory, holding pyproject.toml (default: the current directory)")
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
    _source_options(command)
    _cache_commands(commands)
    return parser


#: Default of ``hatch-pbs cache clean --older-than``, in days.
DEFAULT_UNUSED_DAYS = 30.0


def _cache_commands(commands: argparse._SubParsersAction) -> None:
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


def _source_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--mirror", default=None,
                         help=f"base URL before /<release tag>/ (default: ${ENV_MIRROR}, else GitHub; with a lock "
                              f"file, else the mirror of each locked URL)")
    command.add_argument("--cache-dir", default=None, help=f"cache directory (default: ${ENV_CACHE_DIR})")


def _validated(arguments: argparse.Namespace) -> argparse.Namespace:
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
    arguments.cache = _cache(arguments)
    return arguments


def _cache(arguments: argparse.Namespace) -> Cache:
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


# ----------------------------------------------------------------------------------------------------------------
# hatch-pbs cache verify / clean


def _verify(cache: Cache) -> None:
    """``hatch-pbs cache verify``: one ``damaged`` line per damaged entry, then a summary line.

    Raises:
        DamagedCacheError: some entry is damaged (after the list is printed).
    """
    from hatch_pbs.cli.cache import (
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


def _clean(cache: Cache, older_than_days: float, everything: bool) -> None:
    """``hatch-pbs cache clean``: one ``removed`` line per entry removed (bytecode entries unused or outdated are
    counted per reason), then the bytes freed."""
    from hatch_pbs.cli.cache import (  # imports LIEF: only when needed
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


def _resolve(arguments: argparse.Namespace, downloader: Downloader) -> ResolvedAsset:
    release = arguments.release
    if release == "latest":
        release = latest_release_tag(downloader, arguments.mirror)
    catalogue = load_catalogue(arguments.cache, downloader, arguments.mirror, release)
    asset, sha256 = select_asset(catalogue, target=arguments.target, flavor=arguments.flavor,
                                 python_version=arguments.python_version)
    return ResolvedAsset(asset, sha256, asset.url(arguments.mirror))


# ----------------------------------------------------------------------------------------------------------------
# hatch-pbs lock


def _lock(project_dir: Path) -> None:
    """``hatch-pbs lock``: resolve the project's targets exactly as a build does and write ``pbs.lock``."""
    from hatch_pbs.pipeline import (
        resolve_runtimes,  # imports the binary patchers (LIEF): only when needed
    )

    pyproject = project_dir / "pyproject.toml"
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"cannot read {pyproject}: {error.strerror or error}"]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError([f"{pyproject} is not valid TOML: {error}"]) from None
    table = _hook_table(document, pyproject)
    scripts, requires_python = _project_metadata(project_dir, pyproject)
    config = parse_hook_config(table, project_scripts=scripts, root=project_dir, requires_python=requires_python)
    with Downloader(offline=config.offline, timeout=config.timeout, mirror=config.mirror) as downloader:
        _, resolved = resolve_runtimes(config, requires_python, Cache(config.cache_dir), downloader)
    lock = lock_from_resolved(resolved)
    path = project_dir / LOCK_FILE_NAME
    try:
        write_lock(path, lock)
    except OSError as error:
        raise LockError(f"cannot write the lock file {path}: {os_error_cause(error, path)}") from None
    for runtime in lock.runtimes:
        print(f"{runtime.target}: {runtime.asset} (release {runtime.release}, sha256 {runtime.sha256})")
    print(f"wrote {path}")


def _project_metadata(project_dir: Path, pyproject: Path) -> tuple[dict[str, str], SpecifierSet | None]:
    """The project's scripts (console and GUI, name -> entry point) and ``requires-python``, as hatchling's metadata
    resolves them for a build (dynamic fields and metadata hooks included), so a lock is made from what the build
    will see.

    Raises:
        ConfigError: hatchling finds the metadata invalid (one line naming ``pyproject``).
    """
    from hatchling.metadata.core import ProjectMetadata
    from hatchling.plugin.manager import PluginManager

    metadata = ProjectMetadata(str(project_dir), PluginManager())
    try:
        core = metadata.core
        return {**core.scripts, **core.gui_scripts}, requires_python_specifier(core.requires_python)
    except (ValueError, TypeError, OSError) as error:
        raise ConfigError([f"the project metadata in {pyproject} is not valid: {error}"]) from None


def _hook_table(document: dict[str, Any], pyproject: Path) -> dict[str, Any]:
    hatch_build = document.get("tool", {}).get("hatch", {}).get("build", {})
    for keys in HOOK_TABLES:
        table: Any = hatch_build
        for key in keys:
            table = table.get(key) if isinstance(table, dict) else None
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError([f"[tool.hatch.build.{'.'.join(keys)}] in {pyproject} must be a table"])
            return table
    raise ConfigError([(f"{pyproject} has no [tool.hatch.build.hooks.pbs] table (nor "
                        f"[tool.hatch.build.targets.app.hooks.pbs]): there is nothing to lock")])


# ----------------------------------------------------------------------------------------------------------------
# hatch-pbs fetch --lock / hatch-pbs mirror


def _locked_downloads(arguments: argparse.Namespace, lock: Lock, downloader: Downloader
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


def _mirror(arguments: argparse.Namespace, lock: Lock, downloader: Downloader) -> None:
    """``hatch-pbs mirror DIR``: copy the locked assets into ``DIR/<release>/`` and list them in its SHA256SUMS."""
    directory = Path(arguments.directory).expanduser().resolve()
    downloads = _locked_downloads(arguments, lock, downloader)
    releases: dict[str, dict[str, str]] = {}
    for item, cached in downloads:
        interrupts.check()
        release_dir = directory / item.asset.release
        release_dir.mkdir(parents=True, exist_ok=True)
        destination = release_dir / item.asset.file_name
        if not (destination.is_file() and sha256_of(destination) == item.sha256):
            _mirror_write(destination, lambda: copy_file(cached, destination))
        releases.setdefault(item.asset.release, {})[item.asset.file_name] = item.sha256
        print(destination)
    for release, listed in sorted(releases.items()):
        sums = directory / release / SUMS_FILE_NAME
        entries = dict(parse_sums(sums.read_text(encoding="utf-8"), skip_malformed=True)) if sums.is_file() else {}
        entries.update(listed)
        text = render_sums(entries)
        _mirror_write(sums, lambda: write_file(sums, text.encode("utf-8")))
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


def _run(arguments: argparse.Namespace) -> None:
    if arguments.command == "lock":
        _lock(Path(arguments.project).expanduser().resolve())
        return
    if arguments.command == "cache":
        if arguments.cache_command == "verify":
            _verify(_cache(arguments))
        else:
            _clean(_cache(arguments), arguments.older_than, arguments.everything)
        return
    arguments = _validated(arguments)
    with Downloader(offline=arguments.offline, mirror=arguments.mirror) as downloader:
        if arguments.command == "mirror":
            _mirror(arguments, read_lock(Path(arguments.lock)), downloader)
        elif arguments.command == "fetch" and arguments.lock is not None:
            for _, path in _locked_downloads(arguments, read_lock(Path(arguments.lock)), downloader):
                print(path)
        else:
            resolved = _resolve(arguments, downloader)
            if arguments.command == "resolve":
                print(json.dumps(resolved.to_json(), indent=2))
            else:
                print(fetch_asset(arguments.cache, downloader, resolved))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hatch-pbs`` command; returns the exit status."""
    try:
        arguments = _parser().parse_args(argv)
        if arguments.command == "fetch" and arguments.lock is not None:
            given = [f"--{name.replace('_', '-')}" for name in _LOCK_EXCLUSIVE if getattr(arguments, name) is not None]
            if given:
                arguments.subparser.error(f"--lock cannot be combined with {', '.join(given)} (the lock file names "
                                          f"the assets)")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
