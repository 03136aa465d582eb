"""A Pyomo model built from the :class:`MILP`, solved with ``appsi_highs``.

For users who extend models in Pyomo: :func:`to_pyomo` returns the ``ConcreteModel`` (variables
``x[j]``, constraints ``rows[i]``, objective ``obj``) so it can be edited and solved with any
Pyomo solver. Pyomo builds one expression per row (about 0.1 s of overhead per solve and far
slower construction than ``highs``, see ``benchmarks/bench_milp_build.py``): not for inner loops.
The time limit is HiGHS' own (appsi does not expose an interrupt), set to the time left after the
build; the build checks the deadline every :data:`ROWS_PER_CHECK` rows and gives up with
``no_solution`` (limit ``time``) when it has passed. Overruns are reported in ``stats["overrun"]``;
Ctrl-C stops appsi's HiGHS (``cancelSolve``) and raises ``KeyboardInterrupt``.
appsi runs the same highspy as ``highs``, so the same guard options are set
(:func:`~edgeplan.solvers.backends.highs.guard_options`: the aggregator presolve rule off, no
absolute gap, and presolve off on the HiGHS versions whose MIP presolve is broken).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeplan.formulations.milp import MILP
from edgeplan.solvers.backends._common import (
    Stopwatch,
    disambiguate,
    interruptible,
    make_result,
    objective_scale,
    presolve_fits,
    trivial_result,
)
from edgeplan.solvers.backends.highs import guard_options
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Deadline, Limit, Result, Status

#: Seconds per column and nonzero that the Pyomo build and appsi's translation take (17 us measured on the
#: 349k-entry PipeEdge MILP, 4.7 us of it the build): a time limit shorter than this estimate returns at once.
BUILD_S_PER_ENTRY = 2e-5
#: The build looks at the deadline every this many rows.
ROWS_PER_CHECK = 256


class _OutOfTime(Exception):
    """The deadline passed while the Pyomo model was being built."""


def to_pyomo(milp: MILP, *, scale: float = 1.0, deadline: Deadline | None = None) -> Any:
    """The ``pyomo.environ.ConcreteModel`` of ``milp`` (linear expressions built from CSR rows).

    ``scale`` multiplies the objective (the backend passes a power of two, which is exact). With a
    ``deadline``, the build stops (private ``_OutOfTime``) once it has passed.
    """
    import pyomo.environ as pyo
    from pyomo.core.expr.numeric_expr import LinearExpression

    model = pyo.ConcreteModel(name=milp.name)
    n = milp.n_vars
    lo = [None if np.isinf(v) else float(v) for v in milp.col_lower]
    hi = [None if np.isinf(v) else float(v) for v in milp.col_upper]
    integ = milp.integrality.tolist()
    model.x = pyo.Var(range(n), domain=lambda _m, j: pyo.Integers if integ[j] else pyo.Reals,
                      bounds=lambda _m, j: (lo[j], hi[j]))
    x = [model.x[j] for j in range(n)]
    if deadline is not None and deadline.passed():
        raise _OutOfTime
    # Every column enters the objective (zero costs included) so that appsi passes unused columns too.
    cost = (milp.c * scale).tolist()
    model.obj = pyo.Objective(
        expr=LinearExpression([float(milp.constant * scale)] + [cost[j] * x[j] for j in range(n)]),
        sense=pyo.maximize if milp.sense == "max" else pyo.minimize)
    csr = milp.csr()
    indptr, indices, data = csr.indptr, csr.indices.tolist(), csr.data.tolist()
    rlo = [None if np.isinf(v) else float(v) for v in milp.row_lower]
    rhi = [None if np.isinf(v) else float(v) for v in milp.row_upper]

    def row(_m: Any, i: int) -> Any:
        if deadline is not None and (late or (i % ROWS_PER_CHECK == 0 and deadline.passed())):
            late.append(i)  # skip the rest (raising here would make Pyomo log an error)
        a, b = indptr[i], indptr[i + 1]
        if a == b or late:
            return pyo.Constraint.Skip
        body = LinearExpression([data[k] * x[indices[k]] for k in range(a, b)])
        return (rlo[i], body, rhi[i])

    late: list[int] = []
    model.rows = pyo.Constraint(range(milp.n_rows), rule=row)
    if late:
        raise _OutOfTime
    return model


def _cancel(opt: Any) -> None:
    """Stop appsi's HiGHS (appsi runs highspy with ``HandleKeyboardInterrupt``, whose flag ``cancelSolve`` sets)."""
    highs = getattr(opt, "_solver_model", None)
    if highs is not None:
        highs.cancelSolve()


@register("pyomo", problem=MILP, kind="exact", requires=("pyomo", "highspy"), install="pyomo highspy",
          imports=("pyomo.environ", "pyomo.contrib.appsi.solvers", "highspy"),
          priority=40, keeps_time_limit=False, options={"mip_rel_gap": (float, 1e-4)})
