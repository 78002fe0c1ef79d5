"""Tests of ``hatch_pbs.release.download``: real HTTP over loopback (``ReleaseServer``) and real ``file://`` URLs."""

from __future__ import annotations

import hashlib
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pbs_release import ReleaseServer

from hatch_pbs.errors import ChecksumError, DownloadError, HatchPbsError, OfflineError
from hatch_pbs.release.download import PROGRESS_THRESHOLD, Downloader

BLOB = "blob.bin"
"""A file of a few MiB: larger than one read chunk and than the progress-bar threshold."""
SMALL = "small.txt"


@pytest.fixture(scope="module")
def files_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("files")
    (root / "rel").mkdir()
    (root / "rel" / BLOB).write_bytes(random.Random(1).randbytes(PROGRESS_THRESHOLD + (1 << 20) + 17))
    (root / "rel" / SMALL).write_bytes(b"hello, loopback\n")
    (root / "rel" / "name with+plus.txt").write_bytes(b"plus\n")
    return root


@pytest.fixture
def server(files_root: Path) -> Iterator[ReleaseServer]:
    with ReleaseServer(files_root) as served:
        yield served


@pytest.fixture
def downloader() -> Iterator[Downloader]:
    with Downloader(attempts=3, backoff=0, timeout=10, progress=False) as client:
        yield client


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob(files_root: Path) -> bytes:
    return (files_root / "rel" / BLOB).read_bytes()


# --------------------------------------------------------------------------------------------------------------
# Success


def test_download_streams_to_destination_and_returns_size(server: ReleaseServer, downloader: Downloader,
                                                          files_root: Path, tmp_path: Path) -> None:
    data = blob(files_root)
    destination = tmp_path / "out.bin"
    size = downloader.download(server.url(f"rel/{BLOB}"), destination, sha256=sha256_of(data))
    assert size == len(data)
    assert destination.read_bytes() == data
    assert server.request_count(BLOB) == 1


def test_download_truncates_an_existing_destination(server: ReleaseServer, downloader: Downloader,
                                                    files_root: Path, tmp_path: Path) -> None:
    destination = tmp_path / "out.bin"
    destination.write_bytes(b"x" * (len(blob(files_root)) + 1000))
    downloader.download(server.url(f"rel/{SMALL}"), destination, sha256=sha256_of(b"hello, loopback\n"))
    assert destination.read_bytes() == b"hello, loopback\n"


def test_read_bytes_returns_body(server: ReleaseServer, downloader: Downloader) -> None:
    assert downloader.read_bytes(server.url(f"rel/{SMALL}")) == b"hello, loopback\n"
    assert server.requests == [("GET", f"/rel/{SMALL}")]


def test_read_bytes_refuses_body_over_limit(server: ReleaseServer, downloader: Downloader) -> None:
    with pytest.raises(DownloadError, match="larger than 1000 bytes"):
        downloader.read_bytes(server.url(f"rel/{BLOB}"), limit=1000)


def test_percent_encoded_names_are_fetched(server: ReleaseServer, downloader: Downloader) -> None:
    url = f"{server.base_url}/rel/name%20with%2Bplus.txt"
    assert downloader.read_bytes(url) == b"plus\n"


def test_progress_bar_does_not_change_the_bytes(server: ReleaseServer, files_root: Path, tmp_path: Path) -> None:
    data = blob(files_root)
    assert len(data) >= PROGRESS_THRESHOLD
    with Downloader(backoff=0, progress=True) as client:
        client.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=sha256_of(data), label="blob")
    assert (tmp_path / "out.bin").read_bytes() == data


def test_attempts_below_one_means_one(server: ReleaseServer) -> None:
    server.add_fault(SMALL, "503")
    with Downloader(attempts=0, backoff=0, progress=False) as client, pytest.raises(DownloadError, match="503"):
        client.read_bytes(server.url(f"rel/{SMALL}"))
    assert server.request_count(SMALL) == 1


