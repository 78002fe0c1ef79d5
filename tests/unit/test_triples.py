"""Unit tests of hatch_pbs.release.triples: parsing, suggestions and host detection."""

from __future__ import annotations

import platform
import re
import sys
from types import SimpleNamespace

import pytest

from hatch_pbs.release import triples
from hatch_pbs.release.triples import (
    KNOWN_TRIPLES,
    TRIPLE_PATTERN,
    TargetTriple,
    host_triple,
    parse_triple,
    suggest_triple,
)

EXPECTED_PARTS = {
    "aarch64-apple-darwin": ("aarch64", "darwin", ""),
    "x86_64-apple-darwin": ("x86_64", "darwin", ""),
    "x86_64-pc-windows-msvc": ("x86_64", "windows", "msvc"),
    "i686-pc-windows-msvc": ("i686", "windows", "msvc"),
    "aarch64-pc-windows-msvc": ("aarch64", "windows", "msvc"),
    "x86_64-unknown-linux-gnu": ("x86_64", "linux", "gnu"),
    "x86_64_v2-unknown-linux-gnu": ("x86_64_v2", "linux", "gnu"),
    "x86_64_v3-unknown-linux-gnu": ("x86_64_v3", "linux", "gnu"),
    "x86_64_v4-unknown-linux-gnu": ("x86_64_v4", "linux", "gnu"),
    "aarch64-unknown-linux-gnu": ("aarch64", "linux", "gnu"),
    "i686-unknown-linux-gnu": ("i686", "linux", "gnu"),
    "ppc64le-unknown-linux-gnu": ("ppc64le", "linux", "gnu"),
    "s390x-unknown-linux-gnu": ("s390x", "linux", "gnu"),
    "riscv64-unknown-linux-gnu": ("riscv64", "linux", "gnu"),
    "armv7-unknown-linux-gnueabi": ("armv7", "linux", "gnueabi"),
    "armv7-unknown-linux-gnueabihf": ("armv7", "linux", "gnueabihf"),
    "x86_64-unknown-linux-musl": ("x86_64", "linux", "musl"),
    "x86_64_v2-unknown-linux-musl": ("x86_64_v2", "linux", "musl"),
    "x86_64_v3-unknown-linux-musl": ("x86_64_v3", "linux", "musl"),
    "x86_64_v4-unknown-linux-musl": ("x86_64_v4", "linux", "musl"),
    "aarch64-unknown-linux-musl": ("aarch64", "linux", "musl"),
}


class TestKnownTriples:
    def test_list_matches_the_released_triples(self) -> None:
        assert set(KNOWN_TRIPLES) == set(EXPECTED_PARTS)
        assert len(KNOWN_TRIPLES) == len(set(KNOWN_TRIPLES))

    @pytest.mark.parametrize("triple", KNOWN_TRIPLES)
    def test_every_known_triple_parses(self, triple: str) -> None:
        parsed = parse_triple(triple)
        assert parsed == TargetTriple(triple, *EXPECTED_PARTS[triple])
        assert parsed.is_windows == (parsed.os == "windows")

    @pytest.mark.parametrize("triple", KNOWN_TRIPLES)
    def test_every_known_triple_matches_the_asset_name_pattern(self, triple: str) -> None:
        assert re.fullmatch(TRIPLE_PATTERN, triple)

    def test_is_windows(self) -> None:
        assert parse_triple("x86_64-pc-windows-msvc").is_windows
        assert not parse_triple("x86_64-unknown-linux-gnu").is_windows
        assert not parse_triple("aarch64-apple-darwin").is_windows


class TestParseTriple:
    def test_well_formed_unreleased_triple_parses(self) -> None:
        # the form is checked, not the list: a triple a newer release adds is not refused here
        assert parse_triple("loongarch64-unknown-linux-gnu") == TargetTriple(
            "loongarch64-unknown-linux-gnu", "loongarch64", "linux", "gnu")

    @pytest.mark.parametrize("text", [
        "",
        "host",
        "x86_64",
        "linux",
        "x86_64-linux-gnu",
        "x86_64-unknown-linux",
        "x86_64-unknown-linux-gnux",
        "aarch64-apple-darwn",
        "x86-64-unknown-linux-gnu",
        "X86_64-unknown-linux-gnu",
        "x86_64-unknown-freebsd",
        "x86_64-pc-windows-gnu",
        "-unknown-linux-gnu",
        "x86_64-unknown-linux-gnu-install_only",
        " x86_64-unknown-linux-gnu",
        "x86_64-unknown-linux-gnu ",
        "x86_64-unknown-linux-gnu\n",
    ])
    def test_bad_input(self, text: str) -> None:
        with pytest.raises(ValueError) as info:
            parse_triple(text)
        assert str(info.value) == f"not a target triple: {text!r}"


