"""hatch_pbs.errors.os_error_cause and mount_point on real errors of this machine's file system (a full file system
itself: tests/test_disk_full.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hatch_pbs.errors import mount_point, os_error_cause


def _error_of(operation) -> OSError:
    with pytest.raises(OSError) as info:
        operation()
    return info.value


def test_other_errors_name_the_file_unless_the_caller_names_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    below = tmp_path / "file" / "entry"
    error = _error_of(lambda: below.mkdir(parents=True))
    assert os_error_cause(error) == f"Not a directory ({below})"
    assert os_error_cause(error, below) == "Not a directory"  # "cannot write {below}: ..." names it already
    assert os_error_cause(OSError("Compilation failed (code 101)")) == "Compilation failed (code 101)"


def test_mount_point_of_a_path_that_does_not_exist_yet(tmp_path: Path) -> None:
    mount = mount_point(tmp_path / "not" / "yet")
    assert os.path.ismount(mount) and str(tmp_path.resolve()).startswith(mount)
    assert mount_point(tmp_path) == mount
    assert os.stat(mount).st_dev == os.stat(tmp_path).st_dev  # the same file system
    assert mount_point("/") == "/"


def test_a_failed_tools_message_keeps_uvs_own_lines_that_the_tail_would_cut() -> None:
    """uv's error chain comes before a build backend's output; the tail alone would lose the line naming the
    distribution and version (``× Failed to build `pyarrow==26.0.1```)."""
    from hatch_pbs.interrupts import FAILURE_TAIL, failure_output

    backend = [f"  cc -c part{number}.c" for number in range(200)]
    output = "\n".join(["Resolved 3 packages", "  × Failed to build `pyarrow==26.0.1`",
                        "  ├─▶ The build backend returned an error", "  ╰─▶ Call to `setuptools.build_meta.build_wheel`"
                        " failed (exit status: 1)", *backend, "      hint: This usually indicates a problem with the "
                        "package or the build environment."])
    shown = failure_output(output).splitlines()
    assert shown[:4] == ["  × Failed to build `pyarrow==26.0.1`", "  ├─▶ The build backend returned an error",
                         "  ╰─▶ Call to `setuptools.build_meta.build_wheel` failed (exit status: 1)",
                         f"[... {len(backend) + 1 - FAILURE_TAIL + 1} more lines of output ...]"]
    assert shown[4:] == output.splitlines()[-FAILURE_TAIL:]
    assert failure_output("error: one\nline two\n") == "error: one\nline two"  # short output: all of it
