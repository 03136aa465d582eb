r"""Kernels of the FL round solvers: per-BS min-max bandwidth, schedules from assignments, bounds.

Min-max latency of one BS (the note's C.3)
------------------------------------------
For users :math:`U` on a BS of bandwidth :math:`B`, user :math:`s` needs :math:`\check b_s(T)` to finish by
:math:`\min(T, w_s)`; the smallest reachable round time is

.. math:: T(U) = \min\{T : g(T) \le 0\},\qquad g(T) = \sum_{s\in U}\check b_s(T) - B .

Each :math:`\check b_s` is convex and non-increasing in :math:`T` (the inverse of the concave rate composed
with the convex :math:`Z/(T - t^{\rm cmp})`; constant past :math:`w_s`), so :math:`g` is convex and
decreasing. :func:`equalize` brackets the root between :math:`T_0 = \max_s t_s(B)` (each user alone with
the whole band: :math:`g(T_0) \ge 0`) and the equal split of the band (or doubling), then shrinks both ends at
once: Newton's step from the left end never passes the root and the chord's zero never falls short of it (both
by convexity), so the left end converges quadratically and the right end superlinearly. It stops at relative
width ``rtol`` and returns the feasible (right) end. Groups are vectorized (one row per candidate group, as
DAGSA scores every candidate user at once). :math:`T(U) = \infty` when even :math:`T \to \infty` does not fit,
i.e. :math:`\sum_s \check b_s(w_s) > B`.

With resource blocks the latencies :math:`t_{s,k}` for :math:`k` blocks are a table, :math:`T(U)` is one of its
entries, and :func:`equalize_rb` finds it by binary search over the sorted entries of each group (exact).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from edgeplan.formulations.fl.common import min_bandwidth_hz, rate_bps, rate_slope
from edgeplan.formulations.fl.fl_round import FLRound, FLSchedule

#: Default relative width of the min-max bisection.
EQUALIZE_RTOL = 1e-12
#: Iteration cap of the Newton/probe loop (it needs about 10).
MAX_EQUALIZE_ITER = 200


def _need(T: np.ndarray, tc: np.ndarray, a: np.ndarray, w: np.ndarray, Z: float, mask: np.ndarray) -> np.ndarray:
    deadline = np.minimum(T[:, None], w)
    with np.errstate(invalid="ignore", divide="ignore"):
        upload = deadline - tc
        rate = np.where(upload > 0, Z / np.where(upload > 0, upload, 1.0), np.inf)
    rate = np.where(np.isinf(deadline) & (upload > 0), 0.0, rate)
    return np.where(mask, min_bandwidth_hz(rate, a), 0.0)


def _need_slope(T: np.ndarray, b: np.ndarray, tc: np.ndarray, a: np.ndarray, w: np.ndarray, Z: float,
                mask: np.ndarray) -> np.ndarray:
    """:math:`g'(T) = \\sum_s d\\check b_s/dT` (0 for users past their window)."""
    upload = T[:, None] - tc
    with np.errstate(invalid="ignore", divide="ignore"):
        d = -Z / upload**2 / rate_slope(b, a)
    d = np.where(mask & (T[:, None] < w) & np.isfinite(d), d, 0.0)
    return d.sum(axis=1)


def equalize(tc: Any, a: Any, w: Any, bandwidth: Any, Z: float, mask: Any = None, *, lower: Any = None,
             rtol: float = EQUALIZE_RTOL) -> tuple[np.ndarray, np.ndarray]:
    """Min-max round time of each group of users sharing one BS (continuous bandwidth).

    Parameters
    ----------
    tc, a, w
        ``(G, S)`` compute times, :math:`a = pg/N_0` and windows of the members (padding marked by ``mask``).
    bandwidth
        ``(G,)`` the BS bandwidth of each group.
    Z
        Payload bits.
    mask
        ``(G, S)`` bool, the real members (default: all).
    lower
        ``(G,)`` known lower bounds on the answers (a warm start; optional).

    Returns
    -------
    T
        ``(G,)`` the smallest feasible round time (to ``rtol``, from above; ``inf`` when infeasible; 0 for an
        empty group).
    b
        ``(G, S)`` bandwidths meeting it, scaled up to use the whole band (0 for padding).
    """
    tc, a, w = (np.atleast_2d(np.asarray(x, dtype=float)) for x in (tc, a, w))
    B = np.atleast_1d(np.asarray(bandwidth, dtype=float))
    mask = np.ones(tc.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    G = tc.shape[0]
    empty = ~mask.any(axis=1)
    with np.errstate(divide="ignore"):
        alone = tc + Z / rate_bps(B[:, None], a)
    alone = np.where(alone <= w, alone, np.inf)
    lo = np.max(np.where(mask, alone, -np.inf), axis=1)
    if lower is not None:
        lo = np.maximum(lo, np.asarray(lower, dtype=float))
    at_inf = _need(np.full(G, np.inf), tc, a, w, Z, mask).sum(axis=1)
    ok = ~empty & np.isfinite(lo) & (at_inf <= B)
    T = np.where(empty, 0.0, np.inf)
    b = np.zeros(tc.shape)
    rows = np.flatnonzero(ok)
    if rows.size:
        tc_, a_, w_, B_, m_ = tc[rows], a[rows], w[rows], B[rows], mask[rows]
        lo_ = lo[rows]
        need = _need(lo_, tc_, a_, w_, Z, m_)
        g_lo = need.sum(axis=1) - B_
        s_lo = _need_slope(lo_, need, tc_, a_, w_, Z, m_)
        done = g_lo <= 0
        # a first upper end: an equal split of the band (feasible when it meets every window), else doubling
        size = m_.sum(axis=1)
        with np.errstate(divide="ignore"):
            split = tc_ + Z / rate_bps((B_ / np.maximum(size, 1))[:, None], a_)
        split = np.where(m_, split, -np.inf)
        hi_ = np.where(done, lo_, np.where(np.all((split <= w_) | ~m_, axis=1), split.max(axis=1), np.inf))
        g_hi = np.where(done, g_lo, np.nan)
        base = np.max(np.where(m_, tc_, 0.0), axis=1)
        span = np.maximum(lo_ - base, 1e-12 * lo_)
        for _ in range(MAX_EQUALIZE_ITER):
            todo = ~done & ~(g_hi <= 0)
            if not todo.any():
                break
            probe = np.where(todo, np.where(np.isfinite(hi_), hi_, base + span), hi_)
            g = _need(probe, tc_, a_, w_, Z, m_).sum(axis=1) - B_
            fits = todo & (g <= 0)
            hi_ = np.where(fits, probe, np.where(todo, np.inf, hi_))
            g_hi = np.where(fits, g, g_hi)
            lo_up = todo & ~fits & (probe > lo_)
            if lo_up.any():  # a failed probe is a better lower end (its need and slope are recomputed below)
                lo_ = np.where(lo_up, probe, lo_)
                need = _need(lo_, tc_, a_, w_, Z, m_)
                g_lo = need.sum(axis=1) - B_
                s_lo = _need_slope(lo_, need, tc_, a_, w_, Z, m_)
            span = np.where(todo, 2.0 * span, span)
        # Newton from the left (never passes the root: g is convex and decreasing) and the chord to the right
        # end (its zero never falls short of the root, for the same reason): both ends close in at once.
        for _ in range(MAX_EQUALIZE_ITER):
            active = ~done & (hi_ - lo_ > rtol * hi_)
            if not active.any():
                break
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = np.where(s_lo < 0, lo_ - g_lo / s_lo, np.nan)
                chord = lo_ + g_lo * (hi_ - lo_) / (g_lo - g_hi)
            mid = 0.5 * (lo_ + hi_)
            newton = np.where((newton > lo_) & (newton < hi_), newton, mid)
            chord = np.where((chord > newton) & (chord < hi_), chord, np.maximum(mid, newton))
            for point in (newton, chord):
                need_p = _need(point, tc_, a_, w_, Z, m_)
                g = need_p.sum(axis=1) - B_
                upd = active & (point > lo_) & (point < hi_)
                up_hi = upd & (g <= 0)
                up_lo = upd & (g > 0)
                hi_ = np.where(up_hi, point, hi_)
                g_hi = np.where(up_hi, g, g_hi)
                if up_lo.any():
                    lo_ = np.where(up_lo, point, lo_)
                    g_lo = np.where(up_lo, g, g_lo)
                    s_lo = np.where(up_lo, _need_slope(point, need_p, tc_, a_, w_, Z, m_), s_lo)
        T[rows] = hi_
        need = _need(hi_, tc_, a_, w_, Z, m_)
        total = need.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(total > 0, B_ / total, 1.0)
        b[rows] = need * np.maximum(scale, 1.0)[:, None]
    return T, b


def equalize_rb(lat: Any, capacity: Any, mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Min-max round time of groups on one BS with whole resource blocks (exact).

    ``lat`` is ``(G, S, R)``: latency of member ``s`` with ``k + 1`` blocks (non-increasing in ``k``; ``inf`` where
    not allowed); ``capacity`` ``(G,)`` blocks. Returns ``T`` ``(G,)`` (an entry of the table; ``inf`` when
    infeasible; 0 for an empty group) and ``k`` ``(G, S)`` the fewest blocks meeting it (0 for padding).
    """
    lat = np.asarray(lat, dtype=float)
    G, S, R = lat.shape
    cap = np.asarray(capacity, dtype=float)
    mask = np.ones((G, S), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    lat = np.where(mask[..., None], lat, -np.inf)  # padding: always met with 0 blocks (fixed below)

    def blocks(T: np.ndarray) -> np.ndarray:
        ok = lat <= T[:, None, None]
        k = np.where(ok.any(axis=2), np.argmax(ok, axis=2) + 1.0, np.inf)
        return np.where(mask, k, 0.0)

    cand = np.sort(np.where(np.isfinite(lat), lat, np.inf).reshape(G, S * R), axis=1)
    n_fin = np.isfinite(cand).sum(axis=1)
    lo = np.full(G, -1)                       # index known infeasible (or -1)
    hi = n_fin - 1                            # index of the largest finite entry
    top = cand[np.arange(G), np.maximum(hi, 0)]
    feasible = (n_fin > 0) & (blocks(np.where(n_fin > 0, top, np.inf)).sum(axis=1) <= cap)
    while True:
        active = feasible & (hi - lo > 1)
        if not active.any():
            break
        mid = (lo + hi) // 2
        T_mid = cand[np.arange(G), np.maximum(mid, 0)]
        fits = blocks(T_mid).sum(axis=1) <= cap
        hi = np.where(active & fits, mid, hi)
        lo = np.where(active & ~fits, mid, lo)
    empty = ~mask.any(axis=1)
    T = np.where(feasible, cand[np.arange(G), np.maximum(hi, 0)], np.inf)
    T = np.where(empty, 0.0, T)
    k = np.where(np.isfinite(T)[:, None], blocks(T), 0.0)
    return T, np.where(np.isfinite(k), k, 0.0)


# -- whole schedules --------------------------------------------------------------------------------------------------
def group_latency(problem: FLRound, bs: int, members: np.ndarray, *, lower: Any = None,
                  rtol: float = EQUALIZE_RTOL) -> tuple[np.ndarray, np.ndarray]:
    """Min-max time of groups ``members`` ``(G, S)`` (user indices, ``-1`` padding) on BS ``bs``.

    Returns ``(T, alloc)``: ``(G,)`` times and ``(G, S)`` bandwidths in hertz. ``lower`` (continuous bandwidth
    only) are known lower bounds on the times.
    """
    members = np.atleast_2d(np.asarray(members, dtype=np.int64))
    mask = members >= 0
    u = np.where(mask, members, 0)
    if problem.resource_block_hz is None:
        return equalize(problem.compute_s[u], problem.a_hz[u, bs], problem.window_s[u, bs],
                        np.full(members.shape[0], problem.bs_bandwidth_hz[bs]), problem.payload_bits, mask,
                        lower=lower, rtol=rtol)
    T, k = equalize_rb(problem.rb_latency_s()[u, bs], np.full(members.shape[0], problem.n_blocks[bs]), mask)
    return T, k * problem.resource_block_hz


def schedule_from_assignment(problem: FLRound, bs_of: Any) -> tuple[FLSchedule | None, float]:
    """The best bandwidths for a fixed assignment (each BS equalized); ``(None, inf)`` when a BS cannot fit.

    Continuous bandwidth is scaled up to use each whole band; leftover resource blocks go, one at a time, to
    the slowest user of the BS (neither raises any latency).
    """
    bs_of = np.asarray(bs_of, dtype=np.int64)
    n = problem.n_users
    band = np.zeros(n)
    T = 0.0
    for m in np.unique(bs_of[bs_of >= 0]):
        users = np.flatnonzero(bs_of == m)
        Tm, alloc = group_latency(problem, int(m), users[None, :])
        if not np.isfinite(Tm[0]):
            return None, np.inf
        b = alloc[0]
        if problem.resource_block_hz is not None:
            rb = problem.resource_block_hz
            k = np.round(b / rb)
            spare = int(problem.n_blocks[m] - k.sum())
            lat_tab = problem.rb_latency_s()[users, m]
            for _ in range(max(spare, 0)):
                cur = lat_tab[np.arange(users.size), (k - 1).astype(int)]
                nxt = lat_tab[np.arange(users.size), np.minimum(k, lat_tab.shape[1] - 1).astype(int)]
                gain = np.where(k < lat_tab.shape[1], cur - nxt, -np.inf)
                j = int(np.argmax(np.where(np.isfinite(gain), cur, -np.inf)))
                if not np.isfinite(gain[j]) or gain[j] <= 0:
                    break
                k[j] += 1
            b = k * rb
        band[users] = b
        T = max(T, float(Tm[0]))
    plan = FLSchedule(bs_of, band)
    return plan, problem.objective(plan)


def reachable(problem: FLRound) -> np.ndarray:
    """``(N, M)`` pairs where the user finishes within its window holding the whole band."""
    return np.isfinite(problem.alone_latency_s())


def count_infeasibility(problem: Any, pairs: np.ndarray, reach: str) -> str | None:
    """Why K users cannot be selected when only the ``(N, M)`` ``pairs`` can work (too few users, or too few
    channels on their base stations), else ``None``; ``reach`` says what a working pair can do."""
    k = problem.n_select
    ok = pairs & (problem.bs_channels[None, :] > 0)
    users = int(ok.any(axis=1).sum())
    if users < k:
        return f"only {users} of {problem.n_users} users can {reach}; `n_select` = {k}"
    chans = int(problem.bs_channels[ok.any(axis=0)].sum())
    if chans < k:
        return f"the reachable base stations have {chans} channels in all; `n_select` = {k}"
    return None


def quick_infeasibility(problem: FLRound) -> str | None:
    """A proven reason why no schedule exists (too few reachable users or channels), else ``None``."""
    return count_infeasibility(problem, reachable(problem), "reach a base station within their coverage windows "
                               "(even holding a whole band)")


def latency_lower_bound(problem: FLRound) -> float:
    """The K-th smallest over users of :math:`\\min_m t_n(B_m)` (each selected user at best holds a whole band)."""
    k = problem.n_select
    if k == 0:
        return 0.0
    best = np.sort(problem.alone_latency_s().min(axis=1))
    return float(best[k - 1])


def highs_options(gap: float) -> dict[str, Any]:
    """``solve(milp, "highs", options=...)`` for our MILPs: relative gap ``gap`` and no absolute gap (HiGHS's
    default ``mip_abs_gap`` of 1e-6 is coarse for objectives of order 1e-4). Feasibility tolerances stay at
    HiGHS' defaults: tightening them to 1e-9 returned wrong optima; the models measure their columns in units
    that keep the rows near 1 instead, and every plan is re-evaluated by the problem."""
    return {"mip_rel_gap": gap, "highs_options": {"mip_abs_gap": 0.0}}


def static_view(problem: FLRound) -> FLRound:
    """The same round seen by a scheduler that ignores mobility: every covered pair's window is ``inf``."""
    return replace(problem, window_s=np.where(problem.window_s > 0, np.inf, 0.0))


__all__ = ["equalize", "equalize_rb", "group_latency", "highs_options", "latency_lower_bound", "quick_infeasibility",
           "reachable", "schedule_from_assignment", "static_view"]
