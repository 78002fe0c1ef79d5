"""Relocation (hatch_pbs.relocate) of Mach-O files: a PBS-like macOS runtime tree built from real zig-linked
binaries for aarch64-macos and x86_64-macos, whose install names and load commands name the build prefix
``/install`` the way older PBS releases shipped libpython (install name ``/install/lib/libpython3.X.dylib``).

macOS binaries cannot be run on this (Linux) machine, so nothing here executes them: the result is checked with
LIEF (every load command names a file inside the tree or a system library), by re-planning (nothing left to do),
and by verifying each new ad-hoc signature with the independent signature reader of ``test_codesign`` (page
hashes recomputed with hashlib).
"""

from __future__ import annotations

import os
import posixpath
import struct
from dataclasses import dataclass
from pathlib import Path

import lief
import pytest
from codesign_support import (
    TARGETS,
    assert_valid_signature,
    copy,
    fat_file,
    parse,
    zig_demo,
)
from lief_support import macho_slice

from hatch_pbs.binaries.codesign import read_code_directory
from hatch_pbs.binaries.macho import macho_kind, read_load_commands
from hatch_pbs.errors import RelocateError
from hatch_pbs.relocate import RelocationPlan, apply_plan, plan_relocation
from hatch_pbs.relocate.analysis import MachOChange, read_build_prefixes

SYSCONFIGDATA = "python/lib/python3.11/_sysconfigdata__darwin_darwin.py"
EXECUTABLE = "python/bin/demo"
LIBRARY = "python/lib/libdemo.dylib"
EXTENSION = "python/lib/python3.11/lib-dynload/ext.so"
RELOCATABLE = "python/lib/libok.dylib"
WEAK = "python/bin/weakdemo"
STAGING = "/build/stage/python"
"""Where the runtime was staged by an earlier step (the executable's second LC_RPATH names it)."""
SYSTEM_PREFIXES = ("/usr/lib/", "/System/")


@dataclass
class Tree:
    target: str
    root: Path
    before: dict[str, bytes]
    modes: dict[str, int]


def macho_files(root: Path) -> list[str]:
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as stream:
                    if macho_kind(stream.read(8)) is not None:
                        found.append(path.relative_to(root).as_posix())
    return sorted(found)


def build_tree(target: str, root: Path) -> Tree:
    demo = zig_demo(target)
    for relative, source in ((EXECUTABLE, demo.executable), (LIBRARY, demo.library), (EXTENSION, demo.extension),
                             (RELOCATABLE, demo.relocatable), (WEAK, demo.weak_executable)):
        copy(source, root / relative)
    (root / EXECUTABLE).chmod(0o755)
    (root / LIBRARY).chmod(0o644)
    (root / SYSCONFIGDATA).write_text(
        "# system configuration generated and used by the sysconfig module\n"
        "build_time_vars = {'prefix': '/install', 'exec_prefix': '/install', 'CC': 'clang'}\n")
    files = macho_files(root)
    return Tree(target, root, {relative: (root / relative).read_bytes() for relative in files},
                {relative: (root / relative).stat().st_mode for relative in files})


@pytest.fixture(scope="module", params=TARGETS)
def relocated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Tree, RelocationPlan]:
    tree = build_tree(request.param, tmp_path_factory.mktemp(request.param) / "artifact")
    plan = plan_relocation(tree.root, tree.root / "python", extra_prefixes=(STAGING,))
    apply_plan(plan)
    return tree, plan


def resolve(loader: Path, name: str, executable: Path, rpaths: tuple[str, ...]) -> list[Path]:
    """Where dyld would look for ``name`` loaded from ``loader`` (``@rpath`` tries every rpath)."""
    if name.startswith("@loader_path/"):
        return [Path(posixpath.normpath(f"{loader.parent}/{name[len('@loader_path/'):]}"))]
    if name.startswith("@executable_path/"):
        return [Path(posixpath.normpath(f"{executable.parent}/{name[len('@executable_path/'):]}"))]
    if name.startswith("@rpath/"):
        return [candidate for rpath in rpaths
                for candidate in resolve(loader, f"{rpath}/{name[len('@rpath/'):]}", executable, ())]
    return [Path(name)]


