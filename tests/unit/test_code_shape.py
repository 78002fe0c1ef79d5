"""The code stays easy to change: no function of hatch_pbs longer than a screen (60 lines, docstring included)
unless it is listed here with the reason (issue #11)."""

from __future__ import annotations

import ast
from pathlib import Path

import hatch_pbs

MAX_LINES = 60
#: Functions allowed to be longer, "module:qualified name" -> why.
LONGER_ON_PURPOSE: dict[str, str] = {}


def function_lengths() -> dict[str, int]:
    """``{"hatch_pbs/x.py:Class.method": lines}`` of every function and method in the package."""
    root = Path(hatch_pbs.__file__).parent
    lengths: dict[str, int] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        _visit(tree, f"{path.relative_to(root.parent).as_posix()}:", lengths)
    return lengths


def _visit(node: ast.AST, prefix: str, lengths: dict[str, int]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{child.name}"
            lengths[name] = (child.end_lineno or child.lineno) - child.lineno + 1
            _visit(child, f"{name}.", lengths)
        elif isinstance(child, ast.ClassDef):
            _visit(child, f"{prefix}{child.name}.", lengths)


def test_no_function_is_longer_than_a_screen() -> None:
    lengths = function_lengths()
    assert len(lengths) > 300  # the walk found the package's functions
    too_long = {name: lines for name, lines in lengths.items() if lines > MAX_LINES and name not in LONGER_ON_PURPOSE}
    assert too_long == {}, f"functions over {MAX_LINES} lines (split them, or list them with a reason): {too_long}"


def test_the_exceptions_still_exist_and_are_still_long() -> None:
    lengths = function_lengths()
    assert {name: lengths.get(name, 0) > MAX_LINES for name in LONGER_ON_PURPOSE} == dict.fromkeys(LONGER_ON_PURPOSE,
                                                                                                     True)
