#!/usr/bin/env bash
# IndeCateR+ at sum16 k=1600 (N=10) with the variant's longest schedule, cosine lr over 40 epochs, seed 0:
# after 25 epochs it had 33.2% and was still rising. Resumable.
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/efficiency.py sample --tasks sum16 --k-per-digit 100 --lr-schedule cosine --epochs 40 \
  --methods indecater+ --seeds "${1:-0}"
