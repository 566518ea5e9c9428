"""Black-box layer cost against the network, in one run (issue 19).

    PYTHONPATH=src python benchmarks/layer_speed.py [--threads 1] [--repeats 5] [--batches 40] \\
        [--out benchmarks/results/layer_speed]

Measures, in one process:

* the MNISTNet training step (forward, backward, Adam on 32 images), the unit of every ratio;
* ISED layers (forward + backward, batch 16, k=100 draws, memo warm) of ``Program`` and ``BatchedProgram``
  on sum2/4/8/16 with random logits ``randn``, as in the issue (``enumerate_within_budget=False``, so
  that sum2's 100 tuples are drawn as in earlier rounds; the row "sum2 Program, default" is
  ``bp.ISED()`` as a user gets it, which sums the 100 tuples exactly), and of the ``hwf`` and ``sudoku``
  programs on 16 real examples read by a partly trained network (softmax of ``randn + s * one-hot(true
  symbol)``: s=4 for hwf, about 85% on the true symbol; s=7 for sudoku, about 99%, since a board
  with a misread given rarely has a solution); the sudoku program keeps its task's
  ``cache="batch"``, so its solver runs once per distinct board of every batch;
* an epoch of default ISED (the task's program and k; on sum2 the exact sum) against a supervised
  epoch (NLL of the true symbols) on the same images with the same network, for sum2, sum4 and hwf, and
  for hwf-batched (hwf's program as ``make_hwf_batched_program``, the formula evaluated in tensors, also
  the row "hwf BatchedProgram" above): ``--batches`` batches of 16 (not a full epoch, to fit a shared
  machine), a fresh program (empty memo) in each repetition;
* the Python a ``Program`` layer cannot avoid on sum2/4/8/16: each step's new tuples (its program calls,
  counted by the program's stats during the timing) turned into Python tuples, one call of the program
  each, the outputs back into a tensor (``python_floor``): what the issue allows ("Python entered once
  per distinct tuple that is not yet cached"), timed alone, so the layer's own overhead is the rest.

Every figure is the median of ``--repeats`` repetitions (each the mean over a block of calls), taken
in turns so that machine load hits all alike, in CPU time of this process by default (``--clock
wall`` for elapsed time): with 1 thread on a machine shared with other jobs, CPU time measures the
work done, while elapsed time mostly measures the other jobs. To measure another version of the
library with the same script, put its ``src`` first on PYTHONPATH; the record names where
blackprop was imported from. Writes ``results.jsonl`` (one line per run: commit,
torch version, device, threads) and ``report.md`` (the latest run) under ``--out``.

``--device cuda`` runs every network, belief and layer on the GPU (wall time, the GPU synchronised
around each timed block) and counts, for each layer, the host-device synchronisations of one step
(``torch.cuda.set_sync_debug_mode``): the issue asks for none per tuple, so the count must not grow
with the number of distinct tuples.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import blackprop as bp
from blackprop.models import MNISTNet
from blackprop.run.train import processor
from blackprop.spaces import padded
from blackprop.tasks import get_task
from blackprop.tasks.hwf.tensor_formula import make_hwf_batched_program

BATCH, K = 16, 100


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = time.process_time
DEVICE = torch.device("cpu")


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def timed(fn: Callable[[], Any], calls: int) -> float:
    """Mean seconds of ``calls`` calls of fn (on CUDA, until the GPU has finished them)."""
    synchronize()
    start = clock()
    for _ in range(calls):
        fn()
    synchronize()
    return (clock() - start) / calls


def syncs_per_step(fn: Callable[[], Any]) -> int:
    """Host-device synchronisations in one call of fn (CUDA only): the warnings of sync debug mode."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def medians(steps: dict[str, tuple[Callable[[], Any], int]], repeats: int, warm: bool = True) -> dict[str, float]:
    """Median ms of each step over ``repeats`` rounds, the steps taken in turn within a round."""
    for fn, _ in steps.values() if warm else ():
        fn()  # warm-up (and the memo filled, for layers)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, (fn, calls) in steps.items():
            times[name].append(1000 * timed(fn, calls))
    return {name: statistics.median(values) for name, values in times.items()}


