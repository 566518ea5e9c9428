#!/usr/bin/env bash
# The k=100n column beyond sum16: sum8 (k=800) and sum12 (k=1200), plus ISED's probability weights at
# sum16 k=1600. Same epochs and lr as sum16 k=1600 (cosine over 25). The variant keeps 5 one-site draws
# per digit, m*k = 5n, as at k=10n (m=0.5) and sum16 k=1600 (m=0.05), so m=0.05 at every k=100n.
# Baselines budget-matched (IndeCateR(+) N=10). Resumable. Usage: results/efficiency_k100n.sh [SEEDS]
cd "$(dirname "$0")/.."
E=".venv/bin/python benchmarks/efficiency.py sample --k-per-digit 100 --lr-schedule cosine --epochs 25"
S="--seeds ${1:-0}"
$E --tasks sum8,sum12 --methods "ised?weights=importance&site_exploration=0.05,ised" $S
$E --tasks sum16 --methods ised $S
$E --tasks sum8,sum12 --methods reinforce,indecater+,indecater $S
