"""One function per method for ``bp.explain``: call the estimator, then lay out its draws and terms.

Every method's ``output``, ``loss`` and ``gradient`` come from the estimator itself, called through
``bp.BlackBox`` with a generator seeded with ``Context.seed``; the samples are reproduced by
drawing from ``Beliefs.sample`` with a generator seeded the same way (the first thing each
sampling estimator does), and the terms are the library's per-tuple scores (``Beliefs`` log-prob
terms combined by the estimator's semiring). A factor ``[v, c]`` of a term is the probability of
class c of input v.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any, final

import torch

from ..beliefs import Beliefs
from ..blackbox import BlackBox
from ..estimators import ISED, NASR, REINFORCE, ANeSI, Estimator, Exact, IndeCateR, IndeCateRPlus, estimator
from ..program import BaseProgram
from ..semirings import semiring as get_semiring
from ..spaces import Discrete

__all__ = ["Context", "all_tuples", "sizes", "exact", "generic", "jsonable", "run", "top_k"]

MAX_TERMS = 200


@dataclass
@final
class Context:
    program: BaseProgram
    leaves: list[torch.Tensor]
    target_index: torch.Tensor
    seed: int
    exact_gradient: list[list[float]] = field(default_factory=list)

    def inputs(self, copies: int = 1) -> list[torch.Tensor]:
        return [p.unsqueeze(0).expand(copies, -1) for p in self.leaves]

    def beliefs(self, copies: int = 1) -> Beliefs:
        return Beliefs.from_inputs(self.program.inputs, [p.detach() for p in self.inputs(copies)])

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def target_value(self) -> Any:
        return self.program.output.values[int(self.target_index.item())]

    def gradient(self, loss: torch.Tensor) -> list[list[float]]:
        grads = torch.autograd.grad(loss, self.leaves, allow_unused=True)
        return [(torch.zeros_like(p) if g is None else g).tolist() for g, p in zip(grads, self.leaves, strict=True)]

    def evaluate(self, tuples: torch.Tensor) -> list[int]:
        return self.program.evaluate(tuples).tolist()


def seeded_layer(context: Context, estimator: Estimator, state: Any = None) -> BlackBox:
    """A new layer whose generator is seeded with ``context.seed``; learned state (A-NeSI's surrogate) is
    built from the same seed inside ``fork_rng`` (the global RNG is left as it was) unless ``state`` is given."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(context.seed)
        layer = BlackBox(context.program, estimator, seed=context.seed).to(torch.float64)
    if state is not None:
        layer.state = state
    return layer


def call(context: Context, estimator: Estimator, copies: int = 1, state: Any = None) -> dict[str, Any]:
    """The estimator's output vector (mean over copies), loss and gradient; each call on a new seeded layer."""
    with torch.no_grad():
        output = seeded_layer(context, estimator, state)(*context.inputs(copies)).mean(dim=0)
    loss = seeded_layer(context, estimator, state).loss(*context.inputs(copies), target=[context.target_value()] * copies)
    return {"key": estimator.name, "settings": jsonable_settings(estimator), "seed": context.seed,
            "output": output.tolist(), "loss": float(loss.item()), "gradient": context.gradient(loss)}


def jsonable_settings(estimator: Estimator) -> dict[str, Any]:
    return {k: v if isinstance(v, (bool, int, float, str)) or v is None else str(v)
            for k, v in estimator.settings().items()}


def factors(row: list[int]) -> list[list[int]]:
    return [[v, c] for v, c in enumerate(row) if c >= 0]


def exact(context: Context) -> dict[str, Any]:
    result = call(context, Exact())
    tuples = all_tuples(context.program)
    outputs = context.evaluate(tuples)
    beliefs = context.beliefs()
    scores = get_semiring("add-mult").combine(beliefs.log_prob_terms(tuples.unsqueeze(0)), tuples.unsqueeze(0) >= 0)[0]
    order = scores.argsort(descending=True).tolist()[:MAX_TERMS]
    result.update(kind="exact", samples=[], terms=[
        {"output": outputs[i], "value": float(scores[i].exp()), "factors": factors(tuples[i].tolist()),
         "tuple": tuples[i].tolist()} for i in order if outputs[i] >= 0],
        aggregate=result["output"], truncated=len(order) < tuples.shape[0],
        formula="p(y) = sum over every tuple x with P(x) = y of prod_v p_v(x_v); loss -log p(y)")
    return result


def top_k(context: Context, k: int) -> dict[str, Any]:
    """Scallop's top-k proofs: per output keep the k most probable tuples (proofs) and add them.

    The tuples are full assignments of the same variables, so they are mutually exclusive and the
    probability of their disjunction is the sum; the output vector is not normalised; loss -log p_k(y).
    """
    tuples = all_tuples(context.program)
    outputs = torch.tensor(context.evaluate(tuples))
    beliefs = Beliefs.from_inputs(context.program.inputs, context.inputs())
    scores = get_semiring("add-mult").combine(beliefs.log_prob_terms(tuples.unsqueeze(0)), tuples.unsqueeze(0) >= 0)[0]
    kept: list[int] = []
    for y in range(context.program.output.size):
        rows = (outputs == y).nonzero().squeeze(1)
        best = scores.detach()[rows].argsort(descending=True)[:k]
        kept.extend(rows[best].tolist())
    keep = torch.tensor(kept, dtype=torch.long)
    values = torch.zeros(context.program.output.size, dtype=scores.dtype).index_add(0, outputs[keep], scores[keep].exp())
    loss = -values[int(context.target_index.item())].clamp(min=1e-300).log()
    return {"key": f"top-{k}", "kind": "top-k", "settings": {"k": k}, "seed": context.seed, "samples": [],
            "terms": [{"output": int(outputs[i]), "value": float(scores[i].detach().exp()), "factors": factors(tuples[i].tolist()),
                       "tuple": tuples[i].tolist()} for i in kept],
            "aggregate": values.tolist(), "output": values.tolist(), "loss": float(loss.item()),
            "gradient": context.gradient(loss),
            "formula": f"p_{k}(y) = sum of the {k} most probable tuples x with P(x) = y; loss -log p_{k}(y)"}


def ised(context: Context, estimator: ISED) -> dict[str, Any]:
    """ISED's draws exactly as the estimator makes them (its sampling, then the one-site redraws of
    ``site_exploration``, from one generator), each draw's weight from ``ISED.tuple_scores``; or, when
    k covers the input space (``ISED.enumerates``), every tuple with its p(x), as the estimator sums them."""
    from ..estimators.ised import redraw_one_site

    result = call(context, estimator)
    beliefs = context.beliefs()
    if estimator.enumerates(context.program, beliefs):  # k covers the space: no draws, the exact sum
        every = exact(context)
        result.update(
            kind="ised", samples=[], terms=every["terms"], aggregate=every["aggregate"], truncated=every["truncated"],
            semiring=estimator.semiring, weights=estimator.weights,
            formula=(f"k = {estimator.num_samples} covers all {all_tuples(context.program).shape[0]} input tuples, so "
                     "each is evaluated once and w(y) = p(y) = sum over x with P(x) = y of prod_v p_v(x_v), exactly "
                     f"(enumerate_within_budget); output w normalised ({estimator.normalize}); loss "
                     f"{'-log q(y)' if estimator.loss_fn == 'nll' else 'binary cross-entropy'}"))
        return result
    generator = context.generator()
    tuples = beliefs.sample(estimator.num_samples, generator, estimator.exploration)
    redrawn = estimator.site_draws(beliefs)
    if redrawn > 0:
        tuples = redraw_one_site(beliefs, tuples, redrawn, generator)
    outputs = context.evaluate(tuples[0])
    ring = get_semiring(estimator.semiring)
    scores = estimator.tuple_scores(beliefs, tuples)
    aggregate = ring.aggregate(scores, torch.tensor([outputs]), context.program.output.size).exp()[0]
    rows = tuples[0].tolist()
    first_redrawn = estimator.num_samples - redrawn
    importance = estimator.weights == "importance"
    weight = ("1/k prod_v p_v(x_v) / q(x), q the distribution the draw came from" if importance else
              f"{'prod' if ring.times == 'sum' else 'min'}_v p_v(x_v)")
    result.update(
        kind="ised", samples=[{"tuple": r, "output": o, **({"redrawn": True} if i >= first_redrawn else {})}
                              for i, (r, o) in enumerate(zip(rows, outputs, strict=True))],
        terms=[{"output": o, "value": float(s.exp()), "factors": factors(r), "tuple": r, "sample": i}
               for i, (r, o, s) in enumerate(zip(rows, outputs, scores[0], strict=True)) if o >= 0],
        aggregate=aggregate.tolist(), semiring=estimator.semiring, weights=estimator.weights,
        formula=(f"w(y) = {'sum' if ring.plus == 'logsumexp' else 'max'} over samples with P(x) = y of {weight}"
                 + (f"; the last {redrawn} draws have one position redrawn uniformly (site exploration)"
                    if redrawn else "")
                 + f"; output w normalised ({estimator.normalize}"
                 + (", over all draws" if importance and estimator.normalize == "l1" else "")
                 + f"); loss {'-log q(y)' if estimator.loss_fn == 'nll' else 'binary cross-entropy'}"))
    return result


def score_function(context: Context, estimator: REINFORCE) -> dict[str, Any]:
    result = call(context, estimator)
    k = estimator.num_samples
    tuples = context.beliefs().sample(k, context.generator())[0]
    outputs = context.evaluate(tuples)
    target = int(context.target_index.item())
    reward = [1.0 if o == target else 0.0 for o in outputs]
    total = sum(reward)
    baseline = [(total - f) / (k - 1) for f in reward] if estimator.baseline == "leave-one-out" else [0.0] * k
    rows = tuples.tolist()
    result.update(
        kind="reinforce", samples=[{"tuple": r, "output": o, "reward": f, "baseline": b}
                                   for r, o, f, b in zip(rows, outputs, reward, baseline, strict=True)],
        terms=[{"output": target, "value": (f - b) / k, "factors": factors(r), "tuple": r, "sample": i}
               for i, (r, f, b) in enumerate(zip(rows, reward, baseline, strict=True))],
        aggregate=None, estimate=total / k,
        formula=("grad p(y) ~ 1/k sum_s (f_s - b_s) grad log prod_v p_v(x_s,v), f_s = 1[P(x_s) = y], b_s = "
                 + ("mean of the other rewards" if estimator.baseline == "leave-one-out" else "0")
                 + "; p_hat = mean f; loss -log p_hat (its gradient is -grad / p_hat)"))
    return result


def indecater(context: Context, estimator: IndeCateR) -> dict[str, Any]:
    result = call(context, estimator)
    beliefs = context.beliefs()
    blocks = estimator.draw(beliefs, context.generator())[0]  # [D, N, V]
    D, N, _ = blocks.shape
    target = int(context.target_index.item())
    samples: list[dict[str, Any]] = []
    terms: list[dict[str, Any]] = []
    for d in range(D):
        for s, row in enumerate(blocks[d].tolist()):
            samples.append({"tuple": row, "output": context.evaluate(torch.tensor([row]))[0], "block": d, "index": s})
        for c in range(sizes(context.program)[d]):
            swept = blocks[d].clone()
            swept[:, d] = c
            outputs = context.evaluate(swept)
            f_bar = sum(1.0 for o in outputs if o == target) / N
            terms.append({"output": target, "value": float(context.leaves[d][c].detach()) * f_bar / D, "f_bar": f_bar,
                          "factors": [[d, c]], "variable": d, "class": c,
                          "swept": [{"tuple": r, "output": o} for r, o in zip(swept.tolist(), outputs, strict=True)]})
    result.update(kind="indecater", samples=samples, terms=terms, aggregate=None,
                  estimate=sum(t["value"] for t in terms),
                  formula=("p_hat = 1/D sum_d sum_c p_d(c) f_bar(d, c), f_bar(d, c) = mean over the N samples of "
                           "1[P(x with x_d = c) = y]; grad = sum_d sum_c grad p_d(c) f_bar(d, c); loss -log p_hat"
                           + ("; IndeCateR+: each variable d has its own block of N samples"
                              if estimator.variant == "per-variable" else "; one block of N samples shared")))
    return result


def nasr(context: Context, estimator: NASR, copies: int) -> dict[str, Any]:
    result = call(context, estimator, copies=copies)
    tuples = context.beliefs(copies).sample(1, context.generator())[:, 0]  # [B, V]
    outputs = context.evaluate(tuples)
    target = int(context.target_index.item())
    reward = torch.tensor([1.0 if o == target else 0.0 for o in outputs], dtype=torch.float64)
    standardised = ((reward - reward.mean()) / (reward.std(unbiased=False) + estimator.eps)).tolist()
    rows = tuples.tolist()
    result.update(
        kind="nasr", samples=[{"tuple": r, "output": o, "reward": float(f), "standardised": z}
                              for r, o, f, z in zip(rows, outputs, reward.tolist(), standardised, strict=True)],
        terms=[{"output": target, "value": z / copies, "factors": factors(r), "tuple": r, "sample": i}
               for i, (r, z) in enumerate(zip(rows, standardised, strict=True))],
        aggregate=None, batch=copies,
        formula=(f"a batch of {copies} copies of the example, one sample each; r_b = standardised 1[P(x_b) = y]; "
                 "loss value 1 - mean f, gradient of -1/B sum_b r_b log p(x_b)"))
    return result


#: A-NeSI results by (program, probabilities, target, seed, steps): its training is the slow part of a
#: page update, and a semiring or k change leaves it as it was.
ANESI_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


def anesi(context: Context, steps: int) -> dict[str, Any]:
    """Train A-NeSI's surrogate q(y | P) on worlds from its prior around these beliefs, then call it."""
    program = context.program
    key = (program.name, getattr(program.fn, "__qualname__", repr(program.fn)), repr(program.inputs),
           repr(program.output), tuple(tuple(p.tolist()) for p in context.leaves), int(context.target_index.item()),
           context.seed, steps)
    if key not in ANESI_CACHE:
        if len(ANESI_CACHE) >= 32:
            ANESI_CACHE.pop(next(iter(ANESI_CACHE)))
        ANESI_CACHE[key] = train_anesi(context, steps)
    return copy.deepcopy(ANESI_CACHE[key])


def train_anesi(context: Context, steps: int) -> dict[str, Any]:
    estimator = ANeSI(num_samples=200, hidden_size=64, num_layers=2, num_beliefs=64, warmup_steps=0)
    layer = seeded_layer(context, estimator)
    optimiser = torch.optim.Adam(layer.parameters(), lr=3e-3)
    exact_p = torch.tensor(exact_output(context), dtype=torch.float64)
    inputs = [p.detach() for p in context.inputs()]
    history = []
    for step in range(1, steps + 1):
        optimiser.zero_grad()
        layer.loss(*inputs, target=[context.target_value()]).backward()
        optimiser.step()
        if step % max(1, steps // 12) == 0 or step == steps:
            with torch.no_grad():
                q = layer(*inputs)[0]
            history.append({"step": step, "q_target": float(q[int(context.target_index.item())]),
                            "l1_to_exact": float((q - exact_p).abs().sum())})
    result = call(context, estimator, state=layer.state)
    result.update(kind="anesi", samples=[], terms=[], aggregate=None, history=history,
                  training={**{k: jsonable(v) for k, v in estimator.settings().items()}, "steps": steps,
                            "optimiser": "Adam, lr 3e-3"},
                  formula=("q(y | P) is an MLP on the input probabilities P, trained on worlds (P', x ~ P', "
                           "y = program(x)) drawn from a prior fitted around the beliefs seen; output q(y | P); "
                           "loss -log q(y | P) with q held fixed"))
    return result


def exact_output(context: Context) -> list[float]:
    with torch.no_grad():
        return BlackBox(context.program, Exact())(*context.inputs())[0].tolist()


def generic(context: Context, estimator: Estimator, state: Any) -> dict[str, Any]:
    result = call(context, estimator, state=state)
    result.update(kind="generic", samples=[], terms=[], aggregate=None, formula=repr(estimator))
    return result


def run(key: str, context: Context, settings: dict[str, Any]) -> dict[str, Any]:
    k, semiring = settings["num_samples"], settings["semiring"]
    n = settings["indecater_samples"]
    if key in ("top-1", "top-3"):
        return top_k(context, int(key[-1]))
    if key == "ised":  # the library's default; its importance weights need add-mult, other semirings weigh p(x)
        return ised(context, ISED(num_samples=k, semiring=semiring) if semiring == "add-mult"
                    else ISED(num_samples=k, semiring=semiring, weights="probability"))
    if key == "ised-paper":
        paper = estimator("ised-paper", num_samples=k, semiring=semiring)
        assert isinstance(paper, ISED)  # the registry's preset of ISED, never user input
        return ised(context, paper)
    if key in ("reinforce", "reinforce-loo"):
        baseline = "leave-one-out" if key == "reinforce-loo" else "none"
        return score_function(context, REINFORCE(num_samples=k, baseline=baseline))
    if key == "indecater":
        return indecater(context, IndeCateR(num_samples=n))
    if key == "indecater+":
        return indecater(context, IndeCateRPlus(num_samples=n))
    if key == "nasr":
        return nasr(context, NASR(), settings["nasr_batch"])
    if key == "anesi":
        return anesi(context, settings["anesi_steps"])
    raise ValueError(f"explain: unknown method {key!r}")


def jsonable(value: Any) -> Any:
    """Values as JSON can carry them: bool, int, float and str as they are, anything else as str."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def all_tuples(program: BaseProgram) -> torch.Tensor:
    """Every input tuple ``[M, V]`` in lexicographic order."""
    return torch.tensor(list(itertools.product(*(range(n) for n in sizes(program)))), dtype=torch.long)


def sizes(program: BaseProgram) -> list[int]:
    """Class count of every input (Sequence inputs count their element's classes; explain rejects them)."""
    return [s.size if isinstance(s, Discrete) else s.element.size for s in program.inputs]
