"""One resolution for every target triple (hatch_pbs.app.universal): which triples a universal PEP 751 lock leaves
without a wheel, judged from the lock's file names, markers and the platform floors (no uv runs here; the lock
files are written as uv writes them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.tags import Tag

from hatch_pbs.app.universal import WheelGap, accepted_tags, check_wheels, wheel_gaps
from hatch_pbs.errors import InstallError
from hatch_pbs.release.triples import PlatformFloors

LINUX = "x86_64-unknown-linux-gnu"
LINUX_ARM = "aarch64-unknown-linux-gnu"
MUSL = "x86_64-unknown-linux-musl"
MAC_ARM = "aarch64-apple-darwin"
WINDOWS = "x86_64-pc-windows-msvc"
TARGETS = dict.fromkeys((LINUX, LINUX_ARM, MUSL, MAC_ARM, WINDOWS), "3.12.7")


def package(name: str, version: str, *wheel_tags: str, marker: str | None = None, sdist: bool = False) -> str:
    """A ``[[packages]]`` entry as uv writes it, with one wheel per tag (URLs on an index)."""
    lines = ["[[packages]]", f'name = "{name}"', f'version = "{version}"']
    if marker:
        lines.append(f"marker = {marker!r}")
    if sdist:
        lines.append(f'sdist = {{ url = "https://files.example/{name}-{version}.tar.gz", '
                     f'hashes = {{ sha256 = "{"0" * 64}" }} }}')
    wheels = ", ".join(f'{{ url = "https://files.example/{name}-{version}-{tag}.whl", '
                       f'hashes = {{ sha256 = "{"1" * 64}" }} }}' for tag in wheel_tags)
    lines.append(f"wheels = [{wheels}]")
    return "\n".join(lines) + "\n"


def write_lock(tmp_path: Path, *packages: str) -> Path:
    lock = tmp_path / "pylock.toml"
    lock.write_text('lock-version = "1.0"\ncreated-by = "uv"\nrequires-python = ">=3.12"\n\n' + "\n".join(packages),
                    encoding="utf-8")
    return lock


PILLOW = package("pillow", "13.0.0", "cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64",
                 "cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64", "cp312-cp312-musllinux_1_2_x86_64",
                 "cp312-cp312-macosx_11_0_arm64", "cp312-cp312-win_amd64")


def test_a_version_without_a_wheel_at_the_floor_names_every_triple_and_the_floor_that_has_one(tmp_path: Path
                                                                                              ) -> None:
    gaps = wheel_gaps(write_lock(tmp_path, PILLOW), TARGETS, PlatformFloors())
    assert gaps == [WheelGap("pillow", "13.0.0", (LINUX, LINUX_ARM),
                             {LINUX: 'manylinux = "2_28"', LINUX_ARM: 'manylinux = "2_28"'})]
    assert gaps[0].describe() == (f'pillow 13.0.0 has no usable wheel for {LINUX} (it has one at manylinux = "2_28"), '
                                  f'{LINUX_ARM} (it has one at manylinux = "2_28")')
    # At that floor every triple has its wheel.
    assert wheel_gaps(write_lock(tmp_path, PILLOW), TARGETS, PlatformFloors(manylinux=(2, 28))) == []


def test_markers_limit_a_distribution_to_the_triples_it_applies_to(tmp_path: Path) -> None:
    lock = write_lock(tmp_path,
                      package("colorama", "0.4.6", "py2.py3-none-any", marker="sys_platform == 'win32'"),
                      package("uvloop", "0.21.0", "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
                              "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64",
                              "cp312-cp312-musllinux_1_1_x86_64", "cp312-cp312-macosx_10_13_universal2",
                              marker="sys_platform != 'win32'"),
                      package("winonly", "1.0", "cp312-cp312-win_amd64", marker="os_name == 'nt'"))
    assert wheel_gaps(lock, TARGETS, PlatformFloors()) == []
    lock = write_lock(tmp_path, package("winonly", "1.0", "cp312-cp312-win_amd64"))  # no marker: everywhere
    assert [gap.triples for gap in wheel_gaps(lock, TARGETS, PlatformFloors())] == [(LINUX, LINUX_ARM, MUSL, MAC_ARM)]


def test_pure_abi3_and_older_floor_wheels_suit(tmp_path: Path) -> None:
    lock = write_lock(tmp_path, package("rich", "14.0.0", "py3-none-any"),
                      package("cryptography", "46.0.0", "cp311-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
                              "cp311-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64",
                              "cp311-abi3-musllinux_1_2_x86_64", "cp311-abi3-macosx_10_9_universal2",
                              "cp311-abi3-win_amd64"))
    assert wheel_gaps(lock, TARGETS, PlatformFloors()) == []


def test_a_source_only_distribution_is_a_gap_except_where_it_may_be_built(tmp_path: Path) -> None:
    lock = write_lock(tmp_path, package("hostbuilt", "1.0", sdist=True))
    assert wheel_gaps(lock, TARGETS, PlatformFloors(), buildable=frozenset({LINUX})) == [
        WheelGap("hostbuilt", "1.0", (LINUX_ARM, MUSL, MAC_ARM, WINDOWS), {})]
    assert [gap.triples for gap in wheel_gaps(lock, TARGETS, PlatformFloors())] == [tuple(TARGETS)]


def test_a_macos_floor_is_advised_like_a_glibc_one(tmp_path: Path) -> None:
    lock = write_lock(tmp_path, package("newmac", "2.0", "cp312-cp312-macosx_14_0_arm64", "py3-none-win_amd64",
                                        "py3-none-manylinux_2_17_x86_64", "py3-none-manylinux_2_17_aarch64",
                                        "py3-none-musllinux_1_2_x86_64"))
    (gap,) = wheel_gaps(lock, TARGETS, PlatformFloors())
    assert (gap.triples, gap.floors) == ((MAC_ARM,), {MAC_ARM: 'macos = "14.0"'})


def test_check_wheels_fails_with_one_line_per_distribution(tmp_path: Path) -> None:
    lock = write_lock(tmp_path, PILLOW, package("hostonly", "0.1", "py3-none-manylinux_2_17_x86_64"))
    with pytest.raises(InstallError) as raised:
        check_wheels(lock, {LINUX: "3.12.7", MAC_ARM: "3.12.7"}, PlatformFloors())
    lines = str(raised.value).splitlines()
    assert lines[0].startswith("the dependencies are resolved once for every target triple")
    assert lines[1:3] == [f"  hostonly 0.1 has no usable wheel for {MAC_ARM} (at no platform floor)",
                          f'  pillow 13.0.0 has no usable wheel for {LINUX} (it has one at manylinux = "2_28")']
    assert "platform floor" in lines[3]
    with pytest.raises(InstallError, match="hostonly 0.1 has no usable wheel"):
        check_wheels(lock, {MAC_ARM: "3.12.7", WINDOWS: "3.12.7"}, PlatformFloors())


def test_accepted_tags_follow_the_floor() -> None:
    at_2_17 = accepted_tags(LINUX, "3.12.7", PlatformFloors())
    assert Tag("cp312", "cp312", "manylinux_2_17_x86_64") in at_2_17
    assert Tag("cp312", "cp312", "manylinux_2_28_x86_64") not in at_2_17
    assert Tag("cp311", "abi3", "manylinux_2_17_x86_64") in at_2_17
    assert Tag("py3", "none", "any") in at_2_17
    assert Tag("cp312", "cp312", "manylinux_2_28_x86_64") in accepted_tags(LINUX, "3.12.7", PlatformFloors((2, 28)))
    assert Tag("cp313", "cp313", "manylinux_2_17_x86_64") not in at_2_17