def test_the_tree_needs_relocation(tmp_path: Path) -> None:
    """Meaningful only if the zig binaries really carry /install paths, like older PBS libpython."""
    tree = build_tree("aarch64-macos", tmp_path / "artifact")
    assert read_build_prefixes(tree.root / "python") == ("/install",)
    [library] = read_load_commands(tree.root / LIBRARY)
    assert library.install_name == "/install/lib/libdemo.dylib"
    [executable] = read_load_commands(tree.root / EXECUTABLE)
    assert ("LOAD_DYLIB", "/install/lib/libdemo.dylib") in executable.dylibs
    assert executable.rpaths == ("/install/lib", f"{STAGING}/lib")
    assert executable.is_executable and executable.cpu == "ARM64"


def test_plan(relocated: tuple[Tree, RelocationPlan]) -> None:
    _, plan = relocated
    changes = {change.path: change for change in plan.macho}
    assert changes == {
        LIBRARY: MachOChange(LIBRARY, "DYLIB", ("/install/lib/libdemo.dylib", "@rpath/libdemo.dylib"), (), (), ()),
        EXECUTABLE: MachOChange(
            EXECUTABLE, "EXECUTE", None,
            (("/install/lib/libdemo.dylib", "@executable_path/../lib/libdemo.dylib"),),
            ("/install/lib", f"{STAGING}/lib"), ("@executable_path/../lib",)),
        EXTENSION: MachOChange(
            EXTENSION, "DYLIB", ("/install/lib/python3.11/lib-dynload/ext.so", "@rpath/ext.so"),
            (("/install/lib/libdemo.dylib", "@loader_path/../../libdemo.dylib"),),
            ("/install/lib", "/opt/homebrew/lib", "@loader_path/../.."), ("@loader_path/../..",),
            ("/opt/homebrew/lib",), ("points outside the artifact",)),
        WEAK: MachOChange(WEAK, "EXECUTE", None,
                          (("/install/lib/libdemo.dylib", "@executable_path/../lib/libdemo.dylib"),), (), ()),
    }
    assert sorted(plan.signed) == sorted(changes)
    assert RELOCATABLE not in plan.signed and plan.problems == []
    assert plan.removed_entries == [
        f"{EXTENSION}: removed LC_RPATH entry /opt/homebrew/lib (points outside the artifact)"]
    assert plan.search_paths == [] and plan.shebangs == []


def test_every_load_command_names_a_file_in_the_tree_or_the_system(relocated: tuple[Tree, RelocationPlan]) -> None:
    tree, _ = relocated
    executable = tree.root / EXECUTABLE
    checked = 0
    for relative in macho_files(tree.root):
        path = tree.root / relative
        binary = macho_slice(str(path))
        rpaths = tuple(command.path for command in binary.rpaths)
        for rpath in rpaths:
            assert rpath.startswith(("@loader_path", "@executable_path")), (relative, rpath)
            [directory] = resolve(path, rpath + "/x", executable, ())
            assert directory.parent.is_dir() and tree.root in directory.parents, (relative, rpath)
        for command in binary.commands:
            if isinstance(command, lief.MachO.DylibCommand):
                name = command.name
                if str(command.command).endswith("ID_DYLIB"):
                    assert name.startswith("@rpath/"), (relative, name)
                    continue
                if name.startswith("/"):
                    assert name.startswith(SYSTEM_PREFIXES), (relative, name)
                    continue
                candidates = resolve(path, name, executable, rpaths)
                assert any(candidate.is_file() and tree.root in candidate.parents for candidate in candidates), \
                    (relative, name, candidates)
                checked += 1
            elif isinstance(command, lief.MachO.RPathCommand):
                assert not command.path.startswith("/")
    assert checked == 3  # demo, weakdemo and ext.so load libdemo.dylib from inside the tree
    [weak] = read_load_commands(tree.root / WEAK)
    assert ("LOAD_WEAK_DYLIB", "@executable_path/../lib/libdemo.dylib") in weak.dylibs  # the variant is kept
    assert macho_slice(str(tree.root / EXECUTABLE)).rpaths[0].path == "@executable_path/../lib"


