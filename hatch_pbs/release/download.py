"""HTTP(S) and ``file://`` transfers: the only module that uses httpx.

Downloads stream to disk while the sha256 is computed. Connection errors, timeouts, truncated bodies, HTTP 429 and
5xx responses are retried a bounded number of times, waiting what the server's ``Retry-After`` asks (capped) or
else an exponential back-off; any other HTTP error fails at once. A body cut short is resumed with a ``Range``
request when the server advertised ``Accept-Ranges: bytes`` (and answers 206 for the same representation);
otherwise it restarts from the first byte. Either way the sha256 of the whole file is what is checked.

In offline mode no connection is ever opened (``file://`` URLs still work: they are not network access).

An interrupted build (:mod:`hatch_pbs.interrupts`) stops a transfer at once: every received chunk is a check
point, a read blocked on a silent server (before or after the response headers) is cut short by shutting the
connections' sockets down, and the back-off before a retry is an interruptible wait. The sockets come from httpx's
``trace`` request extension (``connection.connect_tcp.complete`` and ``connection.start_tls.complete`` return the
network stream, whose ``get_extra_info("socket")`` is the socket; https://www.python-httpx.org/advanced/extensions/).

Authenticated mirrors: the token in ``HATCH_PBS_MIRROR_TOKEN`` (sent as ``Authorization: Bearer <token>``), or
else the mirror host's entry in the netrc file (``$NETRC``, default ``~/.netrc``; HTTP basic authentication), is
sent only to requests whose scheme, host and port are the configured mirror's. httpx drops the header when a
redirect leaves that origin, so a redirect target on another host never sees it.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import netrc
import os
import re
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import url2pathname

import httpx

from hatch_pbs import __version__, interrupts
from hatch_pbs.errors import ChecksumError, DownloadError, OfflineError, os_error_cause
from hatch_pbs.release.assets import GITHUB_DOWNLOAD_PREFIX

CHUNK_SIZE = 1 << 20  # bytes read per iteration
PROGRESS_THRESHOLD = 4 << 20  # bytes: smaller downloads get no progress bar
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0  # seconds: the longest wait a server's Retry-After can impose between two tries
SNIFF_SIZE = 512  # bytes kept from the start of a body, to say what a body that failed verification looks like

#: Environment variable holding a bearer token for the configured (non-default) mirror.
ENV_MIRROR_TOKEN = "HATCH_PBS_MIRROR_TOKEN"
#: Environment variable naming the netrc file (default ``~/.netrc``), as curl, requests and pip read it.
ENV_NETRC = "NETRC"

_TIMEOUT_PHASES = {"ConnectTimeout": "connecting", "ReadTimeout": "waiting for data",
                   "WriteTimeout": "sending the request", "PoolTimeout": "waiting for a free connection"}
_CONTENT_RANGE_RE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class Downloader:
    """Fetches URLs with bounded retries.

    Args:
        offline: refuse every ``http(s)://`` request with :class:`~hatch_pbs.errors.OfflineError`.
        attempts: how many times one request is tried in all (>= 1); a resumed download counts each try.
        timeout: seconds allowed for connecting and between two received chunks (option ``timeout``).
        backoff: seconds before the first retry; doubled for each further retry.
        progress: draw a progress bar on stderr; ``None`` means "when stderr is a terminal".
        mirror: the configured mirror (option ``mirror``); credentials are sent to its origin only, and never
            for the default (GitHub) mirror.
        environ: where ``HATCH_PBS_MIRROR_TOKEN`` and ``NETRC`` are read (default ``os.environ``).
        max_retry_after: the longest wait, in seconds, a ``Retry-After`` header (or the back-off) can impose.
    """

    def __init__(self, *, offline: bool = False, attempts: int = 4, timeout: float = 30.0, backoff: float = 0.5,
                 progress: bool | None = None, mirror: str | None = None,
                 environ: Mapping[str, str] | None = None, max_retry_after: float = MAX_RETRY_AFTER) -> None:
        self.offline = offline
        self.attempts = max(1, attempts)
        self.timeout = timeout
        self.backoff = backoff
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.mirror = mirror.rstrip("/") if mirror else None
        self.max_retry_after = max_retry_after
        self._environ = os.environ if environ is None else environ
        self._client: httpx.Client | None = None
        self._bars = _ProgressBars()
        self._lock = threading.Lock()  # downloads of several targets may run in threads at once
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()  # of the client's connections
        # Reentrant: taken by the SIGINT handler (in the main thread) too, see _shut_down_connections.
        self._sockets_lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        self._bars.close()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read_bytes(self, url: str, *, limit: int = 16 << 20) -> bytes:
        """The body of a small file (a catalogue, ``latest-release.json``), at most ``limit`` bytes.

        Raises:
            DownloadError: the request failed after all retries, or the body exceeds ``limit``.
            OfflineError: offline mode and ``url`` needs the network.
        """
        chunks: list[bytes] = []
        size = 0
        for chunk in self._stream(url, label=None, limit=limit):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise DownloadError(f"{url} is larger than {limit} bytes; refusing to read it")
        return b"".join(chunks)

    def download(self, url: str, destination: Path, *, sha256: str, label: str | None = None) -> int:
        """Stream ``url`` into ``destination`` (created or truncated) and verify its sha256.

        A transfer cut short is resumed from the bytes already written when the server supports byte ranges,
        else restarted; the sha256 always covers the whole file.

        Returns:
            The number of bytes written.

        Raises:
            ChecksumError: the bytes do not hash to ``sha256`` (``destination`` then holds them; the caller
                discards it). The message says when the body looks like an HTML or XML page.
            DownloadError: as :meth:`read_bytes`; also when ``destination`` cannot be written (a full disk).
            OfflineError: offline mode and ``url`` needs the network.
            BuildInterrupted: the build was interrupted (``destination`` then holds part of the body).
        """
        label = label or Path(_split(url).path).name
        self._check_allowed(url)
        try:
            with destination.open("wb") as sink:
                transfer = _Transfer(sink, url)
                if _split(url).scheme == "file":
                    for chunk in _read_local(url):
                        interrupts.check()
                        transfer.write(chunk)
                else:
                    for attempt in self._attempts(url):
                        with attempt:
                            self._transfer_http(url, transfer, label)
                        if attempt.succeeded:
                            break
        except OSError as error:  # writing the destination failed: a full disk, a read-only cache directory
            raise DownloadError(f"cannot write {destination} while downloading {url}: "
                                f"{os_error_cause(error, destination)}") from None
        if transfer.digest.hexdigest() != sha256:
            raise ChecksumError(self._mismatch_message(transfer, sha256))
        return transfer.size

    # -- internals -------------------------------------------------------------------------------------------

    def _attempts(self, url: str) -> Iterator[_Attempt]:
        for number in range(1, self.attempts + 1):
            interrupts.check()
            attempt = _Attempt(url, number=number, attempts=self.attempts, timeout=self.timeout)
            yield attempt
            if attempt.succeeded:
                return
            delay = self.backoff * 2 ** (number - 1) if attempt.retry_after is None else attempt.retry_after
            interrupts.wait(min(delay, self.max_retry_after))

    def _check_allowed(self, url: str) -> None:
        scheme = _split(url).scheme
        if scheme == "file":
            return
        if scheme not in ("http", "https"):
            raise DownloadError(f"unsupported URL scheme in {url}; use http://, https:// or file://")
        if self.offline:
            raise OfflineError(f"offline mode (HATCH_PBS_OFFLINE) forbids downloading {url}")

    def _stream(self, url: str, *, label: str | None, limit: int) -> Iterator[bytes]:
        self._check_allowed(url)
        if _split(url).scheme == "file":
            yield from _read_local(url)
            return
        for attempt in self._attempts(url):
            chunks: list[bytes] = []
            with attempt:
                chunks.extend(self._stream_http(url, label, limit))
            if attempt.succeeded:
                yield from chunks
                return

    def _http_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    follow_redirects=True,
                    timeout=httpx.Timeout(self.timeout),
                    # identity: the bytes hashed must be the asset's bytes, never a transfer-compressed form
                    headers={"User-Agent": f"hatch-pbs/{__version__}", "Accept-Encoding": "identity"},
                    auth=_mirror_auth(self.mirror, self._environ),
                )
            return self._client

    def _stream_http(self, url: str, label: str | None, limit: int) -> Iterator[bytes]:
        """The body of ``url``; more than ``limit`` bytes is an error raised before they are all in memory."""
        with interrupts.on_interrupt(self._shut_down_connections), \
                self._http_client().stream("GET", url, extensions={"trace": self._trace}) as response:
            if response.status_code != 200:
                raise _HttpStatus(url, response)
            total = int(response.headers.get("Content-Length", "0") or 0)
            if total > limit:
                raise DownloadError(f"{url} is larger than {limit} bytes; refusing to read it")
            shown = label if self.progress and total >= PROGRESS_THRESHOLD else None
            size = 0
            with self._bars.task(shown, total) as advance:
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    interrupts.check()
                    size += len(chunk)
                    if size > limit:
                        raise DownloadError(f"{url} is larger than {limit} bytes; refusing to read it")
                    advance(len(chunk))
                    yield chunk

    def _transfer_http(self, url: str, transfer: _Transfer, label: str) -> None:
        """One try: the whole file, or the rest of it from ``transfer.size`` when the server allows ranges."""
        headers = {}
        resuming = transfer.size > 0 and transfer.resumable
        if resuming:
            headers["Range"] = f"bytes={transfer.size}-"
            if transfer.validator:
                headers["If-Range"] = transfer.validator
        with interrupts.on_interrupt(self._shut_down_connections), \
                self._http_client().stream("GET", url, headers=headers, extensions={"trace": self._trace}) as response:
            status = response.status_code
            if resuming and status == 206:
                start = _content_range_start(response.headers.get("Content-Range", ""))
                if start != transfer.size:
                    transfer.restart(resumable=False)
                    raise _Retry(f"GET {url} answered the request for bytes {transfer.size}- with "
                                 f"Content-Range {response.headers.get('Content-Range')!r}")
                transfer.resumes += 1
            elif resuming and status == 416:  # the server no longer agrees about the size: start again
                transfer.restart(resumable=False)
                raise _Retry(f"GET {url} refused the range bytes={transfer.size}- (HTTP 416)")
            elif status == 200:
                transfer.restart(resumable=_accepts_ranges(response))
                transfer.validator = _validator(response)
                transfer.content_type = response.headers.get("Content-Type", "")
                transfer.final_url = str(response.url)
            else:
                raise _HttpStatus(url, response)
            total = transfer.size + int(response.headers.get("Content-Length", "0") or 0)
            shown = label if self.progress and total >= PROGRESS_THRESHOLD else None
            with self._bars.task(shown, total) as advance:
                advance(transfer.size)
                # No chunk size: every byte received is written at once, so a cut leaves nothing unwritten that a
                # resumed request would have to fetch again.
                for chunk in response.iter_bytes():
                    interrupts.check()
                    transfer.write(chunk)
                    advance(len(chunk))

    def _trace(self, event: str, info: Mapping[str, object]) -> None:
        """httpx's ``trace`` callback: keeps the socket of every connection the client opens."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            connection = stream.get_extra_info("socket") if stream is not None else None  # type: ignore[attr-defined]
            if isinstance(connection, socket.socket):
                with self._sockets_lock:
                    self._sockets.add(connection)

    def _shut_down_connections(self) -> None:
        """Shut down every open connection, so a read blocked on a silent server returns at once (closing a socket
        from another thread would not wake the read up; shutting it down does). ``socket.socket``'s own shutdown:
        ``ssl.SSLSocket.shutdown`` would also drop the TLS state under the reading thread."""
        with self._sockets_lock:
            connections = list(self._sockets)
        for connection in connections:
            try:
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
            except OSError:  # closed already
                pass

    def _mismatch_message(self, transfer: _Transfer, sha256: str) -> str:
        url = transfer.url
        message = (f"sha256 mismatch for {url}: expected {sha256} (from the release's SHA256SUMS), got "
                   f"{transfer.digest.hexdigest()} ({transfer.size} bytes); the file was not cached.")
        kind = _markup_kind(transfer.head, transfer.content_type)
        if kind is None:
            return message + " A mirror serving another file or an HTML error page causes this."
        served_by = self._source(transfer)
        start = transfer.head.lstrip()[:60].decode("utf-8", "replace")
        return (f"{message} The body looks like {kind}, not an archive (it starts with {start!r}): {served_by} "
                f"answered with an error or sign-in page and status 200. Check the mirror URL (option `mirror` or "
                f"HATCH_PBS_MIRROR) and its credentials ({ENV_MIRROR_TOKEN} or netrc).")

    def _source(self, transfer: _Transfer) -> str:
        """Who served a download: "the mirror X" when the URL is below the configured mirror, else its origin."""
        final = transfer.final_url or transfer.url
        if self.mirror and transfer.url.startswith(self.mirror + "/"):
            source = f"the mirror {self.mirror}"
        else:
            source = _origin_text(transfer.url)
        if _origin_text(final) != _origin_text(transfer.url):
            source += f" (redirected to {_origin_text(final)})"
        return source


