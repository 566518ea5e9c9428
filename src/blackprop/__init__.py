"""blackprop: train neural networks whose outputs feed a black-box program.

    import blackprop as bp
    digit = bp.Discrete(range(10))
    add = bp.Program(lambda a, b: a + b, inputs=(digit, digit), output=bp.Discrete(range(19)))
    layer = bp.BlackBox(add, bp.ISED(num_samples=100))
    loss = layer.loss(p_a, p_b, target=sums)
"""

from . import models
from .batched import BatchedProgram
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
    SubstitutionISED,
    TooLargeToEnumerate,
    estimator,
)
from .program import FAILED, Program, ProgramStats
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
    "ProgramStats",
    "REINFORCE",
    "SEMIRINGS",
    "Semiring",
    "Sequence",
    "SubstitutionISED",
    "TooLargeToEnumerate",
    "estimator",
    "models",
    "output_matches",
    "padded",
    "semiring",
]
