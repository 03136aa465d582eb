"""What every method returns: :class:`Status`, :class:`Limit` and the frozen :class:`Result`.

Field names follow ``scipy.optimize.OptimizeResult`` where they fit (``fun``, ``success``,
``message``) and OR-Tools MathOpt for the rest (termination status + limit + primal/dual
bound). For a minimisation, ``bound <= fun``; for a maximisation, ``bound >= fun``.

The relative gap is Gurobi's convention,

.. math:: \\mathrm{gap} = \\frac{|f - b|}{|f|},

with ``gap = 0`` when ``f == b`` and ``inf`` when ``f == 0 != b``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from edgeplan.errors import ProblemDataError


class Status(StrEnum):
    """How a solve ended."""

    OPTIMAL = "optimal"  #: plan proven optimal (within the method's stated gap tolerance)
    FEASIBLE = "feasible"  #: a plan that passes ``check``, not proven optimal
    INFEASIBLE = "infeasible"  #: proven: no plan satisfies the constraints
    UNBOUNDED = "unbounded"  #: the objective improves without limit
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"  #: one of the two, not told apart
    NO_SOLUTION = "no_solution"  #: stopped at a limit before finding a plan
    ERROR = "error"  #: the solver failed, or its plan broke a constraint (see ``message``)


class Limit(StrEnum):
    """Which limit stopped a solve early (only with ``feasible`` or ``no_solution``)."""

    TIME = "time"
    NODE = "node"
    ITERATION = "iteration"
    SOLUTION = "solution"
    INTERRUPT = "interrupt"
    OTHER = "other"


#: Statuses for which a plan is present.
PLAN_STATUSES = frozenset({Status.OPTIMAL, Status.FEASIBLE})


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of ``solve(problem, method)``, the same for exact methods and heuristics.

    Attributes
    ----------
    plan
        The family's plan (``None`` unless ``status`` is optimal or feasible).
    fun
        Objective value of ``plan`` (``None`` without a plan).
    bound
        A valid bound on the optimum (lower for minimisation), or ``None`` when none is known.
    status, limit
        How the solve ended; ``limit`` says which limit stopped it (only with ``feasible`` or
        ``no_solution``).
    message
        Human-readable detail; keeps the native solver's status text.
    method
        Registered name of the method that produced the result.
    build_time, solve_time
        Wall-clock seconds spent building the solver's model (including any reduction) and
        solving it.
    stats
        Method-specific figures (node count, scaling quantum, iterations, ...).
    sense
        ``"min"`` or ``"max"``: the direction of ``fun``, which orients ``bound``.
    """

    plan: Any
    fun: float | None
    status: Status
    bound: float | None = None
    limit: Limit | None = None
    message: str = ""
    method: str = ""
    build_time: float = 0.0
    solve_time: float = 0.0
    stats: Mapping[str, Any] = field(default_factory=dict)
    sense: str = "min"

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        if self.limit is not None:
            object.__setattr__(self, "limit", Limit(self.limit))
            if self.status not in (Status.FEASIBLE, Status.NO_SOLUTION):
                raise ProblemDataError(
                    f"`limit` = {self.limit.value!r} with `status` = {self.status.value!r}; "
                    "a limit goes only with 'feasible' or 'no_solution'")
        if self.sense not in ("min", "max"):
            raise ProblemDataError(f"`sense` = {self.sense!r}; expected 'min' or 'max'")
        if self.status in PLAN_STATUSES and self.plan is None:
            raise ProblemDataError(f"`plan` is None with `status` = {self.status.value!r}; "
                                   "optimal and feasible results carry a plan")

    @property
    def success(self) -> bool:
        """True when the plan is proven optimal."""
        return self.status is Status.OPTIMAL

    @property
    def has_plan(self) -> bool:
        """True when the result carries a plan (optimal or feasible)."""
        return self.status in PLAN_STATUSES

    @property
    def gap(self) -> float | None:
        """Relative gap ``|fun - bound| / |fun|`` (``None`` without both)."""
        return relative_gap(self.fun, self.bound)

    @property
    def time(self) -> float:
        """``build_time + solve_time``."""
        return self.build_time + self.solve_time

    def require_plan(self) -> Any:
        """Return the plan, or raise :class:`~edgeplan.errors.SolverError` naming the status."""
        if not self.has_plan:
            from edgeplan.errors import SolverError

            detail = f" ({self.message})" if self.message else ""
            limit = f", limit {self.limit.value}" if self.limit else ""
            raise SolverError(f"method {self.method!r} returned no plan: status {self.status.value}{limit}{detail}")
        return self.plan

    def replace(self, **changes: Any) -> Result:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return replace(self, **changes)

    def __repr__(self) -> str:
        parts = [f"status={self.status.value}", f"fun={self.fun!r}", f"bound={self.bound!r}"]
        if self.gap is not None:
            parts.append(f"gap={self.gap:.3g}")
        if self.limit is not None:
            parts.append(f"limit={self.limit.value}")
        parts += [f"method={self.method!r}", f"time={self.time:.3g}s"]
        if self.message:
            parts.append(f"message={self.message!r}")
        return "Result(" + ", ".join(parts) + ")"


