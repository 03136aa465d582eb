r"""``fragment-dp``: CoCoDC's fragment schedule without a staleness limit, exactly, one knapsack per slot.

Without the staleness rows the slots decouple into 0/1 knapsacks :math:`\max \sum_f v_{tf} x_f` s.t.
:math:`\sum_f s_f x_f \le C_t`. With whole-byte sizes divided by their greatest common divisor :math:`g`, the
table over capacities :math:`0..\lfloor C_t/g \rfloor` (check's slack included) is filled fragment by fragment
in numpy and the choice traced back. The deadline is checked between slots: at the time limit the slots not
yet solved send nothing, and the bound adds their LP relaxation (Dantzig's bound). Refused with a staleness
limit, fractional sizes or a table over :data:`MAX_CELLS` cells (every MILP backend takes those).
"""

from __future__ import annotations

import math
import time
from functools import reduce

import numpy as np

from edgeplan.errors import UnsupportedProblemError
from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.sync.fragments import FragmentPlan, FragmentSync
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: The largest knapsack table (cells over all slots); larger problems are refused (use a MILP backend).
MAX_CELLS = 10**9


def _units(problem: FragmentSync) -> tuple[np.ndarray, np.ndarray]:
    """Sizes and slot capacities in units of the sizes' greatest common divisor."""
    sizes = problem.sizes_bytes.astype(np.int64)
    g = reduce(math.gcd, sizes.tolist(), 0) or 1
    cap = problem.capacity_bytes + slack_tol(problem.capacity_bytes, FEAS_TOL)
    cap_units = np.floor(np.minimum(cap, sizes.sum()) / g).astype(np.int64)
    return sizes // g, cap_units


def _refuses(problem: FragmentSync) -> str | None:
    if problem.windows():
        return "solves slots one by one and cannot keep a staleness limit; use a MILP backend"
    if not np.all(problem.sizes_bytes == np.round(problem.sizes_bytes)) or problem.sizes_bytes.max() > 2**53:
        return "needs whole-byte fragment sizes (the knapsack's capacity axis); use a MILP backend"
    _, cap = _units(problem)
    cells = problem.n_fragments * float((cap + 1).sum())
    if cells > MAX_CELLS:
        return f"the knapsack tables would have {cells:.3g} cells (limit {MAX_CELLS:.0e}); use a MILP backend"
    return None


def knapsack(value: np.ndarray, size: np.ndarray, cap: int) -> list[int]:
    """The 0/1 knapsack's best item set (integer sizes, non-negative values)."""
    V = np.zeros(cap + 1)
    take = np.zeros((size.size, cap + 1), dtype=bool)
    for f in range(size.size):
        w = int(size[f])
        if w > cap or value[f] <= 0:
            continue
        cand = np.full(cap + 1, -np.inf)
        cand[w:] = V[: cap + 1 - w] + value[f]
        better = cand > V
        take[f] = better
        V = np.where(better, cand, V)
    c, chosen = int(np.argmax(V)), []
    for f in range(size.size - 1, -1, -1):
        if take[f, c]:
            chosen.append(f)
            c -= int(size[f])
    return sorted(chosen)


@register("fragment-dp", problem=FragmentSync, kind="exact", priority=10, refuses=_refuses)
def solve_fragment_dp(problem: FragmentSync, ctx: SolveContext) -> Result:
    """Exact without a staleness limit: one knapsack DP per slot (whole-byte sizes)."""
    t0 = time.perf_counter()
    why = _refuses(problem)
    if why is not None:
        raise UnsupportedProblemError(f"fragment-dp {why}")
    size, cap = _units(problem)
    slots: list[list[int]] = []
    for t in range(problem.n_slots):
        if ctx.deadline.passed():
            break
        slots.append(knapsack(problem.value[t], size, int(cap[t])))
    done = len(slots)
    plan = FragmentPlan(slots + [[] for _ in range(problem.n_slots - done)])  # an empty slot is always allowed
    fun = problem.objective(plan)
    if done == problem.n_slots:
        return Result(plan=plan, fun=fun, status=Status.OPTIMAL, bound=fun, method="fragment-dp", sense="max",
                      message="one knapsack DP per slot", solve_time=time.perf_counter() - t0)
    bound = fun + sum(dantzig(problem.value[t], size, int(cap[t])) for t in range(done, problem.n_slots))
    return Result(plan=plan, fun=fun, status=Status.FEASIBLE, bound=bound, limit=Limit.TIME, method="fragment-dp",
                  sense="max", message=f"time limit after {done} of {problem.n_slots} slots; the rest send nothing",
                  solve_time=time.perf_counter() - t0)


def dantzig(value: np.ndarray, size: np.ndarray, cap: int) -> float:
    """Dantzig's bound on a 0/1 knapsack: its LP relaxation, filled by value per unit of size (items of size 0
    and positive value are taken whole)."""
    keep = value > 0
    v, w = value[keep], size[keep].astype(float)
    free = w == 0
    order = np.argsort(-(v[~free] / w[~free]), kind="stable")
    v_, w_ = v[~free][order], w[~free][order]
    before = np.concatenate([[0.0], np.cumsum(w_)[:-1]])
    share = np.clip((cap - before) / np.where(w_ > 0, w_, 1.0), 0.0, 1.0)
    return float(v[free].sum() + (v_ * share).sum())


__all__ = ["MAX_CELLS", "dantzig", "knapsack", "solve_fragment_dp"]
