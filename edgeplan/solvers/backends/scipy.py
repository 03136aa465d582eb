"""``scipy.optimize.milp`` (HiGHS inside SciPy).

SciPy exposes no way to stop a running solve, so this backend relies on HiGHS' own
``time_limit`` (the time left after the reduction and build); overruns are reported in
``stats["overrun"]`` rather than cut by a watchdog. Ctrl-C raises ``KeyboardInterrupt`` at once; the
abandoned solve ends in the background at that limit
(:func:`~edgeplan.solvers.backends._common.interruptible`).
SciPy's status ``1`` (iteration or time limit) maps to limit ``time`` when a time limit was set
and the wall time reached it, else ``iteration``.
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
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

_STATUS = {0: Status.OPTIMAL, 2: Status.INFEASIBLE, 3: Status.UNBOUNDED}


@register("scipy", problem=MILP, kind="exact", requires=("scipy",), priority=30,
          keeps_time_limit=False, options={"mip_rel_gap": (float, 1e-4), "presolve": (bool, None)})
def solve_scipy(milp: MILP, ctx: SolveContext) -> Result:
    """``scipy.optimize.milp`` with HiGHS' time limit. Options: ``mip_rel_gap`` (1e-4), ``presolve`` (True/False;
    default: on unless the time limit leaves no room for it, :func:`~edgeplan.solvers.backends._common.presolve_fits`).
    """
    gap = ctx.options["mip_rel_gap"]
    presolve = ctx.options["presolve"]
    trivial = trivial_result(milp, "scipy")
    if trivial is not None:
        return trivial
    from scipy.optimize import Bounds, LinearConstraint
    from scipy.optimize import milp as scipy_milp

    sw = Stopwatch()
    sign = -1.0 if milp.sense == "max" else 1.0
    scale = objective_scale(milp.c)  # exact; lifts sub-tolerance costs above HiGHS' absolute tolerances
    with sw.lap("build"):
        constraints = [LinearConstraint(milp.A, milp.row_lower, milp.row_upper)] if milp.n_rows else []
        bounds = Bounds(milp.col_lower, milp.col_upper)
        if presolve is None:  # choose: HiGHS cannot interrupt its presolve, so the time limit comes first
            presolve = presolve_fits(milp, ctx.deadline.remaining())
        options = {"disp": ctx.verbose, "mip_rel_gap": gap, "presolve": presolve}
        if ctx.time_limit is not None:
            options["time_limit"] = ctx.deadline.remaining()

    def run(opts: dict[str, Any]) -> Any:
        return interruptible(lambda: scipy_milp(sign * scale * milp.c, integrality=milp.integrality.astype(int),
                                                bounds=bounds, constraints=constraints, options=opts), None)

    with sw.lap("solve"):
        res = run(options)
        retried = res.status == 4 and presolve  # HiGHS' presolve "Solve error" on an infeasible integer model
        if retried:  # (tests/milp/test_brute_force.py keeps one): repair by solving once more without presolve
            left = ctx.deadline.remaining()
            res = run({**options, "presolve": False} | ({} if left is None else {"time_limit": left}))
    limit = None
    bound = None
    if res.status in _STATUS:
        status = _STATUS[res.status]
    elif res.status == 1:
        status = Status.FEASIBLE if res.x is not None else Status.NO_SOLUTION
        hit_time = ctx.time_limit is not None and ctx.deadline.elapsed >= 0.95 * ctx.time_limit
        limit = Limit.TIME if hit_time else Limit.ITERATION
    else:
        status = Status.ERROR
    if "infeasible or unbounded" in str(res.message).lower():
        status = disambiguate(milp, ctx.deadline.remaining())
    dual = getattr(res, "mip_dual_bound", None)
    if dual is not None and np.isfinite(dual) and milp.n_integer:
        bound = sign * float(dual) / scale + milp.constant
    overrun = None if ctx.time_limit is None else max(0.0, ctx.deadline.elapsed - ctx.time_limit)
    stats = {"mip_rel_gap": gap, "objective_scale": scale, "presolve": presolve, "retried_without_presolve": retried,
             "nodes": getattr(res, "mip_node_count", None), "overrun": overrun}
    return make_result(milp, "scipy", status, res.x, bound=bound, limit=limit, message=str(res.message),
                       build_time=sw.times["build"], solve_time=sw.times["solve"], stats=stats)
