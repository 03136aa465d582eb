r"""``finetune-sweep``: the exact threshold sweep over round times of a fine-tuning round.

Without coverage rows and a shared server bandwidth, fixing the round time :math:`T = s_0 + \theta` makes the
devices independent: each takes its best-utility candidate with :math:`T_{ic} \le \theta` (among those that fit
its memory), giving the best utility :math:`S(\theta)`, a step function that changes only at the candidates'
times. So

.. math::

    \max_x \frac{\sum_i w_i u_{ic_i}}{T(x)} = \max_{\theta \in \{T_{ic}\}} \frac{S(\theta)}{s_0 + \theta}
    \quad\text{and}\quad \min_x T(x)\ \text{s.t.}\ \textstyle\sum_i w_i u_{ic_i} \ge \underline U
    = s_0 + \min\{\theta : S(\theta) \ge \underline U\}

over the thresholds where every device has a candidate (an optimal plan's round time is one of its devices'
times, at which the sweep's plan is at least as good). :math:`S` for every threshold at once: sort each
device's candidates by time, take the running maximum of its utility, and add up the increments in global
time order, :math:`O(NK \log NK)` with numpy. The plan is rebuilt at the best threshold, each device
taking its best candidate there (the fastest among equals). A time limit shorter than the sweep's estimated
time (:data:`SWEEP_S_PER_CANDIDATE`) returns ``no_solution`` at once.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.finetune.round import COVERAGE, SHARED_UPLINK, FineTunePlan, FineTuneRound
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: Seconds per (device, candidate) pair that one sweep takes, with a margin (0.31 s for 1,000 devices x 2,400
#: candidates): the sweep is one numpy pass and cannot stop midway, so a limit shorter than this is not started.
SWEEP_S_PER_CANDIDATE = 2e-7


def no_candidate(problem: FineTuneRound) -> str | None:
    """Why no plan exists when some device has no candidate that fits its memory (else None)."""
    none = ~problem.allowed().any(axis=1)
    if none.any():
        i = int(np.flatnonzero(none)[0])
        return (f"{int(none.sum())} device(s) have no candidate that fits their memory (device {i}: cap "
                f"{problem.memory_cap_bytes[i]:.6g} B)")
    return None


def best_at(problem: FineTuneRound, theta: float, allowed: np.ndarray | None = None) -> np.ndarray:
    """Each device's best-utility allowed candidate with :math:`T_{ic} \\le \\theta` (fastest among equals);
    -1 where none."""
    ok = (problem.allowed() if allowed is None else allowed) & (problem.device_time_table() <= theta)
    u = np.where(ok, problem.weighted_utility(), -np.inf)
    best = u.max(axis=1, keepdims=True)
    tie = ok & (u == best)
    t = np.where(tie, problem.device_time_table(), np.inf)
    return np.where(ok.any(axis=1), np.argmin(t, axis=1), -1)


def sweep(problem: FineTuneRound, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(theta, S)``: the thresholds at which every device has a candidate, and the best utility there.

    ``allowed`` restricts the candidates (default: those that fit the memory caps).
    """
    ok = problem.allowed() if allowed is None else allowed
    n = problem.n_devices
    T = np.where(ok, problem.device_time_table(), np.inf)
    U = np.where(ok, problem.weighted_utility(), -np.inf)
    order = np.lexsort((-U, T), axis=1)  # per device: by time, then utility descending
    Ts = np.take_along_axis(T, order, axis=1)
    run = np.maximum.accumulate(np.take_along_axis(U, order, axis=1), axis=1)
    valid = np.isfinite(Ts)
    prev = np.concatenate([np.full((n, 1), -np.inf), run[:, :-1]], axis=1)
    first = valid & ~np.isfinite(prev)
    delta = np.where(first, run, np.where(valid, run - np.where(np.isfinite(prev), prev, 0.0), 0.0))
    keep = valid & (first | (delta > 0))
    t_flat, d_flat, f_flat = Ts[keep], delta[keep], first[keep]
    g = np.argsort(t_flat, kind="stable")
    t_flat, d_flat, f_flat = t_flat[g], d_flat[g], f_flat[g]
    S = np.cumsum(d_flat)
    covered = np.cumsum(f_flat)
    last = np.append(t_flat[1:] != t_flat[:-1], True)  # the last of equal times
    sel = last & (covered == n)
    return t_flat[sel], S[sel]


def solve_by_sweep(problem: FineTuneRound, allowed: np.ndarray | None = None) -> tuple[float | None, str]:
    """The optimal threshold :math:`\\theta` (None: no plan) and why not."""
    theta, S = sweep(problem, allowed)
    if theta.size == 0:
        return None, "some device has no candidate"
    if np.isfinite(problem.utility_floor):
        good = S >= problem.utility_floor - slack_tol(np.asarray(problem.utility_floor), FEAS_TOL)  # check's slack
        theta, S = theta[good], S[good]
        if theta.size == 0:
            return None, f"no plan reaches the utility floor {problem.utility_floor:.6g}"
    if problem.goal == "time":
        return float(theta[0]), ""
    return float(theta[int(np.argmax(S / (problem.server_time_s + theta)))]), ""


@register("finetune-sweep", problem=FineTuneRound, kind="exact", priority=10, cannot=(COVERAGE, SHARED_UPLINK),
          hint="use 'finetune-milp' for coverage rows or a shared server bandwidth")
def solve_finetune_sweep(problem: FineTuneRound, ctx: SolveContext) -> Result:
    """Exact threshold sweep over round times (both goals), in O(NK log NK)."""
    t0 = time.perf_counter()
    left = ctx.deadline.remaining()
    cells = problem.n_devices * problem.n_candidates
    if left is not None and left < SWEEP_S_PER_CANDIDATE * cells:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, limit=Limit.TIME, method="finetune-sweep",
                      message=f"the time limit leaves no room for one sweep over {cells} candidates (estimated "
                              f"{SWEEP_S_PER_CANDIDATE * cells:.3g} s)",
                      solve_time=time.perf_counter() - t0, sense=problem.sense)
    why = no_candidate(problem)
    theta = None
    if why is None:
        theta, why = solve_by_sweep(problem)
    if theta is None:
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, message=why, method="finetune-sweep",
                      solve_time=time.perf_counter() - t0, sense=problem.sense)
    plan = FineTunePlan(best_at(problem, theta))
    fun = problem.objective(plan)
    return Result(plan=plan, fun=fun, status=Status.OPTIMAL, bound=fun, method="finetune-sweep",
                  message=f"threshold sweep: round time {problem.server_time_s + theta:.6g} s",
                  solve_time=time.perf_counter() - t0, sense=problem.sense)


__all__ = ["SWEEP_S_PER_CANDIDATE", "best_at", "no_candidate", "solve_by_sweep", "solve_finetune_sweep", "sweep"]
