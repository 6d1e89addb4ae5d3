#!/usr/bin/env bash
# Score every trained DSA-LTDNet run (scripts/train_ltdnet.sh) on the key frames of held-out
# phantom runs and write the paper's Table 1 and Table 2 layouts, with the paper's numbers
# beside ours, to docs/results/ltdnet.md; then run `angioseg hcc` on one held-out phantom DICOM.
#   usage: scripts/evaluate_ltdnet.sh DATA_DIR WORK_DIR
#   DATA_DIR/test: held-out DAVIS-style DSA runs (`angioseg data dsa-liver`, other seeds than train).
# env: TABLE (where the tables go, default docs/results/ltdnet.md).
# Reports: WORK_DIR/eval/NAME.json (one per run; an existing report is kept: delete it to redo).
# CPU time: about 0.1-0.5 s per run and network at 256² (plus reading the frames).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:?usage: scripts/evaluate_ltdnet.sh DATA_DIR WORK_DIR}"
work="${2:?usage: scripts/evaluate_ltdnet.sh DATA_DIR WORK_DIR}"
[ -d "$data/test" ] || { echo "no $data/test: make it with 'angioseg data dsa-liver --out $data/test ...'" >&2; exit 2; }
mkdir -p "$work/eval"
for weights in "$work"/runs/*/weights.safetensors; do
    [ -f "$weights" ] || continue
    name="$(basename "$(dirname "$weights")")"
    [ -f "$work/eval/$name.json" ] && continue
    echo "scoring $name"
    .venv/bin/python -m angioseg.methods.ltdnet.evaluation --data "$data/test" --weights "$weights" \
        -o "$work/eval/$name.json" --threads 2
done
table="${TABLE:-docs/results/ltdnet.md}"
.venv/bin/python scripts/ltdnet_table.py "$work/eval" --data "$data" > "$table"
cat "$table"
example="$(ls "$data"/test/DICOM/*.dcm 2>/dev/null | head -n 1 || true)"
if [ -n "$example" ] && [ -f "$work/runs/ltdnet/weights.safetensors" ]; then
    .venv/bin/angioseg hcc "$example" -o "$work/hcc-example" --weights "$work/runs/ltdnet/weights.safetensors" --overwrite
    ls "$work/hcc-example"
fi
