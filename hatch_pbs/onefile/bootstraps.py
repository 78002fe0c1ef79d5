"""The prebuilt bootstrap programs shipped in ``hatch_pbs/onefile/bootstrap/`` and which one a target triple gets.

One bootstrap per operating system, libc family and base architecture (``bootstrap/README.md`` lists them and how
they are built): a CPU-level variant such as ``x86_64_v3-unknown-linux-gnu`` gets its base architecture's
bootstrap (built for the baseline CPU), and a Windows GUI script (``[project.gui-scripts]``) gets the variant
linked for the Windows GUI subsystem, which opens no console.
"""

from __future__ import annotations

from pathlib import Path

from hatch_pbs.release.triples import ALL_TARGETS, parse_triple

#: The directory holding the prebuilt bootstraps.
BOOTSTRAP_DIR = Path(__file__).parent / "bootstrap"

#: The target triples with a bootstrap of their own (CPU-level variants of them have one too): those of
#: ``targets = ["all"]``, aarch64 musl Linux and i686 Windows.
BOOTSTRAP_TRIPLES: tuple[str, ...] = (*ALL_TARGETS, "aarch64-unknown-linux-musl", "i686-pc-windows-msvc")

#: ``(os, libc, base arch)`` -> the bootstrap's file stem (its target triple).
_BOOTSTRAPS: dict[tuple[str, str, str], str] = {
    (parsed.os, parsed.libc, parsed.base_arch): triple
    for triple in BOOTSTRAP_TRIPLES for parsed in [parse_triple(triple)]}


def has_bootstrap(triple: str) -> bool:
    """Whether a single-file executable can be made for ``triple`` (a PBS target triple).

    Raises:
        ValueError: ``triple`` is not a PBS target triple.
    """
    parsed = parse_triple(triple)
    return (parsed.os, parsed.libc, parsed.base_arch) in _BOOTSTRAPS


def bootstrap_path(triple: str, *, gui: bool = False) -> Path:
    """The prebuilt bootstrap for ``triple``: ``bootstrap/bootstrap-<triple>[-gui][.exe]`` (``gui``: the Windows
    GUI-subsystem variant, for GUI scripts; ignored elsewhere).

    Raises:
        ValueError: ``triple`` is not a PBS target triple, or no bootstrap exists for it (see
            :data:`BOOTSTRAP_TRIPLES`).
        FileNotFoundError: the bootstrap is missing from the installation.
    """
    parsed = parse_triple(triple)
    stem = _BOOTSTRAPS.get((parsed.os, parsed.libc, parsed.base_arch))
    if stem is None:
        raise ValueError(f"no onefile bootstrap for {triple}; there are bootstraps for {', '.join(BOOTSTRAP_TRIPLES)}")
    name = f"bootstrap-{stem}" + ("-gui.exe" if gui else ".exe") if parsed.is_windows else f"bootstrap-{stem}"
    path = BOOTSTRAP_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"the onefile bootstrap {path} is missing from the hatch-pbs installation")
    return path