def network_step() -> Callable[[], None]:
    network = MNISTNet().to(DEVICE)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    images = torch.randn(32, 1, 28, 28, device=DEVICE)

    def step() -> None:
        optimizer.zero_grad()
        network(images).log().mean().backward()
        optimizer.step()

    return step


def layer_step(program: Any, beliefs: list[torch.Tensor], target: Any, draws: bool = True) -> Callable[[], None]:
    """ISED forward+backward of ``program`` on leaf probabilities (tensors, or (probs, lengths) pairs);
    ``draws=False``: the default ``bp.ISED``, which sums the space exactly when it has at most k tuples."""
    layer = bp.BlackBox(program, bp.ISED(num_samples=K, enumerate_within_budget=not draws), seed=0)

    def step() -> None:
        inputs = [padded(p.softmax(-1), lengths) if lengths is not None else p.softmax(-1) for p, lengths in beliefs]
        layer.loss(*inputs, target=target).backward()

    return step


def sum_layers(n: int) -> dict[str, Callable[[], None]]:
    digit = bp.Discrete(range(10))
    generator = torch.Generator().manual_seed(n)
    logits = [(torch.randn(BATCH, 10, generator=generator).to(DEVICE).requires_grad_(), None) for _ in range(n)]
    target = torch.randint(0, 9 * n + 1, (BATCH,), generator=generator).to(DEVICE)
    output = bp.Discrete(range(9 * n + 1))
    program = bp.Program(_sum, (digit,) * n, output)
    PROGRAMS[f"sum{n} Program"] = program
    steps = {f"sum{n} Program": layer_step(program, logits, target)}
    if 10**n <= K:
        steps[f"sum{n} Program, default"] = layer_step(bp.Program(_sum, (digit,) * n, output), logits, target, draws=False)
    steps[f"sum{n} BatchedProgram"] = layer_step(bp.BatchedProgram(_sum, (digit,) * n, output), logits, target)
    return steps


def _sum(*digits: Any) -> Any:
    return sum(digits)


PROGRAMS: dict[str, Any] = {}  # the Program layers' programs, whose stats count the calls of each step


def python_floor(n: int, calls: int) -> Callable[[], None]:
    """The part of a ``sum<n> Program`` step no layer can avoid: ``calls`` new tuples (the step's count of
    program calls, from the program's stats) turned into Python tuples, one call of the program each,
    and the outputs back into a tensor. The issue allows Python "once per distinct tuple not yet
    cached"; this times exactly that and nothing else."""
    rows = torch.randint(0, 10, (max(calls, 1), n), generator=torch.Generator().manual_seed(n))

    def step() -> None:
        torch.tensor([_sum(*row) for row in rows.tolist()])

    return step


def half_trained(symbols: torch.Tensor, classes: int, generator: torch.Generator, strength: float) -> torch.Tensor:
    """Logits ``randn + strength * one-hot(symbol)`` (uniform-ish rows where the symbol is -1)."""
    logits = torch.randn(*symbols.shape, classes, generator=generator)
    return logits + strength * torch.nn.functional.one_hot(symbols.clamp(min=0), classes) * (symbols >= 0).unsqueeze(-1)


EPOCH_TASKS = ("sum2", "sum4", "hwf", "hwf-batched")


def hwf_layers() -> dict[str, Callable[[], None]]:
    task = get_task("hwf")
    data = task.data("train", BATCH)
    symbols = data.symbols[:BATCH]
    lengths = (symbols >= 0).sum(dim=1).to(DEVICE)
    logits = half_trained(symbols, 14, torch.Generator().manual_seed(1), 4.0).to(DEVICE).requires_grad_()
    return {"hwf Program": layer_step(task.make_program(), [(logits, lengths)], data.labels[:BATCH]),
            "hwf BatchedProgram": layer_step(make_hwf_batched_program(), [(logits, lengths)], data.labels[:BATCH])}


