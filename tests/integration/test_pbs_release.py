"""Tests of the test-support module ``pbs_release``: the fake PBS release and its HTTP server."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zstandard
from pbs_release import (
    _CATALOGUE_VERSIONS,
    _FREETHREADED_VERSION,
    HTML_ERROR_PAGE,
    RELEASE_TAG,
    FakeRelease,
    ReleaseServer,
    build_release,
)

XY = f"{sys.version_info.major}.{sys.version_info.minor}"
SUMS_LINE = re.compile(r"^(?P<sha>[0-9a-f]{64})  (?P<name>cpython-[^ /]+\.tar\.(?:gz|zst))$")


def read_sums(release: FakeRelease) -> dict[str, str]:
    """SHA256SUMS of ``release`` as file name -> sha256, checking every line's format on the way."""
    lines = (release.root / release.tag / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    names = []
    sums = {}
    for line in lines:
        match = SUMS_LINE.match(line)
        assert match, f"malformed SHA256SUMS line: {line!r}"
        names.append(match["name"])
        sums[match["name"]] = match["sha"]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    return sums


def tar_gz_members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getmembers()


def tar_zst_members(path: Path) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """Members of a .tar.zst in archive order, with the content of regular files up to 64 KiB."""
    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for info in tar:
                data = None
                if info.isfile() and info.size <= 64 * 1024:
                    fh = tar.extractfile(info)
                    assert fh is not None
                    data = fh.read()
                yield info, data


def extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "tar_filter"):
            tar.extractall(dest, filter="tar")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(dest)


# --------------------------------------------------------------------------------------------------------------
# The release on disk


def test_release_describes_running_interpreter(fake_release: FakeRelease) -> None:
    assert fake_release.tag == RELEASE_TAG
    assert fake_release.python_version == ".".join(map(str, sys.version_info[:3]))
    assert fake_release.source_prefix == Path(sys.base_prefix)
    assert re.fullmatch(r"(x86_64|aarch64)-unknown-linux-gnu", fake_release.triple)
    stem = f"cpython-{fake_release.python_version}+{RELEASE_TAG}-{fake_release.triple}"
    assert fake_release.asset_name("install_only") == f"{stem}-install_only.tar.gz"
    assert fake_release.asset_name("install_only_stripped") == f"{stem}-install_only_stripped.tar.gz"
    assert fake_release.asset_name("full") == f"{stem}-pgo+lto-full.tar.zst"
    for flavor, path in fake_release.assets.items():
        assert path.parent == fake_release.root / RELEASE_TAG
        assert path.is_file(), flavor
    assert sorted(p.name for p in (fake_release.root / RELEASE_TAG).iterdir()) == sorted(
        [*(p.name for p in fake_release.assets.values()), "SHA256SUMS"]
    )


def test_sha256sums_lists_served_assets_with_their_digests(fake_release: FakeRelease) -> None:
    sums = read_sums(fake_release)
    for flavor, path in fake_release.assets.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert fake_release.sha256(flavor) == digest
        assert sums[path.name] == digest


def test_sha256sums_catalogue_lists_unserved_assets(fake_release: FakeRelease) -> None:
    sums = read_sums(fake_release)
    tag, ver, triple = fake_release.tag, fake_release.python_version, fake_release.triple
    major, minor, micro = (int(x) for x in ver.split("."))
    expected = [
        f"cpython-{ver}+{tag}-aarch64-apple-darwin-install_only_stripped.tar.gz",
        f"cpython-{ver}+{tag}-x86_64-pc-windows-msvc-install_only.tar.gz",
        f"cpython-{ver}+{tag}-x86_64-pc-windows-msvc-pgo-full.tar.zst",
        f"cpython-{ver}+{tag}-x86_64-unknown-linux-musl-lto-full.tar.zst",
        f"cpython-{_CATALOGUE_VERSIONS[0]}+{tag}-{triple}-install_only.tar.gz",
        f"cpython-{_CATALOGUE_VERSIONS[1]}+{tag}-{triple}-pgo+lto-full.tar.zst",
        f"cpython-{_FREETHREADED_VERSION}+{tag}-{triple}-freethreaded-install_only_stripped.tar.gz",
    ]
    if triple != "aarch64-unknown-linux-gnu":
        expected.append(f"cpython-{ver}+{tag}-aarch64-unknown-linux-gnu-install_only.tar.gz")
    if micro > 0:
        expected.append(f"cpython-{major}.{minor}.{micro - 1}+{tag}-{triple}-install_only.tar.gz")
    served = {path.name for path in fake_release.assets.values()}
    for name in expected:
        assert name in sums, name
        if name not in served:
            assert not (fake_release.root / tag / name).exists()
            assert sums[name] == hashlib.sha256(name.encode()).hexdigest()


