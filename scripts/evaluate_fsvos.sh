#!/usr/bin/env bash
# The FSVOS tables (docs/results/fsvos.md): DAVIS J&F of propagation from one labelled frame
# on held-out multi-object phantom runs (electrode and clip unseen in training), dca1-train
# pseudo-videos (frames 31-40, every vessel) and ARCADE val pseudo-videos, under the peak and
# early protocols; baselines global matching (STCN-style), optical-flow propagation and the
# supervised default (vessel only); ablations of the window k, the keyframe interval r, the
# unfold path, the fine refinement and the contrastive loss, with frames per second. One thread
# per evaluation (THREADS to change it); ARCADE: the first 10 val pseudo-videos. An ablation
# whose weights are missing is left out with a message.
#   usage: scripts/evaluate_fsvos.sh [WORK_DIR] [WEIGHTS] [NOCL_WEIGHTS] [NO_REFINE_WEIGHTS] [BEFORE_WEIGHTS]
#   defaults: out/fsvos, the shipped weights, WORK_DIR/runs/nocl/fsvos.safetensors (scripts/train_fsvos.sh),
#   WORK_DIR/refine/ctrl/fsvos.safetensors (scripts/train_fsvos_refine.sh), WORK_DIR/runs/cl/fsvos.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-out/fsvos}"
weights="${2:-angioseg/weights/fsvos.safetensors}"
nocl="${3:-$work/runs/nocl/fsvos.safetensors}"
norefine="${4:-$work/refine/ctrl/fsvos.safetensors}"
before="${5:-$work/runs/cl/fsvos.safetensors}"
scripts/make_fsvos_data.sh "$work"
bin=.venv/bin/angioseg
out="$work/eval"
mkdir -p "$out"
declare -A sets=([phantom]="$work/phantom-val" [dca1]="$work/dca1-val" [arcade]=out/baselines/arcade-val)
fs="fsvos:weights=$weights"
evaluate() {  # NAME SET PROTOCOL METHOD...
    local name="$1" set="$2" protocol="$3"; shift 3
    [ -f "$out/$name.json" ] && return 0
    local unseen=()
    [ "$set" = phantom ] && unseen=(--unseen electrode,clip)
    [ "$set" = arcade ] && unseen=(--limit 10)  # the first 10 of the 20 ARCADE val pseudo-videos
    local args=()
    for m in "$@"; do args+=(--method "$m"); done
    "$bin" evaluate "${args[@]}" --data "${sets[$set]}" --protocol "$protocol" "${unseen[@]}" --threads "${THREADS:-1}" -o "$out/$name"
}
for set in phantom dca1 arcade; do
    for protocol in peak early; do
        evaluate "main_${set}_${protocol}" "$set" "$protocol" "$fs" "$fs,reference=match" "$fs,window=none" flow-propagate seq-cenet
    done
    if [ -f "$nocl" ]; then evaluate "contrastive_${set}" "$set" peak "$fs" "fsvos:weights=$nocl"
    else echo "note: no $nocl: the contrastive-loss ablation is left out" >&2; fi
    refine=("$fs")
    [ -f "$norefine" ] && refine+=("fsvos:weights=$norefine")
    [ -f "$before" ] && refine+=("fsvos:weights=$before")
    if [ ${#refine[@]} -gt 1 ]; then evaluate "refine_${set}" "$set" peak "${refine[@]}"
    else echo "note: neither $norefine nor $before: the refinement ablation is left out" >&2; fi
done
for set in dca1 arcade; do
    evaluate "window_${set}" "$set" peak "$fs" "$fs,window=9" "$fs,window=15" "$fs,window=19" "$fs,reference=match"
    evaluate "keyframes_${set}" "$set" peak "$fs" "$fs,keyframe_every=3" "$fs,keyframe_every=6" "$fs,keyframe_every=10"
done
evaluate unfold_dca1 dca1 peak "$fs" "$fs,matching=unfold" "$fs,window=15" "$fs,window=15,matching=unfold"
evaluate scale_phantom phantom peak "$fs" "$fs,scale=1.5" "$fs,scale=2" flow-propagate
.venv/bin/python scripts/fsvos_table.py "$out" > docs/results/fsvos.md
cat docs/results/fsvos.md
