"""Substitution ISED: per-variable substitution into shared sampled contexts, summarised ISED-style.

Why plain ISED fades with the input dimension: its k tuples are drawn jointly, so on sum16 the
target sum is hit by a few tuples whose 16 digits are all nearly random, and the credit a digit
gets from w(y) is mostly noise (and the product weights of 16-digit tuples are dominated by one
tuple). Substitution ISED gives every value of every variable a direct, separate signal.

For each example draw N *contexts* x_1..x_N ~ prod_j p_j (optionally the first is the mode,
argmax p). For each variable d and each value v, evaluate the program on the context with x_d
overwritten by v, and summarise per variable, ISED-style (add-mult shown):

    w_d(y) = sum_v p_d(v) * sum_s rho_{d,s} * 1[P(x_s with x_d = v) = y]
    q_d(y) = w_d(y) / sum_y' w_d(y')                         (ISED's L1 normalisation)

with the context weight rho_{d,s} = 1/N ("uniform": a Monte-Carlo average over contexts,
duplicates counted) or rho_{d,s} = prod_{j != d} p_j(x_{s,j}) over the distinct contexts of
variable d ("probability": ISED's own weighting, exact when the contexts cover the rest of the
space). Each q_d(y) estimates p(y) = sum_v p_d(v) P(y | x_d = v), with the rest weights detached,
so the gradient flows into p_d only. The loss is

    value    = -mean_d log q_d(y)                      (reads as -log p(y))
    gradient = -sum_d  grad_{p_d} log q_d(y)           (an estimate of -grad log p(y))

since grad log p(y) = sum_d grad_{p_d} log p(y) holds for independent variables.

Why it should work: for variable d the credit goes exactly to the values v that complete the
sampled context to the label, weighted by p_d(v) and normalised per example (a log-likelihood, not a
probability, so examples with small p(y) still teach). On sum-n with one context, the pseudo-label
of digit d is y - sum of the other digits, i.e. the right digit whenever the context is right.

``summary="joint"`` instead runs ISED's own summary (add-mult by default, L1) over the distinct
substituted tuples of all variables together: w(y) = sum_{distinct x, P(x)=y} prod_j p_j(x_j).
Around a context with one wrong digit e, the tuple that fixes e outweighs the tuples that break
another digit d in proportion to p_e(t_e)/p_e(x_e) against p_d(x_d - delta)/p_d(x_d), so the joint
summary explains away; ``weighting`` does not apply to it.

Measured (results/efficiency.md, one seed, LeNet, one CPU thread): at k=10n this estimator does NOT
remove ISED's limit. With one context per example (k=160 on sum16) the pseudo-label y - sum_{-d}
of a random context is a draw from the likelihood, almost flat over 0..9 while the other 15
digits are unknown (noise sd ~16 against a range of 10), and the network stays at chance (sum16,
8 epochs: 9.7% digit accuracy, where ISED reaches 20-30%). Contexts at the mode (include_mode)
deadlock at initialisation: an untrained network predicts one class everywhere, so only labels
in a window of 10 ever get a hit. It needs several contexts per example (k=100n) to estimate
P(y | x_d = v) for more than one v.

Budget: one context costs 1 + sum_d (|X_d| - 1) distinct program calls (the unchanged context is
shared by every d), so N = num_samples // (1 + sum_d (|X_d| - 1)) contexts fit in ``num_samples``
calls per example; sum16 has 145 distinct tuples per context, so k=160 buys N=1, k=1600 N=11.

Example (two variables, exact with full coverage):
    >>> import torch, blackprop as bp
    >>> d3 = bp.Discrete(range(3))
    >>> add = bp.Program(lambda a, b: a + b, inputs=(d3, d3), output=bp.Discrete(range(5)))
    >>> layer = bp.BlackBox(add, SubstitutionISED(num_samples=500, weighting="probability"), seed=0)
    >>> q = layer(torch.tensor([[.1, .6, .3]]), torch.tensor([[.2, .1, .7]]))
    >>> [round(x, 4) for x in q.squeeze().tolist()]   # equals bp.Exact's
    [0.02, 0.13, 0.19, 0.45, 0.21]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..beliefs import Beliefs
from ..program import FAILED, Program
from ..semirings import semiring
from ._base import Estimator, check_choice, check_positive_int, nll_of_target
from .ised import ISED, first_occurrences

__all__ = ["SubstitutionISED", "calls_per_context"]

WEIGHTINGS = ("uniform", "probability")
SUMMARIES = ("per-variable", "joint")
LOG_FLOOR = -100.0  # log q clamp, as nll_of_target and torch's BCE


@dataclass(frozen=True)
class SubstitutionISED(Estimator):
    """ISED with per-variable substitution into N shared contexts (N from the call budget).

    Args:
        num_samples: k, the budget of distinct program evaluations per example; must be at
            least one context's worth, 1 + sum_d (|X_d| - 1) (145 for sum16).
        semiring: "add-mult" (default), "max-mult" or "min-max", as ISED.
        weighting: "uniform" (contexts averaged, counted with multiplicity; default) or
            "probability" (distinct contexts weighted by their probability, ISED-style).
        include_mode: make the first context the most likely tuple (argmax per variable)
            instead of a sample: structured sampling around the current mode.
    """

    num_samples: int = 160
    semiring: str = "add-mult"
    weighting: str = "uniform"
    include_mode: bool = False
    summary: str = "per-variable"

    name: ClassVar[str] = "ised-sub"
    differentiable_forward: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_positive_int("SubstitutionISED", "num_samples", self.num_samples)
        semiring(self.semiring)
        check_choice("SubstitutionISED", "weighting", self.weighting, WEIGHTINGS)
        check_choice("SubstitutionISED", "summary", self.summary, SUMMARIES)

    # --- sampling ---------------------------------------------------------------------------
    def num_contexts(self, beliefs: Beliefs) -> int:
        """N = num_samples // (calls per context); raises when not even one context fits."""
        per_context = calls_per_context(beliefs)
        if self.num_samples < per_context:
            raise ValueError(
                f"SubstitutionISED(num_samples=...): one context needs {per_context} program calls per example "
                f"(1 + sum over variables of (values - 1)), got num_samples={self.num_samples}; raise num_samples "
                f"to >= {per_context} or use ISED"
            )
        return self.num_samples // per_context

    def contexts(self, beliefs: Beliefs, generator: torch.Generator | None) -> torch.Tensor:
        """Context tuples ``[B, N, V]``: samples, the first replaced by the mode if asked."""
        contexts = beliefs.sample(self.num_contexts(beliefs), generator)
        if self.include_mode:
            mode = beliefs.probs.detach().argmax(dim=2).masked_fill(~beliefs.valid, -1)
            contexts = torch.cat([mode.unsqueeze(1), contexts[:, 1:]], dim=1)
        return contexts

    # --- the summaries -----------------------------------------------------------------------
    def substitutions(
        self, program: Program, beliefs: Beliefs, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tuples ``[B, V, C, N, V]`` (context s with variable d set to v), their outputs
        ``[B, V, C, N]`` (-1 where not evaluated) and the contexts ``[B, N, V]``."""
        B, V, C = beliefs.probs.shape
        contexts = self.contexts(beliefs, generator)
        N = contexts.shape[1]
        device = beliefs.device
        values = torch.arange(C, device=device)
        own = torch.eye(V, dtype=torch.bool, device=device)  # own[d, j]: column j is the substituted one
        tuples = torch.where(own.view(1, V, 1, 1, V), values.view(1, 1, C, 1, 1), contexts.view(B, 1, 1, N, V))
        usable = beliefs.valid.unsqueeze(2) & (values.view(1, 1, C) < beliefs.sizes.view(1, V, 1))  # [B, V, C]
        keep = usable.unsqueeze(3).expand(B, V, C, N)
        if self.summary == "joint":  # each distinct tuple once (the context itself recurs for every d)
            keep = keep & first_occurrences(tuples.reshape(B, V * C * N, V)).view(B, V, C, N)
        elif self.weighting == "probability":  # ISED's weighting needs each distinct context of d once
            keep = keep & distinct_contexts(contexts).view(B, V, 1, N)
        outputs = torch.full((B, V, C, N), FAILED, dtype=torch.long, device=device)
        outputs[keep] = program.evaluate(tuples[keep])
        return tuples, outputs, contexts

    def log_summary(self, program: Program, beliefs: Beliefs, generator: torch.Generator | None) -> torch.Tensor:
        """The joint summary: ISED's normalised log w(y) ``[B, |outputs|]`` over the distinct substitutions."""
        tuples, outputs, _ = self.substitutions(program, beliefs, generator)
        B, V, C, N, _ = tuples.shape
        return self._summariser().summarise(program, beliefs, tuples.reshape(B, V * C * N, V), outputs.reshape(B, -1))

    def log_summaries(self, program: Program, beliefs: Beliefs, generator: torch.Generator | None) -> torch.Tensor:
        """Per-variable normalised log q_d(y) ``[B, V, |outputs|]`` (-inf rows for padded variables)."""
        tuples, outputs, _ = self.substitutions(program, beliefs, generator)
        B, V, C, N, _ = tuples.shape
        # One ISED summary per (example, variable d): beliefs whose variable d is live and whose
        # other variables are detached ("probability") or weigh 1 ("uniform").
        live = torch.eye(V, dtype=torch.bool, device=beliefs.device).view(1, V, V, 1)
        rest = beliefs.log_probs.detach() if self.weighting == "probability" else torch.zeros_like(beliefs.log_probs)
        log_probs = torch.where(live, beliefs.log_probs.unsqueeze(1), rest.unsqueeze(1))  # [B, d, V, C]
        per_variable = Beliefs(
            probs=beliefs.probs.unsqueeze(1).expand(B, V, V, C).reshape(B * V, V, C),
            log_probs=log_probs.reshape(B * V, V, C),
            valid=beliefs.valid.unsqueeze(1).expand(B, V, V).reshape(B * V, V),
            sizes=beliefs.sizes,
        )
        log_q = self._summariser().summarise(
            program, per_variable, tuples.reshape(B * V, C * N, V), outputs.reshape(B * V, C * N)
        )
        return log_q.reshape(B, V, -1)

    def _summariser(self) -> ISED:
        return ISED(num_samples=self.num_samples, semiring=self.semiring, normalize="l1")

    def forward(self, program: Program, beliefs: Beliefs, *, generator: Any, state: Any) -> torch.Tensor:
        """Joint: q(y). Per-variable: mean_d q_d(y) as the value, sum_d grad q_d(y) (an estimate of
        grad p(y)) as the gradient."""
        if self.summary == "joint":
            return self.log_summary(program, beliefs, generator).exp()
        q = self.log_summaries(program, beliefs, generator).exp()
        weight = beliefs.valid.to(q.dtype).unsqueeze(2)
        total = (q * weight).sum(dim=1)
        mean = total.detach() / weight.sum(dim=1).clamp(min=1.0)
        return mean + (total - total.detach())

    def loss(
        self, program: Program, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        if self.summary == "joint":
            log_w = self.log_summary(program, beliefs, generator)
            return nll_of_target(pad_outputs(log_w, program, target), target.to(log_w.device))
        log_q = pad_outputs(self.log_summaries(program, beliefs, generator), program, target)
        target = target.to(log_q.device)
        B, V, _ = log_q.shape
        picked = log_q.gather(2, target.view(B, 1, 1).expand(B, V, 1)).squeeze(2).clamp(min=LOG_FLOOR)
        weight = beliefs.valid.to(picked.dtype)
        surrogate = -(picked * weight).sum(dim=1)
        value = surrogate.detach() / weight.sum(dim=1).clamp(min=1.0)
        return (value + (surrogate - surrogate.detach())).mean()


def pad_outputs(log_q: torch.Tensor, program: Program, target: torch.Tensor) -> torch.Tensor:
    """Extend the last dimension to the output space's size when an Open space has just grown."""
    if int(target.max().item()) >= log_q.shape[-1]:
        return torch.nn.functional.pad(log_q, (0, program.output.size - log_q.shape[-1]), value=float("-inf"))
    return log_q


def calls_per_context(beliefs: Beliefs) -> int:
    """Distinct tuples one context yields: 1 + sum over valid variables of (values - 1), max over the batch."""
    extra = ((beliefs.sizes - 1).unsqueeze(0) * beliefs.valid).sum(dim=1)
    return 1 + int(extra.max().item()) if beliefs.batch_size else 1


def distinct_contexts(contexts: torch.Tensor) -> torch.Tensor:
    """Mask ``[B, V, N]``: True at the first context whose variables other than d are those of no earlier one."""
    B, N, V = contexts.shape
    own = torch.eye(V, dtype=torch.bool, device=contexts.device)
    rests = contexts.unsqueeze(1).masked_fill(own.view(1, V, 1, V), -2)  # [B, d, N, V] with column d blanked
    return first_occurrences(rests.reshape(B * V, N, V)).reshape(B, V, N)
