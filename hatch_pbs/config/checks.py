"""Value checkers of the hook options: each takes the value as TOML gave it (``Any``) and ``where``, the start of
its message (``"Option `flavor` for build hook `pbs`"`` or ``"Environment variable `HATCH_PBS_MIRROR`"``), and
returns the value in the form :class:`~hatch_pbs.config.HookConfig` keeps, or raises ``ValueError`` whose text is
the complete message (one problem a line when a check finds several).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hatch_pbs.config.values import DEFAULT_RELEASE, ENV_OFFLINE, FLAVOR_CHOICES
from hatch_pbs.release.triples import (
    ALL_TARGETS,
    host_triple,
    parse_triple,
    suggest_triple,
)

_PYTHON_VERSION_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3}((a|b|rc)\d{1,2})?)?$")
_RELEASE_RE = re.compile(r"^\d{8}$")
_MACOS_RE = re.compile(r"^(\d{1,2})(?:\.(\d{1,2}))?$")
_MIRROR_SCHEMES = ("http://", "https://", "file://")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def option_where(name: str) -> str:
    """The start of a message about option ``name``: ``"Option `flavor` for build hook `pbs`"``."""
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
    """A release tag (``"20261021"``: eight digits) or ``"latest"``; returned unchanged.

    Raises:
        ValueError: anything else (the message names :data:`DEFAULT_RELEASE` as an example).
    """
    if not isinstance(value, str) or not (value == "latest" or _RELEASE_RE.fullmatch(value)):
        raise ValueError(f'{where} must be a python-build-standalone release tag such as "{DEFAULT_RELEASE}" '
                         f'or "latest"; got {value!r}')
    return value


def check_flavor(value: Any, where: str) -> str:
    """One of :data:`~hatch_pbs.config.values.FLAVOR_CHOICES`, else ``ValueError`` (with a "did you mean")."""
    return check_choice(value, where, FLAVOR_CHOICES)


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
    """A mirror's base URL (``http://``, ``https://`` or ``file://``, everything before ``/{release tag}/`` in an
    asset URL); returned without trailing slashes.

    Raises:
        ValueError: another scheme, a scheme alone, or spaces or control characters in it.
    """
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


def parse_offline(environ: Mapping[str, str]) -> bool:
    """``HATCH_PBS_OFFLINE`` as a boolean (``1/true/yes/on`` or ``0/false/no/off``/unset).

    Raises:
        ValueError: another value (the message names the variable).
    """
    return check_offline_variable(environ.get(ENV_OFFLINE, ""), f"Environment variable `{ENV_OFFLINE}`")


def check_offline_variable(value: str, where: str) -> bool:
    """A boolean environment variable's text: ``1/true/yes/on`` (``True``) or ``0/false/no/off``/blank
    (``False``), any case, surrounding spaces ignored; ``ValueError`` for anything else (shown as given)."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{where} must be one of 1, true, yes, on, 0, false, no, off; got {value!r}")


def check_targets(value: Any, where: str, host: Callable[[], str]) -> tuple[str, ...]:
    """A non-empty array of target triples, ``"host"`` (replaced by ``host()``) or ``"all"`` (expanded to
    :data:`~hatch_pbs.release.triples.ALL_TARGETS`); returns the triples in order, duplicates removed.

    Raises:
        ValueError: not such an array, or one line per bad entry.
    """
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


def check_scripts(value: Any, where: str, project_scripts: Mapping[str, str]) -> tuple[str, ...]:
    """An array of names from ``project_scripts`` (``[project.scripts]`` and ``[project.gui-scripts]``, name ->
    entry point); returns them in order, duplicates removed.

    Raises:
        ValueError: not an array of strings, or names the project does not define.
    """
    known = ", ".join(sorted(project_scripts)) or "none: the project defines no [project.scripts]"
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise ValueError(f"{where} must be an array of script names from [project.scripts] or "
                         f"[project.gui-scripts] ({known}); got {value!r}")
    unknown = [entry for entry in value if entry not in project_scripts]
    if unknown:
        raise ValueError(f"{where} names scripts the project does not define: {', '.join(unknown)}; "
                         f"defined scripts: {known}")
    return tuple(dict.fromkeys(value))


def check_bool(value: Any, where: str) -> bool:
    """A TOML boolean, returned unchanged; ``ValueError`` for anything else (``"true"`` and ``1`` included)."""
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false; got {value!r}")  # noqa: TRY004 (checks raise ValueError)
    return value


def check_requirements(value: Any, where: str) -> Path:
    """The path of a requirements file or a PEP 751 lock file, ``~`` expanded (still relative when given so).

    Raises:
        ValueError: not a non-empty string, a NUL in it, or a ``~user`` naming nobody.
    """
    if not isinstance(value, str) or not value.strip() or "\x00" in value:  # no file name holds a NUL
        raise ValueError(f"{where} must be the path of a requirements file (e.g. \"requirements.txt\") or of a "
                         f"PEP 751 lock file (\"pylock.toml\"); got {value!r}")
    return _expanded(value, where)


def check_timeout(value: Any, where: str) -> float:
    """A number of seconds in (0, 3600], returned as a float; ``ValueError`` otherwise (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
        raise ValueError(f"{where} must be a number of seconds greater than 0 and at most 3600; got {value!r}")
    return float(value)


def check_size(value: Any, where: str) -> int:
    """A whole number of bytes, at least 1 MiB; ``ValueError`` otherwise (booleans and floats included)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 << 20:
        raise ValueError(f"{where} must be a whole number of bytes, at least 1048576 (1 MiB); got {value!r}")
    return value


def check_choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed``, returned unchanged; ``ValueError`` naming them all (and the closest) otherwise."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{where} must be one of {', '.join(map(repr, allowed))}; got {value!r}"
                         f"{did_you_mean(value, allowed)}")
    return value


def check_floor(value: Any, where: str, allowed: tuple[str, ...], library: str) -> str:
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
        older = [floor for floor in allowed if floor_version(floor, "_") < floor_version(bare, "_")]
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


def floor_version(text: str, separator: str) -> tuple[int, int]:
    """``(2, 28)`` for ``"2_28"`` (``separator`` ``"_"``), ``(11, 0)`` for ``"11.0"``."""
    major, minor = text.split(separator)
    return int(major), int(minor)


def check_pyapp(value: Any, where: str) -> str:
    """``"auto"``, ``true`` or ``false``, returned as ``"auto"``, ``"true"`` or ``"false"``
    (:data:`~hatch_pbs.config.values.PYAPP_MODES`); ``ValueError`` otherwise (``"true"`` gets a hint)."""
    if value == "auto" or isinstance(value, bool):
        return value if isinstance(value, str) else str(value).lower()
    hint = ""
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        hint = f" (did you mean {value.strip().lower()}, without quotes?)"
    elif isinstance(value, str):
        hint = did_you_mean(value, ("auto",))
    raise ValueError(f'{where} must be "auto", true or false; got {value!r}{hint}')


def check_exclude(value: Any, where: str) -> tuple[str, ...]:
    """An array of gitignore-style patterns (``pathspec``'s ``gitwildmatch``, as Hatch's own ``exclude``);
    returns them in order, duplicates removed.

    Raises:
        ValueError: not an array of strings, or one line per blank, comment or invalid pattern.
    """
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
    """A non-empty path without NUL, ``~`` expanded."""
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
