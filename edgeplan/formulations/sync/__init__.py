"""Synchronisation schedules: when and what participants exchange, trading quality against communication.

* :class:`KVSyncSchedule` / :class:`SyncPlan` / :class:`KVSyncMetrics`: FedAttn's choice of the blocks whose
  key/value matrices the participants exchange (:mod:`.kv`);
* :class:`FragmentSync` / :class:`FragmentPlan` / :class:`FragmentMetrics`: CoCoDC's choice of the model
  fragments sent over the WAN in each slot (:mod:`.fragments`).

Seeded instances in :mod:`.instances` (``"kv-sync"``, ``"fragment-sync"``).
"""

from edgeplan.formulations.sync.fragments import FragmentMetrics, FragmentPlan, FragmentSync
from edgeplan.formulations.sync.kv import KVSyncMetrics, KVSyncSchedule, SyncPlan

__all__ = ["FragmentMetrics", "FragmentPlan", "FragmentSync", "KVSyncMetrics", "KVSyncSchedule", "SyncPlan"]