def test_latest_release_json(fake_release: FakeRelease) -> None:
    data = json.loads((fake_release.root / "latest-release.json").read_text(encoding="utf-8"))
    base = "https://github.com/astral-sh/python-build-standalone/releases"
    assert data == {
        "version": 1,
        "tag": RELEASE_TAG,
        "release_url": f"{base}/tag/{RELEASE_TAG}",
        "asset_url_prefix": f"{base}/download/{RELEASE_TAG}",
    }


def test_install_only_layout(fake_release: FakeRelease) -> None:
    members = tar_gz_members(fake_release.assets["install_only"])
    names = [m.name for m in members]
    by_name = {m.name: m for m in members}
    assert names == sorted(names)
    assert all(n == "python" or n.startswith("python/") for n in names)
    for name in names:  # directories are members too
        if "/" in name:
            parent = name.rsplit("/", 1)[0]
            assert by_name[parent].isdir(), name

    exe = by_name[f"python/bin/python{XY}"]
    assert exe.isfile() and exe.mode & 0o111
    for link in ("python/bin/python3", "python/bin/python"):
        assert by_name[link].issym() and by_name[link].linkname == f"python{XY}"
    assert by_name[f"python/lib/libpython{XY}.so.1.0"].isfile()
    assert by_name[f"python/lib/libpython{XY}.so"].issym()
    for required in (
        f"python/bin/pip{XY}",
        f"python/lib/python{XY}/os.py",
        f"python/include/python{XY}/Python.h",
        f"python/lib/pkgconfig/python-{XY}.pc",
    ):
        assert required in by_name, required
    assert any(n.startswith(f"python/lib/python{XY}/lib-dynload/_ssl.") for n in names)

    stdlib = f"python/lib/python{XY}/"
    # Bytecode as PBS ships it: the interpreter's own cache tag, all three optimization levels.
    assert f"{stdlib}json/__pycache__/__init__.{sys.implementation.cache_tag}.pyc" in by_name
    assert f"{stdlib}json/__pycache__/__init__.{sys.implementation.cache_tag}.opt-2.pyc" in by_name
    assert not any(n.startswith((stdlib + "test/", stdlib + "idlelib/idle_test/")) for n in names)
    assert not any(n.startswith(stdlib + "config-") and n.endswith(".a") for n in names)
    site = stdlib + "site-packages/"
    top_level = {n[len(site) :].split("/")[0] for n in names if n.startswith(site)}
    assert "pip" in top_level
    assert all(t == "pip" or re.fullmatch(r"pip-[^/]+\.dist-info", t) for t in top_level), top_level


def test_pip_script_keeps_absolute_shebang(fake_release: FakeRelease) -> None:
    with tarfile.open(fake_release.assets["install_only"], "r:gz") as tar:
        fh = tar.extractfile(f"python/bin/pip{XY}")
        assert fh is not None
        first_line = fh.readline().decode()
    assert first_line.startswith(f"#!{fake_release.source_prefix}/bin/python")


def test_flavors_differ(fake_release: FakeRelease) -> None:
    digests = {fake_release.sha256(flavor) for flavor in fake_release.assets}
    assert len(digests) == 3
    for flavor in ("install_only", "install_only_stripped"):
        with tarfile.open(fake_release.assets[flavor], "r:gz") as tar:
            fh = tar.extractfile("python/share/hatch-pbs-fixture/flavor.txt")
            assert fh is not None
            assert fh.read().decode().strip() == flavor


