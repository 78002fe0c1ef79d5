"""Property-based tests of the hook configuration (hypothesis): whatever TOML can hold, given to any option, the
table is either accepted or refused with a ConfigError, never with another exception from deep inside."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hatch_pbs.config import OPTIONS, HookConfig, parse_hook_config
from hatch_pbs.errors import ConfigError

HOST = "x86_64-unknown-linux-gnu"
SCRIPTS = {"app": "app.cli:main", "app-gui": "app.gui:main"}

# What a TOML document can hold (TOML has no null): strings (any Unicode but surrogates, NUL included: TOML
# escapes allow "\u0000"), integers (64-bit), floats (inf and nan included), booleans, offset and local
# date-times, dates and times, arrays and tables, nested.
toml_scalars = st.one_of(
    st.text(),
    st.text(alphabet=string.ascii_letters + string.digits + ".-_/~:\\ ", max_size=40),
    st.sampled_from(["host", "all", "latest", "3.12", "3.12.7", "20261021", "full", "install_only", "app", "",
                     "x86_64-unknown-linux-gnu", "file:///srv/pbs", "https://", "~", ".", "/", "\x00",
                     "~no-such-user-hatch-pbs/cache"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.dates(),
    st.times(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(max_size=12), children, max_size=5)),
    max_leaves=12,
)
option_names = st.one_of(st.sampled_from(OPTIONS), st.text(max_size=20))
environment = st.dictionaries(
    st.sampled_from(["HATCH_PBS_MIRROR", "HATCH_PBS_CACHE_DIR", "HATCH_PBS_OFFLINE"]),
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
)
# database=None: no .hypothesis/ directory in the work tree; failures print the example to reproduce them.
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                     HealthCheck.function_scoped_fixture])


def parse(raw: dict[str, Any], root: Path, environ: dict[str, str] | None = None) -> HookConfig | ConfigError:
    try:
        return parse_hook_config(raw, project_scripts=SCRIPTS, root=root, environ=environ or {},
                                 host=lambda: HOST)
    except ConfigError as error:
        return error


def check(result: HookConfig | ConfigError) -> None:
    if isinstance(result, ConfigError):
        assert result.problems and all(isinstance(problem, str) and problem for problem in result.problems)
        assert str(result) == "\n".join(result.problems)
    else:
        assert isinstance(result, HookConfig)
        assert result.cache_dir.is_absolute()
        assert result.targets and all(isinstance(target, str) for target in result.targets)


@pytest.mark.parametrize("option", OPTIONS)
@PROPERTY_SETTINGS
@given(value=toml_values)
def test_any_value_for_each_option_is_accepted_or_a_config_error(option: str, value: Any, tmp_path: Path) -> None:
    result = parse({option: value}, tmp_path)
    check(result)
    if isinstance(result, ConfigError):
        # a table option's key is named as `image.base`
        assert any(f"`{option}`" in problem or f"`{option}." in problem for problem in result.problems), \
            result.problems


@PROPERTY_SETTINGS
@given(table=st.dictionaries(option_names, toml_values, max_size=len(OPTIONS) + 2), environ=environment)
def test_any_table_and_environment_is_accepted_or_a_config_error(table: dict[str, Any], environ: dict[str, str],
                                                                 tmp_path: Path) -> None:
    check(parse(table, tmp_path, environ))


@PROPERTY_SETTINGS
@given(targets=st.lists(st.one_of(toml_values, st.sampled_from(["host", "all", HOST, "x86_64-unknown-linux-gnux"])),
                        max_size=6))
def test_any_targets_array_is_accepted_or_a_config_error(targets: list[Any], tmp_path: Path) -> None:
    check(parse({"targets": targets}, tmp_path))


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    """One table, every option wrong: one ConfigError naming each option."""
    wrong: dict[str, Any] = {option: {"not": ["a", "valid", "value"]} for option in OPTIONS}
    result = parse(wrong, tmp_path)
    assert isinstance(result, ConfigError)
    for option in OPTIONS:
        assert any(f"`{option}`" in problem for problem in result.problems), option


@pytest.mark.parametrize("value", ["dir\x00name", "~no-such-user-hatch-pbs/cache"])
@pytest.mark.parametrize("option", ["cache-dir", "requirements"])
def test_an_unusable_path_is_a_config_error(option: str, value: str, tmp_path: Path) -> None:
    """Found by the properties above: pathlib raised ValueError (NUL) and RuntimeError (unknown ~user)."""
    result = parse({option: value}, tmp_path)
    assert isinstance(result, ConfigError)
    assert f"`{option}`" in str(result)


def test_an_unknown_user_in_the_cache_dir_variable_is_a_config_error(tmp_path: Path) -> None:
    result = parse({}, tmp_path, {"HATCH_PBS_CACHE_DIR": "~no-such-user-hatch-pbs/cache"})
    assert isinstance(result, ConfigError)
    assert "`HATCH_PBS_CACHE_DIR` starts with ~ but names no user" in str(result)
