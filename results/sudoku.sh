#!/usr/bin/env bash
# Visual sudoku grid: ISED, REINFORCE and NASR on sudoku-partial, 3 seeds, 10 epochs with a cosine
# lr schedule (the 3-epoch constant-lr ISED rows were still rising: 42 -> 55 -> 62% boards), and
# program-checked decoding reported beside argmax decoding (--search 64).
cd "$(dirname "$0")/.."
.venv/bin/blackprop bench --tasks sudoku-partial --methods ised,reinforce,nasr --seeds 0,1,2 --epochs 10 \
  --lr-schedule cosine --search 64 --threads 1 --quiet --out results/sudoku.jsonl
