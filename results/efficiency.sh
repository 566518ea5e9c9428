#!/usr/bin/env bash
# Issue 6 runs of this session: ISED with importance weights (weights=importance) against ISED's
# probability weights on sum8 / sum12 / sum16, LeNet, Adam 1e-3, batch 16, one CPU thread.
# Resumable: finished runs are skipped (results/efficiency.jsonl), interrupted ones resume.
cd "$(dirname "$0")/.."
E=".venv/bin/python benchmarks/efficiency.py sample"
case "$1" in
  small)
    $E --tasks sum8 --k-per-digit 10 --methods "ised,ised?weights=importance" --epochs 30
    $E --tasks sum12 --k-per-digit 10 --methods "ised,ised?weights=importance" --epochs 30 ;;
  k1600)
    $E --tasks sum16 --k-per-digit 100 --methods "ised?weights=importance" --epochs 25 ;;
  seeds)
    $E --tasks sum16 --k-per-digit 10 --methods "ised?weights=importance" --epochs 40 --seeds 1,2
    $E --tasks sum16 --k-per-digit 10 --methods ised --epochs 40 ;;
  *) echo "usage: $0 small|k1600|seeds"; exit 2 ;;
esac
