#!/usr/bin/env bash
# Score a trained vessel model on the real frames the defaults are chosen on: dca1-train 31-40
# (every vessel, held out of all training) and the 200 ARCADE val stills (major segments only;
# their sensitivity is the number that counts), and print the means on one line.
#   usage: scripts/score_vessel_weights.sh NAME WEIGHTS [METHOD]     (METHOD default cenet)
# Needs out/real/dca1-31-40 and out/real/arcade-val-stills (scripts/evaluate_real.sh makes them).
# Reports: out/score/NAME.{dca1,arcade}.{json,md}. About a minute on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: scripts/score_vessel_weights.sh NAME WEIGHTS [METHOD]}"
weights="${2:?usage: scripts/score_vessel_weights.sh NAME WEIGHTS [METHOD]}"
method="${3:-cenet}"
for set in dca1-31-40 arcade-val-stills; do
    [ -f "out/real/$set/angioseg-stills.txt" ] || { echo "no out/real/$set: run scripts/evaluate_real.sh first" >&2; exit 2; }
done
mkdir -p out/score
.venv/bin/angioseg evaluate --method "$method:weights=$weights" --data out/real/dca1-31-40 -o "out/score/$name.dca1" --threads 1 > /dev/null
.venv/bin/angioseg evaluate --method "$method:weights=$weights" --data out/real/arcade-val-stills -o "out/score/$name.arcade" --threads 1 > /dev/null
.venv/bin/python - "$name" <<'PY'
import json
import sys

import numpy as np

name = sys.argv[1]
cells = [name]
for short in ("dca1", "arcade"):
    report = json.load(open(f"out/score/{name}.{short}.json"))
    (method,) = report["methods"].values()
    for metric in ("dice", "sensitivity", "precision", "cldice"):
        cells.append(f"{short}.{metric}={np.mean([case[metric] for case in method['cases'].values()]):.4f}")
print(" ".join(cells))
PY
