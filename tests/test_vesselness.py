"""Batched Hessian vesselness (angioseg.vessel) against scikit-image, and the DeNVeR prior."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import filters as skfilters
from skimage.feature import hessian_matrix as sk_hessian_matrix

from angioseg.errors import InputError
from angioseg.vessel import VesselnessResult, frangi, hessian_matrix, sato, vesselness_masks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


def synthetic_frame(size: int = 112, seed: int = 0, lines: int = 4, noise: float = 0.03) -> np.ndarray:
    """Bright smooth background, dark anti-aliased curvilinear lines of several widths, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    background = 0.75 + 0.1 * np.sin(2.5 * xx + 1.3 * yy + rng.uniform(0, 6))
    ink = np.zeros((size, size), np.float32)
    for _ in range(lines):
        t = np.linspace(0, 1, 40)
        start, bend, end = rng.uniform(0, size, (3, 2))
        curve = ((1 - t) ** 2)[:, None] * start + (2 * t * (1 - t))[:, None] * bend + (t**2)[:, None] * end
        pts = np.round(curve * 16).astype(np.int32)[None]
        cv2.polylines(ink, pts, False, float(rng.uniform(0.2, 0.4)), int(rng.integers(1, 5)), cv2.LINE_AA, shift=4)
    ink = cv2.GaussianBlur(ink, (0, 0), 0.8)
    frame = background - ink + noise * rng.standard_normal((size, size))
    return np.clip(frame, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------------
# Filters against scikit-image
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [1, 2.5, 6])
def test_hessian_matches_skimage(sigma):
    frame = synthetic_frame(seed=3)[:, :97]  # non-square, width not a multiple of the block
    ours = hessian_matrix(frame, sigma)[0].numpy()
    ref = sk_hessian_matrix(frame, sigma, mode="reflect", use_gaussian_derivatives=True)
    for got, want in zip(ours, ref):
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.parametrize("sigmas", [(1, 2), (1.5, 3, 4.5), tuple(range(1, 10, 2))])
@pytest.mark.parametrize("black_ridges", [True, False])
@pytest.mark.parametrize("name", ["frangi", "sato"])
def test_matches_skimage_on_synthetic(name, sigmas, black_ridges):
    ours_fn, ref_fn = {"frangi": (frangi, skfilters.frangi), "sato": (sato, skfilters.sato)}[name]
    frame = synthetic_frame(seed=len(sigmas))
    ours = ours_fn(frame, sigmas=sigmas, black_ridges=black_ridges)
    ref = ref_fn(frame, sigmas=sigmas, black_ridges=black_ridges)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    assert pearson(ours, ref) >= 0.999
    assert np.abs(ours - ref).max() <= 1e-3 * max(float(ref.max()), 1e-12) or np.mean(np.abs(ours - ref) > 1e-4) < 1e-3


def test_frangi_explicit_gamma_matches_skimage():
    frame = synthetic_frame(seed=7)
    ours = frangi(frame, sigmas=(1, 3), gamma=0.02, beta=0.8)
    ref = skfilters.frangi(frame, sigmas=(1, 3), gamma=0.02, beta=0.8)
    assert pearson(ours, ref) >= 0.999


def _arcade_frame(root, name: str) -> np.ndarray:
    path = root / "val" / "images" / f"{name}.png"
    if not path.is_file():
        pytest.skip(f"ARCADE frame {path} not found")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return image.astype(np.float32) / 255.0


def test_matches_skimage_on_real_arcade_frames(arcade):
    frames = np.stack([_arcade_frame(arcade, "1"), _arcade_frame(arcade, "3")])  # 3: saturated area
    assert frames.shape[1:] == (512, 512)
    for ours_fn, ref_fn in ((frangi, skfilters.frangi), (sato, skfilters.sato)):
        ours = ours_fn(frames)  # default sigmas 1, 3, 5, 7, 9
        for t in range(2):
            assert pearson(ours[t], ref_fn(frames[t])) >= 0.999, (ours_fn.__name__, t)


