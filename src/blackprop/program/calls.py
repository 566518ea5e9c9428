"""One guarded program call: ``fn(*args)`` -> an ``Outcome`` record, never an exception.

An outcome's ``status`` is one of

* ``"ok"``: ``value`` is what fn returned;
* ``"error"``: fn raised (or called ``sys.exit``); a *deterministic* failure of the tuple, memoised;
* ``"transient"``: fn raised a transient error (``TRANSIENT_ERRORS``: ``TransientProgramError``,
  ``ConnectionError``, ``TimeoutError``): counted, never memoised, asked again when sampled again;
* ``"timeout"``: fn ran longer than ``timeout`` seconds (see ``Program`` for how often it is retried);
* ``"lost"``: the worker running it died twice (set by the executors, never here).

Timeouts, per call, wherever the call runs: on the main thread of a process (serial runs,
process-pool workers) ``SIGALRM`` interrupts fn with ``ProgramTimeout``, a ``BaseException`` that
fn's own ``except Exception`` cannot swallow; on any other thread fn runs in a daemon thread and
the caller stops waiting after ``timeout`` seconds (Python cannot kill a thread).

Example:
    >>> guarded_call(abs, [-3], timeout=None)
    Outcome(status='ok', value=3)
    >>> guarded_call(int, ["x"], timeout=None).status
    'error'
    >>> def down(): raise TransientProgramError("endpoint answered 503")
    >>> guarded_call(down, [], timeout=None)
    Outcome(status='transient', value='raised TransientProgramError: endpoint answered 503')
"""

from __future__ import annotations

import contextlib
import gc
import pickle
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, final

__all__ = [
    "OK", "ERROR", "TRANSIENT", "TIMEOUT", "LOST", "Outcome", "ProgramTimeout", "TRANSIENT_ERRORS",
    "TransientProgramError", "collector_paused", "error_outcome", "guarded_call", "run_chunk",
]

OK, ERROR, TRANSIENT, TIMEOUT, LOST = "ok", "error", "transient", "timeout", "lost"


@final
class Outcome(NamedTuple):
    """The record of one call: ``status`` (ok, error, transient, timeout, lost) and ``value`` (the
    returned value for ok, a message for error, transient and lost, None for timeout)."""

    status: str
    value: Any


@final
class ProgramTimeout(BaseException):
    """Raised inside fn by SIGALRM; a BaseException so that fn's own ``except Exception`` cannot swallow it."""


class TransientProgramError(Exception):
    """Raise it (or a subclass: the one open class here, the base of transient errors) from a
    program or an LLM client for a failure that may pass: an endpoint answering
    5xx/429 past its retries, a spent budget, a lost connection. The tuple is counted as failed
    now, never memoised nor saved in ``state_dict()``, and asked again the next time it is sampled.

    >>> raise TransientProgramError("HTTP 503 after 3 attempts")
    Traceback (most recent call last):
    ...
    blackprop.program.calls.TransientProgramError: HTTP 503 after 3 attempts
    """


#: exceptions that mark a call as transient, the one place this class is defined.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientProgramError, ConnectionError, TimeoutError)


def guarded_call(fn: Callable[..., Any], args: list[Any], timeout: float | None) -> Outcome:
    """``fn(*args)`` as an ``Outcome``; never raises (except KeyboardInterrupt). ``sys.exit()``
    inside fn is an error, not the end of training."""
    if timeout is None:
        try:
            return Outcome(OK, fn(*args))
        except (Exception, SystemExit) as error:  # noqa: BLE001 - any program error is a failed sample
            return _failure(error)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _call_with_alarm(fn, args, timeout)
    return _call_in_thread(fn, args, timeout)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the per-tuple loop allocates (a few objects per tuple, no
    cycles): each collection would walk the whole heap of a training process, costing more than the calls."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def error_outcome(error: BaseException) -> Outcome:
    """The outcome of a call that raised ``error`` (transient, or a deterministic error).

    >>> error_outcome(ConnectionError("refused")).status
    'transient'
    """
    return _failure(error)


def _failure(error: BaseException) -> Outcome:
    if isinstance(error, SystemExit):
        return Outcome(ERROR, f"called sys.exit({error.code!r})")
    status = TRANSIENT if isinstance(error, TRANSIENT_ERRORS) else ERROR
    return Outcome(status, f"raised {type(error).__name__}: {error}")


def _call_with_alarm(fn: Callable[..., Any], args: list[Any], timeout: float) -> Outcome:
    def on_alarm(signum: int, frame: Any) -> None:
        raise ProgramTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, timeout)
    began = time.monotonic()
    try:
        try:
            value = fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return Outcome(OK, value)
    except ProgramTimeout:
        return Outcome(TIMEOUT, None)
    except (Exception, SystemExit) as error:  # noqa: BLE001
        return _failure(error)
    finally:
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # someone else's timer was running: give it back what is left
            left = max(outer_delay - (time.monotonic() - began), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _call_in_thread(fn: Callable[..., Any], args: list[Any], timeout: float) -> Outcome:
    """Off the main thread no signal can interrupt fn: run it in a daemon thread and stop waiting."""
    box: list[Outcome] = []

    def target() -> None:
        box.append(guarded_call(fn, args, None))

    worker = threading.Thread(target=target, daemon=True, name="blackprop-call")
    worker.start()
    worker.join(timeout)
    return box[0] if box else Outcome(TIMEOUT, None)


def run_chunk(fn: Callable[..., Any], chunk: list[list[Any]], timeout: float | None) -> list[Outcome]:
    """Guarded calls of one executor task; values that cannot travel back (not picklable) become errors."""
    outcomes = [guarded_call(fn, args, timeout) for args in chunk]
    try:
        pickle.dumps(outcomes)
    except Exception:  # noqa: BLE001
        outcomes = [_picklable(outcome) for outcome in outcomes]
    return outcomes


def _picklable(outcome: Outcome) -> Outcome:
    try:
        pickle.dumps(outcome)
        return outcome
    except Exception as error:  # noqa: BLE001
        return Outcome(ERROR, f"returned a value that cannot be sent between processes ({type(error).__name__}: {error})")
