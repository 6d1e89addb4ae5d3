"""`angioseg data ...`: make data sets with exact ground truth.

- `angioseg data phantom`: phantom XCA runs (DAVIS-style folder + one DICOM and one overlay
  video per sequence).
- `angioseg data make-videos`: real-anatomy pseudo-videos from annotated frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from angioseg.errors import InputError
from angioseg.types import DEFAULT_LABELS, Video

VESSEL_ONLY_LABELS = {0: "background", 1: "vessel"}


def register(verbs: argparse._SubParsersAction) -> None:
    data = verbs.add_parser("data", help="generate data sets with exact ground truth")
    commands = data.add_subparsers(dest="data_verb", metavar="COMMAND", parser_class=type(data))
    commands.required = True
    _register_phantom(commands)
    _register_make_videos(commands)


# ---- argument types ----------------------------------------------------------------------
def integer_at_least(minimum: int, kind: str):
    """An argparse type: an integer >= `minimum`, with a one-line message naming `kind`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {kind} integer, got {text!r}")
        return value

    return parse


positive_int = integer_at_least(1, "positive")
non_negative_int = integer_at_least(0, "non-negative")


def frame_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame rate in frames per second, got {text!r}") from None
    if not 1.0 <= value <= 120.0:
        raise argparse.ArgumentTypeError(f"frame rate must lie in [1, 120] fps, got {text!r}")
    return value