# ------------------------------------------------------------------------------------------
# Batching, inputs, behaviour
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [frangi, sato])
def test_batch_equals_per_frame(fn):
    # different contrasts, so Frangi's per-frame gamma differs between frames
    frames = np.stack([synthetic_frame(seed=s) * c for s, c in ((1, 1.0), (2, 0.4), (3, 0.8))])
    batch = fn(frames, sigmas=(1, 2, 4), chunk=2)
    for t in range(3):
        single = fn(frames[t], sigmas=(1, 2, 4))
        np.testing.assert_allclose(batch[t], single, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", [frangi, sato])
def test_dark_horizontal_line_responds_on_the_line(fn):
    frame = np.full((64, 80), 0.8, np.float32)
    frame[30:33, :] = 0.3  # a dark line, 3 pixels wide
    response = fn(frame, sigmas=(1, 2, 3))
    on_line = response[31, 10:70].mean()
    beside = response[[20, 42], 10:70].mean()
    assert on_line > 0 and on_line > 5 * beside
    strict = {} if fn is sato else {"skimage_compat": False}
    # a bright line is not a dark ridge: no response on it with black_ridges=True
    assert fn(1 - frame, sigmas=(1, 2, 3), **strict)[31, 10:70].max() < 0.05 * on_line
    assert fn(1 - frame, sigmas=(1, 2, 3), black_ridges=False)[31, 10:70].mean() > 0.5 * on_line


def test_frangi_reproduces_skimage_on_flat_regions_and_axis_aligned_edges():
    # scikit-image's Frangi responds on the bright side of edges of regions that are constant
    # along one axis (its small eigenvalue cancels to exactly 0); real angiograms have such
    # regions (black borders, saturation). skimage_compat=True reproduces it, False removes it.
    frame = synthetic_frame(size=96, seed=11)
    frame[:, 70:] = 1.0  # saturated band
    frame[:, 90:] = 0.0  # black border
    frame[40:44, :] = 0.2  # and an exactly horizontal dark line through everything
    ref = skfilters.frangi(frame)
    assert pearson(frangi(frame), ref) >= 0.999
    bright = 1 - frame
    assert pearson(frangi(bright), skfilters.frangi(bright)) >= 0.999
    strict = frangi(bright, skimage_compat=False)
    assert strict[41, 72:88].max() < 0.01 and skfilters.frangi(bright)[41, 72:88].max() > 0.5


def test_shapes_dtypes_and_input_kinds():
    frame = synthetic_frame(size=48, seed=5)
    one = frangi(frame, sigmas=(1, 2))
    assert one.shape == (48, 48) and one.dtype == np.float32
    stack = frangi(np.stack([frame, frame]), sigmas=(1, 2))
    assert stack.shape == (2, 48, 48) and stack.dtype == np.float32
    np.testing.assert_allclose(stack[0], one, rtol=1e-6, atol=1e-7)
    from_torch = frangi(torch.from_numpy(frame)[None], sigmas=(1, 2))
    assert from_torch.shape == (1, 48, 48)
    np.testing.assert_allclose(from_torch[0], one, rtol=1e-6, atol=1e-7)
    as_float64 = sato(frame.astype(np.float64), sigmas=(1, 2), dtype=torch.float64)
    np.testing.assert_allclose(as_float64, skfilters.sato(frame.astype(np.float64), sigmas=(1, 2)), rtol=1e-6, atol=1e-9)
    assert (frangi(np.ones((20, 30), np.float32), sigmas=(1,)) == 0).all()  # flat: no vessels


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError):
        frangi(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(InputError):
        sato(np.full((8, 8), np.nan, np.float32))
    with pytest.raises(InputError):
        frangi(np.zeros((8, 8), np.float32), sigmas=())
    with pytest.raises(InputError):
        frangi(np.zeros((8, 8), np.float32), beta=0)
    with pytest.raises(InputError):
        vesselness_masks(np.zeros((8, 8), np.float32), variant="other")


# ------------------------------------------------------------------------------------------
# DeNVeR prior
# ------------------------------------------------------------------------------------------


def line_with_dots(size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """A dark diagonal vessel-like line plus isolated single-pixel dark noise dots."""
    rng = np.random.default_rng(seed)
    frame = np.full((size, size), 0.8, np.float32)
    line = np.zeros((size, size), np.uint8)
    cv2.line(line, (10, 20), (size - 10, size - 30), 1, 3)
    frame[line > 0] = 0.35
    dots = []
    while len(dots) < 12:
        r, c = (int(v) for v in rng.integers(4, size - 4, 2))
        if not line[max(0, r - 12) : r + 13, max(0, c - 12) : c + 13].any():
            frame[r, c] = 0.45
            dots.append((r, c))
    frame += 0.01 * rng.standard_normal(frame.shape).astype(np.float32)
    return np.clip(frame, 0, 1), line > 0, dots


@pytest.mark.parametrize("variant", ["paper", "public"])
def test_prior_keeps_the_line_and_drops_the_dots(variant):
    frame, line, dots = line_with_dots()
    result = vesselness_masks(frame, variant=variant, sigmas=(1, 2, 3))
    assert isinstance(result, VesselnessResult)
    assert result.response.shape == (1, 128, 128) and result.response.dtype == np.float32
    assert result.masks.shape == (1, 128, 128) and result.masks.dtype == bool
    assert 0.0 <= result.response.min() and result.response.max() <= 1.0
    mask = result.masks[0]
    assert mask[line].mean() > 0.8  # the line is found
    for r, c in dots:
        assert not mask[r - 2 : r + 3, c - 2 : c + 3].any(), (r, c)  # the dots are not
    assert mask[~line].sum() < 2 * line.sum()  # and the mask hugs the line


@pytest.mark.parametrize("filter", ["frangi", "sato"])
def test_prior_threshold_is_over_the_whole_sequence(filter):
    frame, line, _ = line_with_dots(seed=1)
    blank = np.full_like(frame, 0.8)
    result = vesselness_masks(np.stack([frame, blank]), variant="paper", filter=filter, sigmas=(1, 2, 3))
    assert result.threshold == pytest.approx(float(skfilters.threshold_otsu(result.response.ravel())))
    assert result.masks[0][line].mean() > 0.5  # found in the first frame
    assert not result.masks[1].any()  # nothing invented in the blank one
    # the response is normalised by the sequence maximum, not per frame
    raw = (frangi if filter == "frangi" else sato)(np.stack([frame, blank]), sigmas=(1, 2, 3))
    np.testing.assert_allclose(result.response, raw / raw.max(), rtol=1e-6, atol=1e-7)


def test_prior_public_threshold_is_a_sequence_percentile():
    frames = np.stack([line_with_dots(seed=s)[0] for s in (2, 3)])
    result = vesselness_masks(frames, variant="public", percentile=90, sigmas=(1, 2))
    assert result.filter == "sato" and result.variant == "public"
    assert result.threshold == pytest.approx(float(np.percentile(result.response, 90)))
    assert result.masks.any(axis=(1, 2)).all()


def test_prior_on_a_blank_sequence_is_empty():
    result = vesselness_masks(np.full((2, 32, 32), 0.5, np.float32), sigmas=(1, 2))
    assert not result.masks.any() and (result.response == 0).all()
