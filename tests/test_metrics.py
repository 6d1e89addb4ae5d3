import math
import warnings

import cv2
import numpy as np
import pytest
from scipy import ndimage

import angioseg.eval as ev
from angioseg.errors import InputError

# ---- helpers --------------------------------------------------------------------------------


def blobs(seed: int, shape=(48, 56), sigma=3.0, level=0.6) -> np.ndarray:
    noise = np.random.default_rng(seed).random(shape)
    smooth = ndimage.gaussian_filter(noise, sigma)
    return smooth > np.quantile(smooth, level)


def thin_vessel(shape=(48, 56), offset=0.0) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    points = np.array([[3, 5 + offset], [20, 18 + offset], [40, 30 + offset], [52, 44 + offset]], np.int32)
    cv2.polylines(mask, [points.reshape(-1, 1, 2)], False, 1, thickness=1)
    return mask.astype(bool)


# ---- confusion and ratio metrics ----------------------------------------------------------

PRED_4 = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
GT_4 = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
# TP = 3 ((0,0),(0,1),(1,0)), FP = 1 ((1,1)), FN = 1 ((2,0)), TN = 11


def test_confusion_counts_by_hand():
    counts = ev.confusion(PRED_4, GT_4)
    assert tuple(int(c) for c in counts) == (3, 1, 1, 11)
    assert all(isinstance(c, np.int64) for c in counts)
    per_frame = ev.confusion(np.stack([PRED_4, GT_4]), np.stack([GT_4, GT_4]), per_frame=True)
    assert per_frame.tp.dtype == np.int64 and per_frame.tp.tolist() == [3, 4]
    assert per_frame.fp.tolist() == [1, 0] and per_frame.fn.tolist() == [1, 0] and per_frame.tn.tolist() == [11, 12]


def test_ratio_metrics_by_hand():
    tp, fp, fn, tn = 3, 1, 1, 11
    assert ev.dice(PRED_4, GT_4) == pytest.approx(2 * tp / (2 * tp + fp + fn))  # 6/8
    assert ev.jaccard(PRED_4, GT_4) == pytest.approx(tp / (tp + fp + fn))  # 3/5
    assert ev.accuracy(PRED_4, GT_4) == pytest.approx((tp + tn) / 16)
    assert ev.sensitivity(PRED_4, GT_4) == pytest.approx(tp / (tp + fn))
    assert ev.recall(PRED_4, GT_4) == ev.sensitivity(PRED_4, GT_4)
    assert ev.specificity(PRED_4, GT_4) == pytest.approx(tn / (tn + fp))
    assert ev.precision(PRED_4, GT_4) == pytest.approx(tp / (tp + fp))


def test_integer_masks_and_0_1_floats_are_accepted():
    assert ev.dice(PRED_4.astype(np.uint8) * 7, GT_4.astype(np.int32)) == pytest.approx(0.75)
    assert ev.dice(PRED_4.astype(np.float32), GT_4) == pytest.approx(0.75)
    with pytest.raises(InputError, match="binary mask"):
        ev.dice(PRED_4 * 0.5, GT_4)


def test_video_metrics_are_frame_means():
    empty = np.zeros((4, 4), bool)
    pred = np.stack([PRED_4, empty, PRED_4])
    gt = np.stack([GT_4, empty, empty])
    assert ev.dice(pred, gt) == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    assert ev.jaccard(pred, gt) == pytest.approx((0.6 + 1.0 + 0.0) / 3)


