r"""Upload ratios under a deviation budget: ``upload-waterfill`` (exact), ``caesar-upload`` and ``uniform-upload``.

``upload-waterfill``: segment :math:`g` of device :math:`i`'s profile saves :math:`s_i (\theta^{g+1} - \theta^g)`
bytes for :math:`C_i (\epsilon_i^{g+1} - \epsilon_i^g)` of deviation. Convex profiles make each device's segments
ever less efficient, so taking segments in order of bytes saved per unit of deviation (free ones first) until
the budget is spent, the last one in part, is the optimum of the linear program (a fractional knapsack: the
water level is the last segment's efficiency). :func:`lagrangian_bound` gives the dual bound of any multiplier.

``caesar-upload`` (Caesar's rule): rank the devices by importance (rank 1 the most important) and compress
device :math:`i` at :math:`\theta_{min} + (\theta_{max} - \theta_{min})\, \mathrm{rank}_i / n`.
``uniform-upload``: one ratio for everyone, the largest within the budget.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import within
from edgeplan.formulations.compression.ratios import RatioPlan, UploadRatios
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def waterfill(problem: UploadRatios) -> np.ndarray:
    """The optimal ratios (module docstring)."""
    g = problem.grid
    n, G = problem.n_devices, g.size - 1
    save = problem.value_bytes[:, None] * np.diff(g)[None, :]  # (n, G)
    cost = problem.importance[:, None] * np.diff(problem.error, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = np.where(cost > 0, save / cost, np.inf)
    # within a device, segments in grid order (convexity orders their efficiencies); across devices by efficiency
    order = np.lexsort((np.tile(np.arange(G), n), -eff.ravel()))
    need = cost.ravel()[order]
    spent = np.cumsum(need)
    budget = problem.budget - float(problem.importance @ problem.error[:, 0])  # what is left at theta = 0
    full = spent <= budget * (1 + 1e-12)
    dev, seg = np.divmod(order, G)
    taken = np.zeros((n, G))
    taken[dev[full], seg[full]] = 1.0
    first = int(np.argmin(full)) if not full.all() else None
    if first is not None and need[first] > 0:
        left = budget - (spent[first - 1] if first > 0 else 0.0)
        taken[dev[first], seg[first]] = min(max(left / need[first], 0.0), 1.0)
    # a device's segments are taken in grid order, so its ratio is the length of grid it covers (with convex
    # profiles any other order of equal length costs no less)
    theta = taken @ np.diff(g)
    return theta


def lagrangian_bound(problem: UploadRatios, multiplier: float) -> float:
    """:math:`\\sum_i \\min_g [s_i (1 - \\theta^g) + \\lambda C_i \\epsilon_i^g] - \\lambda \\Delta`, a lower bound
    on the optimum for any :math:`\\lambda \\ge 0` (each minimum of a piecewise-linear function is at a grid
    point)."""
    lam = max(float(multiplier), 0.0)
    inner = problem.value_bytes[:, None] * (1.0 - problem.grid[None, :]) \
        + lam * problem.importance[:, None] * problem.error
    return float(inner.min(axis=1).sum() - lam * problem.budget)


@register("upload-waterfill", problem=UploadRatios, kind="exact", priority=10)
def solve_upload_waterfill(problem: UploadRatios, ctx: SolveContext) -> Result:
    """Exact: segments in order of bytes saved per unit of deviation (water-filling)."""
    t0 = time.perf_counter()
    base = float(problem.importance @ problem.error[:, 0])
    if not within(base, problem.budget):
        return heuristic_result(problem, None, "upload-waterfill", t0, infeasible=(
            f"uncompressed uploads already deviate by {base:.6g}, over the budget {problem.budget:.6g}"))
    plan = RatioPlan(waterfill(problem))
    return heuristic_result(problem, plan, "upload-waterfill", t0, bound=problem.objective(plan))


@register("caesar-upload", problem=UploadRatios, kind="heuristic", priority=20,
          options={"theta_min": (float, 0.1), "theta_max": (float, 0.6)})
def solve_caesar_upload(problem: UploadRatios, ctx: SolveContext) -> Result:
    """Caesar: upload ratios by importance rank, the most important device compressed least."""
    t0 = time.perf_counter()
    lo, hi = ctx.options["theta_min"], ctx.options["theta_max"]
    rank = np.empty(problem.n_devices)
    rank[np.argsort(-problem.importance, kind="stable")] = np.arange(1, problem.n_devices + 1)
    theta = np.minimum(lo + (hi - lo) * rank / problem.n_devices, problem.grid[-1])
    return heuristic_result(problem, RatioPlan(theta), "caesar-upload", t0)


@register("uniform-upload", problem=UploadRatios, kind="heuristic", priority=200)
def solve_uniform_upload(problem: UploadRatios, ctx: SolveContext) -> Result:
    """Baseline: one ratio for every device, the largest within the budget."""
    t0 = time.perf_counter()
    n = problem.n_devices

    def deviation(t: float) -> float:
        return problem.evaluate(RatioPlan(np.full(n, t))).deviation

    lo, hi = 0.0, float(problem.grid[-1])
    if deviation(hi) <= problem.budget:
        lo = hi
    elif deviation(0.0) <= problem.budget:
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if deviation(mid) <= problem.budget else (lo, mid)
    return heuristic_result(problem, RatioPlan(np.full(n, lo)), "uniform-upload", t0)


__all__ = ["lagrangian_bound", "solve_caesar_upload", "solve_uniform_upload", "solve_upload_waterfill", "waterfill"]
