#!/usr/bin/env bash
# The grid of spec.toml with today's `blackprop bench` (until the run/ branch's spec runner is merged).
# One training at a time, one thread each; every run resumes from its checkpoint and is skipped when
# its row is already in results.jsonl. Usage: experiments/scale/run.sh sum64|sum256|sum1024 [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-/work/main/.venv/bin/python}
export PYTHONPATH=$PWD/src OMP_NUM_THREADS=1
B="$PY -m blackprop.cli bench --threads 1 --quiet --out experiments/scale/results.jsonl"
ISED="--set weights=importance --set site_exploration=0.5"
case "${1:-}" in
  sum64)
    S=${2:-0,1,2}
    $B --tasks sum64 --methods fold --seeds "$S" --epochs 20 --set min_mass=1e-12
    $B --tasks sum64 --methods ised --seeds "$S" --epochs 20 -k 640 $ISED
    $B --tasks sum64 --methods reinforce --seeds "$S" --epochs 20 -k 640
    $B --tasks sum64 --methods indecater+ --seeds "$S" --epochs 20 -k 1 ;;      # N=1: 10n = 640 queries
  sum256)
    S=${2:-0}
    $B --tasks sum256 --methods fold --seeds "$S" --epochs 10 --set min_mass=1e-12
    $B --tasks sum256 --methods ised --seeds "$S" --epochs 5 -k 2560 $ISED       # 5 epochs: see notes.md
    $B --tasks sum256 --methods reinforce --seeds "$S" --epochs 5 -k 2560
    $B --tasks sum256 --methods indecater+ --seeds "$S" --epochs 5 -k 1 ;;
  sum1024)
    S=${2:-0}
    $B --tasks sum1024 --methods fold --seeds "$S" --epochs 3 --set min_mass=1e-12
    $B --tasks sum1024 --methods ised --seeds "$S" --epochs 3 -k 1024 $ISED
    $B --tasks sum1024 --methods reinforce --seeds "$S" --epochs 3 -k 1024 ;;
  *) echo "usage: $0 sum64|sum256|sum1024 [SEEDS]"; exit 2 ;;
esac
