r"""DeepSpeed's ``partition_method="parameters"``: stages with balanced parameter counts.

DeepSpeed (``deepspeed.runtime.pipe.module.PipelineModule``, ``partition_method="parameters"``) weighs each
layer by its number of trainable parameters and splits the layer sequence into as many contiguous parts as
pipeline stages so that the heaviest part is as light as possible (``ds_utils.partition_balanced``: a binary
search on the bottleneck to ``eps = 1e-3`` with a greedy probe). We solve the same min-max linear partition
exactly (:func:`linear_partition`). The device order is the problem's (devices ``0..S-1``, with
:math:`S = \min(K, L)`); device speeds, links and memory are ignored, as in DeepSpeed.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def linear_partition(weights: np.ndarray, parts: int) -> np.ndarray:
    """Sizes of ``parts`` non-empty contiguous parts minimizing the largest part sum (exact DP, O(parts L^2)).

    Ties go to the split whose earlier parts are largest (a deterministic choice).
    """
    w = np.asarray(weights, dtype=float)
    L = w.size
    parts = int(min(parts, L))
    P = np.concatenate([[0.0], np.cumsum(w)])
    j, p = np.arange(L + 1)[:, None], np.arange(L + 1)[None, :]
    seg = np.where(p > j, P[p] - P[j], np.inf)
    V = np.where(np.arange(L + 1) == 0, 0.0, np.inf)
    arg = np.zeros((parts, L + 1), dtype=np.int64)
    for k in range(parts):
        tot = np.maximum(V[:, None], seg)
        arg[k] = (L - np.argmin(tot[::-1], axis=0))            # the largest minimizing j
        V = tot[arg[k], np.arange(L + 1)]
    bounds = [L]
    for k in range(parts - 1, -1, -1):
        bounds.append(int(arg[k, bounds[-1]]))
    return np.diff(np.array(bounds[::-1]))


def balanced_plan(problem: PipelinePartition, weights: np.ndarray) -> PipelinePlan:
    """The min-max partition of ``weights`` over devices ``0..S-1`` in order."""
    S = problem.n_devices if problem.order == "fixed" else min(problem.n_devices, problem.n_blocks)
    return PipelinePlan.from_sizes(linear_partition(weights, S))


@register("param-balanced", problem=PipelinePartition, kind="heuristic", options={})
def solve_param_balanced(problem: PipelinePartition, ctx: SolveContext) -> Result:
    """DeepSpeed's parameters method: contiguous stages with the heaviest parameter count minimized."""
    t0 = time.perf_counter()
    plan = balanced_plan(problem, problem.model.num_params.astype(float))
    return heuristic_result(problem, plan, "param-balanced", t0)


__all__ = ["balanced_plan", "linear_partition", "solve_param_balanced"]
