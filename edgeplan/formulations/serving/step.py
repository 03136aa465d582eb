r"""One scheduling step of collaborative speculative inference (CoSine): routing, batch and speculation length.

Gao et al., "Collaborative Speculative Inference for Efficient LLM Inference Serving" (CoSine), arXiv
2503.10325. The roles and the scheduler's inputs are the paper's; this step model is ours
(``docs/models/serving.md``).

Pending requests :math:`r = 1..R` have a domain :math:`d_r`, a context of :math:`n_r` tokens and a weight
:math:`w_r`. Drafters :math:`j = 1..J` draft in lock-step rounds (the hub fuses every position before the next):
round :math:`i` takes :math:`\ell + \max_{j : m_{ji} > 0} (a_j + b_j m_{ji})` seconds, where :math:`m_{ji}` is the
number of requests drafter :math:`j` still drafts for in round :math:`i`, and a drafter holds at most
:math:`c_j` requests. A drafter guesses the target's next token for a request of domain :math:`d` with
probability :math:`\alpha_{jd}`. A request drafted by one drafter and speculating :math:`k` tokens then commits,
in expectation, :math:`E(\alpha, k) = \sum_{i=0}^{k} \alpha^i` tokens (accepted drafts plus the target's own
token; Leviathan et al.'s i.i.d. acceptance). A set :math:`S` of drafters drafts a token tree, one chain each,
which the verifier walks trying the chains in order of :math:`\alpha_{jd}` (best first; SpecInfer's rule). Its
first position is accepted with :math:`\alpha_{S d} = 1 - \prod_{j \in S}(1 - \alpha_{jd})` (independent
guesses), through chain :math:`j` with :math:`\pi_j = \alpha_{jd} \prod_{i \text{ before } j} (1 - \alpha_{id})`; the
walk then follows that chain alone, so the tree commits
:math:`E_S(k) = 1 + \sum_{j \in S} \pi_j E(\alpha_{jd}, k - 1)` tokens (:math:`E(\alpha, k)` for one drafter).
The verifier takes
:math:`V = v_0 + v_1 B + v_2 N + v_3 \sum_{r \in \mathcal B} n_r` seconds for a batch :math:`\mathcal B` of
:math:`B` requests and :math:`N = \sum_{r \in \mathcal B} (1 + k_r |S_r|)` verified tokens.

Plan: the batch :math:`\mathcal B`, a drafter set :math:`S_r` (at most :math:`s` drafters) and a speculation length
:math:`k_r \in \{0..K\}` per batched request (:math:`S_r = \emptyset` iff :math:`k_r = 0`). With
:math:`m_{ji} = |\{r : j \in S_r, k_r \ge i\}|`, the step takes

.. math::

    \tau = \sum_{i=1}^{K} \Big[\max_j m_{ji} > 0\Big] \Big(\ell + \max_{j : m_{ji} > 0} (a_j + b_j m_{ji})\Big) + V
    \quad (V = 0 \text{ for an empty batch})

and costs :math:`\omega\tau - \theta \sum_{r \in \mathcal B} w_r E_{S_r}(k_r)`: every request in
flight waits :math:`\tau` (weighted by :math:`\omega`), and every committed token saves its request
:math:`\theta` seconds of later decoding (weighted by :math:`w_r`, which grows with the time already waited).
Constraints: :math:`m_{j1} \le c_j`; :math:`N \le N_{max}`; verifier memory
:math:`\mu \sum_{r \in \mathcal B}(n_r + 1 + k_r |S_r|) \le M`; :math:`\tau \le L`; the urgent requests are in
the batch.
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
class ServingPlan:
    """Which requests are verified this step, by which drafters, with how many drafted tokens.

    Attributes
    ----------
    routes
        One entry per pending request: ``None`` (not in the batch), or the sorted tuple of drafters that draft for
        it (empty: the verifier decodes one token without a draft).
    lengths
        One speculation length :math:`k_r` per request (0 outside the batch and without drafters).
    """

    routes: Any
    lengths: Any

    def __post_init__(self) -> None:
        if not isinstance(self.routes, list | tuple):
            raise PlanError(f"`routes` = {self.routes!r}; expected one entry (None or drafter list) per request")
        out: list[tuple[int, ...] | None] = []
        for r, route in enumerate(self.routes):
            if route is None:
                out.append(None)
                continue
            if isinstance(route, tuple) and all(type(j) is int and j >= 0 for j in route) \
                    and len(set(route)) == len(route):  # the common case, checked without numpy
                out.append(tuple(sorted(route)))
                continue
            if not isinstance(route, list | tuple | np.ndarray) or np.ndim(route) != 1:
                raise PlanError(f"`routes[{r}]` = {route!r}; expected None or a list of drafter indices")
            arr = int_vector(f"routes[{r}]", np.asarray(list(route), dtype=np.int64 if len(route) == 0 else None),
                             expected="drafter indices")
            if (arr.size and arr.min() < 0) or len(set(arr.tolist())) != arr.size:
                raise PlanError(f"`routes[{r}]` = {arr.tolist()!r}; expected distinct non-negative drafter indices")
            out.append(tuple(sorted(arr.tolist())))
        k = int_vector("lengths", self.lengths, len(out), per="one speculation length per request",
                       expected="whole numbers of draft tokens")
        if k.size and k.min() < 0:
            raise PlanError(f"`lengths` = {k.tolist()!r}; expected values >= 0")
        for r, route in enumerate(out):
            if (route is None or not route) and k[r] > 0:
                raise PlanError(f"`lengths[{r}]` = {int(k[r])} but request {r} has no drafter; expected 0")
            if route and k[r] == 0:
                raise PlanError(f"`routes[{r}]` = {list(route)!r} with `lengths[{r}]` = 0; a request with drafters "
                                "drafts at least one token")
        object.__setattr__(self, "routes", tuple(out))
        object.__setattr__(self, "lengths", k)

    @property
    def batch(self) -> np.ndarray:
        """Indices of the batched requests."""
        return np.array([r for r, s in enumerate(self.routes) if s is not None], dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"routes": [None if s is None else list(s) for s in self.routes], "lengths": self.lengths.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServingPlan:
        if not isinstance(data, Mapping) or set(data) != {"routes", "lengths"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the keys 'routes' and 'lengths'")
        return cls(routes=data["routes"], lengths=data["lengths"])


@dataclass(frozen=True, slots=True)
class ServingMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    cost
        The objective :math:`\\omega\\tau - \\theta \\sum_{r \\in \\mathcal B} w_r E_r`.
    step_s, draft_s, verify_s
        :math:`\\tau`, its drafting part and :math:`V`.
    expected_tokens
        ``(R,)`` :math:`E_r` (0 outside the batch).
    acceptance
        ``(R,)`` :math:`\\alpha_{S_r d_r}` (0 without drafters).
    load
        ``(J,)`` :math:`m_{j1}`, the requests each drafter holds.
    round_s
        ``(k̄,)`` the time of each draft round.
    tokens, memory_bytes
        :math:`N` and the verifier's KV bytes.
    """

    cost: float
    step_s: float
    draft_s: float
    verify_s: float
    expected_tokens: np.ndarray
    acceptance: np.ndarray
    load: np.ndarray
    round_s: np.ndarray
    tokens: float
    memory_bytes: float


