#!/usr/bin/env bash
# Train the shipped models with the recipe they were shipped with (data: scripts/make_training_data.sh),
# then copy each best step into angioseg/weights/ with scripts/ship_weights.py.
# Every model from scratch on 240 ARCADE pseudo-videos + 40 phantoms, batch 8, 192² crops, Adam
# with cosine decay; U-Net (the slowest to train, a baseline only) for fewer steps.
# Best steps are chosen by Dice on the held-out ARCADE train images 241-270. Each run is
# resumable (rerun the line). On 2 cores, run two models side by side with one thread each:
#   scripts/train_models.sh cenet3d2d-n2 & scripts/train_models.sh cenet cenet3d2d-n1 unet
set -euo pipefail
cd "$(dirname "$0")/.."
data="${ANGIOSEG_TRAIN_DATA:-out/train}"
runs="${ANGIOSEG_RUNS:-out/runs2}"
train() { .venv/bin/angioseg train "$@" --batch 8 --crop 192 --threads 1 --resume; }
round1() {  # MODEL STEPS VAL_EVERY
    train "$1" --data "$data/arcade-train" --data "$data/phantom" --val "$data/arcade-heldout" \
        --out "$runs/$1" --steps "$2" --val-every "$3" --seed 0
}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(cenet3d2d-n2 cenet cenet3d2d-n1 unet)
for model in "${models[@]}"; do
    case "$model" in
        cenet3d2d-n2|cenet|cenet3d2d-n1) round1 "$model" 6000 500 ;;
        unet) round1 "$model" 1000 250 ;;
        *) echo "unknown model $model" >&2; exit 2 ;;
    esac
done
