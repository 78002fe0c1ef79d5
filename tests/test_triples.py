"""Unit tests of hatch_pbs.triples: parsing, suggestions and host detection."""

from __future__ import annotations

import platform
import re
import sys
from types import SimpleNamespace

import pytest

from hatch_pbs import triples
from hatch_pbs.triples import KNOWN_TRIPLES, TRIPLE_PATTERN, TargetTriple, host_triple, parse_triple, suggest_triple

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
