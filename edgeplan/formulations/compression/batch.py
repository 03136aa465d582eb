r"""Caesar's batch sizes: who trains on how many samples, so that the devices meet at the barrier together.

Device :math:`i` spends :math:`c_i` seconds communicating (download and upload at its planned ratios) and
:math:`a_i` seconds per sample of its batch (per-sample compute times the local iterations); with batch
:math:`b_i \in [b_{min}, b_{max}]` its round takes :math:`M_i(b_i) = a_i b_i + c_i`, and the round ends at
:math:`T = \max_i M_i(b_i)`. Maximise the samples trained per second, :math:`\sum_i b_i / T`, under an optional
bound :math:`T \le L`; the idle time at the barrier, :math:`\sum_i (T - M_i)`, is reported.
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
class BatchPlan:
    """Batch sizes.

    Attributes
    ----------
    batch
        ``(n,)`` :math:`b_i`.
    """

    batch: Any

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch", int_vector("batch", self.batch, expected="whole numbers of samples"))

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchPlan:
        if not isinstance(data, Mapping) or set(data) != {"batch"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the key 'batch'")
        return cls(batch=data["batch"])


@dataclass(frozen=True, slots=True)
class BatchMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    samples_per_s
        :math:`\\sum_i b_i / T`.
    round_s
        :math:`T`.
    finish_s, idle_s
        ``(n,)`` :math:`M_i(b_i)` and :math:`T - M_i(b_i)`.
    """

    samples_per_s: float
    round_s: float
    finish_s: np.ndarray
    idle_s: np.ndarray


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ProblemDataError(f"`{name}` = {value!r}; expected a whole number >= {low}")
    return int(value)


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class BatchSizing:
    """Caesar's batch-size problem (the model is in the module docstring).

    Parameters
    ----------
    per_sample_s
        ``(n,)`` :math:`a_i`.
    comm_s
        ``(n,)`` :math:`c_i`.
    min_batch, max_batch
        :math:`b_{min} \\ge 1` and :math:`b_{max}`.
    round_bound_s
        :math:`L` (``inf``: none).
    """

    per_sample_s: Any
    comm_s: Any
    min_batch: int = 1
    max_batch: int = 64
    round_bound_s: float = float("inf")
    name: str = "batch-sizing"
    sense: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        a = as_array("per_sample_s", self.per_sample_s, shape=(None,), min_value=0.0)
        if a.size < 1:
            raise ProblemDataError("`per_sample_s` is empty; expected one value per device")
        c = as_array("comm_s", self.comm_s, shape=a.shape, min_value=0.0)
        lo = _whole("min_batch", self.min_batch, 1)
        hi = _whole("max_batch", self.max_batch, lo)
        if np.all(a == 0) and np.all(c == 0):
            raise ProblemDataError("`per_sample_s` and `comm_s` are all 0; expected a round that takes time")
        bound = float("inf") if np.isposinf(float(self.round_bound_s)) else \
            float(as_scalar("round_bound_s", self.round_bound_s, min_value=0.0))
        for key, val in {"per_sample_s": a, "comm_s": c, "min_batch": lo, "max_batch": hi,
                         "round_bound_s": bound}.items():
            object.__setattr__(self, key, val)

    @property
    def n_devices(self) -> int:
        return int(self.per_sample_s.size)

    def _batch(self, plan: Any) -> np.ndarray:
        if not isinstance(plan, BatchPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a BatchPlan")
        if plan.batch.size != self.n_devices:
            raise PlanError(f"`plan.batch` has {plan.batch.size} entries; expected {self.n_devices}")
        return plan.batch.astype(float)

    def evaluate(self, plan: BatchPlan) -> BatchMetrics:
        """Samples per second, the round and each device's finish and idle time."""
        b = self._batch(plan)
        finish = self.per_sample_s * b + self.comm_s
        T = float(finish.max())
        return BatchMetrics(samples_per_s=float(b.sum()) / T if T > 0 else 0.0, round_s=T, finish_s=finish,
                            idle_s=T - finish)

    def objective(self, plan: BatchPlan) -> float:
        """:math:`\\sum_i b_i / T`."""
        return self.evaluate(plan).samples_per_s

    def check(self, plan: BatchPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Batch limits and the round bound."""
        m = self.evaluate(plan)
        out = violations_ge("batch[{i}]", plan.batch, self.min_batch, tol)
        out += violations_le("batch[{i}]", plan.batch, self.max_batch, tol)
        out += violations_le(["round_s"], [m.round_s], self.round_bound_s, tol)
        return out


__all__ = ["BatchMetrics", "BatchPlan", "BatchSizing"]
