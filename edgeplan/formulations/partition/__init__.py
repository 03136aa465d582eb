"""Model partitioning: split inference over device/edge/cloud tiers and pipelines over heterogeneous devices.

* :class:`SplitInference` / :class:`SplitPlan`: a chain or DAG placed on 2-3 tiers (Neurosurgeon, DADS,
  COACH), with transmission widths, memory caps, latency / energy / throughput objectives;
* :class:`PipelinePartition` / :class:`PipelinePlan`: contiguous stages on K devices, fixed or free order,
  micro-batches, inference or training, bottleneck (PipeEdge) or iteration time (GPipe, 1F1B);
* :class:`CollaPipeSlot` / :class:`CollaPipePlan`: CollaPipe's slot (segments, micro-batches, bandwidth units and
  power per D2D link) and :class:`CollaPipeHorizon`, its slots under per-device energy budgets.

Both reduce to a :class:`~edgeplan.formulations.milp.MILP` (:mod:`.milp`, through ``to_milp()``); seeded
instances are in :mod:`.instances`, PipeEdge's YAML files in :mod:`.pipeedge`.
"""

from edgeplan.formulations.partition.collapipe import CollaPipeHorizon, CollaPipePlan, CollaPipeSlot
from edgeplan.formulations.partition.common import BlockTimes, block_times, wireless_link
from edgeplan.formulations.partition.pipeline import PipelineMetrics, PipelinePartition, PipelinePlan, rate_matrix
from edgeplan.formulations.partition.split import SplitInference, SplitMetrics, SplitPlan

__all__ = ["BlockTimes", "CollaPipeHorizon", "CollaPipePlan", "CollaPipeSlot", "PipelineMetrics",
           "PipelinePartition", "PipelinePlan", "SplitInference", "SplitMetrics", "SplitPlan", "block_times",
           "rate_matrix", "wireless_link"]
