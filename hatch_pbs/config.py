"""The ``[tool.hatch.build.hooks.pbs]`` table, validated once into a frozen :class:`HookConfig`.

Every option is checked and all problems are reported together in one :class:`~hatch_pbs.errors.ConfigError`,
each naming the option, the value given and what is allowed. Environment variables override some options
(``HATCH_PBS_MIRROR``, ``HATCH_PBS_CACHE_DIR``, ``HATCH_PBS_OFFLINE``, ``HATCH_PBS_RELEASE``, and
``MACOSX_DEPLOYMENT_TARGET`` for option ``macos``); they are validated the same way and the message names the
variable.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from hatch_pbs.errors import ConfigError
from hatch_pbs.release.assets import FLAVORS, GITHUB_DOWNLOAD_PREFIX
from hatch_pbs.release.triples import (
    ALL_TARGETS,
    DEFAULT_MACOS_DEPLOYMENT_TARGET,
    KNOWN_TRIPLES,
    MANYLINUX_FLOORS,
    MUSLLINUX_FLOORS,
    PlatformFloors,
    host_triple,
    parse_triple,
    suggest_triple,
)
from hatch_pbs.runtime.extract import DEFAULT_MAX_UNPACKED_SIZE

#: The python-build-standalone release used when ``release`` is not set: the newest release when this version of
#: hatch-pbs was made. Pinning it keeps builds reproducible; ``release = "latest"`` opts into the newest release.
DEFAULT_RELEASE = "20261021"
DEFAULT_FLAVOR = "install_only_stripped"

#: Keys hatchling itself reads from every build hook table (hatchling ``builders/config.py``).
HATCHLING_HOOK_KEYS = frozenset({"dependencies", "require-runtime-dependencies", "require-runtime-features",
                                 "enable-by-default"})

OPTIONS = ("python-version", "release", "targets", "flavor", "mirror", "cache-dir", "scripts", "offline",
           "requirements", "timeout", "max-unpacked-size", "stdlib", "exclude", "bytecode", "archive-format", "pyapp",
           "wheel", "manylinux", "musllinux", "macos", "build-from-source")

#: ``stdlib`` presets, smallest last (what each drops: :mod:`hatch_pbs.runtime.trim`, docs/configuration.md).
STDLIB_PRESETS = ("full", "default", "minimal")
DEFAULT_STDLIB = "default"
#: ``bytecode`` modes: ``.py`` and ``.pyc`` / sourceless ``.pyc`` only / no ``.pyc`` at all.
BYTECODE_MODES = ("compile", "only", "none")
DEFAULT_BYTECODE = "compile"
#: ``archive-format`` values; unset means ``tar.gz`` (``zip`` for Windows targets).
ARCHIVE_FORMATS = ("tar.gz", "tar.zst", "zip", "dir")

DEFAULT_TIMEOUT = 30.0  # seconds

ENV_MIRROR = "HATCH_PBS_MIRROR"
ENV_CACHE_DIR = "HATCH_PBS_CACHE_DIR"
ENV_OFFLINE = "HATCH_PBS_OFFLINE"
ENV_RELEASE = "HATCH_PBS_RELEASE"
#: The variable macOS build tools read the oldest supported macOS from; it overrides option ``macos``.
ENV_MACOS = "MACOSX_DEPLOYMENT_TARGET"

_PYTHON_VERSION_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3}((a|b|rc)\d{1,2})?)?$")
_RELEASE_RE = re.compile(r"^\d{8}$")
_MACOS_RE = re.compile(r"^(\d{1,2})(?:\.(\d{1,2}))?$")
#: ``module:attr`` with dotted identifiers, optional extras (entry points specification).
_ENTRY_POINT_RE = re.compile(r"^\s*[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\s*:\s*[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\s*(\[[^\]]*\])?\s*$")
_MIRROR_SCHEMES = ("http://", "https://", "file://")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class HookConfig:
    """The validated hook configuration.

    Attributes:
        python_version: ``"3.12"`` (newest patch in the release), ``"3.12.7"`` (exact) or ``None`` (the newest
            version the release has that ``requires-python`` allows).
        release: a release tag such as ``"20261021"``, or ``"latest"``.
        targets: target triples, ``host`` already replaced by the build machine's triple, duplicates removed.
        flavor: ``"install_only"``, ``"install_only_stripped"`` or ``"full"``.
        mirror: everything before ``/{release tag}/`` in asset URLs, without a trailing slash.
        cache_dir: absolute path of the download cache.
        scripts: names of the ``[project.scripts]``/``[project.gui-scripts]`` entries that get a launcher.
        offline: never open a network connection (option ``offline``; ``HATCH_PBS_OFFLINE`` overrides).
        requirements: a requirements file (pip/uv format, hashes enforced when present) or a ``pylock.toml``
            (PEP 751) pinning the application's dependencies; ``None``: resolve them from the project metadata.
        timeout: seconds a connection may take to connect or stay silent before it fails (option ``timeout``).
        max_unpacked_size: bytes an archive may expand to before extraction stops (option ``max-unpacked-size``).
        stdlib: the standard library preset, one of :data:`STDLIB_PRESETS`.
        exclude: gitignore-style patterns (relative to the artifact root) of files left out of the artifact.
        bytecode: one of :data:`BYTECODE_MODES`.
        archive_format: one of :data:`ARCHIVE_FORMATS`, or ``None`` for ``tar.gz`` (``zip`` for Windows targets).
        pyapp: ``"auto"`` (hand the artifact to Hatch's PyApp builder when cargo is found), ``"true"`` (cargo
            required) or ``"false"`` (never); see :mod:`hatch_pbs.forms.pyapp`.
        wheel: for the ``wheel`` target, build one runtime wheel per target triple (:mod:`hatch_pbs.forms.wheel`).
        floors: the oldest glibc, musl and macOS the artifacts must run on (options ``manylinux``, ``musllinux``,
            ``macos``; ``MACOSX_DEPLOYMENT_TARGET`` overrides ``macos``): wheels are chosen for them, and the audit
            refuses binaries that need newer ones.
        build_from_source: a dependency without a wheel for its floor may be built from its source distribution,
            for the build machine's own triple only (option ``build-from-source``).
    """

    python_version: str | None
    release: str
    targets: tuple[str, ...]
    flavor: str
    mirror: str
    cache_dir: Path
    scripts: tuple[str, ...]
    offline: bool = False
    requirements: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_unpacked_size: int = DEFAULT_MAX_UNPACKED_SIZE
    stdlib: str = DEFAULT_STDLIB
    exclude: tuple[str, ...] = ()
    bytecode: str = DEFAULT_BYTECODE
    archive_format: str | None = None
    pyapp: str = "auto"
    wheel: bool = False
    floors: PlatformFloors = PlatformFloors()
    build_from_source: bool = False


def _option(name: str) -> str:
    return f"Option `{name}` for build hook `pbs`"


def default_cache_dir() -> Path:
    """The per-user cache directory (``platformdirs.user_cache_dir("hatch-pbs")``)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("hatch-pbs", appauthor=False))


