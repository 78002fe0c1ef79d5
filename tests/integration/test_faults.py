"""Server faults injected by the loopback ``ReleaseServer`` (issue 4, "Faults and bad input"): bodies cut short and
resumed with ``Range``, stalls past the ``timeout`` option, 429/503 with ``Retry-After``, wrong ``Content-Length``,
an HTML page served with status 200. Every fault is real HTTP over 127.0.0.1; nothing is mocked."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs.errors import ChecksumError, DownloadError
from hatch_pbs.release.cache import Cache
from hatch_pbs.release.download import MAX_RETRY_AFTER, Downloader, _retry_after
from hatch_pbs.release.fetch import fetch_asset, load_catalogue
from hatch_pbs.release.resolve import ResolvedAsset, select_asset

BLOB = "blob.bin"
DATA = random.Random(4).randbytes((3 << 20) + 12345)  # several read chunks; not a multiple of anything
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(scope="module")
def files_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    (root / "rel").mkdir()
    (root / "rel" / BLOB).write_bytes(DATA)
    return root


@pytest.fixture
def server(files_root: Path) -> Iterator[ReleaseServer]:
    with ReleaseServer(files_root) as served:
        yield served


def client(**options: object) -> Downloader:
    settings: dict[str, object] = {"attempts": 4, "backoff": 0, "timeout": 10, "progress": False}
    settings.update(options)
    return Downloader(**settings)  # type: ignore[arg-type]


def fetch(server: ReleaseServer, tmp_path: Path, **options: object) -> bytes:
    destination = tmp_path / "out.bin"
    with client(**options) as downloader:
        assert downloader.download(server.url(f"rel/{BLOB}"), destination, sha256=SHA) == len(DATA)
    return destination.read_bytes()


# --------------------------------------------------------------------------------------------------------------
# A body cut short: resumed with Range when the server supports it, else restarted


def range_starts(server: ReleaseServer) -> list[int | None]:
    """The first byte each GET of the blob asked for (``None``: no Range header)."""
    starts: list[int | None] = []
    for headers in server.headers_of(BLOB):
        value = headers.get("range")
        starts.append(None if value is None else int(value.removeprefix("bytes=").removesuffix("-")))
    return starts


def test_body_cut_by_a_close_is_resumed_from_the_last_byte_received(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "truncate")
    assert fetch(server, tmp_path) == DATA
    first, second = server.headers_of(BLOB)
    assert "range" not in first
    assert second["range"] == f"bytes={len(DATA) // 2}-"  # exactly the missing half was asked for
    assert second["if-range"].startswith('"')  # ... of the same file (the strong ETag of the first response)


def test_body_cut_by_a_reset_is_resumed_with_a_range_request(server: ReleaseServer, tmp_path: Path) -> None:
    """A TCP reset may discard bytes the kernel had received but not handed over: the resumed range starts
    somewhere in the first half, where the written bytes end."""
    server.add_fault(BLOB, "reset-after-half")
    assert fetch(server, tmp_path) == DATA
    starts = range_starts(server)
    assert starts[0] is None and len(starts) == 2
    assert starts[1] is not None and 0 < starts[1] <= len(DATA) // 2, starts


def test_several_cuts_resume_from_where_each_stopped(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "truncate", times=3)
    assert fetch(server, tmp_path) == DATA
    half = len(DATA) // 2
    quarter = (len(DATA) - half) // 2
    eighth = (len(DATA) - half - quarter) // 2
    assert range_starts(server) == [None, half, half + quarter, half + quarter + eighth]


def test_cut_body_restarts_from_zero_without_range_support(files_root: Path, tmp_path: Path) -> None:
    with ReleaseServer(files_root, ranges=False) as server:
        server.add_fault(BLOB, "reset-after-half")
        assert fetch(server, tmp_path) == DATA
        assert [headers.get("range") for headers in server.headers_of(BLOB)] == [None, None]


def test_server_ignoring_the_range_restarts_cleanly(server: ReleaseServer, tmp_path: Path) -> None:
    """Accept-Ranges advertised, then a 200 with the whole file for the range request: the bytes already written
    are dropped, not doubled."""
    server.add_fault(BLOB, "truncate")
    server.add_fault(BLOB, "ignore-range")
    assert fetch(server, tmp_path) == DATA
    assert server.headers_of(BLOB)[1]["range"] == f"bytes={len(DATA) // 2}-"
    assert server.request_count(BLOB) == 2


def test_persistent_cuts_fail_after_the_attempts(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "reset-after-half", times=10)
    with client(attempts=3) as downloader, pytest.raises(DownloadError, match="after 3 attempts") as caught:
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=SHA)
    assert not isinstance(caught.value, ChecksumError)
    assert server.request_count(BLOB) == 3


# --------------------------------------------------------------------------------------------------------------
# Wrong Content-Length


def test_content_length_longer_than_the_body_is_retried(server: ReleaseServer, tmp_path: Path) -> None:
    """The whole file arrives but the declared length promised 1 KiB more: an incomplete body. The range request
    for the "rest" is unsatisfiable (416), so the download starts over and succeeds."""
    server.add_fault(BLOB, "length-long")
    assert fetch(server, tmp_path) == DATA
    assert [headers.get("range") for headers in server.headers_of(BLOB)] == [None, f"bytes={len(DATA)}-", None]


def test_content_length_longer_than_the_body_every_time_fails(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "length-long", times=10)
    with client(attempts=3) as downloader, pytest.raises(DownloadError) as caught:
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=SHA)
    assert not isinstance(caught.value, ChecksumError)


def test_content_length_shorter_than_the_body_is_a_checksum_error(server: ReleaseServer, tmp_path: Path) -> None:
    """Only the declared length is read (the rest is never taken for the next response): the sha256 fails."""
    server.add_fault(BLOB, "length-short")
    with client() as downloader, pytest.raises(ChecksumError, match=f"got .* \\({len(DATA) - 1024} bytes\\)"):
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=SHA)
    with client() as downloader:  # the connection is not reused with stray bytes in it
        assert downloader.read_bytes(server.url(f"rel/{BLOB}")) == DATA


@pytest.mark.parametrize("fault", ["length-long", "length-short"])
def test_wrong_content_length_never_publishes_a_cache_entry(release_server: ReleaseServer,
                                                            fake_release: FakeRelease, tmp_path: Path,
                                                            fault: str) -> None:
    cache = Cache(tmp_path / "cache")
    mirror = release_server.base_url
    with client(attempts=2) as downloader:
        catalogue = load_catalogue(cache, downloader, mirror, fake_release.tag)
        asset, sha256 = select_asset(catalogue, target=fake_release.triple, flavor="install_only",
                                     python_version=fake_release.python_version)
        release_server.add_fault(asset.file_name, fault, times=2)
        with pytest.raises(DownloadError):
            fetch_asset(cache, downloader, ResolvedAsset(asset, sha256, asset.url(mirror)))
    entry = cache.asset_path(sha256, asset.file_name)
    assert not entry.exists()
    assert [path.name for path in entry.parent.iterdir() if not path.name.endswith(".lock")] == []


# --------------------------------------------------------------------------------------------------------------
# An HTML page served with status 200


def test_html_page_with_200_is_named_in_the_checksum_error(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "html-200")
    with client(mirror=f"{server.base_url}/rel") as downloader, pytest.raises(ChecksumError) as caught:
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=SHA)
    message = str(caught.value)
    assert "looks like HTML, not an archive" in message
    assert "<!DOCTYPE html>" in message
    assert f"the mirror {server.base_url}/rel answered with an error or sign-in page and status 200" in message
    assert SHA in message  # the expected sha256 (from SHA256SUMS)
    assert server.request_count(BLOB) == 1  # a wrong body is not retried


def test_html_page_without_a_mirror_names_the_server(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "html-200")
    with client() as downloader, pytest.raises(ChecksumError, match=f"HTML.*{server.base_url} answered"):
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=SHA)


def test_html_page_through_fetch_asset_caches_nothing(release_server: ReleaseServer, fake_release: FakeRelease,
                                                     tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    mirror = release_server.base_url
    with client(mirror=mirror) as downloader:
        catalogue = load_catalogue(cache, downloader, mirror, fake_release.tag)
        asset, sha256 = select_asset(catalogue, target=fake_release.triple, flavor="full",
                                     python_version=fake_release.python_version)
        release_server.add_fault(asset.file_name, "html-200")
        with pytest.raises(ChecksumError, match=f"looks like HTML.*the mirror {mirror} answered"):
            fetch_asset(cache, downloader, ResolvedAsset(asset, sha256, asset.url(mirror)))
        assert not cache.asset_path(sha256, asset.file_name).exists()
        # The next build gets the real file.
        assert fetch_asset(cache, downloader, ResolvedAsset(asset, sha256, asset.url(mirror))).is_file()


def test_a_wrong_binary_body_is_not_called_html(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "wrong-body")
    with client() as downloader, pytest.raises(ChecksumError) as caught:
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=SHA)
    assert "HTML" not in str(caught.value).split("causes this")[0].split("the file was not cached.")[0]
    assert "looks like" not in str(caught.value)


def test_an_xml_error_document_is_recognised(tmp_path: Path) -> None:
    """What S3-style stores serve for a missing or forbidden key (here from a file:// mirror)."""
    page = tmp_path / "asset.tar.gz"
    page.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code></Error>\n')
    with client() as downloader, pytest.raises(ChecksumError, match="looks like XML"):
        downloader.download(page.as_uri(), tmp_path / "out", sha256=SHA)


# --------------------------------------------------------------------------------------------------------------
# A slow server: the `timeout` option


def test_stall_mid_body_fails_naming_the_timeout_option_and_the_url(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "stall", times=2)
    url = server.url(f"rel/{BLOB}")
    started = time.monotonic()
    with client(attempts=2, timeout=0.5) as downloader, pytest.raises(DownloadError) as caught:
        downloader.download(url, tmp_path / "out.bin", sha256=SHA)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert url in message
    assert "timed out after 2 attempts: waiting for data took longer than 0.5 seconds" in message
    assert "`timeout` option" in message and "seconds" in message
    assert 1.0 <= elapsed < 10  # two tries, each given up after 0.5 s of silence, not the server's 30 s


def test_stall_before_the_headers_fails_naming_the_timeout_option(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "stall-headers", times=3)
    with client(attempts=3, timeout=0.3) as downloader, pytest.raises(DownloadError, match="`timeout` option"):
        downloader.read_bytes(server.url(f"rel/{BLOB}"))
    assert server.request_count(BLOB) == 3


def test_a_stall_once_is_resumed(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "stall")
    assert fetch(server, tmp_path, timeout=0.5) == DATA
    assert server.headers_of(BLOB)[1]["range"] == f"bytes={len(DATA) // 2}-"


def test_a_slow_but_steady_server_is_not_a_timeout(server: ReleaseServer, tmp_path: Path) -> None:
    """The timeout bounds silence, not the whole transfer: a trickle with short pauses completes."""
    server.trickle_chunk, server.trickle_delay = 256 << 10, 0.05
    server.add_fault(BLOB, "trickle")
    assert fetch(server, tmp_path, timeout=1) == DATA
    assert server.request_count(BLOB) == 1


# --------------------------------------------------------------------------------------------------------------
# 429 and 503 with Retry-After


@pytest.mark.parametrize("status", ["429", "503"])
def test_retry_after_seconds_is_honoured(server: ReleaseServer, tmp_path: Path, status: str) -> None:
    server.add_fault(BLOB, status, retry_after="1")
    started = time.monotonic()
    assert fetch(server, tmp_path) == DATA  # backoff=0: any wait comes from Retry-After
    assert 1.0 <= time.monotonic() - started < 8
    assert server.request_count(BLOB) == 2


def test_retry_after_http_date_is_honoured(server: ReleaseServer, tmp_path: Path) -> None:
    when = datetime.now(timezone.utc) + timedelta(seconds=2)
    server.add_fault(BLOB, "503", retry_after=format_datetime(when, usegmt=True))
    started = time.monotonic()
    assert fetch(server, tmp_path) == DATA
    assert 0.9 <= time.monotonic() - started < 8  # HTTP dates have whole seconds
    assert server.request_count(BLOB) == 2


def test_retry_after_is_capped(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "429", retry_after="3600")
    started = time.monotonic()
    assert fetch(server, tmp_path, max_retry_after=0.2) == DATA
    assert time.monotonic() - started < 5
    assert MAX_RETRY_AFTER == 60


def test_retry_after_attempts_are_bounded(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "429", times=50, retry_after="0")
    with client(attempts=3) as downloader, pytest.raises(DownloadError) as caught:
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=SHA)
    assert "HTTP 429 Too Many Requests (after 3 attempts; the server last asked to retry after 0 seconds)" \
        in str(caught.value)
    assert server.request_count(BLOB) == 3


