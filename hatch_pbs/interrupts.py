"""Stopping a build on Ctrl-C (SIGINT) within about a second, with nothing half-written left behind.

Python raises :class:`KeyboardInterrupt` in the main thread only, at whatever line it happens to run (possibly in
the middle of a clean-up), and a thread cannot be stopped from outside: the targets' worker threads would run on
for seconds, and the build's child processes (uv, the bytecode worker) with them. So a build runs inside
:func:`scope`, where the first SIGINT only *requests* an interrupt (a process-wide flag) and runs the registered
actions that cut blocking waits short: it terminates every running child process (:func:`run`) and shuts down
the sockets of every running download (:func:`on_interrupt`). The pipeline's loops
(download chunks, archive members, copied and packed files, stage boundaries) and its waits (child processes,
cache locks, retry back-off) call :func:`check`, which raises :class:`BuildInterrupted`; the exception unwinds
through the usual ``finally`` blocks, which remove every temporary file and staging directory. A second SIGINT
raises :class:`KeyboardInterrupt` at once, as Python does by default (leftovers in the staging directories are
then removed by the next build).

POSIX signal semantics: https://docs.python.org/3/library/signal.html ("Python signal handlers are always
executed in the main Python thread"; "signal.signal() can only be called from the main thread").
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import count
from typing import Any, TypeVar

from filelock import BaseFileLock, Timeout

from hatch_pbs.errors import HatchPbsError, InstallError

#: Seconds between two looks at the flag while waiting (a child process, a cache lock).
POLL_INTERVAL = 0.1
#: Seconds a child process is given to exit after SIGTERM before it is killed (SIGKILL).
TERMINATE_GRACE = 1.0

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class BuildInterrupted(KeyboardInterrupt):
    """The build was interrupted (SIGINT, Ctrl-C) and stopped at a safe point.

    A :class:`KeyboardInterrupt`, not a :class:`~hatch_pbs.errors.HatchPbsError`: code that handles failures with
    ``except Exception`` lets it through, and callers that already treat ``KeyboardInterrupt`` (exit status 130)
    treat it alike."""

    def __init__(self) -> None:
        super().__init__("interrupted")


_requested = threading.Event()
_actions: dict[int, Callable[[], None]] = {}
_action_ids = count()
# Reentrant: the signal handler runs in the main thread, possibly while that thread holds the lock.
_actions_lock = threading.RLock()
_scope_lock = threading.Lock()
_scope_depth = 0


def requested() -> bool:
    """Whether an interrupt was requested in the current :func:`scope`."""
    return _requested.is_set()


def check() -> None:
    """Raise :class:`BuildInterrupted` if an interrupt was requested."""
    if _requested.is_set():
        raise BuildInterrupted


def wait(seconds: float) -> None:
    """Sleep ``seconds``, cut short by an interrupt.

    Raises:
        BuildInterrupted: an interrupt was requested (before or while sleeping).
    """
    if _requested.wait(max(0.0, seconds)):
        raise BuildInterrupted


def interrupt() -> None:
    """Request an interrupt: set the flag and run every registered action (each once, errors ignored: an action
    only hurries along what :func:`check` stops anyway). Safe to call from a signal handler and any thread."""
    _requested.set()
    with _actions_lock:
        actions = list(_actions.values())
        _actions.clear()
    for action in actions:
        try:
            action()
        except OSError:  # the process or socket is already gone
            pass


@contextmanager
def on_interrupt(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (from the interrupting thread) if an interrupt is requested while the block runs; at once if
    one already was. For what blocks in C and never reaches a :func:`check`: a socket read, a child's exit."""
    key = next(_action_ids)
    with _actions_lock:
        _actions[key] = action
    try:
        if _requested.is_set():
            interrupt()
        yield
    finally:
        with _actions_lock:
            _actions.pop(key, None)


def _on_sigint(signum: int, frame: object) -> None:  # noqa: ARG001 - the signal handler signature
    if _requested.is_set():
        raise KeyboardInterrupt  # the second Ctrl-C: stop at once
    interrupt()


