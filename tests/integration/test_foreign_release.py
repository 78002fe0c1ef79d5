"""Tests of the test-support module ``foreign_release``: a PBS release with zig-built stand-ins for every triple."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import lief
import pytest
from foreign_release import (
    ALL_TRIPLES,
    CROSS_FLAVORS,
    EXIT_CODE_VARIABLE,
    ZIG_TARGETS,
    CrossRelease,
    build_cross_release,
)
from lief_support import macho_slice
from pbs_release import UnsupportedHostError, host_triple
from wine_support import wine_env, wine_problem

from hatch_pbs.release.resolve import ReleaseCatalogue, select_asset
from hatch_pbs.relocate.analysis import read_build_prefixes
from hatch_pbs.runtime.extract import extract_runtime

lief.logging.disable()

try:
    HOST = host_triple()
except UnsupportedHostError:  # pragma: no cover - the fixtures skip on such hosts
    HOST = ""
FOREIGN = [triple for triple in ALL_TRIPLES if triple != HOST]
LINUX = [t for t in FOREIGN if "-linux-" in t]
MACOS = [t for t in FOREIGN if t.endswith("-apple-darwin")]
WINDOWS = [t for t in FOREIGN if "-windows-" in t]
SUMS_LINE = re.compile(r"^(?P<sha>[0-9a-f]{64})  (?P<name>\S+)$")
FIXED_MTIME = 1792540800


def xy_of(release: CrossRelease) -> str:
    return ".".join(release.python_version.split(".")[:2])


@functools.cache
def _extracted(archive: Path, dest_root: Path) -> Path:
    """Extract ``archive`` once per session (below ``dest_root``) with hatch-pbs's own extractor."""
    dest = dest_root / archive.name.removesuffix(".tar.gz")
    result = extract_runtime(archive, dest, full=False)
    assert result.root == dest
    assert result.files > 0
    return dest


@pytest.fixture(scope="session")
def unpacked(cross_release: CrossRelease, tmp_path_factory: pytest.TempPathFactory):
    """``unpacked(triple, flavor="install_only")`` -> the extracted runtime root of that archive."""
    dest_root = tmp_path_factory.mktemp("cross-unpacked")

    def get(triple: str, flavor: str = "install_only") -> Path:
        return _extracted(cross_release.assets[(triple, flavor)], dest_root)

    return get


# --------------------------------------------------------------------------------------------------------------
# The release on disk


def test_release_serves_every_triple(cross_release: CrossRelease) -> None:
    assert cross_release.tag == cross_release.host.tag
    assert cross_release.python_version == cross_release.host.python_version
    assert cross_release.triples == list(ALL_TRIPLES)
    assert cross_release.foreign_triples == FOREIGN
    assert set(cross_release.assets) == {(t, f) for t in ALL_TRIPLES for f in CROSS_FLAVORS}
    for (triple, flavor), path in cross_release.assets.items():
        assert path.parent == cross_release.release_dir
        assert path.name == f"cpython-{cross_release.python_version}+{cross_release.tag}-{triple}-{flavor}.tar.gz"
        assert path.is_file()
    # The host's three assets are served too, byte for byte.
    for flavor, source in cross_release.host.assets.items():
        served = cross_release.release_dir / source.name
        assert served.read_bytes() == source.read_bytes(), flavor
    latest = json.loads((cross_release.root / "latest-release.json").read_text(encoding="utf-8"))
    assert latest["tag"] == cross_release.tag
    assert latest["asset_url_prefix"].endswith(f"/download/{cross_release.tag}")


def test_sha256sums_lists_every_served_asset(cross_release: CrossRelease) -> None:
    text = (cross_release.release_dir / "SHA256SUMS").read_text(encoding="utf-8")
    sums: dict[str, str] = {}
    names = []
    for line in text.splitlines():
        match = SUMS_LINE.match(line)
        assert match, f"malformed SHA256SUMS line: {line!r}"
        names.append(match["name"])
        sums[match["name"]] = match["sha"]
    assert names == sorted(names)
    assert len(names) == len(set(names))

    served = sorted(p for p in cross_release.release_dir.iterdir() if p.is_file() and p.name != "SHA256SUMS")
    assert served, "nothing served"
    for path in served:
        assert sums.get(path.name) == hashlib.sha256(path.read_bytes()).hexdigest(), path.name
    for triple, flavor in cross_release.assets:
        assert sums[cross_release.asset_name(triple, flavor)] == cross_release.sha256(triple, flavor)

    # At the served version, every listed asset of a triple the release holds is served (the host catalogue's
    # made-up entries for foreign triples are gone, not duplicated).
    stems = [f"cpython-{cross_release.python_version}+{cross_release.tag}-{t}-" for t in ALL_TRIPLES]
    listed_here = [name for name in names if any(name.startswith(stem) for stem in stems)]
    assert sorted(listed_here) == sorted(p.name for p in served)


