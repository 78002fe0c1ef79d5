"""Unit tests of hatch_pbs.config: one class per option, exact messages for every invalid value."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from hatch_pbs.config import (
    DEFAULT_FLAVOR,
    DEFAULT_RELEASE,
    HATCHLING_HOOK_KEYS,
    HookConfig,
    default_cache_dir,
    parse_hook_config,
)
from hatch_pbs.errors import ConfigError, HatchPbsError
from hatch_pbs.release.assets import GITHUB_DOWNLOAD_PREFIX
from hatch_pbs.release.triples import PlatformFloors

HOST = "x86_64-unknown-linux-gnu"
SCRIPTS = {"pbs-demo": "pbs_demo.cli:main", "pbs-demo-gui": "pbs_demo.gui:main"}
KNOWN = ("python-version, release, targets, flavor, mirror, cache-dir, scripts, offline, requirements, timeout, "
         "max-unpacked-size, stdlib, exclude, bytecode, archive-format, pyapp, wheel, manylinux, musllinux, macos, "
         "build-from-source, image, onefile")
ROOT = Path("/srv/project")
CACHE = "/var/cache/hatch-pbs-tests"
"""An absolute cache-dir passed by default, so that no test depends on the user's cache directory."""


def _host() -> str:
    return HOST


def parse(raw: Mapping[str, Any], *, environ: Mapping[str, str] | None = None,
          scripts: Mapping[str, str] = SCRIPTS, root: Path = ROOT,
          host: Callable[[], str] = _host) -> HookConfig:
    return parse_hook_config(raw, project_scripts=scripts, root=root, environ={} if environ is None else environ,
                             host=host)


def problems(raw: Mapping[str, Any], **kwargs: Any) -> list[str]:
    """The problems of an invalid table; also checks that ``str()`` of the error is exactly their lines."""
    with pytest.raises(ConfigError) as info:
        parse(raw, **kwargs)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def problem(raw: Mapping[str, Any], **kwargs: Any) -> str:
    found = problems(raw, **kwargs)
    assert len(found) == 1, found
    return found[0]


class TestDefaults:
    def test_empty_table(self) -> None:
        config = parse({"cache-dir": CACHE})
        assert config == HookConfig(python_version=None, release=DEFAULT_RELEASE, targets=(HOST,),
                                    flavor="install_only_stripped", mirror=GITHUB_DOWNLOAD_PREFIX,
                                    cache_dir=Path(CACHE), scripts=("pbs-demo", "pbs-demo-gui"), offline=False)

    def test_config_is_frozen(self) -> None:
        config = parse({"cache-dir": CACHE})
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.release = "latest"  # type: ignore[misc]

    def test_config_error_belongs_to_the_error_family(self) -> None:
        assert issubclass(ConfigError, HatchPbsError)


class TestPythonVersion:
    PREFIX = 'Option `python-version` for build hook `pbs` must be a CPython version such as "3.12" or "3.12.7"; got '

    def test_default_is_none(self) -> None:
        assert parse({"cache-dir": CACHE}).python_version is None

    @pytest.mark.parametrize("value", ["3.12", "3.9", "3.13", "3.12.7", "3.10.19", "3.15.0rc1", "3.14.0a1",
                                       "3.14.0b3"])
    def test_valid(self, value: str) -> None:
        assert parse({"python-version": value, "cache-dir": CACHE}).python_version == value

    @pytest.mark.parametrize(("value", "shown"), [
        (3.12, "3.12"),
        (3, "3"),
        (True, "True"),
        (["3.12"], "['3.12']"),
        ({"min": "3.12"}, "{'min': '3.12'}"),
        ("", "''"),
        ("3", "'3'"),
        ("2.7", "'2.7'"),
        ("4.0", "'4.0'"),
        ("3.12.x", "'3.12.x'"),
        ("3.12.7.1", "'3.12.7.1'"),
        ("3.12.0rc", "'3.12.0rc'"),
        ("3.12rc1", "'3.12rc1'"),
        (">=3.12", "'>=3.12'"),
        ("cpython-3.12", "'cpython-3.12'"),
        (" 3.12", "' 3.12'"),
        ("3.12\n", "'3.12\\n'"),
    ])
    def test_invalid(self, value: Any, shown: str) -> None:
        assert problem({"python-version": value, "cache-dir": CACHE}) == self.PREFIX + shown


class TestRelease:
    PREFIX = (f'Option `release` for build hook `pbs` must be a python-build-standalone release tag such as '
              f'"{DEFAULT_RELEASE}" or "latest"; got ')

    def test_default_is_the_pinned_release(self) -> None:
        assert DEFAULT_RELEASE.isdigit() and len(DEFAULT_RELEASE) == 8
        assert parse({"cache-dir": CACHE}).release == DEFAULT_RELEASE

    @pytest.mark.parametrize("value", ["20241016", "20220227", "latest"])
    def test_valid(self, value: str) -> None:
        assert parse({"release": value, "cache-dir": CACHE}).release == value

    @pytest.mark.parametrize(("value", "shown"), [
        (20241016, "20241016"),
        (False, "False"),
        (["20241016"], "['20241016']"),
        ("", "''"),
        ("Latest", "'Latest'"),
        ("newest", "'newest'"),
        ("2024-10-16", "'2024-10-16'"),
        ("2024101", "'2024101'"),
        ("202410160", "'202410160'"),
        ("v20241016", "'v20241016'"),
        ("20241016\n", "'20241016\\n'"),
    ])
    def test_invalid(self, value: Any, shown: str) -> None:
        assert problem({"release": value, "cache-dir": CACHE}) == self.PREFIX + shown


