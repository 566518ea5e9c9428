#!/usr/bin/env bash
# sum16 with importance weights plus one-site exploration (half the draws have one position redrawn
# uniformly; ISED(weights="importance", site_exploration=0.5)), the paper's constant Adam 1e-3.
# Seed 1 first: importance weights alone stalled there at 87% digit accuracy.
cd "$(dirname "$0")/.."
E=".venv/bin/python benchmarks/efficiency.py sample --tasks sum16"
M="ised?weights=importance&site_exploration=0.5"
$E --k-per-digit 10 --methods "$M" --epochs 40 --seeds 1,0,2
$E --k-per-digit 100 --methods "$M" --epochs 25 --seeds 0
$E --tasks sum8 --k-per-digit 10 --methods "$M" --epochs 30 --seeds 0
$E --tasks sum12 --k-per-digit 10 --methods "$M" --epochs 30 --seeds 0
