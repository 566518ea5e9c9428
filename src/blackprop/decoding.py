"""Program-checked decoding: the most probable symbols whose program output is accepted.

Prediction normally runs the program on each example's most likely symbols (the argmax tuple).
When that tuple fails (the program raised, timed out, or for a ``Product`` output left a component
unknown, as a sudoku solver does on a board without a unique solution), the network's beliefs
still rank the alternatives. ``search_accepted`` walks the tuples in decreasing probability,

    p(x) = prod_v p_v(x_v),   visited best-first by the cost sum_v [log p_v(top_v) - log p_v(x_v)],

and keeps the first one the program accepts, trying at most ``budget`` tuples per example (the
argmax one included). No label is used: it is MAP decoding restricted to the program's domain,
with the program as the only judge. Where nothing within the budget is accepted, the argmax tuple
is kept.

The enumeration is exact best-first without duplicates: classes are ranked per variable, a tuple
is a rank vector r, and r's successors raise one rank r_v by one for v >= the last raised
position, so every rank vector has exactly one parent and costs never decrease along a path.

Marginal decoding (``most_probable_outputs``) answers a different question: not the output of the
best tuple but the best output, argmax over y of

    p(y) = sum_{x : P(x) = y} prod_v p_v(x_v),

summed over every tuple when the input space has at most ``budget`` of them, else estimated by the
frequency of each output among ``budget`` tuples drawn from the beliefs (failed draws count for no
output). It is the Bayes decision for 0/1 loss on the output (when the beliefs are calibrated), and
how the ISED paper measured its own accuracy (by sampling).

Example:
    >>> import torch, blackprop as bp
    >>> digit = bp.Discrete(range(3))
    >>> half = bp.Program(lambda a, b: (a + b) // 2 if (a + b) % 2 == 0 else None, (digit, digit), digit)
    >>> beliefs = bp.Beliefs.from_inputs(half.inputs, (torch.tensor([[.6, .4, 0.]]), torch.tensor([[.1, .8, .1]])))
    >>> search_accepted(half, beliefs, budget=8).tolist()  # (0, 1) fails: odd; (1, 1) is next best
    [[1, 1]]
"""

from __future__ import annotations

import dataclasses
import heapq

import torch

from .beliefs import Beliefs
from .estimators.exact import Exact, TooLargeToEnumerate
from .program import BaseProgram
from .spaces import Product

__all__ = ["accepted", "most_probable_outputs", "ranked_tuples", "search_accepted"]


def accepted(program: BaseProgram, outputs: torch.Tensor) -> torch.Tensor:
    """Whether each output index is accepted: the call succeeded and, for a Product, no component is unknown."""
    if isinstance(program.output, Product):
        return (outputs >= 0).all(dim=-1)
    return outputs >= 0


def ranked_tuples(log_probs: torch.Tensor, sizes: list[int], count: int) -> list[list[int]]:
    """The ``count`` most probable tuples of independent variables, most probable first.

    ``log_probs [V, C]`` holds one row per variable (classes beyond ``sizes[v]`` are ignored);
    a variable with size 0 (padding) is returned as -1.

    >>> lp = torch.tensor([[0.7, 0.3], [0.6, 0.4]]).log()
    >>> ranked_tuples(lp, [2, 2], 4)
    [[0, 0], [0, 1], [1, 0], [1, 1]]
    """
    order = torch.argsort(log_probs, dim=1, descending=True).tolist()
    values = log_probs.tolist()
    live = [v for v, size in enumerate(sizes) if size > 0]
    drop = {v: [values[v][order[v][0]] - values[v][order[v][r]] for r in range(sizes[v])] for v in live}
    out: list[list[int]] = []
    heap: list[tuple[float, int, tuple[int, ...], int]] = [(0.0, 0, tuple([0] * len(live)), 0)]
    tie = 1
    while heap and len(out) < count:
        cost, _, ranks, last = heapq.heappop(heap)
        row = [-1] * len(sizes)
        for i, v in enumerate(live):
            row[v] = order[v][ranks[i]]
        out.append(row)
        for i in range(last, len(live)):
            v = live[i]
            if ranks[i] + 1 < sizes[v]:
                step = drop[v][ranks[i] + 1] - drop[v][ranks[i]]
                if step == float("inf"):
                    continue  # a class of probability 0 is never proposed
                raised = ranks[:i] + (ranks[i] + 1,) + ranks[i + 1:]
                heapq.heappush(heap, (cost + step, tie, raised, i))
                tie += 1
    return out


