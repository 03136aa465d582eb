r"""Simple partition baselines: ``device-only``, ``cloud-only`` (split inference), ``uniform`` and
``flop-balanced`` (pipelines).

* ``device-only``: every block on tier 0 (no transfer; the on-device reference of Neurosurgeon and COACH).
* ``cloud-only``: every block on the last tier; the input is sent over every link (at native width).
* ``uniform``: equal layer counts per stage, DeepSpeed's ``partition_method="uniform"``
  (``ds_utils.partition_uniform``: :math:`\lfloor L/S\rfloor` layers each, the first :math:`L \bmod S` stages
  one more), on devices ``0..S-1`` in order.
* ``flop-balanced``: the min-max contiguous partition of forward FLOPs (plus backward FLOPs in training),
  device-agnostic: what a FLOP-count partitioner does when it ignores device heterogeneity and links.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.formulations.partition.split import SplitInference, SplitPlan
from edgeplan.solvers.partition.param_balanced import balanced_plan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


@register("device-only", problem=SplitInference, kind="heuristic", options={})
def solve_device_only(problem: SplitInference, ctx: SolveContext) -> Result:
    """Every block on the device (tier 0)."""
    t0 = time.perf_counter()
    return heuristic_result(problem, SplitPlan(np.zeros(problem.n_blocks, dtype=np.int64)), "device-only", t0)


@register("cloud-only", problem=SplitInference, kind="heuristic", options={})
def solve_cloud_only(problem: SplitInference, ctx: SolveContext) -> Result:
    """Every block on the last tier; the raw input crosses every link."""
    t0 = time.perf_counter()
    plan = SplitPlan(np.full(problem.n_blocks, problem.n_tiers - 1, dtype=np.int64))
    return heuristic_result(problem, plan, "cloud-only", t0)


def uniform_sizes(n_items: int, parts: int) -> np.ndarray:
    """DeepSpeed's ``partition_uniform`` as sizes: ``n // parts`` each, the first ``n % parts`` one more."""
    parts = min(parts, n_items)
    sizes = np.full(parts, n_items // parts)
    sizes[: n_items % parts] += 1
    return sizes


@register("uniform", problem=PipelinePartition, kind="heuristic", options={})
def solve_uniform(problem: PipelinePartition, ctx: SolveContext) -> Result:
    """Equal layer counts per stage (DeepSpeed's uniform method), devices in order."""
    t0 = time.perf_counter()
    S = problem.n_devices if problem.order == "fixed" else min(problem.n_devices, problem.n_blocks)
    return heuristic_result(problem, PipelinePlan.from_sizes(uniform_sizes(problem.n_blocks, S)), "uniform", t0)


@register("flop-balanced", problem=PipelinePartition, kind="heuristic", options={})
def solve_flop_balanced(problem: PipelinePartition, ctx: SolveContext) -> Result:
    """Min-max contiguous partition of FLOPs, ignoring device speeds and links."""
    t0 = time.perf_counter()
    m = problem.model
    w = m.fwd_flops + (m.bwd_flops if problem.training else 0.0)
    return heuristic_result(problem, balanced_plan(problem, w), "flop-balanced", t0)


__all__ = ["solve_cloud_only", "solve_device_only", "solve_flop_balanced", "solve_uniform", "uniform_sizes"]
