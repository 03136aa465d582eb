r"""ACA: CoCa's adaptive cache allocation (``docs/models/cache.md``).

Liang et al., "Many Hands Make Light Work: Accelerating Edge Inference via Multi-Client Collaborative
Caching", arXiv 2412.10382 (ICDE 2025). Per client, every period:

1. **Hot-spot classes.** Classes in the client's importance order (``class_rank``; importance
   :math:`I_c = f_c \alpha^{\lfloor \Delta t_c / W \rfloor}`, normalised into ``request_prob``); cache the
   smallest top-:math:`k` whose cumulative share reaches ``share`` (95 %), with :math:`k \ge` ``k_min``.
2. **Cache layers.** Activate layers in a profiled priority order until the entry budget
   :math:`k\,|A| \le B` (or the memory budget, or the layer cap) would be exceeded.

Choices where the paper is silent [assumption]
----------------------------------------------
* The priority order is profiled on the problem itself: each layer alone, with the client's :math:`k`
  classes, ranked by its predicted latency saving (the author code used a fixed order measured offline;
  pass it as ``priority``).
* ``greedy=True`` (default) is the "dynamic activation balancing lookup overhead against accuracy": a layer
  joins only if the plan stays within the accuracy floor and lowers the latency (or, while the latency SLO
  is unmet, brings the latency down). ``greedy=False`` activates in order until the budget, as the author
  code does, whatever the floors.
* ``k_min`` defaults to :math:`\max(2, \lceil C/4 \rceil)` (the 2025 code: 25 of 100 classes); :math:`k`
  is capped by the entry budget so that at least one layer fits.
* The importance itself is computed where the history is (``edgeplan.formulations.cache.instances.class_importance``);
  ACA reads it from the problem.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.cache.placement import CachePlacement, CacheSystem
from edgeplan.formulations.cache.replay import CacheReplay
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def hot_spot_counts(problem: CacheSystem, share: float, k_min: int) -> np.ndarray:
    """Smallest :math:`k` per client whose top-:math:`k` request share reaches ``share`` (at least ``k_min``)."""
    p_sorted = np.take_along_axis(problem.request_prob, problem.class_rank, axis=1)
    cum = np.cumsum(p_sorted, axis=1)
    k = (cum < share - 1e-12).sum(axis=1) + 1
    k = np.clip(np.maximum(k, k_min), 0, problem.n_classes)
    budget = np.where(np.isfinite(problem.max_entries), np.floor(problem.max_entries), problem.n_classes)
    return np.minimum(k, budget).astype(int)


def profiled_priority(problem: CacheSystem, counts: np.ndarray) -> np.ndarray:
    """``(N, L)``: every client's layers sorted by the latency saving of activating that layer alone."""
    n, L = problem.n_clients, problem.n_layers
    lat = np.empty((n, L))
    for l in range(L):
        lat[:, l] = problem.evaluate(problem.plan(counts, [l])).latency_s
    return np.argsort(lat, axis=1, kind="stable")


def _fits(problem: CacheSystem, i: int, k: int, layers: list[int]) -> bool:
    m = len(layers)
    return (k * m <= problem.max_entries[i] and m <= problem.layer_cap()
            and problem.bytes_per_value * k * problem.dims[layers].sum() <= problem.max_memory_bytes[i] * (1 + 1e-12))


@register("aca", problem=(CachePlacement, CacheReplay), kind="heuristic", priority=10,
          options={"share": (float, 0.95), "k_min": (int, None), "priority": (None, None), "greedy": (bool, True)})
def aca(problem: CacheSystem, ctx: SolveContext) -> Result:
    """CoCa's ACA: hot-spot classes by cumulative importance, layers by profiled priority until the budget."""
    share = ctx.options["share"]
    k_min = ctx.options["k_min"]
    if k_min is None:
        k_min = max(2, math.ceil(problem.n_classes / 4))
    priority = ctx.options["priority"]
    greedy = ctx.options["greedy"]
    if not 0.0 < share <= 1.0:
        raise ProblemDataError(f"`options['share']` = {share!r} for method 'aca'; expected a value in (0, 1]")
    if k_min < 0:
        raise ProblemDataError(f"`options['k_min']` = {k_min!r} for method 'aca'; expected a non-negative integer")
    t0 = time.perf_counter()
    n, L = problem.n_clients, problem.n_layers
    k = hot_spot_counts(problem, share, k_min)
    if priority is None:
        order = profiled_priority(problem, k)
    else:
        pr = np.asarray(priority)
        if pr.ndim == 1:
            pr = np.broadcast_to(pr, (n, pr.size))
        if pr.ndim != 2 or pr.shape[0] != n or not np.isin(pr, np.arange(L)).all():
            raise ProblemDataError(f"`options['priority']` = {priority!r} for method 'aca'; expected layer indices "
                                   f"in 0..{L - 1} (one order for all clients or one per client)")
        order = pr.astype(int)
    chosen: list[list[int]] = [[] for _ in range(n)]
    stopped = np.zeros(n, dtype=bool)
    current = problem.evaluate(problem.plan(k, chosen))
    for step in range(order.shape[1]):
        trial = [sorted({*chosen[i], int(order[i, step])}) if not stopped[i] else chosen[i] for i in range(n)]
        for i in range(n):
            if not stopped[i] and not _fits(problem, i, int(k[i]), trial[i]):
                stopped[i] = True  # the budget is reached: CoCa stops here
                trial[i] = chosen[i]
        if stopped.all():
            break
        if not greedy:
            chosen = trial
            continue
        m = problem.evaluate(problem.plan(k, trial))
        floor_ok = m.accuracy >= problem.accuracy_floor
        slo_unmet = current.latency_s > problem.latency_slo_s
        accept = floor_ok & (m.latency_s < current.latency_s) & ((problem.goal == "latency") | slo_unmet)
        for i in np.flatnonzero(accept & ~stopped):
            chosen[i] = trial[i]
        current = problem.evaluate(problem.plan(k, chosen))
    plan = problem.plan(k, chosen)
    stats: dict[str, Any] = {"class_counts": k.tolist(), "priority": order.tolist()}
    return heuristic_result(problem, plan, "aca", t0, message=f"k = {k.tolist()} hot-spot classes ({share:.0%} "
                            f"share), {[len(a) for a in chosen]} layers", **stats)


__all__ = ["aca", "hot_spot_counts", "profiled_priority"]
