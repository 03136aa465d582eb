"""The front door: :func:`solve` and :func:`available_methods` (``compare`` is in :mod:`edgeplan.experiments.compare`).

``solve`` validates the call, picks the method (or reduces the problem to one the method
takes), runs it, and then re-checks the answer with the problem's own ``check`` and
``objective``: a plan that breaks a constraint, or whose claimed objective disagrees with the
problem, is downgraded to ``error`` with the reason in ``message``; an ``optimal`` whose bound
does not meet the plan's own objective is downgraded to ``feasible`` (:func:`verify`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from edgeplan.errors import EdgeplanError, ProblemDataError, UnsupportedProblemError
from edgeplan.formulations.base import FEAS_TOL, OBJ_RTOL
from edgeplan.solvers.native_output import capture_for
from edgeplan.solvers.registry import (
    Method,
    SolveContext,
    capable_methods,
    get_method,
    methods_for,
    require_accepts,
)
from edgeplan.solvers.result import Deadline, Result, Status

_log = logging.getLogger(__name__)

#: Time limits above this many seconds (about 31 years) mean "no limit".
MAX_TIME_LIMIT = 1e9
#: How many violations a downgraded result's message lists.
MAX_LISTED_VIOLATIONS = 5


def _context(time_limit: Any, seed: Any, options: Any, verbose: Any) -> SolveContext:
    if time_limit is not None:
        if isinstance(time_limit, bool) or not isinstance(time_limit, int | float) or not time_limit > 0:
            raise ProblemDataError(f"`time_limit` = {time_limit!r}; expected a positive number of seconds or None")
        if time_limit > MAX_TIME_LIMIT:  # inf, 1e300: no limit (timers and solvers overflow on such numbers)
            time_limit = None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ProblemDataError(f"`seed` = {seed!r}; expected a non-negative integer or None")
    if options is None:
        options = {}
    elif not isinstance(options, Mapping):
        raise ProblemDataError(f"`options` = {options!r}; expected a mapping of option names to values")
    return SolveContext(None if time_limit is None else float(time_limit), seed, dict(options), bool(verbose))


def _pick(problem: Any, method: str | None, options: Mapping[str, Any]) -> Method:
    if method is not None:
        chosen = get_method(method)
        require_accepts(chosen, problem, options)
        return chosen
    candidates = methods_for(problem)
    if not candidates:
        raise UnsupportedProblemError(f"no registered method solves a {type(problem).__name__}")
    installed = [m for m in candidates if m.available]
    reduced: dict[str, Any] = {}
    for m in installed:
        if m.refusal(problem, reduced) is None:
            return m
    if installed:  # none takes this instance: the first installed one raises its own, clear refusal
        return installed[0]
    candidates[0].ensure_available()
    raise AssertionError("unreachable")  # pragma: no cover


def _bound_verdict(problem: Any, result: Result, true_fun: float) -> tuple[float | None, Status, str]:
    """The bound and status that ``result`` earns against the plan's own objective ``true_fun``.

    A bound on the wrong side of the plan's objective by more than the method's precision is not a bound: it
    is dropped and an ``optimal`` becomes ``feasible``; within that precision it is set to the objective. An
    ``optimal`` whose bound does not meet the objective within the method's stated gap becomes ``feasible``.
    The precision is ``OBJ_RTOL * |f| + stats["objective_atol"]`` (a method's absolute precision, e.g. a MILP
    solver's tolerance in the objective's units); the gap is ``stats["mip_rel_gap"]`` (default ``OBJ_RTOL``).
    """
    b, status, sign = result.bound, result.status, 1.0 if problem.sense == "min" else -1.0
    if b is None or math.isnan(b):
        return None, status, ""
    atol = float(result.stats.get("objective_atol", 0.0) or 0.0)
    precision = OBJ_RTOL * abs(true_fun) + atol
    excess = sign * (b - true_fun)                   # > 0: the bound claims better than the plan achieves
    if excess > precision:
        note = f"claimed bound {b:.9g} is on the wrong side of the plan's objective {true_fun:.9g}: dropped"
        return None, Status.FEASIBLE if status is Status.OPTIMAL else status, note
    if excess > 0:
        b = true_fun
    gap_tol = float(result.stats.get("mip_rel_gap", OBJ_RTOL) or 0.0)
    if status is Status.OPTIMAL and -excess > max(gap_tol, OBJ_RTOL) * abs(true_fun) + atol:
        note = (f"said optimal, but its bound {b:.9g} does not meet the plan's objective {true_fun:.9g} within "
                f"the stated gap {gap_tol:g}: feasible")
        return b, Status.FEASIBLE, note
    return b, status, ""


def verify(problem: Any, result: Result, tol: float = FEAS_TOL) -> Result:
    """Re-check ``result`` against ``problem``: the plan, its objective, its bound and its status.

    * The plan must pass ``problem.check(plan, tol)`` and fit the problem, else the result is ``error``.
    * ``fun`` is replaced by ``problem.objective(plan)`` (a claim better than that by more than ``OBJ_RTOL``,
      relative with floor 1, is an ``error``: the method's model under-counts).
    * ``optimal`` must be earned: the bound must lie on the right side of the plan's objective and meet it
      within the method's stated gap (:func:`_bound_verdict`); otherwise the status is ``feasible``, with the
      reason in ``message`` and the method's own claim in ``stats["claimed"]``.
    """
    if result.plan is None or not result.has_plan:
        return result
    try:
        violations = problem.check(result.plan, tol)
        true_fun = float(problem.objective(result.plan))
    except EdgeplanError as exc:
        return result.replace(status=Status.ERROR, limit=None,
                              message=f"the plan does not fit the problem: {exc}; {result.message}".strip("; "))
    problems: list[str] = []
    if violations:
        listed = "; ".join(map(str, violations[:MAX_LISTED_VIOLATIONS]))
        more = len(violations) - MAX_LISTED_VIOLATIONS
        tail = f"; +{more} more" if more > 0 else ""
        problems.append(f"plan breaks {len(violations)} constraint(s): {listed}{tail}")
    scale = max(1.0, abs(true_fun))
    sign = 1.0 if problem.sense == "min" else -1.0
    if result.fun is not None and sign * (true_fun - result.fun) > OBJ_RTOL * scale:
        # a claim better than the plan achieves is a defect (a model that under-counts); a worse one is not (a
        # MILP's continuous columns may sit above what its plan needs, within the solver's gap)
        problems.append(f"claimed objective {result.fun:.9g} but the plan evaluates to {true_fun:.9g}")
    if problems:
        msg = "; ".join(problems) + (f" (method said: {result.message})" if result.message else "")
        return result.replace(status=Status.ERROR, limit=None, fun=true_fun, message=msg)
    bound, status, note = _bound_verdict(problem, result, true_fun)
    if not note:
        return result.replace(fun=true_fun, bound=bound)
    claimed = {"status": str(result.status), "fun": result.fun, "bound": result.bound}
    return result.replace(fun=true_fun, bound=bound, status=status, message=f"{note} (method said: {result.message})",
                          stats={**result.stats, "claimed": claimed})


def solve(
    problem: Any,
    method: str | None = None,
    *,
    time_limit: float | None = None,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    verbose: bool = False,
) -> Result:
    """Solve ``problem`` with ``method`` and return a checked :class:`Result`.

    Parameters
    ----------
    problem
        Any formulation (e.g. :class:`~edgeplan.formulations.milp.MILP`, or a family offering
        ``to_milp()``).
    method
        A registered method name (see :func:`available_methods`); default: the first installed
        method (exact before heuristic) that takes this instance (:meth:`Method.refusal`).
    time_limit
        Seconds (> 0). The method returns its best plan with ``limit="time"`` when it stops there.
    seed
        Seed for randomised methods and solvers.
    options
        Method-specific options; unknown keys raise :class:`~edgeplan.errors.ProblemDataError`.
    verbose
        Switch the solver's own log on and show it live on standard error. Whatever a native library prints
        (always, verbose or not) is captured into ``stats["log"]`` and logged to ``edgeplan.solvers.<method>``
        at DEBUG level, never straight to the terminal (:mod:`edgeplan.solvers.native_output`).

    Raises
    ------
    ProblemDataError
        Bad arguments (unknown method, negative time limit, unknown option).
    UnsupportedProblemError
        The method does not accept this problem type.
    SolverUnavailableError
        The method's library is not installed.
    """
    ctx = _context(time_limit, seed, options, verbose)
    chosen = _pick(problem, method, ctx.options)
    chosen.ensure_available()
    chosen.load()
    ctx = dataclasses.replace(ctx, options=chosen.bind(ctx.options), deadline=Deadline(ctx.time_limit))
    start = time.perf_counter()
    with capture_for(chosen, ctx.verbose) as native:
        result = _run(chosen, problem, ctx)
    wall = time.perf_counter() - start
    log = {"log": native.text} if native is not None and native.text else {}
    result = result.replace(method=chosen.name, sense=problem.sense,
                            stats={**result.stats, "wall_time": wall, **log})
    result = verify(problem, result)
    _log.debug("%s on %s: %s, objective %s, bound %s, %.4g s", chosen.name, getattr(problem, "name", "?"),
               result.status.value, result.fun, result.bound, wall)
    return result


def _run(chosen: Any, problem: Any, ctx: SolveContext) -> Result:
    """The method on the problem, or on its reduction (``to_milp()``) with the plan decoded back."""
    if chosen.direct(problem):
        result = chosen.func(problem, ctx)
    else:
        attr = chosen.reduction(problem)
        t0 = time.perf_counter()
        reduced, decode = getattr(problem, attr)()
        reduce_time = time.perf_counter() - t0
        why = chosen.feature_refusal(reduced, ctx.options)
        if why:
            raise UnsupportedProblemError(why)
        inner = chosen.func(reduced, ctx)
        plan = decode(inner.plan) if inner.plan is not None else None
        stats = {**inner.stats, "reduction": attr, "reduction_time": reduce_time,
                 "reduced_size": repr(reduced)}
        result = inner.replace(plan=plan, build_time=inner.build_time + reduce_time, stats=stats)
    return result


def available_methods(problem: Any = None, kind: str | None = None, *, installed_only: bool = True) -> list[str]:
    """Names of the methods that can solve ``problem``, optionally of one ``kind``, in order of preference.

    For a problem instance, a method is listed only when it takes this instance with its default options
    (:func:`~edgeplan.solvers.registry.capable_methods`): an ``FLRound`` with continuous bandwidth has no
    MILP, so no MILP backend is listed, and ``cp-sat`` is left out for a MILP with continuous columns
    (``solve(p, "cp-sat", options={"continuous_quantum": q})`` still takes it).

    Parameters
    ----------
    problem
        A problem instance, a problem type (every method that accepts the type), or ``None`` (every method).
    kind
        ``"exact"`` or ``"heuristic"`` to list only those.
    installed_only
        Leave out methods whose libraries are missing (default).

    Returns
    -------
    list of str
        Method names, exact before heuristic, in order of preference.
    """
    return [m.name for m in capable_methods(problem, kind, installed_only=installed_only)]


__all__ = ["available_methods", "solve", "verify"]
