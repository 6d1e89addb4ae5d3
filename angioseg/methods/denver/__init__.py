"""DeNVeR's building blocks ("DeNVeR: Deformable Neural Vessel Representations for
Unsupervised Video Vessel Segmentation"; equations and sections refer to that paper): the
losses of Eq. 1-7, the stage-1 field representations, the spatio-temporal B-spline background
motion and the Eulerian vessel flow.

Not a segmenter yet: the stage-1 and stage-2 optimisation loops are built on top of these.
Flows, displacements and coordinate maps are channels-last `(..., H, W, 2)`, (dx, dy) in pixels.
"""

from angioseg.methods.denver.bspline import BSplineMotion, bspline_basis, bspline_kernel, control_positions
from angioseg.methods.denver.eulerian import EulerianFlow, background_flow, transport, vessel_flow
from angioseg.methods.denver.fields import LayerSeparation, MultiResGrid, SirenMLP, make_stage1_fields, video_coordinates
from angioseg.methods.denver.losses import (
    LAMBDA_LIMIT,
    LAMBDA_SMOOTH,
    LOSS_NAMES,
    LossSchedule,
    LossWeights,
    active_losses,
    bootstrap_loss,
    composite,
    coordinate_scale,
    jacobian_smoothness_loss,
    jacobian_smoothness_loss_autograd,
    jacobian_smoothness_loss_grid,
    layer_flow_loss,
    limit_loss,
    mask_loss,
    parallel_loss,
    prior_loss,
    rec_loss,
    reconstruction_loss,
    vessel_normals,
    warp_loss,
)
from angioseg.methods.denver.warping import inside_frame, pixel_grid, sample_pixels

__all__ = [
    "BSplineMotion",
    "bspline_basis",
    "bspline_kernel",
    "control_positions",
    "EulerianFlow",
    "background_flow",
    "transport",
    "vessel_flow",
    "LayerSeparation",
    "MultiResGrid",
    "SirenMLP",
    "make_stage1_fields",
    "video_coordinates",
    "LAMBDA_LIMIT",
    "LAMBDA_SMOOTH",
    "LOSS_NAMES",
    "LossSchedule",
    "LossWeights",
    "active_losses",
    "bootstrap_loss",
    "composite",
    "coordinate_scale",
    "jacobian_smoothness_loss",
    "jacobian_smoothness_loss_autograd",
    "jacobian_smoothness_loss_grid",
    "layer_flow_loss",
    "limit_loss",
    "mask_loss",
    "parallel_loss",
    "prior_loss",
    "rec_loss",
    "reconstruction_loss",
    "vessel_normals",
    "warp_loss",
    "inside_frame",
    "pixel_grid",
    "sample_pixels",
]
