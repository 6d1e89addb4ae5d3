"""Post-processing shared by every method and by the evaluation: temporal filters (plain and
along the motion), connected components (small-component removal, hysteresis growing,
components touching a seed), and turning per-class probabilities into label maps.

Sampling and warping along a flow field live one layer lower, in `angioseg.warp`, because the
data generators need them too; they are re-exported here.
"""

from angioseg.postprocess.calibration import logit_otsu_threshold, otsu_threshold, run_threshold
from angioseg.postprocess.components import drop_small_components, hysteresis, keep_touching, label_per_frame
from angioseg.postprocess.labels import foreground_probability, labels_from_probabilities, one_hot_probabilities
from angioseg.postprocess.temporal import filter_class_probabilities, motion_compensated_filter, temporal_filter, trajectory_positions
from angioseg.warp import pixel_positions, sample_at, warp_backward

__all__ = [
    "logit_otsu_threshold",
    "otsu_threshold",
    "run_threshold",
    "drop_small_components",
    "filter_class_probabilities",
    "foreground_probability",
    "hysteresis",
    "keep_touching",
    "label_per_frame",
    "labels_from_probabilities",
    "motion_compensated_filter",
    "one_hot_probabilities",
    "pixel_positions",
    "sample_at",
    "temporal_filter",
    "trajectory_positions",
    "warp_backward",
]
