#!/usr/bin/env bash
# The benchmark queue run beside the MNIST-R ISED grid: one training at a time, 1 thread.
# normalize=l1: the first seeds of these grids ran before ISED's default became L2, so the rest
# use the same setting to stay comparable.
cd "$(dirname "$0")/.."
.venv/bin/blackprop bench --tasks hwf --methods ised --seeds 1,2 --set normalize=l1 --threads 1 --quiet --out results/hwf.jsonl
.venv/bin/blackprop bench --tasks leaf-dt --methods ised --seeds 1,2 --set normalize=l1 --threads 1 --quiet --out results/leaf_scene.jsonl
.venv/bin/blackprop bench --tasks scene --methods ised --seeds 0,1,2 --set normalize=l1 --threads 1 --quiet --out results/leaf_scene.jsonl
