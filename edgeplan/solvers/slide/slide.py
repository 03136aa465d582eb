r"""SLIDE's optimal algorithm (arXiv 2512.20946, Algs. 1-2): exact per-user compute, bisection, sorted admission.

Method ``"slide"`` solves :class:`~edgeplan.formulations.slide.provisioning.SlideProvisioning` (problem P1) in
three steps.

1. **Compute allocation** (the paper's step A, problem P2). For a user ``k``, a model and a share ``y``, the
   layer release times are :math:`a_1 = \max(T^0, D_1)` and :math:`a_j = D_j` (:math:`j \ge 2`), and the
   recursion unrolls to :math:`t_L = \max_j \big(a_j + \sum_{l \ge j} (V_l + \Gamma_l / z_l)\big)`. In the
   compute times :math:`v_l = \Gamma_l / z_l` the deadline :math:`t_L \le T` is the chain of suffix constraints

   .. math:: \sum_{l \ge j} v_l \le c_j := T - a_j - \sum_{l\ge j} V_l \quad (j = 1..L),\qquad v_l \ge \Gamma_l,

   and the energy is :math:`\sum_l \Gamma_l^3 / v_l^2`: one processor, jobs released in order at
   :math:`a_j`, a common deadline and power :math:`\propto f^3`. Its minimum-energy schedule is the
   Yao-Demers-Shenker critical-interval solution (FOCS 1995), which we compute exactly: repeatedly take the
   suffix block of largest density :math:`\sum \Gamma / c` (ties: the longest), run it at that clock, and
   subtract its time from the earlier capacities (:func:`min_energy_clocks`). The deadline is reachable iff
   :math:`\sum_{l\ge j}\Gamma_l \le c_j` for all ``j`` (full clock). The minimum latency of P2 under the budget
   :math:`\sum_l \Gamma_l z_l^2 \le Q'` is then the smallest ``T`` whose minimum energy fits the budget,
   found by bracketing on ``T`` (:func:`min_latency_clocks`); we return the minimum-energy clocks at that
   latency. This replaces the paper's projected-subgradient multiplier iteration (eq. 12), whose step size and
   tolerances the paper does not give, by a finite exact method for the same convex problem; the clocks it
   returns have the KKT form the paper derives (:math:`z_l` non-decreasing in ``l``, Prop. 3).
2. **Minimum share** (Alg. 1). A pair (user, model) meets its deadline within budget at share ``y`` iff the
   minimum energy at deadline :math:`\bar T_k` is at most :math:`Q'` (equivalent to the paper's test "minimum
   latency <= deadline"). Feasibility is monotone in ``y``, so, like the paper, we shrink a bracket between the
   closed-form share that full clock needs without a budget (a valid lower bound) and 1, to ``rtol``
   (relative). Instead of halving we take Illinois regula-falsi steps on :math:`E_{\min}^{-1/2}` in
   :math:`p = 1/y`, which is affine in ``p`` while the critical blocks stay the same (:func:`illinois`): about
   5-20 steps instead of ~45, with the same guarantee (both ends tested). A pair infeasible at ``y = 1`` is
   excluded: such a user is never admitted (the printed Alg. 2 would admit it with ``y = 0``).
3. **Admission** (Alg. 2). Each user takes its smallest minimum share over admissible models (Prop. 4; ties by
   minimum latency); users are admitted in ascending order while the shares fit in the band.

What is proven optimal, and under which assumptions
---------------------------------------------------
Given exact minimum shares :math:`y^\star_k`, step 3 is optimal for P1 (Theorem 1: unit values, one capacity
row, so the sorted greedy solves the cardinality knapsack; Prop. 5: users interact only through
:math:`\sum_k y_k \le 1`). Step 1 is exact in exact arithmetic. Step 2 brackets each :math:`y^\star_k` in
``[lower, upper]`` with ``upper`` verified feasible and ``lower`` verified infeasible (or the analytic bound).
Admitting by ``upper`` gives a feasible plan; admitting by ``lower`` gives a valid upper bound on the optimum.
The result claims ``optimal`` only when the two counts agree (almost always; otherwise the bisection is
refined to machine precision first, and a remaining disagreement is reported as ``feasible`` with the
bound). Floating-point slack: capacities and the band get a relative slack of ``1e-12`` (far below
``check``'s ``1e-6``).
The model is the paper's: continuous shares, PSD-based rate, the recursion of eq. 6, power :math:`\Psi f^3`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeplan.formulations.slide.provisioning import SlidePlan, SlideProvisioning
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status, heuristic_result

#: Relative slack on the suffix capacities (rounding only).
CAPACITY_SLACK = 1e-12
#: Rounding slack of the band in the admission (``check`` allows 1e-6).
ADMISSION_SLACK = 1e-12
#: Default relative width of the share and latency brackets.
DEFAULT_RTOL = 1e-12
#: Iterations that shrink any bracket to adjacent floats (bisection's worst case).
MAX_BISECTION = 1100


def suffix_sum(x: np.ndarray) -> np.ndarray:
    """:math:`\\sum_{l \\ge j} x_l` along the last axis."""
    return np.cumsum(x[..., ::-1], axis=-1)[..., ::-1]


def release_times(pd: dict[str, np.ndarray], share: np.ndarray) -> np.ndarray:
    """``(P, L)`` times at which each layer may start: :math:`a_1 = \\max(T^0, D_1)`, :math:`a_j = D_j`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = pd["cum_bits"] / (np.asarray(share, dtype=float) * pd["full_rate_bps"])[:, None]
    a = np.where(np.isnan(a), np.inf, a)
    a[:, 0] = np.maximum(a[:, 0], pd["setup_s"])
    return a


