"""The exception tree of edgeplan.

Every error a user can cause derives from :class:`EdgeplanError` and from the builtin
exception a Python user would expect (``ValueError`` for bad data, ``ImportError`` for a
missing solver library), so ``except ValueError`` keeps working in user code.

Messages name the field in backticks, its value and what was expected, e.g.
``ProblemDataError("`c` has 2 NaN entries (first at index 3); expected finite costs")``.
"""

from __future__ import annotations


class EdgeplanError(Exception):
    """Base class of every edgeplan error."""


class ProblemDataError(EdgeplanError, ValueError):
    """A problem's data or a call's argument is malformed (shape, NaN, bounds, unknown option)."""


class ProfileError(EdgeplanError, ValueError):
    """A device, link or model profile (or its file) is malformed."""


class PlanError(EdgeplanError, ValueError):
    """A plan does not fit its problem (wrong family, wrong size) or a plan file is malformed."""


class SolverUnavailableError(EdgeplanError, ImportError):
    """A method needs a library that is not installed; the message names what to install."""


class UnsupportedProblemError(EdgeplanError, ValueError):
    """A method cannot solve this problem; the message lists the methods that can."""


class SolverError(EdgeplanError, RuntimeError):
    """A native solver failed in a way that is not a status (raised ``from`` the native error)."""


__all__ = [
    "EdgeplanError",
    "ExecutionError",
    "PlanError",
    "ProblemDataError",
    "ProfileError",
    "SolverError",
    "SolverUnavailableError",
    "UnsupportedProblemError",
]


class ExecutionError(EdgeplanError, TimeoutError):
    """A validator's execution failed: a loopback transfer or a helper process did not answer in time, or
    broke off. It says what was being waited for; it is a ``TimeoutError`` too."""