def test_catalogue_resolves_every_triple(cross_release: CrossRelease) -> None:
    catalogue = ReleaseCatalogue.parse(cross_release.tag,
                                       (cross_release.release_dir / "SHA256SUMS").read_text(encoding="utf-8"))
    assert set(ALL_TRIPLES) <= set(catalogue.triples())
    for (triple, flavor), path in cross_release.assets.items():
        asset, sha256 = select_asset(catalogue, target=triple, flavor=flavor,
                                     python_version=cross_release.python_version)
        assert asset.file_name == path.name
        assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_rebuild_is_reproducible_and_cached(cross_release: CrossRelease, tmp_path: Path) -> None:
    """Another root sharing the compile cache gets byte-identical assets; a subset of triples too."""
    again = build_cross_release(tmp_path / "again", cross_release.host, build_dir=cross_release.build_dir)
    assert (again.release_dir / "SHA256SUMS").read_bytes() == (cross_release.release_dir / "SHA256SUMS").read_bytes()
    subset = build_cross_release(tmp_path / "subset", cross_release.host, ["aarch64-apple-darwin"],
                                 build_dir=cross_release.build_dir)
    assert subset.triples == ["aarch64-apple-darwin"]
    for flavor in CROSS_FLAVORS:
        assert subset.sha256("aarch64-apple-darwin", flavor) == cross_release.sha256("aarch64-apple-darwin", flavor)
    listed = (subset.release_dir / "SHA256SUMS").read_text(encoding="utf-8")
    assert subset.asset_name("aarch64-apple-darwin") in listed
    assert cross_release.asset_name("x86_64-apple-darwin") not in listed


def test_unknown_triple_is_rejected(cross_release: CrossRelease, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown triple"):
        build_cross_release(tmp_path, cross_release.host, ["aarch64-apple-darwn"])


# --------------------------------------------------------------------------------------------------------------
# Archives


@pytest.mark.parametrize("flavor", CROSS_FLAVORS)
@pytest.mark.parametrize("triple", FOREIGN)
def test_archive_members_are_pbs_layout_and_deterministic(cross_release: CrossRelease, triple: str,
                                                          flavor: str) -> None:
    with tarfile.open(cross_release.assets[(triple, flavor)], "r:gz") as tar:
        members = tar.getmembers()
        marker = tar.extractfile("python/share/hatch-pbs-fixture/flavor.txt")
        assert marker is not None and marker.read() == f"{flavor}\n".encode()
    names = [m.name for m in members]
    assert names[0] == "python"
    assert all(name.startswith("python/") for name in names[1:])
    assert names == sorted(names)
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "root", "root")
        assert member.mtime == FIXED_MTIME
        assert member.isdir() or member.isfile() or member.issym()
        if member.issym():
            assert "/" not in member.linkname  # a sibling, as in PBS's bin/python3 -> python3.X
    with open(cross_release.assets[(triple, flavor)], "rb") as fh:
        assert fh.read(10)[4:8] == b"\0\0\0\0"  # gzip header without a time stamp


