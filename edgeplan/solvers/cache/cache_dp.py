r"""Exact cache allocation for CoCa (``shared/papers/coca.md`` section 7): a layer DP and a stream replay.

``cache-dp`` (:class:`~edgeplan.formulations.cache.placement.CachePlacement`, separable hit model)
    For every client and every class count :math:`k` (the hot-spot classes are the top-:math:`k` prefix, so
    :math:`k` fixes them), a plan is a path :math:`-1 \to l_1 \to \dots \to l_m \to L` in the layer DAG whose
    arc costs depend only on the two ends (:meth:`CachePlacement.arc_tables`). Without side constraints the
    best path is the DP :math:`V(u) = \min_{v > u} [\,T(u, v) + V(v)\,]` of coca.md. With an accuracy floor,
    a latency SLO, a memory budget or a layer cap the DP keeps, at every node, the labels
    :math:`(T, \mathrm{Acc}, |A|, \text{memory})` of partial paths that no other label dominates
    (resource-constrained shortest path by label setting). Labels are cut when even the best completion
    (a backward DP over the unconstrained remaining latency and accuracy) cannot meet a constraint or beat
    the incumbent. This is exact: a dominated or cut label has no completion better than a kept one.
    Clients share no constraint, so the optimum is the per-client optimum.

``cache-replay`` (:class:`~edgeplan.formulations.cache.replay.CacheReplay`, the true lookup rule)
    Enumerates every layer subset with at most ``max_layers`` active layers (depth-first, in increasing layer
    order, so a subset's replay state extends its prefix's: accumulated scores, who is still alive, the
    latency and agreement of those who exited) and every class count at once: the top-1/top-2 of every
    prefix of the ranked scores come from two cumulative maxima
    (:math:`s_2(k) = \max_{j \le k} \min(x_j, s_1(j-1))`). Exact over the replayed stream; it costs
    :math:`\sum_{m \le m_{\max}} \binom{L}{m}` nodes of :math:`O(n C)` work per client.
"""

from __future__ import annotations

