r"""HFedMoE: expert importance from router scores, budgeted expert selection, sparsity-aware aggregation.

Fang et al., "HFedMoE", arXiv 2601.00583 (equations as reproduced in two public reading notes; the numbers
follow the paper). The model in our words: ``docs/models/finetune.md``.

Importance of expert :math:`e` on a batch of :math:`B` samples with router probabilities :math:`G_e(x_i)`
(:func:`expert_importance`):

.. math::

    s^{cum}(e) = \tfrac1B \textstyle\sum_i G_e(x_i),\quad s^{spec}(e) = \max_i G_e(x_i),\quad
    s(e) = \lambda s^{cum}(e) + (1-\lambda) s^{spec}(e),\\
    I(e) = s(e) - \beta\,\tfrac1B \textstyle\sum_i G_e(x_i) \log\frac{G_e(x_i)}{p(e)},\quad
    p(e) = s^{cum}(e)

(the information-bottleneck proxy of eqs. 10-14). :class:`ExpertSelection` is eq. 15 with heterogeneous
expert costs :math:`\kappa_e` (a 0/1 knapsack; with unit costs, the top-:math:`C` experts):

.. math::

    \max_{S \subseteq \mathcal E_{union}} \sum_{e \in S} I(e) \quad\text{s.t.}\quad
    \sum_{e \in S} \kappa_e \le C_{budget},\ \ |S| \le C_{max}

Only the selected experts receive gradients in the batch's backward pass. Aggregation:
:func:`sparsity_aware_expert_average` (eqs. 16-17) and :func:`gating_weights` (eqs. 18-21, normalised).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_le
from edgeplan.formulations.milp import MILP


def _gates(gates: Any) -> np.ndarray:
    g = as_array("gates", gates, shape=(None, None), min_value=0.0, max_value=1.0)
    if g.shape[0] < 1 or g.shape[1] < 1:
        raise ProblemDataError(f"`gates` has shape {g.shape}; expected (B, E) with B, E >= 1")
    return g


def expert_importance(gates: Any, *, lam: float = 0.5, beta: float = 0.1) -> np.ndarray:
    """``(E,)`` :math:`I(e)` from the router probabilities of one batch (see the module docstring).

    Parameters
    ----------
    gates
        ``(B, E)`` router probabilities :math:`G_e(x_i)`.
    lam
        :math:`\\lambda`, the weight of the cumulative score against the specific one.
    beta
        :math:`\\beta`, the weight of the KL term of the information-bottleneck proxy.
    """
    g = _gates(gates)
    lam = as_scalar("lam", lam, min_value=0.0, max_value=1.0)
    beta = as_scalar("beta", beta, min_value=0.0)
    cum, spec = g.mean(axis=0), g.max(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(g > 0, g / np.where(cum > 0, cum, 1.0)[None, :], 1.0)
        kl = (g * np.log(ratio)).mean(axis=0)
    return lam * cum + (1.0 - lam) * spec - beta * kl


def routed_experts(gates: Any, top_k: int) -> np.ndarray:
    """``(E,)`` bool: :math:`\\mathcal E_{union}`, the experts in some sample's top-``top_k``.

    Parameters
    ----------
    gates
        ``(B, E)`` router probabilities.
    top_k
        Experts each sample is routed to.
    """
    g = _gates(gates)
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or not 1 <= top_k <= g.shape[1]:
        raise ProblemDataError(f"`top_k` = {top_k!r}; expected an integer in 1..{g.shape[1]}")
    top = np.argsort(-g, axis=1, kind="stable")[:, :top_k]
    out = np.zeros(g.shape[1], dtype=bool)
    out[np.unique(top)] = True
    return out


def sparsity_aware_expert_average(expert_params: Any, usage: Any, data_sizes: Any, tau: float) -> np.ndarray:
    """Eqs. 16-17: expert :math:`e`'s new weights average the clients whose usage :math:`u_c(e) \\ge \\tau`,
    weighted by data size; an expert no client uses enough keeps the plain data-weighted average.

    Parameters
    ----------
    expert_params
        ``(C, E, P)``: each client's copy of each expert's parameters (flattened).
    usage
        ``(C, E)``: :math:`u_c(e)`, the mean router probability of expert :math:`e` over client :math:`c`'s data.
    data_sizes
        ``(C,)``: :math:`|D_c|`.
    tau
        :math:`\\tau`, the usage threshold.

    Returns
    -------
    numpy.ndarray
        ``(E, P)``: the aggregated experts.
    """
    w = np.asarray(expert_params, dtype=float)
    if w.ndim != 3:
        raise ProblemDataError(f"`expert_params` has shape {w.shape}; expected (clients, experts, parameters)")
    u = as_array("usage", usage, shape=w.shape[:2], min_value=0.0)
    n = as_array("data_sizes", data_sizes, shape=(w.shape[0],), min_value=0.0)
    keep = (u >= tau) * n[:, None]  # (C, E)
    tot = keep.sum(axis=0)
    fallback = np.broadcast_to(n[:, None], keep.shape)
    weights = np.where(tot[None, :] > 0, keep, fallback)
    weights = weights / np.maximum(weights.sum(axis=0, keepdims=True), 1e-300)
    return np.einsum("ce,cep->ep", weights, w)


def gating_weights(usage: Any, scores: Any, tau: float) -> np.ndarray:
    """Eqs. 18-21: each client's weight :math:`\\alpha(c) \\propto \\sum_{e \\in S_c} u_c(e) s_c(e)` over
    :math:`|S_{global}|`, normalised to sum to 1 (uniform when every client's is 0).

    Parameters
    ----------
    usage
        ``(C, E)``: :math:`u_c(e)`.
    scores
        ``(C, E)``: :math:`s^c(e)`, the client's importance scores.
    tau
        :math:`\\tau`, the usage threshold that defines :math:`S_c`.
    """
    u = as_array("usage", usage, shape=(None, None), min_value=0.0)
    s = as_array("scores", scores, shape=u.shape)
    used = u >= tau
    n_global = max(int(used.any(axis=0).sum()), 1)
    alpha = (np.where(used, u * s, 0.0).sum(axis=1)) / n_global
    tot = alpha.sum()
    return alpha / tot if tot > 0 else np.full(u.shape[0], 1.0 / u.shape[0])


@dataclass(frozen=True, slots=True)
class ExpertPlan:
    """The experts that receive gradients in the batch.

    Attributes
    ----------
    selected
        Expert indices (stored sorted).
    """

    selected: Any

    def __post_init__(self) -> None:
        if isinstance(self.selected, str | bytes | Mapping) or self.selected is None:
            raise PlanError(f"`selected` = {self.selected!r}; expected a sequence of expert indices")
        v = int_vector("selected", list(self.selected) if not isinstance(self.selected, np.ndarray)
                       else self.selected, expected="expert indices")
        if len(set(v.tolist())) != v.size:
            raise PlanError(f"`selected` = {v.tolist()!r} has duplicates; expected distinct experts")
        object.__setattr__(self, "selected", tuple(sorted(v.tolist())))

    def to_dict(self) -> dict[str, list[int]]:
        return {"selected": list(self.selected)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExpertPlan:
        if not isinstance(data, Mapping) or set(data) != {"selected"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the key 'selected'")
        return cls(selected=data["selected"])


@dataclass(frozen=True, slots=True)
class ExpertMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    objective
        :math:`\\sum_{e \\in S} I(e)`.
    cost, n_selected
        :math:`\\sum_{e \\in S}\\kappa_e` and :math:`|S|`.
    not_routed
        Selected experts outside :math:`\\mathcal E_{union}`.
    """

    objective: float
    cost: float
    n_selected: int
    not_routed: int


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class ExpertSelection:
    """HFedMoE's budgeted expert selection for one batch (eq. 15 with expert costs).

    Parameters
    ----------
    importance
        ``(E,)`` :math:`I(e)` (:func:`expert_importance`; may be negative).
    cost
        ``(E,)`` :math:`\\kappa_e \\ge 0` (e.g. the expert's backward FLOPs, or 1 each).
    budget
        :math:`C_{budget}` in the unit of ``cost``.
    routed
        ``(E,)`` bool :math:`\\mathcal E_{union}`; default all experts.
    max_experts
        :math:`C_{max}` (``None``: no cardinality cap).
    router_score
        ``(E,)`` the router's cumulative score :math:`s^{cum}(e)` (what plain top-k routing ranks by; the
        ``router-topk`` baseline); default ``importance``.
    """

    importance: Any
    cost: Any
    budget: float
    routed: Any = None
    max_experts: int | None = None
    router_score: Any = None
    name: str = "experts"
    sense: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        imp = as_array("importance", self.importance, shape=(None,))
        if imp.size < 1:
            raise ProblemDataError("`importance` is empty; expected one entry per expert")
        cost = as_array("cost", self.cost, shape=(imp.size,), min_value=0.0)
        budget = as_scalar("budget", self.budget, min_value=0.0)
        routed = np.ones(imp.size, dtype=bool) if self.routed is None else self.routed
        routed = as_array("routed", routed, shape=(imp.size,), dtype=bool)
        cap = self.max_experts
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int | np.integer) or cap < 0):
            raise ProblemDataError(f"`max_experts` = {cap!r}; expected a non-negative integer or None")
        score = as_array("router_score", imp if self.router_score is None else self.router_score, shape=(imp.size,))
        for key, value in (("importance", imp), ("cost", cost), ("budget", budget), ("routed", routed),
                           ("router_score", score),
                           ("max_experts", None if cap is None else int(cap))):
            object.__setattr__(self, key, value)

    @property
    def n_experts(self) -> int:
        return int(self.importance.size)

    def _mask(self, plan: Any) -> np.ndarray:
        if not isinstance(plan, ExpertPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected an ExpertPlan")
        sel = np.asarray(plan.selected, dtype=int)
        if sel.size and (sel[0] < 0 or sel[-1] >= self.n_experts):
            raise PlanError(f"`plan.selected` = {list(plan.selected)!r}; expected experts in 0..{self.n_experts - 1}")
        mask = np.zeros(self.n_experts, dtype=bool)
        mask[sel] = True
        return mask

    def evaluate(self, plan: ExpertPlan) -> ExpertMetrics:
        """Importance, cost and size of the selected set."""
        m = self._mask(plan)
        return ExpertMetrics(objective=float(self.importance[m].sum()), cost=float(self.cost[m].sum()),
                             n_selected=int(m.sum()), not_routed=int((m & ~self.routed).sum()))

    def objective(self, plan: ExpertPlan) -> float:
        """:math:`\\sum_{e \\in S} I(e)`."""
        return self.evaluate(plan).objective

    def check(self, plan: ExpertPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Budget, cardinality and :math:`S \\subseteq \\mathcal E_{union}`."""
        m = self.evaluate(plan)
        out = violations_le(["cost"], [m.cost], [self.budget], tol)
        if self.max_experts is not None:
            out += violations_le(["n_selected"], [float(m.n_selected)], [float(self.max_experts)], tol)
        return out + violations_le(["not_routed"], [float(m.not_routed)], [0.0], tol)

    def to_milp(self) -> tuple[MILP, Any]:
        """The 0/1 knapsack with a cardinality row: :math:`\\max I^\\top x` s.t. :math:`\\kappa^\\top x \\le C`,
        :math:`\\mathbf 1^\\top x \\le C_{max}`, :math:`x_e = 0` off :math:`\\mathcal E_{union}`."""
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self)


__all__ = ["ExpertMetrics", "ExpertPlan", "ExpertSelection", "expert_importance", "gating_weights",
           "routed_experts", "sparsity_aware_expert_average"]
