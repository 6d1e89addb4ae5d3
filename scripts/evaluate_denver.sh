#!/usr/bin/env bash
# Regenerate the README's DeNVeR tables (docs/results/denver_{dca1,arcade_val,phantom}.{md,json}):
# denver (defaults) against the classical filters (frangi, sato: CLAHE + Hessian at the frame's
# scales) and the supervised default (seq-cenet) on the sets of scripts/make_eval_data.sh:
# 12 dca1-train pseudo-videos (every vessel labelled; images 29-40), 20 ARCADE val
# pseudo-videos and 6 phantom runs. With PREVIOUS=1, also docs/results/denver_dca1_previous:
# the same methods and the default of before issue 17 (1000 + 1000 steps, fixed threshold 0.3) on
# dca1 (about 30 more minutes). Target: the vessel label (1; the phantoms'
# catheter, label 2, is not a vessel), scored on the frames whose reference shows vessel (the
# pre-contrast frames give empty_clean). Cases are shared between JOBS worker processes.
#   usage: scripts/evaluate_denver.sh [WORK_DIR] [JOBS]        (defaults out/baselines, 2)
# CPU: about 40-60 s per 24-frame run for denver on one thread (2-3 min at 1000 + 1000 steps);
# about 50 min in all with JOBS=2.
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/baselines}"
jobs="${2:-2}"
bin=.venv/bin/angioseg
mkdir -p docs/results out
scripts/make_eval_data.sh "$work"
methods=(--method frangi --method sato --method seq-cenet --method denver)
evaluate() {  # SET REPORT_NAME EXTRA_METHOD_ARGS...
    local set="$1" name="$2"; shift 2
    [ -f "$work/$set/meta.json" ] || { echo "no $work/$set: skipped" >&2; return 0; }
    "$bin" evaluate "${methods[@]}" "$@" --data "$work/$set" --label 1 --frames-scored with-target --jobs "$jobs" \
        -o "docs/results/denver_$name" > "out/denver_$name.log" 2>&1 \
        || { echo "$set evaluation failed: see out/denver_$name.log" >&2; exit 1; }
    cat "docs/results/denver_$name.md"
}
evaluate dca1 dca1
if [ "${PREVIOUS:-0}" = 1 ]; then evaluate dca1 dca1_previous --method denver:iterations=1000,threshold=0.3; fi
evaluate arcade-val arcade_val
evaluate phantom phantom
