#!/usr/bin/env bash
# Train the shipped models exactly as shipped (data: scripts/make_training_data.sh), then copy
# each best step into angioseg/weights/ with scripts/ship_weights.py.
#   usage: scripts/train_models.sh [MODEL:STEPS ...]   (default: every shipped model)
# Two models can train side by side on 2 cores (one thread each): run the script twice with
# different models. Runs go to out/runs2/MODEL (resumable: rerun the same line).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${ANGIOSEG_TRAIN_DATA:-out/train}"
items=("$@")
[ ${#items[@]} -gt 0 ] || items=(cenet3d2d-n2:6000 cenet:6000 cenet3d2d-n1:6000 unet:1500)
for item in "${items[@]}"; do
    model=${item%%:*}
    steps=${item##*:}
    .venv/bin/angioseg train "$model" --data "$data/arcade-train" --data "$data/phantom" --val "$data/arcade-heldout" \
        --out "out/runs2/$model" --steps "$steps" --batch 8 --crop 192 --val-every 500 --seed 0 --threads 1 --resume
done
