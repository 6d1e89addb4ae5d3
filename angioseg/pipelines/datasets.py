"""Making data sets with exact ground truth: phantom XCA runs, DSA liver runs and real-anatomy
pseudo-videos (DAVIS-style folders, `angioseg.data.davis`), as `angioseg data ...` and the demo
make them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from angioseg.errors import InputError
from angioseg.types import LabelMap, Video, vessel_labels

Item = TypeVar("Item")


def _quiet(items: Iterable[Item], **_: object) -> Iterable[Item]:
    return items


def make_phantom_set(
    out: str | os.PathLike[str],
    *,
    n: int = 1,
    seed: int = 0,
    size: int = 512,
    frames: int = 60,
    fps: float = 15.0,
    dicom: bool = True,
    overlay: bool = True,
    motion: bool = True,
    devices: Sequence[str] = (),
    progress: Callable[..., Iterable] = _quiet,
) -> Path:
    """`n` phantom runs (`angioseg.data.phantom`) in a DAVIS-style folder `out`, with one DICOM
    (`DICOM/NAME.dcm`) and one overlay video (`Overlays/NAME.mp4`) per run where asked; the
    exact motion in `Motion/` unless `motion` is False. `devices` (names from
    `angioseg.data.phantom.DEVICE_NAMES`) go into every run, each its own label in the folder's
    label table; without them the runs are the same as before devices existed. `progress`
    wraps the run loop (e.g. tqdm)."""
    from angioseg.data.davis import DavisWriter
    from angioseg.data.phantom import PhantomParams, generate_phantom, phantom_label_table
    from angioseg.data.seeds import derive_seed

    if size < 32:
        raise InputError(f"size must be at least 32 pixels, got {size}")
    devices = tuple(devices) if not isinstance(devices, str) else devices
    label_table = phantom_label_table(devices)  # also checks the names before anything is written
    info = {"generator": "angioseg data phantom", "seed": seed, "n": n}
    with DavisWriter(out, label_table=label_table, info=info) as writer:
        for index in progress(range(n), desc="phantom runs", unit="run"):
            run_seed = derive_seed(seed, index)
            params = PhantomParams.sample(
                np.random.default_rng(run_seed), size=size, frames=frames, fps=fps, devices=devices
            )
            run = generate_phantom(params, seed=run_seed)
            name = f"phantom_{index:03d}"
            writer.add(name, run.video, run.masks, flow_backward=run.flow_backward if motion else None,
                       meta={"seed": run_seed, "generator": params.to_dict()})
            _write_extras(writer.path, name, run.video, run.masks, dicom=dicom, overlay=overlay)
    return Path(out)


def make_dsa_liver_set(
    out: str | os.PathLike[str],
    *,
    n: int = 1,
    seed: int = 0,
    size: int | tuple[int, int] = 512,
    frames: int = 24,
    fps: float = 3.0,
    dicom: bool = True,
    overlay: bool = False,
    progress: Callable[..., Iterable] = _quiet,
) -> Path:
    """`n` DSA liver runs (`angioseg.data.dsa_liver`) in a DAVIS-style folder `out`: frames,
    label maps (0 background, 1 liver, 2 tumour), each run's tumour ids in
    `Instances/NAME.npz` (`instances`, (T, H, W) uint8), one DICOM per run (`DICOM/NAME.dcm`)
    unless `dicom` is False, an overlay video where `overlay`. meta.json carries each run's
    seed, parameters and tumour list (id, class, centroid, area). `size` is an int (square) or
    (height, width). `progress` wraps the run loop (e.g. tqdm)."""
    from angioseg.data.davis import DavisWriter
    from angioseg.data.dsa_liver import DSA_LIVER_LABELS, NEUTRAL, DSALiverParams, generate_dsa_liver
    from angioseg.data.seeds import derive_seed

    height, width = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if min(height, width) < 32:
        raise InputError(f"size must be at least 32 pixels, got {width}x{height}")
    DSALiverParams(height=height, width=width, frames=frames, fps=fps)  # checks them before anything is written
    info = {"generator": "angioseg data dsa-liver", "seed": seed, "n": n,
            "display": {"neutral": float(NEUTRAL), "iodine": "dark"}}
    with DavisWriter(out, label_table=DSA_LIVER_LABELS, info=info) as writer:
        for index in progress(range(n), desc="dsa-liver runs", unit="run"):
            run_seed = derive_seed(seed, index)
            params = DSALiverParams.sample(np.random.default_rng(run_seed), height=height, width=width, frames=frames, fps=fps)
            run = generate_dsa_liver(params, seed=run_seed)
            name = f"dsa_liver_{index:03d}"
            writer.add(name, run.video, run.masks, meta={
                "seed": run_seed, "generator": params.to_dict(), "tumours": run.tumours,
                "display_gain": params.display_gain,
            })
            (writer.path / "Instances").mkdir(exist_ok=True)
            np.savez_compressed(writer.path / "Instances" / f"{name}.npz", instances=run.instances)
            _write_extras(writer.path, name, run.video, run.masks, dicom=dicom, overlay=overlay)
    return Path(out)


def _write_extras(root: Path, name: str, video: Video, masks: LabelMap, *, dicom: bool, overlay: bool) -> None:
    from angioseg.io import write_dicom, write_overlay_video

    if dicom:
        (root / "DICOM").mkdir(exist_ok=True)
        write_dicom(video, root / "DICOM" / f"{name}.dcm", bits_stored=8, fps_tag="FrameTime")
    if overlay:
        (root / "Overlays").mkdir(exist_ok=True)
        write_overlay_video(video, masks.labels, masks.label_table, root / "Overlays" / f"{name}.mp4")


LABEL_STYLES = ("as-annotated", "all", "partial")
#: Label of a pixel in a "partial"-style mask that the annotation leaves out and the
#: unannotated-branch finder marks as vessel (`annotated_frames`, `make_still_set`).
UNCERTAIN_LABEL = 2


def annotated_frames(
    images: str | os.PathLike[str], *, masks: str | os.PathLike[str] | None = None,
    arcade_labels: str | os.PathLike[str] | None = None, limit: int | None = None, first: int = 0,
    label_style: str = "as-annotated",
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield (name, image (H, W) float32, vessel mask (H, W) bool) for frames `first` ..
    `first + limit - 1` (natural order) of `images`, the mask from `masks` (same file stem) or
    from ARCADE polygons in `arcade_labels`. `label_style` "all" adds the contrast-filled
    branches the annotation leaves out (`angioseg.data.pseudo_video.all_vessels_mask`: for
    ARCADE's major-segment polygons); "as-annotated" keeps the annotation; "partial" yields
    the mask as (H, W) uint8 labels instead: 1 annotated, `UNCERTAIN_LABEL` (2) for the
    branches "all" would add (found by a heuristic, so a trainer may leave them out of the
    loss rather than call them vessel or background)."""
    from angioseg.data.arcade import rasterise_polygons, read_yolo_polygons
    from angioseg.io.images import list_image_files, read_image
    from angioseg.io.labels import read_label_image

    images, mask_dir = Path(images), Path(masks if masks is not None else arcade_labels or "")
    if (masks is None) == (arcade_labels is None):
        raise InputError("give the masks of the frames as a mask folder or as ARCADE polygon files (one of the two)")
    if not images.is_dir():
        raise InputError(f"--images {images} is not a folder")
    if not mask_dir.is_dir():
        raise InputError(f"{mask_dir} is not a folder")
    files = list_image_files(images)
    if not files:
        raise InputError(f"{images} holds no images")
    if label_style not in LABEL_STYLES:
        raise InputError(f"label style must be one of {', '.join(LABEL_STYLES)}; got {label_style!r}")
    files = files[first : first + limit] if limit else files[first:]
    if not files:
        raise InputError(f"{images} holds no images from number {first + 1} on")
    masks_by_stem = {p.stem: p for p in list_image_files(mask_dir)} if masks is not None else {}
    for image_path in files:
        image = read_image(image_path)
        if masks is not None:
            mask_path = masks_by_stem.get(image_path.stem)
            if mask_path is None:
                raise InputError(f"image {image_path.name} has no mask in {mask_dir}")
            mask = read_label_image(mask_path) > 0
        else:
            mask_path = mask_dir / f"{image_path.stem}.txt"
            if not mask_path.exists():
                raise InputError(f"image {image_path.name} has no polygon file {mask_path}")
            mask = rasterise_polygons(read_yolo_polygons(mask_path), image.shape[0], image.shape[1])
        if mask.shape != image.shape:
            raise InputError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path.name} is {image.shape[1]}x{image.shape[0]}"
            )
        if not mask.any():
            raise InputError(f"mask {mask_path} of image {image_path.name} is empty")
        if label_style in ("all", "partial"):
            from angioseg.data.pseudo_video import all_vessels_mask

            every = all_vessels_mask(image, mask)
            if label_style == "partial":
                mask = np.where(mask, 1, np.where(every, UNCERTAIN_LABEL, 0)).astype(np.uint8)
            else:
                mask = every
        yield image_path.stem, image, mask


