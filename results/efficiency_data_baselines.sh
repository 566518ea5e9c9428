#!/usr/bin/env bash
# Data efficiency (sum4, 5,000 training examples, 5 epochs, seed 0): the baselines beside ISED, the
# variant and A-NeSI, budget-matched at k=100 program queries per example (IndeCateR(+): N = 2, 80 queries).
cd "$(dirname "$0")/.."
.venv/bin/python benchmarks/efficiency.py data --methods reinforce,indecater+,indecater,nasr --epochs 5 --seeds "${1:-0}"