def check_python_version(value: Any, where: str) -> str:
    """Validate a python version request; returns it or raises ``ValueError`` with the complete message."""
    if not isinstance(value, str) or not _PYTHON_VERSION_RE.fullmatch(value):
        raise ValueError(f'{where} must be a CPython version such as "3.12" or "3.12.7"; got {value!r}')
    return value


def check_release(value: Any, where: str) -> str:
    if not isinstance(value, str) or not (value == "latest" or _RELEASE_RE.fullmatch(value)):
        raise ValueError(f'{where} must be a python-build-standalone release tag such as "{DEFAULT_RELEASE}" '
                         f'or "latest"; got {value!r}')
    return value


def check_flavor(value: Any, where: str) -> str:
    return _check_choice(value, where, FLAVORS)


def did_you_mean(value: Any, allowed: tuple[str, ...]) -> str:
    """`` (did you mean "x"?)`` for the allowed value closest to ``value`` (``difflib``, also trying ``-``/``_``
    swapped), or ``""`` when none is close."""
    if not isinstance(value, str):
        return ""
    for candidate in (value, value.replace("-", "_"), value.replace("_", "-"), value.lower()):
        if candidate in allowed and candidate != value:
            return f' (did you mean "{candidate}"?)'
    close = difflib.get_close_matches(value, allowed, n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def check_mirror(value: Any, where: str) -> str:
    if (not isinstance(value, str) or not value.startswith(_MIRROR_SCHEMES)
            or not value.split("://", 1)[1].strip("/")  # a scheme alone is no base URL
            or any(ord(character) < 0x21 or ord(character) == 0x7F for character in value)):  # NUL, spaces, ...
        raise ValueError(f"{where} must be a base URL starting with http://, https:// or file:// (everything before "
                         f"/<release tag>/ in an asset URL, without spaces or control characters); got {value!r}")
    return value.rstrip("/")


def check_target(value: Any, where: str, host: Callable[[], str] = host_triple) -> str:
    """Validate one target: ``"host"`` (returns the build machine's triple) or a python-build-standalone target
    triple. (``"all"`` is expanded by the ``targets`` option itself.)"""
    if value == "host":
        try:
            return host()
        except ValueError as error:
            raise ValueError(f'{where} is "host", but {error}; name the target triples instead') from None
    if isinstance(value, str):
        try:
            parse_triple(value)
            return value
        except ValueError:
            pass
    hint = ""
    if isinstance(value, str) and (suggestion := suggest_triple(value)):
        hint = f' (did you mean "{suggestion}"?)'
    raise ValueError(f'{where} must be "host", "all" or a target triple such as "x86_64-unknown-linux-gnu"; '
                     f"got {value!r}{hint}")


def parse_hook_config(
    raw: Mapping[str, Any],
    *,
    project_scripts: Mapping[str, str],
    root: Path,
    environ: Mapping[str, str] | None = None,
    host: Callable[[], str] = host_triple,
    requires_python: SpecifierSet | None = None,
) -> HookConfig:
    """Validate the hook table.

    Args:
        raw: the ``[tool.hatch.build.hooks.pbs]`` (or target-specific) table as hatchling passes it.
        project_scripts: every ``[project.scripts]`` and ``[project.gui-scripts]`` entry, name -> entry point.
        root: the project root; a relative ``cache-dir`` is relative to it.
        environ: environment for the ``HATCH_PBS_*`` overrides (default ``os.environ``).
        host: returns the build machine's triple (a parameter so tests can pin it).
        requires_python: the project's ``requires-python``; a ``python-version`` it excludes is a problem.

    Raises:
        ConfigError: one or more options are invalid (an entry point of a selected script that is not
            ``module:attr`` included); every problem is listed.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []

    def take(name: str, check: Callable[[Any, str], Any], default: Any) -> Any:
        if name not in raw:
            return default
        try:
            return check(raw[name], _option(name))
        except ValueError as error:
            problems.extend(str(error).splitlines())  # a check may find several problems, one per line
            return default

    unknown = sorted(set(raw) - set(OPTIONS) - HATCHLING_HOOK_KEYS)
    for name in unknown:
        close = [option for option in OPTIONS if option.replace("-", "") == name.replace("-", "").replace("_", "")]
        hint = f' (did you mean "{close[0]}"?)' if close else did_you_mean(name.replace("_", "-"), OPTIONS)
        problems.append(f"Unknown option `{name}` for build hook `pbs`{hint}; known options: {', '.join(OPTIONS)}")

    python_version = take("python-version", check_python_version, None)
    release = take("release", check_release, DEFAULT_RELEASE)
    flavor = take("flavor", check_flavor, DEFAULT_FLAVOR)
    mirror = take("mirror", check_mirror, GITHUB_DOWNLOAD_PREFIX)
    targets = take("targets", lambda value, where: _check_targets(value, where, host), ())
    if "targets" not in raw:  # the default ["host"], resolved only when used: cross builds work on any host
        try:
            targets = (check_target("host", f"{_option('targets')} is not set and its default", host),)
        except ValueError as error:
            problems.append(str(error))
    scripts = take("scripts", lambda value, where: _check_scripts(value, where, project_scripts),
                   tuple(sorted(project_scripts)))
    cache_dir = take("cache-dir", lambda value, where: check_cache_dir(value, where, root), None)
    offline = take("offline", _check_bool, False)
    requirements = take("requirements", _check_requirements, None)
    timeout = take("timeout", _check_timeout, DEFAULT_TIMEOUT)
    max_unpacked_size = take("max-unpacked-size", _check_size, DEFAULT_MAX_UNPACKED_SIZE)
    stdlib = take("stdlib", lambda value, where: _check_choice(value, where, STDLIB_PRESETS), DEFAULT_STDLIB)
    exclude = take("exclude", _check_exclude, ())
    bytecode = take("bytecode", lambda value, where: _check_choice(value, where, BYTECODE_MODES), DEFAULT_BYTECODE)
    archive_format = take("archive-format", lambda value, where: _check_choice(value, where, ARCHIVE_FORMATS), None)
    pyapp = take("pyapp", _check_pyapp, "auto")
    wheel = take("wheel", _check_bool, False)
    manylinux = take("manylinux", lambda value, where: _check_floor(value, where, MANYLINUX_FLOORS, "glibc"), "2_17")
    musllinux = take("musllinux", lambda value, where: _check_floor(value, where, MUSLLINUX_FLOORS, "musl"), "1_2")
    macos = take("macos", check_macos, DEFAULT_MACOS_DEPLOYMENT_TARGET)
    build_from_source = take("build-from-source", _check_bool, False)

    if environ.get(ENV_MIRROR):
        try:
            mirror = check_mirror(environ[ENV_MIRROR], f"Environment variable `{ENV_MIRROR}`")
        except ValueError as error:
            problems.append(str(error))
    if environ.get(ENV_RELEASE, "").strip():
        try:
            release = check_release(environ[ENV_RELEASE].strip(), f"Environment variable `{ENV_RELEASE}`")
        except ValueError as error:
            problems.append(str(error))
    if environ.get(ENV_CACHE_DIR):
        try:
            cache_dir = check_cache_dir(environ[ENV_CACHE_DIR], f"Environment variable `{ENV_CACHE_DIR}`", root)
        except ValueError as error:
            problems.append(str(error))
    if environ.get(ENV_OFFLINE, "").strip():
        try:
            offline = parse_offline(environ)
        except ValueError as error:
            problems.append(str(error))
    if environ.get(ENV_MACOS, "").strip():
        try:
            macos = check_macos(environ[ENV_MACOS].strip(), f"Environment variable `{ENV_MACOS}`")
        except ValueError as error:
            problems.append(str(error))

    if python_version is not None and requires_python is not None:
        problems.extend(_requires_python_conflict(python_version, requires_python))
    problems.extend(_entry_point_problems(scripts, project_scripts))
    if problems:
        raise ConfigError(problems)
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    return HookConfig(
        python_version=python_version,
        release=release,
        targets=targets,
        flavor=flavor,
        mirror=mirror,
        cache_dir=cache_dir,
        scripts=scripts,
        offline=offline,
        requirements=None if requirements is None else (root / requirements).resolve(),
        timeout=timeout,
        max_unpacked_size=max_unpacked_size,
        stdlib=stdlib,
        exclude=exclude,
        bytecode=bytecode,
        archive_format=archive_format,
        pyapp=pyapp,
        wheel=wheel,
        floors=PlatformFloors(manylinux=_floor_version(manylinux, "_"), musllinux=_floor_version(musllinux, "_"),
                              macos=_floor_version(macos, ".")),
        build_from_source=build_from_source,
    )


def requires_python_specifier(text: str | None) -> SpecifierSet | None:
    """The project's ``requires-python`` (the text hatchling's metadata resolves, PEP 621) as a specifier set;
    ``None`` when it is empty or not valid (hatchling itself reports an invalid one)."""
    if not text:
        return None
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


def parse_offline(environ: Mapping[str, str]) -> bool:
    """``HATCH_PBS_OFFLINE`` as a boolean (``1/true/yes/on`` or ``0/false/no/off``/unset)."""
    value = environ.get(ENV_OFFLINE, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"Environment variable `{ENV_OFFLINE}` must be one of 1, true, yes, on, 0, false, no, off; "
                     f"got {environ[ENV_OFFLINE]!r}")


def _requires_python_conflict(python_version: str, requires_python: SpecifierSet) -> list[str]:
    """A problem when no CPython that ``python-version`` selects satisfies ``requires-python``: ``"3.X"`` selects
    any ``3.X.Y`` (final releases), ``"3.X.Y"`` exactly that version."""
    if python_version.count(".") >= 2:
        candidates = [python_version]
    else:
        candidates = [f"{python_version}.{patch}" for patch in range(100)]
    if any(requires_python.contains(candidate, prereleases=True) for candidate in candidates):
        return []
    return [f'{_option("python-version")} is "{python_version}", but the project\'s `requires-python` is '
            f'"{requires_python}", which no CPython {python_version} satisfies; change one of the two']


def _entry_point_problems(scripts: tuple[str, ...], project_scripts: Mapping[str, str]) -> list[str]:
    """One problem per selected script whose entry point is not ``module:attr`` (the object reference of the
    entry points specification, https://packaging.python.org/en/latest/specifications/entry-points/; a launcher
    imports ``module`` and calls ``attr``)."""
    return [f"Entry point of script `{name}` ({project_scripts[name]!r} in [project.scripts] or "
            f"[project.gui-scripts]) must be \"module:attr\" such as \"my_app.cli:main\" for build hook `pbs` to "
            f"write its launcher"
            for name in scripts if name in project_scripts and not _ENTRY_POINT_RE.fullmatch(project_scripts[name])]


def _check_targets(value: Any, where: str, host: Callable[[], str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f'{where} must be a non-empty array of target triples, "host" or "all"; got {value!r}')
    triples: list[str] = []
    errors: list[str] = []
    for index, entry in enumerate(value, 1):
        try:
            expanded = ALL_TARGETS if entry == "all" else (
                check_target(entry, f"Entry #{index} of option `targets` for build hook `pbs`", host),)
        except ValueError as error:
            errors.append(str(error))
            continue
        triples.extend(triple for triple in expanded if triple not in triples)
    if errors:
        raise ValueError("\n".join(errors))
    return tuple(triples)


def _check_scripts(value: Any, where: str, project_scripts: Mapping[str, str]) -> tuple[str, ...]:
    known = ", ".join(sorted(project_scripts)) or "none: the project defines no [project.scripts]"
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ValueError(f"{where} must be an array of script names from [project.scripts] or "
                         f"[project.gui-scripts] ({known}); got {value!r}")
    unknown = [entry for entry in value if entry not in project_scripts]
    if unknown:
        raise ValueError(f"{where} names scripts the project does not define: {', '.join(unknown)}; "
                         f"defined scripts: {known}")
    return tuple(dict.fromkeys(value))


def _check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false; got {value!r}")
    return value


def _check_requirements(value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:  # no file name holds a NUL
        raise ValueError(f"{where} must be the path of a requirements file (e.g. \"requirements.txt\") or of a "
                         f"PEP 751 lock file (\"pylock.toml\"); got {value!r}")
    return _expanded(value, where)


def _check_timeout(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise ValueError(f"{where} must be a number of seconds greater than 0 and at most 3600; got {value!r}")
    return float(value)


def _check_size(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 << 20:
        raise ValueError(f"{where} must be a whole number of bytes, at least 1048576 (1 MiB); got {value!r}")
    return value


def _check_choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{where} must be one of {', '.join(map(repr, allowed))}; got {value!r}"
                         f"{did_you_mean(value, allowed)}")
    return value


def _check_floor(value: Any, where: str, allowed: tuple[str, ...], library: str) -> str:
    """One of ``allowed`` (``"2_28"``: glibc 2.28). ``"2.28"`` and ``"manylinux_2_28"`` get a hint; so does a
    version uv has no platform for (``"2_29"``: the nearest older one)."""
    if isinstance(value, str) and value in allowed:
        return value
    hint = ""
    bare = re.sub(r"^(many|musl)linux_?", "", value.strip()).replace(".", "_") if isinstance(value, str) else ""
    bare = {"2014": "2_17"}.get(bare, bare)  # PEP 599's legacy name of manylinux_2_17
    if bare in allowed:
        hint = f' (did you mean "{bare}"?)'
    elif re.fullmatch(r"\d+_\d+", bare):
        older = [floor for floor in allowed if _floor_version(floor, "_") < _floor_version(bare, "_")]
        hint = (f' (uv has no platform for {library} {bare.replace("_", ".")}; did you mean "{older[-1]}"?)' if older
                else f' (python-build-standalone\'s runtimes need {library} {allowed[0].replace("_", ".")} '
                     f'themselves; did you mean "{allowed[0]}"?)')
    raise ValueError(f"{where} must be one of {', '.join(map(repr, allowed))} (the oldest {library} the artifacts "
                     f"run on, as uv can install wheels for it); got {value!r}{hint or did_you_mean(value, allowed)}")


def check_macos(value: Any, where: str) -> str:
    """A macOS version from 10.9 on: ``"11.0"``, ``"14"`` (returned as ``"14.0"``), ``"10.13"``. From macOS 11 on
    only the major version selects wheels (``macosx_14_0``, PEP 425 as ``packaging.tags`` reads it)."""
    match = _MACOS_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or (int(match.group(1)), int(match.group(2) or 0)) < (10, 9):
        hint = f' (did you mean "{value}", with quotes?)' if isinstance(value, (int, float)) and not isinstance(
            value, bool) and value >= 10.9 else ""
        raise ValueError(f'{where} must be a macOS version from 10.9 on, such as "11.0" or "14.0" (the oldest macOS '
                         f"the artifacts run on); got {value!r}{hint}")
    return f"{int(match.group(1))}.{int(match.group(2) or 0)}"


def _floor_version(text: str, separator: str) -> tuple[int, int]:
    """``(2, 28)`` for ``"2_28"`` (``separator`` ``"_"``), ``(11, 0)`` for ``"11.0"``."""
    major, minor = text.split(separator)
    return int(major), int(minor)


def _check_pyapp(value: Any, where: str) -> str:
    if value == "auto" or isinstance(value, bool):
        return value if isinstance(value, str) else str(value).lower()
    hint = ""
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        hint = f" (did you mean {value.strip().lower()}, without quotes?)"
    elif isinstance(value, str):
        hint = did_you_mean(value, ("auto",))
    raise ValueError(f'{where} must be "auto", true or false; got {value!r}{hint}')


def _check_exclude(value: Any, where: str) -> tuple[str, ...]:
    """An array of gitignore-style patterns (``pathspec``'s ``gitwildmatch``, as Hatch's own ``exclude``)."""
    from pathspec import GitIgnoreSpec

    shape = ('an array of gitignore-style patterns relative to the artifact root, such as "app/**/tests/" or '
             '"python/lib/python3.*/sqlite3/"')
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ValueError(f"{where} must be {shape}; got {value!r}")
    problems = []
    for index, pattern in enumerate(value, 1):
        if not pattern.strip() or pattern.lstrip().startswith("#") or "\x00" in pattern:
            problems.append(f"Entry #{index} of option `exclude` for build hook `pbs` must be a non-empty pattern "
                            f"(not a comment); got {pattern!r}")
            continue
        try:
            GitIgnoreSpec.from_lines([pattern])
        except (ValueError, TypeError, re.error) as error:  # re.error: e.g. a character range "[z-a]"
            problems.append(f"Entry #{index} of option `exclude` for build hook `pbs` is not a valid "
                            f"gitignore-style pattern ({error}); got {pattern!r}")
    if problems:
        raise ValueError("\n".join(problems))
    return tuple(dict.fromkeys(value))


def _check_path(value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:  # no file name holds a NUL
        raise ValueError(f"{where} must be a directory path (a non-empty string); got {value!r}")
    return _expanded(value, where)


def check_cache_dir(value: Any, where: str, root: Path) -> Path:
    """Validate a cache directory (option ``cache-dir``, ``HATCH_PBS_CACHE_DIR``, the CLI's ``--cache-dir``): a
    non-empty path, ``~`` expanded, relative to ``root``, that is a directory or can become one.

    Returns:
        The absolute path.

    Raises:
        ValueError: the complete message: not a path, a ``~user`` naming nobody, or the path, or the nearest part
            of it that exists, is not a directory (``/etc/passwd``, ``/dev/null/x``).
    """
    path = _check_path(value, where)
    path = path if path.is_absolute() else (root / path).resolve()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir():
        return path
    if existing == path:
        raise ValueError(f"{where} must name a directory, but {path} is a file")
    raise ValueError(f"{where} names {path}, which cannot be created: {existing} is not a directory")


def _expanded(value: str, where: str) -> Path:
    """``value`` with a leading ``~`` or ``~user`` expanded."""
    try:
        return Path(value).expanduser()
    except RuntimeError:  # pathlib cannot expand "~user" naming no user of this machine
        raise ValueError(f"{where} starts with ~ but names no user of this machine; got {value!r}") from None


# Known triples are re-exported for documentation generators and the CLI's help text.
__all__ = ["DEFAULT_FLAVOR", "DEFAULT_RELEASE", "KNOWN_TRIPLES", "HookConfig", "parse_hook_config"]
