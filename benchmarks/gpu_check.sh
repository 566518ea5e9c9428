#!/usr/bin/env bash
# Issue 19's GPU measurement, as one prepared command for a session lent a GPU machine (device tool).
#
#   bash benchmarks/gpu_check.sh prepare      # here: packs the data the benchmark reads into .gpu/ (in .gitignore)
#   run(carry=[".gpu"], timeout_s=540, command="bash benchmarks/gpu_check.sh device")   # there
#
# "device" unpacks the data into a cache folder, runs benchmarks/layer_speed.py on cuda (wall time,
# host-device synchronisations per layer step counted) and on the same machine's CPU (one thread,
# for the ratio between them), times 20 steps of sum1024 (issue 21) on cuda, and leaves reports and
# results under $OUT. The working tree (about 15 MB) travels with .gpu/ (MNIST gzipped, the sudoku
# boards, the operator symbols: about 15 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
    cache="${BLACKPROP_DATA:-$HOME/.cache/blackprop}"
    symbols="${BLACKPROP_SYMBOLS:-../shared/data/mdas_symbols_v1.zip}"
    [ -f "$cache/mnist/train-images-idx3-ubyte" ] || { echo "no MNIST in $cache: run 'make demo' first" >&2; exit 2; }
    rm -rf .gpu && mkdir -p .gpu/mnist
    for f in "$cache"/mnist/*; do gzip -c "$f" > ".gpu/mnist/$(basename "$f").gz"; done
    cp -r "$cache/sudoku" .gpu/sudoku
    cp "$symbols" .gpu/symbols.zip
    du -sh .gpu ;;
device)
    export BLACKPROP_DATA="${TMPDIR:-/tmp}/blackprop-data" BLACKPROP_SYMBOLS="$PWD/.gpu/symbols.zip" PYTHONPATH="$PWD/src"
    export PYTHONUNBUFFERED=1 OUT="${OUT:-/tmp/gpu-check}"
    mkdir -p "$BLACKPROP_DATA/mnist" "$OUT"
    for f in .gpu/mnist/*.gz; do gunzip -c "$f" > "$BLACKPROP_DATA/mnist/$(basename "$f" .gz)"; done
    cp -r .gpu/sudoku "$BLACKPROP_DATA/sudoku"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
    python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
    python3 benchmarks/layer_speed.py --device cuda --label gpu --out "$OUT" 2>&1 | tee "$OUT/cuda.log"
    python3 benchmarks/layer_speed.py --device cpu --label gpu-machine-cpu --out "$OUT" 2>&1 | tee "$OUT/cpu.log"
    # issue 21's sum1024 (exact fold, lenet-wide-bn): seconds per epoch of 20 steps on cuda, to plan a GPU run
    timeout 240 python3 -m blackprop.cli train sum1024 --method fold --set min_mass=1e-12 --network lenet-wide-bn \
        --device cuda --epochs 1 --train-size 320 --valid-size 320 --test-size 320 --json "$OUT/sum1024.json" \
        2>&1 | tee "$OUT/sum1024.log" || echo "sum1024 on cuda: stopped or failed (see sum1024.log)" ;;
*)
    echo "usage: $0 prepare|device" >&2; exit 2 ;;
esac
