"""Fake python-build-standalone (PBS) releases for tests, and a loopback server that serves them.

Tests never reach GitHub. :func:`build_release` repackages the *running* CPython (``sys.base_prefix``) into
PBS-layout release assets (``install_only``, ``install_only_stripped`` and ``full``) plus the release's
``SHA256SUMS`` catalogue and a ``latest-release.json``, laid out like a mirror::

    <root>/latest-release.json
    <root>/<tag>/SHA256SUMS
    <root>/<tag>/cpython-<ver>+<tag>-<triple>-install_only.tar.gz
    <root>/<tag>/cpython-<ver>+<tag>-<triple>-install_only_stripped.tar.gz
    <root>/<tag>/cpython-<ver>+<tag>-<triple>-pgo+lto-full.tar.zst

The source prefix is copied as is: on this machine's pyenv builds ``bin/python3.X``, ``libpython3.X.so.1.0`` and
every ``lib-dynload/*.so`` carry an absolute RUNPATH into that prefix, and the pip scripts have absolute
shebangs into it. That is deliberate: relocation bugs must show. As in PBS releases, the ``install_only_stripped``
asset's ELF files are stripped (``strip --strip-unneeded``, when binutils is installed), and the standard
library's bytecode of the interpreter's own cache tag ships in ``__pycache__/`` (all three optimization levels).

:class:`ReleaseServer` serves such a root over HTTP on ``127.0.0.1`` (with byte ranges) and can inject faults
(error statuses with ``Retry-After``, truncated, wrong or HTML bodies, wrong lengths, connection resets, stalls,
slow bodies, redirects) into the next requests of a file.

The archives are byte-reproducible for an unchanged source prefix (sorted members, normalized owners, gzip
header without a time stamp).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import importlib.machinery
import importlib.util
import io
import json
import os
import platform
import shutil
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

__all__ = [
    "FAULT_KINDS",
    "FLAVORS",
    "RELEASE_TAG",
    "FakeRelease",
    "ReleaseServer",
    "UnsupportedHostError",
    "build_release",
    "host_triple",
    "runtime_manylinux",
]

RELEASE_TAG = "20261021"
"""Release tag used by fake releases (a PBS tag is a date)."""

FLAVORS = ("install_only", "install_only_stripped", "full")
"""Flavors :func:`build_release` produces, in the order of :attr:`FakeRelease.assets`."""

FULL_BUILD_OPTIONS = "pgo+lto"
"""Build options of the served ``full`` asset (what PBS uses for Linux gnu x86_64/aarch64)."""

FAULT_KINDS = frozenset({
    "404", "429", "500", "503", "truncate", "wrong-body", "reset", "reset-after-half", "stall", "stall-headers",
    "trickle", "html-200", "length-long", "length-short", "redirect", "ignore-range",
})
"""Fault kinds accepted by :meth:`ReleaseServer.add_fault` (described there)."""

HTML_ERROR_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Sign in - Artifact Mirror</title></head>\n"
                   b"<body><h1>Your session has expired</h1><p>Please sign in again.</p></body></html>\n")
"""Body of the ``html-200`` fault: what a proxy or an expired mirror session serves with status 200."""

GITHUB_RELEASES = "https://github.com/astral-sh/python-build-standalone/releases"

_GZIP_LEVEL = 1
_ZSTD_LEVEL = 3
_DIR_MTIME = 1792540800
"""mtime (2026-10-21T00:00:00Z) of directories and generated members: directory mtimes of the source prefix
change whenever anything is installed into it, and would make the archives irreproducible."""
_MARKER_DIR = "share/hatch-pbs-fixture"
"""Directory (relative to the installation) of the file that makes each flavor's content unique."""

# Triples listed (not served) in the catalogue, with the build options of their `full` asset.
_CATALOGUE_TRIPLES = {
    "aarch64-apple-darwin": "pgo+lto",
    "x86_64-pc-windows-msvc": "pgo",
    "aarch64-unknown-linux-gnu": "pgo+lto",
    "x86_64-unknown-linux-musl": "lto",
}
_CATALOGUE_VERSIONS = (f"3.{sys.version_info.minor + 1}.12", f"3.{sys.version_info.minor + 2}.9")
"""Versions listed (not served) in the catalogue: newer *minor* versions than the running (served) one, so that no
catalogue-only entry shadows the served version when resolving ``3.X`` for any running CPython 3.10-3.13
(under 3.11: ``3.12.12`` and ``3.13.9``)."""
_FREETHREADED_VERSION = f"3.{max(sys.version_info.minor + 2, 13)}.9"
"""Version of the catalogue-only freethreaded assets (PBS builds freethreaded 3.13+; never the served minor)."""


