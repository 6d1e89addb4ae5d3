import numpy as np
import pytest

from angioseg import InputError, Video
from angioseg.methods import Segmentation, available, get, temporal_filter


def test_temporal_filter_matches_hand_computed_average():
    g = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    f = temporal_filter(g, radius=1)
    # interior: (k-1 + k + k+1)/3 = k; ends repeat the edge frame: (0+0+1)/3, (3+4+4)/3
    assert np.allclose(f[:, 0, 0], [1 / 3, 1, 2, 3, 11 / 3])
    weighted = temporal_filter(g, radius=1, weights=np.array([0.0, 0.0, 1.0]))
    # h(+1) = 1: f(k) = g(k - 1), and g(-1) = g(0)
    assert np.allclose(weighted[:, 0, 0], [0, 0, 1, 2, 3])


def test_temporal_filter_radius_zero_is_identity_and_constant_stays_constant():
    g = np.random.default_rng(0).random((6, 3, 3)).astype(np.float32)
    assert np.allclose(temporal_filter(g, radius=0), g)
    assert np.allclose(temporal_filter(np.full((4, 2, 2), 0.3, np.float32), radius=2), 0.3)


def test_temporal_filter_rejects_bad_arguments():
    with pytest.raises(InputError, match="3 weights"):
        temporal_filter(np.zeros((3, 2, 2)), radius=1, weights=[1, 2])
    with pytest.raises(InputError, match=r"\(T, H, W\)"):
        temporal_filter(np.zeros((3, 2)), radius=1)


def test_registry_lists_and_creates_methods():
    names = dict(available())
    assert "frangi" in names and names["frangi"]
    segmenter = get("frangi", device="cpu")
    video = Video(np.full((3, 48, 48), 0.8, np.float32), fps=10)
    video.frames[:, 22:26, 4:44] = 0.3
    result = segmenter.segment(video)
    assert isinstance(result, Segmentation)
    assert result.masks.shape == (3, 48, 48) and result.probabilities.shape == (3, 48, 48)
    assert result.masks.labels[:, 24, 24].all() and not result.masks.labels[:, 5, 5].any()
    assert result.options["method"] == "frangi" and result.timings["total"] > 0
    with pytest.raises(InputError, match="unknown method"):
        get("nope")
    with pytest.raises(InputError, match="bad options"):
        get("frangi", not_an_option=1)
