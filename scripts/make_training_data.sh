#!/usr/bin/env bash
# Make the training and model-selection sets of the shipped weights (git-ignored, ~4 GB):
#   WORK_DIR/arcade-train    ARCADE train images 1-240 as real-anatomy pseudo-videos, 16 frames, seed 1
#   WORK_DIR/phantom         40 phantom runs, 512², 16 frames, seed 7
#   WORK_DIR/arcade-heldout  ARCADE train images 241-270, 16 frames, seed 2 (selection of the best step;
#                            ARCADE val stays untouched for the README's tables)
# ARCADE is read in place (the held-out images are symlinked, never copied).
#   usage: scripts/make_training_data.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/train}"
arcade="$(realpath "${ANGIOSEG_ARCADE:-../shared/data/arcade-syntax}")"
bin=.venv/bin/angioseg
[ -d "$arcade/train/images" ] || { echo "ARCADE not found at $arcade (set ANGIOSEG_ARCADE)" >&2; exit 2; }
mkdir -p "$work"
[ -f "$work/arcade-train/meta.json" ] || "$bin" data make-videos --images "$arcade/train/images" \
    --arcade-labels "$arcade/train/labels" --out "$work/arcade-train" --frames 16 --seed 1 --limit 240
[ -f "$work/phantom/meta.json" ] || "$bin" data phantom --out "$work/phantom" --n 40 --seed 7 --size 512 \
    --frames 16 --no-dicom --no-overlay
# ARCADE train images FIRST..LAST as pseudo-videos in WORK_DIR/NAME (symlinks select the images)
make_range() {
    local name=$1 first=$2 last=$3 seed=$4 links="$work/.src-$1"
    [ -f "$work/$name/meta.json" ] && return 0
    mkdir -p "$links/images" "$links/labels"
    for i in $(seq "$first" "$last"); do
        ln -sf "$arcade/train/images/$i.png" "$links/images/$i.png"
        ln -sf "$arcade/train/labels/$i.txt" "$links/labels/$i.txt"
    done
    "$bin" data make-videos --images "$links/images" --arcade-labels "$links/labels" \
        --out "$work/$name" --frames 16 --seed "$seed"
}
make_range arcade-heldout 241 270 2