class TestTargets:
    SHAPE = 'Option `targets` for build hook `pbs` must be a non-empty array of target triples, "host" or "all"; got '

    @staticmethod
    def entry(index: int, shown: str, hint: str = "") -> str:
        return (f'Entry #{index} of option `targets` for build hook `pbs` must be "host", "all" or a target triple such as '
                f'"x86_64-unknown-linux-gnu"; got {shown}{hint}')

    def test_default_is_the_host(self) -> None:
        assert parse({"cache-dir": CACHE}, host=lambda: "aarch64-unknown-linux-gnu").targets == (
            "aarch64-unknown-linux-gnu",)

    def test_host_expands_and_duplicates_are_removed(self) -> None:
        raw = {"targets": ["host", "aarch64-apple-darwin", "x86_64-unknown-linux-gnu", "host",
                           "aarch64-apple-darwin", "x86_64-pc-windows-msvc"], "cache-dir": CACHE}
        assert parse(raw, host=lambda: "x86_64-unknown-linux-gnu").targets == (
            "x86_64-unknown-linux-gnu", "aarch64-apple-darwin", "x86_64-pc-windows-msvc")

    def test_order_is_kept(self) -> None:
        raw = {"targets": ["x86_64-pc-windows-msvc", "aarch64-apple-darwin", "host"], "cache-dir": CACHE}
        assert parse(raw).targets == ("x86_64-pc-windows-msvc", "aarch64-apple-darwin", HOST)

    def test_host_is_not_consulted_for_explicit_triples(self) -> None:
        def unsupported() -> str:
            raise ValueError("python-build-standalone publishes no runtime for this machine (mips64-unknown-linux-gnu)")

        raw = {"targets": ["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"], "cache-dir": CACHE}
        assert parse(raw, host=unsupported).targets == ("x86_64-unknown-linux-gnu", "aarch64-apple-darwin")

    def test_default_on_an_unsupported_host(self) -> None:
        def unsupported() -> str:
            raise ValueError("python-build-standalone publishes no runtime for this machine (mips64-unknown-linux-gnu)")

        assert problem({"cache-dir": CACHE}, host=unsupported) == (
            'Option `targets` for build hook `pbs` is not set and its default is "host", but python-build-standalone '
            'publishes no runtime for this machine (mips64-unknown-linux-gnu); name the target triples instead')

    def test_host_entry_on_an_unsupported_host(self) -> None:
        def unsupported() -> str:
            raise ValueError("python-build-standalone publishes no runtime for this platform (freebsd14, amd64)")

        assert problem({"targets": ["aarch64-apple-darwin", "host"], "cache-dir": CACHE}, host=unsupported) == (
            'Entry #2 of option `targets` for build hook `pbs` is "host", but python-build-standalone publishes no '
            'runtime for this platform (freebsd14, amd64); name the target triples instead')

    def test_every_known_form_is_accepted(self) -> None:
        raw = {"targets": ["x86_64_v3-unknown-linux-musl", "armv7-unknown-linux-gnueabihf", "i686-pc-windows-msvc"],
               "cache-dir": CACHE}
        assert parse(raw).targets == tuple(raw["targets"])

    def test_well_formed_triple_unknown_today_is_left_to_resolution(self) -> None:
        # a newer release may add triples; resolution then lists what the release really has
        raw = {"targets": ["loongarch64-unknown-linux-gnu"], "cache-dir": CACHE}
        assert parse(raw).targets == ("loongarch64-unknown-linux-gnu",)

    @pytest.mark.parametrize(("value", "shown"), [
        ("host", "'host'"),
        ("x86_64-unknown-linux-gnu", "'x86_64-unknown-linux-gnu'"),
        ([], "[]"),
        (42, "42"),
        (True, "True"),
        ({"linux": "x86_64-unknown-linux-gnu"}, "{'linux': 'x86_64-unknown-linux-gnu'}"),
        ("", "''"),
    ])
    def test_invalid_shape(self, value: Any, shown: str) -> None:
        assert problem({"targets": value, "cache-dir": CACHE}) == self.SHAPE + shown

    @pytest.mark.parametrize(("value", "shown", "hint"), [
        ("x86_64-unknown-linux-gnux", "'x86_64-unknown-linux-gnux'", ' (did you mean "x86_64-unknown-linux-gnu"?)'),
        ("aarch64-apple-darwn", "'aarch64-apple-darwn'", ' (did you mean "aarch64-apple-darwin"?)'),
        ("x86_64-linux", "'x86_64-linux'", ' (did you mean "x86_64-unknown-linux-gnu"?)'),
        ("Host", "'Host'", ""),
        ("linux", "'linux'", ""),
        ("", "''", ""),
        (42, "42", ""),
        (None, "None", ""),
        (["host"], "['host']", ""),
    ])
    def test_invalid_entry(self, value: Any, shown: str, hint: str) -> None:
        assert problem({"targets": ["host", value], "cache-dir": CACHE}) == self.entry(2, shown, hint)

    def test_every_bad_entry_is_reported(self) -> None:
        found = problems({"targets": ["x86_64-unknown-linux-gnux", "host", 7, "aarch64-apple-darwn"],
                          "cache-dir": CACHE})
        assert found == [
            self.entry(1, "'x86_64-unknown-linux-gnux'", ' (did you mean "x86_64-unknown-linux-gnu"?)'),
            self.entry(3, "7"),
            self.entry(4, "'aarch64-apple-darwn'", ' (did you mean "aarch64-apple-darwin"?)'),
        ]


class TestFlavor:
    PREFIX = "Option `flavor` for build hook `pbs` must be one of 'install_only', 'install_only_stripped', 'full'; got "

    def test_default(self) -> None:
        assert DEFAULT_FLAVOR == "install_only_stripped"
        assert parse({"cache-dir": CACHE}).flavor == "install_only_stripped"

    @pytest.mark.parametrize("value", ["install_only", "install_only_stripped", "full"])
    def test_valid(self, value: str) -> None:
        assert parse({"flavor": value, "cache-dir": CACHE}).flavor == value

    @pytest.mark.parametrize(("value", "shown"), [
        ("", "''"),
        ("stripped", "'stripped'"),
        ("install-only", "'install-only' (did you mean \"install_only\"?)"),
        ("Full", "'Full' (did you mean \"full\"?)"),
        ("pgo+lto", "'pgo+lto'"),
        (1, "1"),
        (True, "True"),
        (["full"], "['full']"),
        ({"full": True}, "{'full': True}"),
    ])
    def test_invalid(self, value: Any, shown: str) -> None:
        assert problem({"flavor": value, "cache-dir": CACHE}) == self.PREFIX + shown


