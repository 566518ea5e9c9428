#!/usr/bin/env bash
# Baselines on all 11 MNIST-R tasks, 3 seeds, the same settings as ISED (task defaults), 1 thread per
# training; two lanes ("a" and "b") run in parallel. Resumable: finished runs are skipped.
# Seed 0 of the 1-2 digit tasks ran first (lanes a0/b0). Exact is skipped on count-3-4: 10^8 tuples.
# IndeCateR(+) on count-3-4 uses N=10 (8*10*10 = 800 calls per example): N=100 costs 8,000 calls per
# example, about 50 minutes per run on this 2-core machine (measured on 320 examples).
cd "$(dirname "$0")/.."
B=".venv/bin/blackprop bench --threads 1 --quiet --out results/mnist_r.jsonl"
SMALL=sum2,mult2,mod2,add-mod-3,less-than,equal,not-3-or-4
case "$1" in
  a0) $B --seeds 0 --tasks $SMALL --methods indecater,reinforce,exact ;;
  b0) $B --seeds 0 --tasks $SMALL --methods indecater+,nasr,anesi ;;
  a)
    $B --seeds 1,2 --tasks $SMALL --methods indecater,reinforce,exact
    $B --seeds 0,1,2 --tasks sum3,add-sub --methods exact,indecater,indecater+,reinforce,nasr,anesi
    $B --seeds 0,1,2 --tasks count-3-4 --methods indecater,indecater+ --set num_samples=10 ;;
  b)
    $B --seeds 1,2 --tasks $SMALL --methods indecater+,nasr,anesi
    $B --seeds 0,1,2 --tasks sum4 --methods exact,indecater,indecater+,reinforce,nasr,anesi
    $B --seeds 0,1,2 --tasks count-3-4 --methods reinforce,nasr,anesi ;;
  *) echo "usage: $0 a|b (a0|b0: the seed-0 runs of the small tasks)"; exit 2 ;;
esac
