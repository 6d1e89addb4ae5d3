#!/usr/bin/env bash
# Training data for the "all"-style models (every contrast-filled vessel), git-ignored:
#   out/train/dca1-1-30         dca1-train images 1-30 with their masks (stills; 31-40 are held out)
#   out/train/arcade-train-all  the 600 ARCADE train frames, polygons + the branches ARCADE leaves
#                               out (angioseg data stills --label-style all)
#   out/train/arcade-train-partial  the same 600 frames with the polygons as masks/ and the branches
#                               ARCADE leaves out in uncertain/ (--label-style partial; left out of the loss)
#   out/train/phantom           16 phantom runs, 512², 12 frames, seed 500 (exact masks)
# Reads ../shared/data in place (or ANGIOSEG_ARCADE / DCA1).
set -euo pipefail
cd "$(dirname "$0")/.."
arcade="${ANGIOSEG_ARCADE:-../shared/data/arcade-syntax}"
dca1="${DCA1:-../shared/data/dca1-train}"
bin=.venv/bin/angioseg
"$bin" data stills --images "$dca1/images" --masks "$dca1/masks" --limit 30 --out out/train/dca1-1-30
"$bin" data stills --images "$arcade/train/images" --arcade-labels "$arcade/train/labels" --label-style all \
    --out out/train/arcade-train-all
"$bin" data stills --images "$arcade/train/images" --arcade-labels "$arcade/train/labels" --label-style partial \
    --out out/train/arcade-train-partial
"$bin" data phantom --out out/train/phantom --n 16 --seed 500 --size 512 --frames 12 --no-overlay --no-dicom
