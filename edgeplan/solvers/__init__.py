"""``solve(problem, method)`` and friends; methods register themselves on first use."""

from edgeplan.solvers.api import available_methods, solve, verify
from edgeplan.solvers.registry import Method, Options, SolveContext, get_method, methods_for, register
from edgeplan.solvers.result import Limit, Result, Status

__all__ = ["Limit", "Method", "Options", "Result", "SolveContext", "Status", "available_methods",
           "get_method", "methods_for", "register", "solve", "verify"]
