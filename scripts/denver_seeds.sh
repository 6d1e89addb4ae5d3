#!/usr/bin/env bash
# Seed checks of two ablations the seed-0 table left open (the ablation table runs seed 0), 300
# Adam steps per stage, target and scoring as in scripts/evaluate_denver.sh:
#   L_parallel: the default and parallel_loss=false at seeds 1 and 2 on the first 2 phantom runs;
#   prior source: the default and prior_source=frames at seeds 1 and 2 on the first 3 ARCADE val
#   pseudo-videos of scripts/make_eval_data.sh. ~15 min.
#   usage: scripts/denver_seeds.sh [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${1:-2}"
work=out/baselines
bin=.venv/bin/angioseg
mkdir -p docs/results out
scripts/make_eval_data.sh "$work"
variants=()
for seed in 1 2; do
    variants+=(--method "denver:iterations=300,seed=$seed" --method "denver:iterations=300,parallel_loss=false,seed=$seed")
done
"$bin" evaluate "${variants[@]}" --label 1 --frames-scored with-target --jobs "$jobs" --data "$work/phantom" --limit 2 \
    -o docs/results/denver_seeds_phantom > out/denver_seeds_phantom.log 2>&1 \
    || { echo "seed check failed: see out/denver_seeds_phantom.log" >&2; exit 1; }
variants=()
for seed in 1 2; do
    variants+=(--method "denver:iterations=300,seed=$seed" --method "denver:iterations=300,prior_source=frames,seed=$seed")
done
if [ -f "$work/arcade-val/meta.json" ]; then
    "$bin" evaluate "${variants[@]}" --label 1 --frames-scored with-target --jobs "$jobs" --data "$work/arcade-val" --limit 3 \
        -o docs/results/denver_seeds_arcade_val > out/denver_seeds_arcade_val.log 2>&1 \
        || { echo "seed check failed: see out/denver_seeds_arcade_val.log" >&2; exit 1; }
fi
cat docs/results/denver_seeds_phantom.md
if [ -f "$work/arcade-val/meta.json" ]; then cat docs/results/denver_seeds_arcade_val.md; fi