@pytest.mark.skipif(shutil.which("strip") is None, reason="binutils' strip is not installed")
def test_stripped_flavor_strips_elf_files_and_still_runs(fake_release: FakeRelease, tmp_path: Path) -> None:
    import lief

    sizes = {}
    for flavor in ("install_only", "install_only_stripped"):
        extract(fake_release.assets[flavor], tmp_path / flavor)
        library = next((tmp_path / flavor / "python" / "lib").glob("libpython3.*.so.1.0"))
        sizes[flavor] = library.stat().st_size
        binary = lief.ELF.parse(str(library))
        sections = {section.name for section in binary.sections}
        assert (".symtab" in sections) == (flavor == "install_only"), flavor
    assert sizes["install_only_stripped"] < sizes["install_only"]
    python = tmp_path / "install_only_stripped" / "python" / "bin" / "python3"
    proc = subprocess.run([python, "-c", "import ssl, sqlite3, ctypes, decimal; print('ok')"], capture_output=True,
                          text=True, check=False, env={})
    assert proc.stdout == "ok\n", proc.stderr


def test_install_only_extracts_to_a_working_interpreter(fake_release: FakeRelease, tmp_path: Path) -> None:
    extract(fake_release.assets["install_only"], tmp_path)
    python = tmp_path / "python" / "bin" / "python3"
    assert os.access(python, os.X_OK)
    code = "import sys, json, ssl, sqlite3, ctypes; print(sys.prefix); print(sys.version.split()[0])"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True, env={})
    prefix, version = proc.stdout.split()
    assert Path(prefix) == tmp_path / "python"
    assert version == fake_release.python_version


def test_full_archive_layout(fake_release: FakeRelease) -> None:
    members = list(tar_zst_members(fake_release.assets["full"]))
    first, python_json = members[0]
    assert first.name == "python/PYTHON.json"
    assert python_json is not None
    meta = json.loads(python_json)
    major, minor = sys.version_info[:2]
    assert meta["version"] == "8"
    assert meta["target_triple"] == fake_release.triple
    assert meta["build_options"] == "pgo+lto"
    assert meta["python_version"] == fake_release.python_version
    assert meta["python_major_minor_version"] == XY
    assert meta["python_tag"] == meta["python_abi_tag"] == f"cp{major}{minor}"
    assert meta["python_exe"] == f"install/bin/python{XY}"
    assert meta["python_stdlib"] == f"install/lib/python{XY}"
    assert meta["python_paths"]["purelib"] == f"install/lib/python{XY}/site-packages"
    assert meta["license_path"] == "licenses/LICENSE.txt"
    assert meta["libpython_link_mode"] == "shared"

    names = {info.name: (info, data) for info, data in members}
    assert names["python/build"][0].isdir()
    assert not any(n.startswith("python/build/") for n in names)
    license_data = names["python/licenses/LICENSE.txt"][1]
    assert license_data and b"PYTHON SOFTWARE FOUNDATION LICENSE" in license_data
    assert names["python/install/share/hatch-pbs-fixture/flavor.txt"][1] == b"full\n"

    # python/install/ holds the same installation as install_only's python/ (apart from the flavor marker).
    install_only = {m.name for m in tar_gz_members(fake_release.assets["install_only"])}
    full_install = {"python" + n[len("python/install") :] for n in names if n.startswith("python/install")}
    assert full_install == install_only
    exe_info, _ = names[f"python/install/bin/python{XY}"]
    assert exe_info.isfile() and exe_info.mode & 0o111


def test_build_is_reproducible_and_catalogue_optional(fake_release: FakeRelease, tmp_path: Path) -> None:
    again = build_release(tmp_path, tag=RELEASE_TAG, extra_catalogue=False)
    for flavor in fake_release.assets:
        assert again.sha256(flavor) == fake_release.sha256(flavor), flavor
    assert set(read_sums(again)) == {path.name for path in again.assets.values()}


# --------------------------------------------------------------------------------------------------------------
# The server


def test_server_serves_assets_by_percent_encoded_url(release_server: ReleaseServer, fake_release: FakeRelease) -> None:
    name = fake_release.asset_name("install_only")
    url = f"{release_server.base_url}/{RELEASE_TAG}/{name.replace('+', '%2B')}"
    response = httpx.get(url)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == fake_release.assets["install_only"].stat().st_size
    assert hashlib.sha256(response.content).hexdigest() == fake_release.sha256("install_only")
    assert release_server.requests == [("GET", f"/{RELEASE_TAG}/{name}")]
    assert release_server.request_count(name) == 1
    assert release_server.request_count(fake_release.asset_name("full")) == 0

    sums = httpx.get(f"{release_server.base_url}/{RELEASE_TAG}/SHA256SUMS")
    assert sums.status_code == 200
    assert f"{fake_release.sha256('install_only')}  {name}\n" in sums.text
    latest = httpx.get(f"{release_server.base_url}/latest-release.json")
    assert latest.json()["tag"] == RELEASE_TAG


