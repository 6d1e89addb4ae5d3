"""Where a supervised vessel model's Dice goes on held-out real stills, and what cheap test-time
changes do to it.

    python scripts/cenet_error_analysis.py STILLS [--method cenet] [--ensemble W1,W2,...]
                                          [--overlay OUT.png] [--demo DEMO_OUT] [--threads 1]

STILLS: a folder with images/ and masks/ (`angioseg data stills`, e.g. out/real/dca1-31-40 of
scripts/evaluate_real.sh). Prints, for the method (any spec `angioseg evaluate` takes):

- mean per-image Dice, sensitivity, precision and predicted / true vessel area, and the three
  per image;
- test-time input scales 1, 1.25, 1.5, 2 (frames enlarged bilinearly, probabilities resized
  back) at thresholds 0.4, 0.5, 0.6;
- post-processing at 0.5: small components removed (20, 50, 100, 200 px), only the components
  of at least a fraction of the largest, hysteresis (low, high);
- with ``--ensemble``: each weights file alone (``METHOD:weights=W``) and the mean of their
  probabilities.

``--overlay`` writes a PNG of four frames (the ones with the lowest precision): frame | true
positives green, false positives red, misses blue.

``--demo DEMO_OUT`` (a `make demo` / `angioseg demo --out DEMO_OUT` folder) also scores the
phantom run's segmentation on its contrast-filled frames as the demo does (vessel label 1,
threshold 0.5), and again with the catheter's true pixels (label 2) taken out of the
prediction: the share of the demo's phantom Dice that marking the catheter as vessel costs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from angioseg.eval.overlap import dice  # noqa: E402


def read_stills(folder: Path) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Names, `(H, W)` float32 frames in [0, 1] and bool masks of an images/ + masks/ folder."""
    from PIL import Image

    names = sorted(p.name for p in (folder / "images").iterdir())
    frames = [np.asarray(Image.open(folder / "images" / n).convert("L"), np.float32) / 255.0 for n in names]
    masks = [np.asarray(Image.open(folder / "masks" / n)) > 0 for n in names]
    return names, frames, masks


