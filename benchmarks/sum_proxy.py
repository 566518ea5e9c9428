"""A seconds-long stand-in for MNIST sum-n, used to compare estimators before spending MNIST runs.

"Images" are 24-d class prototypes plus Gaussian noise, classified by a small MLP shared by all
images (as LeNet is shared on MNIST); the data sizes follow the paper's sum-n setting (3,750 training
examples of n images for sum16, batch 16, Adam 1e-3). Printed: digit accuracy on 5,000 fresh images
after each epoch. Not MNIST: use it to rank estimators, not to report accuracy.

    python benchmarks/sum_proxy.py --n 16 --epochs 10 --methods "exact,ised,ised?weights=importance,reinforce"
    python benchmarks/sum_proxy.py --n 16 --epochs 20 --methods "equal,adaptive,site,memory,memory-p"

Methods: ``exact`` (-log p(y) by convolving the digit distributions: the exact gradient), any registry
name with settings after ``?`` (k = ``--k-per-digit`` times n, default 10n), and five probes written
here with a vectorised sum instead of ``Program`` calls, self-normalised over the matching draws:

* ``equal``: -mean over the matching draws of log p(x) (REINFORCE-style equal weights; the gradient
  of ``ised?weights=importance`` without its control variate);
* ``adaptive``: as ``equal``, but half the batch's budget is drawn first and the other half goes to
  the examples with the fewest matching draws;
* ``site``: as ``equal``, but every other draw has one uniformly chosen position redrawn uniformly,
  and each matching draw is weighed by p/q (the probe of ``ised?weights=importance&site_exploration=0.5``);
* ``memory`` / ``memory-p``: as ``equal``, plus up to 64 matching tuples remembered per example from
  earlier epochs, weighted by p_now / p_then (``memory``) or by p_now (``memory-p``, ISED-style).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

import blackprop as bp

DIM = 24
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def make(n: int, examples: int, seed: int, noise: float = 1.2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(10, DIM, generator=torch.Generator().manual_seed(1234))
    labels = torch.randint(0, 10, (examples, n), generator=generator)
    return prototypes[labels] + noise * torch.randn(examples, n, DIM, generator=generator), labels


def exact_loss(probs: torch.Tensor, target: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    """-log p(sum = y), the distribution of the sum by repeated convolution ``[B, n, 10]``."""
    batch, n, k = probs.shape
    dist = probs[:, 0]
    for i in range(1, n):
        kernel = probs[:, i].flip(-1).unsqueeze(1)
        dist = torch.nn.functional.conv1d(dist.unsqueeze(0), kernel, padding=k - 1, groups=batch).squeeze(0)
    return -dist.gather(1, target[:, None]).clamp_min(1e-30).log().mean()


class MatchingDraws:
    """The ``equal`` / ``adaptive`` / ``memory`` probes (see the module docstring)."""

    def __init__(self, k: int, mode: str, capacity: int = 64):
        self.k, self.mode, self.capacity = k, mode, capacity
        self.memory: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.generator = torch.Generator().manual_seed(0)

    def draw(self, probs: torch.Tensor, k: int) -> torch.Tensor:
        batch, n, c = probs.shape
        flat = probs.detach().reshape(batch * n, c)
        return torch.multinomial(flat, k, replacement=True, generator=self.generator).reshape(batch, n, k).transpose(1, 2)

    def __call__(self, probs: torch.Tensor, target: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        batch = probs.shape[0]
        if self.mode == "adaptive":
            first = self.draw(probs, self.k // 2)
            hits = (first.sum(-1) == target[:, None]).float()
            need = 1.0 / (1.0 + hits.sum(1))
            share = (need / need.sum() * batch * (self.k - self.k // 2)).floor().long()
            second = self.draw(probs, max(1, int(share.max())))
            used = (torch.arange(second.shape[1])[None, :] < share[:, None]).float()
            tuples = torch.cat([first, second], 1)
            hit = torch.cat([hits, (second.sum(-1) == target[:, None]).float() * used], 1)
        else:
            tuples = self.draw(probs, self.k)
            if self.mode.startswith("site"):  # half the draws get one uniformly chosen position redrawn uniformly
                n = tuples.shape[2]
                redraw = torch.arange(self.k) % 2 == 1
                position = torch.randint(0, n, (batch, self.k), generator=self.generator)
                value = torch.randint(0, 10, (batch, self.k), generator=self.generator)
                swapped = tuples.scatter(2, position.unsqueeze(2), value.unsqueeze(2))
                tuples = torch.where(redraw[None, :, None], swapped, tuples)
            hit = (tuples.sum(-1) == target[:, None]).float()
        log_p = probs.clamp_min(1e-30).log()
        tuple_log_p = log_p.gather(2, tuples.transpose(1, 2)).sum(1)  # [B, k]
        if self.mode.startswith("site"):
            # q(x) = p(x) [1/2 + 1/2 * 1/n sum_j u(x_j) / p_j(x_j)]: importance weight p/q of each draw
            chosen = probs.detach().gather(2, tuples.transpose(1, 2)).transpose(1, 2).clamp_min(1e-30)  # [B, k, n]
            ratio = 0.5 + 0.5 * (0.1 / chosen).mean(2)
            hit = hit / ratio
        if not self.mode.startswith("memory"):
            weight = hit / hit.sum(1, keepdim=True).clamp_min(1e-30)
            return -(weight * tuple_log_p).sum(1).mean()
        loss = probs.sum() * 0
        for b in range(batch):
            example, found = int(index[b]), hit[b] > 0
            proofs, proposal = tuples[b][found], tuple_log_p[b].detach()[found]
            if len(proofs):
                old = self.memory.get(example)
                if old is not None:
                    proofs, proposal = torch.cat([old[0], proofs]), torch.cat([old[1], proposal])
                self.memory[example] = (proofs[-self.capacity :], proposal[-self.capacity :])
            if example not in self.memory:
                continue
            proofs, proposal = self.memory[example]
            now = log_p[b].gather(1, proofs.T).sum(0)
            weight = torch.softmax(now.detach() - (proposal if self.mode == "memory" else 0), 0)
            loss = loss - (weight * now).sum() / batch
        return loss


def registry_loss(n: int, spec: str, k: int) -> Loss:
    name, _, query = spec.partition("?")
    settings: dict[str, Any] = {}
    for pair in filter(None, query.split("&")):
        key, value = pair.split("=")
        settings[key] = {"true": True, "false": False}.get(value, int(value) if value.isdigit() else value)
    settings.setdefault("num_samples", k)
    program = bp.Program(lambda *xs: sum(xs), inputs=(bp.Discrete(range(10)),) * n,
                         output=bp.Discrete(range(9 * n + 1)), cache_limit=200_000)
    layer = bp.BlackBox(program, bp.estimator(name, **settings), seed=0)
    return lambda probs, target, _: layer.loss(*probs.unbind(1), target=target)


def loss_for(n: int, spec: str, k: int) -> Loss:
    if spec == "exact":
        return exact_loss
    if spec in ("equal", "adaptive", "memory", "memory-p", "site"):
        return MatchingDraws(k, spec)
    return registry_loss(n, spec, k)


def train(n: int, loss: Loss, examples: int, epochs: int, seed: int = 0) -> list[float]:
    features, labels = make(n, examples, seed)
    test_features, test_labels = make(1, 5000, seed + 99)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(DIM, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    accuracy = []
    for _ in range(epochs):
        order = torch.randperm(examples)
        for start in range(0, examples, 16):
            index = order[start : start + 16]
            probs = torch.softmax(model(features[index]), -1)
            value = loss(probs, labels[index].sum(1), index)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        with torch.no_grad():
            accuracy.append((model(test_features[:, 0]).argmax(-1) == test_labels[:, 0]).float().mean().item())
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--examples", type=int, default=3750)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k-per-digit", type=int, default=10, help="k = this times n")
    parser.add_argument("--methods", default="exact,ised,ised?weights=importance,equal")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for spec in args.methods.split(","):
        start = time.perf_counter()
        curve = train(args.n, loss_for(args.n, spec, args.k_per_digit * args.n), args.examples, args.epochs, args.seed)
        print(f"sum{args.n} k={args.k_per_digit * args.n} {spec}: " + " ".join(f"{a:.3f}" for a in curve) + f"  ({time.perf_counter() - start:.0f}s)",
              flush=True)


if __name__ == "__main__":
    main()
