"""Every plan of a small partition problem (placements with every width; every cut and device order)."""

from __future__ import annotations

from edgeplan.formulations.partition import PipelinePartition, SplitInference
from edgeplan.formulations.partition.collapipe import CollaPipeSlot
from partition.helpers import collapipe_plans, pipeline_plans, split_plans

TYPES = (SplitInference, PipelinePartition, CollaPipeSlot)


def plans(p):
    if isinstance(p, CollaPipeSlot):
        return collapipe_plans(p)
    return split_plans(p) if isinstance(p, SplitInference) else pipeline_plans(p)
