#!/usr/bin/env bash
# HWF: ISED with a cosine lr schedule (the constant-lr rows oscillate between epochs) and
# program-checked decoding reported beside argmax decoding; then one seed of each baseline that
# handles an Open output (A-NeSI needs a Discrete one). IndeCateR(+) use N=10: 7 positions x 14
# symbols x 10 = 980 calls per formula (N=100 measured 15.6 s per 320 formulas, ~40 min per run).
cd "$(dirname "$0")/.."
B=".venv/bin/blackprop bench --tasks hwf --threads 1 --quiet --out results/hwf.jsonl --lr-schedule cosine --search 64"
$B --methods ised --seeds 0,1,2 --set normalize=l1
$B --methods reinforce,nasr --seeds 0
$B --methods indecater,indecater+ --seeds 0 --set num_samples=10