def test_edited_files_are_resigned_and_their_signatures_are_valid(relocated: tuple[Tree, RelocationPlan]) -> None:
    tree, plan = relocated
    for relative in plan.signed:
        path = tree.root / relative
        parsed = assert_valid_signature(path, path.name)  # page hashes recomputed independently
        assert parsed.cd["flags"] == 0x2  # ad-hoc, no longer linker-signed
        assert list(parsed.blobs) == [0, 2, 0x10000]
        assert read_code_directory(path).identifier == path.name
    if tree.target == "aarch64-macos":  # zig had signed these; the old signature was replaced, not kept
        assert parse(tree.before[EXECUTABLE]).cd["flags"] == 0x20002
    else:  # zig left x86_64 output unsigned: relocation added the signature
        assert not macho_slice(tree.before[EXECUTABLE]).has_code_signature


def test_files_already_relocatable_are_untouched(relocated: tuple[Tree, RelocationPlan]) -> None:
    tree, _ = relocated
    assert (tree.root / RELOCATABLE).read_bytes() == tree.before[RELOCATABLE]


def test_modes_are_kept(relocated: tuple[Tree, RelocationPlan]) -> None:
    tree, _ = relocated
    for relative, mode in tree.modes.items():
        assert (tree.root / relative).stat().st_mode == mode, relative
    assert not any(path.name.startswith(".") for path in tree.root.rglob("*")), "temporary files left behind"


def test_code_and_symbols_are_unchanged(relocated: tuple[Tree, RelocationPlan]) -> None:
    """LIEF rewrites __LINKEDIT; what dyld binds, rebases and exports must be the same, apart from the library names.
    (This caught LIEF writing empty dyld info for a binary parsed with its ``quick`` configuration.)"""
    tree, plan = relocated
    for relative in plan.signed:
        before = macho_slice(tree.before[relative])
        after = macho_slice(str(tree.root / relative))
        assert [(s.name, bytes(s.content)) for s in after.sections] == [
            (s.name, bytes(s.content)) for s in before.sections], relative
        assert sorted((s.name, s.value) for s in after.symbols) == sorted((s.name, s.value) for s in before.symbols)
        renamed = dict(next(c for c in plan.macho if c.path == relative).dylibs)
        assert sorted((b.symbol.name, b.address, b.library.name) for b in after.bindings) == sorted(
            (b.symbol.name, b.address, renamed.get(b.library.name, b.library.name)) for b in before.bindings)
        assert sorted((e.symbol.name, e.address) for e in after.dyld_info.exports) == sorted(
            (e.symbol.name, e.address) for e in before.dyld_info.exports)
        assert sorted(r.address for r in after.relocations) == sorted(r.address for r in before.relocations)
        assert len(before.dyld_info.exports) >= 1  # the check above is not vacuous


def test_second_plan_is_empty(relocated: tuple[Tree, RelocationPlan]) -> None:
    tree, _ = relocated
    again = plan_relocation(tree.root, tree.root / "python", extra_prefixes=(STAGING,))
    assert (again.macho, again.signed, again.problems, again.removed_entries) == ([], [], [], [])


def test_pbs_rpath_layout_is_already_relocatable(tmp_path: Path) -> None:
    """Since 20251209 PBS ships ``@rpath`` install names and lib-dynload rpaths ``@loader_path/../..``: no change."""
    tree = build_tree("aarch64-macos", tmp_path / "artifact")
    for relative in (LIBRARY, EXTENSION, EXECUTABLE, WEAK):
        (tree.root / relative).unlink()
    plan = plan_relocation(tree.root, tree.root / "python")
    assert (plan.macho, plan.signed, plan.problems) == ([], [], [])


# ----------------------------------------------------------------------------------------------------------------
# Refusals


