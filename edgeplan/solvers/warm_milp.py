"""A family's MILP solved by HiGHS from a warm start, the way every family's exact MILP method ends.

:func:`solve_warm_milp` gives HiGHS the start's column values, a relative gap and a row and integrality tolerance,
then returns the best of HiGHS' decoded plan, the start and any other candidate that passes the family's
``check``, re-evaluated by the family (minimised or maximised by its ``sense``): ``optimal`` only when HiGHS
proved optimality and the plan meets the bound within the gap (or HiGHS' absolute objective tolerance); otherwise
``feasible`` with the bound, or ``infeasible`` / ``no_solution`` without a plan. The bound is HiGHS', tightened by
the method's own where it has one. HiGHS cannot be stopped before its setup and root LP are done: when the time
left is shorter than that is estimated to take (:func:`~edgeplan.solvers.backends._common.highs_start_fits`),
HiGHS is not run: the start comes back ``feasible`` with limit ``time`` and the method's bound (no start:
``no_solution``, or ``infeasible`` when the method's bound is infinite).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edgeplan.solvers.backends._common import highs_start_fits
from edgeplan.solvers.registry import SolveContext
from edgeplan.solvers.result import Limit, Result, Status


def solve_warm_milp(problem: Any, milp: Any, decode: Callable[[Any], Any], ctx: SolveContext, method: str, *,
                    start: Any = None, start_columns: Any = None, others: Iterable[Any] = (), gap: float = 1e-7,
                    feasibility: float = 1e-9, bound: float | None = None, t0: float | None = None,
                    **stats: Any) -> Result:
    """HiGHS on ``milp`` from ``start_columns``; the best checked plan of HiGHS', ``start`` and ``others``.

    Parameters
    ----------
    problem
        The family's problem (its ``check`` and ``objective`` judge every candidate; its ``sense``, "min" or
        "max", the best).
    milp, decode
        The MILP and the decoder of its column values into the family's plan.
    ctx, method
        The solve's context and the method's name.
    start, start_columns
        The warm-start plan and its column values (NaN where unknown), or None.
    others
        More candidate plans (e.g. the empty plan).
    gap, feasibility
        HiGHS' relative gap and its row and integrality tolerance.
    bound
        A valid bound of the method's own (a lower bound when minimising, an upper one when maximising), or None.
    t0
        When the method started (default now).
    stats
        Extra entries for ``Result.stats``.
    """
    from edgeplan.solvers.api import solve

    t0 = time.perf_counter() if t0 is None else t0
    if not highs_start_fits(milp, ctx.deadline.remaining()):
        info = {"milp_vars": milp.n_vars, "nodes": 0, "mip_rel_gap": gap, "highs_skipped": True,
                "warm_start": None if start is None else problem.objective(start), **stats}
        message = (f"the time limit leaves no room for HiGHS' uninterruptible start on {milp.nnz} nonzeros; "
                   + ("no plan is known" if start is None else "the warm start is returned"))
        return _best(problem, [start, *others], None, bound, Limit.TIME, message, method, t0, info, gap, 0.0)
    options: dict = {"mip_rel_gap": gap, "highs_options": {"mip_feasibility_tolerance": feasibility,
                                                           "mip_abs_gap": 0.0}}
    if start_columns is not None:
        options["start"] = start_columns
    res = solve(milp, "highs", time_limit=ctx.deadline.remaining(), seed=ctx.seed, verbose=ctx.verbose,
                options=options)
    atol = float(res.stats.get("objective_atol", 0.0))  # HiGHS' claims hold to its absolute objective tolerance
    info = {"milp_vars": milp.n_vars, "nodes": res.stats.get("nodes"), "mip_rel_gap": gap, "objective_atol": atol,
            "warm_start": None if start is None else problem.objective(start), **stats}
    return _best(problem, [decode(res.plan) if res.has_plan else None, start, *others], res, bound, res.limit,
                 res.message, method, t0, info, gap, atol)


def _best(problem: Any, plans: list[Any], res: Result | None, bound: float | None, limit: Limit | None,
          message: str, method: str, t0: float, info: dict[str, Any], gap: float, atol: float) -> Result:
    """The best of ``plans`` that passes ``check``, with the tightest of HiGHS' bound (from ``res``) and ``bound``;
    optimal only when HiGHS proved optimality and the plan meets the bound within ``gap`` (or ``atol``)."""
    cands = [p for p in plans if p is not None and not problem.check(p)]
    sign = 1.0 if problem.sense == "min" else -1.0  # compare as a minimisation
    if not cands:
        proof = bound is not None and sign * bound == np.inf  # the method's own bound: no plan at all
        st = Status.INFEASIBLE if proof or (res is not None and res.status is Status.INFEASIBLE) \
            else Status.NO_SOLUTION
        return Result(plan=None, fun=None, status=st, limit=None if st is Status.INFEASIBLE else limit,
                      message=message, method=method, solve_time=time.perf_counter() - t0, sense=problem.sense,
                      stats=info)
    plan = min(cands, key=lambda p: sign * problem.objective(p))
    fun = problem.objective(plan)
    known = [sign * float(b) for b in (None if res is None else res.bound, bound) if b is not None]
    best = None if not known else sign * min(max(known), sign * fun)  # the tightest, never past the plan
    proven = res is not None and res.status is Status.OPTIMAL and best is not None \
        and abs(fun - best) <= max(gap * abs(fun), atol)
    return Result(plan=plan, fun=fun, status=Status.OPTIMAL if proven else Status.FEASIBLE, bound=best,
                  limit=None if proven else limit, message=message, method=method,
                  solve_time=time.perf_counter() - t0, sense=problem.sense, stats=info)


__all__ = ["solve_warm_milp"]