def relative_gap(fun: float | None, bound: float | None, *, relative_to: str = "fun") -> float | None:
    """Relative gap ``|fun - bound| / |ref|``; 0 when equal, ``inf`` when ``ref == 0`` and they differ.

    ``relative_to="fun"`` is Gurobi's solver gap (``Result.gap``); ``relative_to="bound"`` measures the
    distance from the optimum (or best bound) as papers report it: "within 5% of optimal" (``compare``'s
    ``gap_to_best``).
    """
    if fun is None or bound is None or math.isnan(fun) or math.isnan(bound):
        return None
    diff = abs(fun - bound)
    if diff == 0.0:
        return 0.0
    if math.isinf(diff):
        return math.inf
    ref = fun if relative_to == "fun" else bound
    return diff / abs(ref) if ref != 0.0 else math.inf


class Deadline:
    """A wall-clock budget from ``ctx.time_limit`` (``None``: none), shared by every method that keeps one."""

    def __init__(self, limit: float | None) -> None:
        self.start = time.perf_counter()
        self.limit = limit

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def passed(self) -> bool:
        return self.limit is not None and self.elapsed > self.limit

    def remaining(self, floor: float = 1e-3) -> float | None:
        """Seconds left (at least ``floor``, for a solver's own limit), or ``None`` without a limit."""
        return None if self.limit is None else max(self.limit - self.elapsed, floor)


def heuristic_result(problem: Any, plan: Any, method: str, t0: float, *, message: str = "",
                     bound: float | None = None, infeasible: str | None = None, dead_end: str = "no plan",
                     **stats: Any) -> Result:
    """The one way a heuristic (or baseline) ends, in every family.

    * ``infeasible`` (a reason proven without the heuristic, e.g. too few reachable users): ``infeasible``;
    * no plan: ``no_solution`` with ``dead_end``;
    * a plan that breaks a constraint (a heuristic that ignores a floor, a cap or an SLO): ``no_solution``
      naming what broke, the plan kept in ``stats["rejected_plan"]`` (baselines are executed as they are);
    * else ``feasible`` with ``message``, or ``optimal`` when a valid cheap ``bound`` meets the objective
      (the bound is clipped to the objective).
    """
    def done(**kw: Any) -> Result:
        return Result(method=method, solve_time=time.perf_counter() - t0, sense=problem.sense, **kw)

    if infeasible is not None:
        return done(plan=None, fun=None, status=Status.INFEASIBLE, message=infeasible, stats=stats)
    if plan is None:
        return done(plan=None, fun=None, status=Status.NO_SOLUTION, message=dead_end, stats=stats)
    broken = problem.check(plan)
    if broken:
        listed = "; ".join(map(str, broken[:3]))
        return done(plan=None, fun=None, status=Status.NO_SOLUTION, stats={**stats, "rejected_plan": plan},
                    message=f"the {method} plan breaks {len(broken)} constraint(s): {listed}"
                            + (f" ({message})" if message else ""))
    fun = float(problem.objective(plan))
    status = Status.FEASIBLE
    if bound is not None:
        bound = min(bound, fun) if problem.sense == "min" else max(bound, fun)
        status = Status.OPTIMAL if bound == fun else Status.FEASIBLE
    return done(plan=plan, fun=fun, status=status, bound=bound, message=message, stats=stats)


__all__ = ["PLAN_STATUSES", "Deadline", "Limit", "Result", "Status", "heuristic_result", "relative_gap"]
