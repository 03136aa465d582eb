"""SCIP (PySCIPOpt) for global MINLP solves of the families' models (``slide-scip``).

A family method builds its model with :func:`library`'s ``Model``/``quicksum`` and runs it with :func:`optimize`,
which applies the common options (time limit under our watchdog, seed, gap, log) and maps SCIP's status to ours.
"""

from __future__ import annotations

from typing import Any

from edgeplan.errors import SolverUnavailableError
from edgeplan.solvers.backends._common import watchdog
from edgeplan.solvers.result import Limit, Status

#: SCIP statuses that mean "stopped at a limit", with the limit.
LIMITS = {"timelimit": Limit.TIME, "userinterrupt": Limit.TIME, "nodelimit": Limit.NODE, "gaplimit": Limit.OTHER,
          "sollimit": Limit.OTHER, "memlimit": Limit.OTHER}


def library() -> Any:
    """The ``pyscipopt`` module (:class:`~edgeplan.errors.SolverUnavailableError` naming the install when missing)."""
    try:
        import pyscipopt
    except ImportError as exc:
        raise SolverUnavailableError("this method needs PySCIPOpt; install it with `pip install edgeplan[minlp]`") \
            from exc
    return pyscipopt


def optimize(model: Any, *, time_limit: float | None, seed: int | None, gap: float, verbose: bool) -> tuple[
        Status, Limit | None, str, bool]:
    """Run ``model.optimize()`` with the common options; returns ``(status, limit, native status, watchdog fired)``.

    A limit with a solution is ``feasible``, without one ``no_solution``; an "optimal" status without a solution
    is the caller's to downgrade.
    """
    if not verbose:
        model.hideOutput()
    model.setParam("limits/gap", gap)
    if time_limit is not None:
        model.setParam("limits/time", time_limit)
    if seed is not None:
        model.setParam("randomization/randomseedshift", int(seed) % 2**31)
    with watchdog(time_limit, model.interruptSolve) as dog:
        model.optimize()  # in this thread: optimizeNogil in a helper thread crashed SCIP on nonlinear models
    native = model.getStatus()
    if native == "userinterrupt" and not dog.fired:  # SCIP caught Ctrl-C and stopped: the interrupt is the caller's
        raise KeyboardInterrupt
    has_sol = model.getNSols() > 0
    if native == "optimal":
        return Status.OPTIMAL, None, native, dog.fired
    if native in LIMITS:
        return (Status.FEASIBLE if has_sol else Status.NO_SOLUTION), LIMITS[native], native, dog.fired
    if native == "infeasible":
        return Status.INFEASIBLE, None, native, dog.fired
    return Status.ERROR, None, native, dog.fired


__all__ = ["LIMITS", "library", "optimize"]
