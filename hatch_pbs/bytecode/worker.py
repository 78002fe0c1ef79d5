"""Byte-compiles a directory tree with a bytecode cache; run as a script by the interpreter whose bytecode is wanted
(the bundled runtime, or a build-machine runtime of exactly the same version). hatch-pbs itself imports it only for
:func:`entry_verdict` (``hatch-pbs cache verify`` and ``clean``): the cache format has one definition.

It must run on every Python hatch-pbs can bundle: standard library only, no hatch-pbs imports (it loads
:mod:`hatch_pbs.atomic` and :mod:`hatch_pbs.bytecode.stable_marshal`, standard library only too, by path).

Run with ``PYTHONHASHSEED=0`` (it refuses to run otherwise). Reads one JSON request on standard input::

    {"root": "<directory>", "recorded_as": "app", "sourceless": false, "cache": "<dir>" | null,
     "skip": ["bin"]}

and compiles every ``*.py`` below ``root`` (except below its directories named in ``skip``, optional) with
:func:`py_compile.compile`, ``unchecked-hash`` invalidation (PEP 552), marshal references made independent of the
process (:mod:`hatch_pbs.bytecode.stable_marshal`), the recorded file name ``<recorded_as>/<path relative to root>``,
into
``__pycache__/`` (or beside the source with ``sourceless``). With a ``cache`` directory, the bytecode of a source
already compiled once (same bytes, same recorded name, same interpreter version and magic number) is copied from
there instead of compiled again. A cached entry is :data:`ENTRY_MAGIC`, the sha256 of the ``.pyc`` bytes (32 bytes),
then those bytes: it is read whole to be copied anyway, so it is checked on every use, and a damaged one (truncated,
changed) is compiled again and replaced, never copied. Reusing an entry refreshes its modification time (its last
use) at most once a day.
Prints ``{"compiled": n, "reused": n, "damaged": ["<cached entry>", ...], "failed": ["<recorded name>, line n:
<error>", ...]}`` and exits with 0: a file that does not compile is a fact for the caller to judge, not a failure of
this program.
An :class:`OSError` of its own (a directory below ``root`` that cannot be listed, a ``__pycache__`` or
``cache`` directory that cannot be written, a full disk) stops it: it prints ``{"error": {"errno": n, "strerror":
"...", "filename": "<path>", "filename2": null}}`` instead, with the path it was reading or writing, and exits
with 0 too, so the caller reports it as one line.

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
import signal
import sys
import time
from pathlib import Path

#: Below this many files, one process compiles faster than starting workers.
PARALLEL_THRESHOLD = 48
#: The first bytes of a cached entry (its format); the sha256 of the ``.pyc`` bytes follows, then the bytes.
#: ``HPBSPYC1`` entries were compiled with a salted string hash (CPython 3.10's frozensets: ``hatch_pbs.app.install``)
#: and without :mod:`hatch_pbs.bytecode.stable_marshal`, so their bytes differed from one build to the next: they are
#: outdated, never read, and ``hatch-pbs cache clean`` removes them.
ENTRY_MAGIC = b"HPBSPYC2"
_HEADER_SIZE = len(ENTRY_MAGIC) + 32
#: Seconds between two refreshes of an entry's last-use time (a day).
_USE_RESOLUTION = 24 * 3600


def unpack_entry(entry):
    """The ``.pyc`` bytes of the cached entry ``entry`` (bytes), or ``None`` when it is damaged or in another
    format."""
    if len(entry) < _HEADER_SIZE or not entry.startswith(ENTRY_MAGIC):
        return None
    bytecode = entry[_HEADER_SIZE:]
    return bytecode if hashlib.sha256(bytecode).digest() == entry[len(ENTRY_MAGIC):_HEADER_SIZE] else None


def entry_verdict(path):
    """``("intact", "")``, ``("damaged", reason)`` or ``("outdated", reason)`` (the format of an older hatch-pbs,
    which this one never reads) for the cached entry file at ``path``.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as stream:
        entry = stream.read()
    if entry and not ENTRY_MAGIC.startswith(entry[:len(ENTRY_MAGIC)]):
        return "outdated", "kept in the format of an older hatch-pbs"
    if len(entry) < _HEADER_SIZE:
        return "damaged", f"{len(entry)} bytes, shorter than its {_HEADER_SIZE}-byte header"
    if unpack_entry(entry) is None:
        return "damaged", "the sha256 of its bytecode differs from the recorded one"
    return "intact", ""


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
            _sibling("bytecode.stable_marshal").normalize_pyc(target)  # the same bytes whatever this process holds
    except (py_compile.PyCompileError, SyntaxError, ValueError, UnicodeDecodeError) as error:
        cause = getattr(error, "exc_value", None) or error
        line = getattr(cause, "lineno", None)
        where = f"{recorded}, line {line}" if line else recorded
        return f"{where}: {type(cause).__name__}: {getattr(cause, 'msg', None) or cause}"
    return None


