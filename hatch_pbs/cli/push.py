"""``hatch-pbs push ARCHIVE REFERENCE``: push an OCI image layout archive (the ``image`` form's
``<name>-<version>-oci.tar``) to a registry (:func:`hatch_pbs.registry.push.push_layout`), its SBOMs as referrers.

The tags are the reference's own tag, or for a reference without one (``ghcr.io/me/app``) the layout's own tag (its
``org.opencontainers.image.ref.name``, the project's version), then every ``--tag``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from hatch_pbs.registry.push import push_layout
from hatch_pbs.registry.reference import ImageReference


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add ``push`` to the ``hatch-pbs`` subcommands ``commands``."""
    help_text = "push an OCI image layout archive (an image form's -oci.tar) to a container registry"
    command = commands.add_parser("push", help=help_text, description=help_text)
    command.set_defaults(subparser=command)
    command.add_argument("archive", metavar="ARCHIVE", help="the OCI image layout archive (.tar)")
    command.add_argument("reference", metavar="REFERENCE",
                         help="where to push: registry/repository[:tag] (without a tag: the layout's, the version)")
    command.add_argument("--tag", action="append", default=[], metavar="TAG",
                         help="push under TAG too (repeatable)")
    command.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                         help="seconds allowed for connecting and between two received chunks (default: 30)")


def _has_tag(text: str) -> bool:
    """Whether the reference text names a tag itself (``name:tag``), rather than getting ``latest`` by default."""
    name = text.strip().partition("@")[0]
    return ":" in name.rsplit("/", 1)[-1]


def run(arguments: argparse.Namespace) -> None:
    """``hatch-pbs push``: push, then print the summary line and the tags.

    Raises:
        RegistryError: the reference is malformed or the registry refuses the push. ImageError: a bad archive.
    """
    reference = ImageReference.parse(arguments.reference)
    if not _has_tag(arguments.reference):
        reference = dataclasses.replace(reference, tag=None)
    result = push_layout(Path(arguments.archive).expanduser(), reference, tags=arguments.tag,
                         timeout=arguments.timeout)
    print(f"pushed {reference.name}@{result.digest} ({result.blobs_uploaded} blobs, "
          f"{result.bytes_uploaded / 1e6:.1f} MB uploaded, {result.blobs_skipped} already there)")
    for tag in result.tags:
        print(f"{reference.name}:{tag}")