class TestSuggestTriple:
    @pytest.mark.parametrize(("typo", "suggestion"), [
        ("x86_64-unknown-linux-gnux", "x86_64-unknown-linux-gnu"),
        ("aarch64-apple-darwn", "aarch64-apple-darwin"),
        ("x86_64-pc-windows-msv", "x86_64-pc-windows-msvc"),
        ("aarch64-linux-gnu", "aarch64-unknown-linux-gnu"),
        ("x86-64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"),
        ("x86_64_v3-unknown-linux-mus", "x86_64_v3-unknown-linux-musl"),
        ("armv7-unknown-linux-gnueabhf", "armv7-unknown-linux-gnueabihf"),
    ])
    def test_typos(self, typo: str, suggestion: str) -> None:
        assert suggest_triple(typo) == suggestion

    @pytest.mark.parametrize("text", ["", "banana", "windows", "3.12"])
    def test_nothing_close(self, text: str) -> None:
        assert suggest_triple(text) is None

    @pytest.mark.parametrize("triple", KNOWN_TRIPLES)
    def test_exact_triple_suggests_itself(self, triple: str) -> None:
        assert suggest_triple(triple) == triple


class TestHostTriple:
    def test_this_machine(self) -> None:
        if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
            pytest.skip(f"this test pins a glibc Linux build machine; this is {sys.platform} {platform.libc_ver()}")
        machine = platform.machine().lower()
        arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}[machine]
        assert host_triple() == f"{arch}-unknown-linux-gnu"
        assert host_triple() in ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu")

    @pytest.mark.parametrize(("sys_platform", "machine", "libc", "expected"), [
        ("linux", "x86_64", ("glibc", "2.36"), "x86_64-unknown-linux-gnu"),
        ("linux", "aarch64", ("glibc", "2.17"), "aarch64-unknown-linux-gnu"),
        ("linux", "x86_64", ("", ""), "x86_64-unknown-linux-musl"),
        ("linux", "aarch64", ("", ""), "aarch64-unknown-linux-musl"),
        ("linux", "ppc64le", ("glibc", "2.28"), "ppc64le-unknown-linux-gnu"),
        ("darwin", "arm64", ("", ""), "aarch64-apple-darwin"),
        ("darwin", "x86_64", ("", ""), "x86_64-apple-darwin"),
        ("win32", "AMD64", ("", ""), "x86_64-pc-windows-msvc"),
        ("win32", "ARM64", ("", ""), "aarch64-pc-windows-msvc"),
        ("win32", "x86", ("", ""), "i686-pc-windows-msvc"),
    ])
    def test_platforms(self, monkeypatch: pytest.MonkeyPatch, sys_platform: str, machine: str,
                       libc: tuple[str, str], expected: str) -> None:
        self._pretend(monkeypatch, sys_platform, machine, libc)
        assert host_triple() == expected

    @pytest.mark.parametrize(("sys_platform", "machine", "message"), [
        ("freebsd14", "amd64", "python-build-standalone publishes no runtime for this platform (freebsd14, amd64)"),
        ("linux", "mips64", "python-build-standalone publishes no runtime for this machine "
                            "(mips64-unknown-linux-gnu)"),
        ("darwin", "ppc", "python-build-standalone publishes no runtime for this machine (ppc-apple-darwin)"),
    ])
    def test_unsupported(self, monkeypatch: pytest.MonkeyPatch, sys_platform: str, machine: str,
                         message: str) -> None:
        self._pretend(monkeypatch, sys_platform, machine, ("glibc", "2.36"))
        with pytest.raises(ValueError) as info:
            host_triple()
        assert str(info.value) == message

    @staticmethod
    def _pretend(monkeypatch: pytest.MonkeyPatch, sys_platform: str, machine: str, libc: tuple[str, str]) -> None:
        monkeypatch.setattr(triples, "sys", SimpleNamespace(platform=sys_platform))
        monkeypatch.setattr(triples, "platform", SimpleNamespace(machine=lambda: machine, libc_ver=lambda: libc))


# --------------------------------------------------------------------------------------------------------------
# The "all" targets, uv platforms, wheel platform tags, macOS deployment target

UV_SUPPORTED = ("aarch64-darwin, aarch64-linux-gnu, aarch64-linux-musl, aarch64-windows-msvc, i686-windows-msvc, "
                "x86_64-darwin, x86_64-linux-gnu, x86_64-linux-musl, x86_64-windows-msvc")

