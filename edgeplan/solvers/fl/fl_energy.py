r"""Exact least-energy FL round (:class:`~edgeplan.formulations.fl.fl_energy.FLRoundEnergy`), and a cvxpy cross-check.

Method ``"fl-energy"``
----------------------
1. **Per-user convex part.** For a (user, BS, bandwidth) the least energy :math:`\mathcal E^\star(b)` comes from the
   time-split subproblem (``docs/models/fl.md``), solved by bisection on the derivative
   (:func:`~edgeplan.formulations.fl.fl_energy.time_split`), vectorized over all points at once.
2. **Resource blocks** (``resource_block_hz`` set): every block count of every pair is an operating point, and the
   operating-point MILP with the linearized coverage rows (:meth:`~edgeplan.formulations.fl.fl_energy.FLRoundEnergy.
   to_milp`) *is* the problem; HiGHS solves it with ``mip_rel_gap`` 1e-9. Exact up to that gap and the bisection
   (energies to ~1e-15 relative in the time split).
3. **Continuous bandwidth**: outer approximation (Kelley's cutting planes on the convex
   :math:`\mathcal E^\star`). The MILP of :func:`~edgeplan.formulations.fl.milp.tangent_milp` replaces
   each pair's :math:`\mathcal E^\star` by the maximum of its tangents, initially at ``points`` bandwidths spread
   geometrically between the least feasible bandwidth :math:`\check b` and the band; its optimum (HiGHS's dual
   bound) is a **lower bound**. Its solution (selection, BS, bandwidths) is feasible, so its true energy is an
   **upper bound**; tangents are added at its bandwidths and the MILP re-solved until
   :math:`ub - lb \le \text{rtol}\cdot ub` (default ``rtol = 1e-6``); each MILP is solved to a tenth of the
   current relative gap (at most 1e-3, at least rtol/4; its dual bound is valid either way). Each assignment's
   bandwidths are also re-split optimally within every BS (:func:`polish_bandwidth`: common marginal energy per
   hertz), and tangents go there too: once the MILP settles on the optimal assignment, the tangents at the
   polished point (all with the same slope) make its lower bound meet the upper bound, which ends Kelley's slow
   tail. The result carries the best plan and ``bound = lb``.

A coverage floor enters both MILPs either through cover columns per sample group (exact in one MILP; the default
up to :data:`AUTO_CUT_GROUPS` groups) or as submodular cuts generated on demand
(:func:`~edgeplan.formulations.fl.milp.edcr_cut`): a selection that misses the floor is cut off and the
MILP re-solved; the cuts are valid inequalities, so every bound stays valid, and the cuts at a selection are
exact there, so the loop ends. Option ``coverage`` picks (``"auto"``, ``"groups"``, ``"cuts"``).

Warm start and incumbent: ``do-snm``'s plan (sub-second) is handed to HiGHS as a warm start of the point MILP
(``setSolution``) and is the outer approximation's first upper bound; when HiGHS ends without a plan, or with a
worse one at a time limit, that plan is returned as ``feasible`` with the MILP's bound.

Infeasibility (too few users can meet the deadline within their windows at full power and clock, too few
channels, or a MILP that proves no selection meets the quota, bandwidth and coverage rows) is a status with the
reason. A time limit returns the best plan with the current lower bound.

Method ``"fl-energy-cvxpy"``
----------------------------
The same operating-point MILP with every point's energy computed by Clarabel through cvxpy instead of the
bisection: per point, :math:`\min_t \kappa C^3 (d-t)^{-2} + (b/h)(s - t)` subject to the exponential cone
:math:`t\,e^{c/t} \le s` (:math:`c = Z\ln 2/b`) and the bounds on :math:`t` (one ``Parameter``-ized problem,
compiled once). Exact (to Clarabel's 1e-10 tolerances) for resource blocks; for continuous bandwidth it solves
the problem on ``grid`` bandwidths per pair (a feasible plan, status ``feasible`` without a bound). Meant for
cross-checks on small instances.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeplan.formulations.fl.fl_energy import FLEnergySchedule, FLRoundEnergy
from edgeplan.formulations.fl.milp import edcr_cut, initial_edcr_cuts, point_milp, tangent_milp
from edgeplan.solvers.fl.kernels import count_infeasibility, highs_options
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: Default relative tolerance of the outer approximation.
DEFAULT_RTOL = 1e-6
#: Initial tangent points per pair.
DEFAULT_POINTS = 12
#: HiGHS gap for the exact resource-block MILP.
POINT_MIP_GAP = 1e-9
#: Iteration cap of the outer approximation.
MAX_OA_ITER = 200
#: Grid points per user and refinement levels of :func:`polish_bandwidth`.
POLISH_GRID = 33
POLISH_LEVELS = 4
#: Sample groups beyond which ``coverage="auto"`` states the coverage floor by cuts rather than cover columns.
AUTO_CUT_GROUPS = 400
COVERAGE_MODES = ("auto", "groups", "cuts")
#: Clarabel tolerances for the cross-check.


def energy_infeasibility(problem: FLRoundEnergy) -> str | None:
    """A proven reason why no schedule exists (reachability or channels), else ``None``."""
    return count_infeasibility(problem, np.isfinite(problem.min_bandwidth_hz()), "meet the deadline within their "
                               "coverage windows (at full power and clock, holding a whole band)")


def energy_scale(energy: np.ndarray) -> float:
    """A unit of energy that keeps the MILP's objective of order 1 (the median finite energy)."""
    fin = np.asarray(energy)[np.isfinite(energy) & (np.asarray(energy) > 0)]
    return float(np.median(fin)) if fin.size else 1.0


