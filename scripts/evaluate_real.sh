#!/usr/bin/env bash
# The real-data table (docs/results/real_data.md): every method on dca1-train frames 31-40
# (held out of every training run), ARCADE val stills, ARCADE val pseudo-videos and phantoms.
#   usage: scripts/evaluate_real.sh [WORK_DIR] [METHOD ...]    (default: every shipped method)
# Needs ../shared/data (or ANGIOSEG_ARCADE and DCA1 set). Sets and reports go to WORK_DIR
# (git-ignored); the table to docs/results/real_data.md.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/real}"
shift || true
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=(frangi sato unet cenet seq-cenet cenet3d2d)
arcade="${ANGIOSEG_ARCADE:-../shared/data/arcade-syntax}"
dca1="${DCA1:-../shared/data/dca1-train}"
bin=.venv/bin/angioseg
mkdir -p "$work"
[ -f "$work/dca1-31-40/angioseg-stills.txt" ] || "$bin" data stills --images "$dca1/images" --masks "$dca1/masks" --first 31 --out "$work/dca1-31-40"
[ -f "$work/arcade-val-stills/angioseg-stills.txt" ] || "$bin" data stills --images "$arcade/val/images" --arcade-labels "$arcade/val/labels" --out "$work/arcade-val-stills"
scripts/make_eval_data.sh out/baselines
args=()
for m in "${methods[@]}"; do args+=(--method "$m"); done
"$bin" evaluate "${args[@]}" --data "$work/dca1-31-40" -o "$work/dca1_heldout"
"$bin" evaluate "${args[@]}" --data "$work/arcade-val-stills" -o "$work/arcade_stills"
"$bin" evaluate "${args[@]}" --data out/baselines/arcade-val --label 1 --frames-scored with-target -o "$work/arcade_videos"
"$bin" evaluate "${args[@]}" --data out/baselines/phantom --label 1 --frames-scored with-target -o "$work/phantom"
.venv/bin/python scripts/real_data_table.py "$work" > docs/results/real_data.md
cat docs/results/real_data.md