class TestMirror:
    PREFIX = ("Option `mirror` for build hook `pbs` must be a base URL starting with http://, https:// or file:// "
              "(everything before /<release tag>/ in an asset URL, without spaces or control characters); got ")

    def test_default_is_github(self) -> None:
        assert parse({"cache-dir": CACHE}).mirror == (
            "https://github.com/astral-sh/python-build-standalone/releases/download")

    @pytest.mark.parametrize(("value", "expected"), [
        ("https://mirror.example.org/pbs", "https://mirror.example.org/pbs"),
        ("https://mirror.example.org/pbs/", "https://mirror.example.org/pbs"),
        ("https://mirror.example.org/pbs///", "https://mirror.example.org/pbs"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://m", "http://m"),
        ("file:///srv/pbs", "file:///srv/pbs"),
        ("file:///srv/pbs/", "file:///srv/pbs"),
    ])
    def test_valid(self, value: str, expected: str) -> None:
        assert parse({"mirror": value, "cache-dir": CACHE}).mirror == expected

    @pytest.mark.parametrize(("value", "shown"), [
        ("", "''"),
        ("mirror.example.org/pbs", "'mirror.example.org/pbs'"),
        ("ftp://mirror.example.org/pbs", "'ftp://mirror.example.org/pbs'"),
        ("HTTPS://mirror.example.org", "'HTTPS://mirror.example.org'"),
        ("https://", "'https://'"),
        ("http://", "'http://'"),
        ("file://", "'file://'"),
        ("file:///", "'file:///'"),
        ("/srv/pbs", "'/srv/pbs'"),
        (42, "42"),
        (False, "False"),
        (["https://a.example"], "['https://a.example']"),
    ])
    def test_invalid(self, value: Any, shown: str) -> None:
        assert problem({"mirror": value, "cache-dir": CACHE}) == self.PREFIX + shown


class TestCacheDir:
    PREFIX = "Option `cache-dir` for build hook `pbs` must be a directory path (a non-empty string); got "

    def test_default_is_the_user_cache_dir(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        config = parse({})
        assert config.cache_dir == default_cache_dir()
        assert config.cache_dir.is_absolute()
        if sys.platform.startswith("linux"):
            assert config.cache_dir == tmp_path / "xdg" / "hatch-pbs"

    def test_absolute(self, tmp_path: Path) -> None:
        assert parse({"cache-dir": str(tmp_path / "c")}).cache_dir == tmp_path / "c"

    def test_relative_resolves_against_the_root(self, tmp_path: Path) -> None:
        assert parse({"cache-dir": ".cache/pbs"}, root=tmp_path).cache_dir == tmp_path.resolve() / ".cache" / "pbs"
        assert parse({"cache-dir": "../shared"}, root=tmp_path / "proj").cache_dir == tmp_path.resolve() / "shared"

    def test_home_is_expanded(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        assert parse({"cache-dir": "~/pbs-cache"}).cache_dir == tmp_path / "pbs-cache"

    @pytest.mark.parametrize(("value", "shown"), [
        ("", "''"),
        ("   ", "'   '"),
        (42, "42"),
        (True, "True"),
        (["/tmp/cache"], "['/tmp/cache']"),
        (None, "None"),
    ])
    def test_invalid(self, value: Any, shown: str) -> None:
        assert problem({"cache-dir": value}) == self.PREFIX + shown


class TestScripts:
    def test_default_is_every_project_script(self) -> None:
        assert parse({"cache-dir": CACHE}).scripts == ("pbs-demo", "pbs-demo-gui")

    def test_default_without_scripts(self) -> None:
        assert parse({"cache-dir": CACHE}, scripts={}).scripts == ()

    def test_subset(self) -> None:
        assert parse({"scripts": ["pbs-demo-gui"], "cache-dir": CACHE}).scripts == ("pbs-demo-gui",)

    def test_order_kept_duplicates_removed(self) -> None:
        raw = {"scripts": ["pbs-demo-gui", "pbs-demo", "pbs-demo-gui"], "cache-dir": CACHE}
        assert parse(raw).scripts == ("pbs-demo-gui", "pbs-demo")

    def test_empty_list_writes_no_launcher(self) -> None:
        assert parse({"scripts": [], "cache-dir": CACHE}).scripts == ()

    @pytest.mark.parametrize(("value", "shown"), [
        ("pbs-demo", "'pbs-demo'"),
        ("", "''"),
        (1, "1"),
        (True, "True"),
        ({"pbs-demo": True}, "{'pbs-demo': True}"),
        (["pbs-demo", 2], "['pbs-demo', 2]"),
    ])
    def test_invalid_shape(self, value: Any, shown: str) -> None:
        assert problem({"scripts": value, "cache-dir": CACHE}) == (
            "Option `scripts` for build hook `pbs` must be an array of script names from [project.scripts] or "
            f"[project.gui-scripts] (pbs-demo, pbs-demo-gui); got {shown}")

    def test_invalid_shape_without_project_scripts(self) -> None:
        assert problem({"scripts": "app", "cache-dir": CACHE}, scripts={}) == (
            "Option `scripts` for build hook `pbs` must be an array of script names from [project.scripts] or "
            "[project.gui-scripts] (none: the project defines no [project.scripts]); got 'app'")

    def test_undefined_scripts(self) -> None:
        assert problem({"scripts": ["pbs-demo", "pbs_demo", "other"], "cache-dir": CACHE}) == (
            "Option `scripts` for build hook `pbs` names scripts the project does not define: pbs_demo, other; "
            "defined scripts: pbs-demo, pbs-demo-gui")

    def test_undefined_script_without_project_scripts(self) -> None:
        assert problem({"scripts": ["app"], "cache-dir": CACHE}, scripts={}) == (
            "Option `scripts` for build hook `pbs` names scripts the project does not define: app; "
            "defined scripts: none: the project defines no [project.scripts]")


class TestUnknownOptions:
    def test_unknown_option(self) -> None:
        assert problem({"colour": "red", "cache-dir": CACHE}) == (
            f"Unknown option `colour` for build hook `pbs`; known options: {KNOWN}")

    @pytest.mark.parametrize(("name", "meant"), [("python_version", "python-version"), ("cache_dir", "cache-dir"),
                                                 ("cachedir", "cache-dir"), ("pythonversion", "python-version")])
    def test_separator_mistakes_get_a_suggestion(self, name: str, meant: str) -> None:
        assert problem({name: "x", "cache-dir": CACHE}) == (
            f'Unknown option `{name}` for build hook `pbs` (did you mean "{meant}"?); known options: {KNOWN}')

    def test_every_unknown_option_is_listed_sorted(self) -> None:
        assert problems({"zeta": 1, "alpha": 2, "cache-dir": CACHE}) == [
            f"Unknown option `alpha` for build hook `pbs`; known options: {KNOWN}",
            f"Unknown option `zeta` for build hook `pbs`; known options: {KNOWN}",
        ]

    def test_hatchling_reserved_keys_are_accepted(self) -> None:
        assert HATCHLING_HOOK_KEYS == {"dependencies", "require-runtime-dependencies", "require-runtime-features",
                                       "enable-by-default"}
        raw = {"dependencies": ["hatch-vcs"], "require-runtime-dependencies": True,
               "require-runtime-features": ["cli"], "enable-by-default": False, "cache-dir": CACHE}
        assert parse(raw) == parse({"cache-dir": CACHE})

    def test_several_bad_options_give_one_error(self) -> None:
        raw = {"python-version": 3.12, "release": "", "targets": "host", "flavor": "tiny", "mirror": "github.com",
               "cache-dir": "", "scripts": ["nope"], "colour": "red"}
        with pytest.raises(ConfigError) as info:
            parse(raw, environ={"HATCH_PBS_MIRROR": "ftp://m", "HATCH_PBS_OFFLINE": "maybe"})
        expected = [
            f"Unknown option `colour` for build hook `pbs`; known options: {KNOWN}",
            ('Option `python-version` for build hook `pbs` must be a CPython version such as "3.12" or "3.12.7"; '
             "got 3.12"),
            (f'Option `release` for build hook `pbs` must be a python-build-standalone release tag such as '
             f'"{DEFAULT_RELEASE}" or "latest"; got \'\''),
            ("Option `flavor` for build hook `pbs` must be one of 'install_only', 'install_only_stripped', 'full'; "
             "got 'tiny'"),
            ("Option `mirror` for build hook `pbs` must be a base URL starting with http://, https:// or file:// "
             "(everything before /<release tag>/ in an asset URL, without spaces or control characters); got 'github.com'"),
            'Option `targets` for build hook `pbs` must be a non-empty array of target triples, "host" or "all"; got \'host\'',
            ("Option `scripts` for build hook `pbs` names scripts the project does not define: nope; "
             "defined scripts: pbs-demo, pbs-demo-gui"),
            "Option `cache-dir` for build hook `pbs` must be a directory path (a non-empty string); got ''",
            ("Environment variable `HATCH_PBS_MIRROR` must be a base URL starting with http://, https:// or file:// "
             "(everything before /<release tag>/ in an asset URL, without spaces or control characters); got 'ftp://m'"),
            ("Environment variable `HATCH_PBS_OFFLINE` must be one of 1, true, yes, on, 0, false, no, off; "
             "got 'maybe'"),
        ]
        assert info.value.problems == expected
        assert str(info.value) == "\n".join(expected)


class TestEnvironmentOverrides:
    def test_real_environment_is_not_read_when_environ_is_given(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HATCH_PBS_MIRROR", "not a url")
        monkeypatch.setenv("HATCH_PBS_OFFLINE", "maybe")
        monkeypatch.setenv("HATCH_PBS_CACHE_DIR", "/elsewhere")
        config = parse({"cache-dir": CACHE}, environ={})
        assert (config.mirror, config.offline, config.cache_dir) == (GITHUB_DOWNLOAD_PREFIX, False, Path(CACHE))

    @pytest.mark.parametrize(("value", "expected"), [("http://127.0.0.1:8000/pbs/", "http://127.0.0.1:8000/pbs"),
                                                     ("file:///srv/pbs", "file:///srv/pbs")])
    def test_mirror_overrides_the_option(self, value: str, expected: str) -> None:
        raw = {"mirror": "https://configured.example/pbs", "cache-dir": CACHE}
        assert parse(raw, environ={"HATCH_PBS_MIRROR": value}).mirror == expected

    def test_empty_mirror_variable_is_ignored(self) -> None:
        raw = {"mirror": "https://configured.example/pbs", "cache-dir": CACHE}
        assert parse(raw, environ={"HATCH_PBS_MIRROR": ""}).mirror == "https://configured.example/pbs"

    @pytest.mark.parametrize("value", ["mirror.example.org", "ftp://mirror.example.org", "https://"])
    def test_invalid_mirror_names_the_variable(self, value: str) -> None:
        assert problem({"cache-dir": CACHE}, environ={"HATCH_PBS_MIRROR": value}) == (
            "Environment variable `HATCH_PBS_MIRROR` must be a base URL starting with http://, https:// or file:// "
            f"(everything before /<release tag>/ in an asset URL, without spaces or control characters); got {value!r}")

    def test_cache_dir_overrides_the_option(self, tmp_path: Path) -> None:
        environ = {"HATCH_PBS_CACHE_DIR": str(tmp_path / "from-env")}
        assert parse({"cache-dir": CACHE}, environ=environ).cache_dir == tmp_path / "from-env"

    def test_cache_dir_replaces_the_default(self, tmp_path: Path) -> None:
        assert parse({}, environ={"HATCH_PBS_CACHE_DIR": str(tmp_path)}).cache_dir == tmp_path

    def test_cache_dir_expands_home(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        assert parse({}, environ={"HATCH_PBS_CACHE_DIR": "~/c"}).cache_dir == tmp_path / "c"

    def test_empty_cache_dir_variable_is_ignored(self) -> None:
        assert parse({"cache-dir": CACHE}, environ={"HATCH_PBS_CACHE_DIR": ""}).cache_dir == Path(CACHE)

    @pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "yes", "on", " 1 ", "On"])
    def test_offline_on(self, value: str) -> None:
        assert parse({"cache-dir": CACHE}, environ={"HATCH_PBS_OFFLINE": value}).offline is True

    @pytest.mark.parametrize("value", ["", "0", "false", "FALSE", "no", "off", " 0 "])
    def test_offline_off(self, value: str) -> None:
        assert parse({"cache-dir": CACHE}, environ={"HATCH_PBS_OFFLINE": value}).offline is False

    def test_offline_unset(self) -> None:
        assert parse({"cache-dir": CACHE}, environ={}).offline is False

    @pytest.mark.parametrize("value", ["2", "maybe", "y", "enabled", "-1", "tru e"])
    def test_offline_invalid(self, value: str) -> None:
        assert problem({"cache-dir": CACHE}, environ={"HATCH_PBS_OFFLINE": value}) == (
            "Environment variable `HATCH_PBS_OFFLINE` must be one of 1, true, yes, on, 0, false, no, off; "
            f"got {value!r}")


class TestOffline:
    def test_default_is_online(self) -> None:
        assert parse({}).offline is False

    def test_option_turns_it_on(self) -> None:
        assert parse({"offline": True}).offline is True

    def test_environment_wins_over_the_option(self) -> None:
        assert parse({"offline": True}, environ={"HATCH_PBS_OFFLINE": "0"}).offline is False
        assert parse({"offline": False}, environ={"HATCH_PBS_OFFLINE": "yes"}).offline is True

    @pytest.mark.parametrize("value", ["yes", 1, None])
    def test_non_booleans_are_refused(self, value: Any) -> None:
        assert problem({"offline": value}) == f"Option `offline` for build hook `pbs` must be true or false; got {value!r}"


class TestRequirements:
    def test_default_is_the_project_metadata(self) -> None:
        assert parse({}).requirements is None

    def test_relative_path_is_relative_to_the_root(self, tmp_path: Path) -> None:
        config = parse_hook_config({"requirements": "locks/pylock.toml"}, project_scripts={}, root=tmp_path,
                                   environ={}, host=_host)
        assert config.requirements == tmp_path / "locks" / "pylock.toml"

    @pytest.mark.parametrize("value", ["", "  ", 3, ["requirements.txt"]])
    def test_non_paths_are_refused(self, value: Any) -> None:
        assert problem({"requirements": value}) == (
            'Option `requirements` for build hook `pbs` must be the path of a requirements file (e.g. '
            '"requirements.txt") or of a PEP 751 lock file ("pylock.toml"); got ' + repr(value))


class TestTimeout:
    def test_default(self) -> None:
        assert parse({}).timeout == 30.0

    @pytest.mark.parametrize(("value", "expected"), [(5, 5.0), (0.5, 0.5), (3600, 3600.0)])
    def test_valid(self, value: Any, expected: float) -> None:
        assert parse({"timeout": value}).timeout == expected

    @pytest.mark.parametrize("value", [0, -1, 3601, "30", True, None])
    def test_invalid(self, value: Any) -> None:
        assert problem({"timeout": value}) == (
            "Option `timeout` for build hook `pbs` must be a number of seconds greater than 0 and at most 3600; "
            f"got {value!r}")


class TestMaxUnpackedSize:
    def test_default_is_four_gibibytes(self) -> None:
        assert parse({}).max_unpacked_size == 4 * 1024**3

    def test_valid(self) -> None:
        assert parse({"max-unpacked-size": 1 << 30}).max_unpacked_size == 1 << 30

    @pytest.mark.parametrize("value", [0, 1000, "4GiB", 2.5e9, False])
    def test_invalid(self, value: Any) -> None:
        assert problem({"max-unpacked-size": value}) == (
            "Option `max-unpacked-size` for build hook `pbs` must be a whole number of bytes, at least 1048576 "
            f"(1 MiB); got {value!r}")


class TestTrimAndFormatOptions:
    def test_defaults(self) -> None:
        config = parse({})
        assert (config.stdlib, config.bytecode, config.exclude, config.archive_format) == (
            "default", "compile", (), None)

    @pytest.mark.parametrize(("option", "field", "value"), [
        ("stdlib", "stdlib", "full"), ("stdlib", "stdlib", "minimal"), ("bytecode", "bytecode", "only"),
        ("bytecode", "bytecode", "none"), ("archive-format", "archive_format", "tar.zst"),
        ("archive-format", "archive_format", "zip"), ("archive-format", "archive_format", "dir"),
        ("archive-format", "archive_format", "tar.gz")])
    def test_valid_choices(self, option: str, field: str, value: str) -> None:
        assert getattr(parse({option: value}), field) == value

    @pytest.mark.parametrize(("option", "allowed"), [
        ("stdlib", "'full', 'default', 'minimal'"), ("bytecode", "'compile', 'only', 'none'"),
        ("archive-format", "'tar.gz', 'tar.zst', 'zip', 'dir'")])
    @pytest.mark.parametrize("value", ["tiny", "", None, 1, ["full"], "TAR.GZ"])
    def test_invalid_choices(self, option: str, allowed: str, value: Any) -> None:
        hint = ' (did you mean "tar.gz"?)' if (option, value) == ("archive-format", "TAR.GZ") else ""
        assert problem({option: value}) == (
            f"Option `{option}` for build hook `pbs` must be one of {allowed}; got {value!r}{hint}")

    @pytest.mark.parametrize(("option", "value", "suggested"), [
        ("stdlib", "minimum", "minimal"), ("stdlib", "defaults", "default"), ("bytecode", "compiled", "compile"),
        ("bytecode", "onl", "only"), ("archive-format", "tar.zstd", "tar.zst"),
        ("archive-format", "tgz", "tar.gz"), ("flavor", "install_only_strip", "install_only_stripped")])
    def test_close_choices_get_did_you_mean(self, option: str, value: str, suggested: str) -> None:
        assert problem({option: value}).endswith(f'got {value!r} (did you mean "{suggested}"?)')

    def test_exclude_patterns_kept_in_order_without_duplicates(self) -> None:
        assert parse({"exclude": ["*.pyi", "app/**/tests/", "*.pyi", "!app/keep/tests/"]}).exclude == (
            "*.pyi", "app/**/tests/", "!app/keep/tests/")

    @pytest.mark.parametrize("value", ["*.pyi", [1], {"a": 1}, None, [["*.pyi"]]])
    def test_exclude_must_be_an_array_of_strings(self, value: Any) -> None:
        assert problem({"exclude": value}) == (
            "Option `exclude` for build hook `pbs` must be an array of gitignore-style patterns relative to the "
            'artifact root, such as "app/**/tests/" or "python/lib/python3.*/sqlite3/"; '
            f"got {value!r}")

    def test_empty_and_comment_patterns_are_named_by_entry(self) -> None:
        assert problems({"exclude": ["ok/", " ", "# note"]}) == [
            "Entry #2 of option `exclude` for build hook `pbs` must be a non-empty pattern (not a comment); got ' '",
            ("Entry #3 of option `exclude` for build hook `pbs` must be a non-empty pattern (not a comment); "
             "got '# note'")]

    def test_every_new_problem_is_reported_together(self) -> None:
        assert len(problems({"stdlib": "x", "bytecode": "y", "archive-format": "z", "exclude": "w"})) == 4


class TestPyapp:
    @pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), (True, "true"), (False, "false")])
    def test_valid(self, value: Any, expected: str) -> None:
        assert parse({"pyapp": value}).pyapp == expected

    def test_default_is_auto(self) -> None:
        assert parse({}).pyapp == "auto"

    @pytest.mark.parametrize(("value", "hint"), [
        ("true", " (did you mean true, without quotes?)"), ("yes", ""), (1, ""), (0, ""), (None, ""),
        ("Auto", ' (did you mean "auto"?)')])
    def test_invalid(self, value: Any, hint: str) -> None:
        assert problem({"pyapp": value}) == (
            f'Option `pyapp` for build hook `pbs` must be "auto", true or false; got {value!r}{hint}')


