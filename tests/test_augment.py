"""Cross-site augmentation, percentile normalisation and the training sampler's new options."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from angioseg.data import augment as A
from angioseg.errors import InputError
from angioseg.methods.supervised.clips import ClipSampler, TrainingSequence, reflect_indices

BRIGHT, DARK = 1.0, 0.1
THRESHOLD = (BRIGHT + DARK) / 2


def line_clip(frames: int = 3, size: tuple[int, int] = (48, 48)) -> tuple[np.ndarray, np.ndarray]:
    """A bright clip with dark vessels (a thick diagonal and a ring) and their mask."""
    mask = np.zeros(size, np.uint8)
    cv2.line(mask, (3, 5), (size[1] - 4, size[0] - 10), 1, 3)
    cv2.circle(mask, (size[1] // 2, size[0] // 2), min(size) // 4, 1, 2)
    clip = np.where(mask.astype(bool), DARK, BRIGHT).astype(np.float32)
    return np.repeat(clip[None], frames, axis=0), mask.astype(bool)


def assert_aligned(clip: np.ndarray, mask: np.ndarray, threshold: float = THRESHOLD) -> None:
    """The mask is exactly where every frame is darker than half-way."""
    for frame in clip:
        assert np.array_equal(frame < threshold, mask.astype(bool))


TRANSFORMS = {
    "rescale": lambda c, m, r: A.rescale(c, m, r),
    "dihedral": lambda c, m, r: A.dihedral(c, m, r),
    "collimator": lambda c, m, r: A.collimator(c, m, r),
    "text": lambda c, m, r: A.burnt_in_text(c, m, r),
    "blur": lambda c, m, r: (A.blur(c, r), m),
    "noise": lambda c, m, r: (A.add_noise(c, r), m),
    "gamma_contrast": lambda c, m, r: (A.gamma_contrast(c, r), m),
    "jpeg": lambda c, m, r: (A.jpeg(c, r), m),
    "site": lambda c, m, r: A.SiteAugmentation()(c, m, r),
    "site_all": lambda c, m, r: A.SiteAugmentation(rescale=1, flip=1, collimator=1, blur=1, noise=1, gamma_contrast=1,
                                                   text=1, jpeg=1)(c, m, r),
}


@pytest.mark.parametrize("name", TRANSFORMS)
@pytest.mark.parametrize("mask_dtype", [bool, np.float32])
def test_transforms_keep_shape_dtype_and_range(name, mask_dtype):
    base, mask = line_clip(size=(40, 40))
    noisy = np.clip(base * 0.8 + np.random.default_rng(9).random(base.shape, dtype=np.float32) * 0.2, 0, 1)
    for seed in range(4):
        clip, out_mask = TRANSFORMS[name](noisy.copy(), mask.astype(mask_dtype), np.random.default_rng(seed))
        assert clip.shape == noisy.shape and clip.dtype == np.float32 and clip.flags.c_contiguous
        assert 0.0 <= clip.min() and clip.max() <= 1.0
        assert out_mask.shape == mask.shape and out_mask.dtype == mask_dtype
        assert set(np.unique(out_mask).tolist()) <= {0, 1}
    # the same seed gives the same result
    first = TRANSFORMS[name](noisy, mask, np.random.default_rng(5))
    second = TRANSFORMS[name](noisy, mask, np.random.default_rng(5))
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_rescale_keeps_the_mask_on_the_vessels():
    clip, mask = line_clip()
    zooms = set()
    for seed in range(8):
        out, out_mask = A.rescale(clip, mask, np.random.default_rng(seed))
        assert_aligned(out, out_mask)
        zooms.add(round(out_mask.sum() / mask.sum(), 1))
    assert len(zooms) > 3  # it did zoom, by different factors
    for factor, expected in ((0.6, 0.6), (1.7, 1.7)):  # vessel width follows the zoom
        out, out_mask = A.rescale(clip, mask, np.random.default_rng(0), zoom=(factor, factor))
        assert_aligned(out, out_mask)
    # from a larger window to a crop size, as the sampler does
    window, window_mask = line_clip(size=(80, 80))
    out, out_mask = A.rescale(window, window_mask, np.random.default_rng(1), zoom=(0.6, 0.6), size=(48, 48))
    assert out.shape == (3, 48, 48) and out_mask.shape == (48, 48)
    assert_aligned(out, out_mask)


def test_rescale_zoom_changes_vessel_width():
    clip = np.full((1, 60, 60), BRIGHT, np.float32)
    clip[:, :, 26:34] = DARK  # an 8 px vertical band
    mask = clip[0] < THRESHOLD
    out, out_mask = A.rescale(clip, mask, np.random.default_rng(0), zoom=(1.5, 1.5))
    assert abs(int(out_mask[30].sum()) - 12) <= 1  # 8 px x 1.5
    out, out_mask = A.rescale(clip, mask, np.random.default_rng(0), zoom=(0.75, 0.75))
    assert abs(int(out_mask[30].sum()) - 6) <= 1  # 8 px x 0.75 (half-covered edge pixels: either way)
    assert_aligned(out, out_mask)


def test_dihedral_and_geometry_only_site_augmentation_keep_alignment():
    clip, mask = line_clip()
    geometry = A.SiteAugmentation(rescale=0.7, collimator=0, blur=0, noise=0, gamma_contrast=0, text=0, jpeg=0)
    shapes = set()
    for seed in range(8):
        assert_aligned(*A.dihedral(clip, mask, np.random.default_rng(seed)))
        out, out_mask = geometry(clip, mask, np.random.default_rng(seed))
        assert_aligned(out, out_mask)
        shapes.add(out_mask.tobytes())
    assert len(shapes) > 4
    rect, rect_mask = line_clip(size=(30, 44))  # non-square: half turns only, shape kept
    for seed in range(4):
        out, out_mask = A.dihedral(rect, rect_mask, np.random.default_rng(seed))
        assert out.shape == rect.shape
        assert_aligned(out, out_mask)


@pytest.mark.parametrize("kind", ["iris", "shutters", "margins"])
def test_collimator_zeroes_the_mask_outside_its_field(kind):
    clip = np.ones((2, 64, 64), np.float32)
    mask = np.ones((64, 64), bool)
    for seed in range(6):
        out, out_mask = A.collimator(clip, mask, np.random.default_rng(seed), kinds=(kind,))
        dark, open_ = out[0] < 0.5, out[0] > 0.99
        assert dark.any() and open_.any()
        assert not out_mask[dark].any()  # blacked out: no vessel
        assert out_mask[open_].all()  # fully inside the field: mask kept
        assert 0.02 < 1 - out_mask.mean() < 0.8
        assert np.array_equal(out[0], out[1])
        if kind == "margins":
            assert out[0][dark].max() == 0.0  # exact black


def test_burnt_in_text_hides_the_mask_under_the_text():
    clip = np.full((3, 96, 96), 0.5, np.float32)
    mask = np.ones((96, 96), bool)
    for seed in range(6):
        out, out_mask = A.burnt_in_text(clip, mask, np.random.default_rng(seed))
        change = np.abs(out[0] - 0.5)
        assert (change > 0.25).sum() > 10  # something was written
        assert not out_mask[change > 0.25].any()  # mask 0 under the strokes
        assert (change[~out_mask] > 0).all()  # and only there
        assert np.array_equal(out[0], out[2])  # static burn-in


def test_intensity_transforms():
    clip, mask = line_clip()
    rng = np.random.default_rng(0)
    blurred = A.blur(clip, rng, sigma=(1.0, 1.0))
    assert blurred.min() > DARK and blurred.max() <= BRIGHT and abs(blurred.mean() - clip.mean()) < 0.01
    assert np.array_equal(A.blur(clip, rng, sigma=(0.0, 0.1)), clip)
    flat = np.full((4, 64, 64), 0.5, np.float32)
    noisy = A.add_noise(flat, np.random.default_rng(1), electronic=(0.02, 0.02), photons=(1e9, 1e9), correlated=0)
    assert noisy.std() == pytest.approx(0.02, rel=0.05) and not np.array_equal(noisy[0], noisy[1])
    quantum = A.add_noise(flat, np.random.default_rng(1), electronic=(0, 0), photons=(200, 200), correlated=1)
    assert quantum.std() == pytest.approx(np.sqrt(0.5 / 200), rel=0.05)
    squeezed = A.gamma_contrast(clip, rng, log_gamma=0, contrast=(0.5, 0.5), brightness=0)
    assert np.ptp(squeezed) == pytest.approx(0.5 * (BRIGHT - DARK), rel=1e-5)
    compressed = A.jpeg(np.clip(clip + 0.3 * np.random.default_rng(2).random(clip.shape, dtype=np.float32), 0, 1), rng,
                        quality=(30, 30))
    assert compressed.dtype == np.float32 and np.allclose(compressed * 255, np.round(compressed * 255), atol=1e-3)


def test_percentile_normalise_by_hand():
    frames = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    # numpy's linear percentiles of 0..11: p10 = 0.1 * 11 = 1.1, p90 = 9.9
    expected = np.clip((frames - 1.1) / 8.8, 0, 1)
    assert np.allclose(A.percentile_normalise(frames, 10, 90), expected, atol=1e-6)
    assert A.percentile_bounds(frames, 10, 90) == pytest.approx((1.1, 9.9))
    uint8 = np.array([[[0, 50, 100, 150, 200, 250]]], np.uint8)  # p0 = 0, p100 = 250
    out = A.percentile_normalise(uint8, 0, 100)
    assert out.dtype == np.float32 and np.allclose(out, uint8 / 250.0)
    assert not A.percentile_normalise(np.full((2, 3, 3), 7.0), 1, 99).any()  # a flat run
    big = np.random.default_rng(0).random((4, 50, 50))
    assert A.percentile_bounds(big, max_samples=1000) == pytest.approx(A.percentile_bounds(big, max_samples=None), abs=0.05)
    with pytest.raises(ValueError):
        A.percentile_normalise(frames, 90, 10)


def test_static_and_slow_clips():
    clip = np.stack([np.full((4, 4), k, np.float32) for k in range(5)])  # frame k holds k
    still = A.static_clip(clip)
    assert still.shape == clip.shape and (still == 2).all()
    seen = set()
    for seed in range(10):
        slow = A.slow_clip(clip, np.random.default_rng(seed))
        values = slow[:, 0, 0].tolist()
        assert values[2] == 2 and values == sorted(values) and values[-1] - values[0] == 2  # half the span
        seen.add(tuple(values))
    assert seen == {(1, 1, 2, 2, 3), (1, 2, 2, 3, 3)}
    assert np.array_equal(A.slow_clip(clip, np.random.default_rng(0), factor=1), clip)
    assert A.static_clip(clip[:1]).shape == (1, 4, 4)


def test_reflect_indices():
    assert reflect_indices(-2, 7, 4).tolist() == [2, 1, 0, 1, 2, 3, 2]
    assert reflect_indices(0, 3, 1).tolist() == [0, 0, 0]
    assert reflect_indices(-5, 12, 3).tolist() == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]


def _old_data():
    rng = np.random.default_rng(42)
    frames = rng.integers(0, 256, (6, 40, 36), dtype=np.uint8)
    vessel = np.zeros((6, 40, 36), bool)
    vessel[:, 10:13, 5:30] = True
    vessel[:, 5:35, 20:22] = True
    return [TrainingSequence("s", frames, vessel)]


def test_sampler_without_augmentation_is_unchanged():
    """Numbers from the sampler as it was before the site augmentation was added."""
    sampler = ClipSampler(_old_data(), radius=1, crop=24, seed=7, augmentation=None, static_fraction=0.0,
                          slow_fraction=0.0, normalise=False)
    inputs, targets = sampler.batch(5)
    assert tuple(inputs.shape) == (5, 3, 24, 24) and tuple(targets.shape) == (5, 1, 24, 24)
    assert float(inputs.double().sum()) == pytest.approx(4089.3846710246144, rel=1e-9)
    assert inputs.numpy()[:, 1, 3, 4].tolist() == pytest.approx(
        [0.7012730240821838, 0.545309841632843, 0.7122530341148376, 0.18059006333351135, 0.8712626695632935], abs=1e-6)
    assert float(targets.sum()) == 433.0
    assert np.flatnonzero(targets.numpy().ravel())[:10].tolist() == [0, 1, 2, 24, 25, 26, 48, 49, 50, 72]
    assert sampler.rng.bit_generator.state["state"]["state"] == 241146556796242512598624920131622554838  # same draws
    default = ClipSampler(_old_data(), radius=1, crop=24, seed=7)
    again, again_targets = default.batch(5)
    assert np.array_equal(again.numpy(), inputs.numpy()) and np.array_equal(again_targets.numpy(), targets.numpy())


def _line_sequences():
    clip, mask = line_clip(frames=4, size=(40, 52))
    frames = np.round(clip * 255).astype(np.uint8)
    return [TrainingSequence("line", frames, np.repeat(mask[None], 4, axis=0))]


def test_sampler_with_site_augmentation_gives_valid_batches():
    sequences = _line_sequences()
    for options in (dict(), dict(normalise=True, static_fraction=0.3, slow_fraction=0.3)):
        sampler = ClipSampler(sequences, radius=2, crop=32, seed=3, augmentation=A.SiteAugmentation(), **options)
        inputs, targets = sampler.batch(8)
        assert tuple(inputs.shape) == (8, 5, 32, 32) and tuple(targets.shape) == (8, 1, 32, 32)
        assert inputs.dtype == targets.dtype == torch.float32
        assert 0 <= float(inputs.min()) and float(inputs.max()) <= 1
        assert set(np.unique(targets.numpy()).tolist()) <= {0.0, 1.0} and float(targets.sum()) > 0
        other = ClipSampler(sequences, radius=2, crop=32, seed=3, augmentation=A.SiteAugmentation(), **options)
        assert np.array_equal(other.batch(8)[0].numpy(), inputs.numpy())  # a seed fixes the batch


def test_sampler_window_keeps_alignment_and_static_clips():
    sequences = _line_sequences()
    geometry = A.SiteAugmentation(rescale=1.0, collimator=0, blur=0, noise=0, gamma_contrast=0, text=0, jpeg=0)
    sampler = ClipSampler(sequences, radius=1, crop=32, seed=0, augmentation=geometry, normalise=True)
    assert geometry.window(32) == 56  # wider than the 40 px frame: reflected
    for _ in range(6):
        clip, mask = sampler.sample()
        assert clip.shape == (3, 32, 32)
        assert clip.min() == 0 and clip.max() == 1  # normalised: the vessel level is 0, the background 1
        assert_aligned(clip, mask, 0.5)
    still = ClipSampler(sequences, radius=2, crop=32, seed=1, augmentation=A.SiteAugmentation(), static_fraction=1.0)
    inputs, _ = still.batch(4)
    assert (inputs == inputs[:, 2:3]).all()  # every frame is the centre frame
    plain_still = ClipSampler(sequences, radius=1, crop=32, seed=1, static_fraction=1.0)  # with the old augmentation
    inputs, _ = plain_still.batch(3)
    assert (inputs == inputs[:, 1:2]).all()
    with pytest.raises(InputError, match="static_fraction"):
        ClipSampler(sequences, radius=1, crop=32, static_fraction=0.7, slow_fraction=0.5)