@contextmanager
def scope() -> Iterator[None]:
    """Run a build where SIGINT requests an interrupt (see the module docstring) instead of raising
    :class:`KeyboardInterrupt` wherever the main thread is.

    The SIGINT handler is installed only when called from the main thread (elsewhere a ``KeyboardInterrupt`` in the
    main thread still reaches the workers through :func:`parallel_map`) and the previous handler is restored when
    the outermost scope ends; nested scopes share it. The flag is cleared when the outermost scope begins and ends.

    Raises:
        BuildInterrupted: an interrupt was requested; also when the block then ended with another error (a child
            process that died of the same Ctrl-C) or ended normally after the request.
    """
    global _scope_depth
    with _scope_lock:
        _scope_depth += 1
        outermost = _scope_depth == 1
    previous = None
    if outermost:
        _requested.clear()
        # Not over SIG_IGN: a process started with SIGINT ignored (a background job) stays deaf to it.
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):
            previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    except Exception:
        if _requested.is_set():
            raise BuildInterrupted from None
        raise
    else:
        check()
    finally:
        with _scope_lock:
            _scope_depth -= 1
        if outermost:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            _requested.clear()


@contextmanager
def raising() -> Iterator[None]:
    """Inside a :func:`scope`, for code that has no check points (hatchling's wheel builder and the build hooks it
    runs): SIGINT raises :class:`KeyboardInterrupt` in the main thread while the block runs, as Python does by
    default. Nothing changes outside a scope or in another thread.

    Raises:
        BuildInterrupted: an interrupt was requested before the block.
    """
    check()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not _on_sigint:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _on_sigint)


def parallel_map(function: Callable[[_Item], _Result], items: Iterable[_Item], *, max_workers: int
                 ) -> list[_Result]:
    """``[function(item) for item in items]``, run in up to ``max_workers`` threads.

    A :class:`KeyboardInterrupt` in the calling thread (a second Ctrl-C, or any Ctrl-C where no :func:`scope`
    handler is installed) requests an interrupt, so the workers stop at their next :func:`check` instead of
    running to the end.

    Raises:
        Exception: the first item's (in order) that raised, once every worker has stopped.
    """
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        futures = [pool.submit(function, item) for item in items]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            interrupt()
            raise


def acquire(lock: BaseFileLock, timeout: float) -> None:
    """Acquire ``lock`` (a ``filelock`` lock), waiting at most ``timeout`` seconds, cut short by an interrupt.

    Raises:
        filelock.Timeout: another process held it for ``timeout`` seconds.
        BuildInterrupted: an interrupt was requested while waiting.
    """
    deadline = time.monotonic() + timeout
    while True:
        check()
        try:
            lock.acquire(timeout=max(0.0, min(POLL_INTERVAL, deadline - time.monotonic())))
            return
        except Timeout:
            if time.monotonic() >= deadline:
                raise