class TestWheel:
    def test_default_and_valid(self) -> None:
        assert parse({}).wheel is False
        assert parse({"wheel": True}).wheel is True

    @pytest.mark.parametrize("value", ["true", 1, None])
    def test_invalid(self, value: Any) -> None:
        assert problem({"wheel": value}) == f"Option `wheel` for build hook `pbs` must be true or false; got {value!r}"


class TestPlatformFloors:
    MANYLINUX = ("Option `manylinux` for build hook `pbs` must be one of '2_17', '2_28', '2_31', '2_32', '2_33', "
                 "'2_34', '2_35', '2_36', '2_37', '2_38', '2_39', '2_40' (the oldest glibc the artifacts run on, as "
                 "uv can install wheels for it); got ")
    MACOS = ('Option `macos` for build hook `pbs` must be a macOS version from 10.9 on, such as "11.0" or "14.0" '
             "(the oldest macOS the artifacts run on); got ")

    def test_defaults(self) -> None:
        config = parse({})
        assert config.floors == PlatformFloors(manylinux=(2, 17), musllinux=(1, 2), macos=(11, 0))
        assert config.build_from_source is False

    @pytest.mark.parametrize(("raw", "expected"), [
        ({"manylinux": "2_28"}, PlatformFloors(manylinux=(2, 28))),
        ({"manylinux": "2_40", "musllinux": "1_2", "macos": "14"}, PlatformFloors(manylinux=(2, 40), macos=(14, 0))),
        ({"macos": "10.13"}, PlatformFloors(macos=(10, 13))),
        ({"macos": "12.3"}, PlatformFloors(macos=(12, 3))),
    ])
    def test_valid(self, raw: dict[str, str], expected: PlatformFloors) -> None:
        assert parse(raw).floors == expected

    @pytest.mark.parametrize(("value", "hint"), [
        ("2.28", ' (did you mean "2_28"?)'),
        ("manylinux_2_28", ' (did you mean "2_28"?)'),
        ("2014", ' (did you mean "2_17"?)'),
        ("2_29", ' (uv has no platform for glibc 2.29; did you mean "2_28"?)'),
        ("2_16", " (python-build-standalone's runtimes need glibc 2.17 themselves; did you mean \"2_17\"?)"),
        (28, ""),
        ("", ""),
    ])
    def test_invalid_manylinux(self, value: Any, hint: str) -> None:
        assert problem({"manylinux": value}) == f"{self.MANYLINUX}{value!r}{hint}"

    def test_invalid_musllinux(self) -> None:
        assert problem({"musllinux": "1_1"}) == (
            "Option `musllinux` for build hook `pbs` must be one of '1_2' (the oldest musl the artifacts run on, as uv "
            "can install wheels for it); got '1_1' (python-build-standalone's runtimes need musl 1.2 themselves; did "
            'you mean "1_2"?)')

    @pytest.mark.parametrize(("value", "hint"), [("10.8", ""), ("11.x", ""), ("", ""), (True, ""),
                                                 (12.0, ' (did you mean "12.0", with quotes?)'),
                                                 (14, ' (did you mean "14", with quotes?)')])
    def test_invalid_macos(self, value: Any, hint: str) -> None:
        assert problem({"macos": value}) == f"{self.MACOS}{value!r}{hint}"

    def test_macosx_deployment_target_overrides_option_macos(self) -> None:
        assert parse({"macos": "12.0"}, environ={"MACOSX_DEPLOYMENT_TARGET": " 13.3 "}).floors.macos == (13, 3)
        assert parse({"macos": "12.0"}, environ={"MACOSX_DEPLOYMENT_TARGET": "  "}).floors.macos == (12, 0)
        assert parse({}, environ={"MACOSX_DEPLOYMENT_TARGET": "14"}).floors.macos == (14, 0)

    def test_macosx_deployment_target_is_validated(self) -> None:
        assert problem({}, environ={"MACOSX_DEPLOYMENT_TARGET": "ten"}) == (
            'Environment variable `MACOSX_DEPLOYMENT_TARGET` must be a macOS version from 10.9 on, such as "11.0" or '
            "\"14.0\" (the oldest macOS the artifacts run on); got 'ten'")

    def test_all_floor_problems_are_reported_together(self) -> None:
        assert len(problems({"manylinux": "2_29", "musllinux": "1_1", "macos": "9"})) == 3

    def test_build_from_source(self) -> None:
        assert parse({"build-from-source": True}).build_from_source is True
        assert problem({"build-from-source": "true"}) == (
            "Option `build-from-source` for build hook `pbs` must be true or false; got 'true'")


