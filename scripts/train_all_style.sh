#!/usr/bin/env bash
# The "all"-style CE-Net shipped as angioseg/weights/cenet.safetensors, in two rounds
# (data: scripts/make_training_data_all.sh). Round 1 starts from the first CE-Net weights
# (ARCADE pseudo-videos + phantoms); round 2 weights dca1's 30 frames up (x20) at half the
# learning rate. Site augmentation, Dice + BCE, 192² crops, batch 8; the last step ships.
# On 2 CPU cores, one thread each: about 8 min for round 1, 11 min for round 2.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin/angioseg
repeat() { for _ in $(seq "$1"); do printf -- '--data %s ' "$2"; done; }
# shellcheck disable=SC2046
"$bin" train cenet $(repeat 10 out/train/dca1-1-30) --data out/train/arcade-train-all --data out/train/phantom \
    --out out/train/runs/cenet-dca1-arcade-ph --steps 3000 --batch 8 --crop 192 --augment site --loss dice+bce \
    --init "${INIT:-angioseg/weights/cenet.safetensors}" --threads 1 --label-style all
# shellcheck disable=SC2046
"$bin" train cenet $(repeat 20 out/train/dca1-1-30) --data out/train/arcade-train-all --data out/train/phantom \
    --out out/train/runs/cenet-c --steps 4000 --batch 8 --crop 192 --augment site --loss dice+bce --lr 1e-3 \
    --init out/train/runs/cenet-dca1-arcade-ph/last.safetensors --threads 1 --label-style all
echo "ship with: .venv/bin/python scripts/ship_weights.py out/train/runs/cenet-c/last.safetensors cenet"
