"""The programs ``blackprop explain`` offers: the blog's a+b and every registered task with small discrete inputs.

A task is offered when its program builds without an endpoint, its inputs and output are all
``Discrete`` and its inputs have at most ``compute.MAX_TUPLES`` tuples: today sum2, sum3, sum4,
mult2, mod2, add-mod-3, add-sub, less-than, equal, not-3-or-4 and leaf-dt.
"""

from __future__ import annotations

import functools
import zlib
from typing import Any

import torch

from ..program import BaseProgram
from ..spaces import Discrete
from .compute import DEFAULT_PROBS, DEFAULT_TARGET, blog_program, check_program
from .methods import sizes

__all__ = ["BLOG", "default_example", "offered_programs", "program_named", "rescaled"]

BLOG = "blog"


@functools.lru_cache(maxsize=1)
def offered_programs() -> dict[str, str]:
    """Key -> label of every offered program, the blog's first."""
    from ..tasks import get_task, task_names

    offered = {BLOG: "a + b on digits 0-2 (the ISED blog's example)"}
    for name in task_names():
        try:
            check_program(get_task(name).make_program())
        except (ValueError, TypeError, OSError, ImportError):  # Sequence inputs, too many tuples, no endpoint
            continue
        offered[name] = f"{name}: {get_task(name).description}"
    return offered


def program_named(key: str) -> BaseProgram:
    if key == BLOG:
        return blog_program()
    if key not in offered_programs():
        raise ValueError(f"program {key!r} is not offered; valid: {', '.join(offered_programs())}")
    from ..tasks import get_task

    return get_task(key).make_program()


def default_example(key: str, program: BaseProgram) -> tuple[list[list[float]], Any]:
    """The blog's probabilities and target for "blog"; otherwise seeded, rounded distributions and the
    output of their most likely tuple as the target."""
    if key == BLOG:
        return [list(p) for p in DEFAULT_PROBS], DEFAULT_TARGET
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    probs = []
    for size in sizes(program):
        p = torch.softmax(1.5 * torch.randn(size, generator=generator, dtype=torch.float64), 0)
        probs.append(rescaled([round(x, 2) for x in p.tolist()], int(p.argmax()), None))
    best = torch.tensor([[int(torch.tensor(p).argmax()) for p in probs]])
    index = int(program.evaluate(best)[0])
    return probs, program.output.values[index] if isinstance(program.output, Discrete) else None


def rescaled(row: list[float], index: int, value: float | None) -> list[float]:
    """``row`` with entry ``index`` set to ``value`` (clamped to [0, 1]; None: kept) and the others scaled to sum to 1."""
    row = [max(0.0, float(x)) for x in row]
    fixed = row[index] if value is None else min(1.0, max(0.0, float(value)))
    others = sum(x for i, x in enumerate(row) if i != index)
    rest = 1.0 - fixed
    if others > 0:
        out = [x * rest / others for x in row]
    else:
        out = [rest / (len(row) - 1)] * len(row) if len(row) > 1 else [1.0]
    out[index] = fixed if len(row) > 1 else 1.0
    return out
