"""Every plan of a small sync schedule: every set of sync blocks; every fragment set in every slot."""

from __future__ import annotations

import itertools

from edgeplan.formulations.sync import FragmentPlan, FragmentSync, KVSyncSchedule, SyncPlan

TYPES = (KVSyncSchedule, FragmentSync)


def plans(p):
    if isinstance(p, KVSyncSchedule):
        for mask in itertools.product((0, 1), repeat=p.n_blocks):
            yield SyncPlan([l for l, m in enumerate(mask) if m])
        return
    subsets = [[f for f, m in enumerate(mask) if m] for mask in itertools.product((0, 1), repeat=p.n_fragments)]
    for choice in itertools.product(subsets, repeat=p.n_slots):
        yield FragmentPlan(list(choice))