def test_env_release_overrides_the_release_option(tmp_path: Path) -> None:
    from hatch_pbs.config import parse_hook_config
    config = parse_hook_config({"release": "20240107", "targets": ["x86_64-unknown-linux-gnu"]}, project_scripts={}, root=tmp_path,
                               environ={"HATCH_PBS_RELEASE": "20250115"})
    assert config.release == "20250115"


def test_env_release_is_validated_in_one_line(tmp_path: Path) -> None:
    from hatch_pbs.config import parse_hook_config
    with pytest.raises(ConfigError, match="HATCH_PBS_RELEASE.*release tag"):
        parse_hook_config({"targets": ["x86_64-unknown-linux-gnu"]}, project_scripts={}, root=tmp_path, environ={"HATCH_PBS_RELEASE": "x"})


@pytest.mark.parametrize(("typo", "meant"), [("pyton-version", "python-version"), ("target", "targets")])
def test_misspelled_option_gets_did_you_mean(tmp_path: Path, typo: str, meant: str) -> None:
    from hatch_pbs.config import parse_hook_config
    with pytest.raises(ConfigError, match=f'did you mean "{meant}"'):
        parse_hook_config({typo: "x", "targets": ["x86_64-unknown-linux-gnu"]}, project_scripts={}, root=tmp_path, environ={})


