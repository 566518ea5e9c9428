#!/usr/bin/env bash
# sum16 k=1600, importance weights, one-site exploration at m=0.05, cosine lr over 40 epochs instead of
# 25 (results/efficiency_site_small.sh): at 25 epochs seed 1 left its plateau last (epoch 9) and ended
# lowest, 0.4 points short of the goal on the mean. Usage: results/efficiency_site_small40.sh [SEEDS]
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/efficiency.py sample --lr-schedule cosine --tasks sum16 --k-per-digit 100 \
  --methods "ised?weights=importance&site_exploration=0.05" --epochs 40 --seeds "${1:-0,1,2}"
