"""Reading and writing ELF library search paths (``DT_RPATH``/``DT_RUNPATH``) with LIEF."""

from __future__ import annotations

import os
from pathlib import Path

import lief

ELF_MAGIC = b"\x7fELF"
SEARCH_PATH_TAGS = ("RPATH", "RUNPATH")

lief.logging.disable()


def _parser_config() -> lief.ELF.ParserConfig:
    # Only the dynamic section is needed: skipping symbols and relocations makes parsing ~10x faster.
    config = lief.ELF.ParserConfig()
    config.parse_dyn_symbols = False
    config.parse_symtab_symbols = False
    config.parse_relocations = False
    config.parse_symbol_versions = False
    return config


def _tag_name(entry: lief.ELF.DynamicEntry) -> str:
    return str(entry.tag).rsplit(".", 1)[-1]  # "TAG.RUNPATH" -> "RUNPATH"


def is_elf(path: Path) -> bool:
    """Whether ``path`` starts with the ELF magic bytes."""
    with path.open("rb") as stream:
        return stream.read(4) == ELF_MAGIC


def read_search_paths(path: Path) -> dict[str, tuple[str, ...]]:
    """The ``RPATH`` and ``RUNPATH`` entries of an ELF file, e.g. ``{"RUNPATH": ("$ORIGIN/../lib",)}``.

    Raises:
        ValueError: LIEF cannot parse the file as ELF.
    """
    binary = lief.ELF.parse(str(path), _parser_config())
    if binary is None:
        raise ValueError(f"not a parseable ELF file: {path}")
    found: dict[str, tuple[str, ...]] = {}
    for entry in binary.dynamic_entries:
        tag = _tag_name(entry)
        if tag in SEARCH_PATH_TAGS:
            found[tag] = tuple(part for part in entry.paths if part)
    return found


def write_search_paths(path: Path, search_paths: dict[str, tuple[str, ...]]) -> None:
    """Replace the given tags' entries of ``path``; an empty tuple removes the tag. The file is rewritten
    atomically and keeps its mode.

    Raises:
        ValueError: LIEF cannot parse or write the file.
    """
    binary = lief.ELF.parse(str(path))
    if binary is None:
        raise ValueError(f"not a parseable ELF file: {path}")
    for entry in list(binary.dynamic_entries):
        tag = _tag_name(entry)
        if tag not in search_paths:
            continue
        if search_paths[tag]:
            entry.paths = list(search_paths[tag])
        else:
            binary.remove(entry)
    temporary = path.with_name(f".{path.name}.relocating")
    try:
        binary.write(str(temporary))
        if not temporary.is_file():
            raise ValueError(f"LIEF wrote nothing for {path}")
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
