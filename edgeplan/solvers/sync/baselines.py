r"""Baselines of both sync schedules, executed as they are (a plan that breaks a constraint is reported).

FedAttn (:class:`~edgeplan.formulations.sync.kv.KVSyncSchedule`):

``no-sync``
    Local attention in every block (no K/V crosses a link; often over the error budget).
``all-sync``
    Global attention in every block (centralised quality, error 0, the most traffic).

CoCoDC (:class:`~edgeplan.formulations.sync.fragments.FragmentSync`):

``diloco``
    DiLoCo's blocking outer step: every fragment in the same slot, every :math:`k`-th slot with the smallest
    :math:`k` that sends the whole model at least once in every :math:`W` slots (:math:`k = 1` without a
    limit). A slot's capacity is not DiLoCo's concern: when the model exceeds it, the plan breaks it.
``streaming-diloco``
    Streaming DiLoCo's fixed rotation: fragments packed in order into the fewest groups that fit the smallest
    slot capacity; slot :math:`t` sends group :math:`t \bmod G`, whatever the changes.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgeplan.formulations.sync.fragments import FragmentPlan, FragmentSync
from edgeplan.formulations.sync.kv import KVSyncSchedule, SyncPlan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


@register("no-sync", problem=KVSyncSchedule, kind="heuristic", priority=40)
def solve_no_sync(problem: KVSyncSchedule, ctx: SolveContext) -> Result:
    """Baseline: local attention in every block."""
    return heuristic_result(problem, SyncPlan([]), "no-sync", time.perf_counter())


@register("all-sync", problem=KVSyncSchedule, kind="heuristic", priority=45)
def solve_all_sync(problem: KVSyncSchedule, ctx: SolveContext) -> Result:
    """Baseline: global attention in every block."""
    return heuristic_result(problem, SyncPlan(range(problem.n_blocks)), "all-sync", time.perf_counter())


def pack_in_order(sizes: Any, capacity: float) -> list[list[int]] | None:
    """Fragments in order, packed into consecutive groups of at most ``capacity`` bytes (None: one fragment alone
    exceeds it)."""
    groups: list[list[int]] = [[]]
    used = 0.0
    for f, s in enumerate(np.asarray(sizes, dtype=float).tolist()):
        if s > capacity:
            return None
        if used + s > capacity and groups[-1]:
            groups.append([])
            used = 0.0
        groups[-1].append(f)
        used += s
    return groups


def rotation_groups(problem: FragmentSync) -> list[list[int]] | None:
    """Streaming DiLoCo's groups: :func:`pack_in_order` at the smallest slot capacity."""
    return pack_in_order(problem.sizes_bytes, float(problem.capacity_bytes.min()))


@register("diloco", problem=FragmentSync, kind="heuristic", priority=40)
def solve_diloco(problem: FragmentSync, ctx: SolveContext) -> Result:
    """Baseline: the whole model in one slot, every k-th slot (blocking full synchronisation)."""
    t0 = time.perf_counter()
    k = 1 if problem.windows() == 0 else problem.max_staleness
    every = list(range(problem.n_fragments))
    plan = FragmentPlan([every if (t + 1) % k == 0 else [] for t in range(problem.n_slots)])
    return heuristic_result(problem, plan, "diloco", t0)


@register("streaming-diloco", problem=FragmentSync, kind="heuristic", priority=30)
def solve_streaming_diloco(problem: FragmentSync, ctx: SolveContext) -> Result:
    """Baseline: a fixed rotation of fragment groups that fit the smallest slot."""
    t0 = time.perf_counter()
    groups = rotation_groups(problem)
    if groups is None:
        return heuristic_result(problem, None, "streaming-diloco", t0,
                                dead_end="a fragment exceeds the smallest slot capacity")
    plan = FragmentPlan([groups[t % len(groups)] for t in range(problem.n_slots)])
    return heuristic_result(problem, plan, "streaming-diloco", t0, groups=len(groups))


__all__ = ["pack_in_order", "rotation_groups", "solve_all_sync", "solve_diloco", "solve_no_sync",
           "solve_streaming_diloco"]
