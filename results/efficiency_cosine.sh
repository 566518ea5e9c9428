#!/usr/bin/env bash
# sum16 with importance weights and a cosine lr (Adam 1e-3 annealed to 0 over the run): the constant-lr
# rows fluctuate by a few points from epoch to epoch once converged, so the last epoch is a noisy figure.
cd "$(dirname "$0")/.."
E=".venv/bin/python benchmarks/efficiency.py sample --lr-schedule cosine"
$E --tasks sum16 --k-per-digit 100 --methods "ised?weights=importance" --epochs 25
$E --tasks sum16 --k-per-digit 10 --methods "ised?weights=importance" --epochs 40