UV_PLATFORMS = {
    "aarch64-apple-darwin": "aarch64-apple-darwin",
    "x86_64-apple-darwin": "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc": "x86_64-pc-windows-msvc",
    "i686-pc-windows-msvc": "i686-pc-windows-msvc",
    "aarch64-pc-windows-msvc": "aarch64-pc-windows-msvc",
    "x86_64-unknown-linux-gnu": "x86_64-manylinux_2_17",
    "x86_64_v2-unknown-linux-gnu": "x86_64-manylinux_2_17",
    "x86_64_v3-unknown-linux-gnu": "x86_64-manylinux_2_17",
    "x86_64_v4-unknown-linux-gnu": "x86_64-manylinux_2_17",
    "aarch64-unknown-linux-gnu": "aarch64-manylinux_2_17",
    "x86_64-unknown-linux-musl": "x86_64-unknown-linux-musl",
    "x86_64_v2-unknown-linux-musl": "x86_64-unknown-linux-musl",
    "x86_64_v3-unknown-linux-musl": "x86_64-unknown-linux-musl",
    "x86_64_v4-unknown-linux-musl": "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl": "aarch64-unknown-linux-musl",
}
UV_UNSUPPORTED = ("i686-unknown-linux-gnu", "ppc64le-unknown-linux-gnu", "s390x-unknown-linux-gnu",
                  "riscv64-unknown-linux-gnu", "armv7-unknown-linux-gnueabi", "armv7-unknown-linux-gnueabihf")


class TestAllTargets:
    def test_the_seven_targets(self) -> None:
        assert triples.ALL_TARGETS == (
            "x86_64-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu",
            "x86_64-unknown-linux-musl",
            "aarch64-apple-darwin",
            "x86_64-apple-darwin",
            "x86_64-pc-windows-msvc",
            "aarch64-pc-windows-msvc",
        )
        assert len(set(triples.ALL_TARGETS)) == 7
        assert set(triples.ALL_TARGETS) <= set(KNOWN_TRIPLES)

    @pytest.mark.parametrize("triple", triples.ALL_TARGETS)
    def test_every_target_can_get_wheels(self, triple: str) -> None:
        assert triples.uv_python_platform(triple)
        assert triples.wheel_platform_tags(triple)


class TestUvPythonPlatform:
    def test_every_known_triple_is_covered(self) -> None:
        assert set(UV_PLATFORMS) | set(UV_UNSUPPORTED) == set(KNOWN_TRIPLES)
        assert not set(UV_PLATFORMS) & set(UV_UNSUPPORTED)

    @pytest.mark.parametrize("triple", sorted(UV_PLATFORMS))
    def test_supported(self, triple: str) -> None:
        assert triples.uv_python_platform(triple) == UV_PLATFORMS[triple]

    @pytest.mark.parametrize("triple", UV_UNSUPPORTED)
    def test_unsupported(self, triple: str) -> None:
        with pytest.raises(ValueError) as info:
            triples.uv_python_platform(triple)
        assert str(info.value) == (f"installing wheels for {triple} is not supported (uv knows no such platform); "
                                   f"supported: {UV_SUPPORTED}")

    def test_malformed_triple(self) -> None:
        with pytest.raises(ValueError, match=r"^not a target triple: 'aarch64-apple-darwn'$"):
            triples.uv_python_platform("aarch64-apple-darwn")

    @pytest.mark.parametrize(("triple", "expected"), [
        ("x86_64-unknown-linux-gnu", "x86_64-manylinux_2_28"), ("x86_64_v3-unknown-linux-gnu", "x86_64-manylinux_2_28"),
        ("aarch64-unknown-linux-gnu", "aarch64-manylinux_2_28"), ("x86_64-unknown-linux-musl", "x86_64-unknown-linux-musl"),
        ("aarch64-apple-darwin", "aarch64-apple-darwin"), ("x86_64-pc-windows-msvc", "x86_64-pc-windows-msvc")])
    def test_the_glibc_floor_is_the_manylinux_platform(self, triple: str, expected: str) -> None:
        assert triples.uv_python_platform(triple, triples.PlatformFloors(manylinux=(2, 28), macos=(14, 0))) == expected

    def test_every_floor_is_a_platform_uv_knows(self) -> None:
        """The oracle is uv itself: the ``--python-platform`` values its help lists."""
        import subprocess

        from hatch_pbs.app.install import uv_executable

        text = subprocess.run([uv_executable(), "pip", "install", "--help"], capture_output=True, text=True,
                              check=True).stdout
        known = set(re.findall(r"[\w.]+-[\w.-]+", text.replace("\n", " ")))
        uv_floors = {value.rsplit("_", 2)[-2] + "_" + value.rsplit("_", 1)[-1] for value in known
                     if value.startswith("x86_64-manylinux_")}
        assert uv_floors == set(triples.MANYLINUX_FLOORS)
        for floor in triples.MANYLINUX_FLOORS:
            version = tuple(int(part) for part in floor.split("_"))
            for triple in ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"):
                assert triples.uv_python_platform(triple, triples.PlatformFloors(manylinux=version)) in known


