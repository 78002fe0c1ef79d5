"""HTTP(S) and ``file://`` transfers: the only module that uses httpx.

Downloads stream to disk while the sha256 is computed; connection errors, truncated bodies, HTTP 429 and 5xx
responses are retried a bounded number of times with exponential back-off; any other HTTP error fails at once.
In offline mode no connection is ever opened (``file://`` URLs still work: they are not network access).
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit
from urllib.request import url2pathname

import httpx

from hatch_pbs import __version__
from hatch_pbs.errors import ChecksumError, DownloadError, OfflineError

CHUNK_SIZE = 1 << 20  # bytes read per iteration
PROGRESS_THRESHOLD = 4 << 20  # bytes: smaller downloads get no progress bar
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Downloader:
    """Fetches URLs with bounded retries.

    Args:
        offline: refuse every ``http(s)://`` request with :class:`~hatch_pbs.errors.OfflineError`.
        attempts: how many times one request is tried in all (>= 1).
        timeout: seconds allowed for connecting and between two received chunks.
        backoff: seconds before the first retry; doubled for each further retry.
        progress: draw a progress bar on stderr; ``None`` means "when stderr is a terminal".
    """

    def __init__(self, *, offline: bool = False, attempts: int = 4, timeout: float = 30.0, backoff: float = 0.5,
                 progress: bool | None = None) -> None:
        self.offline = offline
        self.attempts = max(1, attempts)
        self.timeout = timeout
        self.backoff = backoff
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._client: httpx.Client | None = None
        self._bars = _ProgressBars()
        self._lock = threading.Lock()  # downloads of several targets may run in threads at once

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
        for chunk in self._stream(url, label=None):
            chunks.append(chunk)
            if sum(map(len, chunks)) > limit:
                raise DownloadError(f"{url} is larger than {limit} bytes; refusing to read it")
        return b"".join(chunks)

    def download(self, url: str, destination: Path, *, sha256: str, label: str | None = None) -> int:
        """Stream ``url`` into ``destination`` (created or truncated) and verify its sha256.

        Returns:
            The number of bytes written.

        Raises:
            ChecksumError: the bytes do not hash to ``sha256`` (``destination`` then holds them; the caller
                discards it).
            DownloadError, OfflineError: as :meth:`read_bytes`.
        """
        for attempt in self._attempts(url):
            with attempt, destination.open("wb") as sink:
                digest = hashlib.sha256()
                size = 0
                for chunk in self._stream(url, label=label or Path(_split(url).path).name, retry=False):
                    digest.update(chunk)
                    sink.write(chunk)
                    size += len(chunk)
            if attempt.succeeded:
                break
        if digest.hexdigest() != sha256:
            raise ChecksumError(
                f"sha256 mismatch for {url}: expected {sha256} (from the release's SHA256SUMS), got "
                f"{digest.hexdigest()} ({size} bytes); the file was not cached. A mirror serving another file or "
                f"an HTML error page causes this."
            )
        return size

    # -- internals -------------------------------------------------------------------------------------------

    def _attempts(self, url: str) -> Iterator[_Attempt]:
        for number in range(1, self.attempts + 1):
            attempt = _Attempt(url, last=number == self.attempts)
            yield attempt
            if attempt.succeeded:
                return
            time.sleep(self.backoff * 2 ** (number - 1))

    def _stream(self, url: str, *, label: str | None, retry: bool = True) -> Iterator[bytes]:
        scheme = _split(url).scheme
        if scheme == "file":
            yield from _read_local(url)
            return
        if scheme not in ("http", "https"):
            raise DownloadError(f"unsupported URL scheme in {url}; use http://, https:// or file://")
        if self.offline:
            raise OfflineError(f"offline mode (HATCH_PBS_OFFLINE) forbids downloading {url}")
        if not retry:
            yield from self._stream_http(url, label)
            return
        for attempt in self._attempts(url):
            chunks: list[bytes] = []
            with attempt:
                chunks.extend(self._stream_http(url, label))
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
                )
            return self._client

    def _stream_http(self, url: str, label: str | None) -> Iterator[bytes]:
        with self._http_client().stream("GET", url) as response:
            if response.status_code != 200:
                raise _HttpStatus(url, response.status_code, response.reason_phrase)
            total = int(response.headers.get("Content-Length", "0") or 0)
            shown = label if self.progress and total >= PROGRESS_THRESHOLD else None
            with self._bars.task(shown, total) as advance:
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    advance(len(chunk))
                    yield chunk


class _HttpStatus(Exception):
    def __init__(self, url: str, status: int, reason: str) -> None:
        self.status = status
        super().__init__(f"GET {url} failed: HTTP {status} {reason}".rstrip())


class _Attempt:
    """One try of a request: a context manager that swallows retryable errors unless it is the last try."""

    def __init__(self, url: str, *, last: bool) -> None:
        self.url = url
        self.last = last
        self.succeeded = False

    def __enter__(self) -> _Attempt:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, error: BaseException | None, tb: object) -> bool:
        if error is None:
            self.succeeded = True
            return False
        if isinstance(error, _HttpStatus):
            if error.status in RETRY_STATUSES and not self.last:
                return True
            raise DownloadError(str(error)) from None
        if isinstance(error, httpx.TransportError) and not self.last:
            return True
        # Not retried: an invalid URL (httpx.InvalidURL; UnicodeError from the IDNA encoding of a malformed host
        # name), too many redirects, an undecodable body; or the last try of a transport error.
        if isinstance(error, (httpx.HTTPError, httpx.InvalidURL, UnicodeError)):
            raise DownloadError(f"GET {self.url} failed: {type(error).__name__}: {error}") from None
        return False


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
        self._progress = None
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
                from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

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
