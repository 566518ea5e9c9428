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
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, final

__all__ = ["Interrupt", "TrainingInterrupted", "deferred_interrupt"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after saving; the message says where and how to resume."""


@final
class Interrupt:
    """Whether a Ctrl-C asked the run to stop (set by the handler ``deferred_interrupt`` installs)."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def deferred_interrupt() -> Iterator[Interrupt]:
    """Defer the first SIGINT to the next step boundary; outside the main thread, do nothing."""
    stop = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> Any:
        stop.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        print("\nblackprop: Ctrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to stop at "
              "once)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