class TestRequiresPythonConflict:
    @pytest.mark.parametrize(("python_version", "requires"), [("3.12", ">=3.13"), ("3.12.7", ">=3.12.8"),
                                                               ("3.10", "<3.10"), ("3.13", "~=3.11.0")])
    def test_a_version_requires_python_excludes_is_a_config_error_naming_both(self, python_version: str,
                                                                             requires: str) -> None:
        from packaging.specifiers import SpecifierSet

        with pytest.raises(ConfigError) as raised:
            parse_hook_config({"python-version": python_version, "cache-dir": CACHE}, project_scripts={},
                              root=Path("/project"), environ={}, requires_python=SpecifierSet(requires))
        assert raised.value.problems == [
            (f'Option `python-version` for build hook `pbs` is "{python_version}", but the project\'s '
             f'`requires-python` is "{SpecifierSet(requires)}", which no CPython {python_version} satisfies; '
             f"change one of the two")]

    @pytest.mark.parametrize(("python_version", "requires"), [("3.12", ">=3.12.5"), ("3.12", ">=3.10"),
                                                               ("3.13.1", "==3.13.*"), ("3.12", "")])
    def test_compatible_versions_are_accepted(self, python_version: str, requires: str) -> None:
        from packaging.specifiers import SpecifierSet

        config = parse_hook_config({"python-version": python_version, "cache-dir": CACHE}, project_scripts={},
                                   root=Path("/project"), environ={}, requires_python=SpecifierSet(requires))
        assert config.python_version == python_version


