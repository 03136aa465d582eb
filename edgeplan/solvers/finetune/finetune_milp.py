r"""``finetune-milp``: a fine-tuning round with coverage rows or a shared server bandwidth, exactly, in HiGHS.

One-hot columns :math:`x_{ic}` for the candidates that fit, and :math:`\theta = T - s_0`:

.. math::

    \sum_c x_{ic} = 1,\quad \theta \ge \sum_c T_{ic} x_{ic}\ \ (i),\quad
    \theta \ge \sum_{ic} \frac{U_{ic}}{B} x_{ic},\quad \sum_{ic} a_{icj} x_{ic} \ge m_j\ \ (j),\quad
    \sum_{ic} w_i u_{ic} x_{ic} \ge \underline U.

* ``goal="time"``: :math:`\min \theta` in one MILP; without a shared bandwidth the optimum is one of the
  :math:`T_{ic}`, and HiGHS's bound is rounded up to the next of them.
* ``goal="rate"`` (a ratio): Dinkelbach's parametric MILP :math:`F(\lambda) = \max \sum w u x - \lambda
  (s_0 + \theta)`, started from the best plan a heuristic finds (the sweep's plan when it is feasible) and
  solved at :math:`\lambda = (1+\epsilon)\,r^*` for the incumbent's ratio :math:`r^*`: a better plan
  (:math:`F > 0`) becomes the incumbent; a proven :math:`F \le 0` bounds every plan's ratio by
  :math:`\lambda`, so the incumbent is optimal to :math:`\epsilon = 10^{-6}` relative. A bound
  :math:`F^{ub} > 0` that HiGHS cannot close gives :math:`\lambda + F^{ub}/T_{\min}` (every plan's round time
  is at least :math:`T_{\min} = s_0 + \max_i \min_c T_{ic}`).

Times and utilities are scaled so that the largest candidate's are 1 (HiGHS's tolerances are absolute). Both use
``mip_rel_gap`` 1e-9 and no absolute gap; "optimal" is claimed to a relative precision of 2e-6
(``stats["mip_rel_gap"]``); the time limit is the whole loop's.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from edgeplan.formulations.finetune.round import FineTunePlan, FineTuneRound
from edgeplan.formulations.milp import MILP
from edgeplan.solvers.finetune.finetune_sweep import best_at, no_candidate, solve_by_sweep
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: Dinkelbach's step: the parametric MILP is solved at (1 + EPS) times the incumbent's ratio.
EPS = 1e-6
#: The relative precision "optimal" is proven to (HiGHS's feasibility tolerances are 1e-7..1e-6 in scaled units).
GAP = 2e-6
MAX_ROUNDS = 100


def units(problem: FineTuneRound) -> tuple[float, float]:
    """``(time unit, utility unit)``: the largest round time and weighted utility of a candidate that fits, so
    that the MILP's coefficients are near 1 (HiGHS's tolerances are absolute)."""
    ok = problem.allowed()
    t = problem.device_time_table()[ok]
    ingress = (problem.upload_bytes[ok].max(initial=0.0) * problem.n_devices / problem.server_bandwidth_bps
               if np.isfinite(problem.server_bandwidth_bps) else 0.0)
    t_unit = max(problem.server_time_s, float(t.max(initial=0.0)), ingress)
    u_unit = float(problem.weighted_utility()[ok].max(initial=0.0))
    return t_unit, u_unit if u_unit > 0 else 1.0


def round_milp(problem: FineTuneRound, lam: float | None) -> tuple[MILP, Any]:
    r"""The one-hot MILP in scaled units (:func:`units`): ``lam`` is Dinkelbach's parameter for ``goal="rate"``
    in progress per second (the objective is then :math:`F(\lambda)` divided by the utility unit); ``None``
    minimises the round time (in time units)."""
    ok = problem.allowed()
    ii, cc = np.nonzero(ok)
    nv = ii.size + 1  # the last column is theta
    col = np.arange(ii.size)
    n = problem.n_devices
    t_unit, u_unit = units(problem)
    T = problem.device_time_table()[ii, cc] / t_unit
    wu = problem.weighted_utility()[ii, cc] / u_unit
    rows, cols, vals, lo, hi = [ii], [col], [np.ones(ii.size)], [np.ones(n)], [np.ones(n)]
    base = n
    rows += [base + ii, np.arange(base, base + n)]  # theta - sum_c T x >= 0
    cols += [col, np.full(n, nv - 1)]
    vals += [-T, np.ones(n)]
    lo.append(np.zeros(n))
    hi.append(np.full(n, np.inf))
    base += n
    names = [f"assign[{i}]" for i in range(n)] + [f"time[{i}]" for i in range(n)]
    if np.isfinite(problem.server_bandwidth_bps):
        rows += [np.full(ii.size, base), np.array([base])]
        cols += [col, np.array([nv - 1])]
        vals += [-problem.upload_bytes[ii, cc] / problem.server_bandwidth_bps / t_unit, np.ones(1)]
        lo.append(np.zeros(1))
        hi.append(np.full(1, np.inf))
        names.append("ingress")
        base += 1
    if problem.coverage is not None:
        a = problem.coverage[ii, cc]  # (nv-1, J)
        r, j = np.nonzero(a)
        rows.append(base + j)
        cols.append(col[r])
        vals.append(np.ones(r.size))
        lo.append(problem.min_coverage.astype(float))
        hi.append(np.full(problem.n_blocks, np.inf))
        names += [f"coverage[{j}]" for j in range(problem.n_blocks)]
        base += problem.n_blocks
    if np.isfinite(problem.utility_floor):
        rows.append(np.full(ii.size, base))
        cols.append(col)
        vals.append(wu)
        lo.append(np.array([problem.utility_floor / u_unit]))
        hi.append(np.full(1, np.inf))
        names.append("utility_floor")
        base += 1
    A = sp.csc_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(base, nv))
    integ = np.append(np.ones(ii.size), 0.0)
    if lam is None:
        c = np.append(np.zeros(ii.size), 1.0)
        milp = MILP(c=c, A=A, row_lower=np.concatenate(lo), row_upper=np.concatenate(hi), col_upper=np.append(
            np.ones(ii.size), np.inf), integrality=integ, constant=problem.server_time_s / t_unit, sense="min",
            row_names=names, name=f"{problem.name}-time")
    else:
        lam_s = lam * t_unit / u_unit
        c = np.append(wu, -lam_s)
        milp = MILP(c=c, A=A, row_lower=np.concatenate(lo), row_upper=np.concatenate(hi), col_upper=np.append(
            np.ones(ii.size), np.inf), integrality=integ, constant=-lam_s * problem.server_time_s / t_unit, sense="max",
            row_names=names, name=f"{problem.name}-dinkelbach")

    def decode(x: np.ndarray) -> FineTunePlan:
        on = np.asarray(x[:-1]) > 0.5
        choice = np.full(n, -1)
        choice[ii[on]] = cc[on]
        return FineTunePlan(choice)

    return milp, decode


def _highs(milp: MILP, ctx: SolveContext) -> Result:
    from edgeplan.solvers.api import solve

    return solve(milp, "highs", time_limit=ctx.deadline.remaining(), seed=ctx.seed, verbose=ctx.verbose,
                 options={"mip_rel_gap": 1e-9, "highs_options": {"mip_abs_gap": 0.0}})


def _warm_start(problem: FineTuneRound) -> FineTunePlan | None:
    """The sweep's plan when it is feasible for the coupled problem (coverage ignored by the sweep)."""
    theta, _ = solve_by_sweep(problem)
    if theta is None:
        return None
    plan = FineTunePlan(best_at(problem, theta))
    return None if problem.check(plan) else plan


