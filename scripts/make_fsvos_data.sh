#!/usr/bin/env bash
# Data of the FSVOS training and evaluation (git-ignored, under WORK_DIR, default out/fsvos):
#   train-phantom  48 multi-object phantom runs, 384², 24 frames, every device, seed 2000
#   train-dca1     dca1-train frames 1-30 as real-anatomy pseudo-videos, 16 frames, seed 4
#   train-arcade   ARCADE train images 1-60, all-style targets, pseudo-videos, 16 frames, seed 5
#   phantom-val    8 held-out multi-object phantom runs, 384², 30 frames, seed 9000
#   dca1-val       dca1-train frames 31-40 (never trained on), pseudo-videos, 24 frames, seed 3
# and (scripts/make_eval_data.sh) out/baselines/arcade-val: ARCADE val pseudo-videos.
# A set that exists (meta.json) is kept.   usage: scripts/make_fsvos_data.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/fsvos}"
arcade="${ANGIOSEG_ARCADE:-../shared/data/arcade-syntax}"
dca1="${DCA1:-../shared/data/dca1-train}"
bin=.venv/bin/angioseg
make() { local name="$1"; shift; [ -f "$work/$name/meta.json" ] || "$bin" data "$@" --out "$work/$name"; }
make train-phantom phantom --n 48 --seed 2000 --size 384 --frames 24 --devices all --no-overlay --no-dicom --no-motion
make phantom-val phantom --n 8 --seed 9000 --size 384 --frames 30 --devices all --no-overlay --no-dicom --no-motion
make dca1-val make-videos --images "$dca1/images" --masks "$dca1/masks" --first 31 --limit 10 --frames 24 --seed 3
make train-dca1 make-videos --images "$dca1/images" --masks "$dca1/masks" --first 1 --limit 30 --frames 16 --seed 4 --no-motion
make train-arcade make-videos --images "$arcade/train/images" --arcade-labels "$arcade/train/labels" --label-style all \
    --limit 60 --frames 16 --seed 5 --no-motion
scripts/make_eval_data.sh out/baselines
