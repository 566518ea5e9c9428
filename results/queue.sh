#!/usr/bin/env bash
# The benchmark queue run after (beside) the MNIST-R ISED grid: one training at a time, 1 thread.
cd "$(dirname "$0")/.."
.venv/bin/blackprop bench --tasks hwf --methods ised --seeds 0,1,2 --threads 1 --quiet --out results/hwf.jsonl
.venv/bin/blackprop bench --tasks leaf-dt,scene --methods ised --seeds 0,1,2 --threads 1 --quiet --out results/leaf_scene.jsonl