class UnsupportedHostError(RuntimeError):
    """The running interpreter or host cannot be repackaged as a PBS release (only Linux glibc is supported)."""


def host_triple() -> str:
    """Return the PBS target triple of this host, e.g. ``"x86_64-unknown-linux-gnu"``.

    Raises :class:`UnsupportedHostError` on anything but Linux glibc on x86_64 or aarch64.
    """
    if sys.platform != "linux":
        raise UnsupportedHostError(f"fake PBS releases need Linux, this host is {sys.platform!r}")
    libc, _ = platform.libc_ver()
    if libc != "glibc":
        raise UnsupportedHostError(f"fake PBS releases need glibc, this host's C library is {libc or 'unknown'!r}")
    machine = platform.machine().lower()
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine)
    if arch is None:
        raise UnsupportedHostError(f"fake PBS releases support x86_64 and aarch64, this host is {machine!r}")
    return f"{arch}-unknown-linux-gnu"


def _asset_name(version: str, tag: str, triple: str, flavor: str, build_options: str = FULL_BUILD_OPTIONS) -> str:
    """PBS asset file name of one flavor (``full`` takes ``build_options``; a literal ``+`` separates the tag)."""
    stem = f"cpython-{version}+{tag}-{triple}"
    if flavor in ("install_only", "install_only_stripped"):
        return f"{stem}-{flavor}.tar.gz"
    if flavor == "full":
        return f"{stem}-{build_options}-full.tar.zst"
    raise ValueError(f"unknown flavor {flavor!r}; expected one of {', '.join(FLAVORS)}")


@dataclasses.dataclass(frozen=True)
class FakeRelease:
    """A fake PBS release on disk, made by :func:`build_release`."""

    root: Path
    """Mirror root: ``<root>/<tag>/<asset files>``, ``<root>/<tag>/SHA256SUMS``, ``<root>/latest-release.json``."""
    tag: str
    """Release tag, e.g. ``"20261021"``."""
    python_version: str
    """Full version of the repackaged interpreter, e.g. ``"3.11.7"``."""
    triple: str
    """Target triple of the served assets (the host's), e.g. ``"x86_64-unknown-linux-gnu"``."""
    assets: dict[str, Path]
    """Flavor (``install_only``, ``install_only_stripped``, ``full``) -> served archive path."""
    source_prefix: Path
    """The ``sys.base_prefix`` that was repackaged."""

    @property
    def manylinux(self) -> str:
        """The option ``manylinux`` an artifact of this runtime must declare (:func:`runtime_manylinux`)."""
        return runtime_manylinux(self.source_prefix)

    @property
    def floors(self):  # -> hatch_pbs.release.triples.PlatformFloors
        """The default platform floors with :attr:`manylinux` raised to what this runtime needs."""
        from hatch_pbs.release.triples import PlatformFloors

        return PlatformFloors(manylinux=tuple(int(part) for part in self.manylinux.split("_")))

    @property
    def release_dir(self) -> Path:
        """Directory holding the assets and ``SHA256SUMS``: ``<root>/<tag>``."""
        return self.root / self.tag

    def asset_name(self, flavor: str) -> str:
        """File name of the served asset of ``flavor``, e.g. ``cpython-3.11.7+20261021-...-install_only.tar.gz``."""
        return self.assets[flavor].name

    def sha256(self, flavor: str) -> str:
        """Lowercase hex sha256 of the served asset of ``flavor`` (as listed in ``SHA256SUMS``)."""
        return _sha256_file(self.assets[flavor])