import math
import time

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.cache.placement import CachePlacement
from edgeplan.formulations.cache.replay import CacheReplay, prefix_hits
from edgeplan.solvers.registry import Options, SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: Feasibility tolerance used inside the searches (tighter than ``check``'s, so returned plans pass it).
SEARCH_TOL = 1e-9


def _tol(limit: float) -> float:
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
    tf, ts = _tol(floor), _tol(slo)
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


@register("cache-dp", problem=CachePlacement, kind="exact", priority=10)
def cache_dp(problem: CachePlacement, ctx: SolveContext) -> Result:
    """Exact layer DP per client and class count (label setting under floors, SLOs and budgets)."""
    Options(ctx.options, "cache-dp").done()
    t0 = time.perf_counter()
    lat_t, acc_t = problem.arc_tables()
    build = time.perf_counter() - t0
    n, C = problem.n_clients, problem.n_classes
    deadline = None if ctx.time_limit is None else time.perf_counter() + ctx.time_limit
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


class _Replayer:
    """Depth-first enumeration of the layer subsets of one client, every class count at once."""

    def __init__(self, problem: CacheReplay, i: int, cap: int, deadline: float | None) -> None:
        p = problem
        self.p, self.i, self.cap, self.deadline = p, i, cap, deadline
        self.X = p.ranked_scores(i)  # (L, n_i, C)
        idx = p.requests_of(i)
        self.n_req = idx.size
        self.refpos = np.argsort(p.class_rank[i])[p.reference[idx]]
        self.full_ok = p.full_agrees[idx]
        self.P = p.prefix_time_s()[i]
        C = p.n_classes
        self.ks = np.arange(C + 1, dtype=float)
        self.B, self.M = float(p.max_entries[i]), float(p.max_memory_bytes[i])
        self.floor, self.slo = float(p.accuracy_floor[i]), float(p.latency_slo_s[i])
        self.lat_goal = p.goal == "latency"
        self.best: float | None = None  # mean latency or accuracy
        self.best_plan: tuple[int, tuple[int, ...]] | None = None
        self.nodes = 0
        self.timed_out = False

    def consider(self, total_t: np.ndarray, total_a: np.ndarray, ok: np.ndarray, layers: tuple[int, ...]) -> None:
        t, a = total_t / self.n_req, total_a / self.n_req
        ok = ok & (a >= self.floor - _tol(self.floor)) & (t <= self.slo + _tol(self.slo))
        if not ok.any():
            return
        val = np.where(ok, t, np.inf) if self.lat_goal else np.where(ok, a, -np.inf)
        k = int(np.argmin(val) if self.lat_goal else np.argmax(val))
        v = float(val[k])
        if self.best is None or (v < self.best if self.lat_goal else v > self.best):
            self.best, self.best_plan = v, (k if layers else 0, layers)

    def run(self) -> None:
        C = self.p.n_classes
        full_t = np.full(C + 1, self.n_req * self.P[-1])
        full_a = np.full(C + 1, float(self.full_ok.sum()))
        self.consider(full_t, full_a, self.ks == 0, ())
        if self.cap > 0:
            alive = np.ones((self.n_req, C + 1), dtype=bool)
            self._visit(-1, (), np.zeros(self.X.shape[1:]), alive, np.zeros(C + 1), np.zeros(C + 1),
                        np.zeros(C + 1), np.zeros(C + 1))

    def _visit(self, last: int, layers: tuple[int, ...], acc: np.ndarray, alive: np.ndarray, sum_t: np.ndarray,
               agree: np.ndarray, paid: np.ndarray, mem: np.ndarray) -> None:
        p, i, ks, j = self.p, self.i, self.ks, len(layers)
        for l in range(last + 1, p.n_layers):
            if self.deadline is not None and time.perf_counter() > self.deadline:
                self.timed_out = True
                return
            self.nodes += 1
            paid2 = paid + p.lookup_fixed_s[i, l] + p.lookup_entry_s[i, l] * ks
            mem2 = mem + p.bytes_per_value * ks * p.dims[l]
            s = acc + p.score_base ** j * self.X[l] if p.rule == "coca" else self.X[l]
            hit, arg = prefix_hits(s, rule=p.rule, threshold=p.threshold, temperature=p.temperature)
            new = alive & hit
            sum_t2 = sum_t + new.sum(axis=0) * (self.P[l] + paid2)
            agree2 = agree + (new & (arg == self.refpos[:, None])).sum(axis=0)
            alive2 = alive & ~hit
            n_alive = alive2.sum(axis=0)
            within = (ks >= 1) & (ks * (j + 1) <= self.B) & (mem2 <= self.M * (1 + 1e-12))
            total_t = sum_t2 + n_alive * (self.P[-1] + paid2)
            total_a = agree2 + (alive2 & self.full_ok[:, None]).sum(axis=0)
            layers2 = (*layers, l)
            self.consider(total_t, total_a, within, layers2)
            if j + 1 >= self.cap or l == p.n_layers - 1:
                continue
            # a deeper subset needs room for one more layer and two classes
            grow = within & (ks >= 2) & (ks * (j + 2) <= self.B)
            if self.best is not None:
                if self.lat_goal:  # survivors pay at least up to the next layer, exits are final
                    grow &= (sum_t2 + n_alive * (self.P[l + 1] + paid2)) / self.n_req < self.best
                else:  # at best every survivor agrees
                    grow &= (agree2 + n_alive) / self.n_req > self.best
            if grow.any():
                self._visit(l, layers2, s if p.rule == "coca" else acc, alive2, sum_t2, agree2, paid2, mem2)
            if self.timed_out:
                return


@register("cache-replay", problem=CacheReplay, kind="exact", priority=10)
def cache_replay(problem: CacheReplay, ctx: SolveContext) -> Result:
    """Exact replay search: every layer subset up to the cap, every class count, the true lookup rule."""
    opts = Options(ctx.options, "cache-replay")
    max_active = opts.get("max_active", None, int)
    opts.done()
    cap = problem.layer_cap()
    restricted = max_active is not None and max_active < cap
    if max_active is not None:
        if max_active < 0:
            raise ProblemDataError(f"`options['max_active']` = {max_active}; expected a non-negative integer")
        cap = min(cap, max_active)
    t0 = time.perf_counter()
    deadline = None if ctx.time_limit is None else t0 + ctx.time_limit
    counts, layers, nodes = [], [], 0
    infeasible, timed_out = [], False
    for i in range(problem.n_clients):
        rp = _Replayer(problem, i, cap, deadline)
        rp.run()
        nodes += rp.nodes
        timed_out |= rp.timed_out
        if rp.best_plan is None:
            infeasible.append(i)
            counts.append(0)
            layers.append(())
        else:
            counts.append(rp.best_plan[0])
            layers.append(rp.best_plan[1])
        if timed_out:
            break
    solve = time.perf_counter() - t0
    stats = {"nodes": nodes, "max_active": cap}
    complete = len(counts) == problem.n_clients and not infeasible
    if timed_out and not complete:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, limit=Limit.TIME, solve_time=solve,
                      stats=stats, message="time limit before every client had a feasible plan")
    if not complete and restricted:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, limit=Limit.OTHER, solve_time=solve,
                      stats=stats, message=f"no feasible plan with at most {cap} active layers for client(s) "
                                           f"{infeasible} (`max_active`)")
    if not complete:
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, solve_time=solve, stats=stats,
                      message=f"no plan meets the floors, SLOs and budgets of client(s) {infeasible} on the stream")
    plan = problem.plan(counts, layers)
    fun = problem.objective(plan)
    if timed_out or restricted:
        why = "time limit" if timed_out else f"search limited to {cap} active layers (`max_active`)"
        return Result(plan=plan, fun=fun, status=Status.FEASIBLE, limit=Limit.TIME if timed_out else Limit.OTHER,
                      message=f"{why}: best plan found", solve_time=solve, stats=stats)
    return Result(plan=plan, fun=fun, bound=fun, status=Status.OPTIMAL, solve_time=solve, stats=stats,
                  message=f"exact over the stream: every subset of at most {cap} layers, every class count")


__all__ = ["SEARCH_TOL", "best_path", "cache_dp", "cache_replay", "pareto_mask"]
