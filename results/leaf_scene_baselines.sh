#!/usr/bin/env bash
# Baselines on leaf-dt and scene, 3 seeds, task default settings, 1 thread, one training at a time.
# IndeCateR(+) on scene use N=10 (10 slots x 47 labels x 10 = 4,700 calls per example at most):
# N=100 measured 173 s per 320 examples here, about an hour per run.
cd "$(dirname "$0")/.."
B=".venv/bin/blackprop bench --threads 1 --quiet --out results/leaf_scene.jsonl"
$B --tasks leaf-dt --methods reinforce,indecater,indecater+,nasr,anesi --seeds 0,1,2
$B --tasks scene --methods reinforce,nasr,anesi --seeds 0,1,2
$B --tasks scene --methods indecater,indecater+ --seeds 0,1,2 --set num_samples=10