# --------------------------------------------------------------------------------------------------------------
# Checksums


def test_wrong_body_raises_checksum_error_naming_both_hashes(server: ReleaseServer, downloader: Downloader,
                                                            files_root: Path, tmp_path: Path) -> None:
    data = blob(files_root)
    server.add_fault(BLOB, "wrong-body")
    with pytest.raises(ChecksumError) as caught:
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=sha256_of(data))
    message = str(caught.value)
    assert sha256_of(data) in message
    assert sha256_of(data[::-1]) in message
    assert isinstance(caught.value, DownloadError)
    assert server.request_count(BLOB) == 1  # a mismatch is not a transient error


def test_wrong_expected_hash_raises_checksum_error(server: ReleaseServer, downloader: Downloader,
                                                   tmp_path: Path) -> None:
    with pytest.raises(ChecksumError, match=f"expected {'0' * 64}.*got {sha256_of(b'hello, loopback' + bytes([10]))}"):
        downloader.download(server.url(f"rel/{SMALL}"), tmp_path / "out", sha256="0" * 64)


# --------------------------------------------------------------------------------------------------------------
# Failures and retries


@pytest.mark.parametrize("method", ["download", "read_bytes"])
def test_404_fails_at_once_without_retry(server: ReleaseServer, downloader: Downloader, tmp_path: Path,
                                         method: str) -> None:
    url = server.url("rel/missing.bin")
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        if method == "download":
            downloader.download(url, tmp_path / "out", sha256="0" * 64)
        else:
            downloader.read_bytes(url)
    assert not isinstance(caught.value, ChecksumError)
    assert url.split("/", 3)[3] in str(caught.value)
    assert server.request_count("missing.bin") == 1


@pytest.mark.parametrize("fault", ["500", "503", "reset", "truncate"])
def test_transient_fault_once_is_retried(server: ReleaseServer, downloader: Downloader, files_root: Path,
                                         tmp_path: Path, fault: str) -> None:
    data = blob(files_root)
    server.add_fault(BLOB, fault)
    destination = tmp_path / "out.bin"
    assert downloader.download(server.url(f"rel/{BLOB}"), destination, sha256=sha256_of(data)) == len(data)
    assert destination.read_bytes() == data  # the partial first attempt left nothing behind
    assert server.request_count(BLOB) == 2


@pytest.mark.parametrize("fault", ["500", "503", "reset", "truncate"])
def test_transient_fault_once_is_retried_by_read_bytes(server: ReleaseServer, downloader: Downloader,
                                                       files_root: Path, fault: str) -> None:
    server.add_fault(BLOB, fault)
    assert downloader.read_bytes(server.url(f"rel/{BLOB}")) == blob(files_root)
    assert server.request_count(BLOB) == 2


@pytest.mark.parametrize(("fault", "reason"), [("503", "HTTP 503"), ("500", "HTTP 500"),
                                               ("truncate", "RemoteProtocolError"), ("reset", "Error")])
def test_persistent_fault_fails_after_all_attempts(server: ReleaseServer, downloader: Downloader, files_root: Path,
                                                   tmp_path: Path, fault: str, reason: str) -> None:
    server.add_fault(BLOB, fault, times=3)
    with pytest.raises(DownloadError, match=reason) as caught:
        downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=sha256_of(blob(files_root)))
    assert not isinstance(caught.value, ChecksumError)
    assert server.request_count(BLOB) == 3


def test_fault_on_every_attempt_but_the_last_still_succeeds(server: ReleaseServer, downloader: Downloader,
                                                            files_root: Path, tmp_path: Path) -> None:
    server.add_fault(BLOB, "503")
    server.add_fault(BLOB, "truncate")
    downloader.download(server.url(f"rel/{BLOB}"), tmp_path / "out.bin", sha256=sha256_of(blob(files_root)))
    assert server.request_count(BLOB) == 3


