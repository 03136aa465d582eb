r"""Clustered split federated learning (ParallelSFL): which workers train together, and which one holds the top.

Liao et al., "ParallelSFL: A Novel Split Federated Learning Framework Tackling Heterogeneity Issues", MobiCom
2024 (arXiv 2410.01256). The roles, the per-iteration times, the constraints and the utility are the paper's as
a third-party re-implementation cites them (Eq. 8-11, 14); the normalisers are ours (``docs/models/clustering.md``).

Workers :math:`i = 1..N` hold label histograms (distribution :math:`\phi_i`; the reference :math:`\Phi_0` is the
pooled one unless given). The model is cut into a bottom and a top. A plan splits the workers into clusters
:math:`c`, each with one *top worker* :math:`j_c` (it holds the top model and trains on none of its data) and
:math:`N_c = |\mathcal B_c|` bottom workers. Bottom worker :math:`i` takes
:math:`t_i = \mu_{b,i} + \sigma / r_i` per iteration besides the top (bottom compute plus smashed data and
gradient, :math:`\sigma` bytes over its link :math:`r_i`). Within an iteration its smashed data reach the top at
:math:`a_i = f \mu_{b,i} + \sigma / (2 r_i)` (the forward share :math:`f` of its compute, half the bytes); the top
serves the bottoms' mini-batches first come first served, :math:`\mu_{p,j_c}` each
(:math:`s_i = \max(a_i, e_{i^-})`, :math:`e_i = s_i + \mu_{p,j_c}`, :math:`i^-` the bottom served before), and
bottom :math:`i` finishes at :math:`e_i + \sigma / (2 r_i) + (1 - f) \mu_{b,i}`. The cluster's iteration
:math:`t_c` is its last finish (:math:`\max_i t_i + \mu_{p,j_c}` when the top never queues) and the bottoms wait
:math:`t_c` minus their finish at the barrier. Per cluster

.. math::

    W_c = \frac{1}{N_c} \sum_{i \in \mathcal B_c} \Big(\max_{i' \in \mathcal B_c} t_{i'} - t_i\Big), \qquad
    \Phi_c = \frac{1}{N_c} \sum_{i \in \mathcal B_c} \phi_i, \qquad
    U_c = \lambda \frac{W_c}{\bar W} + (1 - \lambda) \frac{D(\Phi_c \,\|\, \Phi_0)}{\bar D}

(the waiting time of Eq. 11 and the utility of Eq. 14), with :math:`D` the Kullback-Leibler divergence or the L1
distance, :math:`\bar W = \max_i t_i - \min_i t_i` and :math:`\bar D = \max_i D(\phi_i \| \Phi_0)` (1 where
zero). Minimise :math:`\sum_c U_c` subject to :math:`n_{min} \le N_c \le n_{max}`, the top's ingress
:math:`\sum_{i \in \mathcal B_c} r_i \le B_{j_c}` (Eq. 8) and the top not the bottleneck,
:math:`N_c \mu_{p,j_c} \le \max_{i \in \mathcal B_c} t_i` (Eq. 10). Every worker is in exactly one cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le

#: The feature a KL objective declares: the cluster MILP linearises only the L1 distance.
KL_FEATURE = "a KL divergence"


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """Clusters and their top workers.

    Attributes
    ----------
    assignment
        ``(N,)`` the cluster index of every worker, in ``0..C-1``.
    top
        ``(C,)`` the top worker of each cluster (a member of it).
    """

    assignment: Any
    top: Any

    def __post_init__(self) -> None:
        top = int_vector("top", self.top, expected="worker indices")
        a = int_vector("assignment", self.assignment, expected="cluster indices")
        C = top.size
        if a.size and (a.min() < 0 or a.max() >= C):
            raise PlanError(f"`assignment` = {a.tolist()!r}; expected cluster indices in 0..{C - 1} (one per top)")
        if top.size and (top.min() < 0 or top.max() >= a.size):
            raise PlanError(f"`top` = {top.tolist()!r}; expected worker indices in 0..{a.size - 1}")
        if top.size and np.any(a[top] != np.arange(C)):
            c = int(np.flatnonzero(a[top] != np.arange(C))[0])
            raise PlanError(f"`top[{c}]` = {int(top[c])} is in cluster {int(a[top[c]])}; expected a member of "
                            f"cluster {c}")
        object.__setattr__(self, "assignment", a)
        object.__setattr__(self, "top", top)

    @property
    def n_clusters(self) -> int:
        return int(self.top.size)

    def bottoms(self) -> np.ndarray:
        """``(N,)`` bool: the worker is a bottom worker."""
        out = np.ones(self.assignment.size, dtype=bool)
        out[self.top] = False
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"assignment": self.assignment.tolist(), "top": self.top.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterPlan:
        if not isinstance(data, Mapping) or set(data) != {"assignment", "top"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the keys 'assignment' and 'top'")
        return cls(assignment=data["assignment"], top=data["top"])


@dataclass(frozen=True, slots=True)
class ClusteringMetrics:
    """``evaluate(plan)``, one entry per cluster.

    Attributes
    ----------
    cost
        :math:`\\sum_c U_c`.
    utility, waiting_s, divergence
        :math:`U_c`, :math:`W_c` and :math:`D(\\Phi_c \\| \\Phi_0)`.
    iteration_s
        :math:`t_c`, the cluster's iteration (first-come-first-served top, module docstring).
    barrier_wait_s
        The bottoms' mean wait between their finish and :math:`t_c`.
    bottoms
        :math:`N_c`.
    ingress_bps
        :math:`\\sum_{i \\in \\mathcal B_c} r_i`, the top's ingress in use.
    top_load_s, slowest_bottom_s
        :math:`N_c \\mu_{p,j_c}` and :math:`\\max_{i \\in \\mathcal B_c} t_i` (Eq. 10 compares them).
    """

    cost: float
    utility: np.ndarray
    waiting_s: np.ndarray
    divergence: np.ndarray
    iteration_s: np.ndarray
    barrier_wait_s: np.ndarray
    bottoms: np.ndarray
    ingress_bps: np.ndarray
    top_load_s: np.ndarray
    slowest_bottom_s: np.ndarray


def divergence(p: np.ndarray, q: np.ndarray, kind: str) -> np.ndarray:
    """Row-wise :math:`D(p \\| q)`: ``"kl"`` (:math:`\\sum_m p_m \\ln(p_m / q_m)`, terms with :math:`p_m = 0`
    dropped) or ``"l1"`` (:math:`\\sum_m |p_m - q_m|`)."""
    p = np.atleast_2d(p)
    if kind == "l1":
        return np.abs(p - q).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / q), 0.0)
    return np.maximum(terms.sum(axis=1), 0.0)


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class ClientClustering:
    """ParallelSFL's clustering of split-FL workers (the model is in the module docstring).

    Parameters
    ----------
    bottom_s
        ``(N,)`` :math:`\\mu_{b,i}`: seconds of bottom-model compute per iteration.
    top_s
        ``(N,)`` :math:`\\mu_{p,i}`: seconds of top-model compute per bottom mini-batch when worker ``i`` is top.
    smashed_bytes
        :math:`\\sigma`: smashed data plus its gradient per iteration.
    link_bps
        ``(N,)`` :math:`r_i > 0`: the worker's link to its top, bytes/s.
    ingress_bps
        ``(N,)`` :math:`B_i`: the worker's ingress as a top, bytes/s (``inf``: none).
    labels
        ``(N, M)`` sample counts per worker and label (each row with a sample).
    reference
        ``(M,)`` :math:`\\Phi_0` (normalised here; default the pooled labels).
    weight
        :math:`\\lambda \\in [0, 1]`.
    divergence
        ``"kl"`` or ``"l1"``.
    min_bottoms, max_bottoms
        :math:`n_{min} \\ge 1` and :math:`n_{max}`.
    model_bytes
        The full model's bytes, exchanged with the parameter server each round (for the update frequencies).
    server_bps
        ``(N,)`` the worker's link to the parameter server as a top, bytes/s.
    forward_share
        :math:`f`, the forward pass's share of a bottom's compute.
    """

    bottom_s: Any
    top_s: Any
    smashed_bytes: float
    link_bps: Any
    ingress_bps: Any
    labels: Any
    reference: Any = None
    weight: float = 0.5
    divergence: str = "kl"
    min_bottoms: int = 1
    max_bottoms: int = 8
    model_bytes: float = 0.0
    server_bps: Any = None
    forward_share: float = 1.0 / 3.0
    name: str = "client-clustering"
    _normalisers: tuple[float, float] = field(init=False, repr=False, default=(1.0, 1.0))
    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        mu_b = as_array("bottom_s", self.bottom_s, shape=(None,), min_value=0.0)
        N = mu_b.size
        if N < 1:
            raise ProblemDataError("`bottom_s` is empty; expected one value per worker")
        labels = as_array("labels", self.labels, shape=(N, None), min_value=0.0)
        if labels.shape[1] < 1 or np.any(labels.sum(axis=1) <= 0):
            i = int(np.flatnonzero(labels.sum(axis=1) <= 0)[0]) if labels.shape[1] else 0
            raise ProblemDataError(f"`labels`[{i}] has no samples; expected every worker to hold data")
        pooled = labels.sum(axis=0)
        ref = pooled if self.reference is None else as_array("reference", self.reference, shape=(labels.shape[1],),
                                                             min_value=0.0)
        if ref.sum() <= 0:
            raise ProblemDataError("`reference` sums to 0; expected a label distribution")
        if np.any((ref <= 0) & (pooled > 0)):
            m = int(np.flatnonzero((ref <= 0) & (pooled > 0))[0])
            raise ProblemDataError(f"`reference`[{m}] = 0 but workers hold label {m}; expected a positive share")
        lo = int(as_scalar("min_bottoms", self.min_bottoms, min_value=1))
        hi = int(as_scalar("max_bottoms", self.max_bottoms, min_value=lo))
        for key, v in (("min_bottoms", self.min_bottoms), ("max_bottoms", self.max_bottoms)):
            if isinstance(v, bool) or float(v) != int(v):
                raise ProblemDataError(f"`{key}` = {v!r}; expected a whole number")
        fields = {
            "bottom_s": mu_b,
            "top_s": as_array("top_s", self.top_s, shape=(N,), min_value=0.0),
            "smashed_bytes": float(as_scalar("smashed_bytes", self.smashed_bytes, min_value=0.0)),
            "link_bps": as_array("link_bps", self.link_bps, shape=(N,), min_value=0.0, strict_min=True),
            "ingress_bps": as_array("ingress_bps", self.ingress_bps, shape=(N,), min_value=0.0, allow_inf=True),
            "labels": labels, "reference": ref / ref.sum(),
            "weight": float(as_scalar("weight", self.weight, min_value=0.0, max_value=1.0)),
            "divergence": one_of("divergence", self.divergence, ("kl", "l1")),
            "min_bottoms": lo, "max_bottoms": hi,
            "model_bytes": float(as_scalar("model_bytes", self.model_bytes, min_value=0.0)),
            "server_bps": as_array("server_bps", np.ones(N) if self.server_bps is None else self.server_bps,
                                   shape=(N,), min_value=0.0, strict_min=True),
            "forward_share": float(as_scalar("forward_share", self.forward_share, min_value=0.0, max_value=1.0)),
        }
        for key, val in fields.items():
            object.__setattr__(self, key, val)
        t = self.bottom_time_s
        w = float(t.max() - t.min())
        d = float(divergence(self.distributions, self.reference, self.divergence).max())
        object.__setattr__(self, "_normalisers", ((w if w > 0 else 1.0), (d if d > 0 else 1.0)))

    @property
    def n_workers(self) -> int:
        return int(self.bottom_s.size)

    @property
    def features(self) -> frozenset[str]:
        return frozenset({KL_FEATURE}) if self.divergence == "kl" else frozenset()

    @property
    def bottom_time_s(self) -> np.ndarray:
        """``(N,)`` :math:`t_i = \\mu_{b,i} + \\sigma / r_i`."""
        return self.bottom_s + self.smashed_bytes / self.link_bps

    @property
    def distributions(self) -> np.ndarray:
        """``(N, M)`` :math:`\\phi_i`."""
        return self.labels / self.labels.sum(axis=1, keepdims=True)

    @property
    def normalisers(self) -> tuple[float, float]:
        """:math:`(\\bar W, \\bar D)` (computed once, with the data)."""
        return self._normalisers

    def cluster_cost(self, members: np.ndarray) -> np.ndarray:
        """:math:`U` of bottom sets given as an ``(S, N)`` 0/1 matrix (rows without members give 0)."""
        members = np.asarray(members, dtype=float)
        n = members.sum(axis=1)
        t = self.bottom_time_s
        safe = np.maximum(n, 1.0)
        tmax = np.where(members > 0, t, -np.inf).max(axis=1, initial=-np.inf)
        wait = np.where(n > 0, tmax - (members @ t) / safe, 0.0)
        mix = (members @ self.distributions) / safe[:, None]
        div = np.where(n > 0, divergence(mix, self.reference, self.divergence), 0.0)
        w_bar, d_bar = self.normalisers
        return self.weight * wait / w_bar + (1.0 - self.weight) * div / d_bar

    def _plan(self, plan: Any) -> ClusterPlan:
        if not isinstance(plan, ClusterPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a ClusterPlan")
        if plan.assignment.size != self.n_workers:
            raise PlanError(f"`plan.assignment` has {plan.assignment.size} entries; expected {self.n_workers}")
        return plan

    def members(self, plan: ClusterPlan) -> np.ndarray:
        """``(C, N)`` 0/1: the bottom workers of each cluster."""
        plan = self._plan(plan)
        out = np.zeros((plan.n_clusters, self.n_workers))
        bottoms = np.flatnonzero(plan.bottoms())
        out[plan.assignment[bottoms], bottoms] = 1.0
        return out

    def finish_s(self, bottoms: np.ndarray, top: int) -> np.ndarray:
        """When each of ``bottoms`` finishes an iteration with ``top`` (first-come-first-served, module docstring)."""
        bottoms = np.asarray(bottoms, dtype=np.int64)
        half = 0.5 * self.smashed_bytes / self.link_bps[bottoms]
        arrive = self.forward_share * self.bottom_s[bottoms] + half
        served = np.empty(bottoms.size)
        free = 0.0
        for k in np.argsort(arrive, kind="stable"):
            free = max(arrive[k], free) + self.top_s[top]
            served[k] = free
        return served + half + (1.0 - self.forward_share) * self.bottom_s[bottoms]

    def evaluate(self, plan: ClusterPlan) -> ClusteringMetrics:
        """Each cluster's waiting time, divergence, utility, iteration time, ingress and top load."""
        m = self.members(plan)
        t = self.bottom_time_s
        n = m.sum(axis=1)
        slowest = np.where(m > 0, t, -np.inf).max(axis=1, initial=-np.inf)
        slowest = np.where(n > 0, slowest, 0.0)
        safe = np.maximum(n, 1.0)
        wait = np.where(n > 0, slowest - (m @ t) / safe, 0.0)
        div = np.where(n > 0, divergence((m @ self.distributions) / safe[:, None], self.reference, self.divergence),
                       0.0)
        util = self.cluster_cost(m)
        mu_p = self.top_s[plan.top]
        iteration, barrier = np.zeros(plan.n_clusters), np.zeros(plan.n_clusters)
        for c in range(plan.n_clusters):
            done = self.finish_s(np.flatnonzero(m[c] > 0), int(plan.top[c]))
            if done.size:
                iteration[c] = done.max()
                barrier[c] = float((done.max() - done).mean())
        return ClusteringMetrics(cost=float(util.sum()), utility=util, waiting_s=wait, divergence=div,
                                 iteration_s=iteration, barrier_wait_s=barrier, bottoms=n,
                                 ingress_bps=m @ self.link_bps, top_load_s=n * mu_p, slowest_bottom_s=slowest)

    def objective(self, plan: ClusterPlan) -> float:
        """:math:`\\sum_c U_c`."""
        return self.evaluate(plan).cost

    def check(self, plan: ClusterPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Cluster sizes, the tops' ingress (Eq. 8) and the top not the bottleneck (Eq. 10)."""
        m = self.evaluate(plan)
        out = violations_ge("bottoms[{i}]", m.bottoms, self.min_bottoms, tol)
        out += violations_le("bottoms[{i}]", m.bottoms, self.max_bottoms, tol)
        out += violations_le("ingress[{i}]", m.ingress_bps, self.ingress_bps[plan.top], tol)
        out += violations_le("top_bottleneck[{i}]", m.top_load_s, m.slowest_bottom_s, tol)
        return out

    def frequency_problem(self, plan: ClusterPlan, tau_max: int = 5, round_bound_s: float = float("inf")) -> Any:
        """The :class:`~edgeplan.formulations.clustering.frequency.UpdateFrequency` of ``plan``'s clusters: their
        iteration times, full-model exchanges :math:`2 \\cdot` ``model_bytes`` over the top's server link, and
        bottom counts."""
        from edgeplan.formulations.clustering.frequency import UpdateFrequency

        m = self.evaluate(plan)
        return UpdateFrequency(iteration_s=m.iteration_s, sync_s=2.0 * self.model_bytes / self.server_bps[plan.top],
                               bottoms=m.bottoms, tau_max=tau_max, round_bound_s=round_bound_s,
                               name=f"{self.name}-frequency")


__all__ = ["KL_FEATURE", "ClientClustering", "ClusterPlan", "ClusteringMetrics", "divergence"]
