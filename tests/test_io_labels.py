"""Label masks: DAVIS palette PNGs, grey / RGB masks, label and probability NPZ files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from angioseg.errors import InputError
from angioseg.io import (
    DAVIS_PALETTE,
    read_label_image,
    read_label_pngs,
    read_labels_npz,
    read_probabilities_npz,
    write_label_pngs,
    write_labels_npz,
    write_probabilities_npz,
)
from angioseg.types import LabelMap


def test_davis_palette_entries() -> None:
    assert DAVIS_PALETTE.shape == (256, 3) and DAVIS_PALETTE.dtype == np.uint8
    expected = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128), 8: (64, 0, 0)}
    for label, rgb in expected.items():
        assert tuple(DAVIS_PALETTE[label]) == rgb
    assert tuple(DAVIS_PALETTE[255]) == (224, 224, 192)


def test_label_png_round_trip_with_palette(tmp_path: Path) -> None:
    labels = np.zeros((3, 5, 6), dtype=np.int64)
    labels[0, 1:3, 1:4] = 1
    labels[1, 2:, :2] = 2
    labels[2, 0, 0] = 7
    folder = write_label_pngs(labels, tmp_path / "masks")
    assert sorted(p.name for p in folder.iterdir()) == ["00000.png", "00001.png", "00002.png"]
    with Image.open(folder / "00000.png") as image:
        assert image.mode == "P"
        palette = np.array(image.getpalette()[:9]).reshape(3, 3)
    assert tuple(palette[1]) == (128, 0, 0) and tuple(palette[2]) == (0, 128, 0)
    back = read_label_pngs(folder)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, labels)


def test_label_png_rejects_large_ids(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        write_label_pngs(np.full((1, 2, 2), 256), tmp_path / "big")
    assert not (tmp_path / "big").exists()


def test_grey_masks(tmp_path: Path) -> None:
    binary = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    Image.fromarray(binary).save(tmp_path / "bin.png")
    np.testing.assert_array_equal(read_label_image(tmp_path / "bin.png"), binary // 255)
    ids = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    Image.fromarray(ids).save(tmp_path / "ids.png")
    np.testing.assert_array_equal(read_label_image(tmp_path / "ids.png"), ids)


def test_rgb_masks_through_the_palette(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 1] = (128, 0, 0)
    rgb[1, 0] = (0, 128, 0)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_label_image(tmp_path / "rgb.png"), [[0, 1], [2, 0]])
    rgb[1, 1] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "odd.png")
    with pytest.raises(InputError, match="odd.png"):
        read_label_image(tmp_path / "odd.png")


def test_labels_npz_round_trip(tmp_path: Path) -> None:
    table = {0: "background", 1: "vessel", 2: "catheter", 5: "stenosis"}
    labels = np.zeros((2, 3, 4), dtype=np.int32)
    labels[0, 1, 1], labels[1, 2, 3] = 5, 2
    path = write_labels_npz(LabelMap(labels=labels, label_table=table), tmp_path / "labels.npz")
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {"labels", "label_table"}
    back = read_labels_npz(path)
    np.testing.assert_array_equal(back.labels, labels)
    assert back.label_table == table


def test_probabilities_npz(tmp_path: Path) -> None:
    probs = np.random.default_rng(0).random((2, 3, 4, 5)).astype(np.float32)
    path = write_probabilities_npz(probs, tmp_path / "p.npz", label_table={0: "background", 1: "vessel", 2: "catheter"})
    with np.load(path, allow_pickle=False) as data:
        assert data["probabilities"].dtype == np.float16
    back, table = read_probabilities_npz(path)
    assert back.shape == probs.shape and np.abs(back - probs).max() < 1e-3
    assert table == {0: "background", 1: "vessel", 2: "catheter"}
    with pytest.raises(InputError):
        write_probabilities_npz(probs * 2, tmp_path / "bad.npz", label_table={})