_SIBLINGS: dict = {}  # module name -> module


def _sibling(name):
    """hatch-pbs's module ``hatch_pbs.<name>`` (standard library only: ``"atomic"`` is :mod:`hatch_pbs.atomic`,
    ``"bytecode.stable_marshal"`` is :mod:`hatch_pbs.bytecode.stable_marshal`), loaded by path from the package
    this file belongs to, once per process: hatch-pbs itself is not importable in the bundled runtime."""
    if name not in _SIBLINGS:
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.path.join(package, *name.split(".")) + ".py"
        spec = importlib.util.spec_from_file_location("hatch_pbs_" + name.replace(".", "_"), path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SIBLINGS[name] = module
    return _SIBLINGS[name]


def _publish_entry(compiled, destination, atomic):
    """Keep the ``.pyc`` file ``compiled`` as the cached entry ``destination`` (header and bytes), atomically
    (``atomic`` is :mod:`hatch_pbs.atomic`; not flushed to the disk: an entry is checked whenever it is read)."""
    with open(compiled, "rb") as stream:
        bytecode = stream.read()
    with _Writing(destination), atomic.publishing_file(Path(destination), durable=False) as temporary, \
            open(temporary, "wb") as stream:
        stream.write(ENTRY_MAGIC + hashlib.sha256(bytecode).digest() + bytecode)


def _read_entry(path):
    """``(entry bytes, modification time)`` of the cached entry at ``path``.

    Raises:
        TypeError: ``path`` is ``None`` (no cache).
        OSError: there is no such entry.
    """
    with open(path, "rb") as cached:
        return cached.read(), os.fstat(cached.fileno()).st_mtime


def _mark_used(path, used):
    now = time.time()
    if now - used >= _USE_RESOLUTION:
        try:
            os.utime(path, (now, now))
        except OSError:  # a read-only cache
            pass


def _jobs(request):
    """(source, target, recorded name, cache path or None) of every source below the root, in sorted order."""
    root, cache = request["root"], request.get("cache")
    identity = f"{ENTRY_MAGIC.decode()}\0{sys.version}\0{importlib.util.MAGIC_NUMBER.hex()}\0"
    skipped = {os.path.join(root, name) for name in request.get("skip", ())}
    for directory, subdirectories, files in os.walk(root, onerror=_raise):
        subdirectories.sort()
        subdirectories[:] = [name for name in subdirectories
                             if name != "__pycache__" and os.path.join(directory, name) not in skipped]
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
    if sys.flags.hash_randomization:  # the bytecode of CPython < 3.11 would depend on the process's hash salt
        sys.exit("bytecode_worker.py must be run with PYTHONHASHSEED=0 (see hatch_pbs.bytecode.compiler._WORKER_FLAGS)")
    signal.signal(signal.SIGTERM, _stopped)
    signal.signal(signal.SIGINT, _stopped)
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
    reused, pending, made, damaged = 0, [], set(), []
    for job in _jobs(request):
        try:
            entry, used = _read_entry(job[3])
        except (TypeError, OSError):  # no cache, or not in it
            pending.append(job)
            continue
        bytecode = unpack_entry(entry)
        if bytecode is None:
            damaged.append(job[3])
            pending.append(job)
            continue
        _mark_used(job[3], used)
        directory = os.path.dirname(job[1])
        if directory not in made:
            os.makedirs(directory, exist_ok=True)
            made.add(directory)
        with _Writing(job[1]), open(job[1], "wb") as target:  # a fresh tree of the build: nobody reads it yet
            target.write(bytecode)
        reused += 1
    if len(pending) >= PARALLEL_THRESHOLD and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(initializer=_compiling_process_signals) as pool:
            failures = list(pool.map(_compile, pending, chunksize=8))
    else:
        failures = [_compile(job) for job in pending]
    atomic = _sibling("atomic") if any(job[3] for job in pending) else None
    for job, failure in zip(pending, failures):  # noqa: B905 - runs on the target's Python, 3.8 and later
        if failure is None and job[3]:
            _publish_entry(job[1], job[3], atomic)
    failed = [failure for failure in failures if failure]
    return {"compiled": len(pending) - len(failed), "reused": reused, "damaged": damaged, "failed": failed}


if __name__ == "__main__":
    sys.exit(main())
