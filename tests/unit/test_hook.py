"""The ``pbs`` build hook in-process, with a fake Hatch application and builder: which form a build gets, and how
the hook turns a form's failures into one ``hatch-pbs:`` line (no pipeline runs here: the forms are recording
stand-ins where a test needs one, and the form choice is checked on the real form classes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hatchling.metadata.core import ProjectMetadata
from hatchling.plugin.manager import PluginManager

from hatch_pbs.errors import ResolveError
from hatch_pbs.forms.archive import ArchiveForm
from hatch_pbs.forms.pyapp import PyAppForm
from hatch_pbs.forms.wheel import RuntimeWheelForm
from hatch_pbs.hatch import hook as hook_module
from hatch_pbs.hatch.hook import PbsBuildHook

PYPROJECT = """\
[project]
name = "demo-app"
version = "1.2.3"
requires-python = ">=3.10"

[project.scripts]
demo = "demo:main"
"""


class Aborted(Exception):
    """What the fake application's ``abort`` raises (hatchling's exits)."""


class FakeApplication:
    """Records what the hook shows; ``abort`` raises :class:`Aborted` with the message and code."""

    verbosity = 0

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def display_info(self, message: str) -> None:
        self.lines.append(("info", message))

    def display_warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def display_success(self, message: str) -> None:
        self.lines.append(("success", message))

    def abort(self, message: str, code: int = 1) -> None:
        raise Aborted(message, code)


class FakeBuildConfig:
    """hatchling's build config as far as the hook reads it: the builder object (PyApp's form wraps its
    ``cargo_build``)."""

    def __init__(self) -> None:
        self.builder = type("FakeBinaryBuilder", (), {"cargo_build": lambda self, *a, **k: None})()


class RecordingForm:
    """A form that records its lifecycle calls and raises ``failure`` from ``initialize``."""

    def __init__(self, failure: BaseException | None = None) -> None:
        self.calls: list[str] = []
        self.failure = failure

    def initialize(self, build_data: dict[str, Any]) -> None:
        self.calls.append("initialize")
        if self.failure is not None:
            raise self.failure

    def finalize(self, artifact_path: Path) -> None:
        self.calls.append(f"finalize {artifact_path.name}")

    def close(self) -> None:
        self.calls.append("close")

    def interrupted(self, stage: str) -> str:
        return f"interrupted during {stage}"

    def failed(self, stage: str) -> str:
        return f"cannot {stage}"


def make_hook(tmp_path: Path, target_name: str, table: dict[str, Any]) -> tuple[PbsBuildHook, FakeApplication]:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    metadata = ProjectMetadata(str(tmp_path), PluginManager())
    application = FakeApplication()
    hook = PbsBuildHook(str(tmp_path), table, FakeBuildConfig(), metadata, str(tmp_path / "dist"), target_name,
                        application)
    return hook, application


@pytest.fixture
def chosen(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The forms :func:`~hatch_pbs.hatch.hook.select_form` returned (it still runs: the real choice)."""
    forms: list[Any] = []
    real = hook_module.select_form

    def recording_select(*args: Any, **kwargs: Any) -> Any:
        form = real(*args, **kwargs)
        forms.append(form)
        return None  # nothing is built: this test is about the choice
    monkeypatch.setattr(hook_module, "select_form", recording_select)
    return forms


@pytest.mark.parametrize(("target", "table", "hooks_only", "expected"), [
    ("app", {}, True, ArchiveForm),
    ("binary", {}, True, ArchiveForm),
    ("app", {}, False, PyAppForm),
    ("app", {"pyapp": False}, False, PyAppForm),  # still wraps cargo: hatchling's binary builder runs anyway
    ("wheel", {"wheel": True}, False, RuntimeWheelForm),
])
def test_the_target_and_options_choose_the_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chosen: list[Any],
                                                target: str, table: dict[str, Any], hooks_only: bool,
                                                expected: type) -> None:
    monkeypatch.setenv("HATCH_BUILD_HOOKS_ONLY", "1" if hooks_only else "0")
    hook, _ = make_hook(tmp_path, target, table)
    hook.initialize("standard", {})
    assert [type(form) for form in chosen] == [expected]
    form = chosen[0]
    assert form.context.name == "demo-app" and form.context.version == "1.2.3"
    assert form.context.scripts == {"demo": "demo:main"}
    assert form.context.output_dir == tmp_path / "dist" / ("" if target == "wheel" else target)


def test_editable_wheels_and_other_targets_get_no_form(tmp_path: Path, chosen: list[Any]) -> None:
    hook, _ = make_hook(tmp_path, "wheel", {"wheel": True})
    hook.initialize("editable", {})
    assert chosen == [None]
    for target in ("sdist", "wheel"):  # ordinary targets: the table is not even read (it is invalid here)
        hook, _ = make_hook(tmp_path, target, {"targets": 42})
        hook.initialize("standard", {})
    assert chosen == [None]


def test_an_invalid_table_is_one_line_naming_the_option(tmp_path: Path) -> None:
    hook, _ = make_hook(tmp_path, "app", {"stdlib": "tiny"})
    with pytest.raises(Aborted) as aborted:
        hook.initialize("standard", {})
    message, code = aborted.value.args
    assert message.startswith("hatch-pbs: ") and "`stdlib`" in message and "tiny" in message and code == 1


@pytest.mark.parametrize(("failure", "expected", "code"), [
    (ResolveError("no asset for riscv64"), "hatch-pbs: no asset for riscv64", 1),
    (OSError(28, "No space left on device"), "hatch-pbs: cannot initialize: No space left on device", 1),
    (KeyboardInterrupt(), "interrupted during initialize", 130),
])
def test_a_form_failure_is_one_line_and_the_form_is_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           failure: BaseException, expected: str, code: int) -> None:
    form = RecordingForm(failure)
    monkeypatch.setattr(hook_module, "select_form", lambda *args, **kwargs: form)
    hook, _ = make_hook(tmp_path, "app", {})
    with pytest.raises(Aborted) as aborted:
        hook.initialize("standard", {})
    assert aborted.value.args == (expected, code)
    assert form.calls == ["initialize", "close"]


def test_a_successful_form_is_finalized_then_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    form = RecordingForm()
    monkeypatch.setattr(hook_module, "select_form", lambda *args, **kwargs: form)
    hook, _ = make_hook(tmp_path, "app", {})
    hook.initialize("standard", {})
    assert form.calls == ["initialize"]  # open until hatchling's builder is done
    hook.finalize("standard", {}, str(tmp_path / "dist" / "app" / "demo"))
    assert form.calls == ["initialize", "finalize demo", "close"]
