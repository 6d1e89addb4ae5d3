#!/usr/bin/env bash
# Seed check of the L_parallel ablation: the default and parallel_loss=false at seeds 1 and 2
# (the ablation table runs seed 0), 300 Adam steps per stage, on the first 2 phantom runs of
# scripts/make_eval_data.sh; target and scoring as in scripts/evaluate_denver.sh. ~7 min.
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
cat docs/results/denver_seeds_phantom.md