def sudoku_layers() -> dict[str, Callable[[], None]]:
    task = get_task("sudoku")
    data = task.data("train", BATCH)
    board = data.symbols[:BATCH]  # [B, 81], -1 on blanks, 0..8 for digits 1..9
    given = board >= 0
    lengths = given.sum(dim=1)
    order = torch.sort((~given).to(torch.int8), dim=1, stable=True).indices  # given cells first
    digits = torch.gather(board, 1, order).masked_fill(~(torch.arange(81) < lengths.unsqueeze(1)), -1)
    logits = half_trained(digits, 9, torch.Generator().manual_seed(2), 7.0).to(DEVICE).requires_grad_()
    positions = (1e4 * torch.nn.functional.one_hot(order, 81).float()).to(DEVICE).requires_grad_()  # exactly one-hot
    lengths = lengths.to(DEVICE)
    return {"sudoku Program": layer_step(task.make_program(), [(logits, lengths), (positions, lengths)],
                                         data.labels[:BATCH])}


def supervised_loss(outputs: tuple[Any, ...], symbols: torch.Tensor) -> torch.Tensor:
    """NLL of the true symbols over the valid positions of the model's outputs."""
    probs = outputs[0].probs if hasattr(outputs[0], "probs") else torch.stack(outputs, dim=1)
    probs = probs[:, : symbols.shape[1]]
    valid = symbols >= 0
    picked = probs.gather(2, symbols.clamp(min=0).unsqueeze(2)).squeeze(2)
    return -(picked.clamp_min(1e-12).log() * valid).sum() / valid.sum()


