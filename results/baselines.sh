#!/usr/bin/env bash
# Baselines on the MNIST-R tasks with one or two digits, the same settings as ISED (task defaults),
# one training at a time per line, 1 thread each. Two lines run in parallel.
cd "$(dirname "$0")/.."
B=".venv/bin/blackprop bench --seeds 0 --threads 1 --quiet --out results/mnist_r.jsonl"
if [ "$1" = a ]; then
  $B --tasks sum2,mult2,mod2,add-mod-3,less-than,equal,not-3-or-4 --methods indecater,reinforce,exact
else
  $B --tasks sum2,mult2,mod2,add-mod-3,less-than,equal,not-3-or-4 --methods indecater+,nasr,anesi
fi
