#!/usr/bin/env bash
# Make the evaluation sets every results table in the README is measured on (git-ignored):
#   WORK_DIR/phantom     6 phantom XCA runs, 512², 30 frames, seed 100 (exact masks and motion)
#   WORK_DIR/arcade-val  ARCADE val real-anatomy pseudo-videos: first 20 val images, 24 frames, seed 0
#   WORK_DIR/dca1        dca1-train real-anatomy pseudo-videos, every vessel labelled: images 29-40,
#                        24 frames, seed 0 (31-40 are held out of every training run; 29-30 are
#                        training frames of the supervised models, so their scores there flatter them)
# A set that already exists (its meta.json is there) is kept. ARCADE is read in place.
#   usage: scripts/make_eval_data.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/baselines}"
arcade="${ANGIOSEG_ARCADE:-../shared/data/arcade-syntax}"
dca1="${DCA1:-../shared/data/dca1-train}"
bin=.venv/bin/angioseg
if [ ! -f "$work/phantom/meta.json" ]; then
    "$bin" data phantom --out "$work/phantom" --n 6 --seed 100 --size 512 --frames 30 --no-overlay --no-dicom
fi
if [ -d "$arcade/val/images" ]; then
    if [ ! -f "$work/arcade-val/meta.json" ]; then
        "$bin" data make-videos --images "$arcade/val/images" --arcade-labels "$arcade/val/labels" \
            --out "$work/arcade-val" --frames 24 --seed 0 --limit 20
    fi
else
    echo "ARCADE not found at $arcade: no ARCADE val set (set ANGIOSEG_ARCADE)" >&2
fi
if [ -d "$dca1/images" ]; then
    if [ ! -f "$work/dca1/meta.json" ]; then
        "$bin" data make-videos --images "$dca1/images" --masks "$dca1/masks" --first 29 --limit 12 \
            --out "$work/dca1" --frames 24 --seed 0
    fi
else
    echo "dca1-train not found at $dca1: no dca1 set (set DCA1)" >&2
fi
