#!/usr/bin/env bash
# Grow the FSVOS lite network by the fine refinement (stride-2 / full-size residual logits,
# angioseg/nn/fsvos.py) and fine-tune it, next to a control fine-tuned the same way without
# the refinement; both start from the weights scripts/train_fsvos.sh wrote (WORK_DIR/runs/cl),
# same data, steps, seed and learning rate, one thread each, side by side.
#   usage: scripts/train_fsvos_refine.sh [WORK_DIR] [STEPS] [INIT]
#   defaults: out/fsvos, 2500, WORK_DIR/runs/cl/fsvos.safetensors
# Ship the chosen run with: cp WORK_DIR/refine/fine/fsvos.safetensors angioseg/weights/fsvos.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/fsvos}"
steps="${2:-2500}"
init="${3:-$work/runs/cl/fsvos.safetensors}"
[ -f "$init" ] || { echo "error: no starting weights at $init (run scripts/train_fsvos.sh first)" >&2; exit 2; }
scripts/make_fsvos_data.sh "$work"
data=("$work/train-phantom" "$work/train-dca1" "$work/train-arcade")
mkdir -p "$work/refine"
pids=()
for run in fine:8 ctrl:0; do
    name="${run%%:*}" channels="${run##*:}"
    .venv/bin/python -m angioseg.methods.fsvos.training --data "${data[@]}" --out "$work/refine/$name" \
        --steps "$steps" --batch 4 --lr 1e-4 --contrastive-weight 0.01 --threads 1 --log-every 50 --seed 7 \
        --refine-channels "$channels" --init-from "$init" > "$work/refine/$name.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
