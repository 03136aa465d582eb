from __future__ import annotations

import time

import numpy as np
from edgeplan.formulations.offload.offload import Offload, OffloadPlan

from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


@register("greedy-offload", problem=Offload, kind="heuristic")
def greedy_offload(problem: Offload, ctx: SolveContext) -> Result:
    """Offload by saving per unit of load while the capacity lasts."""
    t0 = time.perf_counter()
    saving = problem.local_s - problem.remote_s
    x = np.zeros(saving.size, dtype=int)
    left = problem.capacity
    for i in np.argsort(-saving / np.maximum(problem.load, 1e-12)):
        if saving[i] > 0 and problem.load[i] <= left:
            x[i], left = 1, left - problem.load[i]
    return heuristic_result(problem, OffloadPlan(x), "greedy-offload", t0)
