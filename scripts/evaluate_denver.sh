#!/usr/bin/env bash
# Regenerate the README's DeNVeR tables: denver (defaults; without the final small-component
# filter, min_component=0; and with the paper's uniform stage-2 crops, vessel_crops=0, without
# that filter) against the vesselness baselines on
# the 6 phantom runs and the 20 ARCADE val pseudo-videos of scripts/make_eval_data.sh.
# Target: the vessel label (1; the phantoms' catheter, label 2, is not a vessel), scored on the
# frames whose reference shows vessel (the pre-contrast frames give empty_clean), as for the
# supervised tables. Cases are shared between JOBS worker processes (default 2).
# ARCADE_LIMIT (default all 20) evaluates the first K ARCADE videos only.
#   usage: scripts/evaluate_denver.sh [WORK_DIR] [JOBS] [ARCADE_LIMIT]
# About 3.5 min per video per worker and denver variant on this 2-core machine (~2.5 h in all).
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/baselines}"
jobs="${2:-2}"
arcade_limit=()
if [ -n "${3:-}" ]; then arcade_limit=(--limit "$3"); fi
bin=.venv/bin/angioseg
mkdir -p docs/results out
scripts/make_eval_data.sh "$work"
common=(--method frangi --method sato --method denver:vessel_crops=0,min_component=0 --method denver:min_component=0 --method denver --label 1 --frames-scored with-target --jobs "$jobs")
"$bin" evaluate "${common[@]}" --data "$work/phantom" -o docs/results/denver_phantom > out/denver_phantom.log 2>&1 \
    || { echo "phantom evaluation failed: see out/denver_phantom.log" >&2; exit 1; }
if [ -f "$work/arcade-val/meta.json" ]; then
    "$bin" evaluate "${common[@]}" "${arcade_limit[@]}" --data "$work/arcade-val" -o docs/results/denver_arcade_val > out/denver_arcade_val.log 2>&1 \
        || { echo "ARCADE evaluation failed: see out/denver_arcade_val.log" >&2; exit 1; }
fi
cat docs/results/denver_phantom.md
if [ -f "$work/arcade-val/meta.json" ]; then cat docs/results/denver_arcade_val.md; fi