def test_unreadable_retry_after_falls_back_to_the_backoff(server: ReleaseServer, tmp_path: Path) -> None:
    server.add_fault(BLOB, "503", retry_after="soon, maybe")
    started = time.monotonic()
    assert fetch(server, tmp_path, backoff=0.3) == DATA
    assert 0.3 <= time.monotonic() - started < 5


def test_retry_after_parsing() -> None:
    assert _retry_after("0") == 0
    assert _retry_after(" 120 ") == 120
    assert _retry_after(None) is None
    assert _retry_after("") is None
    assert _retry_after("-5") is None
    assert _retry_after("1.5") is None  # delay-seconds is a whole number
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past: no wait
    future = _retry_after(format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True))
    assert future is not None and 28 <= future <= 30
    assert _retry_after("Sunday, 06-Nov-94 08:49:37 GMT") in (None, 0)  # obsolete RFC 850 form: never a wait


# --------------------------------------------------------------------------------------------------------------
# An endless body for a small file (a catalogue): refused at the limit, not read into memory


def test_endless_chunked_body_is_refused_at_the_limit() -> None:
    """A raw loopback server answering with a chunked body that goes on (up to 256 MiB, or until the client
    hangs up), no Content-Length to refuse up front."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    sent = []

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n" % (1 << 16) + bytes(1 << 16) + b"\r\n"
            try:
                for _ in range(4096):
                    connection.sendall(chunk)
                    sent.append(len(chunk))
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/SHA256SUMS"
    try:
        with client() as downloader, pytest.raises(DownloadError, match=f"{url} is larger than 1048576 bytes"):
            downloader.read_bytes(url, limit=1 << 20)
    finally:
        thread.join(30)
        listener.close()
    assert sum(sent) < 64 << 20  # the client hung up long before the server ran out
