"""Running Windows programs under Wine in the tests: the environment, and whether Wine works here."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess


def wine_env() -> dict[str, str]:
    """This environment with Wine's debug output off and its Mono/Gecko installers disabled."""
    return {**os.environ, "WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml="}


@functools.lru_cache(maxsize=1)
def wine_problem() -> str | None:
    """Why Wine cannot run 64-bit programs here, or ``None`` if it can."""
    wine = shutil.which("wine64") or shutil.which("wine")
    if wine is None:
        return "wine is not installed (Debian packages wine, wine64)"
    try:
        proc = subprocess.run([wine, "cmd.exe", "/c", "echo", "wine-ok"], capture_output=True, text=True,
                              env=wine_env(), timeout=300, check=False)
    except subprocess.TimeoutExpired:
        return "wine did not start within 300 s"
    if "wine-ok" not in proc.stdout:
        return f"wine cannot run cmd.exe (exit {proc.returncode}): {(proc.stdout + proc.stderr).strip()[-500:]}"
    return None