def make_pseudo_video_set(
    out: str | os.PathLike[str],
    frames_and_masks: Iterable[tuple[str, np.ndarray, np.ndarray]],
    *,
    frames: int = 32,
    fps: float | None = None,
    seed: int = 0,
    motion: bool = True,
    source_name: str = "",
    progress: Callable[..., Iterable] = _quiet,
) -> int:
    """One real-anatomy pseudo-video (`angioseg.data.pseudo_video`) per (name, image, mask) in
    a DAVIS-style folder `out`; every input is read and checked before any output is made.
    Returns the number of videos."""
    from angioseg.data.davis import DavisWriter
    from angioseg.data.pseudo_video import PseudoVideoParams, make_pseudo_video
    from angioseg.data.seeds import derive_seed

    inputs = list(frames_and_masks)
    info = {"generator": "angioseg data make-videos", "seed": seed, "source_images": source_name}
    with DavisWriter(out, label_table=vessel_labels(), info=info) as writer:
        for index, (name, image, mask) in enumerate(progress(inputs, desc="pseudo-videos", unit="video")):
            video_seed = derive_seed(seed, index)
            params = PseudoVideoParams.sample(np.random.default_rng(video_seed), frames=frames, fps=fps)
            result = make_pseudo_video(image, mask, params=params, seed=video_seed)
            writer.add(name, result.video, result.masks, flow_backward=result.flow_backward if motion else None,
                       meta={"seed": video_seed, "source_image": name, "start_point": list(result.start_point),
                             "generator": params.to_dict()})
    return len(inputs)