def latency_for_clocks(release: np.ndarray, copy_s: np.ndarray, work_s: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``(P,)`` end-to-end latency :math:`\\max_j (a_j + \\sum_{l\\ge j} (V_l + \\Gamma_l/z_l))`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        compute = copy_s + np.where(work_s > 0, work_s / z, 0.0)
    return np.max(release + suffix_sum(compute), axis=1)


def min_energy_clocks(release: np.ndarray, copy_s: np.ndarray, work_s: np.ndarray,
                      deadline_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Minimum-energy clock scalings that meet ``deadline_s`` (critical-interval peeling, vectorized).

    Parameters
    ----------
    release, copy_s, work_s
        ``(P, L)`` release times :math:`a_j`, copy times :math:`V_l` and full-clock compute times
        :math:`\Gamma_l` (zero-padded past a model's last layer).
    deadline_s
        ``(P,)`` deadlines.

    Returns
    -------
    z
        ``(P, L)`` clock scalings in (0, 1] (1 for layers without work).
    energy
        ``(P,)`` :math:`\sum_l \Gamma_l z_l^2` (seconds; ``inf`` when infeasible).
    feasible
        ``(P,)`` whether the deadline is reachable at full clock.
    """
    n, L = work_s.shape
    cap = deadline_s[:, None] - release - suffix_sum(copy_s)
    G = suffix_sum(work_s)
    cap = cap + CAPACITY_SLACK * np.abs(deadline_s)[:, None]
    feasible = np.all(G <= cap, axis=1)
    z = np.ones((n, L))
    energy = np.where(feasible, 0.0, np.inf)
    rows = np.flatnonzero(feasible)
    end = np.full(rows.size, L)
    cap_b = np.zeros(rows.size)
    g_b = np.zeros(rows.size)
    d_prev = np.ones(rows.size)
    cols = np.arange(L)
    for _ in range(L):
        if rows.size == 0:
            break
        dc = cap[rows] - cap_b[:, None]
        dg = G[rows] - g_b[:, None]
        valid = cols[None, :] < end[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            dens = np.where(dc > 0, dg / dc, np.where(dg > 0, np.inf, 0.0))
        dens = np.where(valid, np.maximum(dens, 0.0), -np.inf)
        j = np.argmax(dens, axis=1)
        d = np.minimum(dens[np.arange(rows.size), j], d_prev)  # densities fall stage by stage (exactly)
        block = valid & (cols[None, :] >= j[:, None])
        zr = z[rows]
        zr[block] = np.broadcast_to(np.where(d > 0, d, 1.0)[:, None], zr.shape)[block]
        z[rows] = zr
        work_block = dg[np.arange(rows.size), j]
        energy[rows] += work_block * d**2
        cap_b = cap[rows, j]
        g_b = G[rows, j]
        d_prev = d
        keep = j > 0
        rows, end, cap_b, g_b, d_prev = rows[keep], j[keep], cap_b[keep], g_b[keep], d_prev[keep]
    z = np.where(work_s > 0, np.clip(z, 0.0, 1.0), 1.0)
    return z, energy, feasible


def feasible_at(pd: dict[str, np.ndarray], share: np.ndarray) -> np.ndarray:
    """``(P,)`` whether each pair meets its deadline within budget at ``share`` (minimum-energy clocks)."""
    _, energy, ok = min_energy_clocks(release_times(pd, share), pd["copy_s"], pd["work_s"], pd["deadline_s"])
    return ok & (energy <= pd["budget_s"])


def min_latency_clocks(pd: dict[str, np.ndarray], share: Any, *, rtol: float = DEFAULT_RTOL,
                       ) -> tuple[np.ndarray, np.ndarray]:
    r"""P2: the minimum latency of each pair at ``share`` under its energy budget, and its clocks.

    Returns ``(latency, z)``: ``(P,)`` latencies (``inf`` when no clocks fit the budget: :math:`Q' < 0`, or
    :math:`Q' = 0` with work to do, or no share) and ``(P, L)`` the minimum-energy clocks at that latency.
    Bracketing (:func:`illinois`) on the latency ``T`` between the full-clock latency and the latency of the
    uniform clock :math:`\sqrt{Q'/\sum_l\Gamma_l}` (feasible), to relative width ``rtol``.
    """
    share = np.broadcast_to(np.asarray(share, dtype=float), pd["budget_s"].shape)
    rel = release_times(pd, share)
    copy_s, work_s, budget = pd["copy_s"], pd["work_s"], pd["budget_s"]
    t_full = latency_for_clocks(rel, copy_s, work_s, np.ones_like(work_s))
    z, e, ok = min_energy_clocks(rel, copy_s, work_s, t_full)
    total = work_s.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_uniform = np.minimum(1.0, np.sqrt(np.maximum(budget, 0.0) / total))
    z_uniform = np.where(total > 0, z_uniform, 1.0)
    hi = latency_for_clocks(rel, copy_s, work_s, np.broadcast_to(z_uniform[:, None], work_s.shape))
    possible = np.isfinite(t_full) & (budget >= 0) & np.isfinite(hi)
    done = possible & ok & (e <= budget)
    latency = np.where(done, t_full, np.inf)
    rows = np.flatnonzero(possible & ~done)
    if rows.size:
        theta = budget[rows] ** -0.5

        def test(sub: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            r = rows[sub]
            _, em, okm = min_energy_clocks(rel[r], copy_s[r], work_s[r], t)
            with np.errstate(divide="ignore"):
                return okm & (em <= budget[r]), np.where(okm, em, np.inf) ** -0.5 - theta[sub]

        f_hi = test(np.arange(rows.size), hi[rows])[1]
        f_lo = test(np.arange(rows.size), t_full[rows])[1]
        t_ok, _, _ = illinois(test, hi[rows], np.maximum(f_hi, 0.0), t_full[rows], np.minimum(f_lo, -1e-300),
                              rtol=rtol)
        latency[rows] = t_ok
        z[rows] = min_energy_clocks(rel[rows], copy_s[rows], work_s[rows], t_ok)[0]
    return latency, z


def illinois(test: Any, a: np.ndarray, fa: np.ndarray, b: np.ndarray, fb: np.ndarray, *, rtol: float,
             deadline: float | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    r"""Shrink brackets ``[a, b]`` around the roots of monotone functions (vectorized over rows).

    ``test(rows, x) -> (good, f)`` evaluates the rows at ``x``: ``good`` decides the side (``a`` is the good
    end, e.g. feasible), ``f`` is the function whose sign change the secant steps follow. The Illinois variant
    of regula falsi (halve the kept end's value after two steps on the same side) converges superlinearly and
    always keeps a valid bracket; a step outside the bracket falls back to bisection. Stops at relative width
    ``rtol`` (``0``: adjacent floats) or at the wall-clock ``deadline``. Returns ``(a, b, iterations)``.
    """
    a, b, fa, fb = a.copy(), b.copy(), fa.astype(float), fb.astype(float)
    last = np.zeros(a.size, dtype=np.int8)
    active = np.arange(a.size)
    iterations = 0
    while active.size and iterations < MAX_BISECTION:
        if deadline is not None and time.perf_counter() > deadline:
            break
        iterations += 1
        aa, bb, ffa, ffb = a[active], b[active], fa[active], fb[active]
        lo, hi = np.minimum(aa, bb), np.maximum(aa, bb)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            c = bb - ffb * (bb - aa) / (ffb - ffa)
        mid = 0.5 * (aa + bb)
        c = np.where(np.isfinite(c), c, mid)
        step = 0.4 * rtol * np.maximum(np.abs(aa), np.abs(bb))  # never closer than this to an end (Brent)
        toward = np.sign(bb - aa)
        c = np.where((c - aa) * toward < step, aa + toward * step, c)
        c = np.where((bb - c) * toward < step, bb - toward * step, c)
        c = np.where((c > lo) & (c < hi), c, mid)
        stalled = (c <= lo) | (c >= hi)
        good, fc = test(active, c)
        fc = np.where(good, np.maximum(np.nan_to_num(fc, posinf=1e300), 0.0), np.minimum(np.nan_to_num(fc), -1e-300))
        a[active] = np.where(good, c, aa)
        fa[active] = np.where(good, fc, np.where(last[active] == -1, 0.5 * ffa, ffa))
        b[active] = np.where(good, bb, c)
        fb[active] = np.where(good, np.where(last[active] == 1, 0.5 * ffb, ffb), fc)
        last[active] = np.where(good, 1, -1)
        width = np.abs(b[active] - a[active])
        done = stalled | (width <= rtol * np.maximum(np.abs(a[active]), np.abs(b[active])))
        active = active[~done]
    return a, b, iterations


def share_for_fixed_compute(pd: dict[str, np.ndarray], compute_s: np.ndarray) -> np.ndarray:
    r"""``(P,)`` the smallest share meeting the deadline with fixed per-layer compute times :math:`C_l`.

    :math:`y = \max_j S_{\le j} / \big(B R\,(\bar T - \sum_{l\ge j} C_l)\big)`, ``inf`` when some suffix alone
    misses the deadline or :math:`T^0 + \sum_l C_l > \bar T` (closed form of the recursion).
    """
    slack = pd["deadline_s"][:, None] - suffix_sum(compute_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(slack > 0, pd["cum_bits"] / slack,
                        np.where((slack == 0) & (pd["cum_bits"] == 0), 0.0, np.inf))
    y = need.max(axis=1) / pd["full_rate_bps"]
    return np.where(pd["setup_s"] + compute_s.sum(axis=1) <= pd["deadline_s"], y, np.inf)


def min_shares(pd: dict[str, np.ndarray], *, rtol: float = DEFAULT_RTOL, deadline: float | None = None,
               ) -> tuple[np.ndarray, np.ndarray, int]:
    r"""Alg. 1 for every pair: a bracket ``(lower, upper)`` of the minimum feasible share, and the iterations.

    ``upper`` is feasible (deadline and budget met with the minimum-energy clocks), ``lower`` is infeasible or
    the full-clock bound; both are ``inf`` for pairs infeasible at share 1. The bracketing stops at relative
    width ``rtol`` (``0``: adjacent floats) or at the wall-clock ``deadline`` (``time.perf_counter()`` value).
    """
    lower = share_for_fixed_compute(pd, pd["copy_s"] + pd["work_s"])
    # a deadline met exactly at the whole band comes back a few ulps above share 1: it is share 1
    lower = np.where((lower > 1.0) & (lower <= 1.0 + 1e-9), 1.0, lower)
    candidates = lower <= 1.0
    ok_one = np.zeros(lower.shape, dtype=bool)
    idx = np.flatnonzero(candidates)
    ok_one[idx] = feasible_at(_take(pd, idx), np.ones(idx.size))
    candidates &= ok_one
    lower = np.where(candidates, lower, np.inf)
    upper = np.where(candidates, 1.0, np.inf)
    idx = np.flatnonzero(candidates)
    at_lower = feasible_at(_take(pd, idx), lower[idx])
    upper[idx[at_lower]] = lower[idx[at_lower]]
    rows = idx[~at_lower]
    iterations = 0
    if rows.size:
        sub = _take(pd, rows)
        theta = sub["budget_s"] ** -0.5

        def test(part: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            d = _take(sub, part)
            _, e, ok = min_energy_clocks(release_times(d, 1.0 / p), d["copy_s"], d["work_s"], d["deadline_s"])
            with np.errstate(divide="ignore"):
                return ok & (e <= d["budget_s"]), np.where(ok, e, np.inf) ** -0.5 - theta[part]

        # in p = 1/y, the inverse square root of the minimum energy is affine within a block structure
        everything = np.arange(rows.size)
        f_good = np.maximum(test(everything, 1.0 / upper[rows])[1], 0.0)
        f_bad = np.minimum(test(everything, 1.0 / lower[rows])[1], -1e-300)
        p_good, p_bad, iterations = illinois(test, 1.0 / upper[rows], f_good, 1.0 / lower[rows], f_bad,
                                             rtol=rtol, deadline=deadline)
        upper[rows], lower[rows] = 1.0 / p_good, 1.0 / p_bad
    return lower, upper, iterations


def _take(pd: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {key: value[rows] for key, value in pd.items()}


def admissible_pairs(problem: SlideProvisioning) -> tuple[np.ndarray, np.ndarray]:
    """``(users, models)`` of every admissible pair, user-major."""
    users, models = np.nonzero(problem.admissible)
    return users, models


def pair_min_shares(problem: SlideProvisioning, *, rtol: float = DEFAULT_RTOL, deadline: float | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """``(K, I)`` brackets ``(lower, upper)`` of every pair's minimum share (``inf``: inadmissible or infeasible)."""
    users, models = admissible_pairs(problem)
    lower = np.full((problem.n_users, problem.n_models), np.inf)
    upper = lower.copy()
    lo, hi, it = min_shares(problem.pair_data(users, models), rtol=rtol, deadline=deadline)
    lower[users, models], upper[users, models] = lo, hi
    return lower, upper, it


#: The smallest share of the band the floating-point cross-checks (``slide-scip``, ``slide-cvxpy``) resolve.
CROSS_CHECK_MIN_SHARE = 1e-4


def cross_check_refusal(problem: SlideProvisioning) -> str | None:
    r"""Why a tolerance-based cross-check cannot decide this instance, else ``None``.

    Their models carry :math:`q = 1/y` (SCIP's bilinear :math:`yq \ge 1`, cvxpy's :math:`\max p`): a pair that
    could be served with a share below :data:`CROSS_CHECK_MIN_SHARE` puts :math:`q` beyond 1e4, where SCIP at
    its tolerances proved wrong optima (1 user served where 3 could be) on degenerate rounds. ``slide`` decides
    such instances exactly.
    """
    users, models = admissible_pairs(problem)
    if not users.size:
        return None
    pd = problem.pair_data(users, models)
    lower = share_for_fixed_compute(pd, pd["copy_s"] + pd["work_s"])
    small = lower[(lower > 0) & (lower < CROSS_CHECK_MIN_SHARE)]
    if small.size:
        return (f"a pair could be served with a share of {float(small.min()):.3g} of the band, below the "
                f"{CROSS_CHECK_MIN_SHARE:g} that this floating-point cross-check resolves; use 'slide' (exact)")
    return None


def admit(share: np.ndarray) -> np.ndarray:
    """Alg. 2: ``(K,)`` bool, the users admitted in ascending order of ``share`` while the shares sum to <= 1.

    The band is ``1 + ADMISSION_SLACK`` so that shares which add up to exactly 1 in real arithmetic (e.g. two
    users needing 0.5 each) are not split by one unit of rounding.
    """
    share = np.asarray(share, dtype=float)
    order = np.argsort(share, kind="stable")
    n = int(np.searchsorted(np.cumsum(share[order]), 1.0 + ADMISSION_SLACK, side="right"))
    mask = np.zeros(share.size, dtype=bool)
    mask[order[:n]] = True
    return mask


def choose_models(problem: SlideProvisioning, share_table: np.ndarray, rtol: float = DEFAULT_RTOL,
                  ) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Prop. 4: each user's smallest share over models and, among models feasible there, the fastest.

    Returns ``(model, share, clocks)``: ``(K,)`` model (``-1``: infeasible), ``(K,)`` share (``inf``), and the
    P2 clocks of each user with a model.
    """
    k = problem.n_users
    best = share_table.min(axis=1)
    users, models = np.nonzero(np.isfinite(share_table) & (share_table <= best[:, None]))
    model = np.full(k, -1)
    clocks: dict[int, np.ndarray] = {}
    if users.size == 0:
        return model, best, clocks
    pd = problem.pair_data(users, models)
    latency, z = min_latency_clocks(pd, best[users], rtol=rtol)
    order = np.lexsort((latency, users))
    for row in order:
        u = int(users[row])
        if model[u] < 0 and np.isfinite(latency[row]) and latency[row] <= problem.deadline_s[u] * (1 + 1e-9):
            model[u] = models[row]
            clocks[u] = z[row, : pd["n_layers"][row]].copy()
    return model, np.where(model >= 0, best, np.inf), clocks


def build_plan(problem: SlideProvisioning, model: np.ndarray, share: np.ndarray,
               clocks: dict[int, np.ndarray], admitted: np.ndarray) -> SlidePlan:
    """A plan serving the ``admitted`` users with ``model``, ``share`` and ``clocks`` (others get nothing)."""
    k = problem.n_users
    served = admitted & (model >= 0)
    return SlidePlan(np.where(served, model, -1), np.where(served, share, 0.0),
                     tuple(clocks[u] if served[u] else np.zeros(0) for u in range(k)))


def plan_from_shares(problem: SlideProvisioning, table: np.ndarray,
                     clocks_for: Any) -> tuple[SlidePlan, np.ndarray]:
    """Baselines' common tail: each user's cheapest model in ``table`` ``(K, I)``, then Alg. 2's admission.

    ``clocks_for(users, models, shares)`` returns the clock arrays of the admitted pairs. Returns the plan and
    the ``(K,)`` shares the users asked for (``inf``: infeasible).
    """
    model = np.where(np.isfinite(table).any(axis=1), np.argmin(table, axis=1), -1)
    share = np.where(model >= 0, table[np.arange(problem.n_users), np.maximum(model, 0)], np.inf)
    admitted = admit(share)
    users = np.flatnonzero(admitted)
    clocks = dict(zip(users.tolist(), clocks_for(users, model[users], share[users]), strict=True))
    return build_plan(problem, model, share, clocks, admitted), share


def baseline_result(problem: SlideProvisioning, plan: SlidePlan, share: np.ndarray, method: str, t0: float,
                    **stats: Any) -> Result:
    """The Result of a SLIDE baseline (:func:`~edgeplan.solvers.result.heuristic_result`): its plan, no bound."""
    infeasible = int(np.sum(~np.isfinite(share)))
    return heuristic_result(problem, plan, method, t0, message=f"served {int(plan.served.sum())} of "
                            f"{problem.n_users} users; {infeasible} infeasible under this baseline",
                            min_share=share, **stats)


def count_fitting(share: np.ndarray) -> int:
    """How many users Alg. 2 admits with these shares."""
    return int(admit(share).sum())


@register("slide", problem=SlideProvisioning, kind="exact", priority=10, options={"rtol": (float, DEFAULT_RTOL)})
def solve_slide(problem: SlideProvisioning, ctx: SolveContext) -> Result:
    """SLIDE (Algs. 1-2): exact compute allocation, minimum shares by bisection, sorted admission.

    Options: ``rtol`` (relative width of the share brackets, default 1e-12; 0 means adjacent floats).
    """
    rtol = ctx.options["rtol"]
    t0 = time.perf_counter()
    deadline = None if ctx.time_limit is None else ctx.deadline.start + ctx.time_limit
    lower, upper, iterations = pair_min_shares(problem, rtol=rtol, deadline=deadline)
    timed_out = deadline is not None and time.perf_counter() > deadline
    refined = False
    if count_fitting(lower.min(axis=1)) != count_fitting(upper.min(axis=1)) and not timed_out and rtol > 0:
        lower, upper, more = pair_min_shares(problem, rtol=0.0, deadline=deadline)
        iterations += more
        refined = True
    model, share, clocks = choose_models(problem, upper)
    admitted = admit(share)
    plan = build_plan(problem, model, share, clocks, admitted)
    fun = float(plan.served.sum())
    bound = float(count_fitting(lower.min(axis=1)))
    proven = bound == fun
    status = Status.OPTIMAL if proven else Status.FEASIBLE
    limit = Limit.TIME if (timed_out and not proven) else None
    infeasible = int(np.sum(~np.isfinite(upper).any(axis=1)))
    message = (f"served {int(fun)} of {problem.n_users} users; {infeasible} infeasible at any share"
               + ("" if proven else f"; bracket bound {int(bound)}"))
    stats = {"rtol": rtol, "bisection_iterations": iterations, "refined_to_machine_precision": refined,
             "infeasible_users": infeasible, "bandwidth_used": float(plan.bandwidth_share.sum()),
             "min_share": share}
    return Result(plan=plan, fun=fun, status=status, bound=bound, limit=limit, message=message, method="slide",
                  solve_time=time.perf_counter() - t0, stats=stats, sense="max")


__all__ = [
    "admissible_pairs",
    "admit",
    "baseline_result",
    "build_plan",
    "choose_models",
    "count_fitting",
    "feasible_at",
    "illinois",
    "latency_for_clocks",
    "min_energy_clocks",
    "min_latency_clocks",
    "min_shares",
    "pair_min_shares",
    "plan_from_shares",
    "release_times",
    "share_for_fixed_compute",
    "solve_slide",
    "suffix_sum",
]