def result(plan: FLEnergySchedule | None, fun: float | None, status: Status, bound: float | None, t0: float,
            message: str, method: str, limit: Limit | None = None, **stats: Any) -> Result:
    """A :class:`Result` of the energy methods, timed from ``t0``, with ``stats``."""
    return Result(plan=plan, fun=fun, status=status, bound=bound, limit=limit, message=message, method=method,
                  solve_time=time.perf_counter() - t0, stats=stats)


def add_coverage_cuts(problem: FLRoundEnergy, chosen_users: np.ndarray, cuts: list) -> bool:
    """Append the cut of every community whose coverage floor the selection misses; True when it added any."""
    selected = np.zeros(problem.n_users, dtype=bool)
    selected[chosen_users] = True
    edcr, _ = problem.coverage(selected)
    comms = np.unique(problem.data.community)
    added = False
    for c, rate in zip(comms, edcr, strict=True):
        if rate < problem.edcr_min * (1 - 1e-9):
            cuts.extend(edcr_cut(problem, selected, int(c)))
            added = True
    return added


def _no_selection(method: str, t0: float, **stats: Any) -> Result:
    return result(None, None, Status.INFEASIBLE, None, t0, "no selection meets the quota, the bandwidth and channel "
                   "limits and the coverage constraints together", method, **stats)


def coverage_cuts(problem: FLRoundEnergy, coverage: str) -> list | None:
    """The initial cut list when the coverage floor goes in as cuts, ``None`` for the group formulation (or no
    floor). ``coverage``: ``"groups"``, ``"cuts"`` or ``"auto"`` (cuts beyond :data:`AUTO_CUT_GROUPS` groups)."""
    if problem.data is None or problem.edcr_min <= 0:
        return None
    if coverage == "groups" or (coverage == "auto" and problem.data.patterns.shape[0] <= AUTO_CUT_GROUPS):
        return None
    return initial_edcr_cuts(problem)


def heuristic_incumbent(problem: FLRoundEnergy) -> FLEnergySchedule | None:
    """The plan of ``do-snm`` (sub-second), the exact methods' warm start and fallback incumbent."""
    from edgeplan.solvers.api import solve

    r = solve(problem, "do-snm")
    return r.plan if r.has_plan else None


def _point_start(problem: FLRoundEnergy, users: np.ndarray, bs: np.ndarray, band: np.ndarray, n_vars: int,
                 plan: FLEnergySchedule | None) -> np.ndarray | None:
    """``plan`` as a warm start of the point MILP (its points on, the others off, other columns left to HiGHS);
    None when a selected user's (BS, bandwidth) is not one of the points."""
    if plan is None:
        return None
    x0 = np.full(n_vars, np.nan)
    x0[: users.size] = 0.0
    for u in np.flatnonzero(plan.bs >= 0):
        hit = np.flatnonzero((users == u) & (bs == plan.bs[u]) & np.isclose(band, plan.bandwidth_hz[u], rtol=1e-9))
        if not hit.size:
            return None
        x0[hit[0]] = 1.0
    return x0


