"""Programs: black-box Python callables over symbols, and how their calls run.

* ``base``: ``BaseProgram`` (abstract: spaces, layout, range checks, stats, failure policy, state),
  ``ProgramStats``, ``ProgramFailedError``, ``FAILED``;
* ``program``: ``Program`` (final: one call per distinct tuple, memo, executor);
* ``batched``: ``BatchedProgram`` (final: one call per batch over tensors; no memo, no executor);
* ``calls``: one guarded call, timeouts, the ``Outcome`` record, ``TransientProgramError``;
* ``executors``: executor specs ("process:4", "dask:tcp://HOST:8786", ...), pools, dask, recovery.

Example:
    >>> import torch
    >>> from blackprop.program import Program
    >>> from blackprop.spaces import Discrete
    >>> double = Program(lambda a: 2 * a, Discrete(range(3)), Discrete(range(5)))
    >>> double.evaluate(torch.tensor([[0], [2]])).tolist()
    [0, 4]
"""

from .base import FAILED, BaseProgram, ProgramFailedError, ProgramStats
from .batched import BatchedProgram
from .calls import TRANSIENT_ERRORS, Outcome, ProgramTimeout, TransientProgramError
from .executors import parse_executor_spec
from .program import Program

__all__ = [
    "FAILED",
    "TRANSIENT_ERRORS",
    "BaseProgram",
    "BatchedProgram",
    "Outcome",
    "Program",
    "ProgramFailedError",
    "ProgramStats",
    "ProgramTimeout",
    "TransientProgramError",
    "parse_executor_spec",
]
