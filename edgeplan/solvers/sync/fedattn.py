r"""FedAttn's sync rules, each with its one knob chosen to meet the error budget at the least latency.

``fedattn-uniform``
    The paper's schedule: exchange K/V every :math:`H` blocks, from block :math:`H-1` (blocks
    :math:`H-1, 2H-1, \dots`) or from the first block (:math:`0, H, 2H, \dots`); every :math:`H \in 1..L` and
    both phases are evaluated and the fastest within the budget kept (ties: the larger :math:`H`).
``fedattn-deep``
    The paper's advice, global attention in the deeper blocks: sync the last :math:`k` blocks; every
    :math:`k \in 0..L` is evaluated and the fastest within the budget kept.

Both are :math:`O(L)` evaluations; neither is optimal in general (``kv-sync-dp`` is).
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import within
from edgeplan.formulations.sync.kv import KVSyncSchedule, SyncPlan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def uniform_plans(problem: KVSyncSchedule) -> list[SyncPlan]:
    """Sync every :math:`H` blocks, :math:`H = L..1`, from block :math:`H-1` and from block 0."""
    L = problem.n_blocks
    return [SyncPlan(range(first, L, h)) for h in range(L, 0, -1) for first in dict.fromkeys((h - 1, 0))]


def deep_plans(problem: KVSyncSchedule) -> list[SyncPlan]:
    """Sync the last :math:`k` blocks, :math:`k = 0..L`."""
    L = problem.n_blocks
    return [SyncPlan(list(range(L - k, L))) for k in range(L + 1)]


def fastest_feasible(problem: KVSyncSchedule, plans: list[SyncPlan],
                     tables: tuple[np.ndarray, np.ndarray] | None = None) -> SyncPlan | None:
    """The first plan of least latency among those within the budget (None: none is), scored on the segment
    tables (:meth:`~edgeplan.formulations.sync.kv.KVSyncSchedule.segment_tables`; ``solve`` re-evaluates it)."""
    w, e = problem.segment_tables() if tables is None else tables
    best, best_t = None, np.inf
    for plan in plans:
        s = np.asarray(plan.blocks, dtype=np.int64)
        rows, cols = np.concatenate([[0], s + 1]), np.append(s, problem.n_blocks)
        if not within(e[rows, cols].sum(), problem.error_budget):
            continue
        t = w[rows, cols].sum()
        if t < best_t:
            best, best_t = plan, t
    return best


@register("fedattn-uniform", problem=KVSyncSchedule, kind="heuristic", priority=20)
def solve_fedattn_uniform(problem: KVSyncSchedule, ctx: SolveContext) -> Result:
    """FedAttn: K/V exchange every H blocks, H chosen for the least latency within the budget."""
    t0 = time.perf_counter()
    return heuristic_result(problem, fastest_feasible(problem, uniform_plans(problem)), "fedattn-uniform", t0,
                            dead_end="no sync interval meets the error budget")


@register("fedattn-deep", problem=KVSyncSchedule, kind="heuristic", priority=25)
def solve_fedattn_deep(problem: KVSyncSchedule, ctx: SolveContext) -> Result:
    """FedAttn: global attention in the last k blocks, k chosen for the least latency within the budget."""
    t0 = time.perf_counter()
    return heuristic_result(problem, fastest_feasible(problem, deep_plans(problem)), "fedattn-deep", t0,
                            dead_end="no number of deep synced blocks meets the error budget")


__all__ = ["deep_plans", "fastest_feasible", "solve_fedattn_deep", "solve_fedattn_uniform", "uniform_plans"]
