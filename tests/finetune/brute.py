"""Every plan of a small fine-tuning round (one candidate per device) and of a small expert selection."""

from __future__ import annotations

import itertools

import numpy as np

from edgeplan.formulations.finetune import ExpertPlan, ExpertSelection, FineTunePlan, FineTuneRound

TYPES = (FineTuneRound, ExpertSelection)


def plans(p):
    if isinstance(p, ExpertSelection):
        for m in range(p.n_experts + 1):
            for s in itertools.combinations(range(p.n_experts), m):
                yield ExpertPlan(s)
        return
    per_device = [np.flatnonzero(p.available[i]).tolist() for i in range(p.n_devices)]
    for choice in itertools.product(*per_device):
        yield FineTunePlan(np.array(choice))