def probabilities(segmenter, frame: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """`(H, W)` vessel probability of one frame, the network run at `scale` x its size."""
    import torch
    import torch.nn.functional as F

    if scale == 1.0:
        return segmenter.probabilities(frame[None])[0]
    x = F.interpolate(torch.from_numpy(frame)[None, None], scale_factor=scale, mode="bilinear", align_corners=False)
    p = torch.from_numpy(segmenter.probabilities(x[0].numpy()))[None]
    return F.interpolate(p, size=frame.shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def mean_dice(predicted: list[np.ndarray], masks: list[np.ndarray]) -> float:
    return float(np.mean([dice(p, m) for p, m in zip(predicted, masks)]))


def keep_large(mask: np.ndarray, fraction: float) -> np.ndarray:
    """The 8-connected components of `mask` holding >= `fraction` of the largest one's pixels."""
    from scipy import ndimage as ndi

    labels, count = ndi.label(mask, np.ones((3, 3), bool))
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return np.isin(labels, np.flatnonzero(sizes >= fraction * sizes.max()) + 1)


def report_errors(names, masks, probs) -> None:
    predicted = [p > 0.5 for p in probs]
    sens = [(p & m).sum() / max(m.sum(), 1) for p, m in zip(predicted, masks)]
    prec = [(p & m).sum() / max(p.sum(), 1) for p, m in zip(predicted, masks)]
    area = sum(p.sum() for p in predicted) / max(sum(m.sum() for m in masks), 1)
    print(f"Dice {mean_dice(predicted, masks):.4f}  sensitivity {np.mean(sens):.3f}  precision {np.mean(prec):.3f}  "
          f"predicted / true area {area:.2f}")
    for name, p, m, s, q in zip(names, predicted, masks, sens, prec):
        print(f"  {name}: Dice {dice(p, m):.3f}  sensitivity {s:.3f}  precision {q:.3f}")


def report_post_processing(masks, probs) -> None:
    from skimage.filters import apply_hysteresis_threshold
    from skimage.morphology import remove_small_objects

    print("post-processing at 0.5:")
    for size in (20, 50, 100, 200):
        print(f"  components < {size} px removed: {mean_dice([remove_small_objects(p > 0.5, max_size=size - 1) for p in probs], masks):.4f}")
    for fraction in (0.05, 0.2, 1.0):
        print(f"  components >= {fraction} x the largest: {mean_dice([keep_large(p > 0.5, fraction) for p in probs], masks):.4f}")
    for low, high in ((0.4, 0.8), (0.5, 0.9)):
        print(f"  hysteresis {low}/{high}: {mean_dice([apply_hysteresis_threshold(p, low, high) for p in probs], masks):.4f}")


def write_overlay(path: Path, frames, masks, probs) -> None:
    from PIL import Image

    precision = [((p > 0.5) & m).sum() / max((p > 0.5).sum(), 1) for p, m in zip(probs, masks)]
    rows = []
    for i in np.argsort(precision)[:4]:
        grey = (frames[i] * 255).astype(np.uint8)
        rgb = np.stack([grey] * 3, axis=-1)
        shown, p, m = rgb.copy(), probs[i] > 0.5, masks[i]
        shown[p & m], shown[p & ~m], shown[~p & m] = (0, 200, 0), (255, 0, 0), (0, 0, 255)
        rows.append(np.concatenate([rgb, shown], axis=1))
    width = max(r.shape[1] for r in rows)
    Image.fromarray(np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)).save(path)
    print(f"overlay: {path}")


def report_demo_catheter(demo: Path) -> None:
    from PIL import Image

    probs = np.load(demo / "segmentation" / "probabilities.npz")["probabilities"][:, 1]
    annotations = sorted((demo / "phantom" / "Annotations").iterdir())[0]
    plain, without = [], []
    for t, path in enumerate(sorted(annotations.glob("*.png"))):
        truth = np.asarray(Image.open(path))
        if not (truth == 1).any():
            continue
        predicted = probs[t] > 0.5
        plain.append(dice(predicted, truth == 1))
        without.append(dice(predicted & (truth != 2), truth == 1))
    print(f"demo phantom ({len(plain)} frames with contrast): Dice {np.mean(plain):.3f}; "
          f"with the catheter's pixels taken out of the prediction {np.mean(without):.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stills", type=Path, help="folder with images/ and masks/")
    parser.add_argument("--method", default="cenet", help="method spec (default cenet)")
    parser.add_argument("--ensemble", default="", help="comma-separated weights files to score alone and averaged")
    parser.add_argument("--overlay", type=Path, default=None, help="write an overlay PNG of the four least precise frames")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--demo", type=Path, default=None, help="a demo output folder: the catheter's share of the phantom's Dice")
    args = parser.parse_args(argv)
    from angioseg.methods.base import get_from_spec
    from angioseg.threads import apply_threads

    apply_threads(args.threads)
    names, frames, masks = read_stills(args.stills)
    segmenter = get_from_spec(args.method)
    probs = [probabilities(segmenter, f) for f in frames]
    print(f"{args.method} on {len(names)} stills of {args.stills}")
    report_errors(names, masks, probs)
    print("test-time scale x threshold (Dice):")
    for scale in (1.0, 1.25, 1.5, 2.0):
        scaled = probs if scale == 1.0 else [probabilities(segmenter, f, scale) for f in frames]
        print(f"  scale {scale}: " + "  ".join(f"{t}: {mean_dice([p > t for p in scaled], masks):.4f}" for t in (0.4, 0.5, 0.6)))
    report_post_processing(masks, probs)
    if args.ensemble:
        members = []
        for weights in args.ensemble.split(","):
            member = get_from_spec(f"{args.method.split(':')[0]}:weights={weights}")
            members.append([probabilities(member, f) for f in frames])
            print(f"{weights}: Dice {mean_dice([p > 0.5 for p in members[-1]], masks):.4f}")
        average = [np.mean(stack, axis=0) for stack in zip(*members)]
        print("mean of their probabilities: " + "  ".join(f"{t}: {mean_dice([p > t for p in average], masks):.4f}" for t in (0.4, 0.5, 0.6)))
    if args.overlay:
        write_overlay(args.overlay, frames, masks, probs)
    if args.demo:
        report_demo_catheter(args.demo)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
