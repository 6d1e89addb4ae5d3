"""DAVIS-style video folders: the one on-disk layout for every video data set of angioseg.

Layout (one folder per data set)::

    ROOT/
      meta.json                      format, label table, and per sequence: fps, frames,
                                     size, pixel spacing, source and generator parameters
      JPEGImages/<seq>/00000.png     frames (8-bit grey PNG; DAVIS's folder name is kept)
      Annotations/<seq>/00000.png    label maps as indexed PNG with the DAVIS palette
      Motion/<seq>.npz               optional: exact backward flow of the labelled layer,
                                     `flow_backward` (T-1, H, W, 2) float16, (dx, dy), frame
                                     t+1 -> t on frame t+1's grid
      DICOM/<seq>.dcm, Overlays/<seq>.mp4   optional extras written by the generators

A folder without `meta.json` (a plain DAVIS download) is read too: fps is then unknown and
the label table is built from the labels found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from angioseg.errors import InputError
from angioseg.io.arrays import CORRUPT_DATA_ERRORS, one_line
from angioseg.io.atomic import atomic_directory
from angioseg.io.images import natural_sort_key, read_image_folder, write_frame_pngs
from angioseg.io.labels import read_label_pngs, write_label_pngs
from angioseg.types import LabelMap, Video

FORMAT_NAME = "angioseg-davis"
FORMAT_VERSION = 1
FRAMES_DIR = "JPEGImages"
ANNOTATIONS_DIR = "Annotations"
MOTION_DIR = "Motion"
META_FILE = "meta.json"


@dataclass
class Sequence:
    """One sequence of a DAVIS-style folder, loaded.

    Attributes:
        name: the sequence folder name.
        video: its frames.
        masks: its label maps, or None where the folder has no annotations for it.
        flow_backward: `(T-1, H, W, 2)` float32 exact motion, or None.
        meta: the sequence's entry of meta.json (fps, generator parameters...).
    """

    name: str
    video: Video
    masks: LabelMap | None
    flow_backward: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class DavisFolder:
    """Read access to a DAVIS-style folder: `names`, `load(name)`, iteration."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{self.root} is not a folder")
        frames_root = self.root / FRAMES_DIR
        if not frames_root.is_dir():
            raise InputError(f"{self.root} is not a DAVIS-style folder: it has no {FRAMES_DIR}/ subfolder")
        self._label_table: dict[int, str] = {}
        self.meta = self._read_meta()
        self.names = sorted((p.name for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=natural_sort_key)
        if not self.names:
            raise InputError(f"{frames_root} holds no sequence folders")

    def _read_meta(self) -> dict[str, Any]:
        path = self.root / META_FILE
        if not path.exists():
            return {}
        try:
            meta = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path} is not valid JSON ({error.msg if hasattr(error, 'msg') else error})") from None
        if not isinstance(meta, dict):
            raise InputError(f"{path} must hold a JSON object")
        self._label_table = _parse_label_table(path, meta.get("label_table"))
        sequences = meta.get("sequences", {})
        if not isinstance(sequences, dict) or not all(isinstance(v, dict) for v in sequences.values()):
            raise InputError(f"{path} has a 'sequences' entry that is not an object of objects (name -> facts)")
        return meta

    @property
    def label_table(self) -> dict[int, str] | None:
        return dict(self._label_table) or None

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Sequence]:
        for name in self.names:
            yield self.load(name)

    def sequence_meta(self, name: str) -> dict[str, Any]:
        return dict(self.meta.get("sequences", {}).get(name, {}))

    def load(self, name: str, *, motion: bool = True) -> Sequence:
        """Load frames, masks (when present) and, with `motion`, the motion of sequence `name`."""
        if name not in self.names:
            raise InputError(f"{self.root} has no sequence named {name!r}")
        meta = self.sequence_meta(name)
        video = read_image_folder(self.root / FRAMES_DIR / name)
        spacing = meta.get("pixel_spacing")
        try:
            video = Video(video.frames, fps=meta.get("fps", video.fps), pixel_spacing=spacing or None,
                          metadata={**video.metadata, "sequence": name})
        except InputError as error:
            raise InputError(f"{self.root / META_FILE}, sequence {name!r}: {error}") from None
        flow = self._load_motion(name, video) if motion else None
        return Sequence(name, video, self._load_masks(name, video), flow, meta)

    def _load_masks(self, name: str, video: Video) -> LabelMap | None:
        folder = self.root / ANNOTATIONS_DIR / name
        if not folder.is_dir():
            return None
        labels = read_label_pngs(folder)
        if labels.shape != video.frames.shape:
            raise InputError(
                f"annotations in {folder} have shape {labels.shape} but the frames are {video.frames.shape} (T, H, W)"
            )
        table = self.label_table or {int(v): f"label {int(v)}" for v in np.unique(labels) if v}
        unknown = sorted({int(v) for v in np.unique(labels)} - set(table) - {0})
        if unknown:
            raise InputError(f"annotations in {folder} hold ids {unknown} that the label table of "
                             f"{self.root / META_FILE} does not name")
        return LabelMap(labels, {0: "background", **table})

    def _load_motion(self, name: str, video: Video) -> np.ndarray | None:
        path = self.root / MOTION_DIR / f"{name}.npz"
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                flow = data["flow_backward"].astype(np.float32)
        except MemoryError:
            raise InputError(f"{path} declares a motion array too large for this machine's memory") from None
        except CORRUPT_DATA_ERRORS as error:
            raise InputError(f"{path} is not a readable motion file ({type(error).__name__}: {one_line(error)})") from None
        expected = (video.num_frames - 1, video.height, video.width, 2)
        if flow.shape != expected:
            raise InputError(f"motion in {path} has shape {flow.shape}; expected {expected}")
        return flow


