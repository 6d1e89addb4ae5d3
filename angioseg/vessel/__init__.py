"""Vessel enhancement: batched Hessian vesselness (Frangi, Sato) and the DeNVeR-style prior.

`frangi` and `sato` reproduce scikit-image's filters frame by frame on a `(T, H, W)` batch in
torch (see `angioseg.vessel.hessian`); `vesselness_masks` turns a sequence into a soft
response in [0, 1] and boolean vessel masks (see `angioseg.vessel.prior`).
"""

from angioseg.vessel.hessian import frangi, hessian_matrix, sato
from angioseg.vessel.prior import VesselnessResult, vesselness_masks

__all__ = ["VesselnessResult", "frangi", "hessian_matrix", "sato", "vesselness_masks"]
