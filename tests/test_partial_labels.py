"""Partial labels: a still set whose heuristic-found branches are "uncertain" (``uncertain/``),
written by `angioseg data stills --label-style partial` and left out of the training loss."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from angioseg import InputError
from angioseg.cli.main import main
from angioseg.data.augment import SiteAugmentation
from angioseg.data.datasets import UNCERTAIN_DIR
from angioseg.methods.supervised.clips import IGNORE, ClipSampler, TrainingSequence, load_sequences


def _frame_with_branch() -> tuple[np.ndarray, np.ndarray]:
    """A 256² frame: an annotated dark vessel and an unannotated dark branch joined to it."""
    rng = np.random.default_rng(0)
    image = np.clip(0.75 + 0.01 * rng.standard_normal((256, 256)), 0, 1).astype(np.float32)
    cv2.line(image, (40, 128), (216, 128), 0.35, 7)
    cv2.line(image, (128, 131), (150, 190), 0.5, 3)
    mask = np.zeros((256, 256), np.uint8)
    cv2.line(mask, (40, 128), (216, 128), 1, 7)
    return image, mask.astype(bool)


@pytest.fixture(scope="module")
def partial_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("partial")
    image, mask = _frame_with_branch()
    (root / "img").mkdir()
    (root / "msk").mkdir()
    cv2.imwrite(str(root / "img" / "f1.png"), np.round(image * 255).astype(np.uint8))
    cv2.imwrite(str(root / "msk" / "f1.png"), mask.astype(np.uint8) * 255)
    out = root / "stills"
    assert main(["data", "stills", "--images", str(root / "img"), "--masks", str(root / "msk"),
                 "--label-style", "partial", "--out", str(out)]) == 0
    return out, mask


def test_partial_stills_keep_the_annotation_and_mark_the_found_branch_uncertain(partial_set):
    out, annotated = partial_set
    written = cv2.imread(str(out / "masks" / "f1.png"), cv2.IMREAD_GRAYSCALE) > 0
    uncertain = cv2.imread(str(out / UNCERTAIN_DIR / "f1.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert np.array_equal(written, annotated)  # masks/ is the annotation, as "as-annotated"
    assert uncertain[160:180, 135:145].any()  # the branch the heuristic found
    assert not (uncertain & annotated).any()
    assert not uncertain[:100].any() and not uncertain[:, :30].any()  # nothing far from the tree


def test_training_reads_uncertain_pixels_and_leaves_them_out_of_the_target(partial_set):
    out, _ = partial_set
    (sequence,) = load_sequences([out])
    assert sequence.uncertain is not None and sequence.uncertain.shape == sequence.vessel.shape
    sampler = ClipSampler([sequence], radius=0, crop=128, vessel_bias=1.0, seed=0)
    _, targets = sampler.batch(8)
    ignored = targets == IGNORE
    assert ignored.any()
    assert set(np.unique(targets.numpy()).tolist()) <= {IGNORE, 0.0, 1.0}


def test_uncertain_map_moves_with_the_frame_under_site_augmentation():
    """Uncertain pixels drawn where the frame is dark must stay on dark pixels after rescaling,
    rotation, flips and crops (the sampler replays the same draws for both maps)."""
    frames = np.full((1, 160, 160), 200, np.uint8)
    uncertain = np.zeros((1, 160, 160), bool)
    for x in (30, 70, 110):
        frames[0, :, x:x + 6] = 40
        uncertain[0, :, x:x + 6] = True
    vessel = np.zeros_like(uncertain)
    vessel[0, 75:80, :] = True  # some vessel so that vessel-biased crops work
    augmentation = SiteAugmentation(collimator=0, text=0, blur=0, noise=0, jpeg=0, gamma_contrast=0)
    sampler = ClipSampler([TrainingSequence("s", frames, vessel, uncertain=uncertain)], radius=0, crop=64, seed=1,
                          augmentation=augmentation)
    for _ in range(20):
        clip, target = sampler.sample()
        ignored = target == IGNORE
        if not ignored.any():
            continue
        assert clip[0][ignored].mean() < 0.35 < clip[0][~ignored & (target == 0)].mean()
        assert not (ignored & (target == 1)).any()


def test_a_missing_uncertain_file_is_refused(tmp_path, partial_set):
    out, _ = partial_set
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / UNCERTAIN_DIR / "f1.png").unlink()
    with pytest.raises(InputError, match="uncertain/ folder but no f1.png"):
        load_sequences([copy])


def test_partial_style_is_for_stills_only(capsys):
    code = main(["data", "make-videos", "--images", "x", "--masks", "y", "--out", "z", "--label-style", "partial"])
    assert code == 2
    assert "invalid choice: 'partial'" in capsys.readouterr().err


def test_an_uncertain_map_of_another_size_is_refused(tmp_path, partial_set):
    out, _ = partial_set
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    cv2.imwrite(str(copy / UNCERTAIN_DIR / "f1.png"), np.zeros((10, 12), np.uint8))
    with pytest.raises(InputError, match="is 12x10 but its mask is 256x256"):
        load_sequences([copy])
