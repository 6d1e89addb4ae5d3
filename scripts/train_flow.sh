#!/usr/bin/env bash
# Train RAFT (small) on the phantom generator's exact motion and write the end-point-error table
# of every flow backend on the held-out phantom runs of scripts/make_eval_data.sh.
#   training data: out/train/phantom (scripts/make_training_data.sh: 40 runs, 512², seed 7)
#   weights:       out/flow/raft-small/raft-small.safetensors (+ checkpoint.safetensors)
#   table:         docs/results/flow_phantom.{md,json}  (dis, zero, raft; vessel and all pixels)
#   usage: scripts/train_flow.sh [STEPS] [THREADS]
# WEIGHTS=PATH skips the training and evaluates PATH (e.g. a checkpoint of a run in progress).
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-1500}"
threads="${2:-2}"
bin=.venv/bin/angioseg
weights="${WEIGHTS:-out/flow/raft-small/raft-small.safetensors}"
mkdir -p docs/results out/flow
if [ -z "${WEIGHTS:-}" ]; then
    scripts/make_training_data.sh out/train
    "$bin" flow train --data out/train/phantom --out out/flow/raft-small --config small --steps "$steps" \
        --batch 2 --crop 192 --iterations 8 --threads "$threads" --checkpoint-every 250 > out/flow/train.log 2>&1 \
        || { echo "RAFT training failed: see out/flow/train.log" >&2; exit 1; }
fi
scripts/make_eval_data.sh out/baselines
"$bin" flow evaluate --data out/baselines/phantom --backend dis --backend zero --backend "raft:weights=$weights" \
    --threads "$threads" -o docs/results/flow_phantom
