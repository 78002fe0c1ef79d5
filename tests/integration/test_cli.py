"""Tests of ``hatch_pbs.cli`` (``hatch-pbs resolve`` / ``hatch-pbs fetch``): ``main()`` in-process against a
real loopback server, and the installed console script in a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import assert_one_error_line, run
from pbs_release import FakeRelease, ReleaseServer

from hatch_pbs import __version__

FLAVOR = "install_only"
JSON_KEYS = {"asset", "url", "sha256", "python_version", "release", "target"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HATCH_PBS_MIRROR", "HATCH_PBS_CACHE_DIR", "HATCH_PBS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


def options(release: FakeRelease, mirror: str, cache_dir: Path, *, flavor: str = FLAVOR) -> list[str]:
    return ["--release", release.tag, "--python-version", release.python_version, "--target", release.triple,
            "--flavor", flavor, "--mirror", mirror, "--cache-dir", str(cache_dir)]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quoted_url(server: ReleaseServer, release: FakeRelease, flavor: str = FLAVOR) -> str:
    return f"{server.base_url}/{release.tag}/{release.asset_name(flavor).replace('+', '%2B')}"


# --------------------------------------------------------------------------------------------------------------
# resolve


def test_resolve_prints_the_asset_as_json(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer,
                                          fake_release: FakeRelease, tmp_path: Path) -> None:
    status, out, err = run(capsys, "resolve", *options(fake_release, release_server.base_url, tmp_path))
    assert (status, err) == (0, "")
    data = json.loads(out)
    assert JSON_KEYS <= set(data)
    assert data["asset"] == fake_release.asset_name(FLAVOR)
    assert data["url"] == quoted_url(release_server, fake_release)
    assert data["sha256"] == fake_release.sha256(FLAVOR)
    assert data["python_version"] == fake_release.python_version
    assert data["release"] == fake_release.tag
    assert data["target"] == fake_release.triple
    assert release_server.request_count(fake_release.asset_name(FLAVOR)) == 0  # resolve downloads no archive
    assert release_server.request_count("SHA256SUMS") == 1


def test_resolve_defaults_host_target_and_minor_version(capsys: pytest.CaptureFixture[str],
                                                        release_server: ReleaseServer, fake_release: FakeRelease,
                                                        tmp_path: Path) -> None:
    minor = ".".join(fake_release.python_version.split(".")[:2])
    status, out, err = run(capsys, "resolve", "--release", fake_release.tag, "--python-version", minor,
                           "--mirror", release_server.base_url + "/", "--cache-dir", str(tmp_path))
    assert (status, err) == (0, "")
    data = json.loads(out)
    assert data["target"] == fake_release.triple
    assert data["python_version"] == fake_release.python_version
    assert data["asset"] == fake_release.asset_name("install_only_stripped")  # the default flavor
    assert data["url"] == quoted_url(release_server, fake_release, "install_only_stripped")


def test_resolve_latest_reads_latest_release_json(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer,
                                                  fake_release: FakeRelease, tmp_path: Path) -> None:
    argv = options(fake_release, release_server.base_url, tmp_path)
    argv[1] = "latest"
    status, out, err = run(capsys, "resolve", *argv)
    assert (status, err) == (0, "")
    assert json.loads(out)["release"] == fake_release.tag
    assert release_server.request_count("latest-release.json") == 1


def test_resolve_from_environment_mirror_and_cache_dir(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, release_server: ReleaseServer,
                                                       fake_release: FakeRelease, tmp_path: Path) -> None:
    monkeypatch.setenv("HATCH_PBS_MIRROR", release_server.base_url)
    monkeypatch.setenv("HATCH_PBS_CACHE_DIR", str(tmp_path / "env-cache"))
    argv = options(fake_release, "unused", tmp_path)[:-4]  # no --mirror, no --cache-dir
    status, out, err = run(capsys, "resolve", *argv)
    assert (status, err) == (0, "")
    assert json.loads(out)["url"] == quoted_url(release_server, fake_release)
    assert list((tmp_path / "env-cache").rglob("SHA256SUMS"))


def test_mirror_option_beats_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                         release_server: ReleaseServer, fake_release: FakeRelease,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("HATCH_PBS_MIRROR", "http://127.0.0.1:9/unused")
    status, out, _ = run(capsys, "resolve", *options(fake_release, release_server.base_url, tmp_path))
    assert status == 0
    assert json.loads(out)["url"].startswith(release_server.base_url + "/")


# --------------------------------------------------------------------------------------------------------------
# fetch


def test_fetch_prints_the_cached_path(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer,
                                      fake_release: FakeRelease, tmp_path: Path) -> None:
    argv = options(fake_release, release_server.base_url, tmp_path / "cache")
    status, out, err = run(capsys, "fetch", *argv)
    assert (status, err) == (0, "")
    assert out.count("\n") == 1
    path = Path(out.strip())
    assert path.is_file()
    assert path.is_relative_to(tmp_path / "cache")
    assert path.name == fake_release.asset_name(FLAVOR)
    assert file_sha256(path) == fake_release.sha256(FLAVOR)
    # Again, warm: the same path and no request for the archive (nor the catalogue).
    assert run(capsys, "fetch", *argv) == (0, out, "")
    assert release_server.request_count(fake_release.asset_name(FLAVOR)) == 1
    assert release_server.request_count("SHA256SUMS") == 1


def test_fetch_offline_with_warm_cache(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       release_server: ReleaseServer, fake_release: FakeRelease,
                                       tmp_path: Path) -> None:
    argv = options(fake_release, release_server.base_url, tmp_path)
    status, online, _ = run(capsys, "fetch", *argv)
    assert status == 0
    release_server.requests.clear()
    monkeypatch.setenv("HATCH_PBS_OFFLINE", "1")
    assert run(capsys, "fetch", *argv) == (0, online, "")
    assert release_server.requests == []


def test_fetch_from_file_mirror_offline(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                        fake_release: FakeRelease, tmp_path: Path) -> None:
    monkeypatch.setenv("HATCH_PBS_OFFLINE", "yes")
    status, out, err = run(capsys, "fetch", *options(fake_release, fake_release.root.as_uri(), tmp_path))
    assert (status, err) == (0, "")
    assert file_sha256(Path(out.strip())) == fake_release.sha256(FLAVOR)


def test_fetch_retries_a_server_error(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer,
                                      fake_release: FakeRelease, tmp_path: Path) -> None:
    release_server.add_fault(fake_release.asset_name(FLAVOR), "503")
    status, out, err = run(capsys, "fetch", *options(fake_release, release_server.base_url, tmp_path))
    assert (status, err) == (0, "")
    assert file_sha256(Path(out.strip())) == fake_release.sha256(FLAVOR)
    assert release_server.request_count(fake_release.asset_name(FLAVOR)) == 2


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--version")
    assert status == 0
    assert out.strip() == f"hatch-pbs {__version__}"


# --------------------------------------------------------------------------------------------------------------
# Failures: status 1 (2 for usage errors) and exactly one "hatch-pbs: error:" line


@pytest.mark.parametrize(("command", "change", "expected"), [
    ("resolve", {"--flavor": "bogus"}, "--flavor"),
    ("fetch", {"--flavor": "bogus"}, "'bogus'"),
    ("resolve", {"--python-version": "banana"}, "--python-version"),
    ("resolve", {"--python-version": "3.99"}, "3.99"),
    ("fetch", {"--python-version": "3.99.1"}, "3.99.1"),
    ("resolve", {"--release": "yesterday"}, "--release"),
    ("resolve", {"--release": "20991231"}, "20991231"),
    ("resolve", {"--target": "sparc-sun-solaris"}, "sparc-sun-solaris"),
    ("resolve", {"--target": "riscv64-unknown-linux-gnu"}, "riscv64-unknown-linux-gnu"),
    ("resolve", {"--mirror": "ftp://mirror.example"}, "--mirror"),
    ("resolve", {"--mirror": "http://[bad"}, "http://[bad"),
])
def test_user_errors(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer, fake_release: FakeRelease,
                     tmp_path: Path, command: str, change: dict[str, str], expected: str) -> None:
    argv = options(fake_release, release_server.base_url, tmp_path)
    for option, value in change.items():
        argv[argv.index(option) + 1] = value
    status, out, err = run(capsys, command, *argv)
    assert status == 1
    assert expected in assert_one_error_line(status, out, err)


def test_all_option_problems_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, "resolve", "--flavor", "bogus", "--release", "soon", "--cache-dir", str(tmp_path))
    line = assert_one_error_line(status, out, err)
    assert "--flavor" in line and "--release" in line
    assert status == 1


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["resolve", "--bogus"],
    ["fetch", "--flavor"],
    ["--bogus", "resolve"],
    ["cache"],
    ["cache", "verify", "--all"],
    ["cache", "clean", "--older-than", "-1"],
    ["cache", "clean", "--older-than", "soon"],
])
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert_one_error_line(status, out, err)


def test_cache_verify_and_clean_of_a_missing_cache_create_nothing(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    cache = tmp_path / "no-cache"
    assert run(capsys, "cache", "verify", "--cache-dir", str(cache)) == (
        0, f"checked no entries in {cache} (0.0 MB): 0 damaged\n", "")
    assert run(capsys, "cache", "clean", "--cache-dir", str(cache)) == (0, f"freed 0 bytes (0.0 MB) in {cache}\n", "")
    assert not cache.exists()
    (tmp_path / "a-file").write_text("")
    status, out, err = run(capsys, "cache", "clean", "--cache-dir", str(tmp_path / "a-file"))
    assert_one_error_line(status, out, err)
    assert status == 1 and "--cache-dir" in err


def test_cache_verify_and_clean_find_damaged_bytecode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from hatch_pbs.bytecode.compiler import compile_bytecode

    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    (site / "module.py").write_text("VALUE = 1\n")
    compile_bytecode(Path(sys.executable), site, cache_dir=cache / "bytecode")
    (entry,) = (cache / "bytecode").rglob("*.pyc")
    assert run(capsys, "cache", "verify", "--cache-dir", str(cache))[0] == 0
    entry.write_bytes(entry.read_bytes()[:-3])
    status, out, err = run(capsys, "cache", "verify", "--cache-dir", str(cache))
    assert status == 1 and out.splitlines()[0] == (
        f"damaged: bytecode {entry}: the sha256 of its bytecode differs from the recorded one")
    assert err == (f"hatch-pbs: error: 1 damaged cache entry in {cache}; `hatch-pbs cache clean --cache-dir {cache}` "
                   f"removes them (builds replace them anyway)\n")
    status, out, err = run(capsys, "cache", "clean", "--cache-dir", str(cache))
    assert status == 0 and out.startswith(f"removed bytecode {entry} (damaged: ") and not entry.exists()
    assert not (cache / "bytecode").exists() or not list((cache / "bytecode").rglob("*"))  # empty directories too


def test_mirror_404(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer, fake_release: FakeRelease,
                    tmp_path: Path) -> None:
    argv = options(fake_release, release_server.base_url + "/nowhere", tmp_path)
    status, out, err = run(capsys, "fetch", *argv)
    line = assert_one_error_line(status, out, err)
    assert "HTTP 404" in line and "SHA256SUMS" in line
    assert release_server.request_count("SHA256SUMS") == 1


def test_asset_404(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer, fake_release: FakeRelease,
                   tmp_path: Path) -> None:
    release_server.add_fault(fake_release.asset_name(FLAVOR), "404")
    status, out, err = run(capsys, "fetch", *options(fake_release, release_server.base_url, tmp_path))
    assert "HTTP 404" in assert_one_error_line(status, out, err)
    assert release_server.request_count(fake_release.asset_name(FLAVOR)) == 1


def test_checksum_mismatch(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer,
                           fake_release: FakeRelease, tmp_path: Path) -> None:
    release_server.add_fault(fake_release.asset_name(FLAVOR), "wrong-body")
    status, out, err = run(capsys, "fetch", *options(fake_release, release_server.base_url, tmp_path))
    line = assert_one_error_line(status, out, err)
    assert fake_release.sha256(FLAVOR) in line
    assert not list((tmp_path / "assets").rglob("*.tar.gz"))
    assert not list(tmp_path.rglob("*.part"))


def test_offline_cold_cache(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                            release_server: ReleaseServer, fake_release: FakeRelease, tmp_path: Path) -> None:
    monkeypatch.setenv("HATCH_PBS_OFFLINE", "1")
    status, out, err = run(capsys, "fetch", *options(fake_release, release_server.base_url, tmp_path))
    line = assert_one_error_line(status, out, err)
    assert "offline" in line and "hatch-pbs fetch --release" in line
    assert release_server.requests == []


def test_offline_asset_miss_names_asset_and_fetch_command(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          release_server: ReleaseServer, fake_release: FakeRelease,
                                                          tmp_path: Path) -> None:
    argv = options(fake_release, release_server.base_url, tmp_path)
    assert run(capsys, "resolve", *argv)[0] == 0  # caches the catalogue, not the archive
    release_server.requests.clear()
    monkeypatch.setenv("HATCH_PBS_OFFLINE", "1")
    status, out, err = run(capsys, "fetch", *argv)
    line = assert_one_error_line(status, out, err)
    assert fake_release.asset_name(FLAVOR) in line
    suggested = line.split("`")[1]
    assert suggested.split() == ["hatch-pbs", "fetch", *argv]
    assert release_server.requests == []
    # The suggested command, run online, fills the cache the offline build reads.
    monkeypatch.delenv("HATCH_PBS_OFFLINE")
    status, path, _ = run(capsys, *suggested.split()[1:])
    assert status == 0
    monkeypatch.setenv("HATCH_PBS_OFFLINE", "1")
    assert run(capsys, "fetch", *argv) == (0, path, "")


def test_invalid_offline_variable(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                  release_server: ReleaseServer, fake_release: FakeRelease, tmp_path: Path) -> None:
    monkeypatch.setenv("HATCH_PBS_OFFLINE", "maybe")
    status, out, err = run(capsys, "resolve", *options(fake_release, release_server.base_url, tmp_path))
    assert "HATCH_PBS_OFFLINE" in assert_one_error_line(status, out, err)
    assert release_server.requests == []


def test_unusable_cache_dir(capsys: pytest.CaptureFixture[str], release_server: ReleaseServer,
                            fake_release: FakeRelease, tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    status, out, err = run(capsys, "fetch", *options(fake_release, release_server.base_url, not_a_directory))
    assert str(not_a_directory) in assert_one_error_line(status, out, err)


# --------------------------------------------------------------------------------------------------------------
# The installed console script


def console_script() -> str:
    script = shutil.which("hatch-pbs", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail(f"the hatch-pbs console script is not installed beside {sys.executable}")
    return script


def script_environment(**extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HATCH_PBS_")}
    environment.update(extra)
    return environment


def test_console_script_fetch(release_server: ReleaseServer, fake_release: FakeRelease, tmp_path: Path) -> None:
    proc = subprocess.run([console_script(), "fetch", *options(fake_release, release_server.base_url, tmp_path)],
                          capture_output=True, text=True, env=script_environment(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert file_sha256(path) == fake_release.sha256(FLAVOR)
    assert release_server.request_count(fake_release.asset_name(FLAVOR)) == 1

    proc = subprocess.run([console_script(), "resolve", *options(fake_release, release_server.base_url, tmp_path)],
                          capture_output=True, text=True, env=script_environment(HATCH_PBS_OFFLINE="1"), timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sha256"] == fake_release.sha256(FLAVOR)


@pytest.mark.parametrize(("argv", "status"), [(["resolve", "--flavor", "bogus"], 1), (["resolve", "--bogus"], 2)])
def test_console_script_errors(release_server: ReleaseServer, fake_release: FakeRelease, tmp_path: Path,
                               argv: list[str], status: int) -> None:
    proc = subprocess.run([console_script(), *argv, "--cache-dir", str(tmp_path)], capture_output=True, text=True,
                          env=script_environment(), timeout=120, check=False)
    assert proc.returncode == status
    assert_one_error_line(proc.returncode, proc.stdout, proc.stderr)


def test_console_script_offline_miss(release_server: ReleaseServer, fake_release: FakeRelease,
                                     tmp_path: Path) -> None:
    proc = subprocess.run([console_script(), "fetch", *options(fake_release, release_server.base_url, tmp_path)],
                          capture_output=True, text=True, env=script_environment(HATCH_PBS_OFFLINE="1"), timeout=120,
                          check=False)
    assert proc.returncode == 1
    assert "hatch-pbs fetch" in assert_one_error_line(proc.returncode, proc.stdout, proc.stderr)
    assert release_server.requests == []


def test_python_dash_m(release_server: ReleaseServer, fake_release: FakeRelease, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hatch_pbs.cli", "resolve",
                           *options(fake_release, release_server.base_url, tmp_path)],
                          capture_output=True, text=True, env=script_environment(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert JSON_KEYS <= set(json.loads(proc.stdout))


@pytest.mark.parametrize("cache_dir", ["/dev/null/x", "/etc/passwd"])
@pytest.mark.parametrize("given", ["option", "environment"])
def test_console_script_unusable_cache_dir_is_one_line(release_server: ReleaseServer, fake_release: FakeRelease,
                                                       tmp_path: Path, cache_dir: str, given: str) -> None:
    argv = [console_script(), "fetch", "--release", fake_release.tag, "--python-version", fake_release.python_version,
            "--target", fake_release.triple, "--mirror", release_server.base_url]
    extra = {"HATCH_PBS_CACHE_DIR": cache_dir} if given == "environment" else {}
    if given == "option":
        argv += ["--cache-dir", cache_dir]
    proc = subprocess.run(argv, capture_output=True, text=True, env=script_environment(**extra), timeout=120,
                          check=False)
    line = assert_one_error_line(proc.returncode, proc.stdout, proc.stderr)
    assert ("Option --cache-dir" if given == "option" else "Environment variable `HATCH_PBS_CACHE_DIR`") in line
    assert ("/dev/null is not a directory" if cache_dir == "/dev/null/x" else "/etc/passwd is a file") in line
    assert release_server.requests == []


def test_console_script_mirror_with_a_nul_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([console_script(), "resolve", "--mirror", "https://mirror.example/pb\x01s", "--cache-dir",
                           str(tmp_path)], capture_output=True, text=True, env=script_environment(), timeout=120,
                          check=False)
    assert "without spaces or control characters" in assert_one_error_line(proc.returncode, proc.stdout,
                                                                            proc.stderr)
