r"""``expert-dp``: HFedMoE's budgeted expert selection, exactly, by the 0/1 knapsack dynamic programme.

With integer costs :math:`\kappa_e` (e.g. backward work in units of the smallest expert), the best importance
over the first :math:`e` experts with at most :math:`k` of them and cost at most :math:`w` is

.. math::

    V_e(k, w) = \max\big(V_{e-1}(k, w),\ V_{e-1}(k-1, w-\kappa_e) + I(e)\big)

for routed experts with :math:`I(e) > 0` (the others never help), over :math:`k \le C_{max}` and
:math:`w \le \lfloor C_{budget} \rfloor`; :math:`O(E \cdot C_{max} \cdot C_{budget})` with numpy per expert. The
selection is traced back from the table. Fractional costs are refused (every MILP backend takes them).
"""

from __future__ import annotations

import math
import time

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.finetune.experts import ExpertPlan, ExpertSelection
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, Status

#: The DP table's largest size (cells); larger budgets are refused (use a MILP backend).
MAX_CELLS = 2 * 10**8


def _refuses(problem: ExpertSelection) -> str | None:
    if not np.all(problem.cost == np.round(problem.cost)):
        return "needs integer expert costs (the knapsack DP's capacity axis); use a MILP backend"
    k = problem.n_experts if problem.max_experts is None else min(problem.max_experts, problem.n_experts)
    cells = problem.n_experts * (k + 1) * (math.floor(min(problem.budget, problem.cost.sum())) + 1)
    if cells > MAX_CELLS:
        return f"the DP table would have {cells:.3g} cells (limit {MAX_CELLS:.0e}); use a MILP backend"
    return None


def knapsack(problem: ExpertSelection) -> ExpertPlan:
    """The optimal selection (see the module docstring)."""
    useful = np.flatnonzero(problem.routed & (problem.importance > 0))
    cap = problem.budget + float(slack_tol(np.asarray(problem.budget), FEAS_TOL))  # the slack check allows
    W = math.floor(min(cap, problem.cost[useful].sum()))
    K = useful.size if problem.max_experts is None else min(problem.max_experts, useful.size)
    V = np.full((K + 1, W + 1), -np.inf)
    V[0, :] = 0.0
    take = np.zeros((useful.size, K + 1, W + 1), dtype=bool)
    for n, e in enumerate(useful):
        w = int(problem.cost[e])
        if w > W:
            continue
        cand = np.full_like(V, -np.inf)
        cand[1:, w:] = V[:-1, : W + 1 - w] + problem.importance[e]
        better = cand > V
        take[n] = better
        V = np.where(better, cand, V)
    k, w = np.unravel_index(int(np.argmax(V)), V.shape)
    chosen = []
    for n in range(useful.size - 1, -1, -1):
        if take[n, k, w]:
            chosen.append(int(useful[n]))
            k, w = k - 1, w - int(problem.cost[useful[n]])
    return ExpertPlan(sorted(chosen))


@register("expert-dp", problem=ExpertSelection, kind="exact", priority=10, refuses=_refuses)
def solve_expert_dp(problem: ExpertSelection, ctx: SolveContext) -> Result:
    """Exact 0/1 knapsack DP with a cardinality axis (integer costs)."""
    t0 = time.perf_counter()
    why = _refuses(problem)
    if why is not None:
        from edgeplan.errors import UnsupportedProblemError

        raise UnsupportedProblemError(f"expert-dp {why}")
    plan = knapsack(problem)
    fun = problem.objective(plan)
    return Result(plan=plan, fun=fun, status=Status.OPTIMAL, bound=fun, method="expert-dp", sense="max",
                  message="knapsack DP", solve_time=time.perf_counter() - t0)


__all__ = ["MAX_CELLS", "knapsack", "solve_expert_dp"]
