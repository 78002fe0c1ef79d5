"""Registry credentials from the files podman, skopeo and Docker write (``podman login``, ``docker login``).

Looked up, first hit wins: ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json`` (the
containers-auth.json(5) format, https://github.com/containers/image/blob/main/docs/containers-auth.json.5.md), then
Docker's ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``;
https://docs.docker.com/reference/cli/docker/login/#credential-stores). In each file: ``credHelpers[<host>]``, then
the ``auths`` entry (``auth``: base64 of ``user:password``; or ``username``/``password``; or ``identitytoken``),
then ``credsStore``. A credential helper is ``docker-credential-<name> get`` with the server on standard input,
answering JSON ``{"Username": ..., "Secret": ...}`` (https://github.com/docker/docker-credential-helpers).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hatch_pbs import interrupts
from hatch_pbs.errors import RegistryError

ENV_REGISTRY_AUTH_FILE = "REGISTRY_AUTH_FILE"
ENV_DOCKER_CONFIG = "DOCKER_CONFIG"
#: The keys Docker Hub's credentials may be stored under.
DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
#: The server name Docker passes to credential helpers for Docker Hub.
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
#: The user name Docker stores with an identity token (an OAuth2 refresh token).
IDENTITY_TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or token) for one registry.

    Attributes:
        username, password: sent as HTTP Basic authentication (to the registry or its token service).
        source: where they were found, for messages (``/home/u/.docker/config.json (auths)``).
        identity_token: an OAuth2 refresh token (``identitytoken``), exchanged at the token service; ``None``.
    """

    username: str
    password: str = field(repr=False)
    source: str = ""
    identity_token: str | None = field(default=None, repr=False)


def auth_files(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The files searched, in order (whether they exist or not)."""
    environ = os.environ if environ is None else environ
    files = []
    if environ.get(ENV_REGISTRY_AUTH_FILE):
        files.append(Path(environ[ENV_REGISTRY_AUTH_FILE]).expanduser())
    if environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    docker_dir = Path(environ[ENV_DOCKER_CONFIG]).expanduser() if environ.get(ENV_DOCKER_CONFIG) \
        else Path(environ.get("HOME") or os.path.expanduser("~")) / ".docker"
    files.append(docker_dir / "config.json")
    return files


def find_credentials(host: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for the registry ``host`` (``ghcr.io``, ``127.0.0.1:5000``; Docker Hub as ``docker.io`` or
    ``registry-1.docker.io``), or ``None`` when no file has any.

    Raises:
        RegistryError: a file exists but is not valid JSON or holds a malformed ``auth``; a credential helper it
            names is not installed or fails.
    """
    environ = os.environ if environ is None else environ
    for path in auth_files(environ):
        config = _read_config(path)
        if config is not None:
            found = _from_config(config, host, path, environ)
            if found is not None:
                return found
    return None


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise RegistryError(f"cannot read the registry credentials file {path}: {error.strerror}") from None
    try:
        config = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise RegistryError(f"the registry credentials file {path} is not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise RegistryError(f"the registry credentials file {path} does not hold a JSON object")
    return config


def _keys(host: str) -> tuple[str, ...]:
    """The names ``host``'s entry may be stored under."""
    if host in DOCKER_HUB_KEYS:
        return DOCKER_HUB_KEYS
    return (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/")


def _normalised(key: str) -> str:
    """A key of ``auths`` as a host: ``https://host/v1/`` -> ``host``."""
    key = key.split("://", 1)[-1]
    return key.split("/", 1)[0]


def _matching(table: Mapping[str, Any], host: str) -> Iterator[tuple[str, Any]]:
    keys = _keys(host)
    for key in keys:
        if key in table:
            yield key, table[key]
    hosts = {_normalised(key) for key in keys}
    for key, value in table.items():
        if key not in keys and _normalised(key) in hosts:
            yield key, value


def _from_config(config: Mapping[str, Any], host: str, path: Path, environ: Mapping[str, str]) -> Credentials | None:
    helpers = config.get("credHelpers") or {}
    for _, helper in _matching(helpers, host):
        return _from_helper(str(helper), host, f"{path} (credHelpers)", environ)
    auths = config.get("auths") or {}
    for key, entry in _matching(auths, host):
        found = _from_entry(entry, f"{path} (auths[{key!r}])")
        if found is not None:
            return found
    if config.get("credsStore"):
        return _from_helper(str(config["credsStore"]), host, f"{path} (credsStore)", environ)
    return None


def _from_entry(entry: Any, source: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credentials(IDENTITY_TOKEN_USER, "", source, identity_token=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise RegistryError(f"the `auth` of {source} is not base64 of `user:password`") from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise RegistryError(f"the `auth` of {source} is not base64 of `user:password` (no ':')")
        return Credentials(username, password, source)
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password") or ""), source)
    return None


def _from_helper(name: str, host: str, source: str, environ: Mapping[str, str]) -> Credentials | None:
    """Ask the credential helper ``docker-credential-<name>``; ``None`` when it has nothing for ``host``."""
    program = f"docker-credential-{name}"
    executable = shutil.which(program, path=environ.get("PATH"))
    if executable is None:
        raise RegistryError(f"the credential helper {program} named by {source} for {host} is not installed "
                            f"(not found on PATH)")
    server = DOCKER_HUB_SERVER if host in DOCKER_HUB_KEYS else host
    try:
        completed = interrupts.run([executable, "get"], env=dict(environ), input_text=server)
    except OSError as error:
        raise RegistryError(f"cannot run the credential helper {executable} ({source}): {error}") from None
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()
        if "credentials not found" in output.lower():
            return None
        raise RegistryError(f"the credential helper {program} ({source}) failed for {host} (exit status "
                            f"{completed.returncode}): {output.splitlines()[-1] if output else 'no output'}")
    try:
        answer = json.loads(completed.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RegistryError(f"the credential helper {program} ({source}) did not answer JSON with Username and "
                            f"Secret for {host}") from None
    if username == IDENTITY_TOKEN_USER:
        return Credentials(username, "", f"{source}: {program}", identity_token=secret)
    return Credentials(username, secret, f"{source}: {program}")


__all__ = ["ENV_DOCKER_CONFIG", "ENV_REGISTRY_AUTH_FILE", "Credentials", "auth_files", "find_credentials"]