def test_backoff_doubles_between_retries(server: ReleaseServer) -> None:
    server.add_fault(SMALL, "503", times=2)
    started = time.monotonic()
    with Downloader(attempts=3, backoff=0.1, progress=False) as client:
        assert client.read_bytes(server.url(f"rel/{SMALL}")) == b"hello, loopback\n"
    assert time.monotonic() - started >= 0.1 + 0.2


def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    with ReleaseServer(tmp_path) as closed:
        url = closed.url("x")
    with Downloader(attempts=2, backoff=0, progress=False) as client, pytest.raises(DownloadError, match="ConnectError"):
        client.read_bytes(url)


def test_silent_server_times_out(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections complete in the kernel; nothing ever answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
        started = time.monotonic()
        with Downloader(attempts=2, backoff=0, timeout=0.3, progress=False) as client:
            with pytest.raises(DownloadError, match=r"timed out after 2 attempts: waiting for data took longer "
                                                    r"than 0\.3 seconds \(the `timeout` option") as caught:
                client.download(url, tmp_path / "out", sha256="0" * 64)
            assert url in str(caught.value)
        assert time.monotonic() - started < 10


@pytest.mark.parametrize("url", ["ftp://example.invalid/x", "example.invalid/x"])
def test_unsupported_scheme(downloader: Downloader, url: str) -> None:
    with pytest.raises(DownloadError, match="unsupported URL scheme"):
        downloader.read_bytes(url)


@pytest.mark.parametrize("url", ["http://[bad/x", "http://\x00/x", "http://a..b/x"])
def test_invalid_url_is_a_download_error(downloader: Downloader, tmp_path: Path, url: str) -> None:
    with pytest.raises(DownloadError):
        downloader.read_bytes(url)
    with pytest.raises(DownloadError):
        downloader.download(url, tmp_path / "out", sha256="0" * 64)


# --------------------------------------------------------------------------------------------------------------
# Offline mode and file:// URLs


def test_offline_never_touches_the_network(server: ReleaseServer, tmp_path: Path) -> None:
    with Downloader(offline=True, backoff=0, progress=False) as client:
        with pytest.raises(OfflineError, match="offline") as caught:
            client.download(server.url(f"rel/{BLOB}"), tmp_path / "out", sha256="0" * 64)
        assert BLOB in str(caught.value)
        with pytest.raises(OfflineError):
            client.read_bytes(server.url(f"rel/{SMALL}"))
    assert server.requests == []


def test_file_urls_work_offline(files_root: Path, tmp_path: Path) -> None:
    data = blob(files_root)
    url = (files_root / "rel" / BLOB).as_uri()
    with Downloader(offline=True, backoff=0, progress=False) as client:
        assert client.download(url, tmp_path / "out.bin", sha256=sha256_of(data)) == len(data)
        assert (tmp_path / "out.bin").read_bytes() == data
        assert client.read_bytes((files_root / "rel" / SMALL).as_uri()) == b"hello, loopback\n"


def test_file_url_percent_encoding_is_decoded(files_root: Path, downloader: Downloader) -> None:
    url = (files_root / "rel").as_uri() + "/name%20with%2Bplus.txt"
    assert downloader.read_bytes(url) == b"plus\n"


def test_file_url_checksum_mismatch(files_root: Path, downloader: Downloader, tmp_path: Path) -> None:
    with pytest.raises(ChecksumError, match="0{64}"):
        downloader.download((files_root / "rel" / SMALL).as_uri(), tmp_path / "out", sha256="0" * 64)


def test_missing_file_url_is_a_download_error(tmp_path: Path, downloader: Downloader) -> None:
    with pytest.raises(DownloadError, match="No such file"):
        downloader.read_bytes((tmp_path / "absent").as_uri())


def test_every_error_is_a_hatch_pbs_error() -> None:
    for error in (DownloadError, ChecksumError, OfflineError):
        assert issubclass(error, HatchPbsError)