class TestEntryPoints:
    @pytest.mark.parametrize("entry_point", ["pkg.cli", "pkg.cli:", ":main", "pkg cli:main", "pkg.cli:main()",
                                             "1pkg:main", "pkg.cli:main [extra", ""])
    def test_an_entry_point_that_is_not_module_attr_is_a_config_error(self, entry_point: str) -> None:
        with pytest.raises(ConfigError) as raised:
            parse_hook_config({"cache-dir": CACHE}, project_scripts={"tool": entry_point, "ok": "pkg:main"},
                              root=Path("/project"), environ={})
        assert raised.value.problems == [
            (f"Entry point of script `tool` ({entry_point!r} in [project.scripts] or [project.gui-scripts]) must be "
             f'"module:attr" such as "my_app.cli:main" for build hook `pbs` to write its launcher')]

    @pytest.mark.parametrize("entry_point", ["pkg:main", "pkg.cli:App.run", " pkg.cli : main ", "pkg:main [cli]",
                                             "_p.q_1:r_2"])
    def test_valid_entry_points(self, entry_point: str) -> None:
        config = parse_hook_config({"cache-dir": CACHE}, project_scripts={"tool": entry_point},
                                   root=Path("/project"), environ={})
        assert config.scripts == ("tool",)

    def test_only_selected_scripts_are_checked(self) -> None:
        config = parse_hook_config({"cache-dir": CACHE, "scripts": ["ok"]},
                                   project_scripts={"tool": "not an entry point", "ok": "pkg:main"},
                                   root=Path("/project"), environ={})
        assert config.scripts == ("ok",)


