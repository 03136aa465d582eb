r"""``fedquad``: FedQuad's two steps, efficient configurations then the greedy up to the straggler time
[steps named in the paper, details reconstructed; ``docs/models/finetune.md``].

1. **Efficient combinations.** For each device and LoRA depth :math:`d`, keep the configuration that fits the
   memory cap with the fewest quantized layers (ties: the widest bit width, i.e. the highest utility): more
   quantization only costs time and accuracy. Tables without FedQuad fields keep the Pareto frontier of
   (round time, utility).
2. **Greedy.** :math:`T^* = \max_i \min_c T_{ic}` is the unavoidable straggler time; every device takes its
   deepest (highest-utility) efficient configuration with :math:`T_{ic} \le T^*`. Then :math:`T^*` is raised
   to the next efficient time while progress per second improves (for ``goal="time"``: until the utility
   floor is met).

It ignores coverage rows (FedBE) and the server's shared bandwidth, which only lengthens the round.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.finetune.round import FineTunePlan, FineTuneRound
from edgeplan.solvers.finetune.finetune_sweep import best_at, no_candidate
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def efficient(problem: FineTuneRound, allowed: np.ndarray | None = None) -> np.ndarray:
    """``(N, K)`` mask of the efficient configurations (step 1) among ``allowed`` (default: those that fit)."""
    ok = problem.allowed() if allowed is None else allowed
    d_col, q_col = problem.field_index("lora_depth"), problem.field_index("quantized_layers")
    U = np.where(ok, problem.weighted_utility(), -np.inf)
    T = np.where(ok, problem.device_time_table(), np.inf)
    if d_col is None or q_col is None:  # Pareto frontier of (time, utility)
        order = np.lexsort((-U, T), axis=1)
        run = np.maximum.accumulate(np.take_along_axis(U, order, axis=1), axis=1)
        prev = np.concatenate([np.full((U.shape[0], 1), -np.inf), run[:, :-1]], axis=1)
        front = np.zeros_like(ok)
        np.put_along_axis(front, order, np.take_along_axis(U, order, axis=1) > prev, axis=1)
        return front & ok
    depth, quant = problem.config[..., d_col], problem.config[..., q_col]
    out = np.zeros_like(ok)
    for d in np.unique(depth[ok]):
        cand = ok & (depth == d)
        qmin = np.where(cand, quant, np.iinfo(np.int64).max).min(axis=1, keepdims=True)
        cand &= quant == qmin
        best = np.where(cand, U, -np.inf).max(axis=1, keepdims=True)
        cand &= U == best
        first = np.argmax(np.where(cand, -T, -np.inf), axis=1)  # the fastest among equals
        rows = np.flatnonzero(cand.any(axis=1))
        out[rows, first[rows]] = True
    return out


def greedy(problem: FineTuneRound, allowed: np.ndarray) -> FineTunePlan | None:
    """Step 2 on the ``allowed`` configurations (None: a device has none)."""
    if not allowed.any(axis=1).all():
        return None
    times = np.where(allowed, problem.device_time_table(), np.inf)
    steps = np.unique(times[np.isfinite(times)])
    t_star = times.min(axis=1).max()
    k = int(np.searchsorted(steps, t_star))
    plan = FineTunePlan(best_at(problem, t_star, allowed))
    value = problem.objective(plan)
    meets = lambda p: not problem.check(p)  # noqa: E731
    while k + 1 < steps.size:
        nxt = FineTunePlan(best_at(problem, steps[k + 1], allowed))
        v = problem.objective(nxt)
        if problem.goal == "time":
            if meets(plan):
                break
            plan, value, k = nxt, v, k + 1
            continue
        if not v > value:
            break
        plan, value, k = nxt, v, k + 1
    return plan


@register("fedquad", problem=FineTuneRound, kind="heuristic", priority=10)
def solve_fedquad(problem: FineTuneRound, ctx: SolveContext) -> Result:
    """FedQuad: efficient (depth, quantization) combinations, then the greedy up to the straggler time."""
    t0 = time.perf_counter()
    why = no_candidate(problem)
    plan = None if why else greedy(problem, efficient(problem))
    return heuristic_result(problem, plan, "fedquad", t0, infeasible=why)


__all__ = ["efficient", "greedy", "solve_fedquad"]
