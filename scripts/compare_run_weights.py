"""Export the last step of a training run and compare it with the run's best step on a held-out set.

    python scripts/compare_run_weights.py RUN_DIR --val out/train/arcade-heldout [--threads 1]

Writes RUN_DIR/last.safetensors (the model in RUN_DIR/checkpoint.pt, with the run's recorded
config) and prints the validation Dice (`angioseg.methods.supervised.training.validation_dice`:
frames that show vessel) of best.safetensors and of last.safetensors, so the shipped step can
be chosen on held-out data with one metric whatever metric the run itself selected by.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from angioseg.methods.supervised.clips import load_sequences  # noqa: E402
from angioseg.methods.supervised.training import VALIDATION_METRIC, validation_dice  # noqa: E402
from angioseg.methods.supervised.weights import load_model, save_weights  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--val", action="append", required=True)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    best, spec, info = load_model(args.run / "best.safetensors")
    state = torch.load(args.run / "checkpoint.pt", map_location="cpu", weights_only=True)
    last = spec.build()
    last.load_state_dict(state["model"])
    last.eval()
    sequences = load_sequences(args.val)
    scores = {}
    for name, model in (("best", best), ("last", last)):
        scores[name] = validation_dice(model, spec, sequences, frames_per_sequence=args.frames)
    last_info = {**info, "step": int(state["step"]), "val_dice": scores["last"], "val_metric": VALIDATION_METRIC,
                 "selected_from": "last step of the run (scripts/compare_run_weights.py)"}
    save_weights(last, spec, args.run / "last.safetensors", info=last_info)
    print(f"{args.run}: best (step {info['step']}) {scores['best']:.4f}, last (step {state['step']}) {scores['last']:.4f} "
          f"[{VALIDATION_METRIC}] -> {args.run / 'last.safetensors'}")


if __name__ == "__main__":
    main()
