"""Baselines of CoCa's evaluation (``docs/models/cache.md``), each a method of its own.

``no-cache``
    Nothing cached: every request runs the whole model.
``all-layers``
    Every candidate layer active (evenly spaced ones when ``max_layers`` caps them), with the largest class
    count the entry and memory budgets allow; ``no_solution`` when that is below 2 (nothing could hit).
``static-topk``
    One fixed configuration for every client, never adapted to its stream: its top-``k`` classes (option,
    default :math:`\\lceil C/2 \\rceil`) at ``layers`` (option, default ``n_layers`` = 4 evenly spaced
    layers); over a budget, the shallowest layers go first (down to one), then :math:`k` is lowered (the
    2023 author code cached a fixed 40 classes at fixed layers).
``multi-exit``
    A multi-exit network with confidence exits [author code: ``MulExit``, exits at about 9/17/25/33 of 34
    blocks]: every class (or as many as the budgets allow) at ``n_exits`` (option, default 4) evenly spaced
    exits. Replayed or executed with ``rule="exit"`` it is the softmax-confidence early exit; on a problem
    calibrated for CoCa's rule it is CoCa's cache with all classes at those layers.

All four accept :class:`~edgeplan.formulations.cache.placement.CachePlacement` and
:class:`~edgeplan.formulations.cache.replay.CacheReplay`; a plan that breaks a floor or an SLO ends as every
heuristic's does (:func:`~edgeplan.solvers.result.heuristic_result`): ``no_solution`` naming the violations, the
plan kept in ``stats["rejected_plan"]`` (which is the point of a baseline: it is still executed as it is).
"""

from __future__ import annotations

import math
import time

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.cache.placement import CachePlacement, CacheSystem
from edgeplan.formulations.cache.replay import CacheReplay
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, Status, heuristic_result

PROBLEMS = (CachePlacement, CacheReplay)


def evenly_spaced(n_layers: int, count: int) -> list[int]:
    """``count`` layers spread over ``0..n_layers-1``, ending at the last one (``round((j+1) L / count) - 1``)."""
    count = max(0, min(count, n_layers))
    return sorted({round((j + 1) * n_layers / count) - 1 for j in range(count)}) if count else []


def max_classes(problem: CacheSystem, i: int, layers: list[int]) -> int:
    """The largest :math:`k \\le C` that fits client ``i``'s entry and memory budgets at ``layers``."""
    k = problem.n_classes
    if layers:
        if math.isfinite(problem.max_entries[i]):
            k = min(k, int(problem.max_entries[i] // len(layers)))
        per_class = problem.bytes_per_value * problem.dims[layers].sum()
        if math.isfinite(problem.max_memory_bytes[i]):
            k = min(k, int(problem.max_memory_bytes[i] * (1 + 1e-12) // per_class))
    return k


def _result(problem: CacheSystem, counts: list[int], layers: list[list[int]], t0: float, message: str,
            method: str) -> Result:
    return heuristic_result(problem, problem.plan(counts, layers), method, t0, message=message)


def _layer_count(value: int | None, key: str, default: int, method: str) -> int:
    value = default if value is None else value
    if value < 1:
        raise ProblemDataError(f"`options[{key!r}]` = {value!r} for method {method!r}; expected a positive integer")
    return value


@register("no-cache", problem=PROBLEMS, kind="heuristic", priority=90, options={})
def no_cache(problem: CacheSystem, ctx: SolveContext) -> Result:
    """Baseline: nothing cached, the whole model for every request."""
    t0 = time.perf_counter()
    return _result(problem, [0] * problem.n_clients, [[]] * problem.n_clients, t0, "no cache", "no-cache")


@register("all-layers", problem=PROBLEMS, kind="heuristic", priority=90, options={})
def all_layers(problem: CacheSystem, ctx: SolveContext) -> Result:
    """Baseline: every candidate layer active, as many hot-spot classes as the budgets allow."""
    t0 = time.perf_counter()
    layers = evenly_spaced(problem.n_layers, problem.layer_cap())
    counts = [max_classes(problem, i, layers) for i in range(problem.n_clients)]
    short = [i for i, k in enumerate(counts) if k < 2]
    if not layers or short:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, solve_time=time.perf_counter() - t0,
                      message=f"the budgets admit fewer than 2 classes at {len(layers)} layers for client(s) "
                              f"{short or list(range(problem.n_clients))}")
    return _result(problem, counts, [layers] * problem.n_clients, t0, f"k = {counts} at all {len(layers)} layers",
                   "all-layers")


def _trimmed(problem: CacheSystem, i: int, k: int, layers: list[int]) -> tuple[int, list[int]]:
    """Keep ``k``: drop the shallowest layers (down to one) until it fits client ``i``'s budgets, then lower k."""
    layers = layers[-problem.layer_cap():] if problem.layer_cap() else []
    while len(layers) > 1 and max_classes(problem, i, layers) < k:
        layers = layers[1:]
    return (min(k, max_classes(problem, i, layers)), layers) if layers else (0, [])


@register("static-topk", problem=PROBLEMS, kind="heuristic", priority=90,
          options={"k": (int, None), "layers": (None, None), "n_layers": (int, None)})
def static_topk(problem: CacheSystem, ctx: SolveContext) -> Result:
    """Baseline: the same k and the same layers for every client, never adapted."""
    k = ctx.options["k"]
    k = math.ceil(problem.n_classes / 2) if k is None else k
    layers = ctx.options["layers"]
    n_layers = _layer_count(ctx.options["n_layers"], "n_layers", min(4, problem.n_layers), "static-topk")
    if not 0 <= k <= problem.n_classes:
        raise ProblemDataError(f"`options['k']` = {k!r} for method 'static-topk'; expected 0..{problem.n_classes}")
    if layers is None:
        layers = evenly_spaced(problem.n_layers, n_layers)
    else:
        layers = sorted({int(v) for v in layers})
        if any(not 0 <= v < problem.n_layers for v in layers):
            raise ProblemDataError(f"`options['layers']` = {layers!r} for method 'static-topk'; expected layer "
                                   f"indices in 0..{problem.n_layers - 1}")
    t0 = time.perf_counter()
    fitted = [_trimmed(problem, i, k, list(layers)) for i in range(problem.n_clients)]
    return _result(problem, [f[0] for f in fitted], [f[1] for f in fitted], t0,
                   f"static top-{k} at layers {list(layers)} (trimmed to the budgets)", "static-topk")


@register("multi-exit", problem=PROBLEMS, kind="heuristic", priority=90, options={"n_exits": (int, 4)})
def multi_exit(problem: CacheSystem, ctx: SolveContext) -> Result:
    """Baseline: a multi-exit network, every class at evenly spaced confidence exits."""
    n_exits = _layer_count(ctx.options["n_exits"], "n_exits", 4, "multi-exit")
    t0 = time.perf_counter()
    exits = evenly_spaced(problem.n_layers, n_exits)
    fitted = [_trimmed(problem, i, problem.n_classes, exits) for i in range(problem.n_clients)]
    return _result(problem, [f[0] for f in fitted], [f[1] for f in fitted], t0,
                   f"{len(exits)} exits at {exits}, all classes (trimmed to the budgets)", "multi-exit")


__all__ = ["all_layers", "evenly_spaced", "max_classes", "multi_exit", "no_cache", "static_topk"]
