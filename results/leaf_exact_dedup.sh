#!/usr/bin/env bash
# leaf-dt: the exact-gradient reference row (120 feature tuples) and ISED with dedup=true, 3 seeds
# (ISED's default counts duplicate samples, which weights a tuple by about k p(x)^2; with 120 tuples
# and k=100, dedup=true is close to the exact likelihood). Same settings as the other leaf rows.
cd "$(dirname "$0")/.."
B=".venv/bin/blackprop bench --tasks leaf-dt --seeds 0,1,2 --threads 1 --quiet --out results/leaf_scene.jsonl"
$B --methods exact
$B --methods ised --set normalize=l1 --set dedup=true
# the same question on scene (10 slots): ISED with dedup=true, seed 0
.venv/bin/blackprop bench --tasks scene --seeds 0 --threads 1 --quiet --out results/leaf_scene.jsonl --methods ised \
  --set normalize=l1 --set dedup=true
