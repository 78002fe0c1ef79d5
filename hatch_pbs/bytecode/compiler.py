"""Byte-compiling a directory tree with an interpreter of the target's exact Python version.

The compiling runs in :mod:`hatch_pbs.bytecode.worker`, a standard-library-only script run by that interpreter
(hatch-pbs is not importable there), with ``--invalidation-mode unchecked-hash`` semantics (PEP 552): an artifact
is never edited in place, so checking sources on every import would only cost start-up time, and hash-based
``.pyc`` files do not depend on file times. The worker normalizes each ``.pyc``'s marshal data
(:mod:`hatch_pbs.bytecode.stable_marshal`) and keeps compiled bytecode in the cache, by content.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from hatch_pbs.errors import InstallError, os_error_cause
from hatch_pbs.interrupts import run_tool

#: How the bytecode worker is run. Not ``-I``: that would ignore ``PYTHONHASHSEED``, and before CPython 3.11 marshal
#: writes a frozenset constant's elements in hash order (bpo-37596, fixed in 3.11), so with salted string hashes the
#: same source gave different ``.pyc`` bytes in every process (``mailbox``, ``_pyio``, ``typing`` of 3.10). Instead:
#: ``-s`` (no user site directory), ``-B`` (the worker's own imports write no ``.pyc`` into the interpreter's standard
#: library), every other ``PYTHON*`` variable removed (:func:`_run`), and a ``-c`` bootstrap that drops the current
#: directory from ``sys.path`` before it runs the worker, as ``-I`` would.
_WORKER_FLAGS = ("-s", "-B", "-c", "import sys; del sys.path[0]; import runpy; "
                                   "runpy.run_path(sys.argv[1], run_name='__main__')")
#: The variables the worker's environment adds (to one without any other ``PYTHON*`` variable).
BYTECODE_WORKER_ENVIRONMENT = {"PYTHONHASHSEED": "0"}


def bytecode_worker_command(interpreter: Path) -> list[str]:
    """The command line that runs :mod:`hatch_pbs.bytecode.worker` with ``interpreter``, in an environment without
    ``PYTHON*`` variables plus :data:`BYTECODE_WORKER_ENVIRONMENT`."""
    return [str(interpreter), *_WORKER_FLAGS, str(Path(__file__).parents[1] / "bytecode" / "worker.py")]


def compile_bytecode(interpreter: Path, site_dir: Path, *, sourceless: bool = False,
                     recorded_as: str | None = None, strict: bool = True, cache_dir: Path | None = None,
                     skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Compile every ``.py`` below ``site_dir`` with ``interpreter``, which must be of the target's exact Python
    version (so the ``.pyc`` magic and cache tag match), using :mod:`hatch_pbs.bytecode.worker`.

    The file names recorded in the ``.pyc`` files are relative to the artifact (``recorded_as``, default
    ``site_dir``'s name: ``app/<package>/<module>.py``), not the temporary build directory, so the bytecode is
    reproducible (the import system replaces them with the real location at run time when the source is there;
    sourceless tracebacks show these names). The ``.pyc`` files are ``unchecked-hash`` based (PEP 552): their
    header holds the source's hash, not its time.

    Args:
        sourceless: write ``<module>.pyc`` beside each source (the legacy location) and remove the sources that
            compiled, so only bytecode ships (option ``bytecode = "only"``); without it the ``.pyc`` files go to
            ``__pycache__/<module>.<cache tag>.pyc`` and the sources stay.
        strict: a file that does not compile is an error; otherwise it is kept as source (the standard library
            of a ``full`` preset holds test data in Python 2 syntax).
        skip: directories directly below ``site_dir`` left alone (``("bin",)`` for an application: the scripts
            there run as ``__main__``, whose bytecode Python never reads, and ``sourceless`` would remove them).
        cache_dir: where compiled bytecode is kept and reused, by source content, recorded name and interpreter
            version (the ``bytecode/`` directory of the cache); ``None``: compile everything. Each entry is checked
            against the sha256 it records as it is read; a damaged one is compiled again and replaced.

    Returns:
        ``{"compiled": n, "reused": n, "damaged": [path, ...]}``: files compiled, files whose bytecode came from
        ``cache_dir``, and the cached entries (paths, strings) that were damaged and replaced.

    Raises:
        InstallError: the interpreter cannot be run; (with ``strict``) a file does not compile (for example a
            syntax error in an installed file), the message naming the files; or a directory below ``site_dir``
            cannot be listed, or a ``.pyc`` file cannot be written there or in ``cache_dir``, the message naming the
            path and the cause (a full file system by its mount point, :func:`~hatch_pbs.errors.os_error_cause`).
    """
    request = {"root": str(site_dir), "recorded_as": recorded_as or site_dir.name, "sourceless": sourceless,
               "cache": None if cache_dir is None else str(cache_dir), "skip": list(skip)}
    output = run_tool(bytecode_worker_command(interpreter), "compiling bytecode with the bundled runtime",
                  BYTECODE_WORKER_ENVIRONMENT, input_text=json.dumps(request))
    try:
        summary = json.loads(output)
    except ValueError:
        raise InstallError(f"compiling bytecode with the bundled runtime failed: unexpected output {output!r}"
                           ) from None
    if "error" in summary:  # the worker's own OSError, with the path it was reading or writing
        worker_error = summary["error"]
        error = OSError(worker_error["errno"], worker_error["strerror"], worker_error["filename"], None,
                        worker_error["filename2"])
        raise InstallError(f"compiling bytecode with the bundled runtime failed: {os_error_cause(error)}")
    if summary["failed"] and strict:
        raise InstallError("compiling bytecode with the bundled runtime failed:\n" + "\n".join(summary["failed"]))
    if sourceless:
        remove_compiled_sources(site_dir)
    return {"compiled": summary["compiled"], "reused": summary["reused"], "damaged": summary["damaged"]}


def remove_compiled_sources(top: Path) -> int:
    """Remove every ``<module>.py`` below ``top`` that has a ``<module>.pyc`` beside it, and every
    ``__pycache__`` directory (sourceless modules never read them); returns the number of sources removed."""
    remove_bytecode(top)
    removed = 0
    for directory, _, files in os.walk(top):
        compiled = {name for name in files if name.endswith(".pyc")}
        for name in files:
            if name.endswith(".py") and name + "c" in compiled and not Path(directory, name).is_symlink():
                Path(directory, name).unlink()
                removed += 1
    return removed


def remove_bytecode(top: Path) -> None:
    """Remove every ``__pycache__`` directory below ``top`` (option ``bytecode = "none"``)."""
    for directory, subdirectories, _ in os.walk(top):
        if "__pycache__" in subdirectories:
            shutil.rmtree(Path(directory, "__pycache__"))
            subdirectories.remove("__pycache__")
