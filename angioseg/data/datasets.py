"""Data sets of annotated frames: image + mask folders (each image a one-frame video).

`ImageMaskFolder` pairs `images/NAME.ext` with `masks/NAME.ext` by file stem, in natural
order. Masks are read as label images: indexed PNGs give their indices, binary 0/255 masks
give 0/1 (see `angioseg.io.labels.read_label_image`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from angioseg.errors import InputError
from angioseg.io.images import list_image_files, natural_sort_key, read_image
from angioseg.io.labels import read_label_image
from angioseg.types import DEFAULT_LABELS, LabelMap, Video


@dataclass
class FramePair:
    """One annotated frame: `video` has T = 1, `masks` is `(1, H, W)`."""

    name: str
    video: Video
    masks: LabelMap


#: A still set's folder beside ``masks/`` of pixels whose label is not known (0/255 PNGs with
#: the images' file stems; `angioseg data stills --label-style partial`), left out of training.
UNCERTAIN_DIR = "uncertain"


class ImageMaskFolder:
    """Images and masks matched by file stem.

    Args:
        images: folder of frames (png, jpg, bmp, tif).
        masks: folder of label images with the same stems.
        label_table: id -> name for the mask values (default: 1 = vessel, 2 = catheter).
    """

    def __init__(self, images: str | Path, masks: str | Path, *, label_table: dict[int, str] | None = None) -> None:
        self.images_dir = Path(images)
        self.masks_dir = Path(masks)
        for folder in (self.images_dir, self.masks_dir):
            if not folder.is_dir():
                raise InputError(f"{folder} is not a folder")
        self.label_table = dict(label_table or DEFAULT_LABELS)
        image_files = {p.stem: p for p in list_image_files(self.images_dir)}
        mask_files = {p.stem: p for p in list_image_files(self.masks_dir)}
        if not image_files:
            raise InputError(f"{self.images_dir} holds no images")
        missing = sorted(set(image_files) - set(mask_files), key=natural_sort_key)
        if missing:
            raise InputError(f"{len(missing)} image(s) in {self.images_dir} have no mask in {self.masks_dir}, e.g. {missing[0]!r}")
        self.names = sorted(image_files, key=natural_sort_key)
        self._images = image_files
        self._masks = mask_files

    def __len__(self) -> int:
        return len(self.names)

    def image_path(self, index: int) -> Path:
        return self._images[self.names[index]]

    def mask_path(self, index: int) -> Path:
        return self._masks[self.names[index]]

    def load(self, index: int) -> FramePair:
        """The frame and mask at `index` (natural order of stems)."""
        name = self.names[index]
        image = read_image(self._images[name])
        mask = read_label_image(self._masks[name])
        if mask.shape != image.shape:
            raise InputError(
                f"mask {self._masks[name]} is {mask.shape[1]}x{mask.shape[0]} but its image is {image.shape[1]}x{image.shape[0]}"
            )
        table = {**self.label_table, **{int(v): f"label {int(v)}" for v in np.unique(mask) if int(v) not in self.label_table}}
        video = Video(image[None], metadata={"source_kind": "images", "source_name": self._images[name].name})
        return FramePair(name, video, LabelMap(mask[None].astype(np.uint8), table))
