"""Clustered federated learning: which workers train together, with which top worker, and how often.

* :class:`ClientClustering` / :class:`ClusterPlan` / :class:`ClusteringMetrics`: ParallelSFL's clusters of
  split-FL workers (:mod:`.clients`);
* :class:`UpdateFrequency` / :class:`FrequencyPlan` / :class:`FrequencyMetrics`: each cluster's local updating
  frequency (:mod:`.frequency`);
* :class:`GraphClustering` / :class:`GroupPlan` / :class:`GroupMetrics`: FedGCF's clusters of graph clients by
  structural similarity (:mod:`.groups`).

Seeded instances in :mod:`.instances` (``"split-fl-clusters"``, ``"update-frequency"``, ``"graph-clients"``).
"""

from edgeplan.formulations.clustering.clients import ClientClustering, ClusteringMetrics, ClusterPlan
from edgeplan.formulations.clustering.frequency import FrequencyMetrics, FrequencyPlan, UpdateFrequency
from edgeplan.formulations.clustering.groups import GraphClustering, GroupMetrics, GroupPlan

__all__ = ["ClientClustering", "ClusterPlan", "ClusteringMetrics", "FrequencyMetrics", "FrequencyPlan",
           "GraphClustering", "GroupMetrics", "GroupPlan", "UpdateFrequency"]
