"""Copy trained weights into the package (angioseg/weights/NAME.safetensors) with their provenance.

    python scripts/ship_weights.py out/runs2/cenet3d2d-n2/best.safetensors cenet3d2d-n2 [...PATH NAME]
    python scripts/ship_weights.py        # only rewrite angioseg/weights/README.md
    LABEL_STYLE=all python scripts/ship_weights.py RUN/last.safetensors cenet   # weights trained before
                                          # the label style was recorded ("syntax" otherwise)

The shipped file holds the same tensors; its metadata keeps what `angioseg train` recorded
(command, config, best step, validation Dice, torch version) and adds a description of every
training and validation folder read from its meta.json (generator, seed, sequence count,
frames, source images) and the script that makes them. Refuses files over 20 MB.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safetensors.torch import load_file, save_file  # noqa: E402

from angioseg.io.atomic import atomic_file  # noqa: E402
from angioseg.methods.supervised.weights import MODEL_SPECS, read_metadata, weights_dir  # noqa: E402

MAX_BYTES = 20 * 1024 * 1024
DATA_SCRIPT = "scripts/make_training_data.sh"
DATA_SCRIPT_ALL = "scripts/make_training_data_all.sh"
#: How the training data of architectures shipped without `ship` were made.
DATA_MADE_BY = {"ltdnet": "angioseg data dsa-liver --out DATA/train --n 160 --seed 1 --size 512 --no-dicom "
                          "(DSA liver phantoms; scripts/train_ltdnet.sh trains, scripts/evaluate_ltdnet.sh scores)"}
#: Weights trained before the style was recorded are ARCADE major-segment ("syntax") models.
LABEL_STYLE = "syntax"


def describe_folder(folder: str) -> dict:
    """What a DAVIS-style training folder is, from its meta.json (paths relative to the repo)."""
    path = Path(folder) if Path(folder).is_absolute() else ROOT / folder
    if (path / "images").is_dir() and (path / "masks").is_dir():  # an image + mask folder (angioseg data stills)
        names = sorted(p.stem for p in (path / "images").iterdir())
        description = {"generator": "angioseg data stills", "stills": len(names), "first": names[0] if names else None}
        if (path / "uncertain").is_dir():
            description["uncertain"] = "uncertain/: branches the annotation leaves out, left out of the loss (--label-style partial)"
        return description
    meta = json.loads((path / "meta.json").read_text())
    sequences = meta.get("sequences", {})
    frames = sorted({entry.get("frames") for entry in sequences.values()})
    sources = [entry.get("source_image") for entry in sequences.values() if entry.get("source_image")]
    description = {
        "generator": meta.get("generator"),
        "seed": meta.get("seed"),
        "sequences": len(sequences),
        "frames_per_sequence": frames,
        "label_table": meta.get("label_table"),
    }
    if sources:
        description["source_images"] = f"ARCADE syntax {sources[0]}..{sources[-1]} ({len(sources)} images)"
    return description


def ship(source: Path, name: str) -> Path:
    if name not in MODEL_SPECS:
        raise SystemExit(f"unknown model {name!r}; choose one of {', '.join(MODEL_SPECS)}")
    if source.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{source} is {source.stat().st_size / 2**20:.1f} MB, over the 20 MB limit")
    meta = read_metadata(source)
    info = dict(meta["info"])
    config = info.get("config", {})
    folders = list(dict.fromkeys(config.get("data", []) + config.get("val", [])))
    info["data_description"] = {folder: describe_folder(folder) for folder in folders}
    info["data_made_by"] = DATA_SCRIPT if config.get("label_style", "syntax") == "syntax" else DATA_SCRIPT_ALL
    config.setdefault("label_style", os.environ.get("LABEL_STYLE", LABEL_STYLE))
    info["model_name"] = name
    init = config.get("init")
    if init and "init_from" not in info:  # the starting weights, named by content (the path may be overwritten)
        init_path = Path(init) if Path(init).is_absolute() else ROOT / init
        if init_path.is_file():
            import hashlib

            info["init_from"] = {"path": str(init), "sha256": hashlib.sha256(init_path.read_bytes()).hexdigest(),
                                 "note": os.environ.get("INIT_NOTE", "")}
    metadata = {"architecture": meta["architecture"], "options": json.dumps(meta["options"]),
                "radius": str(meta["radius"]), "info": json.dumps(info, default=str)}
    target = weights_dir() / f"{name}.safetensors"
    weights_dir().mkdir(exist_ok=True)
    with atomic_file(target) as tmp:
        save_file(load_file(str(source)), str(tmp), metadata=metadata)
    print(f"{name}: {source} -> {target} ({target.stat().st_size / 2**20:.2f} MB, "
          f"step {info.get('step')}, validation Dice {info.get('val_dice')})")
    return target


def write_weights_readme() -> Path:
    """angioseg/weights/README.md: one section per shipped file, from its own metadata."""
    lines = ["# Shipped weights", "",
             "Written by `python scripts/ship_weights.py` from each file's own metadata. Every file is",
             "safetensors (no unpickling), trained by `angioseg train` on generated data only",
             "(`scripts/make_training_data.sh`; ARCADE pixels are not in the repository).", ""]
    for path in sorted(weights_dir().glob("*.safetensors")):
        meta = read_metadata(path)
        info = meta["info"]
        count = sum(t.numel() for t in load_file(str(path)).values())
        dice = info.get("val_dice")
        lines += [f"## {path.name}", "",
                  f"- architecture `{meta['architecture']}`, options `{json.dumps(meta['options'])}`, clip radius {meta['radius']}",
                  f"- {count / 1e6:.3f} M numbers, {path.stat().st_size / 2**20:.2f} MB",
                  f"- step {info.get('step', info.get('steps_done'))} of {info.get('config', {}).get('steps')}"
                  + (f" ({info['selected_from']})" if info.get("selected_from") else "") + ", "
                  + (f"held-out Dice {dice:.4f} ({info.get('val_metric', 'mean Dice over evenly spaced frames, empty ones included')})"
                     if dice is not None else "no validation"),
                  f"- command: `{info.get('config', {}).get('command', '')}`",
                  *([f"- initialised from `{info['init_from']['path']}` as it was then (sha256 "
                     f"{info['init_from']['sha256'][:16]}…){'; ' + info['init_from']['note'] if info['init_from'].get('note') else ''}"]
                    if info.get("init_from") else []),
                  f"- torch {info.get('torch')}; data made by `{info.get('data_made_by', DATA_MADE_BY.get(meta['architecture']))}`"]
        for folder, description in info.get("data_description", {}).items():
            lines.append(f"- `{folder}`: {json.dumps(description)}")
        lines.append("")
    target = weights_dir() / "README.md"
    with atomic_file(target) as tmp:
        Path(tmp).write_text("\n".join(lines))
    return target


def main(argv: list[str]) -> None:
    if len(argv) % 2:
        raise SystemExit(__doc__)
    for source, name in zip(argv[::2], argv[1::2]):
        ship(Path(source), name)
    print(f"wrote {write_weights_readme()}")


if __name__ == "__main__":
    main(sys.argv[1:])