def _time_goal(problem: FineTuneRound, ctx: SolveContext, t0: float) -> Result:
    milp, decode = round_milp(problem, None)
    res = _highs(milp, ctx)
    stats = {"milp_vars": milp.n_vars, "nodes": res.stats.get("nodes")}
    if not res.has_plan:
        st = Status.INFEASIBLE if res.status is Status.INFEASIBLE else Status.NO_SOLUTION
        return Result(plan=None, fun=None, status=st, limit=res.limit, message=res.message, method="finetune-milp",
                      solve_time=time.perf_counter() - t0, sense="min", stats=stats)
    plan = decode(res.plan)
    fun = problem.objective(plan)
    bound = None if res.bound is None else res.bound * units(problem)[0]
    if bound is not None and not np.isfinite(problem.server_bandwidth_bps):
        values = np.unique(problem.device_time_table()[problem.allowed()]) + problem.server_time_s
        k = int(np.searchsorted(values, bound * (1 - 1e-12), side="left"))
        bound = float(values[k]) if k < values.size else bound
    proven = res.status is Status.OPTIMAL and bound is not None and bound >= fun * (1 - GAP)
    return Result(plan=plan, fun=fun, status=Status.OPTIMAL if proven else Status.FEASIBLE,
                  bound=min(bound, fun) if bound is not None else None, limit=None if proven else res.limit,
                  message=res.message, method="finetune-milp", solve_time=time.perf_counter() - t0, sense="min",
                  stats={**stats, "mip_rel_gap": GAP})


