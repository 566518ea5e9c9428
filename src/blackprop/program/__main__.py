"""``python -m blackprop.program``: tuples per second of Program and BatchedProgram on sum16 (printed, not stored)."""

import torch

from .batched import speed


def main() -> None:
    torch.set_num_threads(1)
    rates = speed()
    print(f"sum16, 200,000 tuples: Program {rates['program']:,.0f}/s, BatchedProgram {rates['batched']:,.0f}/s, "
          f"ratio {rates['batched'] / rates['program']:.0f}x")


if __name__ == "__main__":  # imported (e.g. by the doctest walk), it does nothing
    main()