class TestUnusablePaths:
    @pytest.mark.parametrize(("value", "message"), [
        ("/dev/null/x", "names /dev/null/x, which cannot be created: /dev/null is not a directory"),
        ("/dev/null/x/y", "names /dev/null/x/y, which cannot be created: /dev/null is not a directory"),
        ("/etc/passwd", "must name a directory, but /etc/passwd is a file")])
    def test_cache_dir_that_cannot_be_a_directory(self, value: str, message: str) -> None:
        with pytest.raises(ConfigError) as raised:
            parse_hook_config({"cache-dir": value}, project_scripts={}, root=Path("/project"), environ={})
        assert raised.value.problems == [f"Option `cache-dir` for build hook `pbs` {message}"]
        with pytest.raises(ConfigError) as raised:
            parse_hook_config({}, project_scripts={}, root=Path("/project"), environ={"HATCH_PBS_CACHE_DIR": value})
        assert raised.value.problems == [f"Environment variable `HATCH_PBS_CACHE_DIR` {message}"]

    def test_relative_cache_dir_below_a_file(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("")
        with pytest.raises(ConfigError, match="cannot be created: .*file is not a directory"):
            parse_hook_config({"cache-dir": "file/cache"}, project_scripts={}, root=tmp_path, environ={})

    @pytest.mark.parametrize("mirror", ["https://m.example/pbs\x00", "https://m.example/p bs", "file:///srv/\x7f"])
    def test_mirror_with_control_characters_or_spaces(self, mirror: str) -> None:
        assert "without spaces or control characters" in problem({"mirror": mirror, "cache-dir": CACHE})

    @pytest.mark.parametrize("pattern", ["[z-a]", "app/[9-0]*"])
    def test_exclude_pattern_python_cannot_compile(self, pattern: str) -> None:
        assert problem({"exclude": [pattern], "cache-dir": CACHE}).startswith(
            "Entry #1 of option `exclude` for build hook `pbs` is not a valid gitignore-style pattern (bad character "
            "range")


class TestImage:
    """Option ``image``: one message per bad key, naming ``image.<key>`` and what it allows."""

    def test_absent_means_no_image(self) -> None:
        assert parse({}).image is None

    def test_empty_table_takes_the_defaults(self) -> None:
        image = parse({"image": {}}).image
        assert image is not None
        assert (image.base, image.prefix, image.entrypoint, image.workdir, image.user) == (
            "docker.io/library/debian:bookworm-slim", None, None, None, None)
        assert (dict(image.env), dict(image.labels)) == ({}, {})

    def test_every_key(self) -> None:
        image = parse({"image": {"base": "nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04", "prefix": "/srv/app/",
                                 "entrypoint": "pbs-demo-gui", "workdir": "/data", "user": "65534:65534",
                                 "env": {"PORT": "8000"}, "labels": {"org.example.team": "infra"}}}).image
        assert image is not None
        assert (image.base, image.prefix, image.entrypoint, image.workdir, image.user) == (
            "nvcr.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04", "/srv/app", "pbs-demo-gui", "/data", "65534:65534")
        assert (dict(image.env), dict(image.labels)) == ({"PORT": "8000"}, {"org.example.team": "infra"})

    def test_not_a_table(self) -> None:
        assert problem({"image": True}).startswith(
            "Option `image` for build hook `pbs` must be a table with the keys base, prefix, entrypoint, workdir, "
            "user, env, labels")

    def test_unknown_key(self) -> None:
        assert problem({"image": {"cmd": "x"}}) == (
            "Option `image` for build hook `pbs` has an unknown key `cmd`; known keys: base, prefix, entrypoint, "
            "workdir, user, env, labels")
        assert problem({"image": {"\n": "x"}}) == (  # one line whatever the key holds
            "Option `image` for build hook `pbs` has an unknown key `'\\n'`; known keys: base, prefix, entrypoint, "
            "workdir, user, env, labels")

    @pytest.mark.parametrize("base", ["Debian:12", "debian:bad tag", "", "debian@sha256:abc", 3])
    def test_bad_base(self, base: object) -> None:
        assert problem({"image": {"base": base}}).startswith(
            "Option `image.base` for build hook `pbs` must be an image reference such as "
            "\"docker.io/library/debian:bookworm-slim\"")

    @pytest.mark.parametrize("prefix", ["/", "/usr/local", "/bin", "/etc/app"])
    def test_prefix_in_a_system_directory(self, prefix: str) -> None:
        assert problem({"image": {"prefix": prefix}}).startswith(
            "Option `image.prefix` for build hook `pbs` must be a directory of its own such as \"/opt/my-app\"")

    @pytest.mark.parametrize("prefix", ["opt/app", "/opt/../app", "C:\\app"])
    def test_prefix_not_absolute(self, prefix: str) -> None:
        assert problem({"image": {"prefix": prefix}}) == (
            "Option `image.prefix` for build hook `pbs` must be an absolute directory in the image such as "
            f"\"/opt/my-app\" (no `..`); got {prefix!r}")

    def test_entrypoint_not_a_project_script(self) -> None:
        assert problem({"image": {"entrypoint": "serve"}}) == (
            "Option `image.entrypoint` for build hook `pbs` names a script the project does not define: 'serve'; "
            "defined scripts: pbs-demo, pbs-demo-gui")

    def test_entrypoint_without_a_launcher(self) -> None:
        assert problem({"scripts": ["pbs-demo"], "image": {"entrypoint": "pbs-demo-gui"}}) == (
            "Option `image` for build hook `pbs`: `entrypoint` is 'pbs-demo-gui', which option `scripts` leaves "
            "out (it gets no launcher); add it to `scripts` or choose one of: pbs-demo")

    @pytest.mark.parametrize("user", ["", "a b", ":0", 0])
    def test_bad_user(self, user: object) -> None:
        assert problem({"image": {"user": user}}) == (
            "Option `image.user` for build hook `pbs` must be a user as the image config records it: \"name\", "
            f"\"uid\" or \"uid:gid\" (e.g. \"65534:65534\"); got {user!r}")

    def test_bad_env(self) -> None:
        assert problem({"image": {"env": {"1X": "a", "OK": "b", "A-B": "c"}}}) == (
            "Option `image.env` for build hook `pbs` has invalid variable names '1X', 'A-B' (letters, digits and "
            "_, not starting with a digit)")
        assert problem({"image": {"env": {"PORT": 8000}}}) == (
            "Option `image.env` for build hook `pbs` must be a table of strings such as { PORT = \"8000\" }; "
            "got {'PORT': 8000}")

    def test_bad_labels(self) -> None:
        assert problem({"image": {"labels": ["a"]}}).startswith(
            "Option `image.labels` for build hook `pbs` must be a table of strings")
        assert problem({"image": {"labels": {" ": "x"}}}) == (
            "Option `image.labels` for build hook `pbs` has an empty label name")

    def test_every_bad_key_is_reported_at_once(self) -> None:
        found = problems({"image": {"user": "", "prefix": "/", "labels": 1}})
        assert [line.split(" for build hook")[0] for line in found] == [
            "Option `image.prefix`", "Option `image.user`", "Option `image.labels`"]


def test_image_needs_a_linux_target() -> None:
    assert problem({"targets": ["aarch64-apple-darwin", "x86_64-pc-windows-msvc"], "image": {}}) == (
        "Option `image` for build hook `pbs` makes container images of the Linux target triples, but `targets` has "
        "none (aarch64-apple-darwin, x86_64-pc-windows-msvc); add one such as \"x86_64-unknown-linux-gnu\" or "
        "\"aarch64-unknown-linux-gnu\"")
    assert parse({"targets": ["aarch64-apple-darwin", "aarch64-unknown-linux-musl"], "image": {}}).image is not None


class TestOnefile:
    """Option ``onefile``: a boolean, and every target triple needs a bootstrap."""

    def test_default_off(self) -> None:
        assert parse({}).onefile is False
        assert parse({"onefile": True, "targets": ["all"]}).onefile is True

    def test_not_a_boolean(self) -> None:
        assert problem({"onefile": "yes"}) == "Option `onefile` for build hook `pbs` must be true or false; got 'yes'"

    def test_target_without_a_bootstrap(self) -> None:
        found = problem({"onefile": True, "targets": [HOST, "armv7-unknown-linux-gnueabihf", "ppc64le-unknown-linux-gnu"]})
        assert found.startswith(
            "Option `onefile` for build hook `pbs`: no single-file bootstrap exists for armv7-unknown-linux-gnueabihf, "
            "ppc64le-unknown-linux-gnu; remove them from `targets` or set `onefile = false` (bootstraps exist for: "
            "x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, x86_64-unknown-linux-musl,")
        assert problem({"onefile": True, "targets": ["x86_64_v3-unknown-linux-gnu", "i686-pc-windows-msvc",
                                                      "s390x-unknown-linux-gnu"]}).startswith(
            "Option `onefile` for build hook `pbs`: no single-file bootstrap exists for s390x-unknown-linux-gnu; "
            "remove it from `targets`")

    def test_no_script(self) -> None:
        assert problem({"onefile": True}, scripts={}) == (
            "Option `onefile` for build hook `pbs` makes one executable per launcher script, but there is none: add "
            "a [project.scripts] entry (and list it in option `scripts` if that is set)")
