r"""``kv-sync-dp``: the least-latency FedAttn sync schedule within the error budget, exactly.

A schedule is a path :math:`-1 = s_0 < s_1 < \dots < s_m < L` over the blocks; the arc :math:`(s, t)` costs the
latency :math:`w(s, t)` and the error :math:`E(s, t)` of its local blocks
(:meth:`~edgeplan.formulations.sync.kv.KVSyncSchedule.segment_tables`). Minimising :math:`\sum w` with
:math:`\sum E \le \varepsilon` is a resource-constrained shortest path on a DAG, solved exactly by label setting:
each node keeps its Pareto front of (latency, error) labels. A label is dropped when another at the node has no
more of either, when its error exceeds the budget (check's slack), or when it cannot beat the incumbent: its
latency plus the shortest latency to the end, or plus the Lagrangian bound of :func:`lagrangian`, exceeds the
incumbent's. The incumbent is the best of ``fedattn-uniform``'s and ``fedattn-deep``'s schedules (syncing every
block, error 0, among them) and of the Lagrangian paths. Each node's labels are built, filtered and sorted in
numpy. Among plans of equal latency the one of least error is returned.

Worst case the fronts grow exponentially; at the time limit the incumbent is returned with the Lagrangian
(or shortest-path) bound.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, within
from edgeplan.formulations.sync.kv import KVSyncSchedule, SyncPlan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Deadline, Limit, Result, Status
from edgeplan.solvers.sync.fedattn import deep_plans, fastest_feasible, uniform_plans


def to_go(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least cost from node ``r`` (last sync ``r - 1``) to the end over arcs ``w`` (``(..., L+1, L+1)``, a
    stack of arc tables), and each node's next node on that path (``L + 1``: the end); shapes ``(..., L+1)``."""
    L = w.shape[-1] - 1
    h = np.empty(w.shape[:-1])
    nxt = np.empty(w.shape[:-1], dtype=np.int64)
    for r in range(L, -1, -1):
        via = np.concatenate([w[..., r, r:L] + h[..., r + 1:L + 1], w[..., r, L:]], axis=-1)
        nxt[..., r] = r + 1 + via.argmin(axis=-1)
        h[..., r] = via.min(axis=-1)
    return h, nxt


def lagrangian(w: np.ndarray, e: np.ndarray, budget: float, grid: int = 40, refine: int = 24
               ) -> tuple[float, np.ndarray, list[list[int]]]:
    r"""The best multiplier :math:`\lambda` on a geometric grid for the dual
    :math:`\max_\lambda \min_{paths} \sum (w + \lambda e) - \lambda\varepsilon`, its cost-to-go table
    :math:`g_\lambda` (a label with latency :math:`t` and error :math:`\epsilon` at node ``j`` cannot finish
    below :math:`t + g_\lambda(j) - \lambda(\varepsilon - \epsilon)`), and the sync blocks of every path it
    met (candidate incumbents: the grid's, :math:`\lambda = 0` included, and ``refine`` more evenly between the
    last multiplier whose path breaks the budget and the first whose path keeps it)."""
    L = w.shape[0] - 1
    finite = np.isfinite(w)
    if np.isfinite(budget):
        scale = max(float(w[finite].max()), 1e-300) / max(float(e[finite].max()), 1e-300)
        lams = np.concatenate([[0.0], scale * np.logspace(-4, 4, grid)])
    else:
        lams = np.zeros(1)
    g, nxt = to_go(np.where(finite, w[None] + lams[:, None, None] * np.where(finite, e, 0.0)[None], np.inf))
    best = int(np.argmax(g[:, 0] - lams * (budget if np.isfinite(budget) else 0.0)))
    ee = np.where(finite, e, 0.0)

    def path(nx: np.ndarray) -> tuple[list[int], float]:
        r, blocks, err = 0, [], 0.0
        while True:
            err += ee[r, nx[r] - 1]
            if nx[r] > L:
                return blocks, err
            blocks.append(int(nx[r]) - 1)
            r = int(nx[r])

    paths, errs = zip(*(path(nxt[k]) for k in range(lams.size)), strict=True)
    paths = list(paths)
    ok = [k for k in range(lams.size) if errs[k] <= budget]
    if ok and ok[0] > 0:  # refine between the last over-budget multiplier and the first within it
        fine = np.linspace(lams[ok[0] - 1], lams[ok[0]], refine + 2)[1:-1]
        nx = to_go(np.where(finite, w[None] + fine[:, None, None] * ee[None], np.inf))[1]
        paths += [path(nx[k])[0] for k in range(fine.size)]
    return float(lams[best]), g[best], paths


