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
from edgeplan.solvers.result import Result, Status

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
    from edgeplan.solvers.api import solve

    t0 = time.perf_counter()
    milp, decode = cluster_milp(problem)
    rng = np.random.default_rng(ctx.seed)
    cands = [parallelsfl_plan(problem, ctx.seed)] + [chop(problem, rng.permutation(problem.n_workers))
                                                      for _ in range(START_TRIES)]
    ok = [p for p in cands if not problem.check(p)]
    start = min(ok, key=problem.objective) if ok else None
    options: dict = {"mip_rel_gap": GAP,
                     "highs_options": {"mip_feasibility_tolerance": FEASIBILITY, "mip_abs_gap": 0.0}}
    if start is not None:
        options["start"] = cluster_start(problem, start)
    res = solve(milp, "highs", time_limit=ctx.deadline.remaining(), seed=ctx.seed, verbose=ctx.verbose,
                options=options)
    atol = float(res.stats.get("objective_atol", 0.0))
    stats = {"milp_vars": milp.n_vars, "milp_rows": milp.n_rows, "nodes": res.stats.get("nodes"),
             "objective_atol": atol, "warm_start": None if start is None else problem.objective(start)}
    cands = [p for p in (decode(res.plan) if res.has_plan else None, start) if p is not None and not problem.check(p)]
    if not cands:
        st = Status.INFEASIBLE if res.status is Status.INFEASIBLE else Status.NO_SOLUTION
        return Result(plan=None, fun=None, status=st, limit=res.limit, message=res.message, method="cluster-milp",
                      solve_time=time.perf_counter() - t0, sense="min", stats=stats)
    plan = min(cands, key=problem.objective)
    fun = problem.objective(plan)
    bound = None if res.bound is None else min(float(res.bound), fun)
    proven = res.status is Status.OPTIMAL and bound is not None and fun - bound <= max(GAP * abs(fun), atol)
    return Result(plan=plan, fun=fun, status=Status.OPTIMAL if proven else Status.FEASIBLE, bound=bound,
                  limit=None if proven else res.limit, message=res.message, method="cluster-milp",
                  solve_time=time.perf_counter() - t0, sense="min", stats=stats)


__all__ = ["GAP", "solve_cluster_milp"]
