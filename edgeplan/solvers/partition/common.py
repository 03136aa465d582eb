"""Shared by the partition's exact methods: their :class:`Result` from a plan and a bound."""

from __future__ import annotations

import time
from typing import Any

from edgeplan.solvers.result import Limit, Result, Status


def plan_result(problem: Any, plan: Any, method: str, t0: float, *, bound: float | None = None,
                status: Status | None = None, limit: Limit | None = None, message: str = "",
                build_time: float = 0.0, atol: float = 0.0, **stats: Any) -> Result:
    """A result for ``plan`` with its objective; ``optimal`` when ``bound`` meets it (or ``status`` says).

    The bound meets the objective :math:`f` when :math:`b \\ge f - 10^{-9}|f| - \\text{atol}`; ``atol`` is the
    method's absolute precision (e.g. relative to the magnitude of its costs).
    """
    solve_time = time.perf_counter() - t0 - build_time
    if plan is None:
        st = status or (Status.NO_SOLUTION if limit is not None else Status.INFEASIBLE)
        return Result(plan=None, fun=None, status=st, bound=bound, limit=limit, message=message, method=method,
                      build_time=build_time, solve_time=solve_time, stats=stats)
    fun = float(problem.objective(plan))
    if status is None:
        status = Status.OPTIMAL if bound is not None and bound >= fun - 1e-9 * abs(fun) - atol and limit is None \
            else Status.FEASIBLE
    return Result(plan=plan, fun=fun, status=status, bound=bound, limit=limit if status is Status.FEASIBLE else None,
                  message=message, method=method, build_time=build_time, solve_time=solve_time,
                  stats={"objective_atol": atol, **stats})


__all__ = ["plan_result"]
