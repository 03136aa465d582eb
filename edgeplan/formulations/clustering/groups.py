r"""FedGCF's clustering of graph clients by structural similarity.

FedGCF (federated graph learning) clusters clients whose graphs are alike in structure, aggregates a structural
model within each cluster and a common node model across all clients, and fuses the two with a ratio. The
clustering step: clients :math:`i = 1..N` with a dissimilarity :math:`d_{ij} = d_{ji} \ge 0` of their graph
structures (:math:`d_{ii} = 0`; e.g. distances between standardised structure statistics), split into exactly
:math:`K` clusters of :math:`n_{min}..n_{max}` clients each, minimising the within-cluster dissimilarity

.. math::

    \min \sum_c \sum_{i < j \in c} d_{ij} .

The MILP (:func:`~edgeplan.formulations.clustering.milp.group_milp`): :math:`x_{ic}` binary,
:math:`y_{ijc} \ge x_{ic} + x_{jc} - 1`, :math:`y \ge 0` (minimisation keeps :math:`y = x_{ic} x_{jc}` since
:math:`d \ge 0`), client :math:`i` in a cluster :math:`c \le i` (the clusters in order of their first client).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, int_vector
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """A cluster per client.

    Attributes
    ----------
    assignment
        ``(N,)`` cluster indices in ``0..K-1``.
    """

    assignment: Any

    def __post_init__(self) -> None:
        a = int_vector("assignment", self.assignment, expected="cluster indices")
        if a.size and a.min() < 0:
            raise PlanError(f"`assignment` = {a.tolist()!r}; expected cluster indices >= 0")
        object.__setattr__(self, "assignment", a)

    def to_dict(self) -> dict[str, Any]:
        return {"assignment": self.assignment.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupPlan:
        if not isinstance(data, Mapping) or set(data) != {"assignment"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the key 'assignment'")
        return cls(assignment=data["assignment"])


@dataclass(frozen=True, slots=True)
class GroupMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    cost
        :math:`\\sum_c \\sum_{i<j \\in c} d_{ij}`.
    sizes
        ``(K,)`` clients per cluster.
    within
        ``(K,)`` each cluster's dissimilarity.
    """

    cost: float
    sizes: np.ndarray
    within: np.ndarray


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ProblemDataError(f"`{name}` = {value!r}; expected a whole number >= {low}")
    return int(value)


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class GraphClustering:
    """FedGCF's structural clustering (the model is in the module docstring).

    Parameters
    ----------
    dissimilarity
        ``(N, N)`` :math:`d_{ij}`, symmetric, non-negative, zero on the diagonal.
    n_clusters
        :math:`K`.
    min_size, max_size
        :math:`n_{min} \\ge 1` and :math:`n_{max}`.
    """

    dissimilarity: Any
    n_clusters: int
    min_size: int = 1
    max_size: int = 1_000_000
    name: str = "graph-clustering"
    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        d = as_array("dissimilarity", self.dissimilarity, shape=(None, None), min_value=0.0)
        N = d.shape[0]
        if N < 1 or d.shape != (N, N):
            raise ProblemDataError(f"`dissimilarity` has shape {d.shape}; expected a square matrix (N >= 1)")
        if not np.allclose(d, d.T, rtol=1e-12, atol=0.0) or np.any(np.diag(d) != 0):
            raise ProblemDataError("`dissimilarity` is not symmetric with a zero diagonal; expected d[i, j] = d[j, i] "
                                   "and d[i, i] = 0")
        K = _whole("n_clusters", self.n_clusters, 1)
        lo = _whole("min_size", self.min_size, 1)
        hi = _whole("max_size", self.max_size, lo)
        for key, val in {"dissimilarity": d, "n_clusters": K, "min_size": lo, "max_size": hi}.items():
            object.__setattr__(self, key, val)

    @property
    def n_clients(self) -> int:
        return int(self.dissimilarity.shape[0])

    def _plan(self, plan: Any) -> GroupPlan:
        if not isinstance(plan, GroupPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a GroupPlan")
        if plan.assignment.size != self.n_clients:
            raise PlanError(f"`plan.assignment` has {plan.assignment.size} entries; expected {self.n_clients}")
        if plan.assignment.max(initial=0) >= self.n_clusters:
            raise PlanError(f"`plan.assignment` = {plan.assignment.tolist()!r}; expected cluster indices in "
                            f"0..{self.n_clusters - 1}")
        return plan

    def evaluate(self, plan: GroupPlan) -> GroupMetrics:
        """Cluster sizes and within-cluster dissimilarities."""
        a = self._plan(plan).assignment
        onehot = np.zeros((self.n_clusters, self.n_clients))
        onehot[a, np.arange(self.n_clients)] = 1.0
        within = 0.5 * np.einsum("ci,ij,cj->c", onehot, self.dissimilarity, onehot)
        return GroupMetrics(cost=float(within.sum()), sizes=onehot.sum(axis=1), within=within)

    def objective(self, plan: GroupPlan) -> float:
        """:math:`\\sum_c \\sum_{i<j \\in c} d_{ij}`."""
        return self.evaluate(plan).cost

    def check(self, plan: GroupPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Every cluster's size within :math:`n_{min}..n_{max}` (so none is empty)."""
        m = self.evaluate(plan)
        return violations_ge("size[{i}]", m.sizes, self.min_size, tol) + violations_le("size[{i}]", m.sizes,
                                                                                      self.max_size, tol)

    def to_milp(self) -> tuple[Any, Any]:
        """The clustering as a MILP (module docstring); every MILP backend solves it."""
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self)


__all__ = ["GraphClustering", "GroupMetrics", "GroupPlan"]