def solve_pyomo(milp: MILP, ctx: SolveContext) -> Result:
    """Pyomo ``ConcreteModel`` solved by ``appsi_highs``. Options: ``mip_rel_gap`` (1e-4)."""
    gap = ctx.options["mip_rel_gap"]
    trivial = trivial_result(milp, "pyomo")
    if trivial is not None:
        return trivial
    empty = np.flatnonzero(np.diff(milp.csr().indptr) == 0)
    excluded = empty[(milp.row_lower[empty] > 0) | (milp.row_upper[empty] < 0)]
    if excluded.size:  # Pyomo skips rows without terms, so say what they imply here
        return make_result(milp, "pyomo", Status.INFEASIBLE,
                           message=f"{milp.row_label(int(excluded[0]))} has no terms and its bounds exclude 0")
    from pyomo.contrib.appsi.base import TerminationCondition as TC
    from pyomo.contrib.appsi.solvers import Highs

    sw = Stopwatch()
    scale = objective_scale(milp.c)  # exact; lifts sub-tolerance costs above HiGHS' absolute tolerances
    estimate = BUILD_S_PER_ENTRY * (milp.n_vars + milp.nnz)
    left = ctx.deadline.remaining()
    why = None
    if left is not None and left < estimate:
        why = (f"the time limit leaves {left:.3g} s, less than the Pyomo build and translation of this model needs "
               f"(about {estimate:.3g} s for {milp.n_vars} columns and {milp.nnz} nonzeros): not started")
    else:
        try:
            with sw.lap("build"):
                model = to_pyomo(milp, scale=scale, deadline=ctx.deadline)
        except _OutOfTime:
            why = "the time limit passed while the Pyomo model was being built"
    if why is not None:
        return make_result(milp, "pyomo", Status.NO_SOLUTION, limit=Limit.TIME, build_time=sw.times.get("build", 0.0),
                           message=why, stats={"overrun": max(0.0, ctx.deadline.elapsed - (ctx.time_limit or 0.0))})
    opt = Highs()
    opt.config.load_solution = False
    opt.config.stream_solver = bool(ctx.verbose)
    opt.config.mip_gap = gap
    opt.highs_options = guard_options()
    for check in ("check_for_new_or_removed_constraints", "check_for_new_or_removed_vars",
                  "check_for_new_or_removed_params", "check_for_new_objective", "update_constraints", "update_vars",
                  "update_params", "update_named_expressions", "update_objective"):
        setattr(opt.update_config, check, False)  # the instance is set once, below: solve() need not re-scan it
    with sw.lap("build"):
        interruptible(lambda: opt.set_instance(model), None)
    left = ctx.deadline.remaining()
    if not presolve_fits(milp, left):  # HiGHS cannot interrupt its presolve: the time limit comes first
        opt.highs_options = {**opt.highs_options, "presolve": "off"}
    if left is not None:
        opt.config.time_limit = left
    with sw.lap("solve"):
        res = interruptible(lambda: opt.solve(model), lambda: _cancel(opt))
    retried = res.termination_condition == TC.error and opt.highs_options.get("presolve") != "off"
    if retried:
        # HiGHS' MIP presolve answers "Solve error" on some tiny infeasible integer models (found by hypothesis);
        # without presolve it proves them infeasible, as the highs and scipy backends do on the same answer
        opt.highs_options = {**opt.highs_options, "presolve": "off"}
        with sw.lap("solve"):
            res = interruptible(lambda: opt.solve(model), lambda: _cancel(opt))
    tc = res.termination_condition
    limit = None
    has_x = res.best_feasible_objective is not None
    status = {TC.optimal: Status.OPTIMAL, TC.infeasible: Status.INFEASIBLE, TC.unbounded: Status.UNBOUNDED,
              TC.infeasibleOrUnbounded: Status.INFEASIBLE_OR_UNBOUNDED}.get(tc)
    if status is None:
        if tc in (TC.maxTimeLimit, TC.maxIterations, TC.interrupted, TC.objectiveLimit):
            status = Status.FEASIBLE if has_x else Status.NO_SOLUTION
            limit = {TC.maxTimeLimit: Limit.TIME, TC.maxIterations: Limit.ITERATION,
                     TC.interrupted: Limit.INTERRUPT}.get(tc, Limit.OTHER)
        else:
            status = Status.ERROR
    if status is Status.INFEASIBLE_OR_UNBOUNDED:
        status = disambiguate(milp, ctx.deadline.remaining())
    x = None
    if has_x and status in (Status.OPTIMAL, Status.FEASIBLE):
        values = res.solution_loader.get_primals()
        x = np.array([values[model.x[j]] for j in range(milp.n_vars)], dtype=float)
    bound = res.best_objective_bound
    if milp.is_lp and status is Status.OPTIMAL:
        bound = res.best_feasible_objective
    bound = None if bound is None else bound / scale
    overrun = None if ctx.time_limit is None else max(0.0, ctx.deadline.elapsed - ctx.time_limit)
    return make_result(milp, "pyomo", status, x, bound=bound, limit=limit, message=str(tc.name),
                       build_time=sw.times["build"], solve_time=sw.times["solve"],
                       stats={"mip_rel_gap": gap, "overrun": overrun, "objective_scale": scale,
                              "presolve": opt.highs_options.get("presolve", "choose"),
                              "retried_without_presolve": retried})
