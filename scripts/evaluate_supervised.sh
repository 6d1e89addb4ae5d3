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
mkdir -p docs/results out
scripts/make_eval_data.sh "$work"
methods=(
    --method frangi --method sato --method unet --method cenet
    --method seq-cenet:k=1,motion=none --method seq-cenet:k=2,motion=none
    --method seq-cenet:k=1,motion=dis --method seq-cenet:k=2,motion=dis
    --method cenet3d2d:n=1 --method cenet3d2d:n=2
)
# The two sets run side by side, one torch thread each (2 cores); each exit status is checked.
export OMP_NUM_THREADS=1
"$bin" evaluate "${methods[@]}" --label 1 --frames-scored with-target --data "$work/phantom" \
    -o docs/results/supervised_phantom > out/supervised_phantom.log 2>&1 &
phantom_job=$!
if [ -f "$work/arcade-val/meta.json" ]; then
    "$bin" evaluate "${methods[@]}" --label 1 --frames-scored with-target --data "$work/arcade-val" \
        -o docs/results/supervised_arcade_val > out/supervised_arcade_val.log 2>&1 &
    wait $! || { echo "ARCADE evaluation failed: see out/supervised_arcade_val.log" >&2; exit 1; }
fi
wait $phantom_job || { echo "phantom evaluation failed: see out/supervised_phantom.log" >&2; exit 1; }
cat docs/results/supervised_phantom.md
if [ -f "$work/arcade-val/meta.json" ]; then cat docs/results/supervised_arcade_val.md; fi
