r"""Local updating frequencies of the clusters (ParallelSFL's Eq. 15-17), as a problem of its own.

Cluster :math:`c` has :math:`N_c` bottom workers, iterations of :math:`t_c > 0` seconds and a full-model exchange
with the parameter server of :math:`\beta_c` seconds per round. It runs :math:`\tau_c \in \{1..\tau_{max}\}`
local iterations per round; the round ends at the barrier
:math:`T = \max_c (\tau_c t_c + \beta_c)` (Eq. 15/16). Maximise the bottom mini-batches trained per second of
wall clock,

.. math::

    \max_{\tau} \; \frac{\sum_c N_c \tau_c}{\max_c (\tau_c t_c + \beta_c)} \quad
    \text{s.t.}\ \max_c (\tau_c t_c + \beta_c) \le L .

Eq. 17 (the fastest cluster runs :math:`\tau_{max}`, the others fill its round) is the paper's rule
(``eq17``); for a fixed barrier :math:`T` the best :math:`\tau_c` is
:math:`\min(\tau_{max}, \lfloor (T - \beta_c) / t_c \rfloor)`, so a sweep of :math:`T` over the values
:math:`\tau t_c + \beta_c` is exact (``frequency-sweep``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le


@dataclass(frozen=True, slots=True)
class FrequencyPlan:
    """Local iterations per round.

    Attributes
    ----------
    tau
        ``(C,)`` :math:`\\tau_c`.
    """

    tau: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", int_vector("tau", self.tau, expected="whole numbers of iterations"))

    def to_dict(self) -> dict[str, Any]:
        return {"tau": self.tau.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrequencyPlan:
        if not isinstance(data, Mapping) or set(data) != {"tau"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the key 'tau'")
        return cls(tau=data["tau"])


@dataclass(frozen=True, slots=True)
class FrequencyMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    throughput
        Bottom mini-batches per second, :math:`\\sum_c N_c \\tau_c / T`.
    round_s
        :math:`T`.
    finish_s
        ``(C,)`` :math:`\\tau_c t_c + \\beta_c`.
    idle_s
        ``(C,)`` :math:`T - \\tau_c t_c - \\beta_c`, each cluster's wait at the barrier.
    """

    throughput: float
    round_s: float
    finish_s: np.ndarray
    idle_s: np.ndarray


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class UpdateFrequency:
    """Each cluster's local updating frequency (the model is in the module docstring).

    Parameters
    ----------
    iteration_s
        ``(C,)`` :math:`t_c > 0`.
    sync_s
        ``(C,)`` :math:`\\beta_c`.
    bottoms
        ``(C,)`` :math:`N_c`.
    tau_max
        :math:`\\tau_{max} \\ge 1`.
    round_bound_s
        :math:`L` (``inf``: none).
    """

    iteration_s: Any
    sync_s: Any
    bottoms: Any
    tau_max: int = 5
    round_bound_s: float = float("inf")
    name: str = "update-frequency"
    sense: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        t = as_array("iteration_s", self.iteration_s, shape=(None,), min_value=0.0, strict_min=True)
        if t.size < 1:
            raise ProblemDataError("`iteration_s` is empty; expected one value per cluster")
        tau_max = self.tau_max
        if isinstance(tau_max, bool) or not isinstance(tau_max, int | np.integer) or tau_max < 1:
            raise ProblemDataError(f"`tau_max` = {tau_max!r}; expected a whole number >= 1")
        bound = float("inf") if np.isposinf(float(self.round_bound_s)) else \
            float(as_scalar("round_bound_s", self.round_bound_s, min_value=0.0))
        fields = {"iteration_s": t, "sync_s": as_array("sync_s", self.sync_s, shape=t.shape, min_value=0.0),
                  "bottoms": as_array("bottoms", self.bottoms, shape=t.shape, min_value=0.0),
                  "tau_max": int(tau_max), "round_bound_s": bound}
        for key, val in fields.items():
            object.__setattr__(self, key, val)

    @property
    def n_clusters(self) -> int:
        return int(self.iteration_s.size)

    def _tau(self, plan: Any) -> np.ndarray:
        if not isinstance(plan, FrequencyPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a FrequencyPlan")
        if plan.tau.size != self.n_clusters:
            raise PlanError(f"`plan.tau` has {plan.tau.size} entries; expected {self.n_clusters}")
        return plan.tau.astype(float)

    def evaluate(self, plan: FrequencyPlan) -> FrequencyMetrics:
        """Throughput, round time and each cluster's finish and idle time."""
        tau = self._tau(plan)
        finish = tau * self.iteration_s + self.sync_s
        T = float(finish.max())
        work = float(self.bottoms @ tau)
        return FrequencyMetrics(throughput=work / T if T > 0 else 0.0, round_s=T, finish_s=finish, idle_s=T - finish)

    def objective(self, plan: FrequencyPlan) -> float:
        """:math:`\\sum_c N_c \\tau_c / T`."""
        return self.evaluate(plan).throughput

    def check(self, plan: FrequencyPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """:math:`1 \\le \\tau_c \\le \\tau_{max}` and the round bound."""
        m = self.evaluate(plan)
        out = violations_ge("tau[{i}]", plan.tau, 1.0, tol)
        out += violations_le("tau[{i}]", plan.tau, self.tau_max, tol)
        out += violations_le(["round_s"], [m.round_s], self.round_bound_s, tol)
        return out


__all__ = ["FrequencyMetrics", "FrequencyPlan", "UpdateFrequency"]
