r"""The equal-segment pipeline with equal bandwidth: CollaPipe's GPipe-like baseline.

Each device gets :math:`\lfloor L/K \rfloor` or :math:`\lceil L/K \rceil` blocks (the earlier devices the
larger), each link :math:`\lfloor U/(K-1) \rfloor` bandwidth units at the highest power level both ends allow,
and the micro-batch count is the allowed one with the best objective among those whose plan fits the memory
caps (so the baseline is as good as an equal split can be, not a straw man).
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.partition.collapipe import CollaPipePlan, CollaPipeSlot
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def equal_plans(p: CollaPipeSlot) -> list[CollaPipePlan]:
    """The equal split with each allowed micro-batch count (see the module docstring)."""
    K, L = p.n_devices, p.n_blocks
    seg = tuple(int(v) for v in np.full(K, L // K) + (np.arange(K) < L % K))
    n_links = K - 1
    units = (p.n_units // n_links,) * n_links if n_links else ()
    ok = p.link_power_ok()
    power = tuple(int(np.flatnonzero(row)[-1]) if row.any() else 0 for row in ok)
    return [CollaPipePlan(seg, M, units, power) for M in p.micro_batches]


def best_equal_plan(p: CollaPipeSlot) -> CollaPipePlan | None:
    """The equal split with the best objective among the micro-batch counts that fit the memory caps (``None``:
    none fits)."""
    fitting = [q for q in equal_plans(p) if not p.check(q)]
    return min(fitting, key=p.objective) if fitting else None


@register("equal-pipeline", problem=CollaPipeSlot, kind="heuristic", options={})
def solve_equal_pipeline(problem: CollaPipeSlot, ctx: SolveContext) -> Result:
    """Equal segments, equal bandwidth, highest allowed power, best micro-batch count."""
    t0 = time.perf_counter()
    plan = best_equal_plan(problem) or equal_plans(problem)[0]  # none fits: the result names what breaks
    return heuristic_result(problem, plan, "equal-pipeline", t0)


__all__ = ["best_equal_plan", "equal_plans", "solve_equal_pipeline"]
