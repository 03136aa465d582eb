r"""Exact round latency for :class:`~edgeplan.formulations.fl.fl_round.FLRound`: bisection on T with a feasibility MILP.

Method ``"fl-bisect"``. Reachability of a round time :math:`T` is monotone (a larger :math:`T` lowers every
:math:`\check b_{nm}(T)`), so the optimum is :math:`T^\star = \min\{T : \text{feasible}(T)\}` (attained: the
feasible set of :math:`T` is closed). Each test is the multiple-knapsack assignment MILP of
:meth:`~edgeplan.formulations.fl.fl_round.FLRound.feasibility_milp` (selection count, per-BS bandwidth knapsack,
channels, windows), solved with HiGHS through :func:`edgeplan.solvers.api.solve`, after a cheap greedy that
settles most feasible tests without it.

* **Bracket.** ``lo``: the analytic bound (each selected user at best holds a whole band,
  :func:`~edgeplan.solvers.fl.kernels.latency_lower_bound`), then every :math:`T` the MILP proves
  infeasible. ``hi``: the true latency of the best plan found (first DAGSA's, or the assignment at
  :math:`T = \infty`). Every feasible test's assignment is *polished*: each BS is equalized exactly
  (:func:`~edgeplan.solvers.fl.kernels.schedule_from_assignment`), which usually drops ``hi`` to the
  optimum at once; the first test probes :math:`hi(1 - \text{rtol})`, which then proves it in one MILP.
* **Continuous bandwidth.** The loop stops when :math:`hi - lo \le \text{rtol}\cdot hi` (default
  ``rtol = 1e-6``). Returned: the plan (``fun = hi``) and ``bound = lo``, so :math:`T^\star \in [lo, hi]`; status
  ``optimal`` means proven to that relative tolerance. Numerics: :math:`\check b` is computed to ~1e-15 relative
  (:func:`~edgeplan.formulations.fl.common.min_bandwidth_hz`); the MILP's rows are scaled to 1 and solved with
  HiGHS's primal and MIP feasibility tolerances at 1e-9 (its MIP default, 1e-6, let assignments 1e-6 over a band
  through); a tolerance only makes HiGHS more permissive, so an infeasibility it proves is one.
* **Resource blocks.** :math:`T^\star` is one of the finitely many latencies :math:`t_{nmk}`; the bisection runs
  over their sorted values and ends with :math:`hi = lo^+` adjacent: the optimum exactly (``bound = fun``).
* **Infeasible.** Too few reachable users or channels, or a MILP at :math:`T = \infty` that schedules fewer
  than K users, give status ``infeasible`` with the reason. A time limit returns the best plan with ``lo``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeplan.formulations.fl.fl_round import FLRound, FLSchedule
from edgeplan.solvers.fl.kernels import (
    highs_options,
    latency_lower_bound,
    quick_infeasibility,
    schedule_from_assignment,
)
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: Default relative tolerance of the bisection (continuous bandwidth).
DEFAULT_RTOL = 1e-6
#: Relative slack within which a polished plan counts as meeting the round time its assignment was tested at.
POLISH_SLACK = 1e-9
#: Iteration cap (never reached in practice: about log2(1/rtol) tests).
MAX_TESTS = 400


def greedy_assignment(usage: np.ndarray, capacity: np.ndarray, channels: np.ndarray, k: int) -> np.ndarray | None:
    """A quick try at K users fitting the knapsacks: users by their smallest relative need, each to the BS with
    the smallest need that still fits. Returns the ``(N,)`` BS of each user, or ``None`` when it gets stuck."""
    n = usage.shape[0]
    rel = usage / capacity[None, :]
    left = capacity.astype(float).copy()
    chans = channels.astype(np.int64).copy()
    out = np.full(n, -1, dtype=np.int64)
    placed = 0
    for u in np.argsort(rel.min(axis=1), kind="stable"):
        if placed == k or not np.isfinite(rel[u].min()):
            break
        fits = (usage[u] <= left) & (chans > 0)
        if not fits.any():
            continue
        j = int(np.argmin(np.where(fits, rel[u], np.inf)))
        out[u] = j
        left[j] -= usage[u, j]
        chans[j] -= 1
        placed += 1
    return out if placed == k else None


class _Tester:
    """Feasibility of a round time: greedy first, then the MILP (HiGHS) within the remaining time."""

    def __init__(self, problem: FLRound, deadline: float | None, verbose: bool) -> None:
        self.problem = problem
        self.deadline = deadline
        self.verbose = verbose
        self.milps = 0
        self.greedy_hits = 0
        self.milp_time = 0.0
        self.max_count = problem.n_select

    def __call__(self, T: float) -> tuple[bool | None, np.ndarray | None]:
        """``(True, assignment)``, ``(False, None)``, or ``(None, None)`` when the time ran out."""
        from edgeplan.solvers.api import solve

        p = self.problem
        need = p.min_bandwidth_hz(T)
        if p.resource_block_hz is None:
            usage, cap = need, p.bs_bandwidth_hz
        else:
            usage, cap = need / p.resource_block_hz, p.n_blocks.astype(float)
        guess = greedy_assignment(usage, cap, p.bs_channels, p.n_select)
        if guess is not None:
            self.greedy_hits += 1
            return True, guess
        left = None if self.deadline is None else self.deadline - time.perf_counter()
        if left is not None and left <= 0:
            return None, None
        milp, decode = p.feasibility_milp(T)
        t0 = time.perf_counter()
        res = solve(milp, "highs", time_limit=left, verbose=self.verbose, options=highs_options(1e-4))
        self.milp_time += time.perf_counter() - t0
        self.milps += 1
        if not res.has_plan:
            return None, None
        got = round(res.fun)
        if got >= p.n_select:
            return True, decode(res.plan)
        if res.status is Status.OPTIMAL:
            self.max_count = got
            return False, None
        return None, None


def _result(problem: FLRound, plan: FLSchedule | None, lo: float, hi: float, status: Status, t0: float,
            tester: _Tester, message: str, **stats: Any) -> Result:
    limit = Limit.TIME if status in (Status.FEASIBLE, Status.NO_SOLUTION) else None
    return Result(plan=plan, fun=None if plan is None else hi, status=status,
                  bound=None if plan is None else min(lo, hi), limit=limit, message=message, method="fl-bisect",
                  solve_time=time.perf_counter() - t0,
                  stats={"milps": tester.milps, "greedy_hits": tester.greedy_hits, "milp_time": tester.milp_time,
                         **stats})


@register("fl-bisect", problem=FLRound, kind="exact", priority=5,
          options={"rtol": (float, DEFAULT_RTOL), "warm_start": (None, "dagsa")})
def solve_fl_bisect(problem: FLRound, ctx: SolveContext) -> Result:
    """Exact FL round latency: bisection on T, feasibility MILP (HiGHS), exact per-BS bandwidth polish.

    Options: ``rtol`` (relative tolerance on T for continuous bandwidth, default 1e-6), ``warm_start``
    (``"dagsa"``, default, or ``None``).
    """
    rtol = ctx.options["rtol"]
    warm = ctx.options["warm_start"]
    t0 = time.perf_counter()
    deadline = None if ctx.time_limit is None else ctx.deadline.start + ctx.time_limit
    tester = _Tester(problem, deadline, ctx.verbose)
    k = problem.n_select
    if k == 0:
        return _result(problem, FLSchedule.empty(problem.n_users), 0.0, 0.0, Status.OPTIMAL, t0, tester,
                       "K = 0: nobody trains; the round takes 0 s")
    reason = quick_infeasibility(problem)
    if reason is not None:
        return _result(problem, None, np.inf, np.inf, Status.INFEASIBLE, t0, tester, reason)
    lo = latency_lower_bound(problem)
    plan, hi = None, np.inf
    if warm == "dagsa":
        from edgeplan.solvers.fl.dagsa import dagsa_assignment

        bs_of, _ = dagsa_assignment(problem)
        if bs_of is not None:
            plan, hi = schedule_from_assignment(problem, bs_of)
    if plan is None:
        ok, assign = tester(np.inf)
        if ok is None:
            return _result(problem, None, lo, np.inf, Status.NO_SOLUTION, t0, tester, "time limit before any plan")
        if not ok:
            return _result(problem, None, np.inf, np.inf, Status.INFEASIBLE, t0, tester,
                           f"at most {tester.max_count} users can be scheduled together (bandwidth, channels and "
                           f"coverage windows); `n_select` = {k}")
        plan, hi = schedule_from_assignment(problem, assign)
    if problem.resource_block_hz is not None:
        return _bisect_blocks(problem, plan, lo, hi, tester, t0)
    first, top = True, hi  # top: the smallest T a test has found feasible (hi: the best plan's latency)
    for _ in range(MAX_TESTS):
        if hi - lo <= rtol * hi:
            return _result(problem, plan, lo, hi, Status.OPTIMAL, t0, tester,
                           f"optimal to rtol {rtol:g}: T* in [{lo:.9g}, {hi:.9g}] s", rtol=rtol)
        if top - lo <= rtol * top:
            if hi <= top * (1 + POLISH_SLACK):  # the polished plan meets the last feasible test up to rounding
                return _result(problem, plan, lo, hi, Status.OPTIMAL, t0, tester,
                               f"optimal to rtol {rtol:g}: T* in [{lo:.9g}, {hi:.9g}] s", rtol=rtol)
            # the MILP's tolerance let through assignments slightly over the band
            return _result(problem, plan, lo, hi, Status.FEASIBLE, t0, tester,
                           f"stopped at the MILP's feasibility tolerance: T* in [{lo:.9g}, {hi:.9g}] s", rtol=rtol)
        T = hi * (1.0 - rtol) if first else 0.5 * (lo + top)
        first = False
        ok, assign = tester(T)
        if ok is None:
            return _result(problem, plan, lo, hi, Status.FEASIBLE, t0, tester,
                           f"time limit: T* in [{lo:.9g}, {hi:.9g}] s", rtol=rtol)
        if not ok:
            lo = T
            continue
        top = min(top, T)
        cand, T_cand = schedule_from_assignment(problem, assign)
        if cand is not None and T_cand < hi:
            plan, hi = cand, T_cand
            top = min(top, hi)
    return _result(problem, plan, lo, hi, Status.FEASIBLE, t0, tester, "iteration cap reached", rtol=rtol)


def _bisect_blocks(problem: FLRound, plan: FLSchedule, lo: float, hi: float, tester: _Tester, t0: float) -> Result:
    """Resource blocks: bisection over the sorted distinct latencies in ``[lo, hi]`` (exact)."""
    lat = problem.rb_latency_s()
    cand = np.unique(lat[np.isfinite(lat)])
    cand = cand[(cand >= lo) & (cand < hi)]
    i_lo, i_hi = -1, cand.size            # cand[i_lo] infeasible (or below lo), cand[i_hi] = hi feasible
    bound = lo
    while i_hi - i_lo > 1:
        mid = (i_lo + i_hi) // 2
        ok, assign = tester(float(cand[mid]))
        if ok is None:
            return _result(problem, plan, bound, hi, Status.FEASIBLE, t0, tester,
                           f"time limit: T* in [{bound:.9g}, {hi:.9g}] s")
        if ok:
            new, T_new = schedule_from_assignment(problem, assign)
            if new is not None and T_new < hi:
                plan, hi = new, T_new
            i_hi = int(np.searchsorted(cand, hi, side="left"))
            i_hi = min(i_hi, mid)
        else:
            i_lo = mid
            bound = float(cand[mid])
    # every latency value below hi is infeasible: hi is the optimum
    return _result(problem, plan, hi, hi, Status.OPTIMAL, t0, tester,
                   f"optimal: {cand.size} candidate latencies searched")


__all__ = ["greedy_assignment", "solve_fl_bisect"]
