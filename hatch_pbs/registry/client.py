"""An HTTP client of the OCI distribution API (https://github.com/opencontainers/distribution-spec/blob/main/spec.md):
manifests, blobs, uploads and the referrers API, over one :class:`httpx.Client`.

Scheme: HTTPS, except plain HTTP for loopback hosts (``localhost``, ``127.0.0.0/8``, ``::1``) and for the hosts
(``host`` or ``host:port``) listed, comma-separated, in ``HATCH_PBS_INSECURE_REGISTRIES``.

Authentication (https://distribution.github.io/distribution/spec/auth/token/): a request answered 401 is retried
once with what its ``WWW-Authenticate`` challenge asks. ``Bearer realm=...,service=...,scope=...``: a token is
fetched from the realm (GET with ``service`` and ``scope``, HTTP Basic with the registry's credentials
(:mod:`hatch_pbs.registry.credentials`) if there are some, anonymous otherwise; an identity token is exchanged with
a POST, https://distribution.github.io/distribution/spec/auth/oauth/), read from the JSON ``token`` or
``access_token``, and kept per (host, scope). ``Basic realm=...``: the credentials are sent.

Connection errors and HTTP 429/5xx are retried (:data:`ATTEMPTS` tries in all, with a doubling back-off); any other
failure raises :class:`~hatch_pbs.errors.RegistryError` at once, with a one-line message naming the registry, the
repository and the HTTP status.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hatch_pbs import __version__, interrupts
from hatch_pbs.atomic import publishing_file
from hatch_pbs.errors import OfflineError, RegistryError, os_error_cause
from hatch_pbs.registry.credentials import Credentials, auth_files, find_credentials
from hatch_pbs.registry.descriptors import MANIFEST_ACCEPT, OCI_INDEX, sha256_digest
from hatch_pbs.registry.reference import ImageReference

#: Environment variable listing registries (``host`` or ``host:port``, comma-separated) reached over plain HTTP.
ENV_INSECURE_REGISTRIES = "HATCH_PBS_INSECURE_REGISTRIES"
#: Tries of one request in all (connection errors, HTTP 429 and 5xx are retried).
ATTEMPTS = 3
#: Seconds before the first retry; doubled for each further one.
BACKOFF = 0.5
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CHUNK_SIZE = 1 << 20  # bytes
#: The largest manifest this client reads, in bytes (the distribution spec lets registries refuse over 4 MiB).
MAX_MANIFEST_SIZE = 4 << 20

_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


@dataclass(frozen=True)
class FetchedManifest:
    """A manifest or index as served: its ``content`` (bytes), ``media_type`` and ``digest`` (``sha256:...``)."""

    content: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class PushedManifest:
    """A manifest accepted by the registry: its ``digest`` and the ``OCI-Subject`` header (the subject's digest
    when the registry indexes referrers, distribution-spec "Pushing Manifests with Subject"; else ``None``)."""

    digest: str
    subject: str | None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (``name``, ``name:port``, ``[v6]:port``) is ``localhost``, in 127.0.0.0/8 or ``::1``."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def registry_base_url(host: str, environ: Mapping[str, str] | None = None) -> str:
    """``https://<host>``, or ``http://<host>`` for a loopback host or one listed in
    ``HATCH_PBS_INSECURE_REGISTRIES`` (as ``host:port`` or as its bare ``host``)."""
    environ = os.environ if environ is None else environ
    insecure = {entry.strip().lower() for entry in environ.get(ENV_INSECURE_REGISTRIES, "").split(",")
                if entry.strip()}
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if is_loopback(host) or host.lower() in insecure or bare.lower() in insecure:
        return f"http://{host}"
    return f"https://{host}"


class RegistryClient:
    """A client of one or more registries (a context manager; one connection pool).

    Args:
        timeout: seconds allowed for connecting and between two received chunks.
        offline: refuse every request with :class:`~hatch_pbs.errors.OfflineError`.
        environ: where ``HATCH_PBS_INSECURE_REGISTRIES`` and the credentials files' variables are read
            (default ``os.environ``).
        attempts: tries of one request in all.
    """

    def __init__(self, *, timeout: float = 30.0, offline: bool = False, environ: Mapping[str, str] | None = None,
                 attempts: int = ATTEMPTS) -> None:
        self.timeout = timeout
        self.offline = offline
        self.attempts = max(1, attempts)
        self._environ = os.environ if environ is None else environ
        self._client = httpx.Client(follow_redirects=True, timeout=httpx.Timeout(timeout),
                                    headers={"User-Agent": f"hatch-pbs/{__version__}"})
        self._authorization: dict[tuple[str, str], str] = {}  # (host, scope) -> Authorization header
        self._credentials: dict[str, Credentials | None] = {}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def base_url(self, host: str) -> str:
        """The URL prefix of ``host``'s API requests (see :func:`registry_base_url`)."""
        return registry_base_url(host, self._environ)

    # -- manifests -----------------------------------------------------------------------------------------------

    def get_manifest(self, reference: ImageReference, tag_or_digest: str | None = None) -> FetchedManifest:
        """The manifest or index ``tag_or_digest`` (default: the reference's digest, else its tag) of the
        reference's repository; fetched by digest, its sha256 is verified.

        Raises:
            RegistryError: the request fails (404: no such manifest), or the content does not match the digest.
            OfflineError: offline mode.
        """
        fetched = self._fetch_manifest(reference, tag_or_digest or reference.pull_reference, missing_ok=False)
        assert fetched is not None
        return fetched

    def find_manifest(self, reference: ImageReference, tag_or_digest: str) -> FetchedManifest | None:
        """As :meth:`get_manifest`, but ``None`` when the registry has no such manifest (404)."""
        return self._fetch_manifest(reference, tag_or_digest, missing_ok=True)

    def _fetch_manifest(self, reference: ImageReference, wanted: str, *, missing_ok: bool) -> FetchedManifest | None:
        what = f"manifest {wanted}"
        response = self._send("GET", reference, f"/manifests/{wanted}", what=what,
                              headers={"Accept": MANIFEST_ACCEPT}, expected=(200, 404) if missing_ok else (200,))
        if response.status_code == 404:
            return None
        content = response.content
        if len(content) > MAX_MANIFEST_SIZE:
            raise RegistryError(f"the {what} of {reference.name} is larger than {MAX_MANIFEST_SIZE} bytes")
        digest = sha256_digest(content)
        if wanted.startswith("sha256:") and digest != wanted:
            raise RegistryError(f"the registry {reference.registry} served {what} of {reference.repository} with "
                                f"the digest {digest}")
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        return FetchedManifest(content, media_type, digest)

    def put_manifest(self, reference: ImageReference, tag_or_digest: str, content: bytes,
                     media_type: str) -> PushedManifest:
        """Store ``content`` (a manifest or index of ``media_type``) under ``tag_or_digest``.

        Raises:
            RegistryError: the registry refuses it (the message holds the registry's own error), or answers
                with another digest.
            OfflineError: offline mode.
        """
        digest = sha256_digest(content)
        response = self._send("PUT", reference, f"/manifests/{tag_or_digest}", what=f"manifest {tag_or_digest}",
                              push=True, headers={"Content-Type": media_type}, body=lambda: content,
                              expected=(200, 201))
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"the registry {reference.registry} stored the manifest {tag_or_digest} of "
                                f"{reference.repository} as {answered}, not {digest}")
        return PushedManifest(digest, response.headers.get("OCI-Subject"))

    def get_referrers(self, reference: ImageReference, digest: str) -> dict[str, Any] | None:
        """The referrers API's image index of the manifests whose ``subject`` is ``digest``, or ``None`` when the
        registry does not support the API (404; distribution-spec "Listing Referrers").

        Raises:
            RegistryError: another failure. OfflineError: offline mode.
        """
        response = self._send("GET", reference, f"/referrers/{digest}", what=f"referrers of {digest}",
                              headers={"Accept": OCI_INDEX}, expected=(200, 404))
        if response.status_code == 404 or not response.headers.get("Content-Type", "").startswith(OCI_INDEX):
            return None
        try:
            document = response.json()
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    # -- blobs ---------------------------------------------------------------------------------------------------

    def blob_exists(self, reference: ImageReference, digest: str, *, push: bool = False) -> bool:
        """Whether the repository holds the blob ``digest`` (HEAD; ``push``: ask for a push token already).

        Raises:
            RegistryError: a failure other than 404. OfflineError: offline mode.
        """
        response = self._send("HEAD", reference, f"/blobs/{digest}", what=f"blob {digest}", push=push,
                              expected=(200, 404))
        return response.status_code == 200

    def download_blob(self, reference: ImageReference, digest: str, destination: Path) -> int:
        """Stream the blob ``digest`` into ``destination``, published atomically only when its sha256 matches.

        Returns:
            Its size in bytes.

        Raises:
            RegistryError: the request fails, the bytes do not match ``digest`` (nothing is left behind), or
                ``destination`` cannot be written.
            OfflineError: offline mode.
        """
        what = f"blob {digest}"
        response = self._send("GET", reference, f"/blobs/{digest}", what=what, stream=True)
        try:
            with publishing_file(destination, mode=0o644) as temporary, temporary.open("wb") as sink:
                hasher, size = hashlib.sha256(), 0
                for chunk in self._chunks(response, reference, what):
                    interrupts.check()
                    sink.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
                if f"sha256:{hasher.hexdigest()}" != digest:
                    raise RegistryError(f"the {what} of {reference.name} from {reference.registry} does not match "
                                        f"its digest: got sha256:{hasher.hexdigest()} ({size} bytes); not kept")
        except OSError as error:
            raise RegistryError(f"cannot write {destination} (the {what} of {reference.name}): "
                                f"{os_error_cause(error, destination)}") from None
        finally:
            response.close()
        return size

    def upload_blob(self, reference: ImageReference, digest: str, size: int,
                    body: Callable[[], Iterable[bytes]]) -> None:
        """Upload the blob ``digest`` of ``size`` bytes, monolithically: POST an upload session, then PUT the
        whole body to its location with ``?digest=`` (distribution-spec "Pushing a blob monolithically").
        ``body`` gives the bytes, as an iterable of chunks; it is called again when the PUT is retried.

        Raises:
            RegistryError: the registry refuses the upload (a digest it computes otherwise, a quota).
            OfflineError: offline mode.
        """
        what = f"blob {digest}"
        started = self._send("POST", reference, "/blobs/uploads/", what=f"upload of {what}", push=True,
                             expected=(202,))
        location = started.headers.get("Location")
        if not location:
            raise RegistryError(f"the registry {reference.registry} started an upload to {reference.repository} "
                                f"without a Location header")
        url = httpx.URL(str(started.url)).join(location).copy_merge_params({"digest": digest})
        self._send("PUT", reference, str(url), what=f"upload of {what}", push=True, expected=(201,),
                   headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                   body=body)

    # -- requests ------------------------------------------------------------------------------------------------

    def _chunks(self, response: httpx.Response, reference: ImageReference, what: str) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(CHUNK_SIZE)
        except httpx.HTTPError as error:
            raise RegistryError(f"the {what} of {reference.name} from {reference.registry} was cut short: "
                                f"{type(error).__name__}: {error}") from None

    def _send(self, method: str, reference: ImageReference, path: str, *, what: str, push: bool = False,
              headers: Mapping[str, str] | None = None, body: Callable[[], bytes | Iterable[bytes]] | None = None,
              stream: bool = False, expected: tuple[int, ...] = (200,)) -> httpx.Response:
        """One API request, authorised (once, on a 401) and retried; the response has one of ``expected``
        statuses (a streamed one is the caller's to close). ``path`` is below ``/v2/<repository>`` or a URL."""
        host = reference.api_host
        if self.offline:
            raise OfflineError(f"offline mode (HATCH_PBS_OFFLINE) forbids contacting the registry {host} "
                               f"({method} {what} of {reference.name})")
        url = path if "://" in path else f"{self.base_url(host)}/v2/{reference.repository}{path}"
        scope = f"repository:{reference.repository}:{'pull,push' if push else 'pull'}"
        authorised = False
        attempt = 0
        while True:
            attempt += 1
            response = self._try(method, url, host, scope, headers, body, stream, last=attempt >= self.attempts)
            if response is None:
                interrupts.wait(BACKOFF * 2 ** (attempt - 1))
                continue
            status = response.status_code
            if status == 401 and not authorised:
                challenge = response.headers.get("WWW-Authenticate", "")
                response.close()
                self._authorise(reference, scope, challenge)
                authorised, attempt = True, attempt - 1
                continue
            if status in RETRY_STATUSES and attempt < self.attempts:
                response.close()
                interrupts.wait(BACKOFF * 2 ** (attempt - 1))
                continue
            if status not in expected:
                raise self._status_error(response, method, reference, what)
            return response

    def _try(self, method: str, url: str, host: str, scope: str, headers: Mapping[str, str] | None,
             body: Callable[[], bytes | Iterable[bytes]] | None, stream: bool, *, last: bool) -> httpx.Response | None:
        """One try; ``None`` after a connection error worth another try."""
        interrupts.check()
        sent = dict(headers or {})
        authorization = self._authorization.get((host, scope))
        if authorization:
            sent["Authorization"] = authorization
        content = body() if body is not None else None
        request = self._client.build_request(method, url, headers=sent, content=content)
        try:
            return self._client.send(request, stream=stream)
        except httpx.TransportError as error:
            if not last:
                return None
            raise RegistryError(f"cannot reach the registry {host} ({method} {httpx.URL(url).path}): "
                                f"{type(error).__name__}: {error or 'no details'}") from None

    def _status_error(self, response: httpx.Response, method: str, reference: ImageReference,
                      what: str) -> RegistryError:
        status = response.status_code
        try:
            response.read()
            detail = _registry_message(response)
        finally:
            response.close()
        where = f"{reference.registry} (repository {reference.repository})"
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            verb = "authentication failed" if status == 401 else "access denied"
            return RegistryError(f"{verb} for {what} at the registry {where}, HTTP {status} "
                                 f"({self._credentials_text(reference.api_host)}){suffix}")
        if status == 404:
            return RegistryError(f"no such {what} at the registry {where} (HTTP 404){suffix}")
        return RegistryError(f"{method} {what} failed at the registry {where}: HTTP {status} "
                             f"{response.reason_phrase}{suffix}".rstrip())

    # -- authentication ------------------------------------------------------------------------------------------

    def credentials(self, host: str) -> Credentials | None:
        """The credentials for ``host`` (:func:`~hatch_pbs.registry.credentials.find_credentials`), looked up once.

        Raises:
            RegistryError: a credentials file or helper fails.
        """
        if host not in self._credentials:
            self._credentials[host] = find_credentials(host, self._environ)
        return self._credentials[host]

    def _credentials_text(self, host: str) -> str:
        credentials = self._credentials.get(host)
        if credentials is not None:
            return f"credentials from {credentials.source}"
        searched = ", ".join(str(path) for path in auth_files(self._environ))
        return f"no credentials for {host} in {searched}"

    def _authorise(self, reference: ImageReference, scope: str, challenge: str) -> None:
        """Answer the ``WWW-Authenticate`` ``challenge`` of a 401: keep the Authorization header to retry with."""
        host = reference.api_host
        scheme, _, rest = challenge.strip().partition(" ")
        params = {match.group(1).lower(): match.group(2) if match.group(2) is not None else match.group(3)
                  for match in _CHALLENGE_PARAM.finditer(rest)}
        credentials = self.credentials(host)
        if scheme.lower() == "basic":
            if credentials is None or credentials.identity_token:
                raise RegistryError(f"the registry {host} asks for a user name and password (HTTP Basic) for "
                                    f"{reference.repository} and there are none ({self._credentials_text(host)}); "
                                    f"log in with `docker login {host}` or `podman login {host}`")
            self._authorization[(host, scope)] = _basic(credentials)
        elif scheme.lower() == "bearer" and params.get("realm"):
            token = self._fetch_token(reference, params, scope, credentials)
            self._authorization[(host, scope)] = f"Bearer {token}"
        else:
            raise RegistryError(f"the registry {host} answered HTTP 401 for {reference.repository} with an "
                                f"unsupported challenge {challenge!r}")

    def _fetch_token(self, reference: ImageReference, params: Mapping[str, str], scope: str,
                     credentials: Credentials | None) -> str:
        """A bearer token from the challenge's realm (the token auth spec, "Requesting a Token")."""
        host, realm = reference.api_host, params["realm"]
        wanted = {"service": params.get("service", host), "scope": params.get("scope") or scope}
        try:
            if credentials is not None and credentials.identity_token:
                form = {**wanted, "grant_type": "refresh_token", "refresh_token": credentials.identity_token,
                        "client_id": "hatch-pbs"}
                response = self._client.post(realm, data=form)
            else:
                headers = {"Authorization": _basic(credentials)} if credentials is not None else {}
                response = self._client.get(realm, params=wanted, headers=headers)
        except httpx.TransportError as error:
            raise RegistryError(f"cannot reach the token service {httpx.URL(realm).host} of the registry {host}: "
                                f"{type(error).__name__}: {error}") from None
        if response.status_code != 200:
            verb = "authentication failed" if response.status_code in (401, 403) else "the token request failed"
            raise RegistryError(f"{verb} at the token service {realm} of the registry {host} for "
                                f"{reference.repository}: HTTP {response.status_code} "
                                f"({self._credentials_text(host)})")
        try:
            answer = response.json()
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service {realm} of the registry {host} answered without a token")
        return token


def _basic(credentials: Credentials) -> str:
    """The HTTP Basic ``Authorization`` header of ``credentials`` (RFC 7617)."""
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _registry_message(response: httpx.Response) -> str:
    """The first message of the registry's JSON error body (``{"errors": [{"code", "message"}]}``), or ``""``."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return " ".join(str(part) for part in (first.get("code"), first.get("message")) if part)
    except (ValueError, AttributeError, IndexError, TypeError, UnicodeDecodeError):
        return ""


__all__ = ["ENV_INSECURE_REGISTRIES", "FetchedManifest", "PushedManifest", "RegistryClient", "is_loopback",
           "registry_base_url"]
