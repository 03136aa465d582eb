r"""``frequency-sweep``: the clusters' local updating frequencies exactly, by a sweep of the round's barrier.

For a barrier :math:`T` the most iterations cluster :math:`c` fits are
:math:`\tau_c(T) = \min(\tau_{max}, \lfloor (T - \beta_c) / t_c \rfloor)`; an optimal plan's own barrier
:math:`T^*` is one of the :math:`C \tau_{max}` values :math:`\tau t_c + \beta_c`, and there
:math:`\tau(T^*) \ge \tau^*` with a barrier no later than :math:`T^*`, so the best candidate is optimal. The
candidates are swept as one array (in chunks of :data:`CHUNK` rows).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from edgeplan.formulations.base import within
from edgeplan.formulations.clustering.frequency import FrequencyPlan, UpdateFrequency
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status, heuristic_result

#: Candidate barriers evaluated per array operation.
CHUNK = 4096
#: Relative slack of the floor: a barrier computed as ``tau * t + beta`` gives back ``tau``.
FLOOR_SLACK = 1e-9


def fitted_tau(problem: UpdateFrequency, barrier: np.ndarray) -> np.ndarray:
    """``(K, C)`` :math:`\\min(\\tau_{max}, \\lfloor (T - \\beta_c) / t_c \\rfloor)` for each barrier ``T``
    (0 where not even one iteration fits)."""
    room = (barrier[:, None] - problem.sync_s[None, :]) / problem.iteration_s[None, :]
    return np.clip(np.floor(room * (1.0 + FLOOR_SLACK) + FLOOR_SLACK), 0, problem.tau_max)


@register("frequency-sweep", problem=UpdateFrequency, kind="exact", priority=10)
def solve_frequency_sweep(problem: UpdateFrequency, ctx: SolveContext) -> Result:
    """Exact: sweep the round's barrier over every cluster's possible finish times."""
    t0 = time.perf_counter()
    taus = np.arange(1, problem.tau_max + 1, dtype=float)
    cands = np.unique((taus[:, None] * problem.iteration_s[None, :] + problem.sync_s[None, :]).ravel())
    first = float((problem.iteration_s + problem.sync_s).max())
    cands = cands[(cands >= first * (1 - FLOOR_SLACK)) & within(cands, problem.round_bound_s)]
    if cands.size == 0:
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, method="frequency-sweep", sense="max",
                      message=f"one iteration per cluster takes {first:.6g} s, past the round bound "
                              f"{problem.round_bound_s:.6g} s", solve_time=time.perf_counter() - t0)
    best, best_tau = -np.inf, None
    s = 0
    for s in range(0, cands.size, CHUNK):
        if ctx.deadline.passed():
            s -= CHUNK
            break
        tau = np.maximum(fitted_tau(problem, cands[s:s + CHUNK]), 1.0)
        finish = (tau * problem.iteration_s + problem.sync_s).max(axis=1)
        ok = within(finish, problem.round_bound_s)
        score = np.where(ok, (tau @ problem.bottoms) / finish, -np.inf)
        k = int(np.argmax(score))
        if score[k] > best:
            best, best_tau = float(score[k]), tau[k]
    plan = None if best_tau is None else FrequencyPlan(best_tau.astype(np.int64))
    done = s + CHUNK >= cands.size
    res = heuristic_result(problem, plan, "frequency-sweep", t0, bound=problem.objective(plan) if plan and done
                           else None, candidates=int(cands.size))
    return res if done else replace(res, limit=Limit.TIME, message="the time limit cut the sweep short")


__all__ = ["fitted_tau", "solve_frequency_sweep"]
