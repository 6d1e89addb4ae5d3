"""Batched Hessian vesselness (angioseg.vessel) against scikit-image, and the DeNVeR prior."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage import filters as skfilters
from skimage.feature import hessian_matrix as sk_hessian_matrix

from angioseg.errors import InputError
from angioseg.vessel import VesselnessResult, frangi, hessian_matrix, sato, vesselness_masks
from angioseg.vessel.roi import field_of_view


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
    frames = np.stack([frame, blank])
    result = vesselness_masks(frames, variant="paper", filter=filter, sigmas=(1, 2, 3))
    inside = result.fov
    assert inside.shape == (128, 128) and inside.dtype == bool
    # Otsu over the field-of-view pixels of both frames at once
    assert result.threshold == pytest.approx(float(skfilters.threshold_otsu(result.response[:, inside])))
    assert result.masks[0][line].mean() > 0.5  # found in the first frame
    assert not result.masks[1].any()  # nothing invented in the blank one
    # the former pipeline (whole frame, sequence maximum, Frangi's own gamma) is still there:
    # the response is normalised by the sequence maximum, not per frame
    legacy = vesselness_masks(
        frames, variant="paper", filter=filter, sigmas=(1, 2, 3), fov=None, scale_percentile=100, frangi_gamma="image"
    )
    assert legacy.fov.all()
    assert legacy.threshold == pytest.approx(float(skfilters.threshold_otsu(legacy.response.ravel())))
    raw = (frangi if filter == "frangi" else sato)(frames, sigmas=(1, 2, 3))
    np.testing.assert_allclose(legacy.response, raw / raw.max(), rtol=1e-6, atol=1e-7)


def test_prior_public_threshold_is_a_sequence_percentile():
    frames = np.stack([line_with_dots(seed=s)[0] for s in (2, 3)])
    result = vesselness_masks(frames, variant="public", percentile=90, sigmas=(1, 2))
    assert result.filter == "sato" and result.variant == "public"
    # over the field-of-view pixels of the sequence (with fov=None: every pixel, as before)
    assert result.threshold == pytest.approx(float(np.percentile(result.response[:, result.fov], 90)))
    whole = vesselness_masks(frames, variant="public", percentile=90, sigmas=(1, 2), fov=None)
    assert whole.threshold == pytest.approx(float(np.percentile(whole.response, 90)))
    assert result.masks.any(axis=(1, 2)).all()


def test_prior_on_a_blank_sequence_is_empty():
    result = vesselness_masks(np.full((2, 32, 32), 0.5, np.float32), sigmas=(1, 2))
    assert not result.masks.any() and (result.response == 0).all()


# ------------------------------------------------------------------------------------------
# Field of view (black border, collimator, saturation) and robust normalisation
# ------------------------------------------------------------------------------------------


def bordered_line(size: int = 160, seed: int = 0, frames: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A faint dark line (contrast 0.15) on a noisy bright field, with a black collimator band
    on the left (20 columns) and a black bar at the bottom (16 rows): `(T, H, W)` frames."""
    rng = np.random.default_rng(seed)
    line = np.zeros((size, size), np.uint8)
    cv2.line(line, (45, 40), (size - 20, size - 40), 1, 3)
    stack = []
    for _ in range(frames):
        frame = np.full((size, size), 0.7, np.float32)
        frame[line > 0] = 0.55
        frame += 0.01 * rng.standard_normal(frame.shape).astype(np.float32)
        frame[:, :20] = 0.0
        frame[-16:, :] = 0.0
        stack.append(np.clip(frame, 0, 1))
    return np.stack(stack), line > 0


