import numpy as np
import pytest

from angioseg import InputError, Video
from angioseg.methods import Segmentation, available, get


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
    with pytest.raises(InputError, match="method .frangi. has no option not_an_option; its options: clahe, device, dtype, scales, variant"):
        get("frangi", not_an_option=1)
