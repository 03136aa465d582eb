r"""``cluster-dp``: ParallelSFL's clustering exactly, by dynamic programming over subsets of workers.

The objective is a sum over clusters, and a cluster's utility depends only on its bottom set :math:`B`
(:math:`W_c` and :math:`\Phi_c` do not involve the top; Eq. 8 and 10 decide which tops may serve it). So

.. math::

    g(S) = \min_{j \in S \text{ may top } S \setminus \{j\}} U(S \setminus \{j\}), \qquad
    f(S) = \min_{T \subseteq S,\ \min S \in T} g(T) + f(S \setminus T), \quad f(\emptyset) = 0,

and :math:`f(\{1..N\})` is the optimum for any divergence (KL included). :math:`U` of all :math:`2^N` bottom
sets is one array operation; the partition recursion visits :math:`O(3^N)` subset pairs, restricted to cluster
sizes :math:`n_{min}+1 .. n_{max}+1`. Instances of up to :data:`MAX_WORKERS` workers.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.errors import UnsupportedProblemError
from edgeplan.formulations.base import within
from edgeplan.formulations.clustering.clients import ClientClustering, ClusterPlan
from edgeplan.solvers.clustering.subsets import best_partition
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: The largest instance the method takes (3^16 / 2 subset pairs are a few seconds of Python).
MAX_WORKERS = 16


def _refuses(problem: ClientClustering) -> str | None:
    if problem.n_workers > MAX_WORKERS:
        return (f"method 'cluster-dp' takes up to {MAX_WORKERS} workers, this instance has {problem.n_workers}; "
                "use 'cluster-milp' (divergence 'l1') or 'parallelsfl'")
    return None


def cluster_table(problem: ClientClustering) -> tuple[np.ndarray, np.ndarray]:
    """``g`` and its top over every subset mask of workers (``inf`` / -1 where no top may serve the rest)."""
    N = problem.n_workers
    masks = np.arange(1 << N, dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(N)) & 1).astype(float)
    n = bits.sum(axis=1)
    util = problem.cluster_cost(bits)
    t = problem.bottom_time_s
    slowest = np.where(bits > 0, t, -np.inf).max(axis=1, initial=-np.inf)
    ingress = bits @ problem.link_bps
    sized = (n >= problem.min_bottoms) & (n <= problem.max_bottoms)
    g = np.full(1 << N, np.inf)
    top = np.full(1 << N, -1, dtype=np.int64)
    for j in range(N):
        ok = sized & ((masks >> j) & 1 == 0) & within(ingress, problem.ingress_bps[j]) \
            & within(n * problem.top_s[j], slowest)
        cand = np.where(ok, util, np.inf)
        s = masks | (1 << j)
        better = cand < g[s]
        g[s[better]] = cand[better]
        top[s[better]] = j
    return g, top


@register("cluster-dp", problem=ClientClustering, kind="exact", priority=10, refuses=_refuses)
def solve_cluster_dp(problem: ClientClustering, ctx: SolveContext) -> Result:
    """Exact (up to 16 workers): dynamic programming over subsets of workers, any divergence."""
    t0 = time.perf_counter()
    N = problem.n_workers
    if N > MAX_WORKERS:
        raise UnsupportedProblemError(_refuses(problem))
    g, top = cluster_table(problem)
    blocks = best_partition(g.tolist(), N, None, ctx.deadline.passed)
    if blocks is None:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, limit=Limit.TIME, method="cluster-dp",
                      message="the time limit cut the subset recursion short", sense="min",
                      solve_time=time.perf_counter() - t0)
    if blocks is False:
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, method="cluster-dp", sense="min",
                      message="no partition of the workers meets the cluster sizes, ingress and top-load limits",
                      solve_time=time.perf_counter() - t0)
    assignment = np.zeros(N, dtype=np.int64)
    for c, T in enumerate(blocks):
        assignment[[i for i in range(N) if T >> i & 1]] = c
    tops = [int(top[T]) for T in blocks]
    plan = ClusterPlan(assignment, tops)
    fun = problem.objective(plan)
    return Result(plan=plan, fun=fun, bound=fun, status=Status.OPTIMAL, method="cluster-dp", sense="min",
                  solve_time=time.perf_counter() - t0, stats={"subsets": 1 << N})


__all__ = ["MAX_WORKERS", "cluster_table", "solve_cluster_dp"]
