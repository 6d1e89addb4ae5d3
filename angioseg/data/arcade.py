"""ARCADE (syntax task): real coronary angiography frames with vessel-segment polygons.

The data set (Popov et al., 2023, CC BY 4.0) is read in place and never copied into the
repository. Its layout::

    ROOT/train/images/N.png   512 x 512 8-bit grey
    ROOT/train/labels/N.txt   YOLO segmentation polygons, one a line: CLASS x1 y1 x2 y2 ...
    ROOT/val/images/N.png, ROOT/val/labels/N.txt

Coordinates are normalised to [0, 1] by the image width (x) and height (y). Classes 0-24 are
the coronary segments in SYNTAX numbering (`ARCADE_SEGMENT_NAMES`), class 25 marks a
stenosis. The union of classes 0-24 is the annotated vessel tree (major segments only).

The root is passed explicitly or named by `$ANGIOSEG_ARCADE` (the test suite sets it to
``<repo>/../shared/data/arcade-syntax`` where that folder exists).

Rasterisation convention (exact, shared by every function here): a normalised point (x, y)
lies at ``(x * width, y * height)`` in pixel units where pixel (row i, column j) covers
``[j, j + 1) x [i, i + 1)`` and has its centre at ``(j + 0.5, i + 0.5)``. A pixel is inside a
polygon when its centre is, by the non-zero winding rule (so a self-crossing outline is filled,
not punched). Centres lying exactly on an edge follow the usual top-left rule: a centre on a
left or top edge is in, on a right or bottom edge is out, so polygons that share an edge never
both claim a pixel and a polygon's area equals its pixel count for axis-aligned shapes. The
fill is our own vectorised scan-line (one row of pixel centres at a time), not cv2.fillPoly
(which also paints every pixel the outline touches) nor skimage.draw.polygon (whose boundary
handling is not documented). Example: the square (0.25, 0.25)-(0.75, 0.75) on an 8 x 8 image
covers pixels 2..5 in both directions, 16 pixels, its exact area.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from angioseg.errors import InputError
from angioseg.io.images import natural_sort_key

#: ARCADE class id -> SYNTAX segment name (classes 0-24 are vessel segments).
ARCADE_SEGMENT_NAMES: dict[int, str] = {
    0: "1", 1: "2", 2: "3", 3: "4", 4: "5", 5: "6", 6: "7", 7: "8", 8: "9", 9: "9a",
    10: "10", 11: "10a", 12: "11", 13: "12", 14: "12a", 15: "13", 16: "14", 17: "14a",
    18: "15", 19: "16", 20: "16a", 21: "16b", 22: "16c", 23: "12b", 24: "14b",
}  # fmt: skip
#: Class ids of the coronary segments; their union is the annotated vessel tree.
VESSEL_CLASSES = range(25)
#: Class id of the stenosis polygons.
STENOSIS_CLASS = 25
#: Environment variable that overrides where the data set lives.
ARCADE_ENV_VAR = "ANGIOSEG_ARCADE"
#: Normalised coordinates may overshoot [0, 1] by this much (annotation tools round); they
#: are kept as written, so an overshoot only reaches past the frame edge and fills nothing.
COORDINATE_TOLERANCE = 0.01
SPLITS = ("train", "val")

Polygon = tuple[int, np.ndarray]


# ---- locating the data ---------------------------------------------------------------------
def arcade_search_paths() -> list[Path]:
    """Where the data set is looked for: ``$ANGIOSEG_ARCADE`` when set (the package has no
    default location outside itself; pass a root or set the variable)."""
    env = os.environ.get(ARCADE_ENV_VAR, "").strip()
    return [Path(env).expanduser()] if env else []


def default_arcade_root() -> Path | None:
    """The ARCADE folder named by ``$ANGIOSEG_ARCADE``, or None when unset or not a folder."""
    for candidate in arcade_search_paths():
        if candidate.is_dir():
            return candidate
    return None


# ---- polygons --------------------------------------------------------------------------------
def read_yolo_polygons(path: str | os.PathLike[str]) -> list[Polygon]:
    """Read a YOLO segmentation label file: one ``CLASS x1 y1 x2 y2 ...`` polygon a line.

    Returns ``[(class_id, points)]`` in file order, ``points`` a ``(K, 2)`` float64 array of
    normalised (x, y). Blank lines are skipped; an empty file gives ``[]``.

    Raises:
        InputError: naming the file and line for a missing or unreadable file, a non-integer or
            negative class, a non-numeric or non-finite coordinate, an odd number of
            coordinates, fewer than 3 points, or a coordinate outside [0, 1] by more than
            `COORDINATE_TOLERANCE`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except FileNotFoundError:
        raise InputError(f"{path}: label file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: label file is not UTF-8 text") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the label file ({error.strerror or error})") from None

    polygons: list[Polygon] = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        where = f"{path}, line {number}"
        try:
            class_value = float(tokens[0])
        except ValueError:
            raise InputError(f"{where}: class {tokens[0]!r} is not a number") from None
        if not math.isfinite(class_value) or class_value != int(class_value) or class_value < 0:
            raise InputError(f"{where}: class {tokens[0]!r} is not a non-negative integer")
        coords = tokens[1:]
        if len(coords) % 2:
            raise InputError(f"{where}: odd number of coordinates ({len(coords)}); expected x y pairs")
        if len(coords) < 6:
            raise InputError(f"{where}: a polygon needs at least 3 points; got {len(coords) // 2}")
        try:
            values = np.array([float(token) for token in coords], dtype=np.float64)
        except ValueError:
            bad = next(token for token in coords if not _is_float(token))
            raise InputError(f"{where}: coordinate {bad!r} is not a number") from None
        if not np.isfinite(values).all():
            raise InputError(f"{where}: coordinates must be finite numbers")
        low, high = float(values.min()), float(values.max())
        if low < -COORDINATE_TOLERANCE or high > 1.0 + COORDINATE_TOLERANCE:
            raise InputError(
                f"{where}: coordinates must be normalised to [0, 1]; got values in [{low:.4g}, {high:.4g}]"
            )
        polygons.append((int(class_value), values.reshape(-1, 2)))
    return polygons


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _check_size(height: int, width: int) -> tuple[int, int]:
    height, width = int(height), int(width)
    if height <= 0 or width <= 0:
        raise InputError(f"a rasterised mask needs a positive size; got {height}x{width}")
    return height, width


