"""ARCADE reading and polygon rasterisation.

The real data is read in place from ``$ANGIOSEG_ARCADE`` or ``<repo>/../shared/data/arcade-syntax``;
tests that need it skip with a message where it is absent. Everything else uses files the
tests write themselves.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from angioseg.data.arcade import (
    ARCADE_ENV_VAR,
    ARCADE_SEGMENT_NAMES,
    STENOSIS_CLASS,
    VESSEL_CLASSES,
    ArcadeDataset,
    arcade_search_paths,
    default_arcade_root,
    rasterise_polygons,
    rasterise_segments,
    read_yolo_polygons,
)
from angioseg.errors import InputError


def square(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


# ---- rasterisation ---------------------------------------------------------------------------
def test_square_covers_exact_pixels() -> None:
    mask = rasterise_polygons([(0, square(0.25, 0.25, 0.75, 0.75))], 8, 8)
    expected = np.zeros((8, 8), bool)
    expected[2:6, 2:6] = True
    assert mask.dtype == bool and mask.shape == (8, 8)
    np.testing.assert_array_equal(mask, expected)


def test_square_orientation_does_not_matter() -> None:
    clockwise = square(0.25, 0.25, 0.75, 0.75)[::-1]
    np.testing.assert_array_equal(
        rasterise_polygons([(3, clockwise)], 8, 8), rasterise_polygons([(3, square(0.25, 0.25, 0.75, 0.75))], 8, 8)
    )


def test_triangle_matches_hand_count() -> None:
    # Right triangle (0,0)-(10,0)-(0,10) in pixel units on a 10x10 image. Pixel (i, j) has its
    # centre at (j + 0.5, i + 0.5); it is inside when (j + 0.5) + (i + 0.5) < 10, i.e.
    # i + j <= 8; centres with i + j == 9 lie exactly on the hypotenuse, a right/bottom edge,
    # and are out. Rows 0..8 hold 9, 8, ..., 1 pixels: 45.
    triangle = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mask = rasterise_polygons([(0, triangle)], 10, 10)
    i, j = np.mgrid[0:10, 0:10]
    np.testing.assert_array_equal(mask, i + j <= 8)
    assert mask.sum() == 45


def test_polygons_sharing_an_edge_tile_without_overlap() -> None:
    lower = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    upper = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    a = rasterise_polygons([(0, lower)], 16, 16)
    b = rasterise_polygons([(0, upper)], 16, 16)
    assert not (a & b).any()
    assert (a | b).all()


def test_self_crossing_outline_is_filled_by_nonzero_winding() -> None:
    # A pentagram: its centre pentagon has winding number 2 and is filled.
    angles = np.deg2rad(-90 + 144 * np.arange(5))
    star = np.stack([0.5 + 0.4 * np.cos(angles), 0.5 + 0.4 * np.sin(angles)], axis=1)
    mask = rasterise_polygons([(0, star)], 64, 64)
    assert mask[32, 32]


def test_polygon_off_the_frame_is_clipped() -> None:
    mask = rasterise_polygons([(0, square(-0.005, -0.005, 0.5, 0.5))], 4, 4)
    expected = np.zeros((4, 4), bool)
    expected[:2, :2] = True
    np.testing.assert_array_equal(mask, expected)


def test_classes_filter_and_segment_order() -> None:
    polygons = [
        (4, square(0.0, 0.0, 0.5, 0.5)),
        (7, square(0.25, 0.25, 0.75, 0.75)),  # drawn later: wins where they overlap
        (STENOSIS_CLASS, square(0.5, 0.5, 1.0, 1.0)),
    ]
    segments = rasterise_segments(polygons, 8, 8)
    assert segments.dtype == np.uint8
    assert segments[1, 1] == 5 and segments[3, 3] == 8 and segments[5, 5] == 8
    assert segments[7, 7] == 0  # stenosis is not a segment
    np.testing.assert_array_equal(rasterise_polygons(polygons, 8, 8), segments > 0)
    stenosis = rasterise_polygons(polygons, 8, 8, classes=[STENOSIS_CLASS])
    assert stenosis[7, 7] and not stenosis[1, 1]
    only_four = rasterise_polygons(polygons, 8, 8, classes=[4])
    assert only_four.sum() == 16


def test_empty_polygon_list_gives_empty_masks() -> None:
    assert not rasterise_polygons([], 5, 7).any()
    assert rasterise_segments([], 5, 7).shape == (5, 7)


def test_segment_names() -> None:
    assert list(VESSEL_CLASSES) == list(range(25))
    assert ARCADE_SEGMENT_NAMES[0] == "1" and ARCADE_SEGMENT_NAMES[9] == "9a" and ARCADE_SEGMENT_NAMES[24] == "14b"
    assert len(ARCADE_SEGMENT_NAMES) == 25


# ---- label files -----------------------------------------------------------------------------
def test_read_yolo_polygons(tmp_path: Path) -> None:
    path = tmp_path / "3.txt"
    path.write_text("4 0.1 0.2 0.3 0.2 0.3 0.4\n\n12 0 0 1 0 1 1 0 1\n", encoding="utf-8")
    polygons = read_yolo_polygons(path)
    assert [c for c, _ in polygons] == [4, 12]
    np.testing.assert_allclose(polygons[0][1], [[0.1, 0.2], [0.3, 0.2], [0.3, 0.4]])
    assert polygons[1][1].shape == (4, 2)


def test_empty_label_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("", encoding="utf-8")
    assert read_yolo_polygons(path) == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("3 0.1 0.2 0.3 0.4 0.5", "odd number"),
        ("3 0.1 0.2 0.3 0.4", "at least 3 points"),
        ("3 0.1 0.2 abc 0.4 0.5 0.6", "not a number"),
        ("3 0.1 0.2 0.3 1.5 0.5 0.6", "normalised"),
        ("3 0.1 0.2 0.3 -0.2 0.5 0.6", "normalised"),
        ("3 0.1 0.2 0.3 nan 0.5 0.6", "finite"),
        ("x 0.1 0.2 0.3 0.4 0.5 0.6", "class"),
        ("-1 0.1 0.2 0.3 0.4 0.5 0.6", "class"),
        ("2.5 0.1 0.2 0.3 0.4 0.5 0.6", "class"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("0 0.1 0.1 0.2 0.1 0.2 0.2\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_yolo_polygons(path)
    message = str(caught.value)
    assert "bad.txt" in message and "line 2" in message and problem in message


def test_small_overshoot_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "edge.txt"
    path.write_text("0 -0.002 0 1.003 0 1 1\n", encoding="utf-8")
    assert len(read_yolo_polygons(path)) == 1


def test_missing_label_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_yolo_polygons(tmp_path / "nope.txt")


# ---- data set on a tiny copy written by the test -----------------------------------------------
def make_fake_arcade(root: Path) -> None:
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
    image = np.full((16, 16), 200, np.uint8)
    image[4:8, 4:8] = 60
    for name in ("1", "2", "10"):
        cv2.imwrite(str(root / "val" / "images" / f"{name}.png"), image)
    (root / "val" / "labels" / "1.txt").write_text("5 0.25 0.25 0.5 0.25 0.5 0.5 0.25 0.5\n", encoding="utf-8")
    (root / "val" / "labels" / "10.txt").write_text(
        "5 0.25 0.25 0.5 0.25 0.5 0.5 0.25 0.5\n25 0.5 0.5 0.75 0.5 0.75 0.75\n", encoding="utf-8"
    )


def test_dataset_on_written_files(tmp_path: Path) -> None:
    make_fake_arcade(tmp_path)
    data = ArcadeDataset(tmp_path, "val")
    assert data.ids == ["1", "2", "10"]  # natural order
    assert len(data) == 3
    assert data.image_path(2).name == "10.png" and data.label_path(0).name == "1.txt"
    sample = data.load(0)
    assert sample.name == "1"
    assert sample.image.dtype == np.float32 and sample.image.shape == (16, 16)
    assert abs(float(sample.image[0, 0]) - 200 / 255) < 1e-6
    expected = np.zeros((16, 16), bool)
    expected[4:8, 4:8] = True
    np.testing.assert_array_equal(sample.vessel_mask, expected)
    assert set(np.unique(sample.segments)) == {0, 6}
    assert not sample.stenosis.any()
    unlabelled = data.load("2")  # no label file: empty masks
    assert not unlabelled.vessel_mask.any() and not unlabelled.segments.any() and not unlabelled.stenosis.any()
    assert data.load(2).stenosis.any()


def test_missing_root_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(ARCADE_ENV_VAR, str(missing))
    assert default_arcade_root() is None
    with pytest.raises(InputError) as caught:
        ArcadeDataset()
    assert str(missing) in str(caught.value) and ARCADE_ENV_VAR in str(caught.value)


def test_env_var_overrides_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_fake_arcade(tmp_path)
    monkeypatch.setenv(ARCADE_ENV_VAR, str(tmp_path))
    assert default_arcade_root() == tmp_path
    assert len(ArcadeDataset(split="val")) == 3


def test_unknown_split(tmp_path: Path) -> None:
    make_fake_arcade(tmp_path)
    with pytest.raises(InputError, match="split"):
        ArcadeDataset(tmp_path, "test")


# ---- the real data -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def arcade_val() -> ArcadeDataset:
    root = default_arcade_root()
    if root is None or not (root / "val" / "images").is_dir():
        looked = ", ".join(str(p) for p in arcade_search_paths()) or f"nowhere: {ARCADE_ENV_VAR} is unset"
        pytest.skip(f"ARCADE data not found at {looked}; set {ARCADE_ENV_VAR} to the arcade-syntax folder to run this test")
    return ArcadeDataset(root, "val")


def test_real_val_samples(arcade_val: ArcadeDataset) -> None:
    assert len(arcade_val) == 200
    for index in (0, 57, 199):
        sample = arcade_val.load(index)
        assert sample.image.shape == (512, 512) and sample.image.dtype == np.float32
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0
        assert sample.vessel_mask.any()
        height, width = sample.image.shape
        union = rasterise_polygons(sample.polygons, height, width, classes=VESSEL_CLASSES)
        np.testing.assert_array_equal(union, sample.segments > 0)
        np.testing.assert_array_equal(union, sample.vessel_mask)
        present = {c for c, _ in sample.polygons if c in VESSEL_CLASSES}
        assert set(np.unique(sample.segments[sample.segments > 0]) - 1) <= present
