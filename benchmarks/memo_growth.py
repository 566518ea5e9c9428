"""Cost of the bulk memo as it grows: lookup and insert per batch of new tuples (issue 19).

    PYTHONPATH=src python benchmarks/memo_growth.py [--entries 2500000] [--per-batch 1550] [--every 400] [--limit N]

A ``TupleMemo`` over 8 digit positions (10^8 exact codes, the sum8 layout) takes batches of
``--per-batch`` random rows, as an untrained network's draws on sum8 bring (about 1,550 new tuples per
batch of 16 x 100 draws): each batch's distinct codes are looked up and the unknown ones inserted.
Prints, every ``--every`` batches, the memo's size, its number of sorted runs and the mean CPU
milliseconds of the lookup and of the insert per batch. With ``--limit N`` the memo keeps the newest N
entries (``Program(cache_limit=N)``) and the run goes on for ``--entries`` inserted in all. To time another version of the library, put
its ``src`` first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import time

import torch

from blackprop.program.memo import TupleCoder, TupleMemo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=2_500_000)
    parser.add_argument("--per-batch", type=int, default=1550)
    parser.add_argument("--every", type=int, default=400)
    parser.add_argument("--limit", type=int, default=None, help="the memo's cache_limit (default: none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    coder = TupleCoder([10] * 8)
    memo = TupleMemo(coder, width=1, limit=args.limit)
    generator = torch.Generator().manual_seed(0)
    lookup = insert = 0.0
    batches = inserted = 0
    while inserted < args.entries:
        codes = torch.unique(coder.codes(torch.randint(0, 10, (args.per_batch, 8), generator=generator)))
        start = time.process_time()
        found, _, _, _ = memo.lookup(codes, coder.rows(codes))
        middle = time.process_time()
        new = codes[~found]
        inserted += len(new)
        memo.insert(new, coder.rows(new), torch.zeros(len(new), 1, dtype=torch.long), torch.ones(len(new), dtype=torch.bool))
        lookup, insert = lookup + middle - start, insert + time.process_time() - middle
        batches += 1
        if batches % args.every == 0:
            runs = len(getattr(memo, "_runs", ())) or "-"
            print(f"entries {len(memo):>9,}  runs {runs}  lookup {1000 * lookup / args.every:.2f} ms  "
                  f"insert {1000 * insert / args.every:.2f} ms per batch")
            lookup = insert = 0.0


if __name__ == "__main__":
    main()
