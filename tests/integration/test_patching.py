"""Relocation (hatch_pbs.relocate) of a real runtime: the fake release's install_only tree, whose interpreter,
libpython and extension modules carry an absolute RUNPATH into the source prefix and whose pip scripts have
absolute shebangs. After relocation the tree must run from anywhere with the source prefix hidden."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import lief
import pytest
from pbs_release import FakeRelease
from runtime_tree import (
    INTERPRETER,
    XY,
    cannot_hide_directories,
    copy_tree,
    elf_files,
    extract_install_only,
    readelf_search_paths,
    relocate,
    run_hidden,
)

from hatch_pbs.binaries.elf import read_search_paths
from hatch_pbs.relocate import RelocationPlan, apply_plan, plan_relocation
from hatch_pbs.relocate.analysis import read_build_prefixes
from hatch_pbs.relocate.apply import TRAMPOLINE

PROBE = "import ssl, sqlite3, ctypes, sys; print(sys.prefix)"
CRAFTED = "python/lib/crafted/_json.so"
"""A copy of the ``_json`` extension module whose DT_RPATH the tests set to a mix of entries (see ``craft``)."""
ESCAPING = "python/lib/crafted/escaping.so"
"""Another copy whose ``$ORIGIN``-relative RUNPATH climbs out of the tree."""


@dataclass
class Relocated:
    """A runtime tree before and after relocation."""

    root: Path
    plan: RelocationPlan
    before: dict[str, dict[str, tuple[str, ...]]]
    """ELF search paths before relocation: relative path -> tag -> entries."""
    modes: dict[str, int]
    """Modes of the ELF files before relocation."""
    scripts: dict[str, bytes]
    """Content of the hand-written scripts before relocation."""


def search_paths_by_file(root: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    return {path.relative_to(root).as_posix(): read_search_paths(path) for path in elf_files(root)}


def craft(root: Path, prefix: Path) -> None:
    """Add ELF files with search paths pointing outside the artifact (and one inside, absolute)."""
    dynload = next((root / f"python/lib/python{XY}/lib-dynload").glob("_json.*.so"))
    (root / CRAFTED).parent.mkdir()
    for relative, tag, entries in (
        (CRAFTED, "RPATH", ["/opt/elsewhere/lib", f"{prefix}/lib", "relative/lib"]),
        (ESCAPING, "RUNPATH", ["$ORIGIN/../../../../../outside/lib", "$ORIGIN/../../lib", f"{prefix}/lib/"]),
    ):
        binary = lief.ELF.parse(str(dynload))
        binary.remove(lief.ELF.DynamicEntry.TAG.RUNPATH)
        new_entry = lief.ELF.DynamicEntryRpath(entries) if tag == "RPATH" else lief.ELF.DynamicEntryRunPath(entries)
        binary.add(new_entry)
        binary.write(str(root / relative))
        assert read_search_paths(root / relative) == {tag: tuple(entries)}


SCRIPTS = {
    "python/bin/env-script": b"#!/usr/bin/env python3\nprint('env')\n",
    "python/bin/sh-script": b"#!/bin/sh\necho sh\n",
    "python/bin/system-python": b"#!/usr/bin/python3\nprint('system')\n",
    "python/bin/flagged": None,  # absolute shebang into the prefix with an interpreter option (filled in below)
    "app/tool": None,  # a script outside the runtime directory whose shebang names the runtime's interpreter
}


def write_scripts(root: Path, prefix: Path) -> dict[str, bytes]:
    contents = dict(SCRIPTS)
    flags = "import sys; print('ignore_environment', sys.flags.ignore_environment)\n"
    contents["python/bin/flagged"] = f"#!{prefix}/bin/python{XY} -E\n{flags}".encode()
    contents["app/tool"] = f"#! {prefix}/bin/python3\nimport sys; print('tool', sys.prefix)\n".encode()
    for relative, content in contents.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o755)
    # Not executable: never run directly, so left alone even though its shebang is absolute.
    (root / "app/data.py").write_bytes(f"#!{prefix}/bin/python{XY}\n".encode())
    return contents


@pytest.fixture(scope="module")
def relocated(fake_release: FakeRelease, tmp_path_factory: pytest.TempPathFactory) -> Relocated:
    root = extract_install_only(fake_release, tmp_path_factory.mktemp("relocated") / "artifact")
    craft(root, fake_release.source_prefix)
    scripts = write_scripts(root, fake_release.source_prefix)
    before = search_paths_by_file(root)
    modes = {relative: (root / relative).stat().st_mode for relative in before}
    plan = relocate(root)
    return Relocated(root, plan, before, modes, scripts)


@pytest.fixture(scope="module")
def unrelocated(fake_release: FakeRelease, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extract_install_only(fake_release, tmp_path_factory.mktemp("unrelocated") / "artifact")


def is_relocatable(entry: str) -> bool:
    return entry.startswith("$ORIGIN/") or entry == "$ORIGIN"


def test_the_fixture_runtime_needs_relocation(relocated: Relocated, fake_release: FakeRelease) -> None:
    """The test is only meaningful if the extracted tree really carried absolute search paths."""
    absolute = {relative for relative, found in relocated.before.items()
                for entries in found.values() for entry in entries if entry.startswith(str(fake_release.source_prefix))}
    assert INTERPRETER in absolute
    assert f"python/lib/libpython{XY}.so.1.0" in absolute
    assert sum(1 for relative in absolute if "/lib-dynload/" in relative) >= 20


def test_build_prefix_is_read_from_sysconfigdata(relocated: Relocated, fake_release: FakeRelease) -> None:
    assert read_build_prefixes(relocated.root / "python") == (str(fake_release.source_prefix),)
    assert relocated.plan.build_prefixes[0] == str(fake_release.source_prefix)
    assert relocated.plan.build_prefixes[-1] == str((relocated.root / "python").resolve())


def test_pbs_style_install_prefix_comes_from_sysconfigdata(fake_release: FakeRelease, tmp_path: Path) -> None:
    """A runtime configured with ``--prefix=/install`` (as PBS builds are): the plan maps ``/install`` into the tree
    because _sysconfigdata says so, not because it is assumed."""
    root = tmp_path / "artifact"
    (root / "python/bin").mkdir(parents=True)
    stdlib = root / f"python/lib/python{XY}"
    stdlib.mkdir(parents=True)
    (stdlib / "_sysconfigdata__linux_x86_64-linux-gnu.py").write_text(
        "# system configuration generated and used by the sysconfig module\n"
        "build_time_vars = {'exec_prefix': '/install', 'prefix': '/install/', 'CC': 'clang'}\n")
    binary = lief.ELF.parse(str(fake_release.source_prefix / "bin" / f"python{XY}"))
    binary.get(lief.ELF.DynamicEntry.TAG.RUNPATH).paths = ["/install/lib", "/usr/local/lib"]
    binary.write(str(root / f"python/bin/python{XY}"))
    script = root / "python/bin/idle3"
    script.write_text(f"#!/install/bin/python{XY}\nprint('idle')\n")
    script.chmod(0o755)

    assert read_build_prefixes(root / "python") == ("/install",)
    plan = plan_relocation(root, root / "python")
    assert plan.build_prefixes == ("/install", str((root / "python").resolve()))
    assert [(c.path, c.before, c.after, c.removed) for c in plan.search_paths] == [
        (f"python/bin/python{XY}", ("/install/lib", "/usr/local/lib"), ("$ORIGIN/../lib",), ("/usr/local/lib",))]
    assert [(c.path, c.interpreter) for c in plan.shebangs] == [("python/bin/idle3", f"python{XY}")]
    # Without the sysconfig data nothing says /install is the runtime: the entry points outside, and goes.
    (stdlib / "_sysconfigdata__linux_x86_64-linux-gnu.py").unlink()
    plan = plan_relocation(root, root / "python")
    assert plan.search_paths[0].after == () and plan.shebangs == []


def test_every_elf_search_path_is_origin_relative(relocated: Relocated) -> None:
    after = search_paths_by_file(relocated.root)
    assert after.keys() == relocated.before.keys()
    checked = 0
    for relative, found in after.items():
        directory = (relocated.root / relative).parent
        for tag, entries in found.items():
            assert entries, f"{relative}: empty {tag} left behind"
            for entry in entries:
                assert is_relocatable(entry), f"{relative}: {tag} entry {entry!r} is not $ORIGIN-relative"
                target = Path(os.path.normpath(directory / entry.replace("$ORIGIN", ".", 1)))
                assert target.is_dir(), f"{relative}: {tag} entry {entry!r} names no directory"
                assert target == relocated.root or relocated.root in target.parents
                checked += 1
        # The dynamic tag kept its kind: RUNPATH stays RUNPATH, RPATH stays RPATH.
        assert set(found) <= set(relocated.before[relative])
    assert checked >= len(relocated.before) - 1
    assert after[INTERPRETER] == {"RUNPATH": ("$ORIGIN/../lib",)}
    assert after[f"python/lib/libpython{XY}.so.1.0"] == {"RUNPATH": ("$ORIGIN",)}


@pytest.mark.skipif(shutil.which("readelf") is None, reason="readelf (binutils) is not installed")
def test_readelf_agrees(relocated: Relocated) -> None:
    for path in elf_files(relocated.root):
        relative = path.relative_to(relocated.root).as_posix()
        found = readelf_search_paths(path)
        assert found == read_search_paths(path), relative
        assert all(is_relocatable(entry) for entries in found.values() for entry in entries), (relative, found)
    assert readelf_search_paths(relocated.root / INTERPRETER) == {"RUNPATH": ("$ORIGIN/../lib",)}


def test_elf_modes_are_kept(relocated: Relocated) -> None:
    for relative, mode in relocated.modes.items():
        assert (relocated.root / relative).stat().st_mode == mode, relative
    assert os.access(relocated.root / INTERPRETER, os.X_OK)


def test_entries_outside_the_artifact_are_removed_and_reported(relocated: Relocated,
                                                              fake_release: FakeRelease) -> None:
    assert read_search_paths(relocated.root / CRAFTED) == {"RPATH": ("$ORIGIN/..",)}
    assert read_search_paths(relocated.root / ESCAPING) == {"RUNPATH": ("$ORIGIN/../../lib", "$ORIGIN/..")}
    assert sorted(relocated.plan.removed_entries) == sorted([
        f"{CRAFTED}: removed RPATH entry /opt/elsewhere/lib (points outside the artifact)",
        f"{CRAFTED}: removed RPATH entry relative/lib (relative to the working directory)",
        f"{ESCAPING}: removed RUNPATH entry $ORIGIN/../../../../../outside/lib (points outside the artifact)",
    ])
    change = next(change for change in relocated.plan.search_paths if change.path == CRAFTED)
    assert change.before == ("/opt/elsewhere/lib", f"{fake_release.source_prefix}/lib", "relative/lib")
    assert change.after == ("$ORIGIN/..",)


def test_crafted_module_still_loads_after_lief_rewrote_it(relocated: Relocated) -> None:
    code = ("import importlib.util as u, sys; spec = u.spec_from_file_location('_json', sys.argv[1]); "
            "module = u.module_from_spec(spec); spec.loader.exec_module(module); "
            "print(module.__file__, module.encode_basestring_ascii('é'))")
    proc = subprocess.run([str(relocated.root / INTERPRETER), "-I", "-c", code, str(relocated.root / CRAFTED)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(relocated.root / CRAFTED), '"\\u00e9"']


def test_second_plan_is_empty(relocated: Relocated) -> None:
    again = plan_relocation(relocated.root, relocated.root / "python")
    assert again.search_paths == []
    assert again.shebangs == []
    assert again.removed_entries == []


def test_pip_shebangs_become_trampolines(relocated: Relocated, fake_release: FakeRelease) -> None:
    changed = {change.path: change for change in relocated.plan.shebangs}
    for name in ("pip3", f"pip{XY}"):
        relative = f"python/bin/{name}"
        assert changed[relative].shebang == f"{fake_release.source_prefix}/bin/python{XY}"
        assert changed[relative].interpreter == f"python{XY}"
        text = (relocated.root / relative).read_text()
        assert text.startswith(TRAMPOLINE.format(interpreter=f"python{XY}", arguments=""))
        assert str(fake_release.source_prefix) not in text
        original_body = (fake_release.source_prefix / "bin" / name).read_text().split("\n", 1)[1]
        assert text.endswith(original_body)
        assert os.access(relocated.root / relative, os.X_OK)
    proc = subprocess.run([str(relocated.root / "python/bin/pip3"), "--version"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"from {relocated.root}/python/lib/python{XY}/site-packages/pip" in proc.stdout


def test_shebang_arguments_and_scripts_outside_the_runtime(relocated: Relocated) -> None:
    changed = {change.path: change for change in relocated.plan.shebangs}
    assert changed["python/bin/flagged"].interpreter == f"python{XY}"
    assert changed["python/bin/flagged"].arguments == "-E"
    assert changed["app/tool"].interpreter == "../python/bin/python3"
    flagged = subprocess.run([str(relocated.root / "python/bin/flagged")], capture_output=True, text=True,
                             check=True)
    assert flagged.stdout == "ignore_environment 1\n"
    tool = subprocess.run([str(relocated.root / "app/tool")], capture_output=True, text=True, check=True)
    assert tool.stdout == f"tool {relocated.root}/python\n"


def test_foreign_shebangs_are_untouched(relocated: Relocated) -> None:
    for relative in ("python/bin/env-script", "python/bin/sh-script", "python/bin/system-python"):
        assert (relocated.root / relative).read_bytes() == relocated.scripts[relative], relative
        assert relative not in {change.path for change in relocated.plan.shebangs}
    assert (relocated.root / "app/data.py").read_bytes().startswith(b"#!/")
    assert "app/data.py" not in {change.path for change in relocated.plan.shebangs}
    sh = subprocess.run([str(relocated.root / "python/bin/sh-script")], capture_output=True, text=True, check=True)
    assert sh.stdout == "sh\n"


def test_relocated_tree_runs_from_a_copy(relocated: Relocated, tmp_path: Path) -> None:
    copy = copy_tree(relocated.root, tmp_path / "elsewhere" / "moved")
    proc = subprocess.run([str(copy / "python/bin/python3"), "-c", PROBE], capture_output=True, text=True,
                          cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{copy}/python\n"


# --------------------------------------------------------------------------------------------------------------
# The source prefix hidden: only files inside the moved tree (and system libraries) can be used.


@pytest.fixture(scope="module")
def hide() -> None:
    reason = cannot_hide_directories()
    if reason:
        pytest.skip(f"cannot hide the source prefix: {reason}")


def test_relocated_runtime_runs_with_the_source_prefix_hidden(hide: None, relocated: Relocated,
                                                             fake_release: FakeRelease, tmp_path: Path) -> None:
    copy = copy_tree(relocated.root, tmp_path / "unpacked" / "somewhere-else")
    prefix = fake_release.source_prefix
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    proc = run_hidden(prefix, [str(copy / "python/bin/python3"), "-c", PROBE], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{copy}/python\n"

    # Where each module really came from: every one inside the copy (libssl, libsqlite3, libffi are the system's).
    where = ("import _ssl, _sqlite3, _ctypes, os, sys; "
             "print(*(m.__file__ for m in (_ssl, _sqlite3, _ctypes, os)), sep='\\n')")
    proc = run_hidden(prefix, [str(copy / INTERPRETER), "-c", where], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    files = proc.stdout.splitlines()
    assert len(files) == 4 and all(line.startswith(f"{copy}/python/lib/python{XY}/") for line in files), files

    pip = run_hidden(prefix, [str(copy / "python/bin/pip3"), "--version"], cwd=tmp_path, env=env)
    assert pip.returncode == 0, pip.stderr
    assert f"from {copy}/python/lib/python{XY}/site-packages/pip" in pip.stdout

    # The loader resolved libpython inside the copy, not through the (hidden) old RUNPATH.
    maps = run_hidden(prefix, [str(copy / "python/bin/python3"), "-c",
                               "print(open('/proc/self/maps').read())"], cwd=tmp_path, env=env)
    assert maps.returncode == 0, maps.stderr
    assert f"{copy}/python/lib/libpython{XY}.so.1.0" in maps.stdout
    assert str(prefix) not in maps.stdout


def test_unrelocated_runtime_fails_with_the_source_prefix_hidden(hide: None, unrelocated: Path,
                                                                fake_release: FakeRelease, tmp_path: Path) -> None:
    """The control: without relocation the same command works only while the source prefix is visible."""
    copy = copy_tree(unrelocated, tmp_path / "unpacked" / "somewhere-else")
    command = [str(copy / "python/bin/python3"), "-c", PROBE]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    visible = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert visible.returncode == 0, visible.stderr

    hidden = run_hidden(fake_release.source_prefix, command, cwd=tmp_path, env=env)
    assert hidden.returncode != 0
    # Either the loader finds no libpython at all, or (here: Debian's libpython3.11 package is installed) it
    # silently takes the system's, a different build, and the first extension module fails to link against it.
    assert (f"libpython{XY}.so.1.0: cannot open shared object file" in hidden.stderr
            or "undefined symbol" in hidden.stderr), hidden.stderr

    maps = run_hidden(fake_release.source_prefix, [str(copy / "python/bin/python3"), "-c",
                                                   "print(open('/proc/self/maps').read())"], cwd=tmp_path, env=env)
    assert f"{copy}/python/lib/libpython{XY}.so.1.0" not in maps.stdout


def test_relocation_is_confined_to_the_tree(relocated: Relocated, fake_release: FakeRelease) -> None:
    """Relocating never touched the source prefix it read paths from."""
    source = fake_release.source_prefix / "bin" / f"python{XY}"
    assert read_search_paths(source) == {"RUNPATH": (f"{fake_release.source_prefix}/lib",)}
    assert (fake_release.source_prefix / "bin" / "pip3").read_text().startswith(f"#!{fake_release.source_prefix}/")
    assert stat.S_ISREG(source.stat().st_mode)


def test_long_path_polyglot_preamble_becomes_a_trampoline(fake_release: FakeRelease, tmp_path: Path) -> None:
    """pip, uv and distlib write a ``/bin/sh`` preamble instead of ``#!`` when the interpreter path is longer than
    the kernel's limit (127 bytes) or has spaces; it names the interpreter too and must be relocated."""
    root = extract_install_only(fake_release, tmp_path / ("deep " * 30).strip().replace(" ", "/") / "artifact")
    apply_plan(plan_relocation(root, root / "python"))
    interpreter = (root / "python" / "bin" / f"python{XY}").resolve()
    script = root / "app" / "bin" / "tool"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!/bin/sh\n'''exec' '{interpreter}' \"$0\" \"$@\"\n' '''\nimport sys\nprint('tool', sys.argv[1:])\n")
    script.chmod(0o755)
    plan = plan_relocation(root, root / "python")
    [change] = [change for change in plan.shebangs if change.path == "app/bin/tool"]
    assert (change.interpreter, change.lines) == (f"../../python/bin/python{XY}", 3)
    apply_plan(plan)
    assert script.read_text().splitlines()[1] == \
        f"'''exec' \"$(cd -- \"$(dirname -- \"$(realpath -- \"$0\")\")/../../python/bin\" && pwd -P)/python{XY}\" \"$0\" \"$@\""
    assert script.read_text().endswith("import sys\nprint('tool', sys.argv[1:])\n")
    result = subprocess.run([str(script), "a b"], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, "tool ['a b']\n"), result.stderr
    assert plan_relocation(root, root / "python").shebangs == []


