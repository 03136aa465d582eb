"""cvxpy (with Clarabel) for the convex programs of the families' cross-check methods.

The family methods (``slide-cvxpy``, ``fl-energy-cvxpy``) write their programs with the module that
:func:`library` returns and solve them with :func:`solve_program`; this module is where cvxpy is imported, its
solver chosen and its failures turned into a status string (a Clarabel failure is ``"solver_error"``, never an
exception).
"""

from __future__ import annotations

import warnings
from typing import Any

from edgeplan.errors import SolverUnavailableError

#: cvxpy statuses whose variable values can be read.
SOLVED = ("optimal", "optimal_inaccurate")


def library() -> Any:
    """The ``cvxpy`` module (:class:`~edgeplan.errors.SolverUnavailableError` naming the install when missing)."""
    try:
        import cvxpy
    except ImportError as exc:
        raise SolverUnavailableError("this method needs cvxpy; install it with `pip install cvxpy clarabel`") from exc
    return cvxpy


def solve_program(program: Any, *, solver: str = "CLARABEL", **options: Any) -> str:
    """Solve a cvxpy ``Problem`` and return its status (``"solver_error"`` when the solver fails).

    Clarabel's "solution may be inaccurate" warning is silenced: the status says so (``optimal_inaccurate``).
    """
    cp = library()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            program.solve(solver=solver, **options)
        except cp.error.SolverError:
            return "solver_error"
    return str(program.status)


__all__ = ["SOLVED", "library", "solve_program"]
