r"""Caesar's upload ratios as a convex program: the least upload traffic within a deviation budget.

Device :math:`i` uploads an update whose values take :math:`s_i` bytes; top-k sparsification at ratio
:math:`\theta_i` keeps the share :math:`1 - \theta_i` of them and loses the share :math:`\epsilon_i(\theta_i)` of
the update's energy, a measured top-k error profile (:func:`~edgeplan.formulations.compression.wire.topk_error_profile`)
on a grid :math:`0 = \theta^0 < \dots < \theta^G`, interpolated linearly (nondecreasing and convex). With
importances :math:`C_i` (sample volume and label skew: Caesar's gradient importance) and budget :math:`\Delta`,

.. math::

    \min_{\theta} \sum_i s_i (1 - \theta_i) \quad \text{s.t.} \quad \sum_i C_i\, \epsilon_i(\theta_i) \le \Delta,
    \qquad 0 \le \theta_i \le \theta^G .

A linear objective under one separable convex piecewise-linear constraint: a fractional knapsack over the
profiles' segments, solved exactly by taking segments in order of bytes saved per unit of deviation
(water-filling, ``upload-waterfill``) and by cvxpy (``upload-cvxpy``). The bitmap of kept positions
(:math:`n/8` bytes) is the same at every ratio above 0 and is left out of :math:`s_i`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le


@dataclass(frozen=True, slots=True)
class RatioPlan:
    """Upload compression ratios.

    Attributes
    ----------
    theta
        ``(n,)`` :math:`\\theta_i`.
    """

    theta: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "theta", as_array("theta", self.theta, shape=(None,), error=PlanError))

    def to_dict(self) -> dict[str, Any]:
        return {"theta": self.theta.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RatioPlan:
        if not isinstance(data, Mapping) or set(data) != {"theta"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the key 'theta'")
        return cls(theta=data["theta"])


@dataclass(frozen=True, slots=True)
class RatioMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    bytes
        :math:`\\sum_i s_i (1 - \\theta_i)`.
    deviation
        :math:`\\sum_i C_i \\epsilon_i(\\theta_i)`.
    error
        ``(n,)`` :math:`\\epsilon_i(\\theta_i)`.
    """

    bytes: float
    deviation: float
    error: np.ndarray


def check_profile(name: str, grid: np.ndarray, error: np.ndarray) -> None:
    """Raise unless every row of ``error`` is nondecreasing and convex on ``grid``."""
    slope = np.diff(error, axis=1) / np.diff(grid)[None, :]
    tol = 1e-9 * np.maximum(1.0, np.abs(slope).max(initial=0.0))
    bad = (slope < -tol).any(axis=1) | (np.diff(slope, axis=1) < -tol).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ProblemDataError(f"`{name}`[{i}] = {error[i].tolist()!r} is not nondecreasing and convex on the grid; "
                               "expected a top-k error profile (each step drops a larger entry)")


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class UploadRatios:
    """Caesar's upload ratios under a deviation budget (the model is in the module docstring).

    Parameters
    ----------
    value_bytes
        ``(n,)`` :math:`s_i`.
    importance
        ``(n,)`` :math:`C_i \\ge 0`.
    grid
        ``(G+1,)`` ratios :math:`0 = \\theta^0 < \\dots < \\theta^G < 1`.
    error
        ``(n, G+1)`` :math:`\\epsilon_i(\\theta^g)`.
    budget
        :math:`\\Delta`.
    """

    value_bytes: Any
    importance: Any
    grid: Any
    error: Any
    budget: float
    name: str = "upload-ratios"
    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        s = as_array("value_bytes", self.value_bytes, shape=(None,), min_value=0.0)
        if s.size < 1:
            raise ProblemDataError("`value_bytes` is empty; expected one value per device")
        grid = as_array("grid", self.grid, shape=(None,), min_value=0.0)
        if grid.size < 2 or grid[0] != 0.0 or np.any(np.diff(grid) <= 0) or grid[-1] >= 1.0:
            raise ProblemDataError(f"`grid` = {grid.tolist()!r}; expected increasing ratios from 0, below 1")
        err = as_array("error", self.error, shape=(s.size, grid.size), min_value=0.0)
        check_profile("error", grid, err)
        fields = {"value_bytes": s, "grid": grid, "error": err,
                  "importance": as_array("importance", self.importance, shape=s.shape, min_value=0.0),
                  "budget": float(as_scalar("budget", self.budget, min_value=0.0))}
        for key, val in fields.items():
            object.__setattr__(self, key, val)

    @property
    def n_devices(self) -> int:
        return int(self.value_bytes.size)

    def profile(self, theta: np.ndarray) -> np.ndarray:
        """``(n,)`` :math:`\\epsilon_i(\\theta_i)`, interpolated on the grid."""
        g = self.grid
        k = np.clip(np.searchsorted(g, theta, side="right") - 1, 0, g.size - 2)
        frac = (theta - g[k]) / (g[k + 1] - g[k])
        rows = np.arange(self.n_devices)
        return self.error[rows, k] + frac * (self.error[rows, k + 1] - self.error[rows, k])

    def _theta(self, plan: Any) -> np.ndarray:
        if not isinstance(plan, RatioPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a RatioPlan")
        if plan.theta.size != self.n_devices:
            raise PlanError(f"`plan.theta` has {plan.theta.size} entries; expected {self.n_devices}")
        return plan.theta

    def evaluate(self, plan: RatioPlan) -> RatioMetrics:
        """Bytes, the weighted deviation and each device's error share."""
        theta = self._theta(plan)
        err = self.profile(np.clip(theta, 0.0, self.grid[-1]))
        return RatioMetrics(bytes=float(self.value_bytes @ (1.0 - theta)),
                            deviation=float(self.importance @ err), error=err)

    def objective(self, plan: RatioPlan) -> float:
        """:math:`\\sum_i s_i (1 - \\theta_i)`."""
        return self.evaluate(plan).bytes

    def check(self, plan: RatioPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """The ratio range and the deviation budget."""
        m = self.evaluate(plan)
        out = violations_ge("theta[{i}]", plan.theta, 0.0, tol)
        out += violations_le("theta[{i}]", plan.theta, self.grid[-1], tol)
        out += violations_le(["deviation"], [m.deviation], self.budget, tol)
        return out


__all__ = ["RatioMetrics", "RatioPlan", "UploadRatios", "check_profile"]
