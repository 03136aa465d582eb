r"""OR-Tools CP-SAT, an exact integer solver, with an explicit integer scaling of the model.

CP-SAT takes integer variables and integer coefficients only. The model is mapped as follows.

* **Rows.** Row :math:`i` is multiplied by :math:`s_i = 10^{d_i}`, the smallest power of ten
  (:math:`d_i \le` ``scale_digits``) that makes every coefficient an integer within 1e-9. Its
  *quantum* is :math:`1/s_i`. Bounds are then rounded inwards (:math:`\lceil s_i \ell_i\rceil`,
  :math:`\lfloor s_i u_i\rfloor`), which is exact because every activity is an integer. When no
  :math:`d_i` is exact, coefficients are rounded at ``scale_digits``; a model whose largest
  relative coefficient change exceeds ``scale_tol`` is refused with the offending row.
* **Objective.** Scaled the same way (``stats["objective_quantum"]``); the reported objective is
  recomputed from the original costs, and the bound is divided back.
* **Unbounded integer columns** get the artificial box :math:`\pm 2^{30}` that CP-SAT needs. A
  solution on that box is checked against the LP relaxation (``scipy.optimize.linprog``): if the
  relaxation is unbounded the MILP is unbounded (Meyer's theorem for rational data, since a
  feasible integer point is in hand); otherwise the plan is returned as ``feasible`` without a
  bound.
* **Continuous columns** are refused unless ``continuous_quantum`` :math:`q` is given; then
  :math:`x_j = q k_j` with integer :math:`k_j`. The result is optimal only for that grid, so it
  is reported as ``feasible`` with no bound.
* **Capability probe.** :func:`refusal` says, without building the CP-SAT model, whether the
  default options refuse a model (continuous columns, inexact scaling); ``available_methods``
  leaves ``cp-sat`` out for such models.

The time limit is CP-SAT's ``max_time_in_seconds`` plus our watchdog (``stop_search``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from edgeplan.errors import ProblemDataError, SolverUnavailableError, UnsupportedProblemError
from edgeplan.formulations.milp import CONTINUOUS_COLUMNS, MILP
from edgeplan.solvers.backends._common import (
    Stopwatch,
    interruptible,
    lp_relaxation_unbounded,
    make_result,
    trivial_result,
    watchdog,
)
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: The artificial box on unbounded integer columns.
CLAMP = 2**30
#: Coefficients within this (relative, floor 1) of an integer after scaling count as exact.
EXACT_TOL = 1e-9
#: Largest ``num_workers`` and ``scale_digits`` taken (CP-SAT's parameters are 32-bit; 10^15 is float's last exact
#: power of ten).
MAX_WORKERS = 1024
MAX_SCALE_DIGITS = 15
#: Default options ``scale_digits`` and ``scale_tol``.
SCALE_DIGITS = 6
SCALE_TOL = 1e-9


def row_scales(csr: sp.csr_array, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row decimal exponent ``d_i`` and the largest relative coefficient change at it.

    Vectorized over rows: for each candidate ``d`` the rows still unresolved are tested at once.
    """
    m = csr.shape[0]
    d = np.full(m, digits, dtype=int)
    unresolved = np.ones(m, dtype=bool)
    row_of = np.repeat(np.arange(m), np.diff(csr.indptr))
    data = csr.data
    for k in range(digits + 1):
        scaled = data * 10.0**k
        err = np.abs(scaled - np.round(scaled)) > EXACT_TOL * np.maximum(1.0, np.abs(scaled))
        bad_rows = np.zeros(m, dtype=bool)
        bad_rows[row_of[err]] = True
        fit = unresolved & ~bad_rows
        d[fit] = k
        unresolved &= bad_rows
        if not unresolved.any():
            break
    s = 10.0 ** d[row_of]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(np.round(data * s) / s - data) / np.abs(data)
    change = np.zeros(m)
    np.maximum.at(change, row_of, np.nan_to_num(rel))
    return d, change


