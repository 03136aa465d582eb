r"""``fragment-milp``: CoCoDC's fragment schedule exactly, staleness limit included, by HiGHS warm-started.

The MILP of :func:`~edgeplan.formulations.sync.milp.fragment_milp` (binaries :math:`x_{tf}`, one capacity row per
slot, one staleness row per fragment and window) is passed to HiGHS with a relative gap of 1e-9 and the best
feasible of three schedules as its first incumbent (on models up to :data:`START_MAX_VARS` columns; larger ones
keep it as a fallback incumbent):

* ``cocodc``'s greedy schedule;
* a *filled rotation*: Streaming DiLoCo's groups (which keep the staleness limit when there are at most
  :math:`W` of them), then, slot by slot, the remaining capacity filled by value per byte;
* the same fill on an empty schedule (no staleness limit).

With staleness rows the bound is hard to close (the benchmark reports the gap reached); a time limit returns
the incumbent with the better of HiGHS' bound and the slots' fractional knapsacks (:func:`relaxation_bound`).
The ending (candidates re-checked and re-evaluated, the claim) is :func:`~edgeplan.solvers.warm_milp.solve_warm_milp`.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.sync.fragments import FragmentPlan, FragmentSync
from edgeplan.formulations.sync.milp import fragment_milp
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result
from edgeplan.solvers.sync.baselines import rotation_groups
from edgeplan.solvers.sync.cocodc import adaptive_plan
from edgeplan.solvers.warm_milp import solve_warm_milp

#: Relative gap at which HiGHS stops and the result is called optimal.
GAP = 1e-9
#: HiGHS' integrality and row tolerance here (its default): ``check`` re-judges the decoded schedule.
FEASIBILITY = 1e-6
#: Largest model HiGHS gets the warm start for: on 100,000 columns HiGHS 1.11 spent 6 s on the start before
#: its first interrupt check (the start still competes as the incumbent afterwards).
START_MAX_VARS = 20_000


def filled(problem: FragmentSync, x: np.ndarray) -> np.ndarray:
    """``x`` with each slot's spare capacity filled by the remaining fragments, highest value per byte first."""
    x = x.copy()
    size = problem.sizes_bytes.tolist()
    ratio = problem.value / np.maximum(problem.sizes_bytes, 1e-300)[None, :]
    cap = (problem.capacity_bytes + slack_tol(problem.capacity_bytes, FEAS_TOL)).tolist()
    for t in range(problem.n_slots):
        used = float(problem.sizes_bytes[x[t]].sum())
        row, val = x[t].tolist(), problem.value[t].tolist()
        for f in np.argsort(-ratio[t], kind="stable").tolist():
            if not row[f] and val[f] > 0 and used + size[f] <= cap[t]:
                x[t, f] = True
                used += size[f]
    return x


def relaxation_bound(problem: FragmentSync) -> float:
    """An upper bound without HiGHS: each slot's fractional knapsack (Dantzig's bound) with the staleness rows
    dropped, at the capacity plus check's slack."""
    total = 0.0
    cap = problem.capacity_bytes + slack_tol(problem.capacity_bytes, FEAS_TOL)
    size = problem.sizes_bytes
    for t in range(problem.n_slots):
        v = problem.value[t]
        free = (size == 0) & (v > 0)
        total += float(v[free].sum())
        order = np.argsort(-v / np.where(size > 0, size, 1.0), kind="stable")
        order = order[(size[order] > 0) & (v[order] > 0)]
        filled_bytes = np.cumsum(size[order])
        k = int(np.searchsorted(filled_bytes, cap[t], side="right"))
        total += float(v[order[:k]].sum())
        if k < order.size:
            left = cap[t] - (filled_bytes[k - 1] if k else 0.0)
            total += float(v[order[k]] * left / size[order[k]])
    return total


def warm_start(problem: FragmentSync) -> FragmentPlan | None:
    """The best feasible of the module docstring's three schedules (None: none is feasible)."""
    empty = np.zeros((problem.n_slots, problem.n_fragments), dtype=bool)
    cands = [adaptive_plan(problem), problem.plan_of(filled(problem, empty))]
    groups = rotation_groups(problem)
    if groups is not None:
        rot = empty.copy()
        for t in range(problem.n_slots):
            rot[t, groups[t % len(groups)]] = True
        cands.append(problem.plan_of(filled(problem, rot)))
    ok = [p for p in cands if not problem.check(p)]
    return max(ok, key=problem.objective) if ok else None


@register("fragment-milp", problem=FragmentSync, kind="exact", priority=15)
def solve_fragment_milp(problem: FragmentSync, ctx: SolveContext) -> Result:
    """Exact (staleness limit included): the MILP by HiGHS, warm-started with the best heuristic schedule."""
    t0 = time.perf_counter()
    milp, decode = fragment_milp(problem)
    start = warm_start(problem)
    columns = problem.matrix(start).ravel().astype(float) if start is not None and milp.n_vars <= START_MAX_VARS \
        else None
    return solve_warm_milp(problem, milp, decode, ctx, "fragment-milp", start=start, start_columns=columns, gap=GAP,
                           feasibility=FEASIBILITY, bound=relaxation_bound(problem), t0=t0)


__all__ = ["FEASIBILITY", "GAP", "START_MAX_VARS", "filled", "relaxation_bound", "solve_fragment_milp", "warm_start"]
