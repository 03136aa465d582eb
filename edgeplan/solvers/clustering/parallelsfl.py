r"""``parallelsfl``: ParallelSFL's clustering (Algorithm 1 as a re-implementation cites it).

1. k-means of the workers' label distributions into :math:`K = \max(1, \mathrm{round}(N/5))` sets;
2. while workers remain: the worker with the largest ingress in the largest remaining set becomes a top; then
   repeatedly, among the slowest remaining worker of every set, the one that lowers the cluster's
   :math:`D(\Phi_c \| \Phi_0)` most joins as a bottom, if Eq. 8 and 10 and :math:`n_{max}` allow it (below
   :math:`n_{min}` bottoms it joins even without lowering it); the cluster closes when none does;
3. a cluster left below :math:`n_{min}` bottoms is dissolved: each of its workers joins the cluster where it
   raises :math:`\sum_c U_c` least within the limits (that cluster's top chosen again);
4. pairwise swaps of bottom workers between clusters while :math:`\sum_c U_c` falls (two sweeps).

The local updating frequencies of the clusters are Eq. 17 (``eq17`` on
:meth:`~edgeplan.formulations.clustering.clients.ClientClustering.frequency_problem`).
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import within
from edgeplan.formulations.clustering.clients import ClientClustering, ClusterPlan, divergence
from edgeplan.solvers.clustering.grouping import best_top, kmeans_sets, swap_descent
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result

#: Sweeps of the swap fine-tuning.
SWAP_PASSES = 2


def _grow(problem: ClientClustering, top: int, sets: list[list[int]]) -> list[int]:
    """Step 2's inner loop: bottoms for ``top`` drawn from the slowest remaining worker of each set."""
    t, phi, link = problem.bottom_time_s, problem.distributions, problem.link_bps
    members: list[int] = []
    total, used, slowest = np.zeros(phi.shape[1]), 0.0, -np.inf
    current = np.inf
    while len(members) < problem.max_bottoms:
        heads = [s[0] for s in sets if s]
        if not heads:
            break
        h = np.array(heads)
        n = len(members) + 1
        kl = divergence((total + phi[h]) / n, problem.reference, problem.divergence)
        ok = within(used + link[h], problem.ingress_bps[top]) & within(n * problem.top_s[top],
                                                                       np.maximum(slowest, t[h]))
        if not ok.any():
            break
        kl = np.where(ok, kl, np.inf)
        k = int(np.argmin(kl))
        if len(members) >= problem.min_bottoms and kl[k] >= current:
            break
        w = int(h[k])
        members.append(w)
        total, used, slowest, current = total + phi[w], used + link[w], max(slowest, t[w]), float(kl[k])
        for s in sets:
            if s and s[0] == w:
                s.pop(0)
                break
    return members


def _rehome(problem: ClientClustering, groups: list[tuple[int, list[int]]], workers: list[int]) -> None:
    """Step 3: each worker joins the cluster where it raises the utility least within the limits, the cluster's
    top chosen again among its members (in place)."""
    t = problem.bottom_time_s
    for w in workers:
        best, arg = np.inf, None
        for g, (top, members) in enumerate(groups):
            everyone = np.array([top, *members, w])
            j = best_top(problem, everyone)
            m = everyone[everyone != j]
            if m.size > problem.max_bottoms or not (within(problem.link_bps[m].sum(), problem.ingress_bps[j])
                                                    and within(m.size * problem.top_s[j], t[m].max())):
                continue
            rows = np.zeros((2, problem.n_workers))
            rows[0, members] = 1.0
            rows[1, m] = 1.0
            u = problem.cluster_cost(rows)
            if u[1] - u[0] < best:
                best, arg = u[1] - u[0], (g, j, m)
        if arg is None:  # nothing fits: the plan will name the broken limit
            g = int(np.argmin([len(m) for _, m in groups]))
            groups[g][1].append(w)
        else:
            g, j, m = arg
            groups[g] = (int(j), [int(i) for i in m])


def parallelsfl_plan(problem: ClientClustering, seed: int | None = 0, passes: int = SWAP_PASSES) -> ClusterPlan:
    """Algorithm 1 (module docstring)."""
    t = problem.bottom_time_s
    sets = [sorted(s.tolist(), key=lambda i: -t[i]) for s in
            kmeans_sets(problem, max(1, round(problem.n_workers / 5)), seed)]
    groups: list[tuple[int, list[int]]] = []
    while any(sets):
        largest = max(sets, key=len)
        top = max(largest, key=lambda i: problem.ingress_bps[i])
        largest.remove(top)
        groups.append((top, _grow(problem, top, sets)))
    small = [g for g in groups if len(g[1]) < problem.min_bottoms]
    groups = [g for g in groups if len(g[1]) >= problem.min_bottoms]
    if not groups:  # no cluster reached its minimum: keep the largest and rehome the rest
        small.sort(key=lambda g: -len(g[1]))
        groups, small = small[:1], small[1:]
    _rehome(problem, groups, [w for top, m in small for w in (top, *m)])
    assignment = np.zeros(problem.n_workers, dtype=np.int64)
    for c, (top, members) in enumerate(groups):
        assignment[[top, *members]] = c
    plan = ClusterPlan(assignment, [top for top, _ in groups])
    return swap_descent(problem, plan, passes) if not problem.check(plan) else plan


@register("parallelsfl", problem=ClientClustering, kind="heuristic", priority=20)
def solve_parallelsfl(problem: ClientClustering, ctx: SolveContext) -> Result:
    """ParallelSFL: k-means label sets, greedy KL clustering under Eq. 8 and 10, pairwise swaps."""
    t0 = time.perf_counter()
    return heuristic_result(problem, parallelsfl_plan(problem, ctx.seed), "parallelsfl", t0)


__all__ = ["SWAP_PASSES", "parallelsfl_plan", "solve_parallelsfl"]
