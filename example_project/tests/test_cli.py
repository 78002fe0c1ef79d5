"""In-process tests of the pbs-demo CLI logic."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pbs_demo import __version__
from pbs_demo.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample.json"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pbs-demo {__version__}" == "pbs-demo 1.0.0"


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("summary", "echo", "exit", "doctor"):
        assert command in out


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "required" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["hello"],
        ["with space", 'double " quote', "single ' quote", ""],
        ["--help", "-x", "--", "a\\b", "tab\there"],
        ["ünïcødé", "日本語", "emoji \U0001f40d"],
    ],
)
def test_echo_round_trips_arguments(capsys, args):
    assert main(["echo", *args]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1
    assert json.loads(out) == args


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_status(code):
    assert main(["exit", str(code)]) == code


def test_exit_rejects_non_integer(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["exit", "nope"])
    assert exc.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_summary_table(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a.json").write_bytes(SAMPLE.read_bytes())
    Path("b.json").write_text("[1, 2, 3]")
    Path("c.json").write_text('"just a string"')
    assert main(["summary", "a.json", "b.json", "c.json"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[1]: line for line in out.splitlines() if ".json" in line}
    assert set(lines) == {"a.json", "b.json", "c.json"}
    assert "object" in lines["a.json"] and f" {SAMPLE.stat().st_size} " in lines["a.json"]
    assert "array" in lines["b.json"] and " 3 " in lines["b.json"] and " 9 " in lines["b.json"]
    assert "string" in lines["c.json"] and " - " in lines["c.json"]
    n_keys = len(json.loads(SAMPLE.read_text()))
    assert f" {n_keys} " in lines["a.json"]


def test_summary_missing_file(capsys, tmp_path):
    missing = tmp_path / "missing.json"
    assert main(["summary", str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("pbs-demo: error: ") and "no such file" in err_lines[0]


def test_summary_invalid_json(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["summary", str(bad)]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1
    assert err_lines[0].startswith("pbs-demo: error: ") and "invalid JSON" in err_lines[0]


def test_doctor(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    info = json.loads(out)
    assert set(info) >= {
        "python_executable", "python_version", "prefix", "orjson_file", "rich_file",
        "sys_path", "argv0", "cwd_on_path", "user_site_enabled", "flags_isolated",
    }
    # orjson must be the real compiled extension, not a Python file
    orjson_file = os.path.basename(info["orjson_file"])
    assert orjson_file.startswith("orjson") and orjson_file.endswith((".so", ".pyd"))
    assert os.path.isfile(info["orjson_file"])
    assert info["rich_file"].endswith("__init__.py")
    assert isinstance(info["sys_path"], list)
    assert isinstance(info["cwd_on_path"], bool)