class TestPlatformFloors:
    def test_defaults_are_the_runtimes_floors(self) -> None:
        assert triples.PlatformFloors() == triples.PlatformFloors(manylinux=(2, 17), musllinux=(1, 2), macos=(11, 0))

    @pytest.mark.parametrize(("triple", "kind", "option"), [
        ("x86_64_v2-unknown-linux-gnu", ("glibc", (2, 28)), 'manylinux = "2_28"'),
        ("aarch64-unknown-linux-musl", ("musl", (1, 2)), 'musllinux = "1_2"'),
        ("x86_64-apple-darwin", ("macos", (12, 0)), 'macos = "12.0"'),
        ("x86_64-pc-windows-msvc", None, None)])
    def test_for_triple_and_option_text(self, triple: str, kind: object, option: str | None) -> None:
        floors = triples.PlatformFloors(manylinux=(2, 28), macos=(12, 0))
        assert floors.for_triple(triple) == kind
        assert floors.option_text(triple) == option

    def test_candidates_above(self) -> None:
        floors = triples.PlatformFloors(manylinux=(2, 35), macos=(14, 0))
        assert floors.candidates_above("x86_64-unknown-linux-gnu") == [(2, minor) for minor in range(36, 41)]
        assert floors.candidates_above("aarch64-apple-darwin") == [(15, 0), (26, 0)]
        assert floors.candidates_above("x86_64-unknown-linux-musl") == []
        assert floors.candidates_above("x86_64-pc-windows-msvc") == []
        assert floors.raised("aarch64-apple-darwin", (15, 0)) == triples.PlatformFloors(manylinux=(2, 35),
                                                                                        macos=(15, 0))
        assert floors.raised("x86_64-pc-windows-msvc", (15, 0)) == floors

    def test_uv_environment(self) -> None:
        assert triples.uv_environment("aarch64-apple-darwin", triples.PlatformFloors(macos=(13, 0))) == {
            "MACOSX_DEPLOYMENT_TARGET": "13.0"}
        assert triples.uv_environment("x86_64-unknown-linux-gnu") == {}


MANYLINUX_X86_64 = [
    "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_16_x86_64", "manylinux_2_15_x86_64",
    "manylinux_2_14_x86_64", "manylinux_2_13_x86_64", "manylinux_2_12_x86_64", "manylinux2010_x86_64",
    "manylinux_2_11_x86_64", "manylinux_2_10_x86_64", "manylinux_2_9_x86_64", "manylinux_2_8_x86_64",
    "manylinux_2_7_x86_64", "manylinux_2_6_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64",
]