def test_server_head(release_server: ReleaseServer, fake_release: FakeRelease) -> None:
    name = fake_release.asset_name("full")
    response = httpx.head(release_server.url(f"{RELEASE_TAG}/{name}"))
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == fake_release.assets["full"].stat().st_size
    assert response.content == b""
    assert release_server.requests == [("HEAD", f"/{RELEASE_TAG}/{name}")]
    assert release_server.request_count(name) == 0  # counts GETs only


@pytest.mark.parametrize(
    "path",
    [
        f"/{RELEASE_TAG}/cpython-{_CATALOGUE_VERSIONS[0]}%2B{RELEASE_TAG}-aarch64-apple-darwin-install_only.tar.gz",  # catalogued only
        f"/{RELEASE_TAG}",
        f"/{RELEASE_TAG}/",
        "/nope/SHA256SUMS",
        f"/{RELEASE_TAG}/%2E%2E/latest-release.json",
    ],
)
def test_server_404(release_server: ReleaseServer, path: str) -> None:
    with httpx.Client() as client:
        response = client.send(client.build_request("GET", release_server.base_url + path))
    assert response.status_code == 404


# Fault injection, on a small root so that bodies are cheap to compare.

SMALL_NAME = f"cpython-3.11.7+{RELEASE_TAG}-x86_64-unknown-linux-gnu-install_only.tar.gz"
SMALL_BODY = bytes(range(256)) * 400  # 100 KiB, not a palindrome


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[ReleaseServer]:
    (tmp_path / RELEASE_TAG).mkdir()
    (tmp_path / RELEASE_TAG / SMALL_NAME).write_bytes(SMALL_BODY)
    (tmp_path / RELEASE_TAG / "other.tar.gz").write_bytes(b"other")
    with ReleaseServer(tmp_path) as server:
        yield server


def small_url(server: ReleaseServer, name: str = SMALL_NAME) -> str:
    return server.url(f"{RELEASE_TAG}/{name}")


@pytest.mark.parametrize("kind", ["404", "500", "503"])
def test_status_faults(small_server: ReleaseServer, kind: str) -> None:
    small_server.add_fault(SMALL_NAME, kind)
    with httpx.Client() as client:
        failed = client.get(small_url(small_server))
        assert failed.status_code == int(kind)
        assert failed.content  # small body
        assert client.head(small_url(small_server)).status_code == 200  # HEAD does not consume faults
        recovered = client.get(small_url(small_server))
    assert recovered.status_code == 200
    assert recovered.content == SMALL_BODY
    assert small_server.request_count(SMALL_NAME) == 2