def make_still_set(
    out: str | os.PathLike[str],
    frames_and_masks: Iterable[tuple[str, np.ndarray, np.ndarray]],
    *,
    progress: Callable[..., Iterable] = _quiet,
) -> int:
    """An image + mask folder `out` (``images/NAME.png`` 8-bit grey, ``masks/NAME.png`` 0/255)
    from (name, image, vessel mask) triples, e.g. ARCADE stills with their polygons rasterised:
    the layout `angioseg evaluate` scores one frame per case on. A mask given as uint8 labels
    ("partial" style of `annotated_frames`) writes its label 1 to ``masks/`` and its
    `UNCERTAIN_LABEL` pixels to ``uncertain/NAME.png`` (0/255), which training leaves out of the
    loss. Written atomically; every input is read before any output. Returns the number of
    stills."""
    import cv2

    from angioseg.data.datasets import UNCERTAIN_DIR
    from angioseg.io.atomic import atomic_directory

    inputs = list(frames_and_masks)
    with atomic_directory(out, replaceable=_is_still_set, what="data folder") as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        for name, image, mask in progress(inputs, desc="stills", unit="image"):
            cv2.imwrite(str(tmp / "images" / f"{name}.png"), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
            if mask.dtype == np.uint8:  # "partial" labels
                (tmp / UNCERTAIN_DIR).mkdir(exist_ok=True)
                cv2.imwrite(str(tmp / UNCERTAIN_DIR / f"{name}.png"), (mask == UNCERTAIN_LABEL).astype(np.uint8) * 255)
                mask = mask == 1
            cv2.imwrite(str(tmp / "masks" / f"{name}.png"), mask.astype(np.uint8) * 255)
        (tmp / STILL_SET_MARKER).write_text(f"{len(inputs)} stills written by angioseg data stills\n")
    return len(inputs)


#: The file by which `make_still_set` recognises its own earlier output (replaced on a rerun).
STILL_SET_MARKER = "angioseg-stills.txt"


def _is_still_set(folder: Path) -> bool:
    return (Path(folder) / STILL_SET_MARKER).is_file()
