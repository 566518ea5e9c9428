"""ISED: Infer, Sample, Estimate, Descend.

Solko-Breslin, Choi, Li, Velingker, Alur, Naik and Wong, "Data-Efficient Learning with Neural
Programs", NeurIPS 2024.

For each example draw k symbol tuples x_s ~ prod_v p_v, run the program, and summarise the
matching tuples in a semiring (default add-mult):

    w(y) = sum_{s : P(x_s) = y}  prod_v p_v(x_{s,v})                  (weights="probability")
    w(y) = 1/k sum_{s : P(x_s) = y}  prod_v p_v(x_{s,v}) / q_v(x_{s,v})  (weights="importance")

normalise w over outputs (L1: w / sum w; L2: w / ||w||_2; or none) and take a loss against the
label, -log q(y) ("nll") or binary cross-entropy ("bce"). Gradients flow through the
probabilities in w only; the program is never differentiated. Everything is in log space.

The default is importance weights with one-site exploration ("auto", below), add-mult, L1 and NLL,
and exhaustive evaluation when the budget covers the space (below); the paper's variant (probability
weights; its reference code used L2 and BCE) is one setting away.

What probability weights estimate (with add-mult, L1, NLL). The tuples are already drawn
in proportion to p(x), so weighing them by p(x) again counts each twice: as k grows, w(y)/k tends
to Q2(y) = sum_{x : P(x) = y} p(x)^2, the loss to -log of the normalised Q2(y) / sum_y' Q2(y'),
and its gradient to *half* the gradient of that, not to the gradient of -log p(y). With many
variables the single most probable matching tuple takes nearly all of w(y).

Importance weights (``weights="importance"``, q the detached distribution a tuple was drawn
from) make w(y) an unbiased estimate of p(y) whose gradient is the score-function estimate. With
L1 the summary is divided by the weight of all k draws, failed ones included (its value is 1), so
the loss -log q(y) has the gradient

    -1/|H_y| sum_{s in H_y} grad log p(x_s)  +  1/k sum_s grad log p(x_s)

(H_y the draws giving y): a self-normalised estimate of -grad log p(y) plus a zero-mean control
variate. Dividing by the successful outputs only would estimate p(y | no failure) and reward
tuples that make the program fail. With "none" the summary is not capped: p/q can exceed 1.

One-site exploration (``site_exploration=m`` or "auto"; add-mult, no dedup): a share m of the k draws
has one position redrawn uniformly from its classes, so a network that is confident and wrong on
some class still sees tuples that correct it ("auto": m = min(0.5, 5n/k)). The position is chosen
uniformly among the explorable ones: valid and not a point mass (a one-hot input, such as where a
sudoku digit sits, would only give draws with p = 0). Every draw is weighed by p/q, q its mixture,

    q(x) = q_0(x) [ (1 - m) + m / n_e * sum_{j explorable} u_j(x_j) / q_0,j(x_j) ]

(q_0 the per-variable proposal, p or its ``exploration`` mix; u_j uniform over position j's
classes), so w(y) stays unbiased. A draw of a class with p = 0 has weight 0. With probability
weights (an explicit m; "auto" gives them none) each draw weighs p(x) times the detached p(x)/q(x),
over k: an unbiased estimate of Q2(y), the quantity the paper's weights estimate from draws of p,
with the same gradient per draw (p(x) grad log p(x) times the detached ratio).

Exhaustive evaluation within the budget (``enumerate_within_budget=True``, the default; importance
weights only). When the inputs span at most k tuples (``Beliefs.space_size``, e.g. two digits at
k = 100), each tuple is evaluated once and summed exactly: w(y) = p(y), the value the importance
estimate tends to, with no sampling noise and one program call per tuple of the space per batch
(memoised), not k per example. The loss is then the exact -log p(y), as ``bp.Exact`` computes it.
Chosen on validation (rows in experiments/ised_default/research.jsonl, "session-26 probe"): 1,500
sum2 examples, one epoch at lr 1e-3, mean of 3 seeds: 79.4% against 67.1% (draws with site
exploration) and 36.1% (draws without); equal at recipe 2, seed 0: 98.5% (Exact) against 95.9% (draws
with site exploration). Probability weights keep drawing: their quantity is not p(y).

Structured outputs (a ``Product`` output space): each component j is summarised on its own,
giving ``[B, m, C]``; the loss is the mean over components (and the batch).

Worked example, probability weights: p_a = [.1, .6, .3], p_b = [.2, .1, .7], P = a + b and the samples (1,2), (1,0),
(2,1) give w(3) = .6*.7 + .3*.1 = .45 and w(1) = .6*.2 = .12.

Example:
    >>> import torch, blackprop as bp
    >>> add = bp.Program(lambda a, b: a + b, (bp.Discrete(range(3)),) * 2, bp.Discrete(range(5)))
    >>> layer = bp.BlackBox(add, bp.ISED(num_samples=50), seed=0)
    >>> p = torch.softmax(torch.zeros(2, 3, requires_grad=True), -1)
    >>> layer.loss(p, p, target=[2, 4]).backward()
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, final

import torch

from .._math import log1mexp, safe_log
from ..beliefs import Beliefs
from ..program import BaseProgram
from ..semirings import SEMIRINGS
from ..spaces import Product
from ._base import Constraint, Estimator, between, choice, nll_of_target, pad_outputs, positive, setting
from .exact import Exact

__all__ = ["ISED"]


AUTO_SITE_DRAWS_PER_POSITION = 5  # site_exploration="auto": about 5 one-site draws per input position
EXACT = Exact()  # the exhaustive sum ISED uses when k draws would cover the input space


@final
@dataclass(frozen=True)
class ISED(Estimator):
    """ISED with ``num_samples`` tuples per example.

    Args:
        num_samples: k, tuples drawn per example.
        semiring: "add-mult" (default), "max-mult" or "min-max".
        dedup: count each distinct sampled tuple once per example (True) or with its
            multiplicity (False, as the reference code did).
        normalize: "l1" (default), "l2" (the reference's) or "none".
        loss_fn: "nll" (-log q(y) on the normalised summary) or "bce" (binary cross-entropy against
            the one-hot label, averaged over outputs, as the reference code did).
        exploration: draw each symbol from (1 - e) p + e uniform instead of p (the summary still
            weighs tuples by p), so outputs the network has stopped sampling are still seen.
        weights: "importance" (the default: p(x)/q(x), q the sampling distribution, an unbiased
            estimate of p(y); see the module docstring) or "probability" (the paper's: a matching tuple
            weighs p(x)). "importance" needs the add-mult semiring and dedup=False. The paper's ISED
            as its reference code ran it is ``bp.estimator("ised-paper")`` (probability weights, L2, BCE).
        site_exploration: "auto" (the default) or a share m in [0, 1) of the draws with one uniformly chosen position redrawn
            uniformly (see the module docstring; needs add-mult and dedup=False); "auto": m = min(0.5, 5 n / k),
            about 5 one-site draws per input position, n the most explorable positions of an example in the batch
            (with probability weights, "auto" is 0).
        enumerate_within_budget: with importance weights, when the inputs span at most k tuples, evaluate
            every tuple once and sum p(y) exactly instead of drawing (see the module docstring); False
            always draws.
    """

    num_samples: int = setting(100, positive)
    semiring: str = setting("add-mult", choice(*SEMIRINGS))
    dedup: bool = False
    normalize: str = setting("l1", choice("l1", "l2", "none"))
    loss_fn: str = setting("nll", choice("nll", "bce"))
    exploration: float = setting(0.0, between(0, 1))
    weights: str = setting("importance", choice("probability", "importance"))
    site_exploration: float | Literal["auto"] = setting(
        "auto", Constraint(lambda v: v == "auto" or 0 <= v < 1, "'auto' or a number in [0, 1)"))
    enumerate_within_budget: bool = True

    name: ClassVar[str] = "ised"
    differentiable_forward: ClassVar[bool] = True

    def check(self) -> None:
        if self.site_exploration not in (0, "auto") and (self.semiring != "add-mult" or self.dedup):
            raise ValueError(
                f"ISED(site_exploration=...): redrawn tuples are accounted for by weighing each draw by p/q, which "
                f"needs semiring='add-mult' and dedup=False, got semiring={self.semiring!r}, dedup={self.dedup!r}"
            )
        if self.site_exploration not in (0, "auto") and self.weights == "probability" and self.exploration > 0:
            raise ValueError(
                "ISED(weights='probability', site_exploration=...): probability weights weigh exploration draws by "
                "p alone, so they cannot be corrected for redrawn sites too; set exploration=0 or weights='importance'"
            )
        if self.weights == "importance" and (self.semiring != "add-mult" or self.dedup):
            raise ValueError(
                f"ISED(weights='importance'): estimates p(y) = E[1[P(x) = y]], which needs semiring='add-mult' "
                f"and dedup=False (every draw counted), got semiring={self.semiring!r}, dedup={self.dedup!r}; for "
                f"another semiring or dedup set weights='probability' (or use bp.estimator('ised-paper', ...))"
            )

    def log_summary(self, program: BaseProgram, beliefs: Beliefs, generator: torch.Generator | None) -> torch.Tensor:
        """Normalised log w(y) ``[B, |outputs|]`` from one round of sampling (or the exact sum, when
        ``enumerates`` the space)."""
        if self.enumerates(program, beliefs):
            # w(y) = p(y) exactly; with L1 the total weight is sum_x p(x) = 1 (failed tuples included)
            log_p = EXACT.log_probs(program, beliefs)
            if self.normalize == "l1":
                return log_p
            return normalise(log_p, "none-uncapped" if self.normalize == "none" else self.normalize)
        tuples, outputs = self.draw(program, beliefs, generator)
        if self.dedup:
            repeats = ~first_occurrences(tuples)
            outputs = outputs.masked_fill(repeats.unsqueeze(2) if outputs.dim() == 3 else repeats, -1)
        return self.summarise(program, beliefs, tuples, outputs)

    def draw(
        self, program: BaseProgram, beliefs: Beliefs, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """k tuples per example ``[B, k, V]`` (the last ``site_draws`` with one position redrawn) and
        the program's outputs for them."""
        tuples = beliefs.sample(self.num_samples, generator, self.exploration)
        draws = self.site_draws(beliefs)
        if draws > 0:
            tuples = redraw_one_site(beliefs, tuples, draws, generator)
        return tuples, program.evaluate(tuples)

    def tuple_scores(self, beliefs: Beliefs, tuples: torch.Tensor) -> torch.Tensor:
        """Log-weight of each tuple ``[B, k]``: log p(x) (``"probability"``) or log p(x)/q(x) - log k."""
        drawn = tuples.shape[2] == beliefs.num_variables  # a row of V class indices, -1 only where invalid
        terms = beliefs.log_prob_terms(tuples, drawn=drawn)
        valid = None if beliefs.dense and drawn else tuples >= 0
        draws = self.site_draws(beliefs)
        if self.weights != "importance":
            log_p = SEMIRINGS[self.semiring].combine(terms, valid)
            if draws == 0:
                return log_p
            # probability weights from the site mixture: p(x) times the detached p(x)/q(x), so that
            # 1/k sum_s p(x_s) [p/q](x_s) is unbiased for Q2(y) = sum_{x: P(x)=y} p(x)^2, the quantity the
            # paper's weights estimate from draws of p (there p/q = 1), with the same gradient per draw
            self._check_own_draws(tuples, draws)
            log_q = log_p.detach() + site_mixture_log_factor(beliefs, tuples, terms.detach(), draws / tuples.shape[1])
            ratio = torch.where(log_p == float("-inf"), log_p, log_p.detach() - log_q)
            return log_p + ratio - math.log(tuples.shape[1])
        if self.exploration == 0:
            # q_0 = p: log q_0 is the same gather, detached, and log p_v/q_0,v is 0 with the gradient of
            # log p_v (-inf where p_v = 0), so the sum over v is taken once, on [B, k]: the same values
            log_q0 = terms.detach()
            log_p = SEMIRINGS[self.semiring].combine(terms, valid)
            scores = torch.where(log_p == float("-inf"), log_p, log_p - log_p.detach()) - math.log(tuples.shape[1])
        else:
            log_q0 = beliefs.proposal_log_prob_terms(tuples, self.exploration)
            # a draw of a class with p = 0 (a redrawn site) has weight 0, not log 0 - log 0 = NaN
            ratio = torch.where(terms == float("-inf"), terms, terms - log_q0)
            scores = SEMIRINGS[self.semiring].combine(ratio, valid) - math.log(tuples.shape[1])
        if draws > 0:
            self._check_own_draws(tuples, draws)
            scores = scores - site_mixture_log_factor(beliefs, tuples, log_q0, draws / tuples.shape[1])
        return scores

    def _check_own_draws(self, tuples: torch.Tensor, draws: int) -> None:
        if tuples.shape[1] != self.num_samples:
            raise ValueError(
                f"ISED.tuple_scores: with site exploration the weights assume the estimator's own "
                f"{self.num_samples} draws per example (the last {draws} with one position redrawn), got "
                f"{tuples.shape[1]}; draw them with ISED.log_summary, or set site_exploration=0"
            )

    def enumerates(self, program: BaseProgram, beliefs: Beliefs) -> bool:
        """Whether this batch is evaluated exhaustively: importance weights, ``enumerate_within_budget``,
        one output (not a ``Product``) and at most k tuples in the input space (``Beliefs.space_size``)."""
        return (self.enumerate_within_budget and self.weights == "importance"
                and not isinstance(program.output, Product) and beliefs.space_size <= self.num_samples)

    def loss_reads_target_only(self, program: BaseProgram, beliefs: Beliefs) -> bool:
        """Whether the loss needs only the target's share of the draws (the default: importance weights,
        L1, NLL, one output, drawn): -log q(y) = -log [sum_{s in H_y} e^score_s / sum_s e^score_s], with
        no summary over every output (``target_log_share``): the same value and gradient, fewer operations."""
        return (self.weights == "importance" and self.normalize == "l1" and self.loss_fn == "nll"
                and not isinstance(program.output, Product) and not self.enumerates(program, beliefs))

    def site_draws(self, beliefs: Beliefs) -> int:
        """How many of the k draws get one position redrawn: round(m k), at least 1 when m > 0; with
        "auto", m = min(0.5, 5 n / k), n the most explorable input positions (``Beliefs.explorable``) of an example in the batch."""
        share = self.site_exploration
        if share == "auto" and self.weights != "importance":
            return 0  # "auto" keeps the paper's probability weights as they were: draws of p only
        if share == "auto":
            positions = beliefs.max_explorable
            share = min(0.5, AUTO_SITE_DRAWS_PER_POSITION * positions / self.num_samples)
        return max(1, round(float(share) * self.num_samples)) if float(share) > 0 else 0

    def summarise(
        self, program: BaseProgram, beliefs: Beliefs, tuples: torch.Tensor, outputs: torch.Tensor
    ) -> torch.Tensor:
        """Aggregate given tuples ``[B, k, V]`` with program outputs ``[B, k]`` into normalised log w."""
        ring = SEMIRINGS[self.semiring]
        scores = self.tuple_scores(beliefs, tuples)
        if self.weights == "importance" and self.normalize == "l1":
            # divide by the weight of all draws, failed ones included: value 1, gradient a zero-mean
            # control variate; normalising over the outputs alone would estimate p(y | no failure)
            # and reward failing tuples
            total = torch.logsumexp(scores, dim=1, keepdim=True)
            if outputs.dim() == 3:
                log_w = summarise_components(ring, scores, outputs, program.output.size, "none-uncapped")
                return log_w - total.unsqueeze(2)
            return ring.aggregate(scores, outputs, program.output.size) - total
        # importance weights p/q can exceed 1 where q != p: "none" leaves them uncapped
        how = "none-uncapped" if self.weights == "importance" and self.normalize == "none" else self.normalize
        if outputs.dim() == 3:  # a Product output: [B, k, m] -> one summary per component
            return summarise_components(ring, scores, outputs, program.output.size, how)
        log_w = ring.aggregate(scores, outputs, program.output.size)
        return normalise(log_w, how)

    def forward(self, program: BaseProgram, beliefs: Beliefs, *, generator: Any, state: Any) -> torch.Tensor:
        return self.log_summary(program, beliefs, generator).exp()

    def loss(
        self, program: BaseProgram, beliefs: Beliefs, target: torch.Tensor, *, generator: Any, state: Any
    ) -> torch.Tensor:
        if self.loss_reads_target_only(program, beliefs):
            tuples, outputs = self.draw(program, beliefs, generator)
            log_q = target_log_share(self.tuple_scores(beliefs, tuples), outputs, target.to(outputs.device))
            return -log_q.clamp(min=-100.0).mean()
        log_q = self.log_summary(program, beliefs, generator)
        target = target.to(log_q.device)
        if log_q.dim() == 3:  # a Product output: mean over components of the per-component loss
            log_q, target = log_q.flatten(0, 1), target.flatten()
        log_q = pad_outputs(log_q, target, program.output.size)
        if self.loss_fn == "nll":
            return nll_of_target(log_q, target)
        return binary_cross_entropy(log_q, target)


def normalise(log_w: torch.Tensor, how: str) -> torch.Tensor:
    """log of w / ||w||_p for p=1 ("l1"), p=2 ("l2"); "none" only caps w at 1 ("none-uncapped": w as is)."""
    if how == "none-uncapped":
        return log_w
    if how == "none":
        return log_w.clamp(max=0.0)
    power = 1.0 if how == "l1" else 2.0
    norm = torch.logsumexp(power * log_w, dim=1, keepdim=True) / power
    norm = norm.masked_fill(torch.isinf(norm), 0.0)  # an example whose samples all failed stays -inf
    return log_w - norm


def summarise_components(
    ring: Any, scores: torch.Tensor, outputs: torch.Tensor, width: int, how: str
) -> torch.Tensor:
    """Per-component normalised log w ``[B, m, width]`` from tuple scores ``[B, k]`` and outputs ``[B, k, m]``."""
    batch, k, m = outputs.shape
    per_component = outputs.permute(0, 2, 1).reshape(batch * m, k)
    repeated = scores.unsqueeze(1).expand(batch, m, k).reshape(batch * m, k)
    log_w = ring.aggregate(repeated, per_component, width)
    return normalise(log_w, how).reshape(batch, m, width)


def redraw_one_site(beliefs: Beliefs, tuples: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """The last ``count`` of the k draws ``[B, k, V]`` get one explorable position (``Beliefs.explorable``:
    valid, not a point mass) redrawn uniformly from its classes."""
    B, k, V = tuples.shape
    explorable = beliefs.explorable
    if explorable is None:
        choosable = torch.ones(B, V, dtype=beliefs.probs.dtype, device=tuples.device)
    else:
        choosable = torch.where(explorable.any(dim=1, keepdim=True), explorable, torch.ones_like(explorable))
        choosable = choosable.to(beliefs.probs.dtype)
    position = torch.multinomial(choosable, count, replacement=True, generator=generator)  # [B, count]
    uniform = torch.rand(B, count, generator=generator, device=tuples.device, dtype=beliefs.probs.dtype)
    size = beliefs.common_size
    if size is not None:  # every variable has the same class count: no per-position lookup
        value = (uniform * size).long().clamp(max=size - 1)
    else:
        sizes = beliefs.sizes[position]
        value = (uniform * sizes).long().clamp(max=sizes - 1)
    if explorable is None:  # every row has positions to redraw: write into a copy
        out = tuples.clone()
        out[:, k - count :].scatter_(2, position.unsqueeze(2), value.unsqueeze(2))
        return out
    tail = tuples[:, k - count :]
    redrawn = tail.scatter(2, position.unsqueeze(2), value.unsqueeze(2))
    redrawn = torch.where(explorable.any(dim=1).view(B, 1, 1), redrawn, tail)  # a row with nothing to redraw
    return torch.cat([tuples[:, : k - count], redrawn], dim=1)


def site_mixture_log_factor(beliefs: Beliefs, tuples: torch.Tensor, log_q0: torch.Tensor, share: float) -> torch.Tensor:
    """log[(1 - m) + m / n_e sum_j u_j(x_j) / q_0,j(x_j)] per draw ``[B, k]``: log q(x) - log q_0(x), the
    sum over the n_e explorable positions j (``Beliefs.explorable``), the ones ``redraw_one_site`` picks."""
    log_sizes = beliefs.log_sizes if beliefs.log_sizes.dtype == log_q0.dtype else beliefs.sizes.to(log_q0.dtype).log()
    explorable = beliefs.explorable
    if explorable is None and tuples.shape[2] == beliefs.num_variables:  # all V explorable in every draw
        log_mean = torch.logsumexp(-log_q0 - log_sizes, dim=2) - math.log(tuples.shape[2])
    else:
        valid = (tuples >= 0) & (beliefs.valid if explorable is None else explorable).unsqueeze(1)
        log_ratio = (-log_q0 - log_sizes).masked_fill(~valid, float("-inf"))
        count = valid.sum(dim=2)
        log_mean = torch.logsumexp(log_ratio, dim=2) - count.clamp(min=1).to(log_q0.dtype).log()
        log_mean = log_mean.masked_fill(count == 0, 0.0)  # nothing redrawn: the site proposal is q_0 itself
    return torch.logaddexp(torch.full_like(log_mean, math.log1p(-share)), log_mean + math.log(share))


def target_log_share(scores: torch.Tensor, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log of the weight of the draws giving each example's target over the weight of all its draws, ``[B]``
    (-inf where no draw gives it, with a zero gradient): ``scores [B, k]``, ``outputs [B, k]`` (-1 failed).

    >>> scores = torch.tensor([[0.0, 0.0, float("-inf"), 0.0]])  # four draws, the third has p = 0
    >>> round(float(target_log_share(scores, torch.tensor([[3, 1, 3, -1]]), torch.tensor([3]))[0].exp()), 4)
    0.3333
    """
    hits = scores.masked_fill(outputs != target.unsqueeze(1), float("-inf"))
    peak = hits.detach().amax(dim=1, keepdim=True)
    peak = peak.masked_fill(torch.isinf(peak), 0.0)
    log_hits = safe_log((hits - peak).exp().sum(dim=1)) + peak.squeeze(1)
    return log_hits - torch.logsumexp(scores, dim=1)


def binary_cross_entropy(log_q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over batch and outputs of -[t log q + (1-t) log(1-q)], logs clamped at -100."""
    one_hot = torch.zeros_like(log_q).scatter_(1, target.unsqueeze(1), 1.0)
    log_q = log_q.clamp(min=-100.0)
    log_not_q = log1mexp(log_q).clamp(min=-100.0)
    return -(one_hot * log_q + (1 - one_hot) * log_not_q).mean()


def first_occurrences(tuples: torch.Tensor) -> torch.Tensor:
    """Mask ``[B, k]``: True at the first copy of each distinct tuple within an example."""
    B, k, V = tuples.shape
    batch_column = torch.arange(B, device=tuples.device).repeat_interleave(k).unsqueeze(1)
    rows = torch.cat([batch_column, tuples.reshape(B * k, V)], dim=1)
    _, inverse = torch.unique(rows, dim=0, return_inverse=True)
    positions = torch.arange(B * k, device=tuples.device)
    first = torch.full((int(inverse.max()) + 1,), B * k, device=tuples.device, dtype=torch.long)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    mask = torch.zeros(B * k, dtype=torch.bool, device=tuples.device)
    mask[first] = True
    return mask.reshape(B, k)
