r"""``upload-cvxpy``: the upload-ratio program by cvxpy (a linear program in epigraph form), with a dual bound.

Each profile is the maximum of its segments' lines, so :math:`\epsilon_i(\theta_i) \le e_i` is one linear row
per segment, and

.. math::

    \min \sum_i s_i (1 - \theta_i) \quad \text{s.t.} \quad \sum_i C_i e_i \le \Delta,\quad
    e_i \ge \epsilon_i^g + \frac{\epsilon_i^{g+1} - \epsilon_i^g}{\theta^{g+1} - \theta^g} (\theta_i - \theta^g),\quad
    0 \le \theta_i \le \theta^G

goes to HiGHS through cvxpy. The returned ratios are re-evaluated on the profile (a solver's rows hold to its
tolerance; a plan over the budget is scaled down, by bisection, until it fits), and the budget row's dual gives
the Lagrangian bound of
:func:`~edgeplan.solvers.compression.upload_waterfill.lagrangian_bound`: ``optimal`` only when the re-evaluated
plan meets it.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.compression.ratios import RatioPlan, UploadRatios
from edgeplan.solvers.compression.upload_waterfill import lagrangian_bound
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, Status

#: Relative distance from the dual bound at which the plan is called optimal.
GAP = 1e-7


@register("upload-cvxpy", problem=UploadRatios, kind="exact", requires=("cvxpy", "highspy"), install="cvxpy",
          priority=30)
def solve_upload_cvxpy(problem: UploadRatios, ctx: SolveContext) -> Result:
    """Exact: the upload-ratio LP by cvxpy (HiGHS), with the budget's dual as a bound."""
    import cvxpy as cp

    t0 = time.perf_counter()
    g, err = problem.grid, problem.error
    n = problem.n_devices
    slope = np.diff(err, axis=1) / np.diff(g)[None, :]
    theta, e = cp.Variable(n), cp.Variable(n)
    budget_row = problem.importance @ e <= problem.budget
    cons = [theta >= 0, theta <= g[-1], budget_row]
    ones = np.ones((1, g.size - 1))
    spread = cp.reshape(theta, (n, 1), order="C") @ ones
    cons.append(cp.reshape(e, (n, 1), order="C") @ ones >= err[:, :-1] + cp.multiply(slope, spread - g[None, :-1]))
    prob = cp.Problem(cp.Minimize(problem.value_bytes @ (1 - theta)), cons)
    try:
        left = ctx.deadline.remaining()
        prob.solve(solver=cp.HIGHS, **({} if left is None else {"time_limit": left}))
    except cp.error.SolverError as exc:
        return Result(plan=None, fun=None, status=Status.ERROR, message=f"cvxpy: {exc}", method="upload-cvxpy",
                      sense="min", solve_time=time.perf_counter() - t0)
    if prob.status in ("infeasible", "infeasible_inaccurate"):
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, method="upload-cvxpy", sense="min",
                      solve_time=time.perf_counter() - t0)
    if theta.value is None:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, message=f"cvxpy status {prob.status}",
                      method="upload-cvxpy", sense="min", solve_time=time.perf_counter() - t0)
    x = np.clip(np.asarray(theta.value, dtype=float), 0.0, g[-1])
    plan = RatioPlan(x)
    if problem.check(plan):  # repair: over the budget by the solver's tolerance: the largest scaling that fits
        lo, hi = 0.0, 1.0
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if not problem.check(RatioPlan(mid * x)) else (lo, mid)
        plan = RatioPlan(lo * x)
    if problem.check(plan):
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, method="upload-cvxpy", sense="min",
                      message="the solver's ratios break the budget beyond repair",
                      solve_time=time.perf_counter() - t0)
    fun = problem.objective(plan)
    lam = float(budget_row.dual_value) if budget_row.dual_value is not None else 0.0
    bound = min(lagrangian_bound(problem, lam), fun)
    proven = fun - bound <= GAP * max(abs(fun), 1.0)
    return Result(plan=plan, fun=fun, bound=bound, status=Status.OPTIMAL if proven else Status.FEASIBLE,
                  method="upload-cvxpy", sense="min", solve_time=time.perf_counter() - t0,
                  stats={"multiplier": lam})


__all__ = ["solve_upload_cvxpy"]