# ---- phantom -----------------------------------------------------------------------------
def _register_phantom(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("phantom", help="generate phantom XCA runs with exact masks and motion")
    parser.add_argument("--out", required=True, type=Path, help="output DAVIS-style folder (replaced atomically)")
    parser.add_argument("--n", type=positive_int, default=1, help="number of sequences (default 1)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=positive_int, default=512, help="frame height and width in pixels (default 512)")
    parser.add_argument("--frames", type=positive_int, default=60, help="frames per sequence (default 60)")
    parser.add_argument("--fps", type=frame_rate, default=15.0, help="frame rate (default 15)")
    parser.add_argument("--no-dicom", action="store_true", help="skip the DICOM file per sequence")
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay video per sequence")
    parser.add_argument("--no-motion", action="store_true", help="skip the exact motion fields (Motion/*.npz)")
    parser.set_defaults(run=run_phantom)


def run_phantom(args: argparse.Namespace) -> int:
    from angioseg.data.davis import DavisWriter
    from angioseg.data.phantom import PhantomParams, generate_phantom
    from angioseg.data.seeds import derive_seed

    if args.size < 32:
        raise InputError(f"--size must be at least 32 pixels, got {args.size}")
    info = {"generator": "angioseg data phantom", "seed": args.seed, "n": args.n}
    with DavisWriter(args.out, label_table=DEFAULT_LABELS, info=info) as writer:
        for index in tqdm(range(args.n), desc="phantom runs", unit="run", disable=None):
            seed = derive_seed(args.seed, index)
            params = PhantomParams.sample(np.random.default_rng(seed), size=args.size, frames=args.frames, fps=args.fps)
            run = generate_phantom(params, seed=seed)
            name = f"phantom_{index:03d}"
            writer.add(
                name,
                run.video,
                run.masks,
                flow_backward=None if args.no_motion else run.flow_backward,
                meta={"seed": seed, "generator": params.to_dict()},
            )
            _write_extras(writer.path, name, run.video, run.masks, dicom=not args.no_dicom, overlay=not args.no_overlay)
    print(f"wrote {args.n} phantom run(s) to {args.out}")
    return 0


def _write_extras(root: Path, name: str, video: Video, masks, *, dicom: bool, overlay: bool) -> None:
    from angioseg.io import write_dicom, write_overlay_video

    if dicom:
        (root / "DICOM").mkdir(exist_ok=True)
        write_dicom(video, root / "DICOM" / f"{name}.dcm", bits_stored=8, fps_tag="FrameTime")
    if overlay:
        (root / "Overlays").mkdir(exist_ok=True)
        write_overlay_video(video, masks.labels, masks.label_table, root / "Overlays" / f"{name}.mp4")


# ---- real-anatomy pseudo-videos ----------------------------------------------------------
def _register_make_videos(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("make-videos", help="turn annotated frames into real-anatomy pseudo-videos")
    parser.add_argument("--images", required=True, type=Path, help="folder of frames")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--masks", type=Path, help="folder of vessel masks with the images' file stems")
    source.add_argument("--arcade-labels", type=Path, help="folder of ARCADE/YOLO polygon .txt files")
    parser.add_argument("--out", required=True, type=Path, help="output DAVIS-style folder (replaced atomically)")
    parser.add_argument("--frames", type=positive_int, default=32, help="frames per video (default 32)")
    parser.add_argument("--fps", type=frame_rate, default=None,
                        help="frame rate (default: drawn per video from 7.5-30 fps, like clinical runs)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--limit", type=positive_int, default=None, help="use only the first K frames (natural order)")
    parser.add_argument("--no-motion", action="store_true", help="skip the exact motion fields (Motion/*.npz)")
    parser.set_defaults(run=run_make_videos)


def annotated_frames(args: argparse.Namespace) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (name, image (H, W) float32, vessel mask (H, W) bool) for each input frame."""
    from angioseg.data.arcade import rasterise_polygons, read_yolo_polygons
    from angioseg.io.images import list_image_files, read_image
    from angioseg.io.labels import read_label_image

    if not args.images.is_dir():
        raise InputError(f"--images {args.images} is not a folder")
    mask_dir = args.masks if args.masks is not None else args.arcade_labels
    if not mask_dir.is_dir():
        raise InputError(f"{mask_dir} is not a folder")
    images = list_image_files(args.images)
    if not images:
        raise InputError(f"{args.images} holds no images")
    images = images[: args.limit] if args.limit else images
    masks_by_stem = {p.stem: p for p in list_image_files(mask_dir)} if args.masks is not None else {}
    for image_path in images:
        image = read_image(image_path)
        if args.masks is not None:
            mask_path = masks_by_stem.get(image_path.stem)
            if mask_path is None:
                raise InputError(f"image {image_path.name} has no mask in {mask_dir}")
            mask = read_label_image(mask_path) > 0
        else:
            label_path = mask_dir / f"{image_path.stem}.txt"
            if not label_path.exists():
                raise InputError(f"image {image_path.name} has no polygon file {label_path}")
            mask = rasterise_polygons(read_yolo_polygons(label_path), image.shape[0], image.shape[1])
            mask_path = label_path
        if mask.shape != image.shape:
            raise InputError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path.name} is {image.shape[1]}x{image.shape[0]}"
            )
        if not mask.any():
            raise InputError(f"mask {mask_path} of image {image_path.name} is empty")
        yield image_path.stem, image, mask


def run_make_videos(args: argparse.Namespace) -> int:
    from angioseg.data.davis import DavisWriter
    from angioseg.data.pseudo_video import PseudoVideoParams, make_pseudo_video
    from angioseg.data.seeds import derive_seed

    frames = list(annotated_frames(args))  # validates every input before any output is made
    info = {"generator": "angioseg data make-videos", "seed": args.seed, "source_images": args.images.name}
    with DavisWriter(args.out, label_table=VESSEL_ONLY_LABELS, info=info) as writer:
        for index, (name, image, mask) in enumerate(tqdm(frames, desc="pseudo-videos", unit="video", disable=None)):
            seed = derive_seed(args.seed, index)
            params = PseudoVideoParams.sample(np.random.default_rng(seed), frames=args.frames, fps=args.fps)
            result = make_pseudo_video(image, mask, params=params, seed=seed)
            writer.add(
                name,
                result.video,
                result.masks,
                flow_backward=None if args.no_motion else result.flow_backward,
                meta={"seed": seed, "source_image": name, "start_point": list(result.start_point), "generator": params.to_dict()},
            )
    print(f"wrote {len(frames)} pseudo-video(s) to {args.out}")
    return 0
