#!/usr/bin/env bash
# Regenerate the README's supervised comparison: the vesselness baselines, U-Net, CE-Net,
# sequence CE-Net (K = 1, 2; plain and motion-compensated with DIS flow) and 3D-2D CE-Net
# (N = 1, 2) with the shipped weights, side by side, scored on the vessel label (1) of
# (a) phantom runs and (b) ARCADE val pseudo-videos (scripts/make_eval_data.sh). Per-frame
# metrics are averaged over the frames whose reference shows vessel (contrast-filled frames, as
# the papers annotate); the frames before the contrast arrives give empty_clean, and
# dice_all_frames keeps the mean over every frame.
# Reports: docs/results/supervised_{phantom,arcade_val}.{md,json}.
#   usage: scripts/evaluate_supervised.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/baselines}"
bin=.venv/bin/angioseg
mkdir -p docs/results
scripts/make_eval_data.sh "$work"
methods=(
    --method frangi --method sato --method unet --method cenet
    --method seq-cenet:k=1,motion=none --method seq-cenet:k=2,motion=none
    --method seq-cenet:k=1,motion=dis --method seq-cenet:k=2,motion=dis
    --method cenet3d2d:n=1 --method cenet3d2d:n=2
)
"$bin" evaluate "${methods[@]}" --label 1 --frames-scored with-target --data "$work/phantom" -o docs/results/supervised_phantom
if [ -f "$work/arcade-val/meta.json" ]; then
    "$bin" evaluate "${methods[@]}" --label 1 --frames-scored with-target --data "$work/arcade-val" -o docs/results/supervised_arcade_val
fi
