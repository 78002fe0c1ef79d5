"""The configuration reference in docs/configuration.md, rendered from the option declarations: the options
table (option, type, default, description) and the environment table (variable, overrides, values).

Each table sits between two marker comments (``<!-- options-table:start -->`` ... ``<!-- options-table:end -->``,
``<!-- env-table:start -->`` ... ``<!-- env-table:end -->``). Regenerate them with::

    python -m hatch_pbs.config.reference --write docs/configuration.md

``--check`` exits with status 1 when the file differs from the declarations; without options the tables are
printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hatch_pbs.config.options import OPTION_DECLARATIONS

#: Variables the reference lists that override no option of the table (read by the downloader, Hatch's binary
#: builder and hatchling): ``(variable, overrides, values)`` cells, Markdown.
OTHER_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("`HATCH_PBS_MIRROR_TOKEN`", "(no option)",
     ("a bearer token sent (`Authorization: Bearer ...`) to the mirror's origin only; see "
      "[offline-and-mirrors.md](offline-and-mirrors.md#authenticated-mirrors)")),
    ("`NETRC`", "(no option)",
     ("the netrc file (default `~/.netrc`) whose entry for the mirror's host is sent as basic authentication when "
      "`HATCH_PBS_MIRROR_TOKEN` is not set")),
    ("`HATCH_PBS_INSECURE_REGISTRIES`", "`image`",
     ("comma-separated registry hosts (`host` or `host:port`) reached over plain HTTP when pulling the base image "
      "or pushing (`hatch-pbs push`); loopback hosts always are, every other one only over HTTPS; see "
      "[containers.md](containers.md#loading-and-pushing)")),
    ("`REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`", "`image`",
     ("where registry credentials are read (Podman's auth file; Docker's `config.json` directory, default "
      "`~/.docker`), with `$XDG_RUNTIME_DIR/containers/auth.json`; see "
      "[containers.md](containers.md#loading-and-pushing)")),
    ("`CARGO`, `PATH`", "`pyapp`",
     ("the cargo Hatch's binary builder runs (`$CARGO`, else `cargo` on `PATH`); whether there is one decides "
      '`pyapp = "auto"`')),
    ("`CARGO_BUILD_TARGET`", "`pyapp`",
     ("the target triple PyApp builds for (default: the build machine's); its artifact is embedded, so it must be "
      "one of `targets`")),
    ("`HATCH_BUILD_HOOKS_ONLY`", "(Hatch's)", "like `--hooks-only`: no hand-off to PyApp"),
)

#: Table name -> ``(start marker, end marker)``.
MARKERS = {
    "options-table": ("<!-- options-table:start -->", "<!-- options-table:end -->"),
    "env-table": ("<!-- env-table:start -->", "<!-- env-table:end -->"),
}


def _row(cells: Sequence[str]) -> str:
    if any("|" in cell or "\n" in cell for cell in cells):
        raise ValueError(f"a table cell holds | or a line break: {cells!r}")
    return "| " + " | ".join(cells) + " |"


def options_table() -> str:
    """The options table, Markdown, one row per declared option, ending with a newline."""
    rows = ["| option | type | default | description |", "|---|---|---|---|"]
    rows += [_row((f"`{option.name}`", option.shown_type, option.shown_default, option.doc))
             for option in OPTION_DECLARATIONS]
    return "\n".join(rows) + "\n"


def environment_table() -> str:
    """The environment table, Markdown: the variables overriding options (declaration order), then
    :data:`OTHER_VARIABLES`; ends with a newline."""
    rows = ["| variable | overrides | values |", "|---|---|---|"]
    rows += [_row((f"`{option.env.variable}`", f"`{option.name}`", option.env.values_doc))
             for option in OPTION_DECLARATIONS if option.env is not None]
    rows += [_row(cells) for cells in OTHER_VARIABLES]
    return "\n".join(rows) + "\n"


def render(document: str) -> str:
    """``document`` (the text of docs/configuration.md) with each table between its markers replaced by the
    rendered one (a blank line either side).

    Raises:
        ValueError: a pair of markers is missing, repeated or out of order.
    """
    tables = {"options-table": options_table(), "env-table": environment_table()}
    for name, (start_marker, end_marker) in MARKERS.items():
        if document.count(start_marker) != 1 or document.count(end_marker) != 1:
            raise ValueError(f"the document must hold {start_marker} and {end_marker} once each")
        start = document.index(start_marker) + len(start_marker)
        end = document.index(end_marker)
        if end < start:
            raise ValueError(f"{end_marker} comes before {start_marker}")
        document = f"{document[:start]}\n\n{tables[name]}\n{document[end:]}"
    return document


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hatch_pbs.config.reference [--write PATH | --check PATH]``; returns the exit status (1: the
    file checked is out of date)."""
    parser = argparse.ArgumentParser(prog="python -m hatch_pbs.config.reference", description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, metavar="PATH", help="replace the tables between the markers in PATH")
    group.add_argument("--check", type=Path, metavar="PATH", help="exit with status 1 when PATH is out of date")
    arguments = parser.parse_args(argv)
    if arguments.write is None and arguments.check is None:
        sys.stdout.write(options_table() + "\n" + environment_table())
        return 0
    path = arguments.write or arguments.check
    document = path.read_text(encoding="utf-8")
    rendered = render(document)
    if arguments.check is not None:
        if rendered != document:
            sys.stderr.write(f"{path} is out of date; run python -m hatch_pbs.config.reference --write {path}\n")
            return 1
        return 0
    if rendered != document:
        path.write_text(rendered, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
