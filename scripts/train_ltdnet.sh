#!/usr/bin/env bash
# Train DSA-LTDNet and every ablation of the paper's Tables 1-2 on DSA liver phantom runs, with
# a fixed step count and seed, two runs at a time on one thread each (the longest first).
#   usage: scripts/train_ltdnet.sh DATA_DIR WORK_DIR [STEPS]          (STEPS default 2000)
#   DATA_DIR/train: DAVIS-style DSA runs from `angioseg data dsa-liver` (labels 1 liver, 2 tumour);
#   DATA_DIR/val:   optional, held-out runs scored every 500 steps (recorded, not used to pick weights).
#   The paper's split is 362 training / 124 test runs, e.g.
#     angioseg data dsa-liver --out DATA_DIR/train --n 362 --seed 1 --size 512 --no-dicom
#     angioseg data dsa-liver --out DATA_DIR/test  --n 124 --seed 2 --size 512
#   (training keeps ~1.5 MB per run in memory: 12 frames at 256², float16).
#   env: JOBS (parallel runs, default 2), LTDNET_SWEEP=1 also trains FFS + FD at the paper's
#        frame steps 5, 7, 11, 13 (step 9 is the ffs+fd run), PRETRAIN (TDL pre-training steps, 500),
#        SIZE (network input size, 256), RUNS (names to train, in order; default all, longest first).
# Each run writes WORK_DIR/runs/NAME/{weights.safetensors,checkpoint.pt,summary.json} and
# WORK_DIR/runs/NAME.log; a finished run is skipped, an interrupted one resumes from its checkpoint.
# Ship the full network with: cp WORK_DIR/runs/ltdnet/weights.safetensors angioseg/weights/ltdnet.safetensors
# CPU time (lite width, 256², batch 8, one thread each, measured per step on this 2-core VM while
# busy): U-Net-sized runs ~0.7 s/step, U-Net++ ~2.8, two-network runs ~1.2, DSA-LTDNet ~1.9
# (+ ~0.6 s per TDL pre-training step): ~6.7 core-hours at 2000 steps, ~3.5 h wall with JOBS=2
# (+1.6 core-hours with LTDNET_SWEEP=1); U-Net++ alone is ~1.6 h of it.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:?usage: scripts/train_ltdnet.sh DATA_DIR WORK_DIR [STEPS]}"
work="${2:?usage: scripts/train_ltdnet.sh DATA_DIR WORK_DIR [STEPS]}"
steps="${3:-2000}"
jobs="${JOBS:-2}"
pretrain="${PRETRAIN:-500}"
size="${SIZE:-256}"
[ -d "$data/train" ] || { echo "no $data/train: make it with 'angioseg data dsa-liver --out $data/train ...'" >&2; exit 2; }
val=()
[ -d "$data/val" ] && val=(--val "$data/val")
mkdir -p "$work/runs"
# NAME:VARIANT:FRAME_STEP, longest first
runs=(unet++:unet++:9 ltdnet:ltdnet:9 ffs+tdl:ffs+tdl:9 ffs+lrs:ffs+lrs:9 ffs+tdl-nosup:ffs+tdl-nosup:9
      attention-unet:attention-unet:9 unet:unet:9 ffs+fd:ffs+fd:9 ffs+of:ffs+of:9 ffs+bs:ffs+bs:9)
if [ -n "${RUNS:-}" ]; then  # e.g. RUNS="ltdnet unet ffs+fd": only these, in this order
    chosen=()
    for want in $RUNS; do for run in "${runs[@]}"; do [ "${run%%:*}" = "$want" ] && chosen+=("$run"); done; done
    runs=("${chosen[@]}")
fi
if [ "${LTDNET_SWEEP:-0}" = 1 ]; then
    for s in 5 7 11 13; do runs+=("ffs+fd-step$s:ffs+fd:$s"); done
fi
train_one() {  # NAME VARIANT STEP
    local name="$1" variant="$2" step="$3" out="$work/runs/$1"
    [ -f "$out/weights.safetensors" ] && { echo "$name: done already"; return 0; }
    local resume=()
    [ -f "$out/checkpoint.pt" ] && resume=(--resume)
    echo "$name: training ($variant, frame step $step, $steps steps)"
    .venv/bin/angioseg train ltdnet --data "$data/train" "${val[@]}" --out "$out" --variant "$variant" \
        --frame-step "$step" --steps "$steps" --pretrain-steps "$pretrain" --batch 8 --size "$size" --width lite \
        --seed 0 --threads 1 --val-every 500 "${resume[@]}" >> "$work/runs/$name.log" 2>&1 \
        && echo "$name: finished" || { echo "$name: FAILED (see $work/runs/$name.log)"; return 1; }
}
status=0
for run in "${runs[@]}"; do
    IFS=: read -r name variant step <<< "$run"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || status=1; done
    train_one "$name" "$variant" "$step" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
exit "$status"