# --- reading search paths without LIEF ----------------------------------------------------------------------------


def _lief_search_paths(path: Path) -> dict[str, tuple[str, ...]]:
    """The same facts as LIEF reads them (the reference the pure reader is checked against)."""
    binary = lief.ELF.parse(str(path))
    return {str(entry.tag).rsplit(".", 1)[-1]: tuple(part for part in entry.paths if part)
            for entry in binary.dynamic_entries if str(entry.tag).rsplit(".", 1)[-1] in ("RPATH", "RUNPATH")}


@pytest.mark.parametrize("target", ["x86_64-linux-gnu", "x86-linux-gnu", "aarch64-linux-gnu", "mips-linux-gnu",
                                    "powerpc64-linux-gnu"])
@pytest.mark.parametrize("tags", ["--enable-new-dtags", "--disable-new-dtags"])
def test_reader_matches_lief_for_every_class_and_byte_order(tmp_path: Path, target: str, tags: str) -> None:
    """32- and 64-bit, little- and big-endian shared objects, with DT_RUNPATH or DT_RPATH, built by zig."""
    (tmp_path / "a.c").write_text("int f(void) { return 1; }\n")
    library = tmp_path / "liba.so"
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", target, "-shared", "-nostdlib",
                    f"-Wl,{tags}", "-Wl,-rpath,$ORIGIN/../lib:/abs/elsewhere", "-o", str(library),
                    str(tmp_path / "a.c")], check=True, capture_output=True)
    expected = {"RUNPATH" if tags == "--enable-new-dtags" else "RPATH": ("$ORIGIN/../lib", "/abs/elsewhere")}
    assert read_search_paths(library) == _lief_search_paths(library) == expected


def test_reader_matches_lief_on_a_whole_runtime(fake_release: FakeRelease, tmp_path: Path) -> None:
    import tarfile

    with tarfile.open(fake_release.assets["install_only"]) as archive:
        archive.extractall(tmp_path, filter="tar")
    checked = 0
    for path in sorted((tmp_path / "python").rglob("*")):
        if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF":
            assert read_search_paths(path) == _lief_search_paths(path), path
            checked += 1
    assert checked > 50


def test_reader_rejects_what_is_not_elf_and_reads_static_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 20)
    with pytest.raises(ValueError, match="not a parseable ELF file"):
        read_search_paths(broken)
    (tmp_path / "text").write_text("#!/bin/sh\n")
    with pytest.raises(ValueError, match="not a parseable ELF file"):
        read_search_paths(tmp_path / "text")
    (tmp_path / "s.c").write_text("void _start(void) { for (;;) {} }\n")
    static = tmp_path / "static"
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-musl", "-static", "-nostdlib",
                    "-o", str(static), str(tmp_path / "s.c")], check=True, capture_output=True)
    assert read_search_paths(static) == {}
