#!/usr/bin/env bash
# The paper's baselines in the sample-efficiency grid, budget-matched: k program queries per example,
# so IndeCateR(+) run with N = k / (10n) samples (benchmarks/efficiency.py: indecater_samples).
# Same epochs and lr schedule as the variant's rows: k=10n with the paper's constant Adam 1e-3
# (40 epochs on sum16, 30 on sum8 / sum12), k=100n with a cosine lr over 25 epochs.
# Resumable; the most informative cells first. Usage: results/efficiency_baselines.sh [SEEDS]
cd "$(dirname "$0")/.."
E=".venv/bin/python benchmarks/efficiency.py sample"
S="--seeds ${1:-0}"
$E --tasks sum16 --k-per-digit 100 --lr-schedule cosine --epochs 25 --methods indecater+,indecater,reinforce $S
$E --tasks sum16 --k-per-digit 10 --epochs 40 --methods indecater+,indecater $S
$E --tasks sum8 --k-per-digit 10 --epochs 30 --methods indecater+,indecater,reinforce $S
$E --tasks sum12 --k-per-digit 10 --epochs 30 --methods indecater+,indecater,reinforce $S