def epoch_steps(name: str, batches: int) -> dict[str, tuple[Callable[[], Any], int]]:
    """(ISED epoch, supervised epoch) of ``batches`` batches on the same images; ``hwf-batched`` is hwf
    with its program in tensors (``make_hwf_batched_program``)."""
    task = get_task(name.removesuffix("-batched"))
    make_program = make_hwf_batched_program if name == "hwf-batched" else task.make_program
    data = task.data("train", batches * BATCH)
    rows = torch.arange(batches * BATCH).split(BATCH)
    images = [data.images(r).to(DEVICE) for r in rows]
    labels = [_to_device(data.label_values(r)) for r in rows]
    symbols = [data.symbols[r].to(DEVICE) for r in rows]
    torch.manual_seed(0)
    model = task.make_model().to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)  # small: both epochs see a similar network
    k = task.defaults.num_samples or K

    def ised_epoch() -> None:
        layer = bp.BlackBox(make_program(), bp.ISED(num_samples=k), seed=0)  # a fresh, empty memo
        for batch_images, target in zip(images, labels, strict=True):
            loss = layer.loss(*model(batch_images), target=target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def supervised_epoch() -> None:
        for batch_images, truth in zip(images, symbols, strict=True):
            loss = supervised_loss(model(batch_images), truth)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return {f"{name} ISED epoch": (ised_epoch, 1), f"{name} supervised epoch": (supervised_epoch, 1)}


def _to_device(labels: Any) -> Any:
    return labels.to(DEVICE) if isinstance(labels, torch.Tensor) else labels


def git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10, help="layer steps per timed block")
    parser.add_argument("--batches", type=int, default=40, help="batches of 16 in each epoch measured")
    parser.add_argument("--label", default="", help="a note stored with the run (e.g. 'before')")
    parser.add_argument("--out", default="benchmarks/results/layer_speed")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (steady on a shared machine; default); wall: elapsed time")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda[:N] (wall time: the GPU's work is not CPU time)")
    args = parser.parse_args()
    global clock, DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: this torch ({torch.__version__}) sees no CUDA device")
    if DEVICE.type == "cuda":
        args.clock = "wall"
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    warnings.simplefilter("ignore", RuntimeWarning)  # failed samples (malformed formulas) are expected

    layers: dict[str, Callable[[], None]] = {}
    for n in (2, 4, 8, 16):
        layers.update(sum_layers(n))
    layers.update(hwf_layers())
    layers.update(sudoku_layers())
    steps: dict[str, tuple[Callable[[], Any], int]] = {"MNISTNet step": (network_step(), args.calls)}
    steps.update({name: (fn, args.calls if "sudoku" not in name else max(1, args.calls // 5))
                  for name, fn in layers.items()})
    began = time.perf_counter()
    ms = medians(steps, args.repeats)
    runs = 1 + args.repeats * args.calls  # the warm-up call and the timed ones
    calls_per_step = {name: round(program.stats.calls / runs) for name, program in PROGRAMS.items()}
    floors = medians({f"{name}: its calls alone": (python_floor(int(name[3:].split()[0]), calls), args.calls)
                      for name, calls in calls_per_step.items()}, args.repeats)
    syncs = {name: syncs_per_step(fn) for name, fn in layers.items()} if DEVICE.type == "cuda" else {}
    epochs: dict[str, float] = {}
    for name in EPOCH_TASKS:
        epochs.update(medians(epoch_steps(name, args.batches), max(3, args.repeats // 2), warm=False))
    unit = ms["MNISTNet step"]
    record = {
        "label": args.label, "commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain")),
        "torch": torch.__version__, "python": platform.python_version(), "device": str(DEVICE),
        "processor": processor(DEVICE), "threads": torch.get_num_threads(),  # processor: CPU, instruction set, GPU
        "clock": args.clock, "blackprop": str(Path(bp.__file__).parent), "repeats": args.repeats, "batch": BATCH, "k": K, "epoch_batches": args.batches,
        "layer_ms": {name: round(v, 3) for name, v in ms.items()},
        "layer_ratio": {name: round(v / unit, 4) for name, v in ms.items() if name != "MNISTNet step"},
        "calls_per_step": calls_per_step,
        "python_floor_ms": {name: round(v, 3) for name, v in floors.items()},
        "python_floor_ratio": {name: round(v / ms["MNISTNet step"], 4) for name, v in floors.items()},
        "syncs_per_step": syncs or None,
        "epoch_ms": {name: round(v, 1) for name, v in epochs.items()},
        "epoch_ratio": {name: round(epochs[f"{name} ISED epoch"] / epochs[f"{name} supervised epoch"], 3)
                        for name in EPOCH_TASKS},
        "seconds": round(time.perf_counter() - began, 1),
    }
    lines = [f"# Layer speed ({args.label or 'unlabelled'}; commit {record['commit']}{' + changes' if record['dirty'] else ''}, "
             f"torch {record['torch']}, {record['device']}, {record['threads']} thread(s))", "",
             f"`{' '.join([Path(sys.executable).name, *sys.argv])}`; medians of {args.repeats} repetitions; "
             f"{args.clock} time; blackprop from {record['blackprop']}.", "",
             f"MNISTNet step (forward, backward, Adam on 32 images): {unit:.2f} ms", "",
             "| ISED layer (B=16, k=100 draws unless 'default', forward+backward) | ms | / MNISTNet step |", "|---|---|---|"]
    lines += [f"| {name} | {ms[name]:.2f} | {ms[name] / unit:.3f} |" for name in layers]
    lines += ["", "The Python a `Program` layer cannot avoid: each step's new tuples (program calls per step, from the "
              "program's stats) as Python tuples, one call each, outputs back to a tensor, timed alone:", "",
              "| layer | program calls per step | ms | / MNISTNet step |", "|---|---|---|---|"]
    lines += [f"| {name} | {calls_per_step[name]} | {floors[name + ': its calls alone']:.2f} | "
              f"{floors[name + ': its calls alone'] / unit:.3f} |" for name in calls_per_step]
    if syncs:
        lines += ["", "Host-device synchronisations in one layer step (`torch.cuda.set_sync_debug_mode`):", "",
                  "| layer | syncs |", "|---|---|", *(f"| {name} | {count} |" for name, count in syncs.items())]
    lines += ["", f"Epochs of {args.batches} batches of 16 (not a full epoch), a fresh memo in each:", "",
              "| task | ISED epoch ms | supervised epoch ms | ratio |", "|---|---|---|---|"]
    lines += [f"| {name} | {epochs[f'{name} ISED epoch']:.0f} | {epochs[f'{name} supervised epoch']:.0f} | "
              f"{record['epoch_ratio'][name]:.3f} |" for name in EPOCH_TASKS]
    report = "\n".join(lines) + "\n"
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "results.jsonl").open("a") as file:
        file.write(json.dumps(record) + "\n")
    (out / (f"report-{args.label}.md" if args.label else "report.md")).write_text(report)


if __name__ == "__main__":
    main()