def solve_points(problem: FLRoundEnergy, users: np.ndarray, bs: np.ndarray, band: np.ndarray, energy: np.ndarray,
                  usage: np.ndarray | None, capacity: np.ndarray | None, ctx: SolveContext, method: str, t0: float,
                  exact: bool, coverage: str = "auto", incumbent: FLEnergySchedule | None = None,
                  **stats: Any) -> Result:
    """Solve the operating-point MILP and wrap the answer; ``incumbent`` (a heuristic's plan) warm-starts HiGHS
    and is returned, as a feasible plan with the MILP's bound, when HiGHS ends with none or a worse one."""
    from edgeplan.solvers.api import solve

    scale = energy_scale(energy)
    cuts = coverage_cuts(problem, coverage)
    rounds = 0
    while True:
        milp, decode = point_milp(problem, users, bs, band, energy, usage=usage, capacity=capacity,
                                  energy_scale=scale, cuts=cuts)
        left = None if ctx.time_limit is None else max(ctx.time_limit - (time.perf_counter() - t0), 1e-3)
        start = _point_start(problem, users, bs, band, milp.n_vars, incumbent)
        opts = highs_options(POINT_MIP_GAP) | ({} if start is None else {"start": start})
        res = solve(milp, "highs", time_limit=left, options=opts, verbose=ctx.verbose)
        stats["warm_start"] = start is not None
        rounds += 1
        stats = {**stats, "milp_vars": milp.n_vars, "milp_rows": milp.n_rows, "mip_rel_gap": POINT_MIP_GAP,
                 "milps": rounds, "coverage_cuts": len(cuts or ())}
        if res.status is Status.INFEASIBLE:
            return _no_selection(method, t0, **stats)
        if not res.has_plan:
            limit = Limit.TIME if ctx.time_limit is not None else Limit.OTHER
            if incumbent is not None and not problem.check(incumbent):
                bound = res.bound * scale if exact and res.bound is not None else None
                return result(incumbent, problem.objective(incumbent), Status.FEASIBLE, bound, t0, "HiGHS ended "
                               f"without a plan ({res.message}): the heuristic's plan (do-snm)", method, limit,
                               incumbent="do-snm", **stats)
            return result(None, None, Status.NO_SOLUTION, None, t0, f"no plan ({res.message})", method, limit,
                           **stats)
        if cuts is None or not add_coverage_cuts(problem, users[decode(res.plan)], cuts):
            break
        if res.status is not Status.OPTIMAL:   # out of time with a selection below the floor
            return result(None, None, Status.NO_SOLUTION, None, t0, "time limit before a plan meeting the coverage "
                           "floor", method, Limit.TIME if ctx.time_limit is not None else Limit.OTHER, **stats)
    # HiGHS' precision in joules: points of one user whose energies differ by less are ties to it
    stats["objective_atol"] = float(res.stats.get("objective_atol", 0.0)) * scale
    i = decode(res.plan)
    plan = problem.schedule_from_points(users[i], bs[i], band[i])
    fun = problem.objective(plan)
    if res.status is not Status.OPTIMAL and incumbent is not None and not problem.check(incumbent) \
            and problem.objective(incumbent) < fun:
        plan, fun, stats["incumbent"] = incumbent, problem.objective(incumbent), "do-snm"
    if exact and res.status is Status.OPTIMAL:
        return result(plan, fun, Status.OPTIMAL, min(res.bound * scale, fun), t0,
                       f"optimal over {users.size} operating points (gap {POINT_MIP_GAP:g})", method, **stats)
    limit = res.limit or Limit.OTHER
    return result(plan, fun, Status.FEASIBLE, min(res.bound * scale, fun) if exact and res.bound is not None else None,
                   t0,
                   f"best over {users.size} operating points" + ("" if exact else " of a bandwidth grid"),
                   method, limit, **stats)


@register("fl-energy", problem=FLRoundEnergy, kind="exact", requires=("highspy",),
          install="'highspy>=1.11,<1.12'", priority=5,
          options={"rtol": (float, DEFAULT_RTOL), "points": (int, DEFAULT_POINTS), "coverage": (str, "auto")})
