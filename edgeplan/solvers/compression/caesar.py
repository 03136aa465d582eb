r"""``caesar``: Caesar's rules for one round, and the round's baselines.

* download: staleness :math:`\delta_i` in round :math:`t` gives
  :math:`\theta^d_i = (1 - \min(\delta_i, t)/t)\, \theta^d_{max}` (a device that never took part gets the full
  model), the largest level at or below it;
* upload: devices ranked by importance (rank 1 the most important) get
  :math:`\theta^u_i = \theta^u_{min} + (\theta^u_{max} - \theta^u_{min})\, \mathrm{rank}_i / n`, the largest level
  at or below it;
* batches: aligned to the fastest device (``caesar-batch`` on the round's communication times).

Baselines: ``no-compression`` (the smallest level both ways, every batch :math:`b_{max}`),
``uniform-compression`` (one download level and one upload level for every device, each the largest within its
budget, every batch :math:`b_{max}`), ``caesar-no-batching`` (Caesar's ratios, every batch :math:`b_{max}`).
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import within
from edgeplan.formulations.compression.round import CompressionChoice, CompressionRound
from edgeplan.solvers.compression.batch_sweep import aligned_batches
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result

#: Caesar's defaults (the re-implementation's): the largest download ratio, the upload ratio range.
DEFAULTS = {"theta_max_down": 0.6, "theta_min_up": 0.1, "theta_max_up": 0.6}


def snap(problem: CompressionRound, target: np.ndarray) -> np.ndarray:
    """The index of the largest level at or below each target (the smallest level where none is)."""
    order = np.argsort(problem.levels, kind="stable")
    k = np.searchsorted(problem.levels[order], np.asarray(target) + 1e-12, side="right") - 1
    return order[np.maximum(k, 0)]


def caesar_ratios(problem: CompressionRound, theta_max_down: float = DEFAULTS["theta_max_down"],
                  theta_min_up: float = DEFAULTS["theta_min_up"],
                  theta_max_up: float = DEFAULTS["theta_max_up"]) -> tuple[np.ndarray, np.ndarray]:
    """Caesar's download and upload level indices (module docstring)."""
    t = float(problem.round_index)
    down = (1.0 - np.minimum(problem.staleness, t) / t) * theta_max_down
    n = problem.n_devices
    rank = np.empty(n)
    rank[np.argsort(-problem.importance, kind="stable")] = np.arange(1, n + 1)
    up = theta_min_up + (theta_max_up - theta_min_up) * rank / n
    return snap(problem, down), snap(problem, up)


def caesar_plan(problem: CompressionRound, **options: float) -> CompressionChoice:
    """Caesar's ratios and batch alignment."""
    down, up = caesar_ratios(problem, **options)
    D, U = problem.level_bytes
    comm = D[down] / problem.download_bps + U[up] / problem.upload_bps
    return CompressionChoice(down, up, aligned_batches(problem.per_sample_s, comm, problem.min_batch,
                                                       problem.max_batch))


def fixed_plan(problem: CompressionRound, level: int) -> CompressionChoice:
    """Every device at one level both ways and the largest batch."""
    n = problem.n_devices
    return CompressionChoice(np.full(n, level), np.full(n, level), np.full(n, problem.max_batch))


@register("caesar", problem=CompressionRound, kind="heuristic", priority=20,
          options={key: (float, value) for key, value in DEFAULTS.items()})
def solve_caesar(problem: CompressionRound, ctx: SolveContext) -> Result:
    """Caesar: staleness-based download ratios, importance-ranked upload ratios, batches aligned to the fastest."""
    t0 = time.perf_counter()
    return heuristic_result(problem, caesar_plan(problem, **ctx.options), "caesar", t0)


@register("caesar-no-batching", problem=CompressionRound, kind="heuristic", priority=150,
          options={key: (float, value) for key, value in DEFAULTS.items()})
def solve_caesar_no_batching(problem: CompressionRound, ctx: SolveContext) -> Result:
    """Baseline: Caesar's ratios, every device at the largest batch."""
    t0 = time.perf_counter()
    down, up = caesar_ratios(problem, **ctx.options)
    plan = CompressionChoice(down, up, np.full(problem.n_devices, problem.max_batch))
    return heuristic_result(problem, plan, "caesar-no-batching", t0)


@register("no-compression", problem=CompressionRound, kind="heuristic", priority=200)
def solve_no_compression(problem: CompressionRound, ctx: SolveContext) -> Result:
    """Baseline: the smallest ratio both ways, every device at the largest batch."""
    t0 = time.perf_counter()
    return heuristic_result(problem, fixed_plan(problem, int(np.argmin(problem.levels))), "no-compression", t0)


@register("uniform-compression", problem=CompressionRound, kind="heuristic", priority=190)
def solve_uniform_compression(problem: CompressionRound, ctx: SolveContext) -> Result:
    """Baseline: one download and one upload ratio for every device, each the largest within its budget."""
    t0 = time.perf_counter()
    n, rows = problem.n_devices, np.arange(problem.n_devices)
    order = np.argsort(-problem.levels, kind="stable")
    down = [lv for lv in order if within(problem.download_error[:, lv], problem.download_cap).all()]
    up = [lv for lv in order if within(problem.importance @ problem.upload_error[rows, lv], problem.upload_budget)]
    plan = None if not (down and up) else CompressionChoice(np.full(n, down[0]), np.full(n, up[0]),
                                                            np.full(n, problem.max_batch))
    return heuristic_result(problem, plan, "uniform-compression", t0, dead_end="no level meets the budgets")


__all__ = ["DEFAULTS", "caesar_plan", "caesar_ratios", "fixed_plan", "snap", "solve_caesar", "solve_caesar_no_batching",
           "solve_no_compression", "solve_uniform_compression"]