def expected_tokens(alpha: Any, k: Any) -> np.ndarray:
    """:math:`E(\\alpha, k) = \\sum_{i=0}^{k} \\alpha^i` (elementwise; exact at :math:`\\alpha = 1`)."""
    alpha, k = np.broadcast_arrays(np.asarray(alpha, dtype=float), np.asarray(k, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = (1.0 - alpha ** (k + 1)) / (1.0 - alpha)
    return np.where(alpha >= 1.0, k + 1.0, closed)


def first_landing(alpha: Any) -> np.ndarray:
    """:math:`\\pi_j = \\alpha_j \\prod_{i < j} (1 - \\alpha_i)`: the chance that a tree's first position lands through
    chain ``j`` (``alpha`` ``(..., s)``: the chains in the order they are tried)."""
    alpha = np.asarray(alpha, dtype=float)
    return alpha * np.cumprod(np.concatenate([np.ones((*alpha.shape[:-1], 1)), 1.0 - alpha[..., :-1]], -1), -1)


def tree_tokens(alpha: Any, k: Any) -> np.ndarray:
    """:math:`E_S(k) = 1 + \\sum_j \\pi_j E(\\alpha_j, k - 1)` of token trees (module docstring), elementwise over the
    leading axes: ``alpha`` ``(..., s)`` holds each tree's chains in the order they are tried (zeros pad), ``k``
    ``(...)`` the speculation lengths; 1 where ``k`` = 0. One chain gives :func:`expected_tokens`."""
    alpha = np.asarray(alpha, dtype=float)
    k = np.asarray(k, dtype=float)
    if alpha.shape[-1] == 1:  # one chain
        return expected_tokens(alpha[..., 0], k)
    rest = expected_tokens(alpha, np.maximum(k - 1.0, 0.0)[..., None])
    return np.where(k > 0, 1.0 + (first_landing(alpha) * rest).sum(-1), 1.0)


def verify_time(verify_s: Any, batch: float, tokens: float, context: float) -> float:
    r""":math:`V = v_0 + v_1 B + v_2 N + v_3 \sum n_r` for a non-empty batch (``verify_s`` = :math:`(v_0..v_3)`)."""
    v0, v1, v2, v3 = (float(v) for v in verify_s)
    return v0 + v1 * batch + v2 * tokens + v3 * context


def _pairs(routes: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (request, drafter) pairs of per-request drafter sets, flattened."""
    pr = np.array([r for r, s in enumerate(routes) if s for _ in s], dtype=np.int64)
    pj = np.array([j for s in routes if s for j in s], dtype=np.int64)
    return pr, pj


def _scalar(name: str, value: Any, **kw: Any) -> float:
    return float(as_scalar(name, value, min_value=0.0, **kw))


def _count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ProblemDataError(f"`{name}` = {value!r}; expected a whole number >= {low}")
    return int(value)


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class SpeculativeServing:
    """One CoSine scheduling step (the model is in the module docstring).

    Parameters
    ----------
    domain
        ``(R,)`` :math:`d_r`, each in ``0..D-1``.
    context_tokens
        ``(R,)`` :math:`n_r`.
    acceptance
        ``(J, D)`` :math:`\\alpha_{jd} \\in [0, 1]`.
    draft_capacity
        ``(J,)`` :math:`c_j`, the most requests a drafter holds.
    draft_base_s, draft_per_request_s
        ``(J,)`` :math:`a_j, b_j`: seconds per draft round.
    verify_s
        :math:`(v_0, v_1, v_2, v_3)`: seconds per batch, per request, per verified token, per context token.
    max_verify_tokens
        :math:`N_{max}` (``inf``: none).
    kv_bytes_per_token, verifier_memory_bytes
        :math:`\\mu` and :math:`M` (``inf``: none).
    max_speculation
        :math:`K`.
    max_drafters
        :math:`s`, drafters per request (1: routing; more: token trees).
    weight
        ``(R,)`` :math:`w_r` (default 1).
    urgent
        ``(R,)`` bool, requests that must be in the batch (default none).
    hop_s
        :math:`\\ell`.
    token_value_s
        :math:`\\theta`.
    latency_weight
        :math:`\\omega`.
    step_bound_s
        :math:`L` (``inf``: none).
    """

    domain: Any
    context_tokens: Any
    acceptance: Any
    draft_capacity: Any
    draft_base_s: Any
    draft_per_request_s: Any
    verify_s: Any
    max_verify_tokens: float = float("inf")
    kv_bytes_per_token: float = 0.0
    verifier_memory_bytes: float = float("inf")
    max_speculation: int = 8
    max_drafters: int = 1
    weight: Any = None
    urgent: Any = None
    hop_s: float = 0.0
    token_value_s: float = 0.05
    latency_weight: float = 1.0
    step_bound_s: float = float("inf")
    name: str = "speculative-step"
    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        alpha = as_array("acceptance", self.acceptance, shape=(None, None), min_value=0.0, max_value=1.0)
        J, D = alpha.shape
        if J < 1 or D < 1:
            raise ProblemDataError(f"`acceptance` has shape {alpha.shape}; expected (drafters >= 1, domains >= 1)")
        dom = as_array("domain", self.domain, shape=(None,), dtype=np.int64, min_value=0, max_value=D - 1)
        R = dom.size
        ctx = as_array("context_tokens", self.context_tokens, shape=(R,), min_value=0.0)
        cap = as_array("draft_capacity", self.draft_capacity, shape=(J,), min_value=0.0)
        if np.any(cap != np.round(cap)):
            raise ProblemDataError(f"`draft_capacity` = {cap.tolist()!r}; expected whole numbers of requests")
        v = as_array("verify_s", self.verify_s, shape=(4,), min_value=0.0)
        w = as_array("weight", np.ones(R) if self.weight is None else self.weight, shape=(R,), min_value=0.0)
        urgent = np.zeros(R, dtype=bool) if self.urgent is None else self.urgent
        if np.asarray(urgent).dtype != bool:
            raise ProblemDataError(f"`urgent` = {self.urgent!r}; expected a bool per request")
        urgent = as_array("urgent", urgent, shape=(R,), dtype=bool)
        fields = {
            "domain": dom, "context_tokens": ctx, "acceptance": alpha, "draft_capacity": cap, "verify_s": v,
            "draft_base_s": as_array("draft_base_s", self.draft_base_s, shape=(J,), min_value=0.0),
            "draft_per_request_s": as_array("draft_per_request_s", self.draft_per_request_s, shape=(J,),
                                            min_value=0.0),
            "weight": w, "urgent": urgent,
            "max_verify_tokens": _scalar("max_verify_tokens", self.max_verify_tokens)
            if np.isfinite(float(self.max_verify_tokens)) else float("inf"),
            "kv_bytes_per_token": _scalar("kv_bytes_per_token", self.kv_bytes_per_token),
            "verifier_memory_bytes": _scalar("verifier_memory_bytes", self.verifier_memory_bytes)
            if np.isfinite(float(self.verifier_memory_bytes)) else float("inf"),
            "max_speculation": _count("max_speculation", self.max_speculation, 0),
            "max_drafters": _count("max_drafters", self.max_drafters, 1),
            "hop_s": _scalar("hop_s", self.hop_s), "token_value_s": _scalar("token_value_s", self.token_value_s),
            "latency_weight": _scalar("latency_weight", self.latency_weight),
            "step_bound_s": _scalar("step_bound_s", self.step_bound_s)
            if np.isfinite(float(self.step_bound_s)) else float("inf"),
        }
        for key, val in fields.items():
            object.__setattr__(self, key, val)

    @property
    def n_requests(self) -> int:
        return int(self.domain.size)

    @property
    def n_drafters(self) -> int:
        return int(self.acceptance.shape[0])

    @property
    def n_domains(self) -> int:
        return int(self.acceptance.shape[1])

    def _routes(self, plan: Any) -> ServingPlan:
        if not isinstance(plan, ServingPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a ServingPlan")
        if len(plan.routes) != self.n_requests:
            raise PlanError(f"`plan.routes` has {len(plan.routes)} entries; expected {self.n_requests}")
        J = self.n_drafters
        for r, s in enumerate(plan.routes):
            if s and s[-1] >= J:
                raise PlanError(f"`plan.routes[{r}]` = {list(s)!r}; expected drafters in 0..{J - 1}")
        return plan

    def evaluate(self, plan: ServingPlan) -> ServingMetrics:
        """Step time, expected committed tokens, loads, tokens and memory of ``plan``."""
        plan = self._routes(plan)
        J = self.n_drafters
        k = plan.lengths.astype(float)
        in_batch = np.array([s is not None for s in plan.routes], dtype=bool)
        width = np.array([len(s) if s else 0 for s in plan.routes], dtype=float)
        kbar = int(plan.lengths.max(initial=0))
        pr, pj = _pairs(plan.routes)
        chains = self.chain_acceptance(plan.routes)
        alpha = 1.0 - np.prod(1.0 - chains, axis=1)  # the first position's acceptance, alpha_S
        ends = np.zeros((J, kbar + 1))  # m_ji by differences: +1 at round 0, -1 after round k_r
        np.add.at(ends, (pj, 0), 1.0)
        np.add.at(ends, (pj, plan.lengths[pr]), -1.0)
        drafting = np.cumsum(ends, axis=1)[:, :kbar]
        exp = np.where(in_batch, tree_tokens(chains, k), 0.0)
        per = np.where(drafting > 0, self.draft_base_s[:, None] + self.draft_per_request_s[:, None] * drafting, -np.inf)
        round_s = self.hop_s + per.max(axis=0) if kbar else np.zeros(0)
        draft = float(round_s.sum())
        B = float(in_batch.sum())
        tokens = float((in_batch + k * width).sum())
        verify = verify_time(self.verify_s, B, tokens, float(self.context_tokens[in_batch].sum())) if B else 0.0
        step = draft + verify
        memory = self.kv_bytes_per_token * float((self.context_tokens + 1.0)[in_batch].sum() + (k * width).sum())
        cost = step * self.latency_weight - self.token_value_s * float((self.weight * exp).sum())
        return ServingMetrics(cost=cost, step_s=step, draft_s=draft, verify_s=verify, expected_tokens=exp,
                              acceptance=alpha, load=drafting[:, 0] if kbar else np.zeros(J), round_s=round_s,
                              tokens=tokens, memory_bytes=memory)

    def objective(self, plan: ServingPlan) -> float:
        """:math:`\\omega\\tau - \\theta \\sum_{r \\in \\mathcal B} w_r E_r`."""
        return self.evaluate(plan).cost

    def check(self, plan: ServingPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Drafter capacities, drafters per request, speculation lengths, verifiable tokens, verifier memory,
        the step bound and the urgent requests."""
        m = self.evaluate(plan)
        width = [len(s) if s else 0 for s in plan.routes]
        out = violations_le("drafter_load[{i}]", m.load, self.draft_capacity, tol)
        out += violations_le("drafters_per_request[{i}]", width, self.max_drafters, tol)
        out += violations_le("speculation_length[{i}]", plan.lengths, self.max_speculation, tol)
        out += violations_le(["verify_tokens"], [m.tokens], self.max_verify_tokens, tol)
        out += violations_le(["verifier_memory"], [m.memory_bytes], self.verifier_memory_bytes, tol)
        out += violations_le(["step_s"], [m.step_s], self.step_bound_s, tol)
        served = np.array([s is not None for s in plan.routes], dtype=float)
        if self.urgent.any():
            idx = np.flatnonzero(self.urgent)
            out += violations_ge([f"urgent[{r}]" for r in idx], served[idx], 1.0, tol)
        return out

    def to_milp(self) -> tuple[Any, Any]:
        """The step as a MILP (:mod:`edgeplan.formulations.serving.milp`); every MILP backend solves it."""
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self)

    def chain_acceptance(self, routes: list[tuple[int, ...] | None]) -> np.ndarray:
        """``(R, s)`` each request's :math:`\\alpha_{j d_r}` over its drafters in the order the verifier tries their
        chains (best first, ties by index), zeros after (and for requests without drafters); ``s`` = the
        longest route (at least 1)."""
        pr, pj = _pairs(routes)
        a = self.acceptance[pj, self.domain[pr]]
        if pr.size < 2 or np.all(pr[1:] > pr[:-1]):  # one drafter each
            out = np.zeros((len(routes), 1))
            out[pr, 0] = a
            return out
        order = np.lexsort((pj, -a, pr))  # by request, then best first, then by index
        pr, a = pr[order], a[order]
        slot = np.arange(pr.size) - np.searchsorted(pr, pr)  # position within the request's group
        out = np.zeros((len(routes), int(slot.max(initial=0)) + 1))
        out[pr, slot] = a
        return out

    def try_order(self, r: int, route: tuple[int, ...]) -> tuple[int, ...]:
        """``route`` in the order the verifier tries request ``r``'s chains (best :math:`\\alpha_{j d_r}` first, ties
        by index)."""
        d = int(self.domain[r])
        return tuple(sorted(route, key=lambda j: (-float(self.acceptance[j, d]), j)))

    def routes_of(self) -> list[tuple[int, ...]]:
        """Every drafter set a request may use: the empty set, then sets of 1..``max_drafters`` drafters with
        spare capacity, in lexicographic order."""
        from itertools import combinations

        ok = [j for j in range(self.n_drafters) if self.draft_capacity[j] >= 1]
        out: list[tuple[int, ...]] = [()]
        if self.max_speculation > 0:
            for size in range(1, min(self.max_drafters, len(ok)) + 1):
                out += list(combinations(ok, size))
        return out


__all__ = ["ServingMetrics", "ServingPlan", "SpeculativeServing", "expected_tokens", "first_landing", "tree_tokens",
           "verify_time"]
