"""The forward-backward recursion behind ``Fold.log_distribution``, with a hand-written backward.

Forward, per position t (states alive before: a; after: s'; symbols k):

    alpha_t(s') = sum_{a, k : table[a, k] = s'} alpha_{t-1}(a) p_t(k)

a scatter-add of the outer product alpha_{t-1} x p_t into the states reached (failed transitions and
pruned states go to a discarded column). Backward, with g_t = dL/d alpha_t and
G_t(a, k) = g_t(table[a, k]) (0 for the discarded column):

    dL/dp_t(k) = sum_a alpha_{t-1}(a) G_t(a, k),    g_{t-1}(a) = sum_k p_t(k) G_t(a, k)

two batched matrix products per position. Writing the backward by hand records no autograd graph
of ~10 operations per position (the forward runs under no_grad): 25-35% less time per batch than
the same recursion under autograd on sum-256 / sum-1024 (``benchmarks/fold_speed.py``).
The gradient is exact for the (possibly pruned) recursion that ran; ``tests/test_fold.py`` checks it
against enumeration.
"""

from __future__ import annotations

from typing import Any, final

import torch
from torch.autograd.function import once_differentiable

__all__ = ["propagate"]


@final
class _Propagate(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, probs: torch.Tensor, fold: Any, min_mass: float, max_states: int | None,
                live: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, _ = probs.shape
        device = probs.device
        ids = torch.tensor([fold.init_id], dtype=torch.long)
        alpha = probs.new_ones(batch, 1)
        truncated = probs.new_zeros(batch)
        alphas: list[torch.Tensor] = []
        columns: list[torch.Tensor] = []
        for position in range(length):
            targets = fold.expand(ids).reshape(-1)  # [A * K], -1 where the step failed
            ok = targets >= 0
            if bool(ok.all()):
                ids_next, cols = torch.unique(targets, return_inverse=True)
            else:
                ids_next, inverse = torch.unique(targets[ok], return_inverse=True)
                cols = torch.full_like(targets, ids_next.shape[0])  # the discarded column
                cols[ok] = inverse
            width = ids_next.shape[0]
            outer = (alpha.unsqueeze(2) * probs[:, position].unsqueeze(1)).reshape(batch, -1)
            cols_dev = cols.to(device)
            nxt = probs.new_zeros(batch, width + 1).index_add_(1, cols_dev, outer)[:, :width]
            if min_mass > 0.0 or (max_states is not None and width > max_states):
                peak = nxt.amax(0)
                keep = peak >= min_mass
                if max_states is not None and int(keep.sum()) > max_states:
                    keep = torch.zeros_like(keep)
                    keep[peak.topk(max_states).indices] = True
                if not bool(keep.all()):
                    truncated += nxt[:, ~keep].sum(1)
                    kept = int(keep.sum())
                    remap = torch.full((width + 1,), kept, dtype=torch.long, device=device)
                    remap[keep.nonzero().squeeze(1)] = torch.arange(kept, device=device)
                    cols_dev = remap[cols_dev]
                    nxt, ids_next = nxt[:, keep], ids_next[keep.cpu()]
            alphas.append(alpha)
            columns.append(cols_dev)
            alpha, ids = nxt, ids_next
            live.append(int(ids.shape[0]))
        ctx.alphas, ctx.columns = alphas, columns
        ctx.save_for_backward(probs)
        ctx.mark_non_differentiable(ids, truncated)
        return alpha, ids, truncated

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_alpha: torch.Tensor, *_: Any) -> tuple[torch.Tensor | None, ...]:
        (probs,) = ctx.saved_tensors
        batch, length, classes = probs.shape
        grad = torch.zeros_like(probs)
        g = grad_alpha
        for position in reversed(range(length)):
            previous, cols = ctx.alphas[position], ctx.columns[position]
            padded = torch.cat([g, g.new_zeros(batch, 1)], 1)
            gathered = padded[:, cols].view(batch, previous.shape[1], classes)  # [B, A, K]
            grad[:, position] = torch.bmm(previous.unsqueeze(1), gathered).squeeze(1)
            g = torch.bmm(gathered, probs[:, position].unsqueeze(2)).squeeze(2)
        return grad, None, None, None, None


def propagate(probs: torch.Tensor, fold: Any, min_mass: float, max_states: int | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """``(alpha_n [B, A], state ids [A], truncated [B], live states per position)`` for float64 ``probs[B, n, K]``."""
    live: list[int] = []
    alpha, ids, truncated = _Propagate.apply(probs, fold, min_mass, max_states, live)
    return alpha, ids, truncated, live