class TestWheelPlatformTags:
    @pytest.mark.parametrize("triple", ["x86_64-unknown-linux-gnu", "x86_64_v2-unknown-linux-gnu",
                                        "x86_64_v3-unknown-linux-gnu", "x86_64_v4-unknown-linux-gnu"])
    def test_linux_gnu_x86_64(self, triple: str) -> None:
        # PEP 600 tags from the glibc 2.17 floor down, each legacy alias right after its glibc (as packaging does)
        assert triples.wheel_platform_tags(triple) == MANYLINUX_X86_64

    def test_linux_gnu_from_a_newer_glibc_floor(self) -> None:
        tags = triples.wheel_platform_tags("x86_64-unknown-linux-gnu", triples.PlatformFloors(manylinux=(2, 28)))
        assert tags[:12] == [f"manylinux_2_{minor}_x86_64" for minor in range(28, 17, -1)] + ["manylinux_2_17_x86_64"]
        assert tags[12:] == MANYLINUX_X86_64[1:]
        assert triples.wheel_platform_tags("aarch64-unknown-linux-gnu", triples.PlatformFloors(manylinux=(2, 31)))[
            :2] == ["manylinux_2_31_aarch64", "manylinux_2_30_aarch64"]

    def test_linux_gnu_i686(self) -> None:
        assert triples.wheel_platform_tags("i686-unknown-linux-gnu") == [
            tag.replace("x86_64", "i686") for tag in MANYLINUX_X86_64]

    @pytest.mark.parametrize(("triple", "arch"), [
        ("aarch64-unknown-linux-gnu", "aarch64"),
        ("ppc64le-unknown-linux-gnu", "ppc64le"),
        ("s390x-unknown-linux-gnu", "s390x"),
        ("armv7-unknown-linux-gnueabihf", "armv7l"),
    ])
    def test_linux_gnu_other_architectures_start_at_manylinux2014(self, triple: str, arch: str) -> None:
        assert triples.wheel_platform_tags(triple) == [f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]

    def test_linux_gnu_agrees_with_packaging_on_this_machine(self) -> None:
        """An independent oracle: the manylinux tags ``packaging`` computes for this (glibc) machine, from the
        glibc 2.17 floor down, are exactly the tags for this machine's triple."""
        if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
            pytest.skip("needs a glibc Linux machine")
        from packaging import tags

        arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
        ours = triples.wheel_platform_tags(f"{arch}-unknown-linux-gnu")
        theirs = [tag for tag in tags.platform_tags() if tag.startswith("manylinux")]
        assert theirs[theirs.index(ours[0]):] == ours

    @pytest.mark.parametrize(("triple", "arch"), [
        ("x86_64-unknown-linux-musl", "x86_64"),
        ("x86_64_v3-unknown-linux-musl", "x86_64"),
        ("aarch64-unknown-linux-musl", "aarch64"),
    ])
    def test_linux_musl(self, triple: str, arch: str) -> None:
        assert triples.wheel_platform_tags(triple) == [f"musllinux_1_2_{arch}", f"musllinux_1_1_{arch}"]

    def test_macos_arm64(self) -> None:
        tags = triples.wheel_platform_tags("aarch64-apple-darwin")
        assert tags[:4] == ["macosx_11_0_arm64", "macosx_11_0_universal2", "macosx_10_16_universal2",
                            "macosx_10_15_universal2"]
        assert tags[-1] == "macosx_10_4_universal2"
        assert not [tag for tag in tags if "x86_64" in tag or tag.startswith("macosx_12")]

    def test_macos_x86_64(self) -> None:
        tags = triples.wheel_platform_tags("x86_64-apple-darwin")
        assert tags[:8] == ["macosx_11_0_x86_64", "macosx_11_0_intel", "macosx_11_0_fat64", "macosx_11_0_fat3",
                            "macosx_11_0_universal2", "macosx_11_0_universal", "macosx_10_16_x86_64",
                            "macosx_10_16_intel"]
        assert "macosx_10_9_x86_64" in tags and "macosx_11_0_arm64" not in tags

    def test_macos_follows_the_floor(self) -> None:
        twelve = triples.PlatformFloors(macos=(12, 0))
        assert triples.wheel_platform_tags("aarch64-apple-darwin", twelve)[:5] == [
            "macosx_12_0_arm64", "macosx_12_0_universal2", "macosx_11_0_arm64", "macosx_11_0_universal2",
            "macosx_10_16_universal2"]
        assert triples.wheel_platform_tags("x86_64-apple-darwin", twelve)[:7] == [
            "macosx_12_0_x86_64", "macosx_12_0_intel", "macosx_12_0_fat64", "macosx_12_0_fat3",
            "macosx_12_0_universal2", "macosx_12_0_universal", "macosx_11_0_x86_64"]
        assert triples.wheel_platform_tags("aarch64-apple-darwin", triples.PlatformFloors(macos=(13, 4)))[:2] == [
            "macosx_13_0_arm64", "macosx_13_0_universal2"]

    @pytest.mark.parametrize(("triple", "tag"), [
        ("x86_64-pc-windows-msvc", "win_amd64"),
        ("aarch64-pc-windows-msvc", "win_arm64"),
        ("i686-pc-windows-msvc", "win32"),
    ])
    def test_windows(self, triple: str, tag: str) -> None:
        assert triples.wheel_platform_tags(triple) == [tag]

    @pytest.mark.parametrize("triple", ["armv7-unknown-linux-gnueabi", "riscv64-pc-windows-msvc"])
    def test_no_tags(self, triple: str) -> None:
        with pytest.raises(ValueError) as info:
            triples.wheel_platform_tags(triple)
        assert str(info.value) == f"no wheel platform tags known for {triple}"

    @pytest.mark.parametrize("triple", [t for t in KNOWN_TRIPLES if t != "armv7-unknown-linux-gnueabi"])
    def test_every_known_triple_but_soft_float_arm_has_tags(self, triple: str) -> None:
        tags = triples.wheel_platform_tags(triple)
        assert tags and len(tags) == len(set(tags))
