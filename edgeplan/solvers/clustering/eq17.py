r"""``eq17``: ParallelSFL's local updating frequencies (Eq. 17).

The fastest cluster :math:`l` (smallest :math:`t_c`) runs :math:`\tau_{max}` iterations; every other one
:math:`\tau_c = \max(1, \lfloor (\tau_{max} t_l + \beta_l - \beta_c) / t_c \rfloor)` (capped at
:math:`\tau_{max}`), so that the clusters reach the barrier together.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.clustering.frequency import FrequencyPlan, UpdateFrequency
from edgeplan.solvers.barrier import fitted_units
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def eq17_plan(problem: UpdateFrequency) -> FrequencyPlan:
    """The frequencies of Eq. 17."""
    fastest = int(np.argmin(problem.iteration_s))
    barrier = problem.tau_max * problem.iteration_s[fastest] + problem.sync_s[fastest]
    C = problem.n_clusters
    return FrequencyPlan(fitted_units(problem.iteration_s, problem.sync_s, np.ones(C), np.full(C, problem.tau_max),
                                      barrier).astype(np.int64))


@register("eq17", problem=UpdateFrequency, kind="heuristic", priority=20)
def solve_eq17(problem: UpdateFrequency, ctx: SolveContext) -> Result:
    """ParallelSFL: the fastest cluster runs tau_max, the others fill its round (Eq. 17)."""
    t0 = time.perf_counter()
    return heuristic_result(problem, eq17_plan(problem), "eq17", t0)


@register("same-frequency", problem=UpdateFrequency, kind="heuristic", priority=200)
def solve_same_frequency(problem: UpdateFrequency, ctx: SolveContext) -> Result:
    """Baseline: every cluster runs tau_max iterations (FedAvg's fixed local steps)."""
    t0 = time.perf_counter()
    return heuristic_result(problem, FrequencyPlan(np.full(problem.n_clusters, problem.tau_max)), "same-frequency",
                            t0)


__all__ = ["eq17_plan", "solve_eq17", "solve_same_frequency"]