@functools.cache
def runtime_manylinux(prefix: Path = Path(sys.base_prefix)) -> str:
    """The lowest value of the option ``manylinux`` that allows the runtime repackaged from ``prefix``: this
    machine's CPython is linked against this machine's glibc (2.35 for the pyenv builds here), above the 2.17 of
    python-build-standalone's runtimes, and the audit refuses an artifact any file of which needs a newer glibc
    than declared. Builds of the fake runtime declare it; the default floor's behaviour is tested in
    ``test_floors.py`` and ``test_audit.py``."""
    from hatch_pbs.binaries.floors import glibc_needed
    from hatch_pbs.release.triples import MANYLINUX_FLOORS

    needs = [glibc_needed(entry.source) for entry in _collect_tree(Path(prefix))
             if entry.source is not None and entry.source.is_file() and not entry.source.is_symlink()]
    needed = max((version for version in needs if version is not None), default=(2, 17))
    allowing = [floor for floor in MANYLINUX_FLOORS if tuple(int(part) for part in floor.split("_")) >= needed]
    if not allowing:
        raise UnsupportedHostError(f"this CPython needs glibc {needed}, above every manylinux floor uv knows")
    return allowing[0]


def build_release(root: Path, *, tag: str = RELEASE_TAG, extra_catalogue: bool = True) -> FakeRelease:
    """Repackage the running CPython into a fake PBS release under ``root`` (created if missing).

    Writes the three served assets, ``<root>/<tag>/SHA256SUMS`` (with ``extra_catalogue``, also realistic
    entries for assets that are not served: other triples, versions and a freethreaded build, whose sha256 is
    that of their file name) and ``<root>/latest-release.json``. Raises :class:`UnsupportedHostError` when the
    host is not Linux glibc or the interpreter's files are not where a Unix ``make install`` puts them.
    """
    triple = host_triple()
    prefix = Path(sys.base_prefix)
    version = platform.python_version()
    tree = _collect_tree(prefix)

    release_dir = Path(root) / tag
    release_dir.mkdir(parents=True, exist_ok=True)
    assets = {flavor: release_dir / _asset_name(version, tag, triple, flavor) for flavor in FLAVORS}

    python_json = json.dumps(_python_json(triple, version), indent=2, sort_keys=True).encode() + b"\n"
    license_file = prefix / "lib" / _stdlib_dirname() / "LICENSE.txt"
    # zlib and zstd release the GIL while compressing: the three archives build in parallel.
    with ThreadPoolExecutor(max_workers=len(FLAVORS)) as pool:
        jobs = [
            pool.submit(_write_tar_gz, assets["install_only"], tree, "install_only"),
            pool.submit(_write_tar_gz, assets["install_only_stripped"], tree, "install_only_stripped"),
            pool.submit(_write_full_tar_zst, assets["full"], tree, python_json, license_file),
        ]
        for job in jobs:
            job.result()

    catalogue = {path.name: _sha256_file(path) for path in assets.values()}
    if extra_catalogue:
        for name in _extra_catalogue_names(version, tag, triple):
            catalogue.setdefault(name, hashlib.sha256(name.encode()).hexdigest())
    sums = "".join(f"{digest}  {name}\n" for name, digest in sorted(catalogue.items()))
    (release_dir / "SHA256SUMS").write_text(sums, encoding="utf-8")

    latest = {
        "version": 1,
        "tag": tag,
        "release_url": f"{GITHUB_RELEASES}/tag/{tag}",
        "asset_url_prefix": f"{GITHUB_RELEASES}/download/{tag}",
    }
    (Path(root) / "latest-release.json").write_text(json.dumps(latest, indent=2) + "\n", encoding="utf-8")

    return FakeRelease(
        root=Path(root),
        tag=tag,
        python_version=version,
        triple=triple,
        assets=assets,
        source_prefix=prefix,
    )


