r"""``cache-dp``: exact cache allocation for CoCa's separable hit model by a layer DP with labels.

``cache-dp`` (:class:`~edgeplan.formulations.cache.placement.CachePlacement`, separable hit model)
    For every client and every class count :math:`k` (the hot-spot classes are the top-:math:`k` prefix, so
    :math:`k` fixes them), a plan is a path :math:`-1 \to l_1 \to \dots \to l_m \to L` in the layer DAG whose
    arc costs depend only on the two ends (:meth:`CachePlacement.arc_tables`). Without side constraints the
    best path is the DP :math:`V(u) = \min_{v > u} [\,T(u, v) + V(v)\,]` of CoCa (``docs/models/cache.md``).
    With an accuracy floor, a latency SLO, a memory budget or a layer cap the DP keeps, at every node, the labels
    :math:`(T, \mathrm{Acc}, |A|, \text{memory})` of partial paths that no other label dominates
    (resource-constrained shortest path by label setting). Labels are cut when even the best completion
    (a backward DP over the unconstrained remaining latency and accuracy) cannot meet a constraint or beat
    the incumbent. This is exact: a dominated or cut label has no completion better than a kept one.
    Clients share no constraint, so the optimum is the per-client optimum.

``cache-replay`` (the exact method on a recorded stream) is in :mod:`.cache_replay`.
"""

from __future__ import annotations

import math
import time

import numpy as np

