"""hatch_pbs.runtime.trim: the stdlib presets and exclude patterns, on real directory trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hatch_pbs.runtime.trim import (
    TrimResult,
    compile_patterns,
    stdlib_patterns,
    trim_tree,
    under,
)

POSIX_FILES = [
    "bin/python3.12", "bin/idle3.12", "bin/2to3-3.12", "bin/pydoc3.12",
    "include/python3.12/Python.h", "lib/pkgconfig/python3.pc", "lib/libpython3.12.so.1.0",
    "lib/tcl8.6/init.tcl", "lib/tk8.6/tk.tcl", "lib/itcl4.2.4/itcl.tcl", "lib/thread2.8.9/pkgIndex.tcl",
    "lib/libtcl8.6.so", "lib/libtk8.6.so", "share/man/man1/python3.12.1", "share/terminfo/x/xterm",
    "lib/python3.12/os.py", "lib/python3.12/__pycache__/os.cpython-312.pyc",
    "lib/python3.12/__pycache__/os.cpython-312.opt-1.pyc", "lib/python3.12/__pycache__/os.cpython-312.opt-2.pyc",
    "lib/python3.12/__pycache__/os.cpython-311.pyc", "lib/python3.12/turtle.py",
    "lib/python3.12/__pycache__/turtle.cpython-312.pyc",
    "lib/python3.12/test/test_os.py", "lib/python3.12/unittest/test/test_case.py", "lib/python3.12/unittest/case.py",
    "lib/python3.12/ctypes/test/test_x.py", "lib/python3.12/idlelib/idle.py", "lib/python3.12/turtledemo/clock.py",
    "lib/python3.12/ensurepip/__init__.py", "lib/python3.12/lib2to3/main.py", "lib/python3.12/tkinter/__init__.py",
    "lib/python3.12/pydoc_data/topics.py", "lib/python3.12/pydoc.py", "lib/python3.12/json/__init__.py",
    "lib/python3.12/config-3.12-x86_64-linux-gnu/Makefile",
    "lib/python3.12/lib-dynload/_testcapi.cpython-312-x86_64-linux-gnu.so",
    "lib/python3.12/lib-dynload/_tkinter.cpython-312-x86_64-linux-gnu.so",
    "lib/python3.12/lib-dynload/_json.cpython-312-x86_64-linux-gnu.so",
    "lib/python3.12/site-packages/README.txt", "lib/python3.12/site-packages/pip/__init__.py",
    "lib/python3.12/site-packages/pip-24.3.1.dist-info/RECORD", "bin/pip3.12",
]
WINDOWS_FILES = [
    "python.exe", "pythonw.exe", "DLLs/_tkinter.pyd", "DLLs/tcl86t.dll", "DLLs/tk86t.dll", "DLLs/_testcapi.pyd",
    "DLLs/_ssl.pyd", "tcl/tcl8.6/init.tcl", "include/Python.h", "libs/python312.lib", "Lib/os.py",
    "Lib/test/test_os.py", "Lib/tkinter/__init__.py", "Lib/idlelib/idle.py", "Lib/json/__init__.py",
]


def _tree(root: Path, files: list[str]) -> Path:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
    return root


def _remaining(root: Path) -> set[str]:
    return {Path(directory, name).relative_to(root).as_posix()
            for directory, _, names in os.walk(root) for name in names}


def _trim(root: Path, preset: str, *, windows: bool = False, exclude: tuple[str, ...] = ()) -> TrimResult:
    patterns = under("python", stdlib_patterns(preset, python_version="3.12.7", windows=windows))
    return trim_tree(root / "python", compile_patterns([*patterns, *exclude]), prefix="python")


def test_full_keeps_everything(tmp_path: Path) -> None:
    _tree(tmp_path / "python", POSIX_FILES)
    assert _trim(tmp_path, "full") == TrimResult(0, 0)
    assert _remaining(tmp_path / "python") == set(POSIX_FILES)


def test_default_drops_test_suites_tools_and_unused_bytecode(tmp_path: Path) -> None:
    _tree(tmp_path / "python", POSIX_FILES)
    result = _trim(tmp_path, "default")
    dropped = set(POSIX_FILES) - _remaining(tmp_path / "python")
    assert dropped == {
        "bin/idle3.12", "bin/2to3-3.12", "lib/python3.12/test/test_os.py", "lib/python3.12/unittest/test/test_case.py",
        "lib/python3.12/ctypes/test/test_x.py", "lib/python3.12/idlelib/idle.py", "lib/python3.12/turtledemo/clock.py",
        "lib/python3.12/ensurepip/__init__.py", "lib/python3.12/lib2to3/main.py",
        "lib/python3.12/lib-dynload/_testcapi.cpython-312-x86_64-linux-gnu.so",
        "lib/python3.12/__pycache__/os.cpython-312.opt-1.pyc", "lib/python3.12/__pycache__/os.cpython-312.opt-2.pyc",
        "lib/python3.12/__pycache__/os.cpython-311.pyc", "lib/python3.12/site-packages/pip/__init__.py",
        "lib/python3.12/site-packages/pip-24.3.1.dist-info/RECORD", "bin/pip3.12",
    }
    assert result == TrimResult(len(dropped), 10 * len(dropped))
    assert not (tmp_path / "python/lib/python3.12/idlelib").exists()  # directories go with their contents
    assert (tmp_path / "python/lib/python3.12/unittest/case.py").is_file()


def test_minimal_also_drops_tk_docs_data_and_build_files(tmp_path: Path) -> None:
    _tree(tmp_path / "python", POSIX_FILES)
    _trim(tmp_path, "minimal")
    assert _remaining(tmp_path / "python") == {
        "bin/python3.12", "bin/pydoc3.12", "lib/libpython3.12.so.1.0", "share/terminfo/x/xterm",
        "lib/python3.12/os.py", "lib/python3.12/__pycache__/os.cpython-312.pyc", "lib/python3.12/unittest/case.py",
        "lib/python3.12/pydoc.py", "lib/python3.12/json/__init__.py",
        "lib/python3.12/lib-dynload/_json.cpython-312-x86_64-linux-gnu.so", "lib/python3.12/site-packages/README.txt",
    }


def test_minimal_on_the_windows_layout(tmp_path: Path) -> None:
    _tree(tmp_path / "python", WINDOWS_FILES)
    _trim(tmp_path, "minimal", windows=True)
    assert _remaining(tmp_path / "python") == {"python.exe", "pythonw.exe", "DLLs/_ssl.pyd", "Lib/os.py",
                                               "Lib/json/__init__.py"}


def test_exclude_patterns_are_relative_to_the_artifact_root_and_can_re_include(tmp_path: Path) -> None:
    _tree(tmp_path / "python", POSIX_FILES)
    _tree(tmp_path / "app", ["pkg/__init__.py", "pkg/data.json", "pkg/tests/test_a.py", "other/x.pyi", "y.pyi"])
    spec = compile_patterns(["*.pyi", "app/**/tests/", "python/lib/python3.12/json/", "!python/share/", "share/"])
    trim_tree(tmp_path / "app", spec, prefix="app")
    trim_tree(tmp_path / "python", spec, prefix="python")
    assert _remaining(tmp_path / "app") == {"pkg/__init__.py", "pkg/data.json"}
    remaining = _remaining(tmp_path / "python")
    assert "lib/python3.12/json/__init__.py" not in remaining
    assert "share/terminfo/x/xterm" not in remaining  # the later pattern wins over the earlier negation
    assert "lib/python3.12/os.py" in remaining


def test_links_are_matched_by_their_own_name_and_dangling_ones_removed(tmp_path: Path) -> None:
    runtime = _tree(tmp_path / "python", ["lib/libpython3.12.so.1.0", "lib/tk8.6/tk.tcl", "bin/python3.12"])
    os.symlink("libpython3.12.so.1.0", runtime / "lib/libpython3.12.so")
    os.symlink("tk8.6", runtime / "lib/tk")
    os.symlink("python3.12", runtime / "bin/python3")
    result = trim_tree(runtime, compile_patterns(["python/lib/libpython3.12.so.1.0", "python/lib/tk8.6/"]),
                       prefix="python")
    assert not os.path.lexists(runtime / "lib/libpython3.12.so")  # left dangling: removed
    assert not os.path.lexists(runtime / "lib/tk")
    assert (runtime / "bin/python3").resolve() == (runtime / "bin/python3.12").resolve()
    assert result.files == 4


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="unknown stdlib preset 'tiny'"):
        stdlib_patterns("tiny", python_version="3.12", windows=False)


def test_under_keeps_negation() -> None:
    assert under("python", ["!**/x.pyc", "lib/a/"]) == ["!python/**/x.pyc", "python/lib/a/"]


@pytest.mark.parametrize(("python_version", "kept"), [("3.10.13", True), ("3.11.7", False), ("3.12", False)])
def test_minimal_keeps_distutils_for_python_3_10(python_version: str, kept: bool) -> None:
    """uv reads a 3.10 interpreter's install scheme through distutils (3.10 has no ``venv`` sysconfig scheme): the
    build installs with the trimmed runtime, so the preset must keep it there (end to end: the 3.10 run of
    ``test_small_and_fast.py``'s minimal build)."""
    minor = ".".join(python_version.split(".")[:2])
    spec = compile_patterns(under("python", stdlib_patterns("minimal", python_version=python_version,
                                                            windows=False)))
    assert spec.match_file(f"python/lib/python{minor}/distutils/dist.py") is not kept
    assert spec.match_file(f"python/lib/python{minor}/pydoc_data/topics.py")