def _origin_text(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, without any user name or password it carries."""
    parts = _split(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


class _Transfer:
    """The state of one download across tries: the file being written and what the server said about it."""

    def __init__(self, sink: BinaryIO, url: str) -> None:
        self.sink = sink
        self.url = url
        self.final_url = url
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.resumable = False
        self.validator: str | None = None
        self.content_type = ""
        self.resumes = 0

    def write(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        self.digest.update(chunk)
        if len(self.head) < SNIFF_SIZE:
            self.head += chunk[:SNIFF_SIZE - len(self.head)]
        self.size += len(chunk)

    def restart(self, *, resumable: bool) -> None:
        """Forget the bytes received so far (the next try starts from the first byte)."""
        if self.size:
            self.sink.seek(0)
            self.sink.truncate()
        self.digest = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.resumable = resumable
        if not resumable:
            self.validator = None


def _accepts_ranges(response: httpx.Response) -> bool:
    """Whether a 200 response's body can be resumed with ``Range``: the server says so, and the body is the
    file's own bytes (no content coding)."""
    return (response.headers.get("Accept-Ranges", "").strip().lower() == "bytes"
            and response.headers.get("Content-Encoding", "identity").strip().lower() == "identity")


def _validator(response: httpx.Response) -> str | None:
    """What ``If-Range`` sends so a resumed range comes from the same file: a strong ETag, else Last-Modified."""
    etag = response.headers.get("ETag", "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified") or None


def _content_range_start(header: str) -> int | None:
    match = _CONTENT_RANGE_RE.match(header)
    return int(match.group(1)) if match else None


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date; ``None`` if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _markup_kind(head: bytes, content_type: str) -> str | None:
    """``"HTML"`` or ``"XML"`` when a body (its first bytes, its Content-Type) is a web page, not an archive."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    media = content_type.split(";", 1)[0].strip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<!--")) \
            or media in ("text/html", "application/xhtml+xml"):
        return "HTML"
    if text.startswith(b"<?xml") or media in ("application/xml", "text/xml"):
        return "XML"
    return None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class _MirrorAuth(httpx.Auth):
    """Adds ``Authorization`` to requests for the mirror's origin (scheme, host and port) and to no other.

    httpx runs this once per request; a redirect response is followed with the headers of the original request,
    minus ``Authorization`` when the redirect leaves the origin (``httpx.Client._redirect_headers``).
    """

    def __init__(self, origin: tuple[str, str, int | None], header: str) -> None:
        self.origin = origin
        self.header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if _origin(request.url) == self.origin:
            request.headers["Authorization"] = self.header
        yield request


def _mirror_auth(mirror: str | None, environ: Mapping[str, str]) -> _MirrorAuth | None:
    """Credentials for ``mirror``: ``HATCH_PBS_MIRROR_TOKEN``, else the netrc entry of its host; ``None`` for
    no mirror, a ``file://`` mirror, the default GitHub mirror, or no credentials.

    Raises:
        DownloadError: the netrc file exists but cannot be read or parsed.
    """
    if not mirror or mirror.rstrip("/") == GITHUB_DOWNLOAD_PREFIX:
        return None
    try:
        url = httpx.URL(mirror)
    except httpx.InvalidURL:
        return None
    if url.scheme not in ("http", "https") or not url.host:
        return None
    token = environ.get(ENV_MIRROR_TOKEN, "").strip()
    if token:
        return _MirrorAuth(_origin(url), f"Bearer {token}")
    path = environ.get(ENV_NETRC) or os.path.join(os.path.expanduser("~"), ".netrc")
    if not os.path.isfile(path):
        return None
    try:
        entries = netrc.netrc(path)
    except (netrc.NetrcParseError, OSError) as error:
        raise DownloadError(f"cannot read the netrc file {path} (credentials for the mirror {mirror}): "
                            f"{error}") from None
    entry = entries.hosts.get(url.host)  # the host's own entry only: a `default` entry is not sent anywhere
    if entry is None:
        return None
    login, _account, password = entry
    if not login and not password:
        return None
    credentials = base64.b64encode(f"{login}:{password or ''}".encode()).decode("ascii")
    return _MirrorAuth(_origin(url), f"Basic {credentials}")


class _HttpStatus(Exception):
    def __init__(self, url: str, response: httpx.Response) -> None:
        self.status = response.status_code
        self.retry_after = _retry_after(response.headers.get("Retry-After"))
        super().__init__(f"GET {url} failed: HTTP {self.status} {response.reason_phrase}".rstrip())


class _Retry(Exception):
    """A try that failed in a way worth another try (a range the server would not serve as asked)."""


class _Attempt:
    """One try of a request: a context manager that swallows retryable errors unless it is the last try."""

    def __init__(self, url: str, *, number: int, attempts: int, timeout: float) -> None:
        self.url = url
        self.last = number >= attempts
        self.attempts = attempts
        self.timeout = timeout
        self.succeeded = False
        self.retry_after: float | None = None  # what the server's Retry-After asked for, in seconds

    def __exit__(self, exc_type: type[BaseException] | None, error: BaseException | None, tb: object) -> bool:
        if error is None:
            self.succeeded = True
            return False
        if isinstance(error, KeyboardInterrupt):
            return False
        if interrupts.requested():  # what an interrupted transfer fails with (a socket shut down under httpx)
            raise interrupts.BuildInterrupted from None
        tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        if isinstance(error, _HttpStatus):
            if error.status in RETRY_STATUSES and not self.last:
                self.retry_after = error.retry_after
                return True
            if error.status in RETRY_STATUSES:
                asked = "" if error.retry_after is None else \
                    f"; the server last asked to retry after {error.retry_after:g} seconds"
                raise DownloadError(f"{error} (after {tries}{asked})") from None
            raise DownloadError(str(error)) from None
        if isinstance(error, (httpx.TransportError, _Retry)) and not self.last:
            return True
        if isinstance(error, httpx.TimeoutException):
            phase = _TIMEOUT_PHASES.get(type(error).__name__, "waiting")
            raise DownloadError(
                f"GET {self.url} timed out after {tries}: {phase} took longer than {self.timeout:g} seconds "
                f"(the `timeout` option of build hook `pbs`, in seconds; raise it for a slow mirror)") from None
        if isinstance(error, _Retry):
            raise DownloadError(f"{error} (after {tries})") from None
        # Not retried: an invalid URL (httpx.InvalidURL; UnicodeError from the IDNA encoding of a malformed host
        # name), too many redirects, an undecodable body; or the last try of a transport error.
        if isinstance(error, httpx.TransportError):
            raise DownloadError(f"GET {self.url} failed after {tries}: {type(error).__name__}: {error}") from None
        if isinstance(error, (httpx.HTTPError, httpx.InvalidURL, UnicodeError)):
            raise DownloadError(f"GET {self.url} failed: {type(error).__name__}: {error}") from None
        return False

    def __enter__(self) -> _Attempt:
        return self


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as error:
        raise DownloadError(f"invalid URL {url!r}: {error}") from None


def _read_local(url: str) -> Iterator[bytes]:
    parts = _split(url)
    path = Path(url2pathname(unquote(parts.path)))
    try:
        with path.open("rb") as source:
            yield from iter(lambda: source.read(CHUNK_SIZE), b"")
    except OSError as error:
        raise DownloadError(f"cannot read {url}: {error.strerror or error}") from None


class _ProgressBars:
    """One rich progress display on stderr shared by concurrent downloads (rich allows one live display)."""

    def __init__(self) -> None:
        self._progress: Any = None  # a rich Progress while some download shows a bar
        self._active = 0
        self._lock = threading.Lock()

    @contextmanager
    def task(self, label: str | None, total: int) -> Iterator[Callable[[int], None]]:
        if label is None:
            yield lambda size: None
            return
        with self._lock:
            if self._progress is None:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TextColumn,
                    TransferSpeedColumn,
                )

                self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                          TransferSpeedColumn(), console=Console(stderr=True), transient=True)
                self._progress.start()
            progress = self._progress
            task = progress.add_task(label, total=total)
            self._active += 1
        try:
            yield lambda size: progress.advance(task, size)
        finally:
            with self._lock:
                progress.remove_task(task)
                self._active -= 1
                if self._active == 0:
                    self.close_locked()

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    def close_locked(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