def test_universal_file_needing_changes_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    tree = build_tree("x86_64-macos", tmp_path / "artifact")
    fat = tree.root / "python/lib/libfat.dylib"
    fat.write_bytes(fat_file([zig_demo(target).library for target in TARGETS]))
    plan = plan_relocation(tree.root, tree.root / "python")
    assert plan.problems == [(
        "python/lib/libfat.dylib: a universal (fat) Mach-O file that needs relocation (its load commands name "
        "/install/lib/libdemo.dylib); universal2 and 32-bit Mach-O files are out of scope: use "
        "single-architecture (thin, 64-bit) runtimes and wheels")]
    assert "python/lib/libfat.dylib" not in plan.signed
    with pytest.raises(RelocateError, match="universal2 and 32-bit Mach-O files are out of scope"):
        apply_plan(plan)
    for relative, content in tree.before.items():
        assert (tree.root / relative).read_bytes() == content, f"{relative} was written although the plan failed"


def test_universal_file_needing_nothing_is_left_alone(tmp_path: Path) -> None:
    """Universal wheels (universal2) may be installed into the tree; relocatable ones are not a problem."""
    tree = build_tree("x86_64-macos", tmp_path / "artifact")
    fat = tree.root / "app/pkg/_native.so"
    fat.parent.mkdir(parents=True)
    fat.write_bytes(fat_file([zig_demo(target).relocatable for target in TARGETS]))
    java = tree.root / "app/pkg/Main.class"  # also starts with 0xcafebabe
    java.write_bytes(b"\xca\xfe\xba\xbe\x00\x00\x00\x41" + bytes(64))
    content = fat.read_bytes()
    plan = plan_relocation(tree.root, tree.root / "python")
    assert plan.problems == []
    assert "app/pkg/_native.so" not in {change.path for change in plan.macho}
    apply_plan(plan)
    assert fat.read_bytes() == content
    assert macho_kind(java.read_bytes()[:8]) is None and macho_kind(content[:8]) == "fat"


def test_dependency_the_runtime_does_not_have_is_a_problem(tmp_path: Path) -> None:
    tree = build_tree("aarch64-macos", tmp_path / "artifact")
    (tree.root / LIBRARY).unlink()
    plan = plan_relocation(tree.root, tree.root / "python")
    assert sorted(plan.problems) == sorted([
        f"{EXECUTABLE}: LC_LOAD_DYLIB /install/lib/libdemo.dylib names a file the runtime does not have",
        f"{EXTENSION}: LC_LOAD_DYLIB /install/lib/libdemo.dylib names a file the runtime does not have",
    ])  # not weakdemo: dyld runs a program whose weak dependency is missing
    assert WEAK not in {change.path for change in plan.macho}
    with pytest.raises(RelocateError, match="names a file the runtime does not have"):
        apply_plan(plan)


def test_without_sysconfigdata_install_paths_are_not_the_runtime(tmp_path: Path) -> None:
    """Nothing says /install is the runtime: load commands naming it are left alone (the audit reports them),
    rpaths into it are removed as pointing outside, like ELF search paths."""
    tree = build_tree("x86_64-macos", tmp_path / "artifact")
    (tree.root / SYSCONFIGDATA).unlink()
    plan = plan_relocation(tree.root, tree.root / "python")
    changes = {change.path: change for change in plan.macho}
    assert changes[EXECUTABLE].dylibs == () and changes[EXECUTABLE].rpaths_after == ()
    assert LIBRARY not in changes


def test_a_corrupt_file_with_a_macho_magic_is_ignored(tmp_path: Path) -> None:
    tree = build_tree("x86_64-macos", tmp_path / "artifact")
    junk = tree.root / "python/lib/junk.dylib"
    junk.write_bytes(b"\xcf\xfa\xed\xfe" + struct.pack("<7I", 0x01000007, 3, 6, 1000, 99999, 0, 0))
    plan = plan_relocation(tree.root, tree.root / "python")
    assert "python/lib/junk.dylib" not in {change.path for change in plan.macho}
