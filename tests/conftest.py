"""Shared fixtures: a fake PBS release of the running CPython, a loopback server for it, and a wheelhouse."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import WHEEL_PLATFORMS, WHEELLESS_TRIPLES
from foreign_release import CrossRelease, ZigUnavailableError, build_cross_release
from pbs_release import FakeRelease, ReleaseServer, UnsupportedHostError, build_release

WHEELHOUSE_REQUIREMENTS = ("rich", "orjson")
"""Distributions (with their dependencies) that the example application needs, downloaded once per session."""


@pytest.fixture(scope="session")
def fake_release(tmp_path_factory: pytest.TempPathFactory) -> FakeRelease:
    """A PBS-layout release (three served assets, SHA256SUMS, latest-release.json) of the running CPython."""
    try:
        return build_release(tmp_path_factory.mktemp("pbs-release"))
    except UnsupportedHostError as exc:
        pytest.skip(f"cannot build a fake PBS release on this host: {exc}")


@pytest.fixture
def release_server(fake_release: FakeRelease) -> Iterator[ReleaseServer]:
    """A loopback HTTP server for ``fake_release``; its request log and faults are fresh for each test."""
    with ReleaseServer(fake_release.root) as server:
        yield server


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of wheels (for this interpreter) of the example application's dependencies.

    Use it offline with ``UV_OFFLINE=1 UV_FIND_LINKS=<dir>``. Downloading from PyPI is the only network use
    in the tests; a failure fails the test rather than skipping it, so that it cannot hide bugs.
    """
    dest = tmp_path_factory.mktemp("wheelhouse")
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--only-binary=:all:"]
    cmd += ["--dest", str(dest), *WHEELHOUSE_REQUIREMENTS]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        pytest.fail(f"could not build the wheelhouse ({' '.join(cmd)} exited {proc.returncode}):\n{tail}")
    if not any(dest.glob("*.whl")):
        pytest.fail(f"pip download left no wheels in {dest}")
    return dest


@pytest.fixture(scope="session")
def cross_release(tmp_path_factory: pytest.TempPathFactory, fake_release: FakeRelease) -> CrossRelease:
    """``fake_release`` plus zig-built stand-in archives (install_only, install_only_stripped) of every other
    triple, with one SHA256SUMS for all served assets; serve it with ``ReleaseServer(cross_release.root)``."""
    try:
        return build_cross_release(tmp_path_factory.mktemp("cross-release"), fake_release)
    except ZigUnavailableError as exc:
        pytest.skip(f"cannot build foreign stand-in runtimes: {exc}")


@pytest.fixture(scope="session")
def cross_wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rich (pure Python) and orjson wheels for every platform of ``all``, for this CPython (PyPI download).

    A platform for which orjson publishes no wheel for this CPython is left out, not failed (orjson's Windows arm64
    wheels start at CPython 3.11): it is recorded in ``e2e_support.WHEELLESS_TRIPLES``, and :func:`cross_triples`
    lists the triples the wheelhouse has. Any other failure fails.
    """
    destination = tmp_path_factory.mktemp("cross-wheelhouse")
    minor = f"{sys.version_info.major}{sys.version_info.minor}"
    for triple, platform in WHEEL_PLATFORMS.items():
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
                   "--only-binary=:all:", "--dest", str(destination), "--implementation", "cp", "--python-version",
                   minor, "--abi", f"cp{minor}", "--platform", platform, "rich", "orjson"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 and "No matching distribution found for orjson" in result.stderr:
            WHEELLESS_TRIPLES[triple] = f"orjson publishes no cp{minor} wheel for {platform}"
        elif result.returncode != 0:
            pytest.fail(f"pip download for {platform} failed:\n{result.stdout}{result.stderr}")
    return destination


@pytest.fixture(scope="session")
def cross_triples(cross_wheelhouse: Path) -> tuple[str, ...]:
    """The triples of ``all`` (in order) that ``cross_wheelhouse`` has wheels for."""
    return tuple(triple for triple in WHEEL_PLATFORMS if triple not in WHEELLESS_TRIPLES)
