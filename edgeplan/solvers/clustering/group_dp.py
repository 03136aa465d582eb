r"""``group-dp``: FedGCF's structural clustering exactly, by dynamic programming over subsets of clients.

The cost of a cluster :math:`T` is :math:`\sum_{i<j \in T} d_{ij}`, computed for all :math:`2^N` subsets in one array
operation; with :math:`f_0(\emptyset) = 0`,

.. math::

    f_k(S) = \min_{T \subseteq S,\ \min S \in T,\ n_{min} \le |T| \le n_{max}}
             \mathrm{cost}(T) + f_{k-1}(S \setminus T),

and :math:`f_K(\{1..N\})` is the optimum: :math:`O(K\, 3^N)` subset pairs, instances of up to :data:`MAX_CLIENTS`
clients.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.errors import UnsupportedProblemError
from edgeplan.formulations.clustering.groups import GraphClustering, GroupPlan
from edgeplan.solvers.clustering.subsets import best_partition
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: The largest instance the method takes.
MAX_CLIENTS = 13


def _refuses(problem: GraphClustering) -> str | None:
    if problem.n_clients > MAX_CLIENTS:
        return (f"method 'group-dp' takes up to {MAX_CLIENTS} clients, this instance has {problem.n_clients}; "
                "use 'highs' (the MILP) or 'fedgcf'")
    return None


@register("group-dp", problem=GraphClustering, kind="exact", priority=10, refuses=_refuses)
def solve_group_dp(problem: GraphClustering, ctx: SolveContext) -> Result:
    """Exact (up to 13 clients): dynamic programming over subsets with exactly K clusters."""
    t0 = time.perf_counter()
    if problem.n_clients > MAX_CLIENTS:
        raise UnsupportedProblemError(_refuses(problem))
    N, K = problem.n_clients, problem.n_clusters
    masks = np.arange(1 << N, dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(N)) & 1).astype(float)
    size = bits.sum(axis=1)
    cost = 0.5 * np.einsum("si,ij,sj->s", bits, problem.dissimilarity, bits)
    cost = np.where((size >= problem.min_size) & (size <= problem.max_size), cost, np.inf).tolist()
    blocks = best_partition(cost, N, K, ctx.deadline.passed)
    if blocks is None:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, limit=Limit.TIME, method="group-dp",
                      message="the time limit cut the subset recursion short", sense="min",
                      solve_time=time.perf_counter() - t0)
    if blocks is False:
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, method="group-dp", sense="min",
                      message=f"no split of {N} clients into {K} clusters of {problem.min_size}..{problem.max_size}",
                      solve_time=time.perf_counter() - t0)
    assignment = np.zeros(N, dtype=np.int64)
    for c, T in enumerate(blocks):
        assignment[[i for i in range(N) if T >> i & 1]] = c
    plan = GroupPlan(assignment)
    fun = problem.objective(plan)
    return Result(plan=plan, fun=fun, bound=fun, status=Status.OPTIMAL, method="group-dp", sense="min",
                  solve_time=time.perf_counter() - t0)


__all__ = ["MAX_CLIENTS", "solve_group_dp"]
