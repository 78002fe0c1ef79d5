"""Command-line interface of ``pbs-demo``.

Sub-commands:

* ``summary FILE...`` -- parse JSON files with orjson and print a rich table.
* ``echo ARG...``     -- print the arguments as a JSON array (one line).
* ``exit CODE``       -- exit with the given status.
* ``doctor``          -- print runtime facts as a JSON object (one line).
* ``selftest``        -- exercise the app's own code paths in-process; exit 0 when all pass.

``orjson`` is a compiled extension module and is deliberately used for every
JSON operation: if the packed runtime cannot load it, the app fails loudly.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import os
import platform
import site
import sys
from pathlib import Path
from typing import Any

import orjson

from pbs_demo import __version__

PROG = "pbs-demo"


class CliError(Exception):
    """An error reported to the user as a single ``pbs-demo: error: ...`` line."""


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _emit_json(obj: Any) -> None:
    """Write *obj* as one line of UTF-8 encoded JSON to stdout.

    The bytes are written to the underlying binary buffer when there is one,
    so the output is UTF-8 (and ``\\n``-terminated) regardless of the locale
    or console code page of the host.
    """
    data = orjson.dumps(obj)
    out = sys.stdout
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(data.decode("utf-8") + "\n")
        out.flush()
        return
    out.flush()
    buffer.write(data + b"\n")
    buffer.flush()


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__  # pragma: no cover - orjson yields only the above


def _count(value: Any) -> int | None:
    if isinstance(value, (dict, list)):
        return len(value)
    return None


def summarise_file(path: str) -> dict[str, Any]:
    """Return ``{"file", "type", "count", "size"}`` for one JSON file.

    Raises :class:`CliError` with a one-line message on any problem.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{path}: is a directory") from None
    except PermissionError:
        raise CliError(f"{path}: permission denied") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "invalid JSON"
        raise CliError(f"{path}: invalid JSON: {reason}") from None
    return {"file": path, "type": _json_type(value), "count": _count(value), "size": len(data)}


