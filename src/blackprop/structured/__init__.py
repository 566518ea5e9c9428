"""Structured programs: a program written as a composition of small black-box pieces, each
summarised over its own small input space, so that exact learning costs linear time in the input
length. ``Fold(step, init, ...)`` is the first such piece; ``ExactFold`` (method ``"fold"``)
propagates distributions through it.
"""

from ..estimators import register
from .estimator import ExactFold
from .fold import Fold, FoldTrace

register(ExactFold)

__all__ = ["ExactFold", "Fold", "FoldTrace"]