def test_field_of_view_excludes_a_black_border_and_keeps_the_vessels():
    frames = np.stack([synthetic_frame(size=160, seed=s) for s in range(5)])
    frames[:, :, :20] = 0.0  # collimator band, left
    frames[:, -16:, :] = 0.0  # black bar, bottom
    frames[1:3, 60:70, 140:] = 0.0  # dark, touching the edge, but in 2 of 5 frames only
    fov = field_of_view(frames, sigma=3)  # dilation 3 * 3 = 9 px, edge band ceil(0.5 * 3) = 2 px
    expected = np.zeros((160, 160), bool)
    expected[2 : 160 - 16 - 9, 20 + 9 : 160 - 2] = True
    np.testing.assert_array_equal(fov, expected)
    # the vessels (dark, but well above the dark level) inside it are all kept
    vessels = frames.mean(axis=0) < 0.6
    assert vessels[expected].sum() > 200 and fov[vessels & expected].all()
    # no border, no saturation: only the edge band goes
    plain = field_of_view(synthetic_frame(size=96, seed=1), sigma=4, margin=1.0)
    assert not plain[:4].any() and not plain[:, -4:].any() and plain[4:-4, 4:-4].all()
    # fov=None in the prior means the whole frame; an explicit mask is used as given
    assert vesselness_masks(frames[:2], sigmas=(1, 2), fov=None).fov.all()
    np.testing.assert_array_equal(vesselness_masks(frames[:2], sigmas=(1, 2), fov=expected).fov, expected)


def test_field_of_view_excludes_saturated_patches():
    frame = synthetic_frame(size=160, seed=4)
    frame[60:90, 70:100] = 1.0  # a saturated patch inside the frame
    frame[30, 30] = 1.0  # a single saturated pixel: below min_area, kept
    fov = field_of_view(frame, sigma=2, margin=0.0)  # dilation 6 px
    assert not fov[54:96, 70:100].any() and not fov[60:90, 64:106].any()
    assert fov[[50, 100], 85].all() and fov[75, [60, 110]].all()
    assert fov[30, 30] and fov.mean() > 0.9
    # a run with nothing but border: the whole frame rather than nothing
    assert field_of_view(np.zeros((2, 40, 40), np.float32), sigma=2).all()


@pytest.mark.parametrize("filter", ["sato", "frangi"])
@pytest.mark.parametrize("variant", ["paper", "public"])
def test_prior_finds_a_dark_line_inside_a_black_border(filter, variant):
    frames, line = bordered_line(frames=2)
    result = vesselness_masks(frames, filter=filter, variant=variant, sigmas=(1, 2, 3))
    border = np.zeros(line.shape, bool)
    border[:, :20] = border[-16:, :] = True
    assert not result.fov[border].any() and result.fov[line].all()
    for t in range(2):
        mask = result.masks[t]
        assert mask[line].mean() > 0.6, (t, mask[line].mean())  # the line is found
        assert mask[~line].sum() < line.sum()
        if variant == "paper":  # hugs the line
            assert not (mask & ~ndi.binary_dilation(line, iterations=3)).any()
    assert not result.masks[:, border].any()
    assert not result.response[:, ~result.fov].any()


@pytest.mark.parametrize("filter", ["sato", "frangi"])
def test_max_normalisation_loses_a_dark_line_to_a_black_border(filter):
    # the failure this module's field of view and robust scale fix: the border's edge holds
    # the sequence maximum, Otsu keeps the edge and the line stays below it
    frames, line = bordered_line(frames=2)
    legacy = vesselness_masks(frames, filter=filter, sigmas=(1, 2, 3), fov=None, scale_percentile=100, frangi_gamma="image")
    assert legacy.masks[:, line].mean() < 0.1
    assert legacy.masks[:, :, :24].sum() > legacy.masks[:, line].sum()


