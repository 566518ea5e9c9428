#!/usr/bin/env bash
# More seeds where one seed decided a comparison: REINFORCE on sum16 (k=1600 reached the goal on seed 0;
# k=160 stalled on seed 0) and the data-efficiency curves of ISED, the variant, REINFORCE and A-NeSI.
# Resumable. Usage: results/efficiency_seeds.sh [SEEDS]
cd "$(dirname "$0")/.."
E=".venv/bin/python benchmarks/efficiency.py"
S="--seeds ${1:-1,2}"
$E sample --tasks sum16 --k-per-digit 100 --lr-schedule cosine --epochs 25 --methods reinforce $S
$E sample --tasks sum16 --k-per-digit 10 --epochs 40 --methods reinforce $S
$E data --methods "ised,ised?weights=importance&site_exploration=0.5,reinforce,anesi" --epochs 5 $S
