"""The runtime's own site configuration: the ``.pth`` file that puts the artifact's ``app/`` on ``sys.path``."""

from __future__ import annotations

from pathlib import Path

#: Name of the ``.pth`` file placed in the runtime's ``site-packages`` that puts ``app/`` on ``sys.path``.
APP_PTH_NAME = "_hatch_pbs_app.pth"
#: Its content: ``app/`` is the sibling of the runtime directory (``sys.prefix``), added as a site directory so
#: ``.pth`` files of installed distributions are honoured. Works for every interpreter start, launcher or not.
APP_PTH_LINE = "import os, site, sys; site.addsitedir(os.path.join(os.path.dirname(sys.prefix), 'app'))\n"


def write_app_pth(site_packages: Path) -> Path:
    """Write :data:`APP_PTH_NAME` into the runtime's ``site-packages``; returns its path."""
    site_packages.mkdir(parents=True, exist_ok=True)
    path = site_packages / APP_PTH_NAME
    path.write_text(APP_PTH_LINE, encoding="utf-8")
    return path