EMPTY = np.zeros((5, 5), bool)
SOME = np.zeros((5, 5), bool)
SOME[1:3, 1:3] = True
FULL = np.ones((5, 5), bool)


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        # both empty: every ratio is 1 (prediction == reference)
        (EMPTY, EMPTY, dict(dice=1, jaccard=1, accuracy=1, sensitivity=1, specificity=1, precision=1)),
        # empty prediction, non-empty reference: precision has 0 denominator and disagrees -> 0
        (EMPTY, SOME, dict(dice=0, jaccard=0, accuracy=21 / 25, sensitivity=0, specificity=1, precision=0)),
        # non-empty prediction, empty reference: sensitivity has 0 denominator and disagrees -> 0
        (SOME, EMPTY, dict(dice=0, jaccard=0, accuracy=21 / 25, sensitivity=0, specificity=21 / 25, precision=0)),
        # reference all foreground: specificity 0/0 -> 1 only if prediction all foreground too
        (FULL, FULL, dict(dice=1, jaccard=1, accuracy=1, sensitivity=1, specificity=1, precision=1)),
        (SOME, FULL, dict(dice=8 / 29, jaccard=4 / 25, accuracy=4 / 25, sensitivity=4 / 25, specificity=0, precision=1)),
    ],
)
def test_empty_mask_conventions(pred, gt, expected):
    for name, value in expected.items():
        assert getattr(ev, name)(pred, gt) == pytest.approx(value), name
    assert ev.cldice(EMPTY, EMPTY) == 1.0
    assert ev.nsd(EMPTY, EMPTY) == 1.0
    assert ev.davis_j(EMPTY, EMPTY) == 1.0 and ev.davis_f(EMPTY, EMPTY) == 1.0


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InputError, match=r"\(4, 4\).*\(5, 5\)"):
        ev.dice(PRED_4, SOME)
    with pytest.raises(InputError, match=r"\(2, 4, 4\).*\(4, 4\)"):
        ev.evaluate_video(np.zeros((2, 4, 4), int), np.zeros((4, 4), int))
    with pytest.raises(InputError):
        ev.nsd(np.zeros((2, 2, 2, 2), bool), np.zeros((2, 2, 2, 2), bool))


def test_counts_do_not_overflow_on_long_uint8_videos():
    labels = np.full((300, 32, 32), 255, dtype=np.uint8)  # 307200 pixels > any 16-bit count
    counts = ev.confusion(labels, labels)
    assert int(counts.tp) == 300 * 32 * 32 and counts.tp.dtype == np.int64


# ---- clDice ---------------------------------------------------------------------------------


def test_cldice_lines():
    line = np.zeros((9, 20), bool)
    line[4, 2:18] = True
    assert ev.cldice(line, line) == 1.0
    # a 1-pixel line shifted by one row: no skeleton pixel of either lies in the other -> 0
    assert ev.cldice(line, np.roll(line, 1, axis=0)) == 0.0
    # 3-pixel-wide bars shifted by one row: each centreline lies (almost: skeletonize leaves a
    # one-pixel spur at a corner) inside the other bar, although Dice is only 2·(2·16) / 96 = 2/3
    from skimage.morphology import skeletonize

    bar = np.zeros((12, 20), bool)
    bar[3:6, 2:18] = True
    for shift in (1, 2):
        other = np.roll(bar, shift, axis=0)
        s_p, s_g = skeletonize(bar), skeletonize(other)
        tprec = (s_p & other).sum() / s_p.sum()
        tsens = (s_g & bar).sum() / s_g.sum()
        expected = 0.0 if tprec + tsens == 0 else 2 * tprec * tsens / (tprec + tsens)
        assert ev.cldice(bar, other) == pytest.approx(expected)
    assert ev.cldice(bar, np.roll(bar, 1, axis=0)) > 0.95
    assert ev.dice(bar, np.roll(bar, 1, axis=0)) == pytest.approx(2 / 3)


def test_cldice_partial_line_by_hand():
    gt = np.zeros((9, 20), bool)
    gt[4, 0:20] = True  # 20-pixel line; its skeleton is itself
    pred = np.zeros_like(gt)
    pred[4, 0:10] = True  # first half: Tprec = 1, Tsens = 10/20
    assert ev.cldice(pred, gt) == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert ev.cldice(pred, np.zeros_like(gt)) == 0.0 and ev.cldice(np.zeros_like(gt), gt) == 0.0


# ---- NSD and Hausdorff-95 against MONAI -----------------------------------------------------


