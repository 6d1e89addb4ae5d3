#!/usr/bin/env bash
# Regenerate the README's baseline tables: vesselness methods on phantom runs and on ARCADE
# val real-anatomy pseudo-videos (sets made by scripts/make_eval_data.sh, git-ignored). The
# Markdown and JSON reports go to docs/results/.
#   usage: scripts/evaluate_baselines.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/baselines}"
bin=.venv/bin/angioseg
mkdir -p docs/results
scripts/make_eval_data.sh "$work"
"$bin" evaluate --method frangi --method sato --data "$work/phantom" -o docs/results/baselines_phantom
if [ -f "$work/arcade-val/meta.json" ]; then
    "$bin" evaluate --method frangi --method sato --data "$work/arcade-val" -o docs/results/baselines_arcade_val
fi
