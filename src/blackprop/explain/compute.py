"""``bp.explain``: every estimator on one example, with its samples, terms, loss and gradient.

For one example (one probability vector per program input and a target output) each method
reports, as plain JSON-ready data:

* the samples it drew and the program's output on each (reproduced with the same seeded
  ``torch.Generator`` the estimator is called with);
* the terms it aggregates, each naming the input probabilities (variable, class) it uses;
* its output vector (``layer(*probs)``), its loss (``layer.loss(*probs, target=...)``) and the
  gradient of that loss w.r.t. every input probability (``torch.autograd.grad`` with the
  probabilities as leaf tensors), beside the exact gradient -d/dp log p(y) and the difference.

The numbers come from the library's estimators through ``bp.BlackBox``; this module only lays
them out. Example (the ISED blog post's: a=1, b=2, y=3):

    >>> import torch, blackprop as bp
    >>> data = bp.explain(None, torch.tensor([.1, .6, .3]), torch.tensor([.2, .1, .7]), target=3,
    ...                   methods=["exact", "ised"], num_samples=5, seed=0)
    >>> [round(v, 2) for v in data["methods"]["exact"]["output"]]
    [0.02, 0.13, 0.19, 0.45, 0.21]
    >>> [s["tuple"] for s in data["methods"]["ised"]["samples"]][:2], len(data["methods"]["ised"]["gradient"])
    ([[2, 2], [2, 0]], 2)
"""

from __future__ import annotations

import html
import inspect
import json
import math
from collections.abc import Sequence as SequenceABC
from typing import Any, final

import torch

from ..blackbox import BlackBox
from ..program import BaseProgram, Program
from ..spaces import Discrete
from . import methods as m
from .methods import jsonable, sizes

__all__ = ["DEFAULT_PROBS", "Explanation", "blog_program", "explain", "jsonable", "method_keys"]

#: the blog's example: M(a) and M(b) over the digits 0, 1, 2; the true a=1, b=2 give y=3.
DEFAULT_PROBS = ([0.1, 0.6, 0.3], [0.2, 0.1, 0.7])
DEFAULT_TARGET = 3
#: the methods, in page order: key -> label
METHODS = {
    "exact": "Exact enumeration (DeepProbLog, Scallop exact)",
    "top-1": "Top-1 proofs (Scallop)",
    "top-3": "Top-3 proofs (Scallop)",
    "ised": "ISED (library default: importance weights, site exploration)",
    "ised-paper": "ISED (the paper's: probability weights, L2 + BCE)",
    "reinforce": "REINFORCE",
    "reinforce-loo": "REINFORCE, leave-one-out baseline",
    "indecater": "IndeCateR",
    "indecater+": "IndeCateR+",
    "nasr": "NASR",
    "anesi": "A-NeSI",
}
MAX_TUPLES = 10_000


def method_keys() -> list[str]:
    return list(METHODS)


def blog_add(a: int, b: int) -> int:
    return a + b


def blog_program() -> BaseProgram:
    """The blog's program: y = a + b over digits 0..2 (outputs 0..4)."""
    digit = Discrete(range(3))
    return Program(blog_add, inputs=(digit, digit), output=Discrete(range(5)), name="a+b (digits 0-2)")


@final
class Explanation(dict[str, Any]):
    """The data of ``bp.explain`` (a dict); in a notebook it displays as the explain page."""

    def to_json(self) -> str:
        return json.dumps(self)

    def _repr_html_(self) -> str:
        from .page import render_page

        page = render_page(self, gallery=None, server=False)
        return f'<iframe style="width:100%;height:900px;border:0" srcdoc="{html.escape(page)}"></iframe>'


