r"""CoCa cache placement: which cache layers each client activates and which classes it caches.

Liang, Liu, Xu, Qiao, Huang, "Many Hands Make Light Work: Accelerating Edge Inference via Multi-Client
Collaborative Caching", arXiv 2412.10382 (ICDE 2025). The model in our words, with what is reconstructed:
``docs/models/cache.md``.

System
------
Clients :math:`i = 1..N` run the whole model locally. The model has candidate cache layers
:math:`l = 0..L-1` at block outputs (block :math:`l` ends at cache layer :math:`l`; block :math:`L` is the
head). The edge server keeps a global cache of class centres :math:`G[l][c]` for :math:`C` classes and gives
client :math:`i` a plan :math:`(K_i, A_i)`: the :math:`k_i = |K_i|` classes it caches and the layers
:math:`A_i` where it looks them up. At each active layer the client compares the sample's semantic vector with
the cached centres and exits early with the cached label on a confident hit.

**Hot-spot classes** (CoCa's rule): :math:`K_i` is the top-:math:`k_i` prefix of the client's class ranking
``class_rank`` (by default, request probability :math:`p_{ic}` descending: the frequency x recency
importance of :func:`edgeplan.formulations.cache.instances.class_importance`). What is optimised is
:math:`k_i` and :math:`A_i`; ``check`` reports a class set that is not such a prefix.

Separable hit model (the model of :class:`CachePlacement`) [assumption]
------------------------------------------------------------------------
A request of class :math:`c` at client :math:`i` that caches its top :math:`k` classes has a *recognition
depth* :math:`D`: the first layer from which a lookup hits. It exits at the first active layer
:math:`\ge D` (no hit when there is none). Recognition is monotone (a request recognised at :math:`l` is
recognised at every deeper layer), so the exit layer depends only on :math:`D` and :math:`A_i`.
Data, per client, class count, layer and class (calibrated from a recorded stream, e.g.
:meth:`edgeplan.formulations.cache.replay.CacheReplay.to_placement`):

* ``hit_prob`` :math:`r_{ikl c} = \Pr(D = l)` (for a class outside :math:`K_i` this is a *false* hit),
* ``hit_precision`` :math:`a_{iklc}`: probability that the label of an exit at :math:`l` agrees with the
  reference (the uncached model's prediction), and ``full_precision`` :math:`a^{full}_{ic}` for a miss.

With survival :math:`S_c(u) = 1 - \sum_{l \le u} r_{klc}` (:math:`S_c(-1) = 1`), block times :math:`t_l`,
prefix times :math:`P_l = \sum_{b \le l} t_b`, lookup cost :math:`g_l + \kappa_l k` (fixed part: pooling and
normalisation; :math:`\kappa_l \propto d_l`: one cosine per cached entry), and active layers
:math:`l_1 < \dots < l_m` (:math:`l_0 = -1`, :math:`l_{m+1} = L`):

.. math::

    \mathbb E[T_i] &= \sum_c p_c \Big[\sum_{j=1}^{m} S_c(l_{j-1})\,\big(P_{l_j} - P_{l_{j-1}} + g_{l_j}
        + \kappa_{l_j} k\big) + S_c(l_m)\,(P_L - P_{l_m})\Big] \\
    \mathrm{Acc}_i &= \sum_c p_c \Big[\sum_{j=1}^{m} a_{l_j c}\,\big(S_c(l_{j-1}) - S_c(l_j)\big)
        + S_c(l_m)\, a^{full}_c\Big]

Every term depends only on a pair of consecutive active layers: the cost of a plan is the length of a path
:math:`-1 \to l_1 \to \dots \to l_m \to L` in a DAG (:meth:`CachePlacement.arc_tables`), which makes the
layer DP and the MILP of :meth:`CachePlacement.to_milp` exact for this model.

Problem
-------
.. math::

    \min_{k, A}\ \sum_i w_i\,\mathbb E[T_i] \quad(\text{``goal="latency"``; or }
        \max \textstyle\sum_i w_i \mathrm{Acc}_i \text{ with ``goal="accuracy"``})\\
    \text{s.t.}\ \ \mathrm{Acc}_i \ge \underline{a}_i,\ \ \mathbb E[T_i] \le \bar T_i,\ \
        k_i |A_i| \le B_i,\ \ \beta k_i \textstyle\sum_{l \in A_i} d_l \le M_i,\ \ |A_i| \le m_{\max}

(accuracy floor, latency SLO, entry budget, memory budget with ``bytes_per_value`` :math:`\beta`, layer cap).
Clients do not share a constraint, so the problem separates by client.

Choices where the paper is silent
---------------------------------
* The separable recognition-depth model above and the objective/constraint set (``docs/models/cache.md`` lists what is a
  reconstruction). Hit rates depend on :math:`k` (fewer cached classes, larger margins), hence the ``k``
  axis of the data; arrays without it are broadcast.
* "Accuracy" is agreement with a reference label (by default the uncached model's prediction, so
  ``full_precision`` = 1): no ground truth exists online.
* With :math:`k = 0` nothing hits whatever the data says; active layers then only cost :math:`g_l`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le
from edgeplan.formulations.cache.plan import CacheMetrics, CachePlan
from edgeplan.formulations.milp import MILP

GOALS = ("latency", "accuracy")
#: Tolerance on ``sum(request_prob) == 1`` and on ``sum_l hit_prob <= 1``.
PROB_TOL = 1e-6
#: HiGHS options for a tight optimum of :meth:`CachePlacement.to_milp` (objectives in seconds).
TIGHT_HIGHS = {"mip_rel_gap": 1e-9, "highs_options": {"mip_abs_gap": 0.0}}


def _per_client(name: str, value: Any, n: int, **kw: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=float) if not isinstance(value, np.ndarray) else value
    if np.ndim(arr) == 0:
        arr = np.full(n, float(arr))
    return as_array(name, arr, shape=(n,), **kw)


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheSystem(ABC):
    """The data every cache problem shares: timings, dimensions, classes, budgets and the goal.

    Parameters
    ----------
    block_time_s
        ``(N, L+1)`` seconds: block :math:`l < L` ends at cache layer :math:`l`; column :math:`L` is the head.
    lookup_fixed_s
        ``(N, L)`` seconds per active layer independent of :math:`k` (pooling, normalisation, top-2).
    lookup_entry_s
        ``(N, L)`` seconds per cached entry at an active layer (one cosine of dimension :math:`d_l`).
    dims
        ``(L,)`` semantic-vector dimension :math:`d_l` (memory of one entry: ``bytes_per_value * d_l``).
    request_prob
        ``(N, C)`` request probability :math:`p_{ic}` per client (rows sum to 1).
    class_rank
        ``(N, C)`` hot-spot order of the classes per client (a permutation); default: ``request_prob``
        descending (stable).
    weights
        ``(N,)`` non-negative client weights of the objective (e.g. request shares); default ``1/N``.
    max_entries, max_memory_bytes
        Per-client (or scalar) budgets on :math:`k|A|` and on :math:`\\beta k\\sum_{l\\in A} d_l`; ``inf``: none.
    max_layers
        Cap on :math:`|A_i|` (``None``: none).
    accuracy_floor, latency_slo_s
        Per-client (or scalar) :math:`\\mathrm{Acc}_i \\ge` floor and :math:`\\mathbb E[T_i] \\le` SLO.
    goal
        ``"latency"`` (minimise :math:`\\sum_i w_i \\mathbb E[T_i]`) or ``"accuracy"`` (maximise
        :math:`\\sum_i w_i \\mathrm{Acc}_i`).
    bytes_per_value
        Bytes per stored vector component (4 for float32).
    """

    block_time_s: Any
    lookup_fixed_s: Any
    lookup_entry_s: Any
    dims: Any
    request_prob: Any = None
    class_rank: Any = None
    weights: Any = None
    max_entries: Any = np.inf
    max_memory_bytes: Any = np.inf
    max_layers: int | None = None
    accuracy_floor: Any = 0.0
    latency_slo_s: Any = np.inf
    goal: str = "latency"
    bytes_per_value: float = 4.0
    name: str = "cache"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _setup_system(self, n_classes: int) -> None:
        """Validate the shared fields (``request_prob`` already an ``(N, C)`` array or ``None``)."""
        t = as_array("block_time_s", self.block_time_s, shape=(None, None), min_value=0.0)
        n, lp1 = t.shape
        if n < 1 or lp1 < 2:
            raise ProblemDataError(f"`block_time_s` has shape {t.shape}; expected (N, L+1) with N >= 1 clients "
                                   "and L >= 1 cache layers")
        L = lp1 - 1
        g = as_array("lookup_fixed_s", self.lookup_fixed_s, shape=(n, L), min_value=0.0)
        kappa = as_array("lookup_entry_s", self.lookup_entry_s, shape=(n, L), min_value=0.0)
        dims = as_array("dims", self.dims, shape=(L,), min_value=1.0)
        if n_classes < 1:
            raise ProblemDataError(f"the problem has {n_classes} classes; expected at least 1")
        p = self.request_prob
        if p is not None:
            p = as_array("request_prob", p, shape=(n, n_classes), min_value=0.0)
            bad = np.abs(p.sum(axis=1) - 1.0) > PROB_TOL
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ProblemDataError(f"`request_prob`[{i}] sums to {p[i].sum():.9g}; expected 1")
        if self.class_rank is None:
            if p is None:
                raise ProblemDataError("`class_rank` and `request_prob` are both None; expected at least one")
            rank = np.argsort(-p, axis=1, kind="stable")
        else:
            rank = as_array("class_rank", self.class_rank, shape=(n, n_classes), dtype=int)
            ok = (np.sort(rank, axis=1) == np.arange(n_classes)).all(axis=1)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                raise ProblemDataError(f"`class_rank`[{i}] = {rank[i].tolist()!r}; expected a permutation of "
                                       f"0..{n_classes - 1}")
        rank = np.ascontiguousarray(rank)
        rank.setflags(write=False)
        w = np.full(n, 1.0 / n) if self.weights is None else self.weights
        w = as_array("weights", w, shape=(n,), min_value=0.0)
        budgets = {
            "max_entries": _per_client("max_entries", self.max_entries, n, allow_inf=True, min_value=0.0),
            "max_memory_bytes": _per_client("max_memory_bytes", self.max_memory_bytes, n, allow_inf=True,
                                            min_value=0.0),
            "accuracy_floor": _per_client("accuracy_floor", self.accuracy_floor, n, allow_inf=True),
            "latency_slo_s": _per_client("latency_slo_s", self.latency_slo_s, n, allow_inf=True, min_value=0.0),
        }
        if budgets["accuracy_floor"].max(initial=-np.inf) == np.inf:
            raise ProblemDataError("`accuracy_floor` has an entry inf; expected finite floors (or -inf for none)")
        if self.max_layers is not None and (isinstance(self.max_layers, bool) or not isinstance(
                self.max_layers, int | np.integer) or self.max_layers < 0):
            raise ProblemDataError(f"`max_layers` = {self.max_layers!r}; expected a non-negative integer or None")
        one_of("goal", self.goal, GOALS)
        beta = as_scalar("bytes_per_value", self.bytes_per_value, min_value=0.0, strict_min=True)
        for key, value in (("block_time_s", t), ("lookup_fixed_s", g), ("lookup_entry_s", kappa), ("dims", dims),
                           ("request_prob", p), ("class_rank", rank), ("weights", w), ("bytes_per_value", beta),
                           *budgets.items()):
            object.__setattr__(self, key, value)
        if self.max_layers is not None:
            object.__setattr__(self, "max_layers", int(self.max_layers))

    # -- sizes and helpers -----------------------------------------------------------------------
    @property
    def sense(self) -> str:
        return "min" if self.goal == "latency" else "max"

    @property
    def n_clients(self) -> int:
        return int(self.block_time_s.shape[0])

    @property
    def n_layers(self) -> int:
        return int(self.block_time_s.shape[1] - 1)

    @property
    def n_classes(self) -> int:
        return int(self.class_rank.shape[1])

    @property
    def full_latency_s(self) -> np.ndarray:
        """Latency of the uncached model per client, :math:`P_L = \\sum_{b \\le L} t_b`."""
        return self.block_time_s.sum(axis=1)

    def prefix_time_s(self) -> np.ndarray:
        """``(N, L+1)``: :math:`P_l = \\sum_{b \\le l} t_b`."""
        return np.cumsum(self.block_time_s, axis=1)

    def layer_cap(self) -> int:
        """The effective cap on active layers per client."""
        return self.n_layers if self.max_layers is None else min(self.max_layers, self.n_layers)

    def plan(self, counts: Any, layers: Any) -> CachePlan:
        """The plan caching each client's top-``counts[i]`` classes at ``layers[i]``.

        ``counts`` is an int or one per client; ``layers`` one sequence for all clients or one per client.
        """
        n = self.n_clients
        ks = np.broadcast_to(np.asarray(counts, dtype=int), (n,))
        if (ks < 0).any() or (ks > self.n_classes).any():
            raise PlanError(f"`counts` = {np.asarray(counts).tolist()!r}; expected values in 0..{self.n_classes}")
        rows = list(layers)
        if not rows or all(np.ndim(r) == 0 for r in rows):
            rows = [rows] * n
        if len(rows) != n:
            raise PlanError(f"`layers` has {len(rows)} rows; expected one for all clients or {n}")
        return CachePlan(classes=tuple(tuple(self.class_rank[i, :k].tolist()) for i, k in enumerate(ks)),
                         layers=tuple(tuple(r) for r in rows))

    def no_cache_plan(self) -> CachePlan:
        """Nothing cached anywhere: every client runs the full model."""
        return CachePlan(classes=((),) * self.n_clients, layers=((),) * self.n_clients)

    def decode_plan(self, plan: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(k, active, off_prefix)``: class counts ``(N,)``, active-layer mask ``(N, L)``, and per client
        the number of cached classes outside its top-``k`` (the hot-spot rule wants 0).

        Raises :class:`~edgeplan.errors.PlanError` when the plan does not fit (type, clients, indices).
        """
        if not isinstance(plan, CachePlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a CachePlan")
        n, L, C = self.n_clients, self.n_layers, self.n_classes
        if plan.n_clients != n:
            raise PlanError(f"`plan` has {plan.n_clients} clients; expected {n}")
        k = plan.class_counts
        active = np.zeros((n, L), dtype=bool)
        off = np.zeros(n, dtype=int)
        for i in range(n):
            cls, lay = plan.classes[i], plan.layers[i]
            if cls and not (0 <= cls[0] and cls[-1] < C):
                raise PlanError(f"`plan.classes`[{i}] = {list(cls)!r}; expected class indices in 0..{C - 1}")
            if lay and not (0 <= lay[0] and lay[-1] < L):
                raise PlanError(f"`plan.layers`[{i}] = {list(lay)!r}; expected layer indices in 0..{L - 1}")
            active[i, list(lay)] = True
            off[i] = len(set(cls) - set(self.class_rank[i, :len(cls)].tolist()))
        return k, active, off

    # -- the protocol ------------------------------------------------------------------------------
    @abstractmethod
    def _client_metrics(self, plan: CachePlan, k: np.ndarray,
                        active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-client latency (s), accuracy and hit ratio of ``plan`` (decoded: ``k`` and ``active``)."""

    def evaluate(self, plan: CachePlan) -> CacheMetrics:
        """Per-client latency, accuracy, hit ratio, entries and memory, and the objective."""
        k, active, _ = self.decode_plan(plan)
        lat, acc, hit = self._client_metrics(plan, k, active)
        n_act = active.sum(axis=1)
        mem = self.bytes_per_value * k * (active * self.dims).sum(axis=1)
        obj = float(self.weights @ (lat if self.goal == "latency" else acc))
        return CacheMetrics(objective=obj, latency_s=lat, accuracy=acc, hit_ratio=hit, entries=k * n_act,
                            memory_bytes=mem, n_layers=n_act, full_latency_s=self.full_latency_s)

    def objective(self, plan: CachePlan) -> float:
        """:math:`\\sum_i w_i \\mathbb E[T_i]` (goal latency) or :math:`\\sum_i w_i \\mathrm{Acc}_i`."""
        return self.evaluate(plan).objective

    def check(self, plan: CachePlan, tol: float = FEAS_TOL) -> list[Violation]:
        """Hot-spot prefixes, entry and memory budgets, layer cap, accuracy floors and latency SLOs."""
        _, _, off = self.decode_plan(plan)
        m = self.evaluate(plan)
        out = violations_le("client[{i}].classes_outside_top_k", off, 0.0, tol)
        out += violations_le("client[{i}].entries", m.entries, self.max_entries, tol)
        out += violations_le("client[{i}].memory_bytes", m.memory_bytes, self.max_memory_bytes, tol)
        if self.max_layers is not None:
            out += violations_le("client[{i}].active_layers", m.n_layers, float(self.max_layers), tol)
        out += violations_ge("client[{i}].accuracy", m.accuracy, self.accuracy_floor, tol)
        out += violations_le("client[{i}].latency_s", m.latency_s, self.latency_slo_s, tol)
        return out


def _hit_array(name: str, value: Any, n: int, L: int, C: int) -> np.ndarray:
    arr = as_array(name, value, min_value=0.0, max_value=1.0)
    shapes = {(L, C): (None, None), (n, L, C): (slice(None), None), (n, C + 1, L, C): None}
    if arr.shape not in shapes:
        raise ProblemDataError(f"`{name}` has shape {arr.shape}; expected (L, C) = {(L, C)}, (N, L, C) = "
                               f"{(n, L, C)} or (N, C+1, L, C) = {(n, C + 1, L, C)}")
    if arr.ndim == 2:
        arr = arr[None, None]
    elif arr.ndim == 3:
        arr = arr[:, None]
    out = np.array(np.broadcast_to(arr, (n, C + 1, L, C)), dtype=float)
    return out


# -- the separable model ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CachePlacement(CacheSystem):
    """CoCa's cache allocation under the separable recognition-depth model (see the module docstring).

    It also takes the fields of :class:`CacheSystem` (``request_prob`` is required here).

    Parameters
    ----------
    hit_prob
        :math:`r_{iklc}`, shape ``(L, C)``, ``(N, L, C)`` or ``(N, C+1, L, C)`` (axis 1: the class count
        :math:`k = 0..C`; row :math:`k = 0` is ignored: nothing hits). Values in [0, 1] with
        :math:`\\sum_l r \\le 1`.
    hit_precision
        :math:`a_{iklc} \\in [0, 1]`, same shapes.
    full_precision
        :math:`a^{full}_{ic}`, scalar, ``(C,)`` or ``(N, C)``; default 1 (the reference is the full model).
    """

    hit_prob: Any
    hit_precision: Any
    full_precision: Any = 1.0

    def __post_init__(self) -> None:
        if self.request_prob is None:
            raise ProblemDataError("`request_prob` is None; expected an (N, C) array of request probabilities")
        p = as_array("request_prob", self.request_prob, shape=(None, None), min_value=0.0)
        self._setup_system(p.shape[1])
        n, L, C = self.n_clients, self.n_layers, self.n_classes
        r = _hit_array("hit_prob", self.hit_prob, n, L, C)
        r[:, 0] = 0.0
        tot = r.sum(axis=2)
        if (tot > 1.0 + PROB_TOL).any():
            i, kk, c = (int(v) for v in np.argwhere(tot > 1.0 + PROB_TOL)[0])
            raise ProblemDataError(f"`hit_prob` sums over layers to {tot[i, kk, c]:.9g} for client {i}, "
                                   f"k={kk}, class {c}; expected at most 1")
        a = _hit_array("hit_precision", self.hit_precision, n, L, C)
        full = as_array("full_precision", np.broadcast_to(np.asarray(self.full_precision, dtype=float),
                                                          (n, C)) if np.ndim(self.full_precision) < 2
                        else self.full_precision, shape=(n, C), min_value=0.0, max_value=1.0)
        for arr in (r, a):
            arr.setflags(write=False)
        object.__setattr__(self, "hit_prob", r)
        object.__setattr__(self, "hit_precision", a)
        object.__setattr__(self, "full_precision", full)

    def survival(self) -> np.ndarray:
        """``(N, C+1, L+1, C)``: :math:`S_c(u)` for :math:`u = -1..L-1` (index ``u + 1``)."""
        if "survival" not in self._cache:
            n, L, C = self.n_clients, self.n_layers, self.n_classes
            s = np.ones((n, C + 1, L + 1, C))
            s[:, :, 1:] -= np.cumsum(self.hit_prob, axis=2)
            self._cache["survival"] = np.clip(s, 0.0, 1.0)
        return self._cache["survival"]

    def arc_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Latency and accuracy of every arc of the layer DAG, each ``(N, C+1, L+1, L+1)``.

        Entry ``[i, k, a, b]`` is the arc from node :math:`u = a - 1` (``a = 0``: the input) to node
        :math:`v = b` (``b = L``: the output), valid for ``b >= a`` (NaN elsewhere):

        * latency: :math:`\\sum_c p_c S_c(u)\\,(P_v - P_u + [v < L](g_v + \\kappa_v k))`;
        * accuracy: :math:`\\sum_c p_c a_{vc}(S_c(u) - S_c(v))` for :math:`v < L`, and
          :math:`\\sum_c p_c S_c(u)\\, a^{full}_c` into the output.

        A plan's latency (accuracy) is the sum over its path :math:`-1 \\to l_1 \\to \\dots \\to l_m \\to L`.
        """
        if "arcs" in self._cache:
            return self._cache["arcs"]
        n, L, C = self.n_clients, self.n_layers, self.n_classes
        ps = self.survival() * self.request_prob[:, None, None, :]  # (n, k, a, c)
        mass = ps.sum(axis=3)  # (n, k, a)
        P = self.prefix_time_s()  # (n, L+1): P_l
        Pu = np.concatenate([np.zeros((n, 1)), P[:, :L]], axis=1)  # (n, a): P_{a-1}
        ks = np.arange(C + 1, dtype=float)
        look = np.zeros((n, C + 1, L + 1))
        look[:, :, :L] = self.lookup_fixed_s[:, None, :] + self.lookup_entry_s[:, None, :] * ks[None, :, None]
        seg = P[:, None, None, :] - Pu[:, None, :, None] + look[:, :, None, :]  # (n, k, a, b)
        lat = mass[..., None] * seg
        acc = np.empty_like(lat)
        prec = self.hit_precision
        acc[..., :L] = (np.einsum("nkac,nkbc->nkab", ps, prec)
                        - np.einsum("nkbc,nkbc->nkb", ps[:, :, 1:], prec)[:, :, None, :])
        acc[..., L] = np.einsum("nkac,nc->nka", ps, self.full_precision)
        invalid = np.arange(L + 1)[None, :] < np.arange(L + 1)[:, None]  # b < a
        lat[..., invalid] = np.nan
        acc[..., invalid] = np.nan
        lat.setflags(write=False)
        acc.setflags(write=False)
        self._cache["arcs"] = (lat, acc)
        return lat, acc

    def _client_metrics(self, plan: CachePlan, k: np.ndarray,
                        active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lat_t, acc_t = self.arc_tables()  # the class set is the top-k prefix (check reports other sets)
        n, L = active.shape
        lat, acc, hit = np.zeros(n), np.zeros(n), np.zeros(n)
        surv_mass = (self.survival() * self.request_prob[:, None, None, :]).sum(axis=3)
        for i in range(n):
            layers = np.flatnonzero(active[i])
            a = np.concatenate([[0], layers + 1])
            b = np.concatenate([layers, [L]])
            lat[i] = lat_t[i, k[i], a, b].sum()
            acc[i] = acc_t[i, k[i], a, b].sum()
            hit[i] = 1.0 - surv_mass[i, k[i], a[-1]]
        return lat, acc, hit

    # -- the MILP ---------------------------------------------------------------------------------
    def to_milp(self) -> tuple[MILP, Any]:
        r"""Path formulation: one unit of flow per client through the layer DAG of one class count.

        .. math::

            y_{ikab} \in \{0,1\}:&\ \text{client } i \text{ with } k \text{ classes uses arc } (a-1 \to b)\\
            \sum_{k}\sum_{b} y_{ik0b} = 1,\ \ &\sum_a y_{ikal} = \sum_b y_{ik,l+1,b}\ \ (l < L)
                \quad\text{(one path, one } k)\\
            \min \sum_{i} w_i \sum_{kab} T_{ikab}\, y_{ikab}\ \ &\text{s.t.}\ \
                \sum A_{ikab} y \ge \underline a_i,\ \sum T y \le \bar T_i,\
                \sum_{b<L} k\, y \le B_i,\ \sum_{b<L} \beta k d_b\, y \le M_i,\ \sum_{b<L} y \le m_{\max}

        (objective :math:`\max \sum_i w_i \sum A y` with ``goal="accuracy"``). Arcs that break a budget alone are
        left out; :math:`k = 0` keeps only the arc input -> output. Exact for the separable model. Latencies are
        in seconds (objectives near 1e-2) and accuracy floors bind by ~1e-5: with its default ``mip_abs_gap``
        (1e-6) and feasibility tolerances HiGHS has returned "optimal" plans 3e-4 worse than ``cache-dp``. For a
        cross-check pass :data:`TIGHT_HIGHS` as ``options``. CP-SAT refuses the model unless its scaling
        tolerances are relaxed (fractional coefficients).
        """
        lat_t, acc_t = self.arc_tables()
        n, L, C = self.n_clients, self.n_layers, self.n_classes
        a_idx, b_idx = np.nonzero(np.arange(L + 1)[None, :] >= np.arange(L + 1)[:, None])  # arcs with b >= a
        ii, kk, ee = (g.ravel() for g in np.meshgrid(np.arange(n), np.arange(C + 1), np.arange(a_idx.size),
                                                     indexing="ij"))
        aa, bb = a_idx[ee], b_idx[ee]
        into_layer = bb < L
        d_b = np.where(into_layer, self.dims[np.minimum(bb, L - 1)], 0.0)
        # layer l can be entered by (i, k) when one entry row of k classes fits every budget
        enter = ((np.arange(C + 1)[None, :, None] > 0) & (self.layer_cap() > 0)
                 & (np.arange(C + 1)[None, :, None] <= self.max_entries[:, None, None])
                 & (self.bytes_per_value * np.arange(C + 1)[None, :, None] * self.dims[None, None, :]
                    <= self.max_memory_bytes[:, None, None] * (1 + 1e-12)))  # (n, k, L)
        keep = ((~into_layer | enter[ii, kk, np.minimum(bb, L - 1)])
                & ((aa == 0) | enter[ii, kk, np.maximum(aa - 1, 0)]))
        ii, kk, aa, bb, into_layer, d_b = ii[keep], kk[keep], aa[keep], bb[keep], into_layer[keep], d_b[keep]
        T = lat_t[ii, kk, aa, bb]
        Acc = acc_t[ii, kk, aa, bb]
        nv = ii.size
        cols = np.arange(nv)
        rows_r, rows_c, rows_v, lo, hi, names = [], [], [], [], [], []

        def add(row_of_col: np.ndarray, mask: np.ndarray, vals: np.ndarray, lower: np.ndarray,
                upper: np.ndarray, label: str, n_rows: int) -> None:
            base = len(lo)
            rows_r.append(base + row_of_col[mask])
            rows_c.append(cols[mask])
            rows_v.append(np.broadcast_to(vals, mask.shape)[mask])
            lo.extend(np.broadcast_to(lower, (n_rows,)).tolist())
            hi.extend(np.broadcast_to(upper, (n_rows,)).tolist())
            names.extend(label.format(r=r) for r in range(n_rows))

        add(ii, aa == 0, np.ones(nv), 1.0, 1.0, "source[{r}]", n)
        # flow conservation at layer l of (i, k): inflow (b == l) - outflow (a == l + 1) == 0
        node_in = (ii * (C + 1) + kk) * L + bb
        node_out = (ii * (C + 1) + kk) * L + (aa - 1)
        n_nodes = n * (C + 1) * L
        base = len(lo)
        rows_r += [base + node_in[into_layer], base + node_out[aa > 0]]
        rows_c += [cols[into_layer], cols[aa > 0]]
        rows_v += [np.ones(int(into_layer.sum())), -np.ones(int((aa > 0).sum()))]
        lo.extend([0.0] * n_nodes)
        hi.extend([0.0] * n_nodes)
        names.extend(f"flow[{r // ((C + 1) * L)},{(r // L) % (C + 1)},{r % L}]" for r in range(n_nodes))
        inf = np.full(n, np.inf)
        if np.isfinite(self.max_entries).any():
            add(ii, into_layer, kk.astype(float), -inf, self.max_entries, "entries[{r}]", n)
        if np.isfinite(self.max_memory_bytes).any():
            add(ii, into_layer, self.bytes_per_value * kk * d_b, -inf, self.max_memory_bytes, "memory[{r}]", n)
        if self.max_layers is not None and self.max_layers < L:
            add(ii, into_layer, np.ones(nv), -inf, np.full(n, float(self.max_layers)), "layers[{r}]", n)
        if (self.accuracy_floor > 0).any():  # accuracies are never negative
            add(ii, np.ones(nv, bool), Acc, self.accuracy_floor, inf, "accuracy[{r}]", n)
        if np.isfinite(self.latency_slo_s).any():
            add(ii, np.ones(nv, bool), T, -inf, self.latency_slo_s, "latency[{r}]", n)
        import scipy.sparse as sp

        A = sp.csc_array((np.concatenate(rows_v), (np.concatenate(rows_r), np.concatenate(rows_c))),
                         shape=(len(lo), nv))
        c = self.weights[ii] * (T if self.goal == "latency" else Acc)
        milp = MILP(c=c, A=A, row_lower=np.array(lo), row_upper=np.array(hi), col_upper=1.0,
                    integrality=np.ones(nv), sense=self.sense, row_names=names, name=f"{self.name}-paths")

        def decode(x: np.ndarray) -> CachePlan:
            on = np.asarray(x) > 0.5
            counts, layers = [0] * n, [()] * n
            for i in range(n):
                sel = on & (ii == i)
                if not sel.any():
                    raise PlanError(f"the MILP solution routes no path for client {i}")
                counts[i] = int(kk[sel][0])
                layers[i] = tuple(int(b) for b in np.sort(bb[sel & into_layer]))
            return self.plan(counts, layers)

        return milp, decode


__all__ = ["GOALS", "TIGHT_HIGHS", "CacheMetrics", "CachePlacement", "CachePlan", "CacheSystem"]
