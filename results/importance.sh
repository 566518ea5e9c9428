#!/usr/bin/env bash
# ISED with importance weights (--set weights=importance) on the tasks where REINFORCE beat ISED's
# probability weights: scene and leaf-dt, 3 seeds each, task default settings otherwise.
# HWF's importance rows come from results/hwf.sh importance; sum-n from results/efficiency.sh.
cd "$(dirname "$0")/.."
B=".venv/bin/blackprop bench --threads 1 --quiet --out results/leaf_scene.jsonl --set weights=importance"
$B --tasks scene --methods ised --seeds 0,1,2
$B --tasks leaf-dt --methods ised --seeds 0,1,2