def _monai_nsd(pred, gt, tau, spacing=None):
    import torch
    from monai.metrics import compute_surface_dice

    def one_hot(mask):
        m = torch.as_tensor(mask, dtype=torch.float32)
        return torch.stack([1 - m, m])[None]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = compute_surface_dice(one_hot(pred), one_hot(gt), class_thresholds=[tau], spacing=spacing)
    return float(value[0, 0])


def _nsd_cases():
    single_a = np.zeros((20, 24), bool)
    single_a[7, 9] = True
    single_b = np.zeros((20, 24), bool)
    single_b[9, 10] = True
    disjoint_a = np.zeros((40, 40), bool)
    disjoint_a[2:8, 2:8] = True
    disjoint_b = np.zeros((40, 40), bool)
    disjoint_b[25:35, 20:38] = True
    border = np.zeros((30, 30), bool)
    border[0:12, 0:30] = True  # touches three image borders
    return {
        "blobs-0-1": (blobs(0), blobs(1)),
        "blobs-2-3": (blobs(2, level=0.8), blobs(3, level=0.7)),
        "blob-vs-dilated": (blobs(4), ndimage.binary_dilation(blobs(4), iterations=2)),
        "thin-line": (thin_vessel(), thin_vessel(offset=2.0)),
        "thin-vs-thick": (thin_vessel(), ndimage.binary_dilation(thin_vessel())),
        "identical": (blobs(5), blobs(5)),
        "disjoint": (disjoint_a, disjoint_b),
        "one-pixel": (single_a, single_b),
        "one-pixel-same": (single_a, single_a),
        "one-empty": (np.zeros((20, 24), bool), single_b),
        "border": (border, np.roll(border, 3, axis=0)),
    }


@pytest.mark.parametrize("case", list(_nsd_cases()))
@pytest.mark.parametrize("tau", [0.0, 1.0, 1.4142135, 1.5, 2.0, 2.236068, 3.0])
def test_nsd_matches_monai(case, tau):
    pred, gt = _nsd_cases()[case]
    assert abs(ev.nsd(pred, gt, tau) - _monai_nsd(pred, gt, tau)) < 1e-6


def test_nsd_matches_monai_with_spacing_and_both_empty():
    pred, gt = blobs(6), blobs(7)
    assert abs(ev.nsd(pred, gt, 2.0, spacing=(0.5, 0.8)) - _monai_nsd(pred, gt, 2.0, spacing=[0.5, 0.8])) < 1e-6
    empty = np.zeros((10, 10), bool)
    assert math.isnan(_monai_nsd(empty, empty, 2.0)) and ev.nsd(empty, empty) == 1.0


def test_surface_is_four_neighbour_inner_boundary():
    square = np.zeros((7, 7), bool)
    square[1:6, 1:6] = True
    edges = ev.surface_pixels(square)
    assert edges.sum() == 16 and not edges[2:5, 2:5].any()
    full = np.ones((4, 5), bool)  # image border counts as outside
    assert ev.surface_pixels(full).sum() == 4 * 5 - 2 * 3
    video = np.stack([square, np.ones((7, 7), bool)])
    video_edges = ev.surface_pixels(video)  # frames are independent: no erosion across time
    assert np.array_equal(video_edges[0], edges) and video_edges[1].sum() == 49 - 25


def test_hausdorff95_matches_monai():
    import torch
    from monai.metrics import compute_hausdorff_distance

    for pred, gt in [(blobs(0), blobs(1)), (thin_vessel(), thin_vessel(offset=3.0)), (blobs(2), blobs(2))]:
        one_hot = lambda m: torch.stack([1 - torch.as_tensor(m, dtype=torch.float32), torch.as_tensor(m, dtype=torch.float32)])[None]  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = float(compute_hausdorff_distance(one_hot(pred), one_hot(gt), percentile=95)[0, 0])
        assert ev.hausdorff95(pred, gt) == pytest.approx(expected, abs=1e-5)
    empty = np.zeros((8, 8), bool)
    assert ev.hausdorff95(empty, empty) == 0.0 and ev.hausdorff95(empty, blobs(0, (8, 8))) == math.inf


