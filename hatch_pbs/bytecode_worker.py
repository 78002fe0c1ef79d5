"""Byte-compiles a directory tree with a bytecode cache; run as a script by the interpreter whose bytecode is wanted
(the bundled runtime, or a build-machine runtime of exactly the same version), never imported by hatch-pbs.

It must run on every Python hatch-pbs can bundle: standard library only, no hatch-pbs imports (it loads
:mod:`hatch_pbs.atomic`, standard library only too, by path).

Reads one JSON request on standard input::

    {"root": "<directory>", "recorded_as": "app", "sourceless": false, "cache": "<dir>" | null}

and compiles every ``*.py`` below ``root`` with :func:`py_compile.compile`, ``unchecked-hash`` invalidation
(PEP 552), the recorded file name ``<recorded_as>/<path relative to root>``, into ``__pycache__/`` (or beside the
source with ``sourceless``). With a ``cache`` directory, the bytecode of a source already compiled once (same bytes,
same recorded name, same interpreter version and magic number) is copied from there instead of compiled again.
Prints ``{"compiled": n, "reused": n, "failed": ["<recorded name>, line n: <error>", ...]}`` and exits with 0: a file
that does not compile is a fact for the caller to judge, not a failure of this program. An :class:`OSError` of its own
(a directory below ``root`` that cannot be listed, a ``__pycache__`` or ``cache`` directory that cannot be written, a
full disk) stops it: it prints ``{"error": {"errno": n, "strerror": "...", "filename": "<path>", "filename2": null}}``
instead, with the path it was reading or writing, and exits with 0 too, so the caller reports it as one line.
"""

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

#: Below this many files, one process compiles faster than starting workers.
PARALLEL_THRESHOLD = 48


def _raise(error):
    """``os.walk``'s ``onerror``: a directory that cannot be listed is an error, not an empty directory."""
    raise error


class _Writing:
    """Context manager giving an :class:`OSError` raised in its block ``path`` as its file name when it has none
    (a failed ``write()`` or ``fsync()`` names no file)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if isinstance(error, OSError) and error.filename is None:
            error.filename = self.path
        return False


def _target(source, sourceless):
    return source + "c" if sourceless else importlib.util.cache_from_source(source)


def _compile(job):
    import py_compile  # here, not at the top: a rebuild that reuses everything never imports the compiler

    source, target, recorded, _ = job
    try:
        with _Writing(target):
                py_compile.compile(source, cfile=target, dfile=recorded, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except (py_compile.PyCompileError, SyntaxError, ValueError, UnicodeDecodeError) as error:
        cause = getattr(error, "exc_value", None) or error
        line = getattr(cause, "lineno", None)
        where = f"{recorded}, line {line}" if line else recorded
        return f"{where}: {type(cause).__name__}: {getattr(cause, 'msg', None) or cause}"
    return None


def _atomic():
    """hatch-pbs's :mod:`hatch_pbs.atomic` (standard library only), loaded from beside this file: hatch-pbs itself
    is not importable in the bundled runtime."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hatch_pbs_atomic", os.path.join(os.path.dirname(__file__),
                                                                                  "atomic.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jobs(request):
    """(source, target, recorded name, cache path or None) of every source below the root, in sorted order."""
    root, cache = request["root"], request.get("cache")
    identity = f"{sys.version}\0{importlib.util.MAGIC_NUMBER.hex()}\0"
    for directory, subdirectories, files in os.walk(root, onerror=_raise):
        subdirectories.sort()
        subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            source = os.path.join(directory, name)
            recorded = request["recorded_as"] + "/" + os.path.relpath(source, root).replace(os.sep, "/")
            cached = None
            if cache:
                with open(source, "rb") as stream:
                    digest = hashlib.sha256((identity + recorded + "\0").encode() + stream.read()).hexdigest()
                cached = os.path.join(cache, sys.implementation.cache_tag, digest[:2], digest + ".pyc")
            yield source, _target(source, request["sourceless"]), recorded, cached


def main():
    request = json.load(sys.stdin)
    try:
        summary = _compile_all(request)
    except OSError as error:
        summary = {"error": {"errno": error.errno, "strerror": error.strerror or str(error),
                             "filename": _text(error.filename), "filename2": _text(error.filename2)}}
    json.dump(summary, sys.stdout)
    return 0


def _text(path):
    return None if path is None else os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)


def _compile_all(request):
    """Compile (or reuse) every source of the request; returns the summary :func:`main` prints."""
    reused, pending, made = 0, [], set()
    for job in _jobs(request):
        try:
            with open(job[3], "rb") as cached:
                bytecode = cached.read()
        except (TypeError, OSError):  # no cache, or not in it
            pending.append(job)
            continue
        directory = os.path.dirname(job[1])
        if directory not in made:
            os.makedirs(directory, exist_ok=True)
            made.add(directory)
        with _Writing(job[1]), open(job[1], "wb") as target:  # a fresh tree of the build: nobody reads it yet
            target.write(bytecode)
        reused += 1
    if len(pending) >= PARALLEL_THRESHOLD and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor() as pool:
            failures = list(pool.map(_compile, pending, chunksize=8))
    else:
        failures = [_compile(job) for job in pending]
    atomic = _atomic() if any(job[3] for job in pending) else None
    for job, failure in zip(pending, failures):
        if failure is None and job[3]:
            with _Writing(job[3]):
                atomic.copy_file(Path(job[1]), Path(job[3]), mode=None, durable=False)  # checked when read
    failed = [failure for failure in failures if failure]
    return {"compiled": len(pending) - len(failed), "reused": reused, "failed": failed}


if __name__ == "__main__":
    sys.exit(main())