def _fill_polygon(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixels whose centre lies inside the polygon (non-zero winding, top-left rule), `(H, W)` bool.

    `points` are normalised (x, y). In pixel-index units (centres at integers) a vertex lies
    at ``(x * width - 0.5, y * height - 0.5)``.
    """
    out = np.zeros((height, width), dtype=bool)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 3 or pts.shape[1] != 2:
        raise InputError(f"a polygon must be a (K >= 3, 2) array of points; got shape {pts.shape}")
    xs = pts[:, 0] * width - 0.5
    ys = pts[:, 1] * height - 0.5
    x0, y0 = xs, ys
    x1, y1 = np.roll(xs, -1), np.roll(ys, -1)
    row_lo = max(int(math.ceil(ys.min())), 0)
    row_hi = min(int(math.floor(ys.max())), height - 1)
    if row_hi < row_lo:
        return out
    rows = np.arange(row_lo, row_hi + 1, dtype=np.float64)[:, None]  # (R, 1)
    # Half-open crossing rule: an edge counts for a row y when min(y0, y1) <= y < max(y0, y1),
    # so horizontal edges never count and shared vertices are counted once.
    upward = (y0 <= rows) & (rows < y1)
    downward = (y1 <= rows) & (rows < y0)
    crossing = upward | downward  # (R, E)
    dy = np.where(y1 != y0, y1 - y0, 1.0)
    x_cross = x0 + (rows - y0) * (x1 - x0) / dy  # (R, E)
    winding = np.where(upward, 1, np.where(downward, -1, 0))
    x_cross = np.where(crossing, x_cross, np.inf)
    order = np.argsort(x_cross, axis=1, kind="stable")
    x_sorted = np.take_along_axis(x_cross, order, axis=1)
    w_sorted = np.take_along_axis(winding, order, axis=1)
    inside_after = np.cumsum(w_sorted, axis=1) != 0  # winding number just right of crossing k
    for r in range(rows.shape[0]):
        count = int(crossing[r].sum())
        if count < 2:
            continue
        xr, ins = x_sorted[r, :count], inside_after[r, :count]
        # Span k covers centres with xr[k] <= j < xr[k + 1] (left edge in, right edge out).
        starts = np.ceil(xr[:-1][ins[:-1]])
        stops = np.ceil(xr[1:][ins[:-1]])
        if starts.size == 0:
            continue
        starts = np.clip(starts, 0, width).astype(np.int64)
        stops = np.clip(stops, 0, width).astype(np.int64)
        line = np.zeros(width + 1, dtype=np.int32)
        np.add.at(line, starts, 1)
        np.add.at(line, stops, -1)
        out[row_lo + r] = np.cumsum(line[:-1]) > 0
    return out


def rasterise_polygons(
    polygons: Iterable[Polygon], height: int, width: int, *, classes: Iterable[int] = VESSEL_CLASSES
) -> np.ndarray:
    """Union of the polygons whose class is in `classes`, as an `(height, width)` bool mask.

    Pixels are filled when their centre is inside (see the module docstring for the exact rule).
    """
    height, width = _check_size(height, width)
    wanted = set(int(c) for c in classes)
    mask = np.zeros((height, width), dtype=bool)
    for class_id, points in polygons:
        if int(class_id) in wanted:
            mask |= _fill_polygon(points, height, width)
    return mask


def rasterise_segments(
    polygons: Iterable[Polygon], height: int, width: int, *, classes: Iterable[int] = VESSEL_CLASSES
) -> np.ndarray:
    """Per-segment label map `(height, width)` uint8: label = class id + 1, 0 = background.

    Only classes in `classes` (default the 25 vessel segments, so stenosis polygons are left
    out) are drawn, in file order: where polygons overlap the later one wins. ``map > 0`` is
    exactly `rasterise_polygons` with the same classes.
    """
    height, width = _check_size(height, width)
    wanted = set(int(c) for c in classes)
    if any(c < 0 or c > 254 for c in wanted):
        raise InputError("segment classes must lie in 0..254 to fit a uint8 label map")
    labels = np.zeros((height, width), dtype=np.uint8)
    for class_id, points in polygons:
        if int(class_id) in wanted:
            labels[_fill_polygon(points, height, width)] = int(class_id) + 1
    return labels


# ---- data set ------------------------------------------------------------------------------
@dataclass
class ArcadeSample:
    """One annotated ARCADE frame.

    Attributes:
        name: the file stem (``"17"``).
        image: `(H, W)` float32 in [0, 1]; vessels dark.
        vessel_mask: `(H, W)` bool, union of segment classes 0-24.
        segments: `(H, W)` uint8, class id + 1 of the segment covering each pixel (0 = none).
        stenosis: `(H, W)` bool, union of class-25 polygons.
        polygons: the polygons as read (`read_yolo_polygons`).
    """

    name: str
    image: np.ndarray
    vessel_mask: np.ndarray
    segments: np.ndarray
    stenosis: np.ndarray
    polygons: list[Polygon] = field(default_factory=list)


class ArcadeDataset:
    """The frames of one ARCADE split, read in place.

    Args:
        root: folder holding ``train/`` and ``val/``; None = `default_arcade_root()`.
        split: ``"train"`` or ``"val"``.

    Raises:
        InputError: when the root or the split's ``images`` folder is missing or holds no PNGs.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, split: str = "train") -> None:
        if split not in SPLITS:
            raise InputError(f"unknown ARCADE split {split!r}; expected one of {', '.join(SPLITS)}")
        if root is None:
            found = default_arcade_root()
            if found is None:
                looked = ", ".join(str(p) for p in arcade_search_paths()) or f"{ARCADE_ENV_VAR} is not set"
                raise InputError(
                    f"ARCADE data not found ({looked}): set {ARCADE_ENV_VAR} to the folder that holds train/ and val/, "
                    "or pass its path"
                )
            root = found
        self.root = Path(root)
        self.split = split
        self.image_dir = self.root / split / "images"
        self.label_dir = self.root / split / "labels"
        if not self.image_dir.is_dir():
            raise InputError(
                f"ARCADE split folder {self.image_dir} not found; {ARCADE_ENV_VAR} (or root) must name "
                "the folder that holds train/images and val/images"
            )
        self.ids: list[str] = sorted((p.stem for p in self.image_dir.glob("*.png")), key=natural_sort_key)
        if not self.ids:
            raise InputError(f"{self.image_dir}: no PNG images found")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"ArcadeDataset(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"

    def _name(self, i: int | str) -> str:
        if isinstance(i, str):
            if i not in self.ids:
                raise KeyError(f"no ARCADE {self.split} frame named {i!r}")
            return i
        return self.ids[int(i)]

    def image_path(self, i: int | str) -> Path:
        """Path of frame `i` (an index into `ids`, or an id string)."""
        return self.image_dir / f"{self._name(i)}.png"

    def label_path(self, i: int | str) -> Path:
        """Path of frame `i`'s label file (it may not exist: then the frame has no annotation)."""
        return self.label_dir / f"{self._name(i)}.txt"

    def polygons(self, i: int | str) -> list[Polygon]:
        """Frame `i`'s polygons; ``[]`` when it has no label file."""
        path = self.label_path(i)
        return read_yolo_polygons(path) if path.is_file() else []

    def load(self, i: int | str) -> ArcadeSample:
        """Frame `i` with its masks rasterised at the image's size."""
        from angioseg.io.images import read_image  # imported here: angioseg.io pulls in av and pydicom

        image = read_image(self.image_path(i))
        height, width = image.shape
        polygons = self.polygons(i)
        segments = rasterise_segments(polygons, height, width)
        return ArcadeSample(
            name=self._name(i),
            image=image,
            vessel_mask=segments > 0,
            segments=segments,
            stenosis=rasterise_polygons(polygons, height, width, classes=[STENOSIS_CLASS]),
            polygons=polygons,
        )

    def __getitem__(self, i: int | str) -> ArcadeSample:
        return self.load(i)


__all__: Sequence[str] = (
    "ARCADE_ENV_VAR",
    "ARCADE_SEGMENT_NAMES",
    "arcade_search_paths",
    "ArcadeDataset",
    "ArcadeSample",
    "STENOSIS_CLASS",
    "VESSEL_CLASSES",
    "default_arcade_root",
    "rasterise_polygons",
    "rasterise_segments",
    "read_yolo_polygons",
)
