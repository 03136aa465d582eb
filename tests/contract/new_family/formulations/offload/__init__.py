"""A toy family (tests only): which tasks to offload to an edge server of limited capacity."""

from edgeplan.formulations.offload.offload import Offload, OffloadPlan

__all__ = ["Offload", "OffloadPlan"]
