"""DeNVeR ("DeNVeR: Deformable Neural Vessel Representations for Unsupervised Video Vessel
Segmentation"; equations and sections refer to that paper).

Building blocks: the losses of Eq. 1-7 (`losses`), the stage-1 field representations
(`fields`), the spatio-temporal B-spline background motion (`bspline`) and the Eulerian vessel
flow (`eulerian`). On top of them: stage 1, layer-separation bootstrapping (`stage1`), stage 2,
test-time training (`stage2`), and the registered segmenter ``denver``
(`segmenter.DenverSegmenter`, loaded by `angioseg.methods.get`).

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
from angioseg.methods.denver.stage1 import Stage1Result, run_stage1
from angioseg.methods.denver.stage2 import Stage2Rates, Stage2Result, run_stage2, stage2_schedule, trace_eulerian

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
    "Stage1Result",
    "run_stage1",
    "Stage2Rates",
    "Stage2Result",
    "run_stage2",
    "stage2_schedule",
    "trace_eulerian",
]