def test_truncate_fault_sends_half_the_body(small_server: ReleaseServer) -> None:
    small_server.add_fault(SMALL_NAME, "truncate")
    received = bytearray()
    with httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream("GET", small_url(small_server)) as response:
                assert response.status_code == 200
                assert int(response.headers["content-length"]) == len(SMALL_BODY)
                for chunk in response.iter_raw():
                    received += chunk
        assert bytes(received) == SMALL_BODY[: len(SMALL_BODY) // 2]
        assert client.get(small_url(small_server)).content == SMALL_BODY


def test_wrong_body_fault(small_server: ReleaseServer) -> None:
    small_server.add_fault(SMALL_NAME, "wrong-body")
    with httpx.Client() as client:
        wrong = client.get(small_url(small_server))
        assert wrong.status_code == 200
        assert len(wrong.content) == len(SMALL_BODY)
        assert wrong.content != SMALL_BODY
        assert client.get(small_url(small_server)).content == SMALL_BODY


def test_reset_fault(small_server: ReleaseServer) -> None:
    small_server.add_fault(SMALL_NAME, "reset")
    with httpx.Client() as client:
        with pytest.raises(httpx.TransportError):
            client.get(small_url(small_server))
        assert client.get(small_url(small_server)).content == SMALL_BODY
    assert small_server.request_count(SMALL_NAME) == 2


def test_faults_count_down_queue_up_and_stay_on_their_file(small_server: ReleaseServer) -> None:
    small_server.add_fault(SMALL_NAME, "503", times=2)
    small_server.add_fault(SMALL_NAME, "404")
    with httpx.Client() as client:
        assert client.get(small_url(small_server, "other.tar.gz")).content == b"other"
        statuses = [client.get(small_url(small_server)).status_code for _ in range(4)]
    assert statuses == [503, 503, 404, 200]
    assert small_server.request_count(SMALL_NAME) == 4
    assert small_server.request_count("other.tar.gz") == 1


def test_add_fault_rejects_unknown_kind(small_server: ReleaseServer) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        small_server.add_fault(SMALL_NAME, "timeout")
    with pytest.raises(ValueError, match="at least 1"):
        small_server.add_fault(SMALL_NAME, "404", times=0)


def test_server_close_is_idempotent(tmp_path: Path) -> None:
    server = ReleaseServer(tmp_path)
    url = server.base_url
    server.close()
    server.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/x", timeout=5)


def test_range_requests(small_server: ReleaseServer) -> None:
    url = small_url(small_server)
    with httpx.Client() as client:
        whole = client.get(url)
        assert whole.headers["accept-ranges"] == "bytes"
        etag = whole.headers["etag"]
        tail = client.get(url, headers={"Range": "bytes=1000-"})
        assert tail.status_code == 206
        assert tail.headers["content-range"] == f"bytes 1000-{len(SMALL_BODY) - 1}/{len(SMALL_BODY)}"
        assert tail.content == SMALL_BODY[1000:]
        middle = client.get(url, headers={"Range": "bytes=10-19", "If-Range": etag})
        assert (middle.status_code, middle.content) == (206, SMALL_BODY[10:20])
        assert client.get(url, headers={"Range": "bytes=-5"}).content == SMALL_BODY[-5:]
        stale = client.get(url, headers={"Range": "bytes=10-", "If-Range": '"other"'})
        assert (stale.status_code, stale.content) == (200, SMALL_BODY)
        past = client.get(url, headers={"Range": f"bytes={len(SMALL_BODY)}-"})
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(SMALL_BODY)}"
        several = client.get(url, headers={"Range": "bytes=0-1,5-6"})
        assert (several.status_code, several.content) == (200, SMALL_BODY)


def test_ranges_can_be_turned_off(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(SMALL_BODY)
    with ReleaseServer(tmp_path, ranges=False) as server, httpx.Client() as client:
        response = client.get(server.url("f.bin"), headers={"Range": "bytes=10-"})
        assert response.status_code == 200 and "accept-ranges" not in response.headers
        assert response.content == SMALL_BODY


@pytest.mark.parametrize(("kind", "declared"), [("length-long", len(SMALL_BODY) + 1024),
                                                ("length-short", len(SMALL_BODY) - 1024)])
def test_wrong_length_faults(small_server: ReleaseServer, kind: str, declared: int) -> None:
    small_server.add_fault(SMALL_NAME, kind)
    with socket.create_connection(("127.0.0.1", int(small_server.base_url.rsplit(":", 1)[1]))) as connection:
        connection.sendall(f"GET /{RELEASE_TAG}/{SMALL_NAME} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert f"Content-Length: {declared}".encode() in head
    assert body == SMALL_BODY  # the whole file, whatever was declared


def test_html_429_redirect_and_connection_count(small_server: ReleaseServer, tmp_path: Path) -> None:
    small_server.add_fault(SMALL_NAME, "html-200")
    small_server.add_fault(SMALL_NAME, "429", retry_after="7")
    small_server.redirect_base = "http://elsewhere.invalid"
    small_server.add_fault(SMALL_NAME, "redirect")
    with httpx.Client() as client:
        page = client.get(small_url(small_server))
        assert page.headers["content-type"].startswith("text/html") and page.content == HTML_ERROR_PAGE
        limited = client.get(small_url(small_server))
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
        moved = client.get(small_url(small_server))
        assert moved.status_code == 302
        assert moved.headers["location"] == f"http://elsewhere.invalid/{RELEASE_TAG}/{urllib.parse.quote(SMALL_NAME)}"
    assert small_server.connections == 1  # one keep-alive connection for the three requests
    assert small_server.headers_of(SMALL_NAME)[0]["host"].startswith("127.0.0.1:")