def search_accepted(program: BaseProgram, beliefs: Beliefs, budget: int, chunk: int = 16) -> torch.Tensor:
    """Per example, the most probable tuple among its ``budget`` most probable whose output is accepted.

    Returns ``[B, V]`` class indices (-1 on padded positions). Examples whose argmax tuple is
    accepted cost no search; the others are searched ``chunk`` candidates per program call.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"search budget must be an int >= 1 (tuples tried per example), got {budget!r}")
    probs = beliefs.probs.detach()
    best = probs.argmax(dim=2).masked_fill(~beliefs.valid, -1)
    if budget == 1:
        return best
    ok = accepted(program, program.evaluate(best)).cpu()
    log_probs = torch.log(probs.cpu().double())
    sizes_all = beliefs.sizes.cpu().tolist()
    valid = beliefs.valid.cpu()
    for b in (~ok).nonzero().flatten().tolist():
        sizes = [size if bool(valid[b, v]) else 0 for v, size in enumerate(sizes_all)]
        candidates = ranked_tuples(log_probs[b], sizes, budget)[1:]  # the argmax one already failed
        for start in range(0, len(candidates), chunk):
            block = torch.tensor(candidates[start:start + chunk], dtype=torch.long)
            hits = accepted(program, program.evaluate(block)).nonzero().flatten()
            if len(hits):
                best[b] = block[int(hits[0])].to(best.device)
                break
    return best


def most_probable_outputs(program: BaseProgram, beliefs: Beliefs, budget: int,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Per example, the index of argmax_y p(y) (``[B]``, -1 where no tuple succeeded).

    Exact (every tuple, ``bp.Exact``'s sum) when the input space has at most ``budget`` tuples,
    else the most frequent output among ``budget`` tuples drawn from the beliefs with ``generator``
    (ties go to the lower index). Not defined for ``Product`` outputs (a joint argmax over their
    components is a different search); the caller decides what a failed example scores.

    >>> import torch, blackprop as bp
    >>> digit = bp.Discrete(range(3))
    >>> lt = bp.Program(lambda a, b: a < b, (digit, digit), bp.Discrete([False, True]))
    >>> p = torch.tensor([[0.0, 0.5, 0.5]])   # a: 1 or 2, even odds (argmax: 1)
    >>> q = torch.tensor([[0.0, 0.1, 0.9]])   # b: most likely 2
    >>> beliefs = bp.Beliefs.from_inputs(lt.inputs, (p, q))
    >>> lt.output.values[lt.evaluate(beliefs.probs.argmax(dim=2))[0]]  # the argmax digits: 1 < 2
    True
    >>> most_probable_outputs(lt, beliefs, budget=9).tolist()  # but p(a < b) = .5 * .9 = .45
    [0]
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"marginal budget must be an int >= 1 (tuples per example), got {budget!r}")
    if isinstance(program.output, Product):
        raise ValueError("marginal decoding needs a Discrete or Open output: a Product output's most probable "
                         "value is a joint search over its components; decode its symbols (search) instead")
    detached = dataclasses.replace(beliefs, probs=beliefs.probs.detach(), log_probs=beliefs.log_probs.detach())
    try:
        scores = Exact(max_tuples=budget).log_probs(program, detached)
    except TooLargeToEnumerate:
        outputs = program.evaluate(detached.sample(budget, generator))  # [B, budget]
        counts = torch.zeros(outputs.shape[0], program.output.size + 1, device=outputs.device)
        counts.scatter_add_(1, outputs + 1, torch.ones_like(outputs, dtype=counts.dtype))  # column 0: failed
        scores = counts[:, 1:].masked_fill(counts[:, 1:] == 0, float("-inf"))
    if scores.shape[1] == 0:
        return torch.full((scores.shape[0],), -1, dtype=torch.long, device=scores.device)
    best = scores.max(dim=1)
    return best.indices.masked_fill(torch.isneginf(best.values), -1)
