"""Optical flow between the frames of a run (backends: OpenCV DIS, RAFT; see `backends`).

`angioseg.flow.raft` (RAFT in torch) and `angioseg.flow.raft_training` are imported on use,
so importing this package stays free of torch.
"""

from angioseg.flow.backends import FlowBackend, backend_from_spec, get_flow_backend, parse_backend_spec
from angioseg.flow.dis import dis_flow, estimate_flows

__all__ = [
    "FlowBackend",
    "backend_from_spec",
    "dis_flow",
    "estimate_flows",
    "get_flow_backend",
    "parse_backend_spec",
]
