"""Ctrl-C during training: finish the current step, save a resumable checkpoint, then stop.

``deferred_interrupt()`` replaces the SIGINT handler while a run trains (main thread only): the
first Ctrl-C only sets ``requested`` and says so on stderr, so the loop stops at the next step
boundary, where the state is whole and can be saved; a second Ctrl-C stops at once (the default
``KeyboardInterrupt``; the last saved checkpoint is then the one to resume from).

    with deferred_interrupt() as stop:
        for step in steps:
            ...
            if stop.requested:
                save(...); raise TrainingInterrupted(...)

``TrainingInterrupted`` is a ``KeyboardInterrupt`` (code that stops on Ctrl-C still stops) whose
message names the checkpoint and the command that resumes it.

A run without a terminal of its own (a task on a dask worker, in a thread where no signal arrives) is
asked to stop through ``also``: a predicate polled at most every ``poll_seconds`` (for example a
cluster-wide ``distributed.Event``'s ``is_set``, which costs a round trip to the scheduler).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, final

__all__ = ["Interrupt", "TrainingInterrupted", "deferred_interrupt"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after saving; the message says where and how to resume."""


@final
class Interrupt:
    """Whether the run was asked to stop: by a Ctrl-C (the handler ``deferred_interrupt`` installs sets
    ``asked``) or by ``also``, polled at most every ``poll_seconds``; once asked, always asked."""

    def __init__(self, also: Callable[[], bool] | None = None, poll_seconds: float = 2.0) -> None:
        self.asked = False
        self._also, self._poll_seconds, self._polled = also, poll_seconds, -float("inf")

    @property
    def requested(self) -> bool:
        if not self.asked and self._also is not None and time.monotonic() - self._polled >= self._poll_seconds:
            self._polled = time.monotonic()
            self.asked = bool(self._also())
        return self.asked


@contextmanager
def deferred_interrupt(also: Callable[[], bool] | None = None, poll_seconds: float = 2.0) -> Iterator[Interrupt]:
    """Defer the first SIGINT to the next step boundary (outside the main thread no SIGINT arrives, so
    only ``also`` can ask); see the module docstring."""
    stop = Interrupt(also, poll_seconds)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> Any:
        stop.asked = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        print("\nblackprop: Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to stop at "
              "once)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
