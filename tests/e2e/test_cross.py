"""Cross builds: example_project for every triple of ``targets = ["all"]`` on this Linux machine, from a release
whose foreign runtimes are assembled from real foreign binaries (tests/foreign_release.py), with the target's
wheels from a wheelhouse that holds orjson for every platform."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import lief
import pytest
from e2e_support import (
    WHEEL_PLATFORMS,
    copy_example_project,
    require_cross_wheels,
    run_hatchling,
)
from foreign_release import ALL_TRIPLES, CrossRelease

from hatch_pbs.artifact.audit import check_architectures
from hatch_pbs.binaries.codesign import signature_problems

pytestmark = pytest.mark.e2e

#: The fake release repackages the running CPython; foreign runtimes carry the same version.
MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"
NODOT = f"{sys.version_info.major}{sys.version_info.minor}"

EXTENSION_SUFFIX = {
    "x86_64-unknown-linux-gnu": f".cpython-{NODOT}-x86_64-linux-gnu.so",
    "aarch64-unknown-linux-gnu": f".cpython-{NODOT}-aarch64-linux-gnu.so",
    # CPython 3.10 built on musl reports the multiarch `x86_64-linux-gnu`, and orjson's cp310 musllinux wheel says so
    "x86_64-unknown-linux-musl": f".cpython-{NODOT}-x86_64-linux-{'gnu' if NODOT == '310' else 'musl'}.so",
    "aarch64-apple-darwin": f".cpython-{NODOT}-darwin.so",
    "x86_64-apple-darwin": f".cpython-{NODOT}-darwin.so",
    "x86_64-pc-windows-msvc": f".cp{NODOT}-win_amd64.pyd",
    "aarch64-pc-windows-msvc": f".cp{NODOT}-win_arm64.pyd",
}
ARCH = {triple: triple.split("-")[0] for triple in ALL_TRIPLES}


@dataclass
class CrossBuild:
    project: Path
    dist: Path
    output: str
    triples: tuple[str, ...]  # those of ``all`` the wheelhouse has wheels for (every one, but on CPython 3.10)

    def require(self, triple: str) -> None:
        """Skip the calling test when ``triple`` was not built."""
        require_cross_wheels(triple)


def _targets(triples: tuple[str, ...]) -> str:
    """``targets``: ``["all"]`` when the wheelhouse has wheels for every triple of it, else those it has."""
    return '["all"]' if triples == tuple(ALL_TRIPLES) else json.dumps(list(triples))


def _env(release: CrossRelease, cache: Path, wheelhouse: Path, uv_cache: Path) -> dict[str, str]:
    return {"HATCH_PBS_MIRROR": release.root.as_uri(), "HATCH_PBS_CACHE_DIR": str(cache), "UV_OFFLINE": "1",
            "UV_FIND_LINKS": str(wheelhouse), "UV_CACHE_DIR": str(uv_cache)}


@pytest.fixture(scope="module")
def cross_build(cross_release: CrossRelease, cross_wheelhouse: Path, cross_triples: tuple[str, ...],
                tmp_path_factory: pytest.TempPathFactory) -> CrossBuild:
    base = tmp_path_factory.mktemp("cross")
    project = copy_example_project(base / "project", hook_table=(
        f'python-version = "{cross_release.python_version}"\ntargets = {_targets(cross_triples)}'))
    result = run_hatchling(project, "app", _env(cross_release, base / "cache", cross_wheelhouse, base / "uv"),
                           "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    return CrossBuild(project, project / "dist" / "app", result.stdout + result.stderr, cross_triples)


def _archive(build: CrossBuild, triple: str) -> Path:
    suffix = "zip" if "windows" in triple else "tar.gz"
    return build.dist / f"pbs-demo-1.0.0-{triple}.{suffix}"


def _unpack(build: CrossBuild, triple: str, destination: Path) -> Path:
    archive = _archive(build, triple)
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(destination)
    else:
        with tarfile.open(archive) as bundle:
            bundle.extractall(destination, filter="tar")
    return destination / f"pbs-demo-1.0.0-{triple}"


def _expected_format(triple: str) -> str:
    return "PE" if "windows" in triple else "Mach-O" if "apple" in triple else "ELF"


def _lief_format_and_arch(path: Path) -> tuple[str, str]:
    """Format and architecture as LIEF reads them (independent of hatch_pbs.artifact.audit's own header parsing)."""
    if lief.is_elf(str(path)):
        elf = lief.ELF.parse(str(path))  # kept alive while its header is read
        machine = elf.header.machine_type
        return "ELF", {lief.ELF.ARCH.X86_64: "x86_64", lief.ELF.ARCH.AARCH64: "aarch64"}.get(machine, str(machine))
    if lief.is_macho(str(path)):
        fat = lief.MachO.parse(str(path))
        cpus = {binary.header.cpu_type for binary in fat}
        arm64, x86_64 = lief.MachO.Header.CPU_TYPE.ARM64, lief.MachO.Header.CPU_TYPE.X86_64
        if cpus == {arm64, x86_64}:
            return "Mach-O", "universal"
        return "Mach-O", "aarch64" if cpus == {arm64} else "x86_64" if cpus == {x86_64} else str(cpus)
    if lief.is_pe(str(path)):
        pe = lief.PE.parse(str(path))
        machine = pe.header.machine
        types = lief.PE.Header.MACHINE_TYPES
        return "PE", {types.AMD64: "x86_64", types.ARM64: "aarch64", types.I386: "i686"}.get(machine, str(machine))
    raise AssertionError(f"{path} is not a binary LIEF knows")


def test_one_archive_per_triple_and_checksums(cross_build: CrossBuild) -> None:
    names = sorted(path.name for path in cross_build.dist.iterdir())
    expected = sorted(_archive(cross_build, triple).name for triple in cross_build.triples)
    assert names == sorted([*expected, *(name + ".cdx.json" for name in expected), "SHA256SUMS"])
    listed = [line.split("  ")[1] for line in (cross_build.dist / "SHA256SUMS").read_text().splitlines()]
    assert listed == sorted(expected)


@pytest.mark.parametrize("triple", ALL_TRIPLES)
def test_each_archive_holds_the_targets_wheels(cross_build: CrossBuild, triple: str, tmp_path: Path) -> None:
    cross_build.require(triple)
    root = _unpack(cross_build, triple, tmp_path)
    extensions = sorted((root / "app" / "orjson").glob("orjson*"))
    extensions = [path for path in extensions if path.suffix in (".so", ".pyd")]
    assert [path.name for path in extensions] == [f"orjson{EXTENSION_SUFFIX[triple]}"]
    kind, arch = _lief_format_and_arch(extensions[0])
    assert kind == _expected_format(triple)
    assert arch == ARCH[triple] or (kind == "Mach-O" and arch == "universal")  # orjson ships universal2 wheels
    wheel_tags = next((root / "app").glob("orjson-*.dist-info")).joinpath("WHEEL").read_text()
    assert WHEEL_PLATFORMS[triple].split("_")[-1] in wheel_tags or "universal2" in wheel_tags
    manifest = json.loads((root / "hatch-pbs-manifest.json").read_text())
    assert manifest["target"] == triple
    check_architectures(root, triple)  # raises on anything built for the build machine
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.suffix in (".so", ".pyd", ".dylib", ".dll", ".exe", "") \
                and lief.is_elf(str(path)) | lief.is_macho(str(path)) | lief.is_pe(str(path)):
            kind, arch = _lief_format_and_arch(path)
            if kind == _expected_format(triple):
                assert arch in (ARCH[triple], "universal"), path
            else:  # only pip's Windows launcher templates are allowed to be foreign to the target
                assert kind == "PE" and "site-packages" in path.parts and path.suffix == ".exe", path


@pytest.mark.parametrize("triple", ALL_TRIPLES)
def test_launchers_and_bytecode_suit_the_target(cross_build: CrossBuild, triple: str, tmp_path: Path) -> None:
    cross_build.require(triple)
    root = _unpack(cross_build, triple, tmp_path)
    if "windows" in triple:
        launcher = root / "bin" / "pbs-demo.exe"
        assert _lief_format_and_arch(launcher) == ("PE", ARCH[triple])
        assert not (root / "app" / "bin").exists()
        assert (root / "python" / "Lib" / "site-packages" / "_hatch_pbs_app.pth").is_file()
    else:
        launcher = root / "bin" / "pbs-demo"
        assert launcher.read_text().startswith("#!/bin/sh")
        assert f"python/bin/python{MINOR}" in launcher.read_text()
    compiled = list((root / "app" / "pbs_demo" / "__pycache__").glob("*.pyc"))
    assert {path.name.split(".")[1] for path in compiled} == {f"cpython-{NODOT}"}


def test_windows_launcher_runs_the_bundled_interpreter(cross_build: CrossBuild, tmp_path: Path) -> None:
    wine = subprocess.run(["sh", "-c", "command -v wine"], capture_output=True, text=True, check=False).stdout.strip()
    if not wine:
        pytest.skip("wine is not installed")
    root = _unpack(cross_build, "x86_64-pc-windows-msvc", tmp_path / "dir with space")
    result = subprocess.run([wine, str(root / "bin" / "pbs-demo.exe"), "two words", "", 'q"uote'],
                            capture_output=True, text=True, env={"WINEDEBUG": "-all", "PATH": "/usr/bin:/bin",
                                                                 "HOME": str(Path.home())}, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout.strip().splitlines()[-1])
    assert argv[1:3] == ["-I", "-c"]
    assert argv[-3:] == ["two words", "", 'q"uote']
    assert argv[-4].lower().endswith("pbs-demo.exe")


def _failing_build(project: Path, env: dict[str, str]) -> str:
    result = run_hatchling(project, "app", env, "--hooks-only")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    assert not (project / "dist" / "app").exists() or not list((project / "dist" / "app").iterdir())
    return output


def test_dependency_with_only_an_sdist_fails_for_a_foreign_target(cross_release: CrossRelease,
                                                                  cross_wheelhouse: Path, tmp_path: Path) -> None:
    sdist_project = tmp_path / "onlysdist"
    (sdist_project / "src" / "onlysdist").mkdir(parents=True)
    (sdist_project / "src" / "onlysdist" / "__init__.py").write_text("")
    (sdist_project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "onlysdist"\nversion = "0.1"\n')
    links = tmp_path / "links"
    links.mkdir()
    for wheel in cross_wheelhouse.iterdir():
        (links / wheel.name).symlink_to(wheel)
    build = run_hatchling(sdist_project, "sdist", {}, "-d", str(links))
    assert build.returncode == 0, build.stderr
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{cross_release.python_version}"\ntargets = ["aarch64-apple-darwin"]'))
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.9",', '"orjson>=3.9",\n  "onlysdist",'))
    output = _failing_build(project, _env(cross_release, tmp_path / "cache", links, tmp_path / "uv"))
    assert "aarch64-apple-darwin: onlysdist has no usable wheel for aarch64-apple-darwin (Python " \
           f"{cross_release.python_version}); acceptable wheel tags: cp{NODOT}-cp{NODOT}-macosx_11_0_arm64, " in output


def test_a_triple_the_release_does_not_have(cross_release: CrossRelease, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{cross_release.python_version}"\ntargets = ["riscv64-unknown-linux-gnu"]'))
    output = _failing_build(project, _env(cross_release, tmp_path / "cache", tmp_path, tmp_path / "uv"))
    assert "riscv64-unknown-linux-gnu: release 20261021 has no asset for target triple riscv64-unknown-linux-gnu; " \
           "it has: aarch64-apple-darwin, aarch64-pc-windows-msvc, aarch64-unknown-linux-gnu, " in output


def test_a_mistyped_triple_gets_a_suggestion(cross_release: CrossRelease, tmp_path: Path) -> None:
    project = copy_example_project(tmp_path / "project", hook_table='targets = ["host", "aarch64-apple-darwn"]')
    output = _failing_build(project, _env(cross_release, tmp_path / "cache", tmp_path, tmp_path / "uv"))
    assert 'Entry #2 of option `targets` for build hook `pbs` must be "host", "all" or a target triple such as ' \
           '"x86_64-unknown-linux-gnu"; got \'aarch64-apple-darwn\' (did you mean "aarch64-apple-darwin"?)' in output


def _stand_in_output(stdout: str, triple: str) -> list[str]:
    """The argv a foreign stand-in interpreter printed after its ``stand-in python <triple>`` line."""
    lines = stdout.strip().splitlines()
    assert lines[0] == f"stand-in python {triple}", stdout
    return json.loads("".join(lines[1:]))


def test_musl_launcher_runs_the_relocated_runtime(cross_build: CrossBuild, tmp_path: Path) -> None:
    if not Path("/lib/ld-musl-x86_64.so.1").exists():
        pytest.skip("the musl dynamic loader is not installed (Debian package musl)")
    root = _unpack(cross_build, "x86_64-unknown-linux-musl", tmp_path / "dir with space")
    link = tmp_path / "demo"
    link.symlink_to(root / "bin" / "pbs-demo")
    result = subprocess.run([str(link), "echo", "two words", ""], capture_output=True, text=True, timeout=60,
                            check=False, env={"PATH": "/usr/bin:/bin", "HATCH_PBS_STAND_IN_EXIT_CODE": "5"})
    assert result.returncode == 5, result.stderr
    argv = _stand_in_output(result.stdout, "x86_64-unknown-linux-musl")
    assert argv[0] == str(root / "python" / "bin" / f"python{MINOR}")
    assert argv[1:3] == ["-I", "-c"]
    assert argv[4:] == [str(link), "echo", "two words", ""]


def test_aarch64_runtime_runs_under_qemu_after_relocation(cross_build: CrossBuild, tmp_path: Path) -> None:
    sysroot = Path("/usr/aarch64-linux-gnu")
    qemu = subprocess.run(["sh", "-c", "command -v qemu-aarch64"], capture_output=True, text=True).stdout.strip()
    if not qemu or not (sysroot / "lib").is_dir():
        pytest.skip("qemu-aarch64 or the aarch64 glibc (Debian packages qemu-user, libc6-arm64-cross) is missing")
    root = _unpack(cross_build, "aarch64-unknown-linux-gnu", tmp_path / "moved")
    result = subprocess.run([qemu, "-L", str(sysroot), str(root / "python" / "bin" / f"python{MINOR}"), "x"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert _stand_in_output(result.stdout, "aarch64-unknown-linux-gnu")[1:] == ["x"]


@pytest.mark.parametrize("triple", ["aarch64-apple-darwin", "x86_64-apple-darwin"])
def test_macos_runtime_was_relocated_and_re_signed(cross_build: CrossBuild, triple: str, tmp_path: Path) -> None:
    cross_build.require(triple)
    root = _unpack(cross_build, triple, tmp_path)
    interpreter = root / "python" / "bin" / f"python{MINOR}"
    library = root / "python" / "lib" / f"libpython{MINOR}.dylib"
    fat = lief.MachO.parse(str(interpreter))  # keep the fat binary alive while its slices are used
    loads = [command.name for command in fat.at(0).libraries]
    assert f"@executable_path/../lib/libpython{MINOR}.dylib" in loads
    assert all(not name.startswith("/") or name.startswith(("/usr/lib/", "/System/")) for name in loads), loads
    library_fat = lief.MachO.parse(str(library))
    ids = [command.name for command in library_fat.at(0).commands
           if command.command == lief.MachO.LoadCommand.TYPE.ID_DYLIB]
    assert ids == [f"@rpath/libpython{MINOR}.dylib"]
    for edited in (interpreter, library):  # the fixture's /install names forced an edit, so a new signature
        edited_fat = lief.MachO.parse(str(edited))
        assert edited_fat.at(0).has_code_signature, edited
        assert signature_problems(edited) == [], edited


def test_minimal_sourceless_zstd_for_every_target(cross_release: CrossRelease, cross_wheelhouse: Path,
                                                  cross_triples: tuple[str, ...], tmp_path: Path) -> None:
    """Trimming and sourceless bytecode for foreign runtimes: their standard library is compiled by the build
    machine's runtime of the same version, as their application code is."""
    table = (f'python-version = "{cross_release.python_version}"\ntargets = {_targets(cross_triples)}\n'
             'stdlib = "minimal"\n'
             'bytecode = "only"\narchive-format = "tar.zst"')
    project = copy_example_project(tmp_path / "project", hook_table=table)
    result = run_hatchling(project, "app", _env(cross_release, tmp_path / "cache", cross_wheelhouse, tmp_path / "uv"),
                           "--hooks-only")
    assert result.returncode == 0, result.stdout + result.stderr
    for triple in cross_triples:
        archive = project / "dist" / "app" / f"pbs-demo-1.0.0-{triple}.tar.zst"
        listing = subprocess.run(["tar", "--zstd", "-tf", str(archive)], capture_output=True, text=True,
                                 check=True).stdout.splitlines()
        names = {name.split("/", 1)[1] for name in listing if "/" in name}
        xy = ".".join(cross_release.python_version.split(".")[:2])
        stdlib = "python/Lib" if "windows" in triple else f"python/lib/python{xy}"
        assert "app/pbs_demo/cli.pyc" in names and "app/pbs_demo/cli.py" not in names, triple
        assert f"{stdlib}/os.pyc" in names and f"{stdlib}/os.py" not in names, triple
        assert not any(name.startswith("python/include/") for name in names), triple


def test_runtime_wheels_for_every_target(cross_release: CrossRelease, cross_wheelhouse: Path,
                                         cross_triples: tuple[str, ...], tmp_path: Path) -> None:
    from hatch_pbs.forms.wheel import wheel_platform_tag

    project = copy_example_project(tmp_path / "project", hook_table="")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write(f'\n[tool.hatch.build.targets.wheel.hooks.pbs]\npython-version = "{cross_release.python_version}"'
                        f'\nmanylinux = "{cross_release.host.manylinux}"\ntargets = {_targets(cross_triples)}\nwheel = true\n')
    result = run_hatchling(project, "wheel", _env(cross_release, tmp_path / "cache", cross_wheelhouse, tmp_path / "uv"))
    assert result.returncode == 0, result.stdout + result.stderr
    floors = cross_release.host.floors  # the floor the host's fake runtime needs, as the table declares
    expected = {f"pbs_demo-1.0.0-py3-none-{wheel_platform_tag(triple, floors)}.whl": triple for triple in cross_triples}
    assert sorted(path.name for path in (project / "dist").iterdir()) == sorted(expected)
    for name, triple in expected.items():
        with zipfile.ZipFile(project / "dist" / name) as wheel:
            manifest = json.loads(wheel.read("pbs_demo.pbs-runtime/hatch-pbs-manifest.json"))
            dispatcher = wheel.read("_pbs_launch_pbs_demo.py").decode()
        assert manifest["target"] == triple
        interpreter = "python/python.exe" if "windows" in triple else manifest["runtime"]["interpreter"]
        assert repr(interpreter) in dispatcher, triple


def _host_only_wheel(links: Path, tmp_path: Path, host: str) -> None:
    """A pure wheel of a distribution ``hostonly``, retagged for the build machine's manylinux platform only, in
    ``links``: the host triple can install it, any other target triple has no wheel for it."""
    import base64
    import platform

    source = tmp_path / "hostonly"
    (source / "src" / "hostonly").mkdir(parents=True)
    (source / "src" / "hostonly" / "__init__.py").write_text("")
    (source / "pyproject.toml").write_text('[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
                                           '[project]\nname = "hostonly"\nversion = "0.1"\n')
    built = tmp_path / "hostonly-dist"
    result = run_hatchling(source, "wheel", {}, "-d", str(built))
    assert result.returncode == 0, result.stderr
    (pure,) = built.glob("*.whl")
    tag = f"py3-none-manylinux_2_17_{platform.machine()}"
    with zipfile.ZipFile(pure) as original, zipfile.ZipFile(links / f"hostonly-0.1-{tag}.whl", "w") as retagged:
        entries = {info.filename: original.read(info) for info in original.infolist()}
        wheel_file = next(name for name in entries if name.endswith(".dist-info/WHEEL"))
        entries[wheel_file] = entries[wheel_file].replace(b"Root-Is-Purelib: true", b"Root-Is-Purelib: false") \
            .replace(b"Tag: py3-none-any", f"Tag: {tag}".encode())
        record = next(name for name in entries if name.endswith(".dist-info/RECORD"))
        rows = []
        for name, data in entries.items():
            if name != record:
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                rows.append(f"{name},sha256={digest},{len(data)}")
        entries[record] = ("\n".join([*rows, f"{record},,"]) + "\n").encode()
        for name, data in entries.items():
            retagged.writestr(name, data)
    assert host.startswith(platform.machine())


def test_a_target_that_fails_keeps_the_previous_complete_set(cross_release: CrossRelease, cross_wheelhouse: Path,
                                                             tmp_path: Path) -> None:
    host = cross_release.host.triple
    links = tmp_path / "links"
    links.mkdir()
    for wheel in cross_wheelhouse.iterdir():
        (links / wheel.name).symlink_to(wheel)
    _host_only_wheel(links, tmp_path, host)
    project = copy_example_project(tmp_path / "project", hook_table=(
        f'python-version = "{cross_release.python_version}"\ntargets = ["{host}", "aarch64-apple-darwin"]'))
    env = _env(cross_release, tmp_path / "cache", links, tmp_path / "uv")
    first = run_hatchling(project, "app", env, "--hooks-only")
    assert first.returncode == 0, first.stdout + first.stderr
    dist = project / "dist" / "app"
    before = {path.name: path.read_bytes() for path in dist.iterdir()}
    assert len(before) == 5  # two archives, two SBOMs, SHA256SUMS

    # The host's archive changes (a new dependency), the macOS target fails: nothing may be replaced.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.9",', '"orjson>=3.9",\n  "hostonly",'))
    second = run_hatchling(project, "app", env, "--hooks-only")
    output = second.stdout + second.stderr
    assert second.returncode != 0 and "Traceback" not in output, output
    # One resolution serves both triples, so the failure is known before either is built, and names the triple.
    assert "the dependencies are resolved once for every target triple" in output
    assert "  hostonly 0.1 has no usable wheel for aarch64-apple-darwin (at no platform floor)" in output
    assert {path.name: path.read_bytes() for path in dist.iterdir()} == before  # no staging directory left either
    for line in before["SHA256SUMS"].decode().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256(before[name]).hexdigest() == digest


def test_one_resolution_gives_every_triple_the_same_versions(cross_release: CrossRelease, cross_wheelhouse: Path,
                                                             tmp_path: Path) -> None:
    """pbsfloor 2.0 has a wheel for aarch64 Linux only at a newer glibc than the configured floor; 1.0 has wheels
    for both triples. Resolving per triple would give aarch64 1.0 and the host 2.0; one resolution fails instead,
    naming the distribution, the triple and the floor at which it has a wheel, and with that floor both artifacts
    hold 2.0."""
    from floor_support import retagged_wheel
    from pbs_release import runtime_manylinux

    from hatch_pbs.release.triples import MANYLINUX_FLOORS

    host, arm = cross_release.host.triple, "aarch64-unknown-linux-gnu"
    if not host.startswith("x86_64-unknown-linux-gnu"):
        pytest.skip("the wheels below are tagged for an x86_64 Linux build machine")
    floor = runtime_manylinux()  # what the fake host runtime needs: the lowest floor these builds may declare
    if floor == MANYLINUX_FLOORS[-1]:
        pytest.skip(f"no manylinux floor uv knows is above this machine's glibc ({floor})")
    newer = MANYLINUX_FLOORS[MANYLINUX_FLOORS.index(floor) + 1]
    links = tmp_path / "links"
    links.mkdir()
    for wheel in cross_wheelhouse.iterdir():
        (links / wheel.name).symlink_to(wheel)
    for version, tags in (("1.0", ("manylinux_2_17_x86_64", "manylinux_2_17_aarch64")),
                          ("2.0", ("manylinux_2_17_x86_64", f"manylinux_{newer}_aarch64"))):
        for tag in tags:
            retagged_wheel(tmp_path / "wheels", links, "pbsfloor", version, f"py3-none-{tag}")
    env = _env(cross_release, tmp_path / "cache", links, tmp_path / "uv")

    def project(name: str, manylinux: str) -> Path:
        made = copy_example_project(tmp_path / name, hook_table=(
            f'python-version = "{cross_release.python_version}"\ntargets = ["{host}", "{arm}"]\n'
            f'manylinux = "{manylinux}"'))
        pyproject = made / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('"orjson>=3.9",', '"orjson>=3.9",\n  "pbsfloor",'))
        return made

    at_floor = project("at-floor", floor)
    failed = run_hatchling(at_floor, "app", env, "--hooks-only")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "Traceback" not in output, output
    assert f'  pbsfloor 2.0 has no usable wheel for {arm} (it has one at manylinux = "{newer}")' in output
    assert not list((at_floor / "dist").rglob("*.tar.gz"))  # found before any target was built

    raised = project("raised", newer)
    built = run_hatchling(raised, "app", env, "--hooks-only")
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert "resolved once for all 2 target triples" in output
    versions = {}
    for triple in (host, arm):
        with tarfile.open(raised / "dist" / "app" / f"pbs-demo-1.0.0-{triple}.tar.gz") as bundle:
            member = bundle.extractfile(f"pbs-demo-1.0.0-{triple}/hatch-pbs-manifest.json")
            assert member is not None
            manifest = json.load(member)
        versions[triple] = {entry["name"]: entry["version"] for entry in manifest["distributions"]}
    assert versions[host]["pbsfloor"] == versions[arm]["pbsfloor"] == "2.0"
    assert versions[host] == versions[arm]  # every distribution: rich, orjson, their dependencies, the project
