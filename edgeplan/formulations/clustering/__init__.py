"""Clustered federated learning: which workers train together, with which top worker, and how often.

* :class:`ClientClustering` / :class:`ClusterPlan` / :class:`ClusteringMetrics`: ParallelSFL's clusters of
  split-FL workers (:mod:`.clients`);
* :class:`UpdateFrequency` / :class:`FrequencyPlan` / :class:`FrequencyMetrics`: each cluster's local updating
  frequency (:mod:`.frequency`).

Seeded instances in :mod:`.instances` (``"split-fl-clusters"``, ``"update-frequency"``).
"""

from edgeplan.formulations.clustering.clients import ClientClustering, ClusteringMetrics, ClusterPlan
from edgeplan.formulations.clustering.frequency import FrequencyMetrics, FrequencyPlan, UpdateFrequency

__all__ = ["ClientClustering", "ClusterPlan", "ClusteringMetrics", "FrequencyMetrics", "FrequencyPlan",
           "UpdateFrequency"]