def solve_fl_energy(problem: FLRoundEnergy, ctx: SolveContext) -> Result:
    """Exact least-energy round: time split by bisection, operating-point MILP (blocks) or outer approximation.

    Options: ``rtol`` (outer approximation, default 1e-6), ``points`` (initial tangents per pair, default 12),
    ``coverage`` (``"auto"``, ``"groups"`` or ``"cuts"``: how a coverage floor enters the MILPs).
    """
    rtol = ctx.options["rtol"]
    n_points = ctx.options["points"]
    coverage = ctx.options["coverage"]
    if coverage not in COVERAGE_MODES:
        from edgeplan.errors import ProblemDataError

        raise ProblemDataError(f"`options['coverage']` = {coverage!r}; expected one of {', '.join(COVERAGE_MODES)}")
    t0 = time.perf_counter()
    reason = energy_infeasibility(problem)
    if reason is not None:
        return result(None, None, Status.INFEASIBLE, None, t0, reason, "fl-energy")
    if problem.n_select == 0 and (problem.data is None or problem.edcr_min <= 0):
        plan = FLEnergySchedule(np.full(problem.n_users, -1), *(np.zeros(problem.n_users) for _ in range(3)))
        return result(plan, 0.0, Status.OPTIMAL, 0.0, t0, "nobody needs to train", "fl-energy")
    if problem.resource_block_hz is not None:
        pts = problem.block_points()
        return solve_points(problem, pts["user"], pts["bs"], pts["blocks"] * problem.resource_block_hz,
                             pts["energy_j"], pts["blocks"].astype(float), problem.n_blocks.astype(float), ctx,
                             "fl-energy", t0, True, coverage, incumbent=heuristic_incumbent(problem),
                             points=int(pts["user"].size))
    return _outer_approximation(problem, ctx, rtol, n_points, t0, coverage, heuristic_incumbent(problem))


def polish_bandwidth(problem: FLRoundEnergy, users: np.ndarray, bs: np.ndarray, band: np.ndarray) -> np.ndarray:
    r"""Near-optimal bandwidths for a fixed assignment: per BS, :math:`\min \sum_j \mathcal E^\star_j(b_j)` over
    :math:`\sum_j b_j = B_m`, :math:`b_j \ge \check b_j` (convex, separable).

    KKT: :math:`\mathcal E^{\star\prime}_j(b_j) = -\lambda` for every user above its least bandwidth. The slopes are
    tabulated on a grid per user (one vectorized time split), :math:`b_j(\lambda)` is read off by interpolation,
    :math:`\lambda` found by bisection so that the band is used exactly, and the grid is refined around the answer
    (three levels). Any feasible answer is fine for the outer approximation (its energy is an upper bound, and
    tangents added there tighten the lower bound); this one is optimal to about 1e-9 in the bandwidths.
    """
    out = np.asarray(band, dtype=float).copy()
    bmin_all = problem.min_bandwidth_hz()
    for m in np.unique(bs):
        j = np.flatnonzero(bs == m)
        B = problem.bs_bandwidth_hz[m]
        lo = bmin_all[users[j], m]
        if lo.sum() >= B:
            continue
        hi = np.full(j.size, B)
        for level in range(POLISH_LEVELS):
            frac = np.linspace(0.0, 1.0, POLISH_GRID)
            if level == 0:                                   # geometric near the least bandwidth
                frac = np.expm1(frac * np.log1p(1e4)) / 1e4
            grid = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
            grid[:, 0] = np.maximum(grid[:, 0], lo * (1 + 1e-12))
            sol = problem.split(np.repeat(users[j], POLISH_GRID), np.full(grid.size, m), grid.ravel())
            slope = np.maximum.accumulate(sol["slope"].reshape(grid.shape), axis=1)  # convexity, against rounding
            if not np.isfinite(sol["energy_j"]).all():
                break

            def alloc(lam: float, grid: np.ndarray = grid, slope: np.ndarray = slope) -> np.ndarray:
                return np.array([np.interp(-lam, slope[i], grid[i]) for i in range(grid.shape[0])])

            l_lo, l_hi = 0.0, float(-slope[:, 0].min()) * 2 + 1e-300
            for _ in range(200):
                mid = 0.5 * (l_lo + l_hi)
                if alloc(mid).sum() > B:
                    l_lo = mid
                else:
                    l_hi = mid
                if l_hi - l_lo <= 1e-15 * l_hi:
                    break
            b = alloc(l_hi)
            step = (hi - lo) / (POLISH_GRID - 1) * (4 if level == 0 else 2)
            lo_new, hi_new = np.maximum(b - step, bmin_all[users[j], m]), np.minimum(b + step, B)
            lo, hi = lo_new, hi_new
        b = np.maximum(b, bmin_all[users[j], m] * (1 + 1e-12))
        spare = B - b.sum()
        if spare < 0:
            continue
        b = b + spare * (b - bmin_all[users[j], m]) / max((b - bmin_all[users[j], m]).sum(), 1e-300)
        out[j] = b
    return out