def test_prior_scale_is_a_percentile_inside_the_field_of_view():
    frames, _ = bordered_line(frames=3, seed=2)
    raw = sato(frames, sigmas=(1, 2, 3))
    for q in (99.5, 99.9, 100.0):
        result = vesselness_masks(frames, filter="sato", sigmas=(1, 2, 3), scale_percentile=q)
        inside = result.fov
        # the black border's edge (outside the field of view) is far above the scale
        assert raw[:, ~inside].max() > 2 * result.scale
        want = float(np.percentile(raw[:, inside], q)) if q < 100 else float(raw[:, inside].max())
        assert result.scale == pytest.approx(want, rel=1e-6)
        expected = np.where(inside, np.clip(raw / np.float32(want), 0, 1), 0)
        np.testing.assert_allclose(result.response, expected, rtol=1e-5, atol=1e-6)
        top = (result.response[:, inside] >= 1.0).mean()  # the clipped tail: about 100 - q %
        assert top <= (100 - q) / 100 + 2 / inside.sum() and top > 0
    # a sparse response whose percentile is 0 falls back on the maximum
    frame = np.full((128, 128), 0.8, np.float32)
    frame[60:63, 58:66] = 0.3  # responds on about 1 % of the frame, exactly 0 elsewhere
    raw_sparse = sato(frame, sigmas=(1,))
    assert np.percentile(raw_sparse, 95) == 0
    sparse = vesselness_masks(frame, sigmas=(1,), scale_percentile=95.0, fov=None)
    assert sparse.scale == pytest.approx(float(raw_sparse.max()))
    assert sparse.masks[0, 61, 60:64].all()


def test_prior_frangi_gamma_per_scale_inside_the_field_of_view():
    frames, _ = bordered_line(frames=2, seed=3)
    sigmas = (1, 2, 3)
    result = vesselness_masks(frames, filter="frangi", sigmas=sigmas, scale_percentile=100)
    inside = result.fov
    gammas = []
    for sigma in sigmas:  # half the largest Hessian norm inside the field of view, per scale
        norms = [
            np.sqrt(sum(h**2 for h in (hrr, hrc, hrc, hcc)))
            for hrr, hrc, hcc in (sk_hessian_matrix(f, sigma, mode="reflect", use_gaussian_derivatives=True) for f in frames)
        ]
        gammas.append(max(float(n[inside].max()) for n in norms) / 2)
    np.testing.assert_allclose(result.gammas, gammas, rtol=1e-4)
    # the border's edge (outside) sets scikit-image's own gamma far larger
    first = sk_hessian_matrix(frames[0], sigmas[0], mode="reflect", use_gaussian_derivatives=True)
    assert np.sqrt(first[0] ** 2 + 2 * first[1] ** 2 + first[2] ** 2).max() / 2 > 3 * result.gammas[0]
    # the response is the maximum over scales of scikit-image's Frangi with those gammas
    reference = np.stack(
        [np.max([skfilters.frangi(f, sigmas=[s], gamma=g) for s, g in zip(sigmas, result.gammas)], axis=0) for f in frames]
    )
    assert pearson(result.response[:, inside], reference[:, inside]) >= 0.999
    # an explicit gamma is passed through untouched (one call, no per-scale gammas)
    fixed = vesselness_masks(frames, filter="frangi", sigmas=sigmas, gamma=0.05, fov=None, scale_percentile=100)
    raw = frangi(frames, sigmas=sigmas, gamma=0.05)
    assert fixed.gammas is None
    np.testing.assert_allclose(fixed.response, raw / raw.max(), rtol=1e-6, atol=1e-7)


def test_prior_bad_field_of_view_options_raise_input_error():
    frames = np.full((2, 32, 32), 0.5, np.float32)
    with pytest.raises(InputError):
        vesselness_masks(frames, fov="everything")
    with pytest.raises(InputError):
        vesselness_masks(frames, fov=np.ones((16, 16), bool))
    with pytest.raises(InputError):
        vesselness_masks(frames, fov=np.zeros((32, 32), bool))
    with pytest.raises(InputError):
        vesselness_masks(frames, filter="frangi", frangi_gamma="sky")
    with pytest.raises(InputError):
        field_of_view(frames, margin=-1)
