#!/usr/bin/env bash
# sum16 k=1600 with importance weights, one-site exploration and a cosine lr (Adam 1e-3 annealed to 0
# over the 25 epochs): the constant-lr rows move by a few points from epoch to epoch once converged,
# so their last epoch is a noisy figure.
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/efficiency.py sample --lr-schedule cosine --tasks sum16 --k-per-digit 100 \
  --methods "ised?weights=importance&site_exploration=0.5" --epochs 25
# importance weights alone (no one-site exploration), the same schedule
.venv/bin/python benchmarks/efficiency.py sample --lr-schedule cosine --tasks sum16 --k-per-digit 100 \
  --methods "ised?weights=importance" --epochs 25 --seeds 0,1,2