def run(command: Sequence[str], *, env: dict[str, str] | None = None, input_text: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    """:func:`subprocess.run` with text output captured, that an interrupt stops.

    An interrupt terminates the child (SIGTERM; SIGKILL if it is still running :data:`TERMINATE_GRACE` seconds
    later; Windows: ``TerminateProcess``). It stays in this process's process group, so a terminal's Ctrl-C (and
    any signal sent to the group) reaches it, and what it started, directly, as it would without hatch-pbs; the
    bytecode worker ends its own compiling processes. Without ``input_text`` its standard input is ``/dev/null``.

    Raises:
        OSError: the command cannot be started.
        BuildInterrupted: an interrupt was requested before or while it ran (it is gone when this returns).
    """
    check()
    process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL if input_text is None else subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        with on_interrupt(lambda: _stop(process, kill=False)):
            stdout, stderr = _communicate(process, input_text)
    except BaseException:
        _stop(process, kill=True)
        process.wait()
        raise
    check()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_tool(command: list[str], purpose: str, extra_environment: dict[str, str] | None = None, *,
             input_text: str | None = None, failure: type[HatchPbsError] = InstallError) -> str:
    """Run the tool ``command`` (uv, a bundled interpreter) with :func:`run`, in this process's environment less
    every ``PYTHON*`` variable and ``VIRTUAL_ENV``, plus ``extra_environment``; returns its standard output.

    Raises:
        InstallError: (or ``failure``) it cannot be started, or exits with a status other than 0; the message
            starts with ``purpose`` and ends with its output (:func:`failure_output`).
        BuildInterrupted: the build was interrupted (the command is gone then).
    """
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    environment.pop("VIRTUAL_ENV", None)
    environment.update(extra_environment or {})
    try:
        completed = run(command, env=environment, input_text=input_text)
    except OSError as error:
        raise failure(f"{purpose} failed: cannot run {command[0]}: {error}") from None
    if completed.returncode != 0:
        output = failure_output(completed.stderr or completed.stdout)
        raise failure(f"{purpose} failed (exit status {completed.returncode}):\n{output}")
    return completed.stdout


#: How many of a failed tool's last output lines a message keeps.
FAILURE_TAIL = 25
#: uv's own diagnostic lines (its error chain, hints): kept even where a long output (a build backend's) would push
#: them out of the tail, because they name the distribution and version that failed.
_DIAGNOSTIC_RE = re.compile(r"^\s*(?:error:|hint:|warning:|Caused by:|× |[├╰]─▶ )")


def failure_output(output: str, tail: int = FAILURE_TAIL) -> str:
    """The part of a failed tool's ``output`` a message shows: its last ``tail`` lines, preceded by the
    diagnostic lines of uv (``error:``, ``× Failed to build `name==1.0```, ``╰─▶ ...``, ``hint:``) among the
    lines before them, and a line counting the lines left out."""
    lines = output.strip().splitlines()
    if len(lines) <= tail:
        return "\n".join(lines)
    earlier = [line for line in lines[:-tail] if _DIAGNOSTIC_RE.match(line)]
    omitted = len(lines) - tail - len(earlier)
    return "\n".join([*earlier, f"[... {omitted} more lines of output ...]", *lines[-tail:]])



def _communicate(process: subprocess.Popen[str], input_text: str | None) -> tuple[str, str]:
    """The child's output once it exits, looking at the flag every :data:`POLL_INTERVAL` seconds; an interrupted
    child that outlives :data:`TERMINATE_GRACE` is killed."""
    pending, killed_at = input_text, None
    while True:
        try:
            return process.communicate(pending, timeout=POLL_INTERVAL)
        except subprocess.TimeoutExpired:
            pending = None  # sent, or being sent: communicate() goes on with it
            if _requested.is_set():
                killed_at = killed_at or time.monotonic() + TERMINATE_GRACE
                _stop(process, kill=time.monotonic() >= killed_at)


def _stop(process: subprocess.Popen[str], *, kill: bool) -> None:
    """Terminate (SIGTERM) or kill (SIGKILL) ``process``; nothing once it has exited (Windows: both terminate)."""
    try:
        if kill:
            process.kill()
        else:
            process.terminate()
    except ProcessLookupError:  # exited between the check and the signal
        pass


class SigintExit:
    """A SIGINT handler for code hatch-pbs does not run itself but whose Ctrl-C it reports (hatchling's binary
    builder running cargo for PyApp, after the hook handed its artifact over): SIGINT writes ``message`` (one line)
    to standard error and raises ``SystemExit(130)`` in the main thread, which hatchling's own clean-up lets
    through (its ``subprocess.run`` kills cargo on any exception) and Python turns into exit status 130, without a
    traceback. The default handler would raise ``KeyboardInterrupt``: a traceback, and a death by SIGINT that Hatch
    reports as exit status 254.

    Args:
        message: the line written, without its line break.
    """

    def __init__(self, message: str) -> None:
        self.message = message
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        """Install the handler (main thread only, and not over ``SIG_IGN``; elsewhere nothing happens)."""
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
            return
        self._previous = signal.signal(signal.SIGINT, self._exit)
        self._installed = True

    def restore(self) -> None:
        """Put the previous handler back (nothing if :meth:`install` installed none)."""
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _exit(self, signum: int, frame: object) -> None:  # noqa: ARG002 - the signal handler signature
        # os.write, not print(): the main thread may be inside a write to sys.stderr (not reentrant).
        os.write(2, (self.message + "\n").encode(errors="replace"))
        raise SystemExit(130)


__all__ = ["BuildInterrupted", "SigintExit", "acquire", "check", "interrupt", "on_interrupt", "parallel_map",
           "raising", "requested", "run", "scope", "wait"]
