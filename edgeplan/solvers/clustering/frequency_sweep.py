r"""``frequency-sweep``: the clusters' local updating frequencies exactly, by the barrier sweep.

:func:`edgeplan.solvers.barrier.barrier_sweep` with :math:`a_c = t_c`, :math:`c_c = \beta_c`,
:math:`w_c = N_c` and :math:`\tau_c \in 1..\tau_{max}`: the candidate barriers are the :math:`C \tau_{max}` finish
times :math:`\tau t_c + \beta_c`, sorted once, with the trained mini-batches accumulated along them.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.clustering.frequency import FrequencyPlan, UpdateFrequency
from edgeplan.solvers.barrier import barrier_sweep
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


@register("frequency-sweep", problem=UpdateFrequency, kind="exact", priority=10)
def solve_frequency_sweep(problem: UpdateFrequency, ctx: SolveContext) -> Result:
    """Exact: sweep the round's barrier over every cluster's possible finish times."""
    t0 = time.perf_counter()
    C = problem.n_clusters
    tau = barrier_sweep(problem.iteration_s, problem.sync_s, problem.bottoms, np.ones(C, dtype=np.int64),
                        np.full(C, problem.tau_max), problem.round_bound_s)
    if tau is None:
        return heuristic_result(problem, None, "frequency-sweep", t0, infeasible=(
            f"one iteration per cluster takes {float((problem.iteration_s + problem.sync_s).max()):.6g} s, past the "
            f"round bound {problem.round_bound_s:.6g} s"))
    plan = FrequencyPlan(tau)
    return heuristic_result(problem, plan, "frequency-sweep", t0, bound=problem.objective(plan),
                            candidates=C * (problem.tau_max - 1) + 1)


__all__ = ["solve_frequency_sweep"]
