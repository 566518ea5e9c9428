#!/usr/bin/env bash
# Seeds 1-2 of the k=10n comparison on sum8 / sum12 that decides "does not lose to ISED": the variant
# (m=0.5, m*k = 5n) and ISED's probability weights, 30 epochs, constant lr. Resumable.
# Usage: results/efficiency_seeds_small_n.sh [SEEDS]
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/efficiency.py sample --tasks sum8,sum12 --k-per-digit 10 --epochs 30 \
  --methods "ised?weights=importance&site_exploration=0.5,ised" --seeds "${1:-1,2}"