from edgeplan.formulations.cache.placement import CachePlacement
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: Feasibility tolerance used inside the searches (tighter than ``check``'s, so returned plans pass it).
SEARCH_TOL = 1e-9


def tol_of(limit: float) -> float:
    """The search tolerance at a finite ``limit`` (relative, at least absolute); 0 for no limit."""
    return SEARCH_TOL * max(1.0, abs(limit)) if math.isfinite(limit) else 0.0


def pareto_mask(X: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Rows of ``X`` (smaller is better in every column) that no earlier-sorted row weakly dominates.

    Of equal rows one is kept. Two columns use a sort and a running minimum; more use blockwise comparisons.
    """
    n, d = X.shape
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    order = np.lexsort(X.T[::-1])
    Xs = X[order]
    if d == 1:
        keep[order[0]] = True
        return keep
    if d == 2:
        prev_best = np.minimum.accumulate(np.concatenate([[np.inf], Xs[:-1, 1]]))
        keep[order[Xs[:, 1] < prev_best]] = True
        return keep
    ok = np.ones(n, dtype=bool)
    for start in range(1, n, chunk):
        stop = min(n, start + chunk)
        dom = (Xs[None, :stop, :] <= Xs[start:stop, None, :]).all(axis=2)  # (j, i): i dominates j
        dom &= np.arange(stop)[None, :] < np.arange(start, stop)[:, None]
        ok[start:stop] = ~dom.any(axis=1)
    keep[order[ok]] = True
    return keep


def best_path(lat: np.ndarray, acc: np.ndarray, *, goal: str, floor: float = -math.inf, slo: float = math.inf,
              cap: int | None = None, node_mem: np.ndarray | None = None, mem_cap: float = math.inf,
              incumbent: float | None = None) -> tuple[float, float, list[int], int] | None:
    """The best source-to-sink path of one layer DAG under the side constraints, by label setting.

    Parameters
    ----------
    lat, acc
        ``(L+1, L+1)`` arc latency and accuracy, entry ``[a, b]`` for the arc from node :math:`a - 1` to
        node :math:`b` (``b = L``: the output), valid for ``b >= a``.
    goal
        ``"latency"`` (minimise the path latency) or ``"accuracy"`` (maximise the path accuracy).
    floor, slo
        The path must have accuracy ``>= floor`` and latency ``<= slo``.
    cap, node_mem, mem_cap
        At most ``cap`` layers; layer ``l`` costs ``node_mem[l]`` of a budget ``mem_cap``.
    incumbent
        An objective value to beat (cuts labels that cannot); ``None``: none.

    Returns
    -------
    ``(latency, accuracy, layers, n_labels)`` of the best feasible path, or ``None`` when no path beats
    ``incumbent`` (or none is feasible).
    """
    L = lat.shape[0] - 1
    cap = L if cap is None else min(cap, L)
    node_mem = np.zeros(L) if node_mem is None else node_mem
    lat_goal = goal == "latency"
    tf, ts = tol_of(floor), tol_of(slo)
    # backward bounds: best remaining latency / accuracy from node a to the output, constraints ignored
    lb_t, ub_a = np.zeros(L + 1), np.zeros(L + 1)
    for a in range(L, -1, -1):
        nxt_t = np.concatenate([lb_t[a + 1:], [0.0]])
        nxt_a = np.concatenate([ub_a[a + 1:], [0.0]])
        lb_t[a] = np.min(lat[a, a:] + nxt_t)
        ub_a[a] = np.max(acc[a, a:] + nxt_a)
    use_acc = not lat_goal or floor > 0
    use_lat = lat_goal or math.isfinite(slo)
    use_cnt = cap < L
    use_mem = math.isfinite(mem_cap)
    best = incumbent
    best_path_: tuple[float, float, int, int] | None = None  # (T, Acc, node, label)
    # labels per node a (a = 0: the input): arrays T, Acc, count, memory, parent node, parent label
    labels: list[dict[str, np.ndarray]] = [dict() for _ in range(L + 1)]
    labels[0] = {"T": np.zeros(1), "A": np.zeros(1), "c": np.zeros(1, int), "m": np.zeros(1),
                 "pa": np.full(1, -1), "pi": np.full(1, -1)}
    n_labels = 1

    def beats(t: np.ndarray, a_: np.ndarray) -> np.ndarray:
        if best is None:
            return np.ones(t.shape, dtype=bool)
        return t < best if lat_goal else a_ > best

    def complete(a: int) -> None:
        nonlocal best, best_path_
        lab = labels[a]
        t, a_ = lab["T"] + lat[a, L], lab["A"] + acc[a, L]
        ok = (a_ >= floor - tf) & (t <= slo + ts) & beats(t, a_)
        if ok.any():
            j = int(np.argmin(np.where(ok, t, np.inf)) if lat_goal else np.argmax(np.where(ok, a_, -np.inf)))
            best = float(t[j] if lat_goal else a_[j])
            best_path_ = (float(t[j]), float(a_[j]), a, j)

    complete(0)
    for b in range(L):  # build the labels of node a = b + 1 (layer b active)
        parts = []
        for a in range(b + 1):
            lab = labels[a]
            if not lab or lab["T"].size == 0:
                continue
            t, a_ = lab["T"] + lat[a, b], lab["A"] + acc[a, b]
            c, m = lab["c"] + 1, lab["m"] + node_mem[b]
            ok = (c <= cap) & (m <= mem_cap * (1 + 1e-12))
            ok &= (a_ + ub_a[b + 1] >= floor - tf) & (t + lb_t[b + 1] <= slo + ts)
            ok &= beats(t + lb_t[b + 1], a_ + ub_a[b + 1])
            if ok.any():
                idx = np.flatnonzero(ok)
                parts.append({"T": t[idx], "A": a_[idx], "c": c[idx], "m": m[idx], "pa": np.full(idx.size, a),
                              "pi": idx})
        if not parts:
            continue
        lab = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        cols = [lab["T"]] if use_lat else []
        cols += [-lab["A"]] if use_acc else []
        cols += [lab["c"].astype(float)] if use_cnt else []
        cols += [lab["m"]] if use_mem else []
        if cols:
            keep = pareto_mask(np.column_stack(cols))
            lab = {key: v[keep] for key, v in lab.items()}
        else:  # nothing matters but feasibility: any one label will do
            lab = {key: v[:1] for key, v in lab.items()}
        labels[b + 1] = lab
        n_labels += lab["T"].size
        complete(b + 1)
    if best_path_ is None:
        return None
    t, a_, node, j = best_path_
    layers = []
    while node > 0:
        layers.append(node - 1)
        node, j = int(labels[node]["pa"][j]), int(labels[node]["pi"][j])
    return t, a_, layers[::-1], n_labels


@register("cache-dp", problem=CachePlacement, kind="exact", priority=10, options={})
def cache_dp(problem: CachePlacement, ctx: SolveContext) -> Result:
    """Exact layer DP per client and class count (label setting under floors, SLOs and budgets)."""
    t0 = time.perf_counter()
    lat_t, acc_t = problem.arc_tables()
    build = time.perf_counter() - t0
    n, C = problem.n_clients, problem.n_classes
    deadline = None if ctx.time_limit is None else ctx.deadline.start + ctx.time_limit
    counts, layers = [0] * n, [()] * n
    found = [False] * n
    n_labels, timed_out = 0, False
    mem_per_class = problem.bytes_per_value * problem.dims
    for i in range(n):
        best: float | None = None
        for k in range(C + 1):
            if deadline is not None and time.perf_counter() > deadline:
                timed_out = True
                break
            cap = 0 if k == 0 else min(problem.layer_cap(), int(problem.max_entries[i] // k)
                                        if math.isfinite(problem.max_entries[i]) else problem.layer_cap())
            if k > 0 and cap == 0:
                continue  # the same as k = 0
            out = best_path(lat_t[i, k], acc_t[i, k], goal=problem.goal, floor=float(problem.accuracy_floor[i]),
                            slo=float(problem.latency_slo_s[i]), cap=cap, node_mem=k * mem_per_class,
                            mem_cap=float(problem.max_memory_bytes[i]), incumbent=best)
            if out is None:
                continue
            t, a, path, labs = out
            n_labels += labs
            best = t if problem.goal == "latency" else a
            counts[i], layers[i], found[i] = k, tuple(path), True
        if timed_out:
            break
    solve = time.perf_counter() - t0 - build
    stats = {"labels": n_labels}
    if timed_out:
        if all(found):
            plan = problem.plan(counts, layers)
            return Result(plan=plan, fun=problem.objective(plan), status=Status.FEASIBLE, limit=Limit.TIME,
                          message="time limit: best plan of the class counts searched so far",
                          build_time=build, solve_time=solve, stats=stats)
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, limit=Limit.TIME,
                      message="time limit before every client had a feasible plan", build_time=build,
                      solve_time=solve, stats=stats)
    if not all(found):
        bad = [i for i in range(n) if not found[i]]
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, build_time=build, solve_time=solve,
                      message=f"no plan meets the floors, SLOs and budgets of client(s) {bad}", stats=stats)
    plan = problem.plan(counts, layers)
    fun = problem.objective(plan)
    return Result(plan=plan, fun=fun, bound=fun, status=Status.OPTIMAL, build_time=build, solve_time=solve,
                  message="exact: every class count, all non-dominated layer paths", stats=stats)


__all__ = ["SEARCH_TOL", "best_path", "cache_dp", "pareto_mask", "tol_of"]
