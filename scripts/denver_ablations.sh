#!/usr/bin/env bash
# The README's DeNVeR ablation table (the paper's Table 2 and more), one command:
#   the default | uniform stage-2 crops (the paper's) | w/o bootstrap (stage 1) | w/o L_prior |
#   w/o L_parallel | SIREN stage 1 | prior on the frames (the paper's) | frame-only mask input
#   (the paper's) | no temporal filter | no small-component filter | RAFT flow
# on the first PHANTOMS phantom runs and the first ARCADE ARCADE-val pseudo-videos of
# scripts/make_eval_data.sh, every variant at ITERATIONS Adam steps per stage (a reduced budget:
# the full one is 1000), with the vesselness baselines alongside. Target and scoring as in
# scripts/evaluate_denver.sh. The RAFT row needs RAFT weights (scripts/train_flow.sh makes
# them at out/flow/raft-small/raft-small.safetensors, RAFT_WEIGHTS=PATH names others; the row is
# left out without them).
#   usage: scripts/denver_ablations.sh [ITERATIONS] [PHANTOMS] [ARCADE] [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations="${1:-300}"
phantoms="${2:-2}"
arcade="${3:-3}"
jobs="${4:-2}"
work=out/baselines
raft="${RAFT_WEIGHTS:-out/flow/raft-small/raft-small.safetensors}"
bin=.venv/bin/angioseg
mkdir -p docs/results out
scripts/make_eval_data.sh "$work"
# Every ablation switches one thing off the default pipeline (the first denver row).
base="denver:iterations=$iterations"
variants=(
    --method frangi --method sato
    --method "$base"
    --method "$base,vessel_crops=0"
    --method "$base,bootstrap=false"
    --method "$base,prior_loss=false"
    --method "$base,parallel_loss=false"
    --method "$base,representation=siren"
    --method "$base,prior_source=frames"
    --method "$base,mask_input=frame"
    --method "$base,temporal=0"
    --method "$base,min_component=0"
)
if [ -f "$raft" ]; then variants+=(--method "$base,flow=raft,flow_weights=$raft"); fi
common=(--label 1 --frames-scored with-target --jobs "$jobs")
"$bin" evaluate "${variants[@]}" "${common[@]}" --data "$work/phantom" --limit "$phantoms" \
    -o docs/results/denver_ablation_phantom > out/denver_ablation_phantom.log 2>&1 \
    || { echo "phantom ablation failed: see out/denver_ablation_phantom.log" >&2; exit 1; }
if [ -f "$work/arcade-val/meta.json" ]; then
    "$bin" evaluate "${variants[@]}" "${common[@]}" --data "$work/arcade-val" --limit "$arcade" \
        -o docs/results/denver_ablation_arcade_val > out/denver_ablation_arcade_val.log 2>&1 \
        || { echo "ARCADE ablation failed: see out/denver_ablation_arcade_val.log" >&2; exit 1; }
fi
cat docs/results/denver_ablation_phantom.md
if [ -f "$work/arcade-val/meta.json" ]; then cat docs/results/denver_ablation_arcade_val.md; fi
