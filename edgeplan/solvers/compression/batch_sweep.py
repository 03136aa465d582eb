r"""Batch sizes: ``batch-sweep`` (exact, the barrier sweep), ``caesar-batch`` (Caesar's alignment to the fastest
device) and ``equal-batches``.

``batch-sweep`` is :func:`edgeplan.solvers.barrier.barrier_sweep` with :math:`a_i` per sample, :math:`c_i`
communication, unit weights and :math:`b_i \in [b_{min}, b_{max}]`: the candidate barriers are the
:math:`n (b_{max} - b_{min})` finish times, sorted once. ``caesar-batch``: the device that finishes first at
:math:`b_{max}` gets :math:`b_{max}`, which sets the barrier :math:`T^* = a_f b_{max} + c_f`; every other device
takes the largest batch that fits, :math:`\mathrm{clip}(\lfloor (T^* - c_i) / a_i \rfloor, b_{min}, b_{max})`.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.compression.batch import BatchPlan, BatchSizing
from edgeplan.solvers.barrier import barrier_sweep, fitted_units
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def aligned_batches(per_sample_s: np.ndarray, comm_s: np.ndarray, low: int, high: int) -> np.ndarray:
    """Caesar's batch alignment (module docstring)."""
    f = int(np.argmin(per_sample_s * high + comm_s))
    barrier = float(per_sample_s[f] * high + comm_s[f])
    n = per_sample_s.size
    return fitted_units(per_sample_s, comm_s, np.full(n, low), np.full(n, high), barrier).astype(np.int64)


@register("batch-sweep", problem=BatchSizing, kind="exact", priority=10)
def solve_batch_sweep(problem: BatchSizing, ctx: SolveContext) -> Result:
    """Exact: sweep the barrier over every device's finish times."""
    t0 = time.perf_counter()
    n = problem.n_devices
    b = barrier_sweep(problem.per_sample_s, problem.comm_s, np.ones(n), np.full(n, problem.min_batch),
                      np.full(n, problem.max_batch), problem.round_bound_s)
    if b is None:
        return heuristic_result(problem, None, "batch-sweep", t0, infeasible="the smallest batches already pass the "
                                f"round bound {problem.round_bound_s:.6g} s")
    plan = BatchPlan(b)
    return heuristic_result(problem, plan, "batch-sweep", t0, bound=problem.objective(plan))


@register("caesar-batch", problem=BatchSizing, kind="heuristic", priority=20)
def solve_caesar_batch(problem: BatchSizing, ctx: SolveContext) -> Result:
    """Caesar: the fastest device gets the largest batch, the others fill its round."""
    t0 = time.perf_counter()
    b = aligned_batches(problem.per_sample_s, problem.comm_s, problem.min_batch, problem.max_batch)
    return heuristic_result(problem, BatchPlan(b), "caesar-batch", t0)


@register("equal-batches", problem=BatchSizing, kind="heuristic", priority=200)
def solve_equal_batches(problem: BatchSizing, ctx: SolveContext) -> Result:
    """Baseline: every device trains the largest batch."""
    t0 = time.perf_counter()
    return heuristic_result(problem, BatchPlan(np.full(problem.n_devices, problem.max_batch)), "equal-batches", t0)


__all__ = ["aligned_batches", "solve_batch_sweep", "solve_caesar_batch", "solve_equal_batches"]