def _rate_goal(problem: FineTuneRound, ctx: SolveContext, t0: float) -> Result:
    plan = _warm_start(problem)
    best = problem.objective(plan) if plan is not None else None
    t_min = problem.server_time_s + float(np.where(problem.allowed(), problem.device_time_table(), np.inf)
                                          .min(axis=1).max())
    bound, limit, message, rounds = None, None, "", 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        lam = 0.0 if best is None else best * (1 + EPS)
        milp, decode = round_milp(problem, lam)
        res = _highs(milp, ctx)
        if res.has_plan:
            cand = decode(res.plan)
            r = problem.objective(cand)
            if best is None or r > best * (1 + 1e-12):
                plan, best = cand, r
                continue
        if not res.has_plan and res.status is Status.INFEASIBLE:
            if best is None:
                return Result(plan=None, fun=None, status=Status.INFEASIBLE, method="finetune-milp", sense="max",
                              message="no plan meets the coverage rows, the utility floor and the memory caps",
                              solve_time=time.perf_counter() - t0)
            limit, message = Limit.OTHER, "HiGHS called the MILP infeasible although the incumbent is feasible"
            break
        ub = None if res.bound is None else res.bound * units(problem)[1]
        if ub is not None and np.isfinite(ub):
            bound = lam if ub <= 0 else lam + ub / t_min
        if res.status is not Status.OPTIMAL:
            limit, message = res.limit or Limit.OTHER, res.message
        break
    else:
        limit, message = Limit.ITERATION, f"stopped after {MAX_ROUNDS} Dinkelbach rounds"
    if plan is None:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, limit=limit, message=message or "no plan",
                      method="finetune-milp", sense="max", solve_time=time.perf_counter() - t0)
    fun = problem.objective(plan)
    proven = bound is not None and limit is None and bound <= fun * (1 + GAP) + 1e-300
    return Result(plan=plan, fun=fun, status=Status.OPTIMAL if proven else Status.FEASIBLE,
                  bound=None if bound is None else max(bound, fun), limit=None if proven else (limit or Limit.OTHER),
                  message=message or f"Dinkelbach: {rounds} MILP(s)", method="finetune-milp", sense="max",
                  solve_time=time.perf_counter() - t0, stats={"dinkelbach_rounds": rounds, "mip_rel_gap": GAP})


@register("finetune-milp", problem=FineTuneRound, kind="exact", requires=("highspy",),
          install="'highspy>=1.11,<1.15'", priority=20)
def solve_finetune_milp(problem: FineTuneRound, ctx: SolveContext) -> Result:
    """One-hot MILP in HiGHS (Dinkelbach for the ratio); exact with coverage rows and a shared bandwidth."""
    t0 = time.perf_counter()
    why = no_candidate(problem)
    if why is not None:
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, message=why, method="finetune-milp",
                      sense=problem.sense, solve_time=time.perf_counter() - t0)
    return (_time_goal if problem.goal == "time" else _rate_goal)(problem, ctx, t0)


__all__ = ["EPS", "round_milp", "solve_finetune_milp"]
