r"""``compression-milp``: a Caesar round exactly, by HiGHS on the round's MILP, warm-started with ``caesar``.

The MILP is :func:`~edgeplan.formulations.compression.milp.compression_milp` (a multiple-choice knapsack per
device for the two ratio levels, integer batch sizes, the barrier as a column). HiGHS gets the better feasible
plan of ``caesar`` and ``no-compression`` as its start, a relative gap of :data:`GAP` and a row and integrality
tolerance of :data:`FEASIBILITY`; the returned plan is the better of HiGHS' and the start, re-evaluated.
"""

from __future__ import annotations

import time

from edgeplan.formulations.compression.milp import compression_milp, compression_start
from edgeplan.formulations.compression.round import CompressionRound
from edgeplan.solvers.compression.caesar import caesar_plan, fixed_plan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, Status

#: Relative gap at which HiGHS stops and the result is called optimal.
GAP = 1e-7
#: HiGHS' integrality and row tolerance here.
FEASIBILITY = 1e-9


@register("compression-milp", problem=CompressionRound, kind="exact", priority=10)
def solve_compression_milp(problem: CompressionRound, ctx: SolveContext) -> Result:
    """Exact: the round's MILP by HiGHS, warm-started with caesar."""
    from edgeplan.solvers.api import solve

    t0 = time.perf_counter()
    milp, decode = compression_milp(problem)
    starts = [p for p in (caesar_plan(problem), fixed_plan(problem, 0)) if not problem.check(p)]
    start = min(starts, key=problem.objective) if starts else None
    options: dict = {"mip_rel_gap": GAP,
                     "highs_options": {"mip_feasibility_tolerance": FEASIBILITY, "mip_abs_gap": 0.0}}
    if start is not None:
        options["start"] = compression_start(problem, start)
    res = solve(milp, "highs", time_limit=ctx.deadline.remaining(), seed=ctx.seed, verbose=ctx.verbose,
                options=options)
    atol = float(res.stats.get("objective_atol", 0.0))
    stats = {"milp_vars": milp.n_vars, "nodes": res.stats.get("nodes"), "objective_atol": atol,
             "warm_start": None if start is None else problem.objective(start)}
    cands = [p for p in (decode(res.plan) if res.has_plan else None, start) if p is not None and not problem.check(p)]
    if not cands:
        st = Status.INFEASIBLE if res.status is Status.INFEASIBLE else Status.NO_SOLUTION
        return Result(plan=None, fun=None, status=st, limit=res.limit, message=res.message,
                      method="compression-milp", solve_time=time.perf_counter() - t0, sense="min", stats=stats)
    plan = min(cands, key=problem.objective)
    fun = problem.objective(plan)
    bound = None if res.bound is None else min(float(res.bound), fun)
    proven = res.status is Status.OPTIMAL and bound is not None and fun - bound <= max(GAP * abs(fun), atol)
    return Result(plan=plan, fun=fun, status=Status.OPTIMAL if proven else Status.FEASIBLE, bound=bound,
                  limit=None if proven else res.limit, message=res.message, method="compression-milp",
                  solve_time=time.perf_counter() - t0, sense="min", stats=stats)


__all__ = ["GAP", "solve_compression_milp"]
