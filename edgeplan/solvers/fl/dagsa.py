r"""DAGSA, the delay-aware greedy search, and its mobility-blind variant ``dagsa-static`` (one module: they share
all code but the score).

Fan, Chen, Li, Deng, Han, Ding, "Mobility-Aware Joint User Scheduling and Resource Allocation for Low-Latency
Federated Learning", arXiv 2307.09263. The paper's pseudocode is not public; this is the reconstruction of
``docs/models/fl.md``:

.. code-block:: text

    U_m <- {} and T_m <- 0 for every BS m
    repeat K times:
        for every unselected user n and BS m with a free channel that n reaches in its window:
            T'_m(n) <- T(U_m + {n})            # min-max bandwidth of BS m (fl_kernels.equalize), windows kept
            key(n, m) <- (max(T'_m(n), max_{m' != m} T_m'),  T'_m(n),  -D_n,  -g_nm)
        add the pair with the smallest key (lexicographic); T_m <- T'_m(n)
    bandwidth: each BS's equalized allocation, scaled up to its whole band

Choices where the note leaves room: the second key (the BS's own time) breaks the many ties of the first
(adding to a BS that is not the bottleneck does not change the round time), then larger :math:`D_n`, then the
stronger channel (the note's tie-break).

Lazy scores: the choices are those of re-scoring every candidate at every step, but most scores are only
bounded. Adding a user to :math:`U_m` only raises :math:`T(U_m + \{n\})`, and the key is non-decreasing in the
score, so a lower bound that is already worse than the best exact key rules a pair out. A score
:math:`T(U + \{n\})` is the root of the convex decreasing :math:`g(T) = \sum_{s\in U + \{n\}} \check b_s(T) - B`
(:mod:`~edgeplan.solvers.fl.kernels`); Newton's method from a point left of the root never passes it, so its
iterates are lower bounds wherever they stop. When BS :math:`m` grows:

* candidates that no longer fit are dropped: :math:`\sum_{s\in U_m + \{n\}} \check b_s(w_s) > B_m` (the band
  cannot carry the group even as :math:`T \to \infty`);
* every other candidate's score becomes a lower bound: the members' need is replaced by its tangent at
  :math:`T(U_m)`, which lies below it (convexity), and two Newton steps on that one-user equation, from
  :math:`\max(T(U_m), t_n(B_m))`, bound all candidates at once (:math:`O(N)` work, no member loops).

Each step takes the best pair under the current scores; while that pair's score is a bound, the :data:`BATCH`
candidates of its BS with the smallest bounds (and all ties at the cut) are scored exactly at once: Newton's
method on :math:`g` from their bounds, each candidate stopping on its own at a step below ``1e-12`` of
:math:`T`, so equal candidates get equal scores and ties go to the tie-break. The final bandwidths are solved to
1e-12. With resource blocks the min-max problem is solved exactly over whole blocks
(:func:`~edgeplan.solvers.fl.kernels.equalize_rb`), without cheap bounds: a BS's stale candidates are
re-scored together when needed. Cost: per step one bound pass over the candidates of the BS that grew and
about one batch of :data:`BATCH` exact scores, :math:`O(N + \text{BATCH}\,|U_m|)` work in a few vectorized calls.

``dagsa-static`` scores candidates as if nobody moved (every covered pair's window is infinite,
:func:`~edgeplan.solvers.fl.kernels.static_view`) but accepts a pair and sets bandwidths with the real
windows, so its plans stay feasible: it isolates what mobility awareness buys (users about to leave a cell look
fast to it, and then need more bandwidth to finish before they leave).

Both report the cheap bound :func:`~edgeplan.solvers.fl.kernels.latency_lower_bound` and claim optimality
only when the plan meets it. Too few reachable users or channels give ``infeasible`` (proven); a greedy dead
end with a feasible problem gives ``no_solution``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeplan.formulations.fl.common import min_bandwidth_hz, rate_slope
from edgeplan.formulations.fl.fl_round import FLRound, FLSchedule
from edgeplan.solvers.fl.kernels import (
    EQUALIZE_RTOL,
    MAX_EQUALIZE_ITER,
    group_latency,
    latency_lower_bound,
    quick_infeasibility,
    schedule_from_assignment,
    static_view,
)
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result

#: Fewest stale candidates re-scored at once (a batch costs about as much as one candidate).
BATCH = 16
#: Newton steps of the lower bounds (they are valid after any number; two make them tight enough).
LOWER_STEPS = 2


def _window_need(problem: FLRound) -> np.ndarray:
    r"""``(N, M)`` :math:`\check b_{nm}(w_{nm})`, the least bandwidth finishing by the window (0 for an infinite
    window; ``inf`` where the window is too short)."""
    upload = problem.window_s - problem.compute_s[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(upload > 0, problem.payload_bits / np.where(upload > 0, upload, 1.0), np.inf)
    return min_bandwidth_hz(rate, problem.a_hz)


def _need(T: np.ndarray, tc: np.ndarray, a: np.ndarray, w: np.ndarray, Z: float) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\check b_s(T)` and :math:`-d\check b_s/dT` (0 past the window) of users with compute times ``tc``,
    ``a`` and windows ``w`` (broadcast against ``T``, which exceeds each user's time alone)."""
    upload = np.minimum(T, w) - tc
    need = min_bandwidth_hz(Z / upload, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        descent = np.where(T < w, Z / upload**2 / rate_slope(need, a), 0.0)
    return need, descent


def _newton(T: np.ndarray, excess: Any, rtol: float, max_iter: int = MAX_EQUALIZE_ITER) -> np.ndarray:
    """Newton's method from the left on convex decreasing functions, one per entry of ``T`` (updated in place):
    ``excess(rows, T[rows])`` gives their values and descents (minus slopes); each entry stops on its own at a step
    below ``rtol * T``. The iterates never pass the roots, so they are lower bounds wherever they stop."""
    todo = np.arange(T.size)
    for _ in range(max_iter):
        t = T[todo]
        value, descent = excess(todo, t)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(descent > 0, value / descent, 0.0)
        T[todo] = np.where(step > 0, t + step, t)
        todo = todo[step > rtol * t]
        if todo.size == 0:
            break
    return T


def _scores(problem: FLRound, bs: int, members: np.ndarray, cand: np.ndarray, lower: Any) -> np.ndarray:
    r"""``T(U + {n})`` on BS ``bs`` (continuous bandwidth) for ``U`` = ``members`` and every ``n`` in ``cand``, each
    pair known to fit, to relative accuracy ``EQUALIZE_RTOL``; ``lower`` are lower bounds on them."""
    users = np.concatenate([np.broadcast_to(members, (cand.size, members.size)), cand[:, None]], axis=1)
    tc, a, w = problem.compute_s[users], problem.a_hz[users, bs], problem.window_s[users, bs]
    B, Z = problem.bs_bandwidth_hz[bs], problem.payload_bits

    def excess(rows: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        need, descent = _need(t[:, None], tc[rows], a[rows], w[rows], Z)
        return need.sum(axis=1) - B, descent.sum(axis=1)

    T = np.maximum(lower, problem.alone_latency_s()[users, bs].max(axis=1))
    return _newton(T, excess, EQUALIZE_RTOL)


def _lower_bounds(problem: FLRound, bs: int, members: np.ndarray, cand: np.ndarray, t_group: float) -> np.ndarray:
    r"""Lower bounds on ``T(U + {n})`` for every ``n`` in ``cand`` (``members`` nonempty, ``t_group`` at most
    :math:`T(U)`): the members' need is replaced by its tangent at ``t_group``, which lies below it (convexity)."""
    Z = problem.payload_bits
    need, descent = _need(np.asarray(t_group), problem.compute_s[members], problem.a_hz[members, bs],
                          problem.window_s[members, bs], Z)
    excess0, slope = need.sum() - problem.bs_bandwidth_hz[bs], descent.sum()
    tc, a, w = problem.compute_s[cand], problem.a_hz[cand, bs], problem.window_s[cand, bs]

    def excess(rows: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        need_n, descent_n = _need(t, tc[rows], a[rows], w[rows], Z)
        return excess0 - slope * (t - t_group) + need_n, slope + descent_n

    T = np.maximum(t_group, problem.alone_latency_s()[cand, bs])
    return _newton(T, excess, 0.0, LOWER_STEPS)


def dagsa_assignment(problem: FLRound, *, static: bool = False) -> tuple[np.ndarray | None, dict[str, Any]]:
    r"""The greedy of the module docstring; returns the ``(N,)`` BS of each user (``None`` on a dead end).

    Scores are kept per (BS, user) with a flag saying whether they are exact for the BS's current users or lower
    bounds; users are stored in tie-break order (larger :math:`D_n` first), so the first smallest score of a BS is
    its best candidate. ``stats["evaluations"]`` counts the exact scores computed.
    """
    n, m = problem.n_users, problem.n_bs
    scorer = static_view(problem) if static else problem
    blocks = problem.resource_block_hz is not None
    order = np.argsort(-problem.samples, kind="stable")   # position i holds the user of rank i
    alone = problem.alone_latency_s()[order].T
    score = np.where(np.isfinite(alone), scorer.alone_latency_s()[order].T, np.inf)  # (M, N), as the scheduler sees
    real = alone.copy() if blocks and static else score  # T(U_m + {n}) with the real windows, where it differs
    fresh = np.ones((m, n), dtype=bool)
    gain = problem.gain[order].T
    if not blocks:
        window_need = _window_need(problem)[order].T
        window_sum = np.zeros(m)
    members: list[list[int]] = [[] for _ in range(m)]
    bs_of = np.full(n, -1, dtype=np.int64)
    t_real, t_score = np.zeros(m), np.zeros(m)
    chans = problem.bs_channels.copy()
    cols = np.arange(m)
    evaluations = 0

    def refresh(c: int) -> int:
        """Re-score the stale candidates of BS ``c`` with the smallest scores (ties at the cut included)."""
        pos = np.flatnonzero(~fresh[c] & np.isfinite(score[c]))
        if pos.size > BATCH and not blocks:
            old = score[c, pos]
            pos = pos[old <= np.partition(old, BATCH - 1)[BATCH - 1]]
        cand, group = order[pos], order[members[c]]
        if blocks:
            groups = np.concatenate([np.broadcast_to(group, (pos.size, group.size)), cand[:, None]], axis=1)
            real[c, pos] = group_latency(problem, c, groups)[0]
            if static:
                ok = np.isfinite(real[c, pos])
                score[c, pos] = np.inf
                score[c, pos[ok]] = group_latency(scorer, c, groups[ok])[0]
        else:
            score[c, pos] = _scores(scorer, c, group, cand, score[c, pos])
        fresh[c, pos] = True
        return pos.size

    for _ in range(problem.n_select):
        top = np.argsort(-t_score)
        first, second = t_score[top[0]], (t_score[top[1]] if m > 1 else 0.0)
        others = np.where(cols == top[0], second, first)
        while True:
            best = score.argmin(axis=1)
            s = score[cols, best]
            open_ = np.flatnonzero(np.isfinite(s) & (chans > 0))
            if open_.size == 0:
                return None, {"evaluations": evaluations}
            c = min(open_, key=lambda j: (max(s[j], others[j]), s[j], best[j], -gain[j, best[j]]))
            i = int(best[c])
            if fresh[c, i]:
                break
            evaluations += refresh(int(c))
        bs_of[order[i]] = c
        members[c].append(i)
        t_score[c], t_real[c] = score[c, i], real[c, i]
        chans[c] -= 1
        score[:, i] = np.inf
        fresh[c] = False
        if not blocks:   # drop the candidates the band cannot carry with the new member, whatever the round time
            window_sum[c] += window_need[c, i]
            score[c, window_sum[c] + window_need[c] > problem.bs_bandwidth_hz[c]] = np.inf
            pos = np.flatnonzero(np.isfinite(score[c]))
            if pos.size:
                bound = _lower_bounds(scorer, c, order[members[c]], order[pos], t_score[c])
                score[c, pos] = np.maximum(score[c, pos], bound)
    if static and not blocks:  # the scores ignored the windows: the real time of each BS
        for c in np.flatnonzero([len(u) > 0 for u in members]):
            group = order[members[c]]
            t_real[c] = _scores(problem, int(c), group[:-1], group[-1:], 0.0)[0]
            evaluations += 1
    return bs_of, {"evaluations": evaluations, "bs_latency_s": t_real}


def fl_heuristic_result(problem: FLRound, plan: FLSchedule | None, method: str, t0: float, *,
                        dead_end: str, **stats: Any) -> Result:
    """A Result for an FL round heuristic (:func:`~edgeplan.solvers.result.heuristic_result`) with the cheap
    latency bound."""
    reason = quick_infeasibility(problem)
    message = "" if plan is None else f"{int(plan.selected.sum())} users selected"
    return heuristic_result(problem, plan, method, t0, message=message, infeasible=reason, dead_end=dead_end,
                            bound=None if reason is not None else latency_lower_bound(problem), **stats)


def _solve(problem: FLRound, ctx: SolveContext, method: str, static: bool) -> Result:

    t0 = time.perf_counter()
    plan = None
    stats: dict[str, Any] = {}
    if quick_infeasibility(problem) is None:
        bs_of, stats = dagsa_assignment(problem, static=static)
        if bs_of is not None:
            plan, _ = schedule_from_assignment(problem, bs_of)
    return fl_heuristic_result(problem, plan, method, t0, dead_end="the greedy found no user that fits (channels, "
                               "bandwidth or coverage windows) before selecting K users", **stats)


@register("dagsa", problem=FLRound, kind="heuristic", priority=10)
def solve_dagsa(problem: FLRound, ctx: SolveContext) -> Result:
    """DAGSA: delay-aware greedy user selection and BS assignment, equalized bandwidth (arXiv 2307.09263)."""
    return _solve(problem, ctx, "dagsa", static=False)


@register("dagsa-static", problem=FLRound, kind="heuristic", priority=20)
def solve_dagsa_static(problem: FLRound, ctx: SolveContext) -> Result:
    """DAGSA scoring users as if nobody moved (windows ignored when ranking, kept for feasibility)."""
    return _solve(problem, ctx, "dagsa-static", static=True)


__all__ = ["dagsa_assignment", "fl_heuristic_result", "solve_dagsa", "solve_dagsa_static"]