# --------------------------------------------------------------------------------------------------------------
# Archive building


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One member of the installation tree: ``rel`` (POSIX path relative to the installation root) and either
    a ``source`` path on disk (file, directory or symlink, read with lstat) or literal ``data`` / ``link``."""

    rel: str
    source: Path | None = None
    data: bytes | None = None
    link: str | None = None


def _stdlib_dirname() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def _collect_tree(prefix: Path) -> list[_Entry]:
    """The installation tree shipped by the install_only archives, relative to ``python/``, sorted by path.

    Does not contain the per-flavor marker file (see :func:`_flavor_tree`).
    """
    xy = f"{sys.version_info.major}.{sys.version_info.minor}"
    exe = f"python{xy}"
    bindir, libdir = prefix / "bin", prefix / "lib"
    stdlib = libdir / _stdlib_dirname()
    if not (bindir / exe).is_file() or not (stdlib / "os.py").is_file():
        raise UnsupportedHostError(f"{prefix} does not look like a Unix CPython installation (no bin/{exe} or stdlib)")

    entries: dict[str, _Entry] = {}

    def add_path(path: Path) -> None:
        """Add ``path`` (file, directory or symlink) and, first, its missing parent directories."""
        rel = path.relative_to(prefix).as_posix()
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            entries.setdefault(parent, _Entry(parent, source=prefix / parent))
        entries[rel] = _Entry(rel, source=path)

    # bin/: the interpreter, its conventional links, and pip's scripts (absolute shebangs kept verbatim).
    add_path(bindir / exe)
    for link in ("bin/python3", "bin/python"):
        entries[link] = _Entry(link, link=exe)
    for script in ("pip", "pip3", f"pip{xy}"):
        if os.path.lexists(bindir / script):
            add_path(bindir / script)

    # lib/: libpython (+ the unversioned link and the stable-ABI library), pkg-config files, the stdlib.
    for name in (f"libpython{xy}.so.1.0", f"libpython{xy}.so", "libpython3.so"):
        if os.path.lexists(libdir / name):
            add_path(libdir / name)
    for tree in (libdir / "pkgconfig", prefix / "include"):
        if tree.is_dir():
            for path in _walk(tree, lambda _path: False):
                add_path(path)

    site_packages = stdlib / "site-packages"
    tag = sys.implementation.cache_tag

    def skip(path: Path) -> bool:
        name, parent = path.name, path.parent
        if parent.name == "__pycache__" and not (name.endswith(".pyc") and f".{tag}." in name):
            return True  # PBS ships the bytecode of its own interpreter only (all three optimization levels)
        if parent == stdlib and name == "test":
            return True
        if parent == stdlib / "idlelib" and name == "idle_test":
            return True
        if parent.name.startswith("config-") and parent.parent == stdlib and name.endswith(".a"):
            return True
        if parent == site_packages:
            return not (name == "pip" or (name.startswith("pip-") and name.endswith(".dist-info")))
        return False

    for path in _walk(stdlib, skip):
        add_path(path)

    return [entries[rel] for rel in sorted(entries)]


def _walk(top: Path, skip: Callable[[Path], bool]) -> Iterator[Path]:
    """``top`` and everything below it (symlinks not followed), minus what ``skip(path)`` rejects (with its
    subtree)."""
    yield top
    if top.is_symlink() or not top.is_dir():
        return
    for child in sorted(top.iterdir()):
        if skip(child):
            continue
        yield from _walk(child, skip)


def _flavor_tree(tree: list[_Entry], flavor: str) -> list[_Entry]:
    """``tree`` plus ``share/hatch-pbs-fixture/flavor.txt`` (content: the flavor), sorted by path."""
    extra = [
        _Entry("share"),
        _Entry(_MARKER_DIR),
        _Entry(f"{_MARKER_DIR}/flavor.txt", data=f"{flavor}\n".encode()),
    ]
    present = {entry.rel for entry in tree}
    merged = tree + [entry for entry in extra if entry.rel not in present]
    return sorted(merged, key=lambda entry: entry.rel)


def _tar_members(entries: Iterable[_Entry], base: str) -> Iterator[tuple[tarfile.TarInfo, Path | bytes | None]]:
    """TarInfo (named ``base/rel``, owner root, mode of the source) and payload for each entry.

    Files and symlinks keep the source's mtime; directories and generated members get ``_DIR_MTIME``.
    """
    for entry in entries:
        name = f"{base}/{entry.rel}" if entry.rel else base
        info = tarfile.TarInfo(name)
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = _DIR_MTIME
        payload: Path | bytes | None = None
        if entry.source is not None:
            st = entry.source.lstat()
            info.mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(entry.source)
                info.mode = 0o777
                info.mtime = int(st.st_mtime)
            elif stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISREG(st.st_mode):
                info.mtime = int(st.st_mtime)
                info.size = st.st_size
                payload = entry.source
            else:
                raise UnsupportedHostError(f"{entry.source} is neither a file, a directory nor a symlink")
        elif entry.link is not None:
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
        elif entry.data is not None:
            info.size, info.mode = len(entry.data), 0o644
            payload = entry.data
        else:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        yield info, payload


@functools.cache
def _stripped_elf(path: Path) -> bytes | None:
    """``path``'s bytes with its symbol tables and debug information removed (``strip --strip-unneeded``, as
    python-build-standalone strips its ``install_only_stripped`` assets), or ``None`` when it is no ELF file or
    binutils' ``strip`` is not installed."""
    with path.open("rb") as stream:
        if stream.read(4) != b"\x7fELF":
            return None
    strip = shutil.which("strip")
    if strip is None:
        return None
    with tempfile.TemporaryDirectory(prefix="fake-pbs-strip-") as work:
        output = Path(work) / path.name
        result = subprocess.run([strip, "--strip-unneeded", "-o", str(output), str(path)], capture_output=True,
                                check=False)
        return output.read_bytes() if result.returncode == 0 else None


