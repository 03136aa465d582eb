"""What every formulation shares: the :class:`Problem` protocol and :class:`Violation`.

A problem is frozen data plus three pure functions of a plan:

* ``objective(plan) -> float``: the value the family optimises, in the direction ``sense``;
* ``evaluate(plan)``: the family's metrics (latency, energy, ... and the objective);
* ``check(plan, tol) -> list[Violation]``: every constraint the plan breaks.

``solve()`` trusts none of the methods: it re-runs ``check`` and ``objective`` on every plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: Relative feasibility tolerance: ``a <= b`` holds when ``a - b <= FEAS_TOL * |b| + FEAS_ATOL`` (a family's
#: quantities are in their own units, from nanoseconds to gigabytes: the slack scales with the limit).
FEAS_TOL = 1e-6
#: Absolute floor of the feasibility slack (a limit of exactly 0 admits rounding noise, nothing more).
FEAS_ATOL = 1e-12
#: Integrality tolerance: ``x`` is integral when ``|x - round(x)| <= INT_TOL``.
INT_TOL = 1e-6
#: Relative tolerance for agreeing objective values (a method's claim vs ``problem.objective``).
OBJ_RTOL = 1e-6


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken constraint: ``name`` evaluates to ``value`` against ``limit`` (``kind`` says how).

    Attributes
    ----------
    name
        The constraint, with its indices (``"memory[2]"``).
    value, limit
        What the plan gives and the bound it breaks.
    kind
        ``"<="``, ``">="`` or ``"=="``.
    """

    name: str
    value: float
    limit: float
    kind: str = "<="

    def __str__(self) -> str:
        return f"{self.name}: {self.value:.6g} (needs {self.kind} {self.limit:.6g})"


@runtime_checkable
class Problem(Protocol):
    """The protocol every formulation follows (see the module docstring)."""

    @property
    def sense(self) -> str:
        """``"min"`` or ``"max"``: a ``ClassVar`` when the family's direction is fixed, a property when the data
        choose it (``CachePlacement.goal``), a field for the generic ``MILP``."""
        ...

    def objective(self, plan: Any) -> float: ...

    def evaluate(self, plan: Any) -> Any: ...

    def check(self, plan: Any, tol: float = FEAS_TOL) -> list[Violation]: ...


def slack_tol(limit: np.ndarray, tol: float, floor: float = FEAS_ATOL / FEAS_TOL) -> np.ndarray:
    """Tolerance scaled to the limit: ``tol * max(floor, |limit|)`` (inf limits give inf).

    The default floor makes the slack relative with an absolute floor of :data:`FEAS_ATOL`; the generic
    :class:`~edgeplan.formulations.milp.MILP` passes ``floor=1`` (a solver's absolute tolerance on its rows).
    """
    return tol * np.maximum(floor, np.abs(limit))


def within(value: Any, limit: Any, tol: float = FEAS_TOL) -> np.ndarray:
    """Vectorized ``value <= limit`` with the slack of :func:`slack_tol` (the test ``check`` applies).

    Methods that screen candidates use it, so that a method and ``check`` never disagree on a plan.
    """
    value = np.asarray(value, dtype=float)
    limit = np.asarray(limit, dtype=float)
    with np.errstate(invalid="ignore"):
        return (value - limit <= slack_tol(limit, tol)) | np.isposinf(limit)


def _violations(names: Sequence[str] | str, value: Any, limit: Any, tol: float, kind: str) -> list[Violation]:
    value = np.atleast_1d(np.asarray(value, dtype=float))
    limit = np.broadcast_to(np.asarray(limit, dtype=float), value.shape)
    slack = np.where(np.isfinite(limit), slack_tol(limit, tol), tol)
    with np.errstate(invalid="ignore"):
        excess = value - limit if kind == "<=" else limit - value
        bad = ~(excess <= slack)  # NaN values count as broken; an infinite free side gives -inf excess
    return [
        Violation(names.format(i=i) if isinstance(names, str) else names[i], float(value[i]), float(limit[i]), kind)
        for i in np.flatnonzero(bad)
    ]


def violations_le(names: Sequence[str] | str, value: Any, limit: Any, tol: float = FEAS_TOL) -> list[Violation]:
    """Vectorized ``value <= limit`` test; one :class:`Violation` per broken entry.

    ``names`` is a sequence aligned with ``value`` or a format string with ``{i}``. Tolerances
    are relative to the limit (:func:`slack_tol`); an ``inf`` limit never binds.
    """
    return _violations(names, value, limit, tol, "<=")


def violations_ge(names: Sequence[str] | str, value: Any, limit: Any, tol: float = FEAS_TOL) -> list[Violation]:
    """Vectorized ``value >= limit`` test (see :func:`violations_le`); a ``-inf`` limit never binds."""
    return _violations(names, value, limit, tol, ">=")


__all__ = ["FEAS_ATOL", "FEAS_TOL", "INT_TOL", "OBJ_RTOL", "Problem", "Violation", "slack_tol", "violations_ge",
           "violations_le", "within"]
