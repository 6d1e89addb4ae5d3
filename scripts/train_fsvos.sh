#!/usr/bin/env bash
# Train the FSVOS lite network twice, with and without the spatio-temporal contrastive loss
# (weight 0.01 / 0), side by side on one thread each; electrode and clip stay unseen.
#   usage: scripts/train_fsvos.sh [WORK_DIR] [STEPS]     (defaults out/fsvos, 5000)
# Ship the chosen run with: cp WORK_DIR/runs/cl/fsvos.safetensors angioseg/weights/fsvos.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/fsvos}"
steps="${2:-5000}"
scripts/make_fsvos_data.sh "$work"
data=("$work/train-phantom" "$work/train-dca1" "$work/train-arcade")
mkdir -p "$work/runs"
pids=()
for run in cl:0.01 nocl:0; do
    name="${run%%:*}" weight="${run##*:}"
    .venv/bin/python -m angioseg.methods.fsvos.training --data "${data[@]}" --out "$work/runs/$name" \
        --steps "$steps" --batch 4 --lr 3e-4 --contrastive-weight "$weight" --threads 1 --log-every 100 \
        > "$work/runs/$name.log" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
