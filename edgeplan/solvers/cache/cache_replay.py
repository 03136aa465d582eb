r"""``cache-replay``: exact cache allocation for CoCa on a recorded request stream (the true lookup rule).

Enumerates every layer subset with at most ``max_layers`` active layers (depth-first, in increasing layer
order, so a subset's replay state extends its prefix's: accumulated scores, who is still alive, the
latency and agreement of those who exited) and every class count at once: the top-1/top-2 of every
prefix of the ranked scores come from two cumulative maxima
(:math:`s_2(k) = \max_{j \le k} \min(x_j, s_1(j-1))`). Exact over the replayed stream; it costs
:math:`\sum_{m \le m_{\max}} \binom{L}{m}` nodes of :math:`O(n C)` work per client.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.cache.replay import CacheReplay, prefix_hits
from edgeplan.solvers.cache.cache_dp import tol_of
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status


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
        ok = ok & (a >= self.floor - tol_of(self.floor)) & (t <= self.slo + tol_of(self.slo))
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


@register("cache-replay", problem=CacheReplay, kind="exact", priority=10, options={"max_active": (int, None)})
def cache_replay(problem: CacheReplay, ctx: SolveContext) -> Result:
    """Exact replay search: every layer subset up to the cap, every class count, the true lookup rule."""
    max_active = ctx.options["max_active"]
    cap = problem.layer_cap()
    restricted = max_active is not None and max_active < cap
    if max_active is not None:
        if max_active < 0:
            raise ProblemDataError(f"`options['max_active']` = {max_active}; expected a non-negative integer")
        cap = min(cap, max_active)
    t0 = time.perf_counter()
    deadline = None if ctx.time_limit is None else ctx.deadline.start + ctx.time_limit
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


__all__ = ["cache_replay"]