# ---- AUROC / AUPRC --------------------------------------------------------------------------


def brute_force(scores, labels):
    """ROC trapezoid and AP by sweeping every distinct threshold, highest first."""
    scores, labels = np.ravel(scores), np.ravel(labels).astype(bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    tpr, fpr, ap, last_recall = [0.0], [0.0], 0.0, 0.0
    for t in np.unique(scores)[::-1]:
        predicted = scores >= t
        tp, fp = (predicted & labels).sum(), (predicted & ~labels).sum()
        tpr.append(tp / n_pos)
        fpr.append(fp / n_neg)
        recall = tp / n_pos
        ap += (recall - last_recall) * tp / (tp + fp)
        last_recall = recall
    return float(np.trapezoid(tpr, fpr)), float(ap)


def test_ranking_hand_examples():
    labels = np.array([1, 1, 0, 0], bool)
    assert ev.auroc_auprc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == (1.0, 1.0)
    auc, ap = ev.auroc_auprc(np.array([0.1, 0.2, 0.8, 0.9]), labels)
    assert auc == 0.0 and ap == pytest.approx(0.5 * (1 / 3) + 0.5 * (2 / 4))
    # scikit-learn's documented example: AUROC 0.75, AP 0.8333
    scores, y = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool)
    assert ev.auroc(scores, y) == pytest.approx(0.75)
    assert ev.auprc(scores, y) == pytest.approx(5 / 6)
    # ties: positive 0.5 ties with a negative 0.5 -> counted half
    scores, y = np.array([0.5, 0.5, 0.9, 0.1]), np.array([1, 0, 1, 0], bool)
    assert ev.auroc(scores, y) == pytest.approx((2 + 1.5) / 4)
    assert ev.auprc(scores, y) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # all scores tied: AUROC 0.5, AP = prevalence
    assert ev.auroc_auprc(np.full(8, 0.3), np.array([1, 0, 0, 0, 1, 0, 0, 0], bool)) == (0.5, 0.25)


def test_ranking_single_class_conventions():
    scores = np.random.default_rng(0).random((2, 4, 4))
    assert ev.auroc_auprc(scores, np.zeros((2, 4, 4), bool)) == (0.5, 0.0)
    assert ev.auroc_auprc(scores, np.ones((2, 4, 4), bool)) == (0.5, 1.0)
    with pytest.raises(InputError, match="NaN"):
        ev.auroc(np.full((2, 2), np.nan), np.eye(2, dtype=bool))
    with pytest.raises(InputError, match="shape"):
        ev.auroc(np.zeros((2, 2)), np.zeros((3, 2), bool))