def orjson_extension_file() -> str:
    """Path of the compiled orjson extension module that is actually loaded."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    candidates: list[Any] = [getattr(orjson, "orjson", None), sys.modules.get("orjson.orjson"), orjson]
    candidates += [mod for name, mod in list(sys.modules.items()) if name == "orjson" or name.startswith("orjson.")]
    for mod in candidates:
        file = getattr(mod, "__file__", None)
        if isinstance(file, str) and file.endswith(suffixes):
            return os.path.abspath(file)
    raise CliError("orjson is imported but its compiled extension module could not be located")


def _cwd_on_path() -> bool:
    cwd = os.path.normcase(os.path.realpath(os.getcwd()))
    for entry in sys.path:
        if entry in ("", "."):
            return True
        try:
            if os.path.normcase(os.path.realpath(entry)) == cwd:
                return True
        except (OSError, ValueError):
            continue
    return False


# ---------------------------------------------------------------------------
# sub-commands
# ---------------------------------------------------------------------------


def cmd_summary(files: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = []
    errors = []
    for path in files:
        try:
            rows.append(summarise_file(path))
        except CliError as exc:
            errors.append(str(exc))
    if errors:
        for message in errors:
            print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1

    table = Table(title="JSON summary")
    table.add_column("File", overflow="fold")
    table.add_column("Type")
    table.add_column("Keys/Items", justify="right")
    table.add_column("Size (bytes)", justify="right")
    for row in rows:
        count = "-" if row["count"] is None else str(row["count"])
        table.add_row(row["file"], row["type"], count, str(row["size"]))
    console = Console(highlight=False)
    if not console.is_terminal:
        # When piped or captured, never wrap long file names: widen the
        # console to the table's natural width so every row stays on one line.
        wide = console.options.update_width(100_000)
        console.width = max(console.width, console.measure(table, options=wide).maximum)
    console.print(table)
    return 0


def cmd_echo(args: list[str]) -> int:
    try:
        _emit_json(list(args))
    except orjson.JSONEncodeError as exc:
        # e.g. undecodable bytes in argv surface as lone surrogates on POSIX
        print(f"{PROG}: error: cannot encode arguments as JSON: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_doctor() -> int:
    import rich

    info = {
        "python_executable": sys.executable,
        "python_version": platform.python_version(),
        "prefix": sys.prefix,
        "orjson_file": orjson_extension_file(),
        "rich_file": rich.__file__,
        "sys_path": list(sys.path),
        "argv0": sys.argv[0] if sys.argv else "",
        "cwd_on_path": _cwd_on_path(),
        "user_site_enabled": site.ENABLE_USER_SITE,
        "flags_isolated": sys.flags.isolated,
    }
    _emit_json(info)
    return 0


def _selftest_checks() -> list[tuple[str, Any]]:
    """(name, check) pairs; a check raises (AssertionError or any other error) when it fails."""
    import io
    import tempfile
    import traceback

    def summary_of_files() -> None:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory, "sample.json")
            path.write_bytes(orjson.dumps({"a": [1, 2, 3], "ü": None}))
            assert summarise_file(str(path)) == {"file": str(path), "type": "object", "count": 2,
                                                 "size": path.stat().st_size}

    def rich_table() -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="t")
        table.add_column("File")
        table.add_row("ünïcode.json")
        console = Console(file=io.StringIO(), width=40, color_system=None)
        console.print(table)
        assert "ünïcode.json" in console.file.getvalue()

    def orjson_round_trip() -> None:
        value = {"n": 1, "f": 1.5, "s": "ü", "l": [None, True]}
        assert orjson.loads(orjson.dumps(value)) == value
        assert orjson_extension_file().endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))

    def tracebacks_name_files() -> None:
        try:
            summarise_file("")
        except CliError:
            text = traceback.format_exc()
        assert "cli.py" in text, text

    def standard_library() -> None:
        import decimal
        import hashlib
        import sqlite3
        import unicodedata
        import zlib

        assert str(decimal.Decimal("1.10") + decimal.Decimal("2.205")) == "3.305"
        assert hashlib.sha256(b"").hexdigest().startswith("e3b0c442")
        assert unicodedata.name("ü") == "LATIN SMALL LETTER U WITH DIAERESIS"
        assert zlib.decompress(zlib.compress(b"x" * 100)) == b"x" * 100
        assert sqlite3.connect(":memory:").execute("select 1 + 1").fetchone() == (2,)

    return [("summary of files", summary_of_files), ("rich table", rich_table),
            ("orjson round trip", orjson_round_trip), ("tracebacks name files", tracebacks_name_files),
            ("standard library", standard_library)]


def cmd_selftest() -> int:
    failed = 0
    for name, check in _selftest_checks():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the others
            failed += 1
            print(f"{PROG}: selftest: {name}: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
    total = len(_selftest_checks())
    print(f"{PROG}: selftest: {total - failed} of {total} checks passed")
    return 1 if failed else 0


# ---------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Summarise JSON files (demo application for hatch-pbs).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("summary", help="print a table describing JSON files",
                       description="Parse each JSON file with orjson and print a table.")
    p.add_argument("files", nargs="+", metavar="FILE", help="JSON file to summarise")

    p = sub.add_parser("echo", help="print the arguments as a JSON array",
                       description="Print all following arguments, verbatim, as a one-line JSON array. "
                                   "Everything after 'echo' is taken literally (including '--help').")
    p.add_argument("args", nargs="*", metavar="ARG")

    p = sub.add_parser("exit", help="exit with the given status",
                       description="Exit with the given integer status.")
    p.add_argument("code", type=int, metavar="CODE", help="exit status")

    sub.add_parser("doctor", help="print runtime information as JSON",
                   description="Print interpreter, path and module facts as a one-line JSON object.")
    sub.add_parser("selftest", help="check the app's own code paths",
                   description="Run the app's built-in checks in-process; exit 0 when all pass.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point. Returns the exit status (argparse may raise SystemExit)."""
    if argv is None:
        argv = sys.argv[1:]
    argv = list(argv)

    # 'echo' takes every following argument literally, even ones that look
    # like options ('-x', '--', '--help'), so it bypasses argparse.
    if argv and argv[0] == "echo":
        return cmd_echo(argv[1:])

    args = build_parser().parse_args(argv)
    try:
        if args.command == "summary":
            return cmd_summary(args.files)
        if args.command == "exit":
            return args.code
        if args.command == "doctor":
            return cmd_doctor()
        if args.command == "selftest":
            return cmd_selftest()
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