def explain(
    layer: BlackBox | BaseProgram | None,
    *probs: Any,
    target: Any = None,
    methods: SequenceABC[str] | None = None,
    seed: int = 0,
    num_samples: int = 5,
    semiring: str = "add-mult",
    indecater_samples: int = 2,
    nasr_batch: int = 8,
    anesi_steps: int = 300,
) -> Explanation:
    """Run every method on one example and lay out what each computes.

    Args:
        layer: a ``bp.BlackBox`` or ``bp.Program`` whose inputs are all ``Discrete`` (at most 10,000
            tuples), or None for the blog's a+b over digits 0..2.
        probs: one probability vector (or ``[1, classes]`` tensor) per program input; none given with
            ``layer=None``: the blog's M(a)=[.1,.6,.3], M(b)=[.2,.1,.7].
        target: the labelled output value (``None`` with ``layer=None``: 3).
        methods: keys among ``method_keys()`` (default all; a layer's own estimator is added as "layer").
        seed: seed of the generator every sampling method draws with (same seed, same draws).
        num_samples: k for ISED and REINFORCE; ``indecater_samples``: N for IndeCateR(+);
            ``nasr_batch``: copies of the example in NASR's batch (its reward is standardised over the
            batch, so one example alone has no gradient); ``anesi_steps``: surrogate training steps.
        semiring: ISED's semiring ("add-mult", "max-mult" or "min-max").

    Returns an ``Explanation`` (a JSON-ready dict): ``program``, ``probs``, ``target``,
    ``exact_gradient`` and ``methods[key]`` with ``samples``, ``terms``, ``aggregate``, ``output``,
    ``loss``, ``gradient`` and ``difference`` (gradient minus the exact gradient).
    """
    own = layer.estimator if isinstance(layer, BlackBox) else None
    program = layer.program if isinstance(layer, BlackBox) else layer
    if program is None:
        program = blog_program()
        probs = probs or tuple(torch.tensor(p, dtype=torch.float64) for p in DEFAULT_PROBS)
        target = DEFAULT_TARGET if target is None else target
    if not isinstance(program, BaseProgram):
        raise TypeError(f"explain(layer, ...): expected a bp.BlackBox, a bp.Program or None, got {type(program).__name__}")
    check_program(program)
    leaves = leaf_probabilities(program, probs)
    if target is None:
        raise ValueError("explain(..., target=...): give the labelled output value, e.g. target=3")
    target_index = BlackBox(program).encode_target([target], 1)
    keys = list(METHODS) if methods is None else list(methods)
    unknown = [k for k in keys if k not in METHODS]
    if unknown:
        raise ValueError(f"explain(methods=...): unknown method(s) {unknown}; valid: {', '.join(METHODS)}")
    context = m.Context(program, leaves, target_index, seed)
    exact = m.exact(context)
    context.exact_gradient = exact["gradient"]
    settings = {"num_samples": num_samples, "semiring": semiring, "indecater_samples": indecater_samples,
                "nasr_batch": nasr_batch, "anesi_steps": anesi_steps}
    results: dict[str, Any] = {}
    for key in keys:
        try:
            results[key] = exact if key == "exact" else m.run(key, context, settings)
        except (ValueError, TypeError) as error:  # e.g. a leave-one-out baseline with k=1: shown on the page
            results[key] = {"key": key, "error": str(error), "gradient": None}
        results[key]["label"] = METHODS[key]
    if own is not None:
        results["layer"] = m.generic(context, own, getattr(layer, "state", None))
        results["layer"]["label"] = f"Your layer: {own!r}"
    for result in results.values():
        if result["gradient"] is None:
            continue
        result["difference"] = [[g - e for g, e in zip(gs, es, strict=True)]
                                for gs, es in zip(result["gradient"], exact["gradient"], strict=True)]
    return Explanation(finite(dict(
        program=describe_program(program),
        probs=[p.detach().tolist() for p in leaves],
        target=jsonable(target),
        target_index=int(target_index.item()),
        seed=seed,
        settings=settings,
        exact_gradient=exact["gradient"],
        methods=results,
        order=list(results),
    )))


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (a gradient where p(y) = 0) replaced by None, as JSON needs."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def check_program(program: BaseProgram) -> None:
    """Raise unless every input is Discrete, the output Discrete and the product space small."""
    if not all(isinstance(s, Discrete) for s in program.inputs) or not isinstance(program.output, Discrete):
        raise ValueError(
            f"explain: program {program.name!r} has inputs {program.inputs!r} and output {program.output!r}; "
            "explain needs Discrete inputs and a Discrete output (the tasks with small discrete inputs, "
            "e.g. sum2, mult2, leaf-dt)"
        )
    size = math.prod(sizes(program))
    if size > MAX_TUPLES:
        raise ValueError(
            f"explain: program {program.name!r} has {size:,} input tuples, above {MAX_TUPLES:,}; exact "
            "enumeration (the reference every method is compared with) needs a smaller program"
        )


def leaf_probabilities(program: BaseProgram, probs: SequenceABC[Any]) -> list[torch.Tensor]:
    """One float64 leaf tensor ``[classes]`` with requires_grad per input, validated against its space."""
    if len(probs) != len(program.inputs):
        raise TypeError(
            f"explain: program {program.name!r} takes {len(program.inputs)} input(s) but {len(probs)} "
            "probability vector(s) were given; pass one per input, in order"
        )
    leaves = []
    for position, (size, value) in enumerate(zip(sizes(program), probs, strict=True)):
        tensor = torch.as_tensor(value, dtype=torch.float64).detach().reshape(-1)
        if tensor.shape[0] != size:
            raise ValueError(
                f"explain: input {position} has {size} classes but {tensor.shape[0]} probabilities "
                f"were given ({tensor.tolist()}); give one per class"
            )
        leaves.append(tensor.clone().requires_grad_(True))
    return leaves


def describe_program(program: BaseProgram) -> dict[str, Any]:
    try:
        names = list(inspect.signature(program.fn).parameters)
    except (TypeError, ValueError):
        names = []
    if len(names) != len(program.inputs) or any(n.startswith("*") for n in names):
        names = [f"x{i + 1}" for i in range(len(program.inputs))]
    try:
        source = inspect.getsource(program.fn)
    except (OSError, TypeError):
        source = repr(program.fn)
    assert isinstance(program.output, Discrete)
    return {
        "name": program.name,
        "source": source,
        "inputs": [{"name": n, "values": [jsonable(v) for v in s.values]}
                   for n, s in zip(names, program.inputs, strict=True) if isinstance(s, Discrete)],
        "outputs": [jsonable(v) for v in program.output.values],
    }
