r"""SLIDE's per-user convex programs in cvxpy (Clarabel): a cross-check of ``slide``'s bisections.

With :math:`u_l = 1/z_l \ge 1` the compute time :math:`\Gamma_l u_l` is linear and the energy
:math:`\sum_l \Gamma_l u_l^{-2}` convex (``docs/models/slide.md``), and with :math:`p = 1/y \ge 1` the download
times :math:`S_{\le j}\,p/(BR)` are linear too. Two convex programs follow, with :math:`c_j = \bar T -
\sum_{l\ge j} V_l` and :math:`\hat S_j = S_{\le j}/(BR)`:

* **P2 in u** (minimum latency at a fixed share, the paper's P2 without Prop. 2's extra constraints):

  .. math:: \min_{t, u \ge 1}\ t \quad\text{s.t.}\quad t \ge a_j + \sum_{l\ge j}(V_l + \Gamma_l u_l)\ \ \forall j,
            \qquad \sum_l \Gamma_l u_l^{-2} \le Q'.

* **Minimum share in one program** (Alg. 1 without bisection):

  .. math:: \max_{p \ge 1, u \ge 1}\ p \quad\text{s.t.}\quad \hat S_j p + \sum_{l\ge j}\Gamma_l u_l \le c_j\ \
            \forall j,\qquad T^0 + \sum_l (V_l + \Gamma_l u_l) \le \bar T,\qquad \sum_l \Gamma_l u_l^{-2} \le Q',

  whose optimum is :math:`1/\check y`: the deadline constraint of the recursion is exactly the set of suffix
  constraints, linear in :math:`(p, u)`.

Both are written once per padded layer count with cvxpy ``Parameter`` s (DPP), so repeated solves skip
compilation. Method ``"slide-cvxpy"`` runs Alg. 2 on the minimum shares of the second program and the clocks of
the first; it is optimal up to the conic solver's tolerances (Clarabel's defaults, on programs in units of each
pair's deadline) and is meant for cross-checks on small instances (one solve per admissible pair). A pair where
Clarabel fails makes the result ``error``: a plan built without it would not be proven.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import numpy as np

from edgeplan.formulations.slide.provisioning import SlideProvisioning
from edgeplan.solvers.backends.cvxpy import SOLVED, library, solve_program
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Deadline, Limit, Result, Status
from edgeplan.solvers.slide.slide import (
    admissible_pairs,
    admit,
    build_plan,
    cross_check_refusal,
    release_times,
    suffix_sum,
)

#: Clarabel at its own default tolerances (1e-8): at 1e-10 it failed on degenerate pairs, and a failed pair
#: counted as "cannot be served" gave a false "optimal". The programs are in units of the pair's deadline.
CLARABEL_TOL: dict[str, Any] = {"max_iter": 500}
#: Relative share added to every pair's minimum share in the plan (covers Clarabel's tolerance on the deadline).
SHARE_MARGIN = 1e-5


def _suffix_matrix(n: int) -> np.ndarray:
    return np.triu(np.ones((n, n)))


@cache
def _p2_program(n: int) -> tuple[Any, dict[str, Any], Any]:
    cp = library()

    u = cp.Variable(n)
    t = cp.Variable()
    start = cp.Parameter(n)  # a_j + sum_{l >= j} V_l
    work = cp.Parameter(n, nonneg=True)
    budget = cp.Parameter(nonneg=True)
    cons = [u >= 1, t >= start + _suffix_matrix(n) @ cp.multiply(work, u), work @ cp.power(u, -2) <= budget]
    return cp.Problem(cp.Minimize(t), cons), {"start": start, "work": work, "budget": budget}, u


@cache
def _share_program(n: int) -> tuple[Any, dict[str, Any], Any, Any]:
    cp = library()

    u = cp.Variable(n)
    p = cp.Variable()
    cum = cp.Parameter(n, nonneg=True)  # S_{<=j} / (B R)
    cap = cp.Parameter(n)  # deadline - sum_{l >= j} V_l
    cap0 = cp.Parameter()  # deadline - T0 - sum_l V_l
    work = cp.Parameter(n, nonneg=True)
    budget = cp.Parameter(nonneg=True)
    cons = [u >= 1, p >= 1, cp.multiply(cum, p) + _suffix_matrix(n) @ cp.multiply(work, u) <= cap,
            work @ u <= cap0, work @ cp.power(u, -2) <= budget]
    params = {"cum": cum, "cap": cap, "cap0": cap0, "work": work, "budget": budget}
    return cp.Problem(cp.Maximize(p), cons), params, p, u


def _budget(row_budget: float, work: np.ndarray) -> float:
    # an infinite budget never binds: sum_l work_l u_l^-2 <= sum_l work_l for u >= 1
    return float(min(row_budget, work.sum() + 1.0))


def _solve(prob: Any) -> str:
    return solve_program(prob, **CLARABEL_TOL)


def p2_latency_cvxpy(pd: dict[str, np.ndarray], row: int, share: float) -> tuple[float, np.ndarray]:
    """Minimum latency (P2 in u) of pair ``row`` of ``pd`` at ``share``, and its clocks ``z = 1/u``.

    Returns ``(inf, empty)`` when the budget admits no clocks or the solver fails.
    """
    n = int(pd["n_layers"][row])
    budget = float(pd["budget_s"][row])
    work = pd["work_s"][row, :n]
    if budget < 0 or (budget == 0 and work.sum() > 0):
        return np.inf, np.zeros(0)
    rel = release_times({k: v[row: row + 1] for k, v in pd.items()}, np.array([share]))[0, :n]
    T = float(pd["deadline_s"][row])              # every time in units of the deadline
    prob, par, u = _p2_program(n)
    par["start"].value = (rel + suffix_sum(pd["copy_s"][row, :n])) / T
    par["work"].value = work / T
    par["budget"].value = _budget(budget, work) / T
    if _solve(prob) not in SOLVED:
        return np.inf, np.zeros(0)
    return float(prob.value) * T, 1.0 / np.maximum(np.asarray(u.value, dtype=float), 1.0)


def min_share_cvxpy(pd: dict[str, np.ndarray], row: int) -> float:
    """Minimum feasible share of pair ``row`` of ``pd`` as one convex program (``inf`` when infeasible, ``nan``
    when Clarabel failed), in units of the pair's deadline."""
    n = int(pd["n_layers"][row])
    budget = float(pd["budget_s"][row])
    work = pd["work_s"][row, :n]
    if budget < 0 or (budget == 0 and work.sum() > 0):
        return np.inf
    deadline = float(pd["deadline_s"][row])
    copy_s = pd["copy_s"][row, :n]
    T = deadline
    cap = (deadline - suffix_sum(copy_s)) / T
    cap0 = (deadline - float(pd["setup_s"][row]) - copy_s.sum()) / T
    if cap0 < work.sum() / T - 1e-12 or np.any(cap < suffix_sum(work) / T - 1e-12):
        return np.inf       # not even at full clock and an instant download (1e-12: a deadline met exactly)
    prob, par, p, _ = _share_program(n)
    par["cum"].value = pd["cum_bits"][row, :n] / pd["full_rate_bps"][row] / T
    par["cap"].value = cap
    par["cap0"].value = cap0
    par["work"].value = work / T
    par["budget"].value = _budget(budget, work) / T
    status = _solve(prob)
    if status in ("infeasible", "infeasible_inaccurate"):
        return np.inf
    if status not in SOLVED or p.value is None:
        return np.nan
    return 1.0 / max(float(p.value), 1.0)       # p >= 1 holds only to Clarabel's tolerance


