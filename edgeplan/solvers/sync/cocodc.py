r"""``cocodc``: CoCoDC's adaptive transmission, slot by slot.

In slot :math:`t`, first the fragments that must go now to keep the staleness limit (not sent in the last
:math:`W-1` slots), then the others by the size of their change :math:`v_{tf}`, largest first; each is sent if
it still fits the slot's capacity :math:`C_t` (a fragment that does not fit is skipped, smaller ones may
follow). Greedy and myopic: it never looks at later slots, so it can miss the optimum and, with a staleness
limit, can end without a plan where one exists. The delay compensation of CoCoDC acts on the training run
(:mod:`edgeplan.validation.sync`), not on the schedule.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.sync.fragments import FragmentPlan, FragmentSync
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def adaptive_plan(problem: FragmentSync) -> FragmentPlan:
    """The greedy schedule of the module docstring."""
    W = problem.max_staleness if problem.windows() else None
    last = np.full(problem.n_fragments, -1)
    size = problem.sizes_bytes.tolist()
    cap = (problem.capacity_bytes + slack_tol(problem.capacity_bytes, FEAS_TOL)).tolist()  # check's slack
    out = []
    for t in range(problem.n_slots):
        v = problem.value[t]
        due = (np.zeros(problem.n_fragments, dtype=bool) if W is None
               else (t - last >= W) & (t >= W - 1))
        order = np.lexsort((-v, ~due)).tolist()  # due first, then by change, largest first
        vals, dues = v.tolist(), due.tolist()
        chosen, used = [], 0.0
        for f in order:
            if not dues[f] and vals[f] <= 0:
                continue
            if used + size[f] <= cap[t]:
                chosen.append(f)
                used += size[f]
        last[chosen] = t
        out.append(chosen)
    return FragmentPlan(out)


@register("cocodc", problem=FragmentSync, kind="heuristic", priority=20)
def solve_cocodc(problem: FragmentSync, ctx: SolveContext) -> Result:
    """CoCoDC: per slot, overdue fragments first, then the largest changes that fit."""
    t0 = time.perf_counter()
    return heuristic_result(problem, adaptive_plan(problem), "cocodc", t0)


__all__ = ["adaptive_plan", "solve_cocodc"]
