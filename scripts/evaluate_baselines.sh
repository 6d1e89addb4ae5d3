#!/usr/bin/env bash
# Regenerate the README's baseline tables: vesselness methods on phantom runs and on ARCADE
# val real-anatomy pseudo-videos. Data goes to a git-ignored folder (default ./out/baselines);
# the Markdown and JSON reports go to docs/results/. ARCADE is read in place.
#   usage: scripts/evaluate_baselines.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/baselines}"
arcade="${ANGIOSEG_ARCADE:-../shared/data/arcade-syntax}"
bin=.venv/bin/angioseg
mkdir -p docs/results
"$bin" data phantom --out "$work/phantom" --n 6 --seed 100 --size 512 --frames 30 --no-overlay --no-dicom
"$bin" evaluate --method frangi --method sato --data "$work/phantom" -o docs/results/baselines_phantom
if [ -d "$arcade/val/images" ]; then
    "$bin" data make-videos --images "$arcade/val/images" --arcade-labels "$arcade/val/labels" \
        --out "$work/arcade-val" --frames 24 --seed 0 --limit 20
    "$bin" evaluate --method frangi --method sato --data "$work/arcade-val" -o docs/results/baselines_arcade_val
else
    echo "ARCADE not found at $arcade: skipped the ARCADE val table (set ANGIOSEG_ARCADE)" >&2
fi
