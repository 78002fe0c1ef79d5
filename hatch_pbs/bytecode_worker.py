"""Byte-compiles a directory tree with a bytecode cache; run as a script by the interpreter whose bytecode is wanted
(the bundled runtime, or a build-machine runtime of exactly the same version), never imported by hatch-pbs.

It must run on every Python hatch-pbs can bundle: standard library only, no hatch-pbs imports.

Reads one JSON request on standard input::

    {"root": "<directory>", "recorded_as": "app", "sourceless": false, "cache": "<dir>" | null}

and compiles every ``*.py`` below ``root`` with :func:`py_compile.compile`, ``unchecked-hash`` invalidation
(PEP 552), the recorded file name ``<recorded_as>/<path relative to root>``, into ``__pycache__/`` (or beside the
source with ``sourceless``). With a ``cache`` directory, the bytecode of a source already compiled once (same bytes,
same recorded name, same interpreter version and magic number) is copied from there instead of compiled again.
Prints ``{"compiled": n, "reused": n, "failed": ["<recorded name>, line n: <error>", ...]}`` and exits with 0: a file
that does not compile is a fact for the caller to judge, not a failure of this program.

SIGTERM (what an interrupted build sends) and SIGINT (a terminal's Ctrl-C, which reaches this program's process
group) end the compiling processes and exit with status 128 + the signal number through the usual clean-up, so no
temporary ``.part`` file is left in the cache. The compiling processes ignore SIGINT (this program ends them) and
die of SIGTERM.
"""

import hashlib
import importlib.util
import json
import multiprocessing
import os
import shutil
import signal
import sys
import uuid

#: Below this many files, one process compiles faster than starting workers.
PARALLEL_THRESHOLD = 48


def _target(source, sourceless):
    return source + "c" if sourceless else importlib.util.cache_from_source(source)


def _compile(job):
    import py_compile  # here, not at the top: a rebuild that reuses everything never imports the compiler

    source, target, recorded, _ = job
    try:
        py_compile.compile(source, cfile=target, dfile=recorded, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except (py_compile.PyCompileError, SyntaxError, ValueError, UnicodeDecodeError) as error:
        cause = getattr(error, "exc_value", None) or error
        line = getattr(cause, "lineno", None)
        where = f"{recorded}, line {line}" if line else recorded
        return f"{where}: {type(cause).__name__}: {getattr(cause, 'msg', None) or cause}"
    return None


def _copy_atomically(source, destination):
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    temporary = f"{destination}.{uuid.uuid4().hex[:12]}.part"
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _jobs(request):
    """(source, target, recorded name, cache path or None) of every source below the root, in sorted order."""
    root, cache = request["root"], request.get("cache")
    identity = f"{sys.version}\0{importlib.util.MAGIC_NUMBER.hex()}\0"
    for directory, subdirectories, files in os.walk(root):
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


def _stopped(signum, frame):
    for process in multiprocessing.active_children():  # the compiling processes, if any
        process.terminate()
    raise SystemExit(128 + signum)


def _compiling_process_signals():
    """In each compiling process (forked ones inherit :func:`_stopped`): SIGTERM kills it, SIGINT is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def main():
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
    request = json.load(sys.stdin)
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
        with open(job[1], "wb") as target:  # a fresh tree of the build: nobody else reads it yet
            target.write(bytecode)
        reused += 1
    if len(pending) >= PARALLEL_THRESHOLD and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(initializer=_compiling_process_signals) as pool:
            failures = list(pool.map(_compile, pending, chunksize=8))
    else:
        failures = [_compile(job) for job in pending]
    for job, failure in zip(pending, failures):
        if failure is None and job[3]:
            _copy_atomically(job[1], job[3])
    failed = [failure for failure in failures if failure]
    json.dump({"compiled": len(pending) - len(failed), "reused": reused, "failed": failed}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
