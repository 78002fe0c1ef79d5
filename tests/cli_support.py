"""Helpers for tests of the ``hatch-pbs`` command run in-process (:func:`hatch_pbs.cli.main`)."""

from __future__ import annotations

import pytest

from hatch_pbs.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``main(argv)``: exit status (argparse usage errors exit through SystemExit), stdout, stderr."""
    try:
        status = main(list(argv))
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(status: int, out: str, err: str) -> str:
    """The one ``hatch-pbs: error:`` line a failed command wrote to stderr (and nothing to stdout)."""
    assert status != 0
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hatch-pbs: error: "), err
    return lines[0]