@pytest.mark.parametrize("seed", range(4))
def test_ranking_matches_brute_force_sweep(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random((3, 9, 11)) < 0.3
    scores = np.clip(labels * 0.3 + rng.random(labels.shape) * 0.7, 0, 1)
    scores = (np.round(scores * 12) / 12).astype(np.float32)  # many ties
    auc, ap = ev.auroc_auprc(scores, labels)
    expected_auc, expected_ap = brute_force(scores, labels)
    assert auc == pytest.approx(expected_auc, abs=1e-12)
    assert ap == pytest.approx(expected_ap, abs=1e-12)


def test_binned_ranking_equals_exact_when_scores_sit_in_distinct_bins():
    rng = np.random.default_rng(7)
    labels = rng.random((5, 16, 16)) < 0.2
    scores = ((rng.integers(0, 10, labels.shape) + 0.5 * labels + 0.25) / 10).clip(0, 1)
    exact = ev.auroc_auprc(scores, labels)
    binned = ev.auroc_auprc(scores, labels, bins=20)  # one distinct score per bin
    assert binned == pytest.approx(exact, abs=1e-12)
    coarse = ev.auroc_auprc(scores, labels, bins=256)
    assert coarse == pytest.approx(exact, abs=1e-12)
    with pytest.raises(InputError):
        ev.auroc(scores + 1.0, labels, bins=10)


# ---- DAVIS J & F ----------------------------------------------------------------------------


def test_boundary_tolerance():
    assert ev.boundary_tolerance(10, 10) == 1  # ceil(0.008 · 14.1)
    assert ev.boundary_tolerance(480, 854) == math.ceil(0.008 * math.hypot(480, 854)) == 8
    assert ev.boundary_tolerance(512, 512) == 6


def test_davis_f_by_hand():
    pred = np.zeros((10, 10), bool)
    pred[2, 1:9] = True  # 8-pixel line, its own boundary
    near = np.zeros_like(pred)
    near[3, 1:9] = True  # 1 pixel away, within r = 1
    far = np.zeros_like(pred)
    far[5, 1:9] = True  # 3 pixels away
    half = np.zeros_like(pred)
    half[3, 1:5] = True  # matches pred columns 1..4: precision 4/8, recall 4/4
    assert ev.davis_f(pred, pred) == 1.0
    assert ev.davis_f(pred, near) == 1.0
    assert ev.davis_f(pred, far) == 0.0
    assert ev.davis_f(pred, half) == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert ev.davis_f(pred, far, tolerance=3) == 1.0
    assert ev.davis_f(pred, np.zeros_like(pred)) == 0.0 and ev.davis_f(np.zeros_like(pred), pred) == 0.0


def test_davis_dilation_is_a_disk():
    from skimage.morphology import disk

    from angioseg.eval.davis import _dilate, _disk

    boundary = np.random.default_rng(1).random((40, 50)) > 0.97
    for radius in (1, 3, 6):
        expected = ndimage.binary_dilation(boundary, structure=disk(radius).astype(bool))
        assert np.array_equal(_dilate(boundary, _disk(radius)), expected)


def test_davis_j_and_f_per_object_averaging():
    gt = np.zeros((2, 8, 8), np.int64)
    gt[:, 1:4, 1:4] = 1
    gt[:, 5:7, 5:7] = 2
    pred = gt.copy()
    pred[1][pred[1] == 2] = 0  # object 2 missed in frame 1: J = F = (1 + 0) / 2
    scores = ev.davis_j_and_f(pred, gt)
    assert scores.per_object == {1: (1.0, 1.0), 2: (0.5, 0.5)}
    assert scores.j == pytest.approx(0.75) and scores.f == pytest.approx(0.75) and scores.jf == pytest.approx(0.75)
    # a predicted id that is not in the reference is ignored, as in DAVIS
    extra = pred.copy()
    extra[0, 7, 0] = 3
    assert ev.davis_j_and_f(extra, gt).per_object.keys() == {1, 2}
    empty = np.zeros_like(gt)
    assert ev.davis_j_and_f(empty, empty).jf == 1.0
    assert ev.davis_j_and_f(gt, empty).jf == 0.0  # reference empty: the predicted ids are scored


def test_davis_long_uint8_video_no_overflow():
    frames = 300
    gt = np.zeros((frames, 12, 12), np.uint8)
    gt[:, 2:10, 2:10] = 200  # 64 pixels x 300 frames > 255 and > 65535 / 4
    gt[:, 3:5, 3:5] = 255
    pred = gt.copy()
    pred[::2, 2:10, 2:10] = 200  # object 255 missing in even frames
    scores = ev.davis_j_and_f(pred, gt)
    assert set(scores.per_object) == {200, 255}
    j_200 = np.mean([1.0 if t % 2 == 1 else 60 / 64 for t in range(frames)])
    assert scores.per_object[200][0] == pytest.approx(j_200)
    assert scores.per_object[255][0] == pytest.approx(0.5)
    assert scores.per_object[255][1] == pytest.approx(0.5)


# ---- temporal flicker -----------------------------------------------------------------------


def translating_square(frames=6, size=48, step=(2, 1), textured=False):
    rng = np.random.default_rng(0)
    texture = ndimage.gaussian_filter(rng.random((size, size)), 1.5)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    masks = np.zeros((frames, size, size), bool)
    video = np.full((frames, size, size), 0.5, np.float32)
    dx, dy = step
    for t in range(frames):
        y0, x0 = 12 + t * dy, 10 + t * dx
        masks[t, y0 : y0 + 16, x0 : x0 + 16] = True
        if textured:
            video[t, y0 : y0 + 16, x0 : x0 + 16] = 0.2 + 0.6 * texture[12 : 12 + 16, 10 : 10 + 16]
    flow = np.zeros((frames - 1, size, size, 2), np.float32)
    flow[..., 0], flow[..., 1] = -dx, -dy  # frame t+1 at x == frame t at x - step
    return masks, video, flow


def test_flicker_zero_under_exact_flow_positive_without():
    masks, _, flow = translating_square()
    assert ev.temporal_flicker(masks, flow_backward=flow) == 0.0
    zero = ev.temporal_flicker(masks, flow_backward=np.zeros_like(flow))
    # static warp: Dice of 16x16 squares offset by (2, 1) = 2·14·15 / 512
    assert zero == pytest.approx(1 - 2 * 14 * 15 / 512)


def test_flicker_with_dis_flow_is_small():
    masks, video, _ = translating_square(textured=True)
    estimated = ev.temporal_flicker(masks, frames=video)
    assert estimated < 0.05
    flow = ev.estimate_backward_flow(video)
    inside = masks[1:]
    assert np.abs(flow[..., 0][inside] + 2).mean() < 0.5 and np.abs(flow[..., 1][inside] + 1).mean() < 0.5


def test_flicker_conventions():
    empty = np.zeros((3, 8, 8), bool)
    assert ev.temporal_flicker(empty, flow_backward=np.zeros((2, 8, 8, 2), np.float32)) == 0.0
    assert ev.temporal_flicker(np.ones((1, 8, 8), bool)) == 0.0
    with pytest.raises(InputError, match="flow"):
        ev.temporal_flicker(empty)
    with pytest.raises(InputError, match="shape"):
        ev.temporal_flicker(empty, flow_backward=np.zeros((3, 8, 8, 2), np.float32))


# ---- evaluate_video and aggregation -------------------------------------------------------

KEYS = ["dice", "jaccard", "accuracy", "sensitivity", "specificity", "precision", "cldice", "nsd"]
TAIL = ["davis_j", "davis_f", "davis_jf", "flicker"]


def test_evaluate_video_keys_values_and_no_nan():
    masks, video, flow = translating_square(textured=True)
    gt = masks.astype(np.int64)
    gt[:, 12:14, 10:30] = 2  # a "catheter" label
    pred = np.roll(gt, 1, axis=2)
    pred[2] = 0  # an empty predicted frame
    probabilities = ndimage.gaussian_filter(masks.astype(np.float32), (0, 2, 2))
    out = ev.evaluate_video(pred, gt, probabilities=probabilities, flow_backward=flow)
    assert list(out) == KEYS + ["auroc", "auprc"] + TAIL
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert out["dice"] == pytest.approx(ev.dice(pred != 0, gt != 0))
    assert out["nsd"] == pytest.approx(ev.nsd(pred != 0, gt != 0))
    assert out["davis_j"] == pytest.approx(out["jaccard"])
    assert out["davis_jf"] == pytest.approx((out["davis_j"] + out["davis_f"]) / 2)
    assert 0.9 < out["auroc"] <= 1.0
    only_catheter = ev.evaluate_video(pred, gt, frames=video, label=2)
    assert list(only_catheter) == KEYS + TAIL
    assert only_catheter["dice"] == pytest.approx(ev.dice(pred == 2, gt == 2))


def test_evaluate_video_empty_video_is_defined():
    empty = np.zeros((3, 16, 16), np.int64)
    out = ev.evaluate_video(empty, empty, probabilities=np.zeros((3, 16, 16)), frames=np.zeros((3, 16, 16)))
    assert out["flicker"] == 0.0 and out["auroc"] == 0.5 and out["auprc"] == 0.0
    assert all(out[k] == 1.0 for k in KEYS + ["davis_j", "davis_f", "davis_jf"])
    with pytest.raises(InputError, match="flow_backward"):
        ev.evaluate_video(empty, empty)
    single = ev.evaluate_video(empty[:1], empty[:1])  # one frame needs no motion
    assert single["flicker"] == 0.0


def test_accumulator_summarise_and_markdown():
    acc = ev.MetricAccumulator()
    acc.add("a", {"dice": 0.5, "nsd": 0.25})
    acc.add("b", {"dice": 0.7, "nsd": 0.75, "auroc": 0.9})
    assert len(acc) == 2
    assert acc.mean() == pytest.approx({"dice": 0.6, "nsd": 0.5, "auroc": 0.9})
    assert acc.std() == pytest.approx({"dice": 0.1, "nsd": 0.25, "auroc": 0.0})
    rows = acc.table_rows()
    assert [r["case"] for r in rows] == ["a", "b", "mean", "std"] and rows[0] == {"case": "a", "dice": 0.5, "nsd": 0.25}
    with pytest.raises(InputError, match="already"):
        acc.add("a", {"dice": 1.0})
    with pytest.raises(InputError, match="NaN"):
        acc.add("c", {"dice": float("nan")})
    summary = ev.summarise([{"dice": 0.5}, {"dice": 0.7}])
    assert summary == {"dice": pytest.approx((0.6, 0.1))}
    table = ev.markdown_table({"unet": summary, "frangi": {"dice": (0.41234, 0.0567)}}, metrics=["dice", "nsd"])
    assert table.splitlines() == [
        "| method | dice | nsd |",
        "|---|---:|---:|",
        "| unet | 0.600 ± 0.100 | n/a |",
        "| frangi | 0.412 ± 0.057 | n/a |",
    ]


def test_evaluate_video_accepts_labelmap_and_video():
    from angioseg.types import LabelMap, Video

    masks, video, flow = translating_square(frames=4, textured=True)
    labels = LabelMap(masks.astype(np.uint8))
    out = ev.evaluate_video(labels, labels, frames=Video(video))
    plain = ev.evaluate_video(masks.astype(np.int64), masks.astype(np.int64), frames=video)
    assert out == plain and out["dice"] == 1.0 and out["flicker"] < 0.05


def test_evaluate_video_scores_only_frames_with_the_target_when_asked():
    from angioseg.eval import evaluate_video

    gt = np.zeros((3, 12, 12), np.uint8)
    pred = np.zeros_like(gt)
    gt[2, 3:7, 3:7] = 1
    pred[2, 3:7, 3:7] = 1
    pred[1, 0, 0] = 1  # a false positive on a frame before the contrast arrives
    flow = np.zeros((2, 12, 12, 2), np.float32)
    every = evaluate_video(pred, gt, flow_backward=flow)
    assert every["dice"] == pytest.approx((1 + 0 + 1) / 3) and "empty_clean" not in every
    filled = evaluate_video(pred, gt, flow_backward=flow, probabilities=pred.astype(float), frames_scored="with_target")
    assert filled["dice"] == 1.0 and filled["auroc"] == 1.0 and filled["empty_clean"] == 0.5
    assert filled["flicker"] == every["flicker"] and filled["dice_all_frames"] == every["dice"]
    nothing = evaluate_video(pred, np.zeros_like(gt), flow_backward=flow, frames_scored="with_target")
    assert "dice" not in nothing and nothing["empty_clean"] == pytest.approx(1 / 3)  # only frame 0 is predicted empty
    with pytest.raises(InputError, match="frames_scored"):
        evaluate_video(pred, gt, flow_backward=flow, frames_scored="some")