def refusal(milp: MILP) -> str | None:
    """Why CP-SAT refuses an integer ``milp`` with default options (inexact scaling), else None (continuous
    columns are a declared capability: ``cannot=(CONTINUOUS_COLUMNS,)``)."""
    if not milp.n_vars or not milp.integrality.all():
        return None
    try:
        _scaled_model(milp, np.ones(milp.n_vars), SCALE_DIGITS, SCALE_TOL)
    except UnsupportedProblemError as exc:
        return str(exc)
    return None


def _column_domains(milp: MILP, q: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer domains of the CP-SAT columns, the value step of each, and which are clamped."""
    step = np.where(milp.integrality, 1.0, q if q else 1.0)
    lo = np.ceil(milp.col_lower / step - EXACT_TOL)
    hi = np.floor(milp.col_upper / step + EXACT_TOL)
    clamped = ~np.isfinite(lo) | ~np.isfinite(hi) | (np.abs(lo) > CLAMP) | (np.abs(hi) > CLAMP)
    lo = np.clip(np.nan_to_num(lo, neginf=-CLAMP), -CLAMP, CLAMP)
    hi = np.clip(np.nan_to_num(hi, posinf=CLAMP), -CLAMP, CLAMP)
    return lo.astype(np.int64), hi.astype(np.int64), step, clamped


def _scaled_model(milp: MILP, step: np.ndarray, digits: int, tol: float) -> dict[str, Any]:
    A = sp.csr_array(milp.A @ sp.diags_array(step))
    d, change = row_scales(A, digits)
    worst = int(np.argmax(change)) if len(change) else -1
    if worst >= 0 and change[worst] > tol:
        raise UnsupportedProblemError(
            f"method 'cp-sat': scaling {milp.row_label(worst)} to integers at quantum 1e-{digits} changes a "
            f"coefficient by {change[worst]:.3g} (relative) > `scale_tol` = {tol:g}; raise options "
            "'scale_digits' or 'scale_tol', or use 'highs'")
    s = 10.0**d
    coefs = np.round(A.data * np.repeat(s, np.diff(A.indptr)))
    lo = milp.row_lower * s
    hi = milp.row_upper * s
    lo = np.where(np.isfinite(lo), np.ceil(lo - EXACT_TOL * np.maximum(1.0, np.abs(lo))), -np.inf)
    hi = np.where(np.isfinite(hi), np.floor(hi + EXACT_TOL * np.maximum(1.0, np.abs(hi))), np.inf)
    c = milp.c * step
    (dobj,), (cchange,) = row_scales(sp.csr_array(c.reshape(1, -1)), digits)
    if cchange > tol:
        raise UnsupportedProblemError(
            f"method 'cp-sat': scaling the objective to integers at quantum 1e-{digits} changes a cost by "
            f"{cchange:.3g} (relative) > `scale_tol` = {tol:g}; raise options 'scale_digits' or 'scale_tol'")
    sobj = 10.0**dobj
    return {"A": A, "coefs": coefs, "lo": lo, "hi": hi, "c": np.round(c * sobj), "sobj": sobj, "row_digits": d,
            "max_coef_rel_change": float(max(change.max(initial=0.0), cchange))}


def _build(milp: MILP, dom: tuple, scaled: dict[str, Any]) -> Any:
    cp_model = library()

    model = cp_model.CpModel()
    proto = model.proto
    lo, hi = dom[0].tolist(), dom[1].tolist()
    for j in range(milp.n_vars):
        proto.variables.add().domain.extend([lo[j], hi[j]])
    A = scaled["A"]
    indptr, indices, coefs = A.indptr, A.indices.tolist(), scaled["coefs"].astype(np.int64).tolist()
    rlo, rhi = scaled["lo"], scaled["hi"]
    int_min, int_max = -(2**62), 2**62
    for i in range(milp.n_rows):
        a, b = indptr[i], indptr[i + 1]
        ct = proto.constraints.add()
        ct.linear.vars.extend(indices[a:b])
        ct.linear.coeffs.extend(coefs[a:b])
        ct.linear.domain.extend([int(rlo[i]) if np.isfinite(rlo[i]) else int_min,
                                 int(rhi[i]) if np.isfinite(rhi[i]) else int_max])
    nz = np.flatnonzero(scaled["c"])
    proto.objective.vars.extend(nz.tolist())
    sign = -1 if milp.sense == "max" else 1
    proto.objective.coeffs.extend((sign * scaled["c"][nz]).astype(np.int64).tolist())
    proto.objective.scaling_factor = float(sign)
    return model


def _empty_domain(milp: MILP, what: str, build_time: float) -> Result:
    """Rounding left ``what`` with no integer value: infeasible (on a continuous grid: no solution)."""
    gridded = not milp.integrality.all()
    return make_result(milp, "cp-sat", Status.NO_SOLUTION if gridded else Status.INFEASIBLE,
                       limit=Limit.OTHER if gridded else None,
                       message=f"no {'grid point' if gridded else 'integer point'} satisfies {what}",
                       build_time=build_time)


def library() -> Any:
    """The ``ortools.sat.python.cp_model`` module (:class:`~edgeplan.errors.SolverUnavailableError` when missing)."""
    try:
        from ortools.sat.python import cp_model
    except ImportError as exc:
        raise SolverUnavailableError("this method needs OR-Tools; install it with `pip install ortools`") from exc
    return cp_model


def run(model: Any, *, time_limit: float | None, seed: int | None, workers: int | None,
        verbose: bool) -> tuple[int, Any, bool]:
    """Solve a ``CpModel`` with the common options (time limit under our watchdog too, seed, workers, log).

    Returns ``(status code, solver, watchdog fired)``; every CP-SAT method runs its model here.
    """
    cp_model = library()
    solver = cp_model.CpSolver()
    solver.parameters.log_search_progress = bool(verbose)
    if workers is not None:
        if workers > MAX_WORKERS:
            raise ProblemDataError(f"`options['num_workers']` = {workers!r}; expected at most {MAX_WORKERS}")
        solver.parameters.num_workers = int(workers)
    if seed is not None:
        solver.parameters.random_seed = int(seed) % 2147483647
    if time_limit is not None:
        solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.catch_sigint_signal = False  # Ctrl-C is ours: it raises KeyboardInterrupt (interruptible)
    with watchdog(time_limit, solver.stop_search) as dog:
        code = interruptible(lambda: solver.solve(model), solver.stop_search)
    return code, solver, dog.fired


@register("cp-sat", problem=MILP, kind="exact", requires=("ortools",), install="ortools", priority=20,
          imports=("ortools.sat.python.cp_model",),
          refuses=refusal, cannot=(CONTINUOUS_COLUMNS,), lifted_by={CONTINUOUS_COLUMNS: "continuous_quantum"},
          hint="it needs integer variables: pass options={'continuous_quantum': q} to put them on a grid of step q "
               "(then the result is feasible, not proven optimal), or use 'highs', 'scipy' or 'pyomo'",
          options={"num_workers": (int, None), "scale_digits": (int, SCALE_DIGITS), "scale_tol": (float, SCALE_TOL),
                   "continuous_quantum": (float, None)})
def solve_cpsat(milp: MILP, ctx: SolveContext) -> Result:
    """OR-Tools CP-SAT on the integer-scaled model (quanta reported in ``stats``).

    Options: ``num_workers`` (CP-SAT default), ``scale_digits`` (6), ``scale_tol`` (1e-9),
    ``continuous_quantum`` (None: continuous columns are refused).
    """
    workers = ctx.options["num_workers"]
    digits = ctx.options["scale_digits"]
    tol = ctx.options["scale_tol"]
    q = ctx.options["continuous_quantum"]
    if digits > MAX_SCALE_DIGITS:
        raise ProblemDataError(f"`options['scale_digits']` = {digits!r} for method 'cp-sat'; expected at most "
                               f"{MAX_SCALE_DIGITS}")
    if q is not None and not q > 0:
        raise ProblemDataError(f"`options['continuous_quantum']` = {q!r} for method 'cp-sat'; expected a positive "
                               "grid step")
    trivial = trivial_result(milp, "cp-sat")
    if trivial is not None:
        return trivial
    cp_model = library()

    sw = Stopwatch()
    with sw.lap("build"):
        dom = _column_domains(milp, q)
    empty = np.flatnonzero(dom[0] > dom[1])
    if empty.size:
        return _empty_domain(milp, f"the bounds of {milp.col_label(int(empty[0]))}", sw.times["build"])
    with sw.lap("build"):
        scaled = _scaled_model(milp, dom[2], digits, tol)
    empty = np.flatnonzero(scaled["lo"] > scaled["hi"])
    if empty.size:
        return _empty_domain(milp, f"{milp.row_label(int(empty[0]))} (its bounds hold no integer activity)",
                             sw.times["build"])
    with sw.lap("build"):
        model = _build(milp, dom, scaled)
    with sw.lap("solve"):
        code, solver, fired = run(model, time_limit=ctx.deadline.remaining(), seed=ctx.seed, workers=workers,
                                  verbose=ctx.verbose)
    response = solver.response_proto
    x = np.asarray(response.solution, dtype=float) * dom[2] if len(response.solution) else None
    bound = None
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        bound = solver.best_objective_bound / scaled["sobj"] + milp.constant
    limit = None
    message = solver.status_name(code)
    gridded = not milp.integrality.all()
    if code == cp_model.OPTIMAL:
        status = Status.OPTIMAL
    elif code == cp_model.FEASIBLE:
        status = Status.FEASIBLE
        limit = Limit.TIME if ctx.time_limit is not None else Limit.OTHER
    elif code == cp_model.INFEASIBLE:
        status = Status.INFEASIBLE
        if dom[3].any() or gridded:
            status, limit = Status.NO_SOLUTION, Limit.OTHER
            message += " within the artificial box / continuous grid; the original model may still be feasible"
    elif code == cp_model.UNKNOWN:
        status, limit = Status.NO_SOLUTION, Limit.TIME if ctx.time_limit is not None else Limit.OTHER
    else:
        status = Status.ERROR
        message += ": " + model.validate()
    if x is not None and dom[3].any() and status in (Status.OPTIMAL, Status.FEASIBLE):
        at_box = dom[3] & (np.abs(x / dom[2]) >= CLAMP - 1)
        if at_box.any():
            if lp_relaxation_unbounded(milp, ctx.deadline.remaining()):
                status, x, bound, limit = Status.UNBOUNDED, None, None, None
                message += "; a column reached the artificial box and the LP relaxation is unbounded"
            else:
                status, bound = Status.FEASIBLE, None
                limit = limit or Limit.OTHER
                message += f"; a column sits on the artificial box ±{CLAMP}, so optimality is not proven"
    if gridded and status is Status.OPTIMAL:
        status, bound, limit = Status.FEASIBLE, None, Limit.OTHER
        message += f"; optimal for continuous columns on the grid q={q:g}, not proven for the original model"
    stats = {"objective_quantum": 1.0 / scaled["sobj"],
             "row_quantum_min": float(10.0 ** -scaled["row_digits"].max(initial=0)),
             "row_quantum_max": float(10.0 ** -scaled["row_digits"].min(initial=0)),
             "max_coef_rel_change": scaled["max_coef_rel_change"], "continuous_quantum": q,
             "clamped_columns": int(dom[3].sum()), "watchdog_fired": fired,
             "branches": int(solver.num_branches), "conflicts": int(solver.num_conflicts)}
    if fired and limit is None and status in (Status.FEASIBLE, Status.NO_SOLUTION):
        limit = Limit.TIME
    if bound is not None and not math.isfinite(bound):
        bound = None
    return make_result(milp, "cp-sat", status, x, bound=bound, limit=limit, message=message,
                       build_time=sw.times["build"], solve_time=sw.times["solve"], stats=stats)
