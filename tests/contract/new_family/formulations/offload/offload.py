"""min sum_i (1 - x_i) l_i + x_i r_i  s.t.  sum_i x_i w_i <= C,  x in {0,1}^N."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector
from edgeplan.errors import PlanError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_le


@dataclass(frozen=True, slots=True)
class OffloadPlan:
    remote: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "remote", int_vector("remote", self.remote))


@dataclass(frozen=True, slots=True, eq=False)
class Offload:
    local_s: np.ndarray
    remote_s: np.ndarray
    load: np.ndarray
    capacity: float
    sense: str = "min"

    def __post_init__(self) -> None:
        n = np.size(self.local_s)
        for f in ("local_s", "remote_s", "load"):
            object.__setattr__(self, f, as_array(f, getattr(self, f), shape=(n,), min_value=0.0))
        object.__setattr__(self, "capacity", as_scalar("capacity", self.capacity, min_value=0.0))

    def _x(self, plan: OffloadPlan) -> np.ndarray:
        if not isinstance(plan, OffloadPlan) or plan.remote.shape != self.local_s.shape:
            raise PlanError(f"`plan` = {plan!r:.60}; expected an OffloadPlan of {self.local_s.size} tasks")
        return plan.remote.astype(float)

    def objective(self, plan: OffloadPlan) -> float:
        x = self._x(plan)
        return float(((1 - x) * self.local_s + x * self.remote_s).sum())

    def evaluate(self, plan: OffloadPlan) -> dict[str, float]:
        return {"latency_s": self.objective(plan), "load": float(self.load @ self._x(plan))}

    def check(self, plan: OffloadPlan, tol: float = FEAS_TOL) -> list[Violation]:
        x = self._x(plan)
        out = violations_le(["capacity"], [self.load @ x], [self.capacity], tol)
        return out + violations_le("remote[{i}]", x, 1.0, tol) + violations_le("local[{i}]", -x, 0.0, tol)

    def to_milp(self):
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self)
