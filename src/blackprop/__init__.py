"""blackprop: train neural networks whose outputs feed a black-box program.

    import blackprop as bp
    digit = bp.Discrete(range(10))
    add = bp.Program(lambda a, b: a + b, inputs=(digit, digit), output=bp.Discrete(range(19)))
    layer = bp.BlackBox(add, bp.ISED(num_samples=100))
    loss = layer.loss(p_a, p_b, target=sums)
"""

from . import models
from .beliefs import Beliefs
from .blackbox import BlackBox
from .estimators import (
    ESTIMATORS,
    ISED,
    NASR,
    REINFORCE,
    ANeSI,
    Estimator,
    Exact,
    IndeCateR,
    IndeCateRPlus,
    TooLargeToEnumerate,
    estimator,
    parse_estimator_settings,
)
from .explain.compute import explain
from .program import FAILED, BatchedProgram, Program, ProgramFailedError, ProgramStats, TransientProgramError
from .semirings import SEMIRINGS, Semiring, semiring
from .spaces import Discrete, Open, OutputSpaceError, Padded, Product, Sequence, output_matches, padded
from .structured import ExactFold, Fold

__version__ = "0.1.0"

__all__ = [
    "ANeSI",
    "Beliefs",
    "BlackBox",
    "Discrete",
    "ESTIMATORS",
    "Estimator",
    "Exact",
    "ExactFold",
    "Fold",
    "FAILED",
    "ISED",
    "IndeCateR",
    "IndeCateRPlus",
    "NASR",
    "Open",
    "OutputSpaceError",
    "Padded",
    "Product",
    "BatchedProgram",
    "Program",
    "ProgramFailedError",
    "ProgramStats",
    "TransientProgramError",
    "REINFORCE",
    "SEMIRINGS",
    "Semiring",
    "Sequence",
    "TooLargeToEnumerate",
    "estimator",
    "parse_estimator_settings",
    "explain",
    "models",
    "output_matches",
    "padded",
    "semiring",
]
