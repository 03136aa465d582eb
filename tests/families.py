"""A tiny family used to test reductions and the front door's checks (not a solver)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan import MILP, PlanError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_le


@dataclass(frozen=True)
class Knapsack:
    """max v·x s.t. w·x <= capacity, x binary. Plan: tuple of chosen item indices."""

    values: tuple[float, ...]
    weights: tuple[float, ...]
    capacity: float
    sense: str = "max"

    def _x(self, plan: Any) -> np.ndarray:
        x = np.zeros(len(self.values))
        items = list(plan)
        if any(not 0 <= i < len(self.values) for i in items):
            raise PlanError(f"`plan` = {plan!r}; expected item indices below {len(self.values)}")
        x[items] = 1
        return x

    def objective(self, plan: Any) -> float:
        return float(np.dot(self.values, self._x(plan)))

    def evaluate(self, plan: Any) -> dict[str, float]:
        x = self._x(plan)
        return {"value": float(np.dot(self.values, x)), "weight": float(np.dot(self.weights, x))}

    def check(self, plan: Any, tol: float = FEAS_TOL) -> list[Violation]:
        return violations_le(["capacity"], [self.evaluate(plan)["weight"]], [self.capacity], tol)

    def to_milp(self) -> tuple[MILP, Any]:
        n = len(self.values)
        milp = MILP(c=self.values, A=[self.weights], row_upper=self.capacity, col_upper=1,
                    integrality=np.ones(n), sense="max")
        return milp, lambda x: tuple(int(i) for i in np.flatnonzero(np.round(x) > 0.5))