def _parse_label_table(path: Path, table: Any) -> dict[int, str]:
    """meta.json's label table {"id": "name"} as {int: str}; {} when absent; InputError when
    it is not an object with non-negative integer keys and text names."""
    if table in (None, {}):
        return {}
    if not isinstance(table, dict):
        raise InputError(f"{path} has a 'label_table' that is not an object of id -> name")
    parsed: dict[int, str] = {}
    for key, name in table.items():
        try:
            label = int(key)
        except (TypeError, ValueError):
            raise InputError(f"{path} has a label-table key {str(key)[:40]!r} that is not an integer id") from None
        if label < 0 or not isinstance(name, str):
            raise InputError(f"{path} has a label-table entry {label} that is not a non-negative id with a text name")
        parsed[label] = name
    return parsed


def is_davis_folder(folder: Path) -> bool:
    """Whether `folder` is a DAVIS-style folder angioseg wrote (its meta file says so)."""
    try:
        meta = json.loads((Path(folder) / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT_NAME


class DavisWriter:
    """Write a DAVIS-style folder atomically: nothing appears at `root` until `close()`.

    Use as a context manager::

        with DavisWriter(out, label_table=DEFAULT_LABELS, info={...}) as writer:
            writer.add("seq0", video, masks, flow_backward=flow, meta={...})
            extra_dir = writer.path / "DICOM"   # extras go beside, inside the same folder

    On an exception the partial folder is removed and `root` is left as it was.
    """

    def __init__(self, root: str | Path, *, label_table: dict[int, str], info: dict[str, Any] | None = None) -> None:
        self.root = Path(root)
        self.label_table = {int(k): str(v) for k, v in label_table.items()}
        self.info = dict(info or {})
        self.sequences: dict[str, dict[str, Any]] = {}
        self._context = atomic_directory(self.root, replaceable=is_davis_folder, what="data folder")
        self.path: Path = Path()

    def __enter__(self) -> "DavisWriter":
        self.path = self._context.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        if exc_type is None:
            self._write_meta()
        return self._context.__exit__(exc_type, exc, tb)

    def add(
        self,
        name: str,
        video: Video,
        masks: LabelMap | None,
        *,
        flow_backward: np.ndarray | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Write one sequence's frames, masks and motion now, and remember its meta entry."""
        if name in self.sequences:
            raise InputError(f"sequence name {name!r} is used twice")
        if masks is not None:
            masks.check_matches(video)
        write_frame_pngs(video, self.path / FRAMES_DIR / name, bits=8)
        if masks is not None:
            write_label_pngs(masks.labels, self.path / ANNOTATIONS_DIR / name)
        if flow_backward is not None:
            (self.path / MOTION_DIR).mkdir(exist_ok=True)
            np.savez_compressed(self.path / MOTION_DIR / f"{name}.npz", flow_backward=flow_backward.astype(np.float16))
        self.sequences[name] = {
            "fps": video.fps,
            "frames": video.num_frames,
            "height": video.height,
            "width": video.width,
            "pixel_spacing": list(video.pixel_spacing) if video.pixel_spacing else None,
            "has_masks": masks is not None,
            "has_motion": flow_backward is not None,
            **(meta or {}),
        }

    def _write_meta(self) -> None:
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "label_table": {str(k): v for k, v in sorted(self.label_table.items())},
            **self.info,
            "sequences": self.sequences,
        }
        (self.path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
