"""The option declarations are the one source: docs/configuration.md's reference tables are rendered from them, and
they agree with HookConfig's fields (names, Literal choices, defaults)."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import pytest

from hatch_pbs.config import OPTION_DECLARATIONS, OPTIONS, HookConfig, reference
from hatch_pbs.release.triples import PlatformFloors

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
REGENERATE = "python -m hatch_pbs.config.reference --write docs/configuration.md"


def test_docs_reference_tables_match_the_declarations() -> None:
    document = DOCS.read_text(encoding="utf-8")
    assert reference.render(document) == document, f"docs/configuration.md is out of date: run {REGENERATE}"


def test_a_changed_declaration_makes_the_docs_out_of_date(monkeypatch: pytest.MonkeyPatch) -> None:
    document = DOCS.read_text(encoding="utf-8")
    changed = tuple(dataclasses.replace(option, doc=option.doc + " Changed.") if option.name == "timeout" else option
                    for option in OPTION_DECLARATIONS)
    monkeypatch.setattr(reference, "OPTION_DECLARATIONS", changed)
    assert reference.render(document) != document
    assert "then retried). Changed. |" in reference.render(document)


def test_every_option_and_variable_has_a_row() -> None:
    options_rows = reference.options_table().splitlines()[2:]
    assert [row.split(" | ")[0] for row in options_rows] == [f"| `{name}`" for name in OPTIONS]
    variables = [option.env.variable for option in OPTION_DECLARATIONS if option.env is not None]
    assert variables == ["HATCH_PBS_RELEASE", "HATCH_PBS_MIRROR", "HATCH_PBS_CACHE_DIR", "HATCH_PBS_OFFLINE",
                         "MACOSX_DEPLOYMENT_TARGET"]
    assert all(f"| `{variable}` |" in reference.environment_table() for variable in variables)


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "configuration.md"
    copy.write_text(DOCS.read_text(encoding="utf-8"), encoding="utf-8")
    assert reference.main(["--check", str(copy)]) == 0
    stale = copy.read_text(encoding="utf-8").replace("| `timeout` | number (seconds) |", "| `timeout` | number |")
    copy.write_text(stale, encoding="utf-8")
    assert reference.main(["--check", str(copy)]) == 1
    assert "is out of date" in capsys.readouterr().err
    assert reference.main(["--write", str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") == DOCS.read_text(encoding="utf-8")


@pytest.mark.parametrize("document", [
    "no markers at all",
    "<!-- options-table:start --> <!-- options-table:end --> <!-- env-table:start -->",
    "<!-- options-table:end --> <!-- options-table:start --> <!-- env-table:start --> <!-- env-table:end -->",
])
def test_missing_or_misplaced_markers_are_refused(document: str) -> None:
    with pytest.raises(ValueError, match="options-table|env-table"):
        reference.render(document)


def test_a_cell_holding_a_pipe_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = (dataclasses.replace(OPTION_DECLARATIONS[0], doc="a | b"), *OPTION_DECLARATIONS[1:])
    monkeypatch.setattr(reference, "OPTION_DECLARATIONS", changed)
    with pytest.raises(ValueError, match="holds |"):
        reference.options_table()


def test_declared_fields_are_exactly_hookconfigs_fields() -> None:
    declared = [option.field for option in OPTION_DECLARATIONS]
    assert len(set(declared)) == len(declared)
    top_level = {field.split(".")[0] for field in declared}
    assert top_level == {field.name for field in dataclasses.fields(HookConfig)}
    floors = {field.split(".", 1)[1] for field in declared if field.startswith("floors.")}
    assert floors == {field.name for field in dataclasses.fields(PlatformFloors)}


def _literal_values(annotation: object) -> tuple[object, ...]:
    """The values of a ``Literal`` annotation (``Literal[...] | None`` included), else ``()``."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(value for member in typing.get_args(annotation) for value in _literal_values(member))
    return ()


def test_choice_options_are_typed_with_their_choices() -> None:
    hints = typing.get_type_hints(HookConfig)
    literal_fields = {name for name, annotation in hints.items() if _literal_values(annotation)}
    assert literal_fields == {"flavor", "stdlib", "bytecode", "archive_format", "pyapp"}
    for option in OPTION_DECLARATIONS:
        if option.field in literal_fields:
            assert option.choices == _literal_values(hints[option.field]), option.name


def test_declared_defaults_are_hookconfigs_defaults() -> None:
    defaults = {field.name: field.default for field in dataclasses.fields(HookConfig)
                if field.default is not dataclasses.MISSING}
    floors = PlatformFloors()
    for option in OPTION_DECLARATIONS:
        if option.default_from is not None:
            continue
        if option.field.startswith("floors."):
            assert option.default == getattr(floors, option.field.split(".", 1)[1]), option.name
        elif option.field in defaults:
            assert option.default == defaults[option.field], option.name