def pair_min_shares_cvxpy(problem: SlideProvisioning, deadline: Deadline | None = None) -> np.ndarray | None:
    """``(K, I)`` minimum shares of every admissible pair by :func:`min_share_cvxpy` (``inf`` elsewhere);
    ``None`` when ``deadline`` passes first (it is looked at between pairs)."""
    users, models = admissible_pairs(problem)
    pd = problem.pair_data(users, models)
    table = np.full((problem.n_users, problem.n_models), np.inf)
    for r in range(users.size):
        if deadline is not None and deadline.passed():
            return None
        table[users[r], models[r]] = min_share_cvxpy(pd, r)
    return table


def _out_of_time(t0: float, what: str) -> Result:
    return Result(plan=None, fun=None, status=Status.NO_SOLUTION, limit=Limit.TIME, method="slide-cvxpy",
                  sense="max", message=f"the time limit passed {what} (nothing is proven from part of the pairs)",
                  solve_time=time.perf_counter() - t0)


@register("slide-cvxpy", problem=SlideProvisioning, kind="exact", refuses=cross_check_refusal,
          requires=("cvxpy", "clarabel"), install="cvxpy", priority=60, options={})
def solve_slide_cvxpy(problem: SlideProvisioning, ctx: SolveContext) -> Result:
    """SLIDE with each pair's minimum share and clocks from Clarabel (cvxpy): a cross-check of ``slide``."""
    t0 = time.perf_counter()
    table = pair_min_shares_cvxpy(problem, ctx.deadline)
    if table is None:
        return _out_of_time(t0, "before every pair's minimum share was solved")
    failed = int(np.isnan(table).sum())
    if failed:  # a pair Clarabel could not decide is neither servable nor not: no plan is proven from the rest
        return Result(plan=None, fun=None, status=Status.ERROR, method="slide-cvxpy", sense="max",
                      message=f"Clarabel failed on {failed} admissible pair(s)", solve_time=time.perf_counter() - t0)
    best = table.min(axis=1)
    model = np.where(np.isfinite(best), np.argmin(table, axis=1), -1)
    # each share sits on its pair's deadline to Clarabel's tolerance: the plan gets SHARE_MARGIN more, so that the
    # clocks of P2 meet the deadline; the count is proven only if the margin changes no admission
    exact_share = np.where(model >= 0, best, np.inf)
    share = np.where(model >= 0, np.minimum(best * (1 + SHARE_MARGIN), 1.0), np.inf)
    admitted = admit(share)
    users = np.flatnonzero(admitted)
    clocks: dict[int, np.ndarray] = {}
    if users.size:
        pd = problem.pair_data(users, model[users])
        for r, u in enumerate(users):
            if ctx.deadline.passed():
                return _out_of_time(t0, "before every admitted user's clocks were solved")
            _, clocks[int(u)] = p2_latency_cvxpy(pd, r, float(share[u]))
    admitted &= np.array([u not in clocks or clocks[u].size > 0 for u in range(problem.n_users)])
    plan = build_plan(problem, model, share, clocks, admitted)
    fun = float(plan.served.sum())
    # the count Clarabel's shares prove; the margin or a user without clocks may have cost some: not proven then
    lost = int(admit(exact_share).sum()) - int(admitted.sum())
    status = Status.OPTIMAL if not lost else Status.FEASIBLE
    return Result(plan=plan, fun=fun, bound=fun if not lost else None, status=status, method="slide-cvxpy",
                  message=f"served {int(fun)} of {problem.n_users} users (Clarabel)",
                  solve_time=time.perf_counter() - t0, stats={"min_share": share}, sense="max")


__all__ = ["CLARABEL_TOL", "min_share_cvxpy", "p2_latency_cvxpy", "pair_min_shares_cvxpy", "solve_slide_cvxpy"]
