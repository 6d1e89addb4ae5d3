"""`angioseg data ...`: make data sets with exact ground truth (`angioseg.pipelines.datasets`).

- `angioseg data phantom`: phantom XCA runs (DAVIS-style folder + one DICOM and one overlay
  video per sequence).
- `angioseg data dsa-liver`: DSA runs of the liver during TACE with tumour and liver masks
  (DAVIS-style folder + one DICOM per run).
- `angioseg data make-videos`: real-anatomy pseudo-videos from annotated frames.
- `angioseg data stills`: an image + mask folder from annotated frames (e.g. ARCADE polygons).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from angioseg.cli.common import add_threads_option, frame_rate, non_negative_int, positive_int, progress_bar


def register(verbs: argparse._SubParsersAction) -> None:
    data = verbs.add_parser("data", help="generate data sets with exact ground truth")
    commands = data.add_subparsers(dest="data_verb", metavar="COMMAND", parser_class=type(data))
    commands.required = True
    _register_phantom(commands)
    _register_dsa_liver(commands)
    _register_make_videos(commands)
    _register_stills(commands)


def _register_phantom(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("phantom", help="generate phantom XCA runs with exact masks and motion")
    parser.add_argument("--out", required=True, type=Path,
                        help="output DAVIS-style folder (new, empty, or an earlier angioseg data folder, replaced atomically)")
    parser.add_argument("--n", type=positive_int, default=1, help="number of sequences (default 1)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=positive_int, default=512, help="frame height and width in pixels (default 512)")
    parser.add_argument("--frames", type=positive_int, default=60, help="frames per sequence (default 60)")
    parser.add_argument("--fps", type=frame_rate, default=15.0, help="frame rate (default 15)")
    parser.add_argument("--no-dicom", action="store_true", help="skip the DICOM file per sequence")
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay video per sequence")
    parser.add_argument("--no-motion", action="store_true", help="skip the exact motion fields (Motion/*.npz)")
    parser.add_argument("--devices", type=phantom_devices, default=(), metavar="NAMES",
                        help="devices in every run, each its own label: a comma list of "
                             "guidewire, marker, electrode, sternal_wire, clip, or 'all' (default none)")
    add_threads_option(parser)
    parser.set_defaults(run=run_phantom)


def phantom_devices(text: str) -> tuple[str, ...]:
    """`--devices`: 'all' or a comma list of phantom device names (checked here, so that a bad
    name is a usage error before anything runs)."""
    from angioseg.data.phantom import DEVICE_NAMES, PhantomParams
    from angioseg.errors import InputError

    if text.strip() == "all":
        return DEVICE_NAMES
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    try:
        return PhantomParams(size=32, frames=1, devices=names).devices
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_phantom(args: argparse.Namespace) -> int:
    from angioseg.pipelines.datasets import make_phantom_set

    make_phantom_set(args.out, n=args.n, seed=args.seed, size=args.size, frames=args.frames, fps=args.fps,
                     dicom=not args.no_dicom, overlay=not args.no_overlay, motion=not args.no_motion,
                     devices=args.devices, progress=progress_bar())
    print(f"wrote {args.n} phantom run(s) to {args.out}")
    return 0


def _register_dsa_liver(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dsa-liver", help="generate DSA liver runs (TACE) with exact tumour and liver masks")
    parser.add_argument("--out", required=True, type=Path,
                        help="output DAVIS-style folder (new, empty, or an earlier angioseg data folder, replaced atomically)")
    parser.add_argument("--n", type=positive_int, default=1, help="number of runs (default 1)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=frame_size, default=(512, 512), metavar="N|WxH",
                        help="frame size: N for N x N, or WIDTHxHEIGHT such as 1021x788 (default 512)")
    parser.add_argument("--frames", type=run_frames, default=24, help="frames per run (default 24; clinical runs have 20-30)")
    parser.add_argument("--fps", type=frame_rate, default=3.0, help="frame rate (default 3)")
    parser.add_argument("--no-dicom", action="store_true", help="skip the DICOM file per run")
    parser.add_argument("--overlay", action="store_true", help="also write an overlay video per run (Overlays/)")
    add_threads_option(parser)
    parser.set_defaults(run=run_dsa_liver)


def frame_size(text: str) -> tuple[int, int]:
    """`--size`: 'N' or 'WxH' -> (height, width), each 32-4096."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or not all(32 <= v <= 4096 for v in values):
        raise argparse.ArgumentTypeError(f"expected a frame size N or WxH with sides from 32 to 4096 pixels, got {text!r}")
    width, height = (values[0], values[0]) if len(values) == 1 else values
    return height, width


