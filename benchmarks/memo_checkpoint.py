"""Cost of checkpointing a large program memo: ``state_dict``, ``torch.save`` and ``load_state_dict``.

    PYTHONPATH=src python benchmarks/memo_checkpoint.py [--batches 100]

A sum of 8 digits (10^8 tuples) evaluates ``--batches`` batches of 20,000 random tuples, which fills
its memo with about 20,000 new tuples per batch (1.98M for 100 batches); then the memo's state is
built, saved to memory and loaded into a fresh program. Prints CPU seconds of each and the saved
size. To time another version of the library, put its ``src`` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import io
import time

import torch

import blackprop as bp


def digit_sum(*digits: int) -> int:
    return sum(digits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    digit = bp.Discrete(range(10))
    program = bp.Program(digit_sum, (digit,) * 8, bp.Discrete(range(73)))
    generator = torch.Generator().manual_seed(0)
    for _ in range(args.batches):
        program.evaluate(torch.randint(0, 10, (20_000, 8), generator=generator))
    start = time.process_time()
    state = program.state_dict()
    built = time.process_time() - start
    buffer = io.BytesIO()
    start = time.process_time()
    torch.save(state, buffer)
    saved = time.process_time() - start
    fresh = bp.Program(digit_sum, (digit,) * 8, bp.Discrete(range(73)))
    start = time.process_time()
    fresh.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=False))
    loaded = time.process_time() - start
    print(f"{program.cache_size():,} memoised tuples: state_dict {built:.2f} s, torch.save {saved:.2f} s "
          f"({len(buffer.getvalue()) / 1e6:.0f} MB), load_state_dict {loaded:.2f} s")


if __name__ == "__main__":
    main()
