r"""``fedgcf``: graph clients clustered by structural similarity (FedGCF's clustering step), and a random baseline.

Average-linkage agglomeration on the dissimilarities: from singletons, merge the two clusters with the smallest mean
dissimilarity between their clients whose union fits :math:`n_{max}` (any two when no union fits), until :math:`K`
remain; then, one client at a time, the cheapest move out of a cluster above :math:`n_{max}` into one with room, and
into a cluster below :math:`n_{min}` from one above it; last, single moves of clients between clusters while the
within-cluster dissimilarity falls and the sizes hold. ``random-groups``: a seeded random order cut into :math:`K`
clusters of near-equal size.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.clustering.groups import GraphClustering, GroupPlan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def _agglomerate(problem: GraphClustering) -> list[list[int]]:
    d = problem.dissimilarity
    groups = [[i] for i in range(problem.n_clients)]
    while len(groups) > problem.n_clusters:
        best = []
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                fits = len(groups[a]) + len(groups[b]) <= problem.max_size
                best.append((not fits, float(d[np.ix_(groups[a], groups[b])].mean()), a, b))
        _, _, a, b = min(best)
        groups[a] = groups[a] + groups.pop(b)
    return groups


def _move_cost(d: np.ndarray, a: np.ndarray, i: int, to: int) -> float:
    """Change of the within-cluster dissimilarity when client ``i`` moves to cluster ``to``."""
    return float(d[i, a == to].sum() - d[i, (a == a[i]) & (np.arange(a.size) != i)].sum())


def fedgcf_plan(problem: GraphClustering) -> GroupPlan | None:
    """The clustering of the module docstring (None: the sizes admit no agglomeration to ``K`` clusters)."""
    groups = _agglomerate(problem)
    if len(groups) < problem.n_clusters:
        return None
    d, K = problem.dissimilarity, problem.n_clusters
    a = np.zeros(problem.n_clients, dtype=np.int64)
    for c, g in enumerate(groups):
        a[g] = c
    for _ in range(2 * problem.n_clients):  # repair: empty the clusters above the maximum, fill those below
        size = np.bincount(a, minlength=K)
        over, short = np.flatnonzero(size > problem.max_size), np.flatnonzero(size < problem.min_size)
        if over.size:
            room = np.flatnonzero(size < problem.max_size)
            if room.size == 0:
                return None
            i, c = min(((i, c) for i in np.flatnonzero(a == over[0]) for c in room),
                       key=lambda ic: _move_cost(d, a, ic[0], ic[1]))
        elif short.size:
            donors = np.flatnonzero(size[a] > problem.min_size)
            if donors.size == 0:
                return None
            i, c = min(donors, key=lambda j: _move_cost(d, a, j, short[0])), short[0]
        else:
            break
        a[i] = c
    improved = True
    while improved:  # single moves while they help
        improved = False
        size = np.bincount(a, minlength=K)
        for i in range(problem.n_clients):
            if size[a[i]] <= problem.min_size:
                continue
            costs = [(_move_cost(d, a, i, c), c) for c in range(K) if c != a[i] and size[c] < problem.max_size]
            if costs and min(costs)[0] < -1e-12:
                _, c = min(costs)
                size[a[i]] -= 1
                size[c] += 1
                a[i] = c
                improved = True
    return GroupPlan(a)


@register("fedgcf", problem=GraphClustering, kind="heuristic", priority=20)
def solve_fedgcf(problem: GraphClustering, ctx: SolveContext) -> Result:
    """FedGCF: average-linkage clustering of the clients' structures, repaired to the sizes, then single moves."""
    t0 = time.perf_counter()
    return heuristic_result(problem, fedgcf_plan(problem), "fedgcf", t0, dead_end="no agglomeration fits the sizes")


@register("random-groups", problem=GraphClustering, kind="heuristic", priority=200)
def solve_random_groups(problem: GraphClustering, ctx: SolveContext) -> Result:
    """Baseline: a seeded random order cut into K clusters of near-equal size."""
    t0 = time.perf_counter()
    order = np.random.default_rng(ctx.seed).permutation(problem.n_clients)
    a = np.zeros(problem.n_clients, dtype=np.int64)
    for c, g in enumerate(np.array_split(order, problem.n_clusters)):
        a[g] = c
    return heuristic_result(problem, GroupPlan(a), "random-groups", t0)


__all__ = ["fedgcf_plan", "solve_fedgcf", "solve_random_groups"]
