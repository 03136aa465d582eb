"""Baselines for a speculative-serving step: the target alone, one general drafter, random routing, and FCFS with
a fixed speculation length.

* ``autoregressive``: no speculation; the batch is filled by weight (the target decodes one token per request);
* ``single-drafter`` (SpecInfer-like): the drafter with the best acceptance over the pending requests drafts
  ``max_speculation`` tokens for as many requests as it holds, by weight; the rest decode without a draft;
* ``random-routing``: each request to a random drafter (seeded), ``max_speculation`` tokens, by weight;
* ``fcfs-fixed``: requests in arrival order (their index), round-robin over the drafters (a request
  that does not fit with its drafter decodes without a draft),
  a fixed :data:`FIXED_LENGTH` tokens; the first request that does not fit ends the batch.

Urgent requests always go first.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.serving.step import SpeculativeServing
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result
from edgeplan.solvers.serving.batching import add_in_order

#: The speculation length of ``fcfs-fixed`` (capped by the step's ``max_speculation``).
FIXED_LENGTH = 4


def by_weight(problem: SpeculativeServing) -> list[int]:
    return np.argsort(-problem.weight, kind="stable").tolist()


@register("autoregressive", problem=SpeculativeServing, kind="heuristic", priority=200)
def solve_autoregressive(problem: SpeculativeServing, ctx: SolveContext) -> Result:
    """Baseline: no speculation, the batch filled by weight."""
    t0 = time.perf_counter()
    plan = add_in_order(problem, by_weight(problem), {}, 0)
    return heuristic_result(problem, plan, "autoregressive", t0)


@register("single-drafter", problem=SpeculativeServing, kind="heuristic", priority=200)
def solve_single_drafter(problem: SpeculativeServing, ctx: SolveContext) -> Result:
    """Baseline (SpecInfer-like): one drafter, the best on average over the pending requests, for everyone."""
    t0 = time.perf_counter()
    usable = problem.draft_capacity >= 1
    mean = np.where(usable, problem.acceptance[:, problem.domain].mean(axis=1), -1.0)
    j = int(np.argmax(mean))
    route = {r: (j,) for r in range(problem.n_requests)} if usable[j] else {}
    plan = add_in_order(problem, by_weight(problem), route, problem.max_speculation)
    return heuristic_result(problem, plan, "single-drafter", t0, drafter=j)


@register("random-routing", problem=SpeculativeServing, kind="heuristic", priority=200)
def solve_random_routing(problem: SpeculativeServing, ctx: SolveContext) -> Result:
    """Baseline: a random drafter per request (seeded), ``max_speculation`` tokens, the batch by weight."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(ctx.seed)
    usable = np.flatnonzero(problem.draft_capacity >= 1)
    route = {r: (int(rng.choice(usable)),) for r in range(problem.n_requests)} if usable.size else {}
    plan = add_in_order(problem, by_weight(problem), route, problem.max_speculation)
    return heuristic_result(problem, plan, "random-routing", t0)


@register("fcfs-fixed", problem=SpeculativeServing, kind="heuristic", priority=200)
def solve_fcfs_fixed(problem: SpeculativeServing, ctx: SolveContext) -> Result:
    """Baseline: first come first served, round-robin drafters, a fixed speculation length."""
    t0 = time.perf_counter()
    usable = np.flatnonzero(problem.draft_capacity >= 1).tolist()
    route = {r: (usable[r % len(usable)],) for r in range(problem.n_requests)} if usable else {}
    plan = add_in_order(problem, range(problem.n_requests), route, min(FIXED_LENGTH, problem.max_speculation),
                        stop_at_first=True)
    return heuristic_result(problem, plan, "fcfs-fixed", t0)


__all__ = ["FIXED_LENGTH", "solve_autoregressive", "solve_fcfs_fixed", "solve_random_routing",
           "solve_single_drafter"]
