"""Baselines for clustering split-FL workers.

* ``kmeans-only``: workers with similar labels together: the order of the k-means label sets (as many sets as
  clusters), cut into clusters of near-equal size;
* ``random-clusters``: a seeded random order cut into clusters of near-equal size;
* ``one-cluster`` (SplitFed-like): one top serves every other worker.

Each cluster's top is the member with the largest ingress that may serve the rest (Eq. 8, 10).
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.clustering.clients import ClientClustering
from edgeplan.solvers.clustering.grouping import chop, kmeans_sets, n_clusters, plan_of
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


@register("kmeans-only", problem=ClientClustering, kind="heuristic", priority=150)
def solve_kmeans_only(problem: ClientClustering, ctx: SolveContext) -> Result:
    """Baseline: k-means label sets in order, cut into equal clusters (similar workers together)."""
    t0 = time.perf_counter()
    order = np.concatenate(kmeans_sets(problem, n_clusters(problem), ctx.seed))
    return heuristic_result(problem, chop(problem, order), "kmeans-only", t0)


@register("random-clusters", problem=ClientClustering, kind="heuristic", priority=200)
def solve_random_clusters(problem: ClientClustering, ctx: SolveContext) -> Result:
    """Baseline: a seeded random order cut into equal clusters."""
    t0 = time.perf_counter()
    order = np.random.default_rng(ctx.seed).permutation(problem.n_workers)
    return heuristic_result(problem, chop(problem, order), "random-clusters", t0)


@register("one-cluster", problem=ClientClustering, kind="heuristic", priority=210)
def solve_one_cluster(problem: ClientClustering, ctx: SolveContext) -> Result:
    """Baseline (SplitFed-like): one top serves every other worker."""
    t0 = time.perf_counter()
    return heuristic_result(problem, plan_of(problem, [np.arange(problem.n_workers)]), "one-cluster", t0)


__all__ = ["solve_kmeans_only", "solve_one_cluster", "solve_random_clusters"]
