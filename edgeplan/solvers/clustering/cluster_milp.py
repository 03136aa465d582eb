r"""``cluster-milp``: ParallelSFL's clustering with the L1 distance exactly, by HiGHS on the cluster MILP.

The MILP is :func:`~edgeplan.formulations.clustering.milp.cluster_milp` (cluster slots, size indicators for the
:math:`1/N_c` of the mixture and of the waiting time). HiGHS starts from the best feasible of the ``parallelsfl``
plan and :data:`START_TRIES` random cuts into equal clusters (a partial start: the binary columns), with a relative
gap of :data:`GAP`; the returned plan is the better of HiGHS' and the start, re-evaluated, and a time limit returns
it with HiGHS' bound and gap.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.clustering.clients import KL_FEATURE, ClientClustering
from edgeplan.formulations.clustering.milp import cluster_milp, cluster_start
from edgeplan.solvers.clustering.grouping import chop
from edgeplan.solvers.clustering.parallelsfl import parallelsfl_plan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result
from edgeplan.solvers.warm_milp import solve_warm_milp

#: Relative gap at which HiGHS stops and the result is called optimal.
GAP = 1e-7
#: Random cuts tried as warm starts besides ``parallelsfl`` (the best feasible one starts HiGHS).
START_TRIES = 20
#: HiGHS' integrality and row tolerance here (a binary at 1 - 1e-6 would let a cap pass by more than check's slack).
FEASIBILITY = 1e-9


@register("cluster-milp", problem=ClientClustering, kind="exact", priority=20, cannot=(KL_FEATURE,),
          hint="the MILP linearises the L1 distance: use 'cluster-dp' (up to 16 workers) or divergence='l1'")
def solve_cluster_milp(problem: ClientClustering, ctx: SolveContext) -> Result:
    """Exact (L1 distance): the cluster MILP by HiGHS, warm-started with parallelsfl."""
    t0 = time.perf_counter()
    milp, decode = cluster_milp(problem)
    rng = np.random.default_rng(ctx.seed)
    cands = [parallelsfl_plan(problem, ctx.seed)] + [chop(problem, rng.permutation(problem.n_workers))
                                                      for _ in range(START_TRIES)]
    ok = [p for p in cands if not problem.check(p)]
    start = min(ok, key=problem.objective) if ok else None
    return solve_warm_milp(problem, milp, decode, ctx, "cluster-milp", start=start,
                           start_columns=None if start is None else cluster_start(problem, start), gap=GAP,
                           feasibility=FEASIBILITY, t0=t0, milp_rows=milp.n_rows)


__all__ = ["GAP", "solve_cluster_milp"]
