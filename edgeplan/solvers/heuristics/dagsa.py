r"""DAGSA, the delay-aware greedy search, and its mobility-blind variant ``dagsa-static`` (one module: they share
all code but the score).

Fan, Chen, Li, Deng, Han, Ding, "Mobility-Aware Joint User Scheduling and Resource Allocation for Low-Latency
Federated Learning", arXiv 2307.09263. The paper's pseudocode is not public; this is the reconstruction of
``shared/papers/fl-scheduling.md`` C.4:

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
stronger channel (the note's tie-break). After each step only the column of the BS that grew is re-scored (all its
candidates at once, vectorized, warm-started from their old scores), to relative accuracy 1e-10; the final
bandwidths are solved to 1e-12. With resource blocks the min-max problem is solved exactly over whole blocks
(:func:`~edgeplan.solvers.exact.fl_kernels.equalize_rb`). Cost: :math:`O(K)` batches of min-max problems, one
per step, over the candidates of one BS.

``dagsa-static`` scores candidates as if nobody moved (every covered pair's window is infinite,
:func:`~edgeplan.solvers.exact.fl_kernels.static_view`) but accepts a pair and sets bandwidths with the real
windows, so its plans stay feasible: it isolates what mobility awareness buys (users about to leave a cell look
fast to it, and then need more bandwidth to finish before they leave).

Both report the cheap bound :func:`~edgeplan.solvers.exact.fl_kernels.latency_lower_bound` and claim optimality
only when the plan meets it. Too few reachable users or channels give ``infeasible`` (proven); a greedy dead
end with a feasible problem gives ``no_solution``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeplan.formulations.fl_round import FLRound, FLSchedule
from edgeplan.solvers.exact.fl_kernels import (
    group_latency,
    latency_lower_bound,
    quick_infeasibility,
    schedule_from_assignment,
    static_view,
)
from edgeplan.solvers.registry import Options, SolveContext, register
from edgeplan.solvers.result import Result, Status

#: Relative accuracy of the candidate scores (the final bandwidths are solved to 1e-12).
SCORE_RTOL = 1e-10


def _column(problem: FLRound, m: int, members: np.ndarray, cand: np.ndarray, lower: np.ndarray | None = None,
            ) -> np.ndarray:
    """``T(U_m + {n})`` for every candidate ``n`` in ``cand`` (``inf`` when it does not fit); ``lower`` are known
    lower bounds (warm start)."""
    if cand.size == 0:
        return np.zeros(0)
    groups = np.concatenate([np.broadcast_to(members, (cand.size, members.size)), cand[:, None]], axis=1)
    T, _ = group_latency(problem, m, groups, lower=lower, rtol=SCORE_RTOL)
    return T


def dagsa_assignment(problem: FLRound, *, static: bool = False) -> tuple[np.ndarray | None, dict[str, Any]]:
    r"""The greedy of the module docstring; returns the ``(N,)`` BS of each user (``None`` on a dead end).

    After each step only the column of the BS that grew is re-scored, all its candidates at once; the old
    scores warm-start the min-max solves (adding a user to a BS only raises :math:`T(U_m + \{n\})`, so an old
    score is a lower bound).
    """
    n, m = problem.n_users, problem.n_bs
    k = problem.n_select
    scorer = static_view(problem) if static else problem
    real = problem.alone_latency_s().copy()          # T(U_m + {n}) with the real windows
    score = np.where(np.isfinite(real), scorer.alone_latency_s(), np.inf)  # as the scheduler sees it
    bs_of = np.full(n, -1, dtype=np.int64)
    t_real = np.zeros(m)
    t_score = np.zeros(m)
    chans = problem.bs_channels.copy()
    ranks = np.argsort(np.argsort(-problem.samples, kind="stable"), kind="stable")
    evaluations = 0
    for _ in range(k):
        top = np.argsort(-t_score)
        first, second = t_score[top[0]], (t_score[top[1]] if m > 1 else 0.0)
        others = np.where(np.arange(m) == top[0], second, first)
        valid = np.isfinite(score) & (bs_of[:, None] < 0) & (chans[None, :] > 0)
        if not valid.any():
            return None, {"evaluations": evaluations}
        uu, mm = np.nonzero(valid)
        key1 = np.maximum(score[uu, mm], others[mm])
        order = np.lexsort((-problem.gain[uu, mm], ranks[uu], score[uu, mm], key1))
        u_star, m_star = int(uu[order[0]]), int(mm[order[0]])
        bs_of[u_star] = m_star
        t_real[m_star] = real[u_star, m_star]
        t_score[m_star] = score[u_star, m_star]
        chans[m_star] -= 1
        real[u_star, :] = np.inf
        score[u_star, :] = np.inf
        members = np.flatnonzero(bs_of == m_star)
        cand = np.flatnonzero((bs_of < 0) & np.isfinite(real[:, m_star]))
        real[cand, m_star] = _column(problem, m_star, members, cand,
                                     np.maximum(real[cand, m_star], t_real[m_star]))
        evaluations += cand.size
        if static:
            still = cand[np.isfinite(real[cand, m_star])]
            old = score[still, m_star]
            score[cand, m_star] = np.inf
            score[still, m_star] = _column(scorer, m_star, members, still, np.maximum(old, t_score[m_star]))
            evaluations += still.size
        else:
            score[cand, m_star] = real[cand, m_star]
    return bs_of, {"evaluations": evaluations, "bs_latency_s": t_real}


def fl_heuristic_result(problem: FLRound, plan: FLSchedule | None, method: str, t0: float, *,
                        dead_end: str, **stats: Any) -> Result:
    """A Result for an FL round heuristic: the plan with the cheap bound, or why there is none."""
    reason = quick_infeasibility(problem)
    if reason is not None:
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, message=reason, method=method,
                      solve_time=time.perf_counter() - t0, stats=stats)
    if plan is None:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, message=dead_end, method=method,
                      solve_time=time.perf_counter() - t0, stats=stats)
    fun = problem.objective(plan)
    bound = latency_lower_bound(problem)
    status = Status.OPTIMAL if fun <= bound else Status.FEASIBLE
    return Result(plan=plan, fun=fun, status=status, bound=min(bound, fun), method=method,
                  message=f"{int(plan.selected.sum())} users selected; round latency {fun:.6g} s",
                  solve_time=time.perf_counter() - t0, stats=stats)


def _solve(problem: FLRound, ctx: SolveContext, method: str, static: bool) -> Result:
    Options(ctx.options, method).done()
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