@pytest.mark.parametrize("flavor", CROSS_FLAVORS)
@pytest.mark.parametrize("triple", FOREIGN)
def test_archive_extracts_with_hatch_pbs(cross_release: CrossRelease, unpacked, triple: str, flavor: str) -> None:
    root = unpacked(triple, flavor)
    xy = xy_of(cross_release)
    nodot = xy.replace(".", "")
    interpreter = root / cross_release.interpreter(triple)
    assert interpreter.is_file() and os.access(interpreter, os.X_OK)
    if "-windows-" in triple:
        expected = ["python.exe", "pythonw.exe", f"python{nodot}.dll", "vcruntime140.dll", "DLLs/_demo.pyd",
                    "Lib/os.py", "Lib/site.py", "include/Python.h"]
        assert (root / "Lib/site-packages").is_dir()
        assert not list((root / "Lib/site-packages").iterdir())
        assert read_build_prefixes(root) == ()
    else:
        stdlib = f"lib/python{xy}"
        expected = [f"bin/python{xy}", f"{stdlib}/os.py", f"{stdlib}/site.py", f"include/python{xy}/Python.h",
                    f"lib/pkgconfig/python-{xy}.pc"]
        if "-linux-" in triple:
            multiarch = "{}-linux-{}".format(triple.split("-")[0], triple.split("-")[-1])
            expected += [f"lib/libpython{xy}.so.1.0", f"{stdlib}/_sysconfigdata__linux_{multiarch}.py",
                         f"{stdlib}/lib-dynload/_demo.cpython-{nodot}-{multiarch}.so"]
        else:
            expected += [f"lib/libpython{xy}.dylib", f"{stdlib}/_sysconfigdata__darwin_darwin.py",
                         f"{stdlib}/lib-dynload/_demo.cpython-{nodot}-darwin.so"]
        for link in ("python3", "python"):
            assert os.readlink(root / "bin" / link) == f"python{xy}"
        assert (root / stdlib / "site-packages").is_dir()
        assert not list((root / stdlib / "site-packages").iterdir())
        # The build prefix is read from the runtime's own sysconfig data, as relocation does.
        assert read_build_prefixes(root) == ("/install",)
        assert "prefix=/install" in (root / f"lib/pkgconfig/python-{xy}.pc").read_text(encoding="utf-8")
    for rel in expected:
        assert (root / rel).is_file(), rel


# --------------------------------------------------------------------------------------------------------------
# Binary formats (LIEF)