def run_frames(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"a DSA run needs at least 2 frames (the mask and one live frame), got {text!r}")
    return value


def run_dsa_liver(args: argparse.Namespace) -> int:
    from angioseg.pipelines.datasets import make_dsa_liver_set

    make_dsa_liver_set(args.out, n=args.n, seed=args.seed, size=args.size, frames=args.frames, fps=args.fps,
                       dicom=not args.no_dicom, overlay=args.overlay, progress=progress_bar())
    print(f"wrote {args.n} DSA liver run(s) to {args.out}")
    return 0


def _register_make_videos(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("make-videos", help="turn annotated frames into real-anatomy pseudo-videos")
    _add_annotated_frames_options(parser)
    parser.add_argument("--out", required=True, type=Path,
                        help="output DAVIS-style folder (new, empty, or an earlier angioseg data folder, replaced atomically)")
    parser.add_argument("--frames", type=positive_int, default=32, help="frames per video (default 32)")
    parser.add_argument("--fps", type=frame_rate, default=None,
                        help="frame rate (default: drawn per video from 7.5-30 fps, like clinical runs)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-motion", action="store_true", help="skip the exact motion fields (Motion/*.npz)")
    add_threads_option(parser)
    parser.set_defaults(run=run_make_videos)


def run_make_videos(args: argparse.Namespace) -> int:
    from angioseg.pipelines.datasets import annotated_frames, make_pseudo_video_set

    frames = annotated_frames(args.images, masks=args.masks, arcade_labels=args.arcade_labels, limit=args.limit,
                              first=args.first - 1, label_style=args.label_style)
    count = make_pseudo_video_set(args.out, frames, frames=args.frames, fps=args.fps, seed=args.seed, motion=not args.no_motion,
                                  source_name=args.images.name, progress=progress_bar())
    print(f"wrote {count} pseudo-video(s) to {args.out}")
    return 0


def _add_annotated_frames_options(parser: argparse.ArgumentParser, *, styles: tuple[str, ...] = ("as-annotated", "all")) -> None:
    parser.add_argument("--images", required=True, type=Path, help="folder of frames")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--masks", type=Path, help="folder of vessel masks with the images' file stems")
    source.add_argument("--arcade-labels", type=Path, help="folder of ARCADE/YOLO polygon .txt files")
    parser.add_argument("--limit", type=positive_int, default=None, help="use only K frames (natural order)")
    parser.add_argument("--first", type=positive_int, default=1, help="start at the N-th frame in natural order (default 1)")
    help_text = "all: add the contrast-filled branches the annotation leaves out (ARCADE marks major segments only)"
    if "partial" in styles:
        help_text += "; partial: write those branches to uncertain/ instead, for training to leave out of the loss"
    parser.add_argument("--label-style", choices=styles, default="as-annotated", help=help_text)


def _register_stills(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("stills", help="an image + mask folder (images/, masks/) from annotated frames")
    _add_annotated_frames_options(parser, styles=("as-annotated", "all", "partial"))
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (new, empty, or an earlier one of this verb, replaced atomically)")
    add_threads_option(parser)
    parser.set_defaults(run=run_stills)


def run_stills(args: argparse.Namespace) -> int:
    from angioseg.pipelines.datasets import annotated_frames, make_still_set

    frames = annotated_frames(args.images, masks=args.masks, arcade_labels=args.arcade_labels, limit=args.limit,
                              first=args.first - 1, label_style=args.label_style)
    count = make_still_set(args.out, frames, progress=progress_bar())
    print(f"wrote {count} still(s) to {args.out}")
    return 0
