#!/usr/bin/env bash
# Seeds 1-2 of the k=100n cells where one seed compared the variant with ISED's probability weights:
# sum16 k=1600 (ISED), sum8 k=800 and sum12 k=1200 (both). Cosine lr over 25 epochs. Resumable.
# Usage: results/efficiency_k100n_seeds.sh [PART] [SEEDS]  (PART: sum16 or small)
cd "$(dirname "$0")/.."
E=".venv/bin/python benchmarks/efficiency.py sample --k-per-digit 100 --lr-schedule cosine --epochs 25"
S="--seeds ${2:-1,2}"
case "${1:-sum16}" in
  sum16) $E --tasks sum16 --methods ised $S ;;
  small) $E --tasks sum8,sum12 --methods "ised?weights=importance&site_exploration=0.05,ised" $S ;;
esac