def binaries(root: Path) -> list[Path]:
    """Every regular file below ``root`` that starts with an ELF, Mach-O or PE magic."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as fh:
                head = fh.read(4)
            if head in (b"\x7fELF", b"\xcf\xfa\xed\xfe") or head[:2] == b"MZ":
                found.append(path)
    return found


@pytest.mark.parametrize("triple", LINUX)
def test_linux_binaries(cross_release: CrossRelease, unpacked, triple: str) -> None:
    root = unpacked(triple)
    xy = xy_of(cross_release)
    arch = triple.split("-")[0]
    machine = {"x86_64": lief.ELF.ARCH.X86_64, "aarch64": lief.ELF.ARCH.AARCH64}[arch]
    found = binaries(root)
    assert len(found) == 3, found
    for path in found:
        binary = lief.ELF.parse(str(path))
        assert binary is not None, path
        assert binary.header.machine_type == machine, path

    exe = lief.ELF.parse(str(root / f"bin/python{xy}"))
    if triple.endswith("-musl"):
        assert re.fullmatch(rf"/lib/ld-musl-{arch}\.so\.1", exe.interpreter)
        assert "libc.so" in exe.libraries
    else:
        assert exe.interpreter == {"x86_64": "/lib64/ld-linux-x86-64.so.2",
                                   "aarch64": "/lib/ld-linux-aarch64.so.1"}[arch]
        assert "libc.so.6" in exe.libraries
        # glibc floor 2.17: no symbol version newer than that.
        versions = {aux.name for req in exe.symbols_version_requirement for aux in req.get_auxiliary_symbols()}
        assert versions and all(_glibc_version(v) <= (2, 17) for v in versions if v.startswith("GLIBC_")), versions
    assert f"libpython{xy}.so.1.0" in exe.libraries
    assert _dynamic_entry(exe, lief.ELF.DynamicEntry.TAG.RUNPATH) == "$ORIGIN/../lib"
    assert _dynamic_entry(exe, lief.ELF.DynamicEntry.TAG.RPATH) is None

    lib = lief.ELF.parse(str(root / f"lib/libpython{xy}.so.1.0"))
    assert _dynamic_entry(lib, lief.ELF.DynamicEntry.TAG.SONAME) == f"libpython{xy}.so.1.0"
    assert any(symbol.name == "Py_BytesMain" for symbol in lib.exported_symbols)

    demo = lief.ELF.parse(str(next((root / f"lib/python{xy}/lib-dynload").glob("_demo.*.so"))))
    assert _dynamic_entry(demo, lief.ELF.DynamicEntry.TAG.RUNPATH) == "/install/lib"
    assert f"libpython{xy}.so.1.0" in demo.libraries
    assert any(symbol.name == "PyInit__demo" for symbol in demo.exported_symbols)


def _dynamic_entry(binary: lief.ELF.Binary, tag: lief.ELF.DynamicEntry.TAG) -> str | None:
    for entry in binary.dynamic_entries:
        if entry.tag == tag:
            return entry.name if hasattr(entry, "name") else entry.runpath if hasattr(entry, "runpath") else entry.rpath
    return None


def _glibc_version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.removeprefix("GLIBC_").split("."))


@pytest.mark.parametrize("triple", MACOS)
def test_macos_binaries(cross_release: CrossRelease, unpacked, triple: str) -> None:
    root = unpacked(triple)
    xy = xy_of(cross_release)
    cpu = {"aarch64": lief.MachO.Header.CPU_TYPE.ARM64,
           "x86_64": lief.MachO.Header.CPU_TYPE.X86_64}[triple.split("-")[0]]
    found = binaries(root)
    assert len(found) == 3, found
    for path in found:
        fat = lief.MachO.parse(str(path))
        assert fat is not None and fat.size == 1, path
        binary = fat.at(0)
        assert binary.header.cpu_type == cpu, path
        # zig's linker signs arm64 output ad hoc (arm64 macOS runs nothing unsigned); x86_64 output is unsigned.
        assert binary.has_code_signature == (cpu == lief.MachO.Header.CPU_TYPE.ARM64), path

    install_name = f"/install/lib/libpython{xy}.dylib"
    exe = macho_slice(str(root / f"bin/python{xy}"))
    assert exe.header.file_type == lief.MachO.Header.FILE_TYPE.EXECUTE
    loads = _load_dylibs(exe)
    assert install_name in loads
    assert all(name == install_name or name.startswith("/usr/lib/") for name in loads), loads

    lib = macho_slice(str(root / f"lib/libpython{xy}.dylib"))
    assert lib.header.file_type == lief.MachO.Header.FILE_TYPE.DYLIB
    ids = [cmd.name for cmd in lib.commands if cmd.command == lief.MachO.LoadCommand.TYPE.ID_DYLIB]
    assert ids == [install_name]

    demo = macho_slice(next((root / f"lib/python{xy}/lib-dynload").glob("_demo.*.so")))
    rpaths = [cmd.path for cmd in demo.commands if cmd.command == lief.MachO.LoadCommand.TYPE.RPATH]
    assert rpaths == ["@loader_path/../.."]
    # libpython's symbols are looked up dynamically: the module loads nothing but the system.
    assert all(name.startswith("/usr/lib/") for name in _load_dylibs(demo)), _load_dylibs(demo)


def _load_dylibs(binary: lief.MachO.Binary) -> list[str]:
    """Names of the LC_LOAD_DYLIB-like commands (LIEF's ``libraries`` also lists LC_ID_DYLIB)."""
    kinds = {lief.MachO.LoadCommand.TYPE.LOAD_DYLIB, lief.MachO.LoadCommand.TYPE.LOAD_WEAK_DYLIB,
             lief.MachO.LoadCommand.TYPE.REEXPORT_DYLIB, lief.MachO.LoadCommand.TYPE.LAZY_LOAD_DYLIB}
    return [cmd.name for cmd in binary.commands if cmd.command in kinds]


@pytest.mark.parametrize("triple", WINDOWS)
def test_windows_binaries(cross_release: CrossRelease, unpacked, triple: str) -> None:
    root = unpacked(triple)
    nodot = xy_of(cross_release).replace(".", "")
    machine = {"x86_64": lief.PE.Header.MACHINE_TYPES.AMD64,
               "aarch64": lief.PE.Header.MACHINE_TYPES.ARM64}[triple.split("-")[0]]
    found = binaries(root)
    assert len(found) == 5, found
    for path in found:
        binary = lief.PE.parse(str(path))
        assert binary is not None, path
        assert binary.header.machine == machine, path
        assert binary.header.has_characteristic(lief.PE.Header.CHARACTERISTICS.DLL) == (path.suffix != ".exe"), path

    subsystems = {"python.exe": lief.PE.OptionalHeader.SUBSYSTEM.WINDOWS_CUI,
                  "pythonw.exe": lief.PE.OptionalHeader.SUBSYSTEM.WINDOWS_GUI}
    for name, subsystem in subsystems.items():
        exe = lief.PE.parse(str(root / name))
        assert exe.optional_header.subsystem == subsystem, name
        assert f"python{nodot}.dll" in [imp.name.lower() for imp in exe.imports], name

    dll = lief.PE.parse(str(root / f"python{nodot}.dll"))
    assert {"Py_StandInMain", "Py_StandInTriple"} <= {e.name for e in dll.get_export().entries}
    assert "shell32.dll" in [imp.name.lower() for imp in dll.imports]  # CommandLineToArgvW
    demo = lief.PE.parse(str(root / "DLLs/_demo.pyd"))
    assert "PyInit__demo" in {e.name for e in demo.get_export().entries}
    assert f"python{nodot}.dll" in [imp.name.lower() for imp in demo.imports]


# --------------------------------------------------------------------------------------------------------------
# Running the stand-ins


ARGS = ["plain", "with space", 'quote"d', "back\\slash", "ünïcode"]


def check_output(stdout: str, triple: str, args: list[str]) -> list[str]:
    """The stand-in's output: the triple line, then argv as a JSON array; returns argv."""
    lines = stdout.splitlines()
    assert lines[0] == f"stand-in python {triple}", stdout
    argv = json.loads(lines[1])
    assert argv[1:] == args, argv
    return argv


def test_aarch64_stand_in_runs_under_qemu(cross_release: CrossRelease) -> None:
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        pytest.skip("qemu-aarch64 is not installed (Debian package qemu-user)")
    stand_in = cross_release.static_stand_in("aarch64-unknown-linux-gnu")
    binary = lief.ELF.parse(str(stand_in))
    assert binary.header.machine_type == lief.ELF.ARCH.AARCH64 and not binary.has_interpreter
    for code in (0, 3):
        env = {**os.environ, EXIT_CODE_VARIABLE: str(code)}
        proc = subprocess.run([qemu, str(stand_in), *ARGS], capture_output=True, text=True, env=env, timeout=60,
                              check=False)
        assert proc.returncode == code, proc.stderr
        argv = check_output(proc.stdout, "aarch64-unknown-linux-gnu", ARGS)
        assert argv[0] == str(stand_in)


AARCH64_GLIBC_SYSROOT = Path("/usr/aarch64-linux-gnu")


def test_aarch64_archive_interpreter_runs_under_qemu(cross_release: CrossRelease, unpacked) -> None:
    """The archive's own dynamically linked stand-in, found libpython through ``$ORIGIN/../lib``."""
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        pytest.skip("qemu-aarch64 is not installed (Debian package qemu-user)")
    if not (AARCH64_GLIBC_SYSROOT / "lib/ld-linux-aarch64.so.1").exists():
        pytest.skip(f"no aarch64 glibc sysroot at {AARCH64_GLIBC_SYSROOT} (Debian package libc6-arm64-cross); "
                    "the static stand-in covers the code, not the dynamic linking")
    if "aarch64-unknown-linux-gnu" not in cross_release.foreign_triples:
        pytest.skip("aarch64 Linux is the host here")
    exe = unpacked("aarch64-unknown-linux-gnu") / cross_release.interpreter("aarch64-unknown-linux-gnu")
    proc = subprocess.run([qemu, "-L", str(AARCH64_GLIBC_SYSROOT), str(exe), *ARGS], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    check_output(proc.stdout, "aarch64-unknown-linux-gnu", ARGS)


@pytest.mark.parametrize("exe_name", ["python.exe", "pythonw.exe"])
def test_windows_stand_in_runs_under_wine(cross_release: CrossRelease, tmp_path: Path, exe_name: str) -> None:
    triple = "x86_64-pc-windows-msvc"
    if triple not in cross_release.foreign_triples:  # pragma: no cover - the host is always Linux
        pytest.skip(f"{triple} is not built")
    problem = wine_problem()
    if problem:
        pytest.skip(problem)
    # A directory with a space: the runtime must not depend on where it was unpacked.
    root = tmp_path / "unpacked runtime"
    extract_runtime(cross_release.assets[(triple, "install_only")], root, full=False)
    wine = shutil.which("wine64") or shutil.which("wine")
    for code in (0, 7):
        env = {**wine_env(), EXIT_CODE_VARIABLE: str(code)}
        proc = subprocess.run([wine, str(root / exe_name), *ARGS], capture_output=True, env=env, timeout=120,
                              check=False)
        stdout = proc.stdout.decode("utf-8")
        assert proc.returncode == code, (proc.returncode, stdout, proc.stderr.decode(errors="replace"))
        argv = check_output(stdout, triple, ARGS)
        assert argv[0].lower().endswith(exe_name)


def test_zig_targets_cover_all_triples() -> None:
    assert set(ZIG_TARGETS) == set(ALL_TRIPLES)
