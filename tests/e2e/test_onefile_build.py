"""Single-file executables end to end (option ``onefile``): example_project built for the host, x86_64 Windows,
aarch64 Linux and aarch64 macOS with the default archive formats (``.tar.gz``, and ``.zip`` for Windows, so both
payload conversions run); the host executable run with the interpreter's prefix hidden (first and later start,
arguments, exit codes), the Windows one under Wine, the macOS one checked by structure and signature; payloads compared with the archives member by member; a rebuild
with a fresh cache writes the same bytes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import lief
import pytest
import zstandard
from e2e_support import can_hide_directories, copy_example_project, require_cross_wheels, run_hatchling, run_hidden
from foreign_release import CrossRelease
from pbs_release import FakeRelease
from wine_support import wine_env, wine_problem

from hatch_pbs.binaries.codesign import read_code_directory, signature_problems
from hatch_pbs.onefile.payload import read_trailer

pytestmark = pytest.mark.e2e

HOST = "x86_64-unknown-linux-gnu"
WINDOWS = "x86_64-pc-windows-msvc"
MACOS = "aarch64-apple-darwin"
TARGETS = [HOST, WINDOWS, "aarch64-unknown-linux-gnu", MACOS]


def _onefile(triple: str) -> str:
    return f"pbs-demo-1.0.0-{triple}" + (".exe" if "windows" in triple else "")


def _archive(triple: str) -> str:
    return f"pbs-demo-1.0.0-{triple}." + ("zip" if "windows" in triple else "tar.gz")


@dataclass
class OnefileBuild:
    dist: Path
    output: str
    env: dict[str, str]
    project: Path


def _build(work: Path, release: CrossRelease, wheelhouse: Path, *, cache: Path) -> OnefileBuild:
    project = copy_example_project(work / "project", hook_table=(
        f'python-version = "{release.python_version}"\ntargets = {json.dumps(TARGETS)}\nonefile = true'))
    env = {"HATCH_PBS_MIRROR": release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(cache), "UV_OFFLINE": "1",
           "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(work / "uv")}
    result = run_hatchling(project, "app", env, "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    return OnefileBuild(project / "dist" / "app", result.stdout + result.stderr, env, project)


@pytest.fixture(scope="module")
def onefile_build(cross_release: CrossRelease, cross_wheelhouse: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> OnefileBuild:
    for triple in TARGETS:
        require_cross_wheels(triple)
    work = tmp_path_factory.mktemp("onefile")
    return _build(work, cross_release, cross_wheelhouse, cache=work / "cache")


def test_one_executable_per_target_is_published_with_the_archives(onefile_build: OnefileBuild) -> None:
    sums = (onefile_build.dist / "SHA256SUMS").read_text()
    for triple in TARGETS:
        path = onefile_build.dist / _onefile(triple)
        assert stat.S_IMODE(path.stat().st_mode) == 0o755
        assert f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n" in sums
        assert f"{path} (" in onefile_build.output and "single-file executable)" in onefile_build.output
        assert (onefile_build.dist / _archive(triple)).is_file()
    assert not [name for name in os.listdir(onefile_build.dist) if name.startswith(".")]


def _payload_members(path: Path) -> dict[str, tuple[int, bytes | str]]:
    """Member name -> (permission bits, content or link target) of the tar.zst payload of the executable."""
    trailer = read_trailer(path)
    with open(path, "rb") as stream:
        stream.seek(trailer.payload_offset)
        payload = stream.read(trailer.payload_size)
    assert hashlib.sha256(payload).digest() == trailer.sha256
    members: dict[str, tuple[int, bytes | str]] = {}
    with zstandard.ZstdDecompressor().stream_reader(payload) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        for member in tar:
            content = tar.extractfile(member).read() if member.isfile() else member.linkname  # type: ignore[union-attr]
            members[member.name.rstrip("/")] = (stat.S_IMODE(member.mode), content)
    return members


@pytest.mark.parametrize("triple", [HOST, MACOS])
def test_tar_payloads_hold_the_archives_members(onefile_build: OnefileBuild, triple: str) -> None:
    members = _payload_members(onefile_build.dist / _onefile(triple))
    with tarfile.open(onefile_build.dist / _archive(triple)) as tar:
        assert members == {member.name: (stat.S_IMODE(member.mode),
                                         tar.extractfile(member).read() if member.isfile() else member.linkname)  # type: ignore[union-attr]
                           for member in tar.getmembers()}


def test_macos_executable_is_signed_with_the_payload_in_its_segment(onefile_build: OnefileBuild) -> None:
    path = onefile_build.dist / _onefile(MACOS)
    assert signature_problems(path) == []
    directory = read_code_directory(path)
    assert directory.is_adhoc and not directory.is_linker_signed
    binary = lief.MachO.parse(str(path)).at(0)
    segment = binary.get_segment("__HPBSONE")
    trailer = read_trailer(path)
    assert segment.file_offset <= trailer.payload_offset < segment.file_offset + segment.file_size
    assert [s.name for s in binary.segments][-2:] == ["__HPBSONE", "__LINKEDIT"]


def test_zip_payload_holds_the_archives_members(onefile_build: OnefileBuild) -> None:
    windows = _payload_members(onefile_build.dist / _onefile(WINDOWS))
    with zipfile.ZipFile(onefile_build.dist / _archive(WINDOWS)) as archive:
        expected = {entry.filename.rstrip("/"): (stat.S_IMODE(entry.external_attr >> 16),
                                                 b"" if entry.is_dir() else archive.read(entry))
                    for entry in archive.infolist()}
    assert {name: (mode, b"" if content == "" else content) for name, (mode, content) in windows.items()} == expected
    assert read_trailer(onefile_build.dist / _onefile(WINDOWS)).entry == "bin/pbs-demo.exe"
    assert read_trailer(onefile_build.dist / _onefile(HOST)).entry == "bin/pbs-demo"


def _run(onefile_build: OnefileBuild, fake_release: FakeRelease, cache: Path, *arguments: str,
         ) -> subprocess.CompletedProcess[str]:
    reason = can_hide_directories()
    if reason:
        pytest.skip(f"cannot hide the source prefix: {reason}")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cache.parent), "HATCH_PBS_ONEFILE_CACHE": str(cache)}
    return run_hidden(fake_release.source_prefix, [str(onefile_build.dist / _onefile(HOST)), *arguments],
                      cwd=cache.parent, env=env)


def test_host_executable_runs_with_the_prefix_hidden(onefile_build: OnefileBuild, fake_release: FakeRelease,
                                                     tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _run(onefile_build, fake_release, cache, "doctor")
    assert first.returncode == 0, first.stderr
    digest = read_trailer(onefile_build.dist / _onefile(HOST)).sha256.hex()
    assert sorted(os.listdir(cache)) == [digest]
    report = json.loads(first.stdout)
    assert report["python_executable"].startswith(f"{cache / digest}/python/")
    assert report["orjson_file"].startswith(f"{cache / digest}/app/orjson/")
    later = _run(onefile_build, fake_release, cache, "echo", "two words", "", "ünï")
    assert (later.returncode, json.loads(later.stdout)) == (0, ["two words", "", "ünï"]), later.stderr
    assert _run(onefile_build, fake_release, cache, "exit", "7").returncode == 7
    version = _run(onefile_build, fake_release, cache, "--version")
    assert (version.returncode, version.stdout) == (0, "pbs-demo 1.0.0\n")


def test_windows_executable_runs_under_wine(onefile_build: OnefileBuild, tmp_path: Path) -> None:
    problem = wine_problem()
    if problem:
        pytest.skip(problem)
    executable = onefile_build.dist / _onefile(WINDOWS)
    result = subprocess.run(["wine", str(executable), "two words", "", 'q"uote'], capture_output=True, text=True,
                            env={**wine_env(), "HATCH_PBS_ONEFILE_CACHE": str(tmp_path / "cache")}, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout.strip().splitlines()[-1])  # the stand-in python.exe prints its argv
    assert argv[1:3] == ["-I", "-c"]
    assert argv[-3:] == ["two words", "", 'q"uote']
    digest = read_trailer(executable).sha256.hex()
    assert argv[-4].lower().endswith(f"{digest}\\bin\\pbs-demo.exe")
    assert os.listdir(tmp_path / "cache") == [digest]


def test_a_rebuild_with_a_fresh_cache_writes_the_same_executables(onefile_build: OnefileBuild,
                                                                  cross_release: CrossRelease,
                                                                  cross_wheelhouse: Path, tmp_path: Path) -> None:
    again = _build(tmp_path, cross_release, cross_wheelhouse, cache=tmp_path / "cache")
    for triple in TARGETS:
        assert (again.dist / _onefile(triple)).read_bytes() == (onefile_build.dist / _onefile(triple)).read_bytes()
