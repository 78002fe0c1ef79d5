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
