"""Every plan of a small partition problem (placements with every width; every cut and device order)."""

from __future__ import annotations

from edgeplan.formulations.partition import PipelinePartition, SplitInference
from partition.helpers import pipeline_plans, split_plans

TYPES = (SplitInference, PipelinePartition)


def plans(p):
    return split_plans(p) if isinstance(p, SplitInference) else pipeline_plans(p)
