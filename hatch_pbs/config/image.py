"""Option ``image``: the table that makes ``hatch build -t app --hooks-only`` also write an OCI image layout archive
(:mod:`hatch_pbs.oci`), validated into an :class:`ImageOptions`.

Keys (each checked, unknown ones refused with the known ones listed):

- ``base``: the base image reference (``registry/repository[:tag][@sha256:...]``, Docker's short forms allowed);
- ``prefix``: the absolute directory in the image holding the artifact (default ``/opt/<project name>``);
- ``entrypoint``: the launcher script the image runs (default the first of option ``scripts``);
- ``workdir``: the image's working directory (default ``prefix``);
- ``user``: the user the image runs as (``name``, ``uid``, ``uid:gid``; default the base image's);
- ``env``: environment variables (a table of strings), over the base image's (``PATH`` gets ``<prefix>/bin``
  first whatever is set here);
- ``labels``: OCI labels (a table of strings), over those made from the project metadata.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The base image when option ``image`` names none: Debian's slim image (glibc, no Python).
DEFAULT_BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
#: The keys of option ``image``, in the order messages list them.
IMAGE_KEYS = ("base", "prefix", "entrypoint", "workdir", "user", "env", "labels")

#: Docker's reference grammar, loosely (github.com/distribution/reference: domain, path components, tag, digest);
#: the registry client parses it exactly when the base is pulled.
_REFERENCE_RE = re.compile(r"^[a-z0-9][a-z0-9._:/-]*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ImageOptions:
    """The validated ``image`` table.

    Attributes:
        base: the base image reference as written (e.g. ``"docker.io/library/debian:bookworm-slim"``).
        prefix: the artifact's directory in the image (absolute, normalized), or ``None`` for ``/opt/<name>``.
        entrypoint: the launcher script the image runs, or ``None`` for the first of option ``scripts``.
        workdir: the working directory, or ``None`` for the prefix.
        user: ``User`` of the image config, or ``None`` to keep the base image's.
        env: variables set over the base image's (name -> value), in the order given.
        labels: labels over the metadata's (name -> value).
    """

    base: str = DEFAULT_BASE_IMAGE
    prefix: str | None = None
    entrypoint: str | None = None
    workdir: str | None = None
    user: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


def check_image(value: Any, where: str, scripts: Mapping[str, str]) -> ImageOptions:
    """The ``image`` table as :class:`ImageOptions`; ``scripts`` are the project's scripts (name -> entry point),
    of which ``entrypoint`` must name one.

    Raises:
        ValueError: not a table, unknown keys, or invalid values; one line per problem, each naming the key
            (``Option `image.base` for build hook `pbs` ...``) and what is allowed.
    """
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a table with the keys {', '.join(IMAGE_KEYS)}, e.g. "
                         f'image = {{ base = "{DEFAULT_BASE_IMAGE}" }}; got {value!r}')
    problems = [f"{where} has an unknown key `{key if key.isprintable() else repr(key)}`; known keys: "
                f"{', '.join(IMAGE_KEYS)}" for key in sorted(set(value) - set(IMAGE_KEYS))]
    checked: dict[str, Any] = {}
    for key, check in _KEY_CHECKS.items():
        if key in value:
            try:
                checked[key] = check(value[key], _key_where(where, key), scripts)
            except ValueError as error:
                problems.append(str(error))
    if problems:
        raise ValueError("\n".join(problems))
    return ImageOptions(**checked)


def _key_where(where: str, key: str) -> str:
    """``"Option `image.base` for build hook `pbs`"`` from ``"Option `image` for build hook `pbs`"``."""
    return where.replace("`image`", f"`image.{key}`", 1)


def _string(value: Any, where: str, shape: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError(f"{where} must be {shape}; got {value!r}")
    return value


def _check_base(value: Any, where: str, scripts: Mapping[str, str]) -> str:  # noqa: ARG001
    shape = f'an image reference such as "{DEFAULT_BASE_IMAGE}" or "gcr.io/distroless/cc-debian12@sha256:..."'
    text = _string(value, where, shape)
    if not _REFERENCE_RE.fullmatch(text):
        raise ValueError(f"{where} must be {shape} (lowercase repository, optional :tag and @sha256 digest); "
                         f"got {value!r}")
    return text


def _check_directory(value: Any, where: str, scripts: Mapping[str, str]) -> str:  # noqa: ARG001
    shape = 'an absolute directory in the image such as "/opt/my-app"'
    text = _string(value, where, shape)
    normalized = posixpath.normpath(text)
    if not text.startswith("/") or ".." in text.split("/") or "\\" in text:
        raise ValueError(f"{where} must be {shape} (no `..`); got {value!r}")
    return normalized


def _check_prefix(value: Any, where: str, scripts: Mapping[str, str]) -> str:
    prefix = _check_directory(value, where, scripts)
    if prefix == "/" or prefix.split("/")[1] in {"bin", "lib", "lib64", "usr", "etc", "proc", "sys", "dev"}:
        raise ValueError(f"{where} must be a directory of its own such as \"/opt/my-app\", not {prefix!r} (the "
                         f"artifact's bin/ and python/ would mix with the base image's system directories)")
    return prefix


def _check_entrypoint(value: Any, where: str, scripts: Mapping[str, str]) -> str:
    known = ", ".join(sorted(scripts)) or "none: the project defines no [project.scripts]"
    text = _string(value, where, f"the name of a script from [project.scripts] ({known})")
    if text not in scripts:
        raise ValueError(f"{where} names a script the project does not define: {text!r}; defined scripts: {known}")
    return text


def _check_user(value: Any, where: str, scripts: Mapping[str, str]) -> str:  # noqa: ARG001
    shape = 'a user as the image config records it: "name", "uid" or "uid:gid" (e.g. "65534:65534")'
    text = _string(value, where, shape)
    if not _USER_RE.fullmatch(text):
        raise ValueError(f"{where} must be {shape}; got {value!r}")
    return text


def _check_strings(value: Any, where: str, shape: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(key, str) and isinstance(entry, str)
                                              for key, entry in value.items()):
        raise ValueError(f"{where} must be {shape}; got {value!r}")
    return dict(value)


def _check_env(value: Any, where: str, scripts: Mapping[str, str]) -> dict[str, str]:  # noqa: ARG001
    variables = _check_strings(value, where, 'a table of strings such as { PORT = "8000" }')
    bad = [name for name in variables if not _ENV_NAME_RE.fullmatch(name)]
    if bad:
        raise ValueError(f"{where} has invalid variable names {', '.join(map(repr, bad))} (letters, digits and _, "
                         f"not starting with a digit)")
    return variables


def _check_labels(value: Any, where: str, scripts: Mapping[str, str]) -> dict[str, str]:  # noqa: ARG001
    labels = _check_strings(value, where, 'a table of strings such as { "org.opencontainers.image.vendor" = "Acme" }')
    if any(not name.strip() for name in labels):
        raise ValueError(f"{where} has an empty label name")
    return labels


_KEY_CHECKS = {"base": _check_base, "prefix": _check_prefix, "entrypoint": _check_entrypoint,
               "workdir": _check_directory, "user": _check_user, "env": _check_env, "labels": _check_labels}

__all__ = ["DEFAULT_BASE_IMAGE", "IMAGE_KEYS", "ImageOptions", "check_image"]