def _outer_approximation(problem: FLRoundEnergy, ctx: SolveContext, rtol: float, n_points: int, t0: float,
                         coverage: str, incumbent: FLEnergySchedule | None = None) -> Result:
    from edgeplan.solvers.api import solve

    bmin_all = problem.min_bandwidth_hz()
    users, bs = np.nonzero(np.isfinite(bmin_all))
    bmin = bmin_all[users, bs]
    band = problem.bs_bandwidth_hz[bs]
    frac = np.geomspace(1.0, 1.0 / max(n_points - 1, 1) ** 2, n_points) if n_points > 1 else np.ones(1)
    grid = bmin[:, None] + (band - bmin)[:, None] * (1.0 - frac[None, :])    # dense near b_min, reaching B
    grid[:, -1] = band
    sol = problem.split(np.repeat(users, n_points), np.repeat(bs, n_points), grid.ravel())
    points = [g for g in grid]
    values = list(sol["energy_j"].reshape(grid.shape))
    slopes = list(sol["slope"].reshape(grid.shape))
    scale = energy_scale(sol["energy_j"].reshape(grid.shape)[:, -1])
    cuts = coverage_cuts(problem, coverage)
    lb, ub, best = 0.0, np.inf, None
    if incumbent is not None and not problem.check(incumbent):     # the heuristic's plan is the first incumbent
        ub, best = problem.objective(incumbent), incumbent
    milps = 0
    for _ in range(MAX_OA_ITER):
        left = None if ctx.time_limit is None else ctx.time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            break
        milp, decode = tangent_milp(problem, users, bs, bmin, points, values, slopes, energy_scale=scale, cuts=cuts)
        # early rounds need no more than a tenth of the current gap; the last ones need a quarter of rtol
        gap = max(rtol / 4, min(1e-3, (ub - lb) / ub / 10 if np.isfinite(ub) else 1e-3))
        res = solve(milp, "highs", time_limit=left, options=highs_options(gap), verbose=ctx.verbose)
        milps += 1
        if res.status is Status.INFEASIBLE:
            return _no_selection("fl-energy", t0, milps=milps)
        if not res.has_plan:
            break
        if res.bound is not None and res.status is Status.OPTIMAL:
            lb = max(lb, res.bound * scale)
        on, b_milp = decode(res.plan)
        if cuts is not None and add_coverage_cuts(problem, users[on], cuts):
            continue                         # the selection misses a coverage floor: cut it off, re-solve
        b = polish_bandwidth(problem, users[on], bs[on], b_milp)
        for bb in (b, b_milp):
            plan = problem.schedule_from_points(users[on], bs[on], bb)
            val = problem.objective(plan)
            if val < ub and not problem.check(plan):
                ub, best = val, plan
        if ub - lb <= rtol * ub:
            return result(best, ub, Status.OPTIMAL, lb, t0, f"optimal to rtol {rtol:g}: energy in [{lb:.9g}, "
                           f"{ub:.9g}] J", "fl-energy", milps=milps, rtol=rtol, tangents=sum(p.size for p in points),
                           coverage_cuts=len(cuts or ()))
        if res.status is not Status.OPTIMAL:
            break
        at = np.concatenate([b, b_milp])
        pair = np.concatenate([on, on])
        new = problem.split(users[pair], bs[pair], at)
        for j, bj, ej, sj in zip(pair, at, new["energy_j"], new["slope"], strict=True):
            if np.isfinite(ej) and np.min(np.abs(points[j] - bj)) > 1e-12 * bj:
                points[j] = np.append(points[j], bj)
                values[j] = np.append(values[j], ej)
                slopes[j] = np.append(slopes[j], sj)
    if best is None:
        return result(None, None, Status.NO_SOLUTION, None, t0, "stopped before any plan", "fl-energy",
                       Limit.TIME if ctx.time_limit is not None else Limit.ITERATION, milps=milps)
    limit = Limit.TIME if ctx.time_limit is not None and time.perf_counter() - t0 >= ctx.time_limit else Limit.ITERATION
    return result(best, ub, Status.FEASIBLE, lb, t0, f"stopped: energy in [{lb:.9g}, {ub:.9g}] J", "fl-energy",
                   limit, milps=milps, rtol=rtol)


__all__ = ["energy_infeasibility", "result", "solve_fl_energy", "solve_points"]
