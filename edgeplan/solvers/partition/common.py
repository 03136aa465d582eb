"""Shared by the partition methods: building their :class:`Result` from a plan, timing, options."""

from __future__ import annotations

import time
from typing import Any

from edgeplan.solvers.result import Limit, Result, Status


class Deadline:
    """A wall-clock budget from ``ctx.time_limit`` (``None``: none)."""

    def __init__(self, limit: float | None) -> None:
        self.start = time.perf_counter()
        self.limit = limit

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def passed(self) -> bool:
        return self.limit is not None and self.elapsed > self.limit


def plan_result(problem: Any, plan: Any, method: str, t0: float, *, bound: float | None = None,
                status: Status | None = None, limit: Limit | None = None, message: str = "",
                build_time: float = 0.0, **stats: Any) -> Result:
    """A result for ``plan`` with its objective; ``optimal`` when ``bound`` equals it (or ``status`` says)."""
    solve_time = time.perf_counter() - t0 - build_time
    if plan is None:
        st = status or (Status.NO_SOLUTION if limit is not None else Status.INFEASIBLE)
        return Result(plan=None, fun=None, status=st, bound=bound, limit=limit, message=message, method=method,
                      build_time=build_time, solve_time=solve_time, stats=stats)
    fun = float(problem.objective(plan))
    if status is None:
        status = Status.OPTIMAL if bound is not None and bound >= fun * (1 - 1e-9) and limit is None \
            else Status.FEASIBLE
    return Result(plan=plan, fun=fun, status=status, bound=bound, limit=limit if status is Status.FEASIBLE else None,
                  message=message, method=method, build_time=build_time, solve_time=solve_time, stats=stats)


def heuristic_result(problem: Any, plan: Any, method: str, t0: float, *, message: str = "", **stats: Any) -> Result:
    """A heuristic's result: ``feasible`` when its plan passes ``check``, else ``no_solution`` naming what broke.

    A heuristic that ignores a constraint (memory, latency cap) can produce a plan that breaks it; it then
    found no feasible plan, which is a status, not an error of the method.
    """
    if plan is None:
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, message=message or "no plan", method=method,
                      solve_time=time.perf_counter() - t0, stats=stats)
    broken = problem.check(plan)
    if broken:
        listed = "; ".join(map(str, broken[:3]))
        return Result(plan=None, fun=None, status=Status.NO_SOLUTION, method=method,
                      message=f"the {method} plan breaks {len(broken)} constraint(s): {listed}",
                      solve_time=time.perf_counter() - t0, stats={**stats, "rejected_plan": plan})
    return Result(plan=plan, fun=float(problem.objective(plan)), status=Status.FEASIBLE, message=message,
                  method=method, solve_time=time.perf_counter() - t0, stats=stats)


__all__ = ["Deadline", "heuristic_result", "plan_result"]
