#!/usr/bin/env bash
# ISED with the reference implementation's summary and loss (L2 normalisation, binary cross-entropy)
# at k=10n: on sum8 it learns (92.8%) where blackprop's default L1 + NLL stays near 10%.
# Usage: results/efficiency_reference_loss.sh TASK (sum8: 30 epochs, sum12: 30, sum16: 40) [SEEDS]
cd "$(dirname "$0")/.."
case "$1" in sum16) EPOCHS=40 ;; *) EPOCHS=30 ;; esac
.venv/bin/python benchmarks/efficiency.py sample --tasks "$1" --k-per-digit 10 --epochs $EPOCHS \
  --methods "ised?normalize=l2&loss_fn=bce" --seeds "${2:-0}"