def pareto_paths(problem: KVSyncSchedule, tables: tuple[np.ndarray, np.ndarray], incumbent: float,
                 deadline: Deadline, dual: tuple[float, np.ndarray] | None = None
                 ) -> tuple[SyncPlan | None, float, int, bool]:
    """Label setting (module docstring) on the segment tables ``(w, e)``: the best plan strictly better than
    ``incumbent`` (None: none), its latency, the labels kept, and whether it finished. ``dual`` is
    :func:`lagrangian`'s multiplier and cost-to-go (computed when not given)."""
    w, e = tables
    L = problem.n_blocks
    budget = problem.error_budget
    h = to_go(w)[0]
    lam, g = dual if dual is not None else lagrangian(w, e, budget)[:2]
    cut = incumbent * (1 + 1e-12) + 1e-300
    cap = 1024
    lt, le = np.zeros(cap), np.zeros(cap)
    node, parent = np.zeros(cap, dtype=np.int64), np.full(cap, -1, dtype=np.int64)
    n = 1  # labels in use
    for j in range(1, L + 1):  # node j: the last sync is block j - 1 (arc column j - 1)
        if deadline.passed():
            return None, incumbent, n, False
        ct = lt[:n] + w[node[:n], j - 1]
        ce = le[:n] + e[node[:n], j - 1]
        room = budget - ce if np.isfinite(budget) else 0.0
        keep = np.flatnonzero(within(ce, budget, FEAS_TOL) & (ct + h[j] <= cut)
                              & (ct + g[j] - lam * room <= cut + 1e-9 * abs(cut)))
        if not keep.size:
            continue
        order = keep[np.lexsort((ce[keep], ct[keep]))]
        err = ce[order]
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(err)[:-1]])
        front = order[err < best_before]
        while n + front.size > cap:  # grow by doubling
            cap *= 2
            lt, le, node, parent = (np.resize(a, cap) for a in (lt, le, node, parent))
        lt[n:n + front.size], le[n:n + front.size] = ct[front], ce[front]
        node[n:n + front.size], parent[n:n + front.size] = j, front
        n += front.size
    lt, le, node, parent = lt[:n], le[:n], node[:n], parent[:n]
    ft, fe = lt + w[node, L], le + e[node, L]
    ok = np.flatnonzero(within(fe, budget, FEAS_TOL))
    if not ok.size:
        return None, incumbent, lt.size, True
    best = int(ok[np.lexsort((fe[ok], ft[ok]))[0]])  # least latency, then least error
    if ft[best] > incumbent:
        return None, incumbent, lt.size, True
    blocks, i = [], best
    while i > 0:
        blocks.append(int(node[i]) - 1)
        i = int(parent[i])
    return SyncPlan(sorted(blocks)), float(ft[best]), lt.size, True


@register("kv-sync-dp", problem=KVSyncSchedule, kind="exact", priority=10)
def solve_kv_sync_dp(problem: KVSyncSchedule, ctx: SolveContext) -> Result:
    """Exact: resource-constrained shortest path over the blocks (Pareto labels), warm-started by FedAttn."""
    t0 = time.perf_counter()
    tables = problem.segment_tables()
    lam, g, paths = lagrangian(*tables, problem.error_budget)
    start = fastest_feasible(problem, [*uniform_plans(problem), *deep_plans(problem),
                                       *(SyncPlan(b) for b in paths)], tables)
    assert start is not None  # syncing every block (H = 1, k = L) has error 0
    inc = problem.objective(start)
    plan, fun, labels, done = pareto_paths(problem, tables, inc, ctx.deadline, (lam, g))
    key = lambda q: (problem.objective(q), problem.evaluate(q).error)  # noqa: E731 -- ties go to less error
    plan = plan if plan is not None and key(plan) < key(start) else start
    fun = problem.objective(plan)
    stats = {"labels": labels}
    if done:
        return Result(plan=plan, fun=fun, status=Status.OPTIMAL, bound=fun, method="kv-sync-dp", sense="min",
                      message=f"Pareto label setting, {labels} labels", solve_time=time.perf_counter() - t0,
                      stats=stats)
    bound = min(float(g[0] - lam * problem.error_budget) if lam else float(g[0]), fun)  # g: lam's cost-to-go
    return Result(plan=plan, fun=fun, status=Status.FEASIBLE, bound=bound, limit=Limit.TIME, method="kv-sync-dp",
                  sense="min", message="time limit: the incumbent, with the Lagrangian bound",
                  solve_time=time.perf_counter() - t0, stats=stats)


__all__ = ["lagrangian", "pareto_paths", "solve_kv_sync_dp", "to_go"]