def _stripped_members(members: Iterable[tuple[tarfile.TarInfo, Path | bytes | None]]
                      ) -> Iterator[tuple[tarfile.TarInfo, Path | bytes | None]]:
    for info, payload in members:
        if isinstance(payload, Path) and info.isreg() and (stripped := _stripped_elf(payload)) is not None:
            info.size = len(stripped)
            payload = stripped
        yield info, payload


def _write_members(tar: tarfile.TarFile, members: Iterable[tuple[tarfile.TarInfo, Path | bytes | None]]) -> None:
    for info, payload in members:
        if isinstance(payload, Path):
            with payload.open("rb") as fh:
                tar.addfile(info, fh)
        elif isinstance(payload, bytes):
            tar.addfile(info, io.BytesIO(payload))
        else:
            tar.addfile(info)


def _write_tar_gz(dest: Path, tree: list[_Entry], flavor: str) -> None:
    """Write an install_only-layout archive: everything under ``python/``, sorted, directories included."""
    entries = [_Entry("")] + _flavor_tree(tree, flavor)
    tmp = dest.with_name(dest.name + ".part")
    with tmp.open("wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=_GZIP_LEVEL, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                members = _tar_members(entries, "python")
                _write_members(tar, _stripped_members(members) if flavor == "install_only_stripped" else members)
    tmp.replace(dest)


def _write_full_tar_zst(dest: Path, tree: list[_Entry], python_json: bytes, license_file: Path) -> None:
    """Write a full-layout archive: ``python/PYTHON.json`` first, then ``python/install/`` (the installation),
    ``python/licenses/LICENSE.txt`` and an empty ``python/build/``."""
    tmp = dest.with_name(dest.name + ".part")
    compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    with tmp.open("wb") as raw:
        with compressor.stream_writer(raw, closefd=False) as zst:
            with tarfile.open(fileobj=zst, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                head = [_Entry("PYTHON.json", data=python_json)]
                install = [_Entry("install")] + [
                    dataclasses.replace(entry, rel=f"install/{entry.rel}") for entry in _flavor_tree(tree, "full")
                ]
                tail = [
                    _Entry("build"),
                    _Entry("licenses"),
                    _Entry("licenses/LICENSE.txt", data=license_file.read_bytes() if license_file.is_file() else b""),
                ]
                _write_members(tar, _tar_members(head + install + tail, "python"))
    tmp.replace(dest)


def _python_json(triple: str, version: str) -> dict[str, object]:
    """PYTHON.json (format "8") describing the repackaged interpreter inside a full archive."""
    major, minor = sys.version_info.major, sys.version_info.minor
    xy = f"{major}.{minor}"
    stdlib = f"install/lib/python{xy}"
    return {
        "version": "8",
        "target_triple": triple,
        "optimizations": FULL_BUILD_OPTIONS,
        "build_options": FULL_BUILD_OPTIONS,
        "python_tag": f"cp{major}{minor}",
        "python_abi_tag": f"cp{major}{minor}",
        "python_platform_tag": sysconfig.get_platform(),
        "python_version": version,
        "python_major_minor_version": xy,
        "python_implementation_name": sys.implementation.name,
        "python_implementation_cache_tag": sys.implementation.cache_tag,
        "python_exe": f"install/bin/python{xy}",
        "python_stdlib": stdlib,
        "python_paths": {
            "data": "install",
            "include": f"install/include/python{xy}",
            "platinclude": f"install/include/python{xy}",
            "platlib": f"{stdlib}/site-packages",
            "platstdlib": stdlib,
            "purelib": f"{stdlib}/site-packages",
            "scripts": "install/bin",
            "stdlib": stdlib,
        },
        "python_stdlib_test_packages": [],
        "python_suffixes": {
            "bytecode": list(importlib.machinery.BYTECODE_SUFFIXES),
            "extension": list(importlib.machinery.EXTENSION_SUFFIXES),
            "source": list(importlib.machinery.SOURCE_SUFFIXES),
        },
        "python_bytecode_magic_number": importlib.util.MAGIC_NUMBER.hex(),
        "libpython_link_mode": "shared",
        "crt_features": ["glibc-max-symbol-version:2.17"],
        "licenses": ["Python-2.0", "CNRI-Python"],
        "license_path": "licenses/LICENSE.txt",
        "tcl_library_path": "install/lib",
        "tcl_library_paths": [],
    }


def _extra_catalogue_names(version: str, tag: str, triple: str) -> list[str]:
    """Names of realistic assets listed in ``SHA256SUMS`` but not served (the caller drops served names)."""
    names: list[str] = []
    other_triples = {t: opts for t, opts in _CATALOGUE_TRIPLES.items() if t != triple}
    all_triples = {triple: FULL_BUILD_OPTIONS, **other_triples}

    def add(ver: str, triples: dict[str, str]) -> None:
        for t, opts in triples.items():
            for flavor in FLAVORS:
                names.append(_asset_name(ver, tag, t, flavor, opts))

    add(version, other_triples)
    for ver in _CATALOGUE_VERSIONS:
        add(ver, all_triples)
    major, minor, micro = (int(part) for part in version.split(".")[:3])
    if micro > 0:
        add(f"{major}.{minor}.{micro - 1}", {triple: FULL_BUILD_OPTIONS})
    for t in (triple, "aarch64-apple-darwin"):
        stem = f"cpython-{_FREETHREADED_VERSION}+{tag}-{t}-freethreaded"
        names += [f"{stem}-install_only.tar.gz", f"{stem}-install_only_stripped.tar.gz"]
        names.append(f"cpython-{_FREETHREADED_VERSION}+{tag}-{t}-freethreaded+pgo+lto-full.tar.zst")
    return names


def _sha256_file(path: Path) -> str:
    """Lowercase hex sha256 of a file, memoized while its size and mtime stay the same."""
    st = path.stat()
    return _sha256_cached(path.resolve(), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------------------
# HTTP server


class ReleaseServer:
    """Threaded HTTP server on ``127.0.0.1:<ephemeral port>`` serving a fake release root; a context manager.

    ``GET``/``HEAD`` of ``/<path>`` serve ``<root>/<path>`` (the path percent-decoded, so ``%2B`` is ``+``) with
    a correct ``Content-Length``; anything missing is a 404. With ``ranges`` (the default, as GitHub's release
    downloads do) responses advertise ``Accept-Ranges: bytes`` and an ``ETag``, and a single ``Range: bytes=N-``
    or ``bytes=N-M`` is answered with 206 (416 when unsatisfiable; ``If-Range`` naming another validator gets the
    whole file). Faults added with :meth:`add_fault` apply to the next GET requests of a file. Nothing is logged.
    """

    base_url: str
    """``"http://127.0.0.1:PORT"``: what tests pass as the mirror."""
    requests: list[tuple[str, str]]
    """Every request as (method, percent-decoded URL path), e.g. ``("GET", "/20261021/cpython-...tar.gz")``."""
    request_headers: list[tuple[str, str, dict[str, str]]]
    """Every request as (method, decoded path, headers with lower-case names)."""
    redirect_base: str | None
    """Where the ``redirect`` fault sends a request: ``Location: {redirect_base}{original path}``."""
    stall_seconds: float
    """How long the ``stall`` and ``stall-headers`` faults keep the connection silent (cut short by close)."""
    trickle_chunk: int
    trickle_delay: float
    """The ``trickle`` fault sends ``trickle_chunk`` bytes every ``trickle_delay`` seconds."""

    def __init__(self, root: Path, *, ranges: bool = True) -> None:
        self.root = Path(root).resolve()
        self.ranges = ranges
        self.requests = []
        self.request_headers = []
        self.redirect_base = None
        self.stall_seconds = 30.0
        self.trickle_chunk = 64 << 10
        self.trickle_delay = 0.02
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # wakes stalled and trickling handlers when the server closes
        self._faults: dict[str, list[_Fault]] = {}  # filename -> faults still to apply, in order
        self._httpd = _HTTPServer(("127.0.0.1", 0), _make_handler(self))
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="ReleaseServer", daemon=True
        )
        self._thread.start()
        self._closed = False

    def __enter__(self) -> ReleaseServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release the port; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    @property
    def connections(self) -> int:
        """Number of TCP connections accepted so far (counted at accept(), before any byte is read)."""
        with self._httpd.accepted_lock:
            return len(self._httpd.accepted)

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (relative to the root, e.g. ``"20261021/SHA256SUMS"``), ``+`` quoted."""
        return f"{self.base_url}/{urllib.parse.quote(path.lstrip('/'))}"

    def request_count(self, filename: str) -> int:
        """Number of GET requests whose decoded path ends with ``"/" + filename``."""
        with self._lock:
            return sum(1 for method, path in self.requests if method == "GET" and path.endswith("/" + filename))

    def headers_of(self, filename: str) -> list[dict[str, str]]:
        """Headers (lower-case names) of every GET request of ``filename``, in order."""
        with self._lock:
            return [headers for method, path, headers in self.request_headers
                    if method == "GET" and path.endswith("/" + filename)]

    def add_fault(self, filename: str, kind: str, times: int = 1, *, retry_after: str | None = None) -> None:
        """Make the next ``times`` GET requests of ``filename`` (a path ending with ``"/" + filename``) fail.

        Kinds:

        - ``"404"``, ``"429"``, ``"500"``, ``"503"``: that status, small body (``Retry-After: {retry_after}``
          when given).
        - ``"truncate"``: headers with the full Content-Length, then half the body, then the connection closes.
        - ``"reset-after-half"``: the same, but the connection is reset (TCP RST) after half the body.
        - ``"wrong-body"``: status 200, the content reversed: same length, different bytes.
        - ``"reset"``: the connection is reset without any response.
        - ``"stall"``: headers and half the body, then silence for :attr:`stall_seconds`, then a close.
        - ``"stall-headers"``: the request is read, then silence for :attr:`stall_seconds`; no response.
        - ``"trickle"``: the whole (correct) body, slowly: :attr:`trickle_chunk` bytes per :attr:`trickle_delay`.
        - ``"html-200"``: status 200 with ``Content-Type: text/html`` and :data:`HTML_ERROR_PAGE` as the body.
        - ``"length-long"``: Content-Length 1024 more than the file, the whole file, then a close.
        - ``"length-short"``: Content-Length 1024 less than the file, the whole file, then a close.
        - ``"redirect"``: 302 to :attr:`redirect_base` + the request's path.
        - ``"ignore-range"``: the whole file with status 200 even when a ``Range`` was asked for.

        For ``truncate``, ``reset-after-half``, ``stall`` and ``trickle`` "the body" is the requested range.
        Faults queue up in the order added; afterwards the file is served normally.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(sorted(FAULT_KINDS))}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._faults.setdefault(filename, []).append(_Fault(kind, times, retry_after))

    def _record(self, method: str, path: str, headers: dict[str, str]) -> _Fault | None:
        """Log a request; for a GET, consume and return the fault that applies to it, if any."""
        with self._lock:
            self.requests.append((method, path))
            self.request_headers.append((method, path, headers))
            if method != "GET":
                return None
            for filename, queue in self._faults.items():
                if queue and path.endswith("/" + filename):
                    fault = queue[0]
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        queue.pop(0)
                    return fault
        return None

    def _resolve(self, path: str) -> Path | None:
        """The regular file under the root that the decoded URL ``path`` names, or ``None``."""
        parts = [part for part in path.split("/") if part]
        if any(part in (".", "..") for part in parts):
            return None
        target = self.root.joinpath(*parts)
        return target if parts and target.is_file() else None


@dataclasses.dataclass
class _Fault:
    """A fault of ``kind`` (one of :data:`FAULT_KINDS`) for the next ``remaining`` GET requests of a file."""

    kind: str
    remaining: int
    retry_after: str | None = None


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.accepted: list[Any] = []
        self.accepted_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.accepted_lock:
            self.accepted.append(client_address)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (e.g. mid-body after a fault); report real server bugs."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """The (first, last) byte of a single ``bytes=`` range, ``None`` to serve the whole file (no header, several
    ranges or a malformed one: RFC 9110 allows ignoring it), ``"unsatisfiable"`` for a start past the end."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_text, _, last_text = header[len("bytes="):].strip().partition("-")
    try:
        if not first_text:  # suffix range: the last N bytes
            count = int(last_text)
            return (max(0, size - count), size - 1) if count > 0 and size else "unsatisfiable"
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size:
        return "unsatisfiable"
    return (first, min(last, size - 1)) if last >= first else None


def _make_handler(server: ReleaseServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "hatch-pbs-fake-release"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
            pass

        def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
            self._serve(head=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(head=True)

        def _serve(self, *, head: bool) -> None:
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            headers = {name.lower(): value for name, value in self.headers.items()}
            fault = server._record("HEAD" if head else "GET", path, headers)
            kind = fault.kind if fault else None
            if kind == "reset":
                self._reset()
                return
            if kind == "stall-headers":
                server._stopping.wait(server.stall_seconds)
                self.close_connection = True
                return
            if kind in ("404", "429", "500", "503"):
                self._send_status(int(kind), retry_after=fault.retry_after if fault else None)
                return
            if kind == "redirect":
                self.send_response(302)
                self.send_header("Location", f"{server.redirect_base}{urllib.parse.quote(path)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if kind == "html-200":
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(HTML_ERROR_PAGE)))
                self.end_headers()
                if not head:
                    self.wfile.write(HTML_ERROR_PAGE)
                return
            target = server._resolve(path)
            if target is None:
                self._send_status(404)
                return
            st = target.stat()
            size = st.st_size
            etag = f'"{size:x}-{st.st_mtime_ns:x}"'
            wanted = None
            if server.ranges and kind != "ignore-range" and headers.get("if-range", etag) == etag:
                wanted = _byte_range(headers.get("range"), size)
            if wanted == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            first, last = wanted if isinstance(wanted, tuple) else (0, size - 1)
            count = last - first + 1
            self.send_response(206 if isinstance(wanted, tuple) else 200)
            self.send_header("Content-Type", "application/octet-stream")
            if server.ranges:
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", etag)
            if isinstance(wanted, tuple):
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            declared = count + {"length-long": 1024, "length-short": -1024}.get(kind or "", 0)
            self.send_header("Content-Length", str(max(0, declared)))
            if kind in ("truncate", "length-long", "length-short", "reset-after-half", "stall"):
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if head:
                return
            with target.open("rb") as fh:
                if kind == "wrong-body":
                    fh.seek(first)
                    self.wfile.write(fh.read(count)[::-1])
                elif kind in ("truncate", "reset-after-half", "stall"):
                    self._send_file(fh, first, count // 2)
                    if kind == "reset-after-half":
                        self._reset()
                    elif kind == "stall":
                        server._stopping.wait(server.stall_seconds)
                elif kind == "trickle":
                    self._trickle(fh, first, count)
                else:
                    self._send_file(fh, first, count)

        def _send_file(self, fh: BinaryIO, offset: int, count: int) -> None:
            if count > 0:
                self.wfile.flush()
                self.connection.sendfile(fh, offset, count)

        def _trickle(self, fh: BinaryIO, offset: int, count: int) -> None:
            fh.seek(offset)
            while count > 0 and not server._stopping.is_set():
                block = fh.read(min(count, server.trickle_chunk))
                if not block:
                    return
                self.wfile.write(block)
                self.wfile.flush()
                count -= len(block)
                if count:
                    time.sleep(server.trickle_delay)

        def _send_status(self, code: int, *, retry_after: str | None = None) -> None:
            body = f"{code} {http.HTTPStatus(code).phrase}\n".encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _reset(self) -> None:
            """Abort the connection with a TCP RST (SO_LINGER 0): before any response byte for ``reset``, after
            half the body for ``reset-after-half``."""
            self.close_connection = True
            try:
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass

    return Handler
