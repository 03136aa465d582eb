r"""CoCa cache allocation replayed on a recorded request stream with the true lookup rule.

:class:`CacheReplay` holds, for every request of a recorded stream, the cosine scores
:math:`s_{l}(x)_c = \cos(u_l(x), G[l][c])` of its semantic vector at every candidate layer against the global
cache, the client that issued it and its reference label (the uncached model's prediction). A plan
:math:`(K_i, A_i)` is evaluated by replaying CoCa's lookup [author code; see ``docs/models/cache.md``] on the client's
requests; the timing model and the budgets are those of
:class:`~edgeplan.formulations.cache.placement.CacheSystem`.

Lookup rules (``rule``)
-----------------------
``"coca"``: at the :math:`j`-th active layer :math:`l` (:math:`j = 0, 1, \dots`) the client accumulates
:math:`S_c \mathrel{+}= \text{base}^j\, s_l(x)_c` over its cached classes and hits when the relative margin of the
top two accumulated scores exceeds :math:`\Theta`: :math:`S_{(1)} - S_{(2)} > \Theta\,|S_{(2)}|` (the
absolute value keeps the rule meaningful for negative cosines; for positive scores it is the paper's
:math:`(S_{(1)} - S_{(2)})/S_{(2)} > \Theta`). On a hit it outputs :math:`\arg\max_c S_c`.

``"exit"``: a multi-exit network's confidence rule, for the baseline: at an active layer the client exits when
the top softmax probability of :math:`s_l(x)/\tau` over the cached classes is at least :math:`\Theta` (no
accumulation; the centres act as a cosine classifier head).

With fewer than two cached classes nothing hits under either rule (a margin needs two candidates). Ties go to
the class ranked first. A miss runs the whole model and returns its prediction, which agrees with the
reference where ``full_agrees`` says so (always, when the reference is the full model's prediction).

Latency of a request that exits at its :math:`j`-th active layer :math:`l`:
:math:`P_l + \sum_{j' \le j} (g_{l_{j'}} + \kappa_{l_{j'}} k)`; of a miss: :math:`P_L + \sum_{l \in A}(g_l +
\kappa_l k)`. A client's latency and accuracy are means over its requests.

:meth:`CacheReplay.to_placement` calibrates the separable model of
:class:`~edgeplan.formulations.cache.placement.CachePlacement` from the same stream: per client and class count the
recognition depth :math:`D` of every request is the first layer where a lookup hits, with every layer active
(``depth="dense"``, the accumulated rule; the default) or with that layer alone active (``depth="single"``);
requests of all clients are pooled (the model and the cache are shared; only the ranking differs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar, one_of
from edgeplan.errors import ProblemDataError
from edgeplan.formulations.cache.placement import CachePlacement, CachePlan, CacheSystem

RULES = ("coca", "exit")
DEPTHS = ("single", "stable", "dense")


def prefix_hits(s: np.ndarray, *, rule: str, threshold: float,
                temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Hit flags and predicted rank positions for every prefix of ranked scores at once.

    ``s`` is ``(n, C)`` with columns in hot-spot order; returns ``hit`` and ``arg``, each ``(n, C+1)``:
    column :math:`k` is the lookup with the top-:math:`k` classes cached (``arg`` is the rank position of the
    winner; column 0 never hits). Uses :math:`s_1(k) = \\max_{j<k} s_j` and
    :math:`s_2(k) = \\max_{j<k} \\min(s_j, s_1(j-1))` (second largest of a prefix).
    """
    n, C = s.shape
    s1 = np.maximum.accumulate(s, axis=1)
    prev = np.concatenate([np.full((n, 1), -np.inf), s1[:, :-1]], axis=1)
    pos = np.where(s > prev, np.arange(C)[None, :], 0)
    arg = np.zeros((n, C + 1), dtype=np.int64)
    arg[:, 1:] = np.maximum.accumulate(pos, axis=1)
    hit = np.zeros((n, C + 1), dtype=bool)
    if C < 2:
        return hit, arg
    if rule == "coca":
        s2 = np.maximum.accumulate(np.minimum(s, prev), axis=1)
        with np.errstate(invalid="ignore"):
            hit[:, 2:] = (s1 - s2 > threshold * np.abs(s2))[:, 1:]
    else:
        z = s / temperature
        lse = np.logaddexp.accumulate(z, axis=1)
        hit[:, 2:] = (np.exp(s1 / temperature - lse) >= threshold)[:, 1:]
    return hit, arg


@dataclass(frozen=True, slots=True)
class ReplayTrace:
    """Per request of a replay: exit layer (``L`` for a miss), label (-1 for a miss), latency, agreement."""

    exit_layer: np.ndarray
    label: np.ndarray
    latency_s: np.ndarray
    agrees: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        return self.label >= 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheReplay(CacheSystem):
    """CoCa's allocation evaluated by replaying a recorded stream (see the module docstring).

    It also takes the fields of :class:`~edgeplan.formulations.cache.placement.CacheSystem`; ``request_prob``
    defaults to each client's frequencies of ``reference``.

    Parameters
    ----------
    scores
        ``(L, n, C)`` cosine scores of every request at every candidate layer against every class centre.
    client
        ``(n,)`` client of every request (every client needs at least one).
    reference
        ``(n,)`` reference label of every request (the uncached model's prediction).
    full_agrees
        ``(n,)`` booleans: does a miss (the full model) agree with the reference? Default: all true.
    rule, threshold, score_base, temperature
        The lookup rule: ``"coca"`` (relative margin ``threshold`` :math:`\\Theta`, weights
        ``score_base`` :math:`^j`) or ``"exit"`` (softmax confidence ``threshold`` at temperature
        ``temperature``).
    """

    scores: Any
    client: Any
    reference: Any
    full_agrees: Any = None
    rule: str = "coca"
    threshold: float = 0.01
    score_base: float = 2.0
    temperature: float = 0.05

    def __post_init__(self) -> None:
        s = as_array("scores", self.scores, shape=(None, None, None))
        L, n_req, C = s.shape
        cl = as_array("client", self.client, shape=(n_req,), dtype=int, min_value=0)
        ref = as_array("reference", self.reference, shape=(n_req,), dtype=int, min_value=0, max_value=C - 1)
        n = int(np.asarray(self.block_time_s).shape[0]) if np.ndim(self.block_time_s) == 2 else 0
        if n and cl.size and cl.max() >= n:
            raise ProblemDataError(f"`client` has the value {int(cl.max())}; expected client indices below {n}")
        counts = np.bincount(cl, minlength=n)
        if n and (counts == 0).any():
            raise ProblemDataError(f"client {int(np.flatnonzero(counts == 0)[0])} has no request in `client`; "
                                   "expected at least one per client")
        if self.request_prob is None and n:
            freq = np.zeros((n, C))
            np.add.at(freq, (cl, ref), 1.0)
            object.__setattr__(self, "request_prob", freq / freq.sum(axis=1, keepdims=True))
        self._setup_system(C)
        if self.n_layers != L:
            raise ProblemDataError(f"`scores` has {L} layers; expected {self.n_layers} to match `block_time_s`")
        agrees = np.ones(n_req, dtype=bool) if self.full_agrees is None else as_array(
            "full_agrees", self.full_agrees, shape=(n_req,), dtype=bool)
        one_of("rule", self.rule, RULES)
        th = as_scalar("threshold", self.threshold, min_value=0.0)
        base = as_scalar("score_base", self.score_base, min_value=0.0, strict_min=True)
        temp = as_scalar("temperature", self.temperature, min_value=0.0, strict_min=True)
        for key, value in (("scores", s), ("client", cl), ("reference", ref), ("full_agrees", agrees),
                           ("threshold", th), ("score_base", base), ("temperature", temp)):
            object.__setattr__(self, key, value)

    @property
    def n_requests(self) -> int:
        return int(self.client.size)

    def requests_of(self, i: int) -> np.ndarray:
        """Indices of client ``i``'s requests."""
        key = ("requests", i)
        if key not in self._cache:
            self._cache[key] = np.flatnonzero(self.client == i)
        return self._cache[key]

    def ranked_scores(self, i: int, requests: np.ndarray | None = None) -> np.ndarray:
        """``(L, n_i, C)`` scores of client ``i``'s requests (or ``requests``) with columns in its hot-spot order."""
        idx = self.requests_of(i) if requests is None else requests
        return self.scores[:, idx][:, :, self.class_rank[i]]

    # -- replay ---------------------------------------------------------------------------------------
    def trace(self, plan: CachePlan) -> ReplayTrace:
        """Replay ``plan`` request by request (vectorised per client and active layer)."""
        _, active, _ = self.decode_plan(plan)
        n_req, L = self.n_requests, self.n_layers
        P = self.prefix_time_s()
        exit_layer = np.full(n_req, L)
        label = np.full(n_req, -1)
        latency = np.zeros(n_req)
        for i in range(self.n_clients):
            idx = self.requests_of(i)
            order = self.class_rank[i]
            cls = np.array([c for c in order if c in set(plan.classes[i])], dtype=int)
            k = cls.size
            alive = np.ones(idx.size, dtype=bool)
            acc = np.zeros((idx.size, k))
            paid = 0.0
            for j, l in enumerate(np.flatnonzero(active[i])):
                paid += self.lookup_fixed_s[i, l] + self.lookup_entry_s[i, l] * k
                x = self.scores[l][idx][:, cls]
                if self.rule == "coca":
                    acc += self.score_base ** j * x
                    s = acc
                else:
                    s = x
                if k >= 2:
                    top = -np.sort(-s, axis=1)[:, :2]
                    if self.rule == "coca":
                        hit = top[:, 0] - top[:, 1] > self.threshold * np.abs(top[:, 1])
                    else:
                        conf = 1.0 / np.exp((s - top[:, :1]) / self.temperature).sum(axis=1)
                        hit = conf >= self.threshold
                    new = alive & hit
                    rows = idx[new]
                    exit_layer[rows] = l
                    label[rows] = cls[np.argmax(s[new], axis=1)]
                    latency[rows] = P[i, l] + paid
                    alive &= ~hit
            latency[idx[alive]] = P[i, L] + paid
        agrees = np.where(label >= 0, label == self.reference, self.full_agrees)
        return ReplayTrace(exit_layer=exit_layer, label=label, latency_s=latency, agrees=agrees)

    def _client_metrics(self, plan: CachePlan, k: np.ndarray,
                        active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tr = self.trace(plan)
        n = self.n_clients
        cnt = np.bincount(self.client, minlength=n)
        mean = lambda v: np.bincount(self.client, weights=v.astype(float), minlength=n) / cnt  # noqa: E731
        return mean(tr.latency_s), mean(tr.agrees), mean(tr.hit)

    # -- calibration of the separable model -----------------------------------------------------------
    def to_placement(self, *, depth: str = "dense", request_prob: Any = None) -> CachePlacement:
        """The :class:`CachePlacement` calibrated on this stream (recognition depths, precisions per k).

        A request's depth is the first layer where the lookup hits: with every layer active (``"dense"``,
        the accumulated rule; for ``rule="exit"`` the same as ``"single"``), with that layer alone active
        (``"single"``), or from which the lookup alone hits at every deeper layer (``"stable"``, a
        pessimistic variant). Exits at layer :math:`l` are scored with the label the rule gives there;
        precisions are pooled over requests recognised at or before :math:`l`. A class never seen gets no
        hits and precision 1. On random plans of the validation models (``benchmarks/bench_cache.py``)
        ``"dense"`` predicted the replayed latency best.
        """
        one_of("depth", depth, DEPTHS)
        n, L, C = self.n_clients, self.n_layers, self.n_classes
        ref = self.reference
        all_req = np.arange(self.n_requests)
        r = np.zeros((n, C + 1, L, C))
        prec = np.ones((n, C + 1, L, C))
        per_class = np.bincount(ref, minlength=C).astype(float)
        for i in range(n):
            X = self.ranked_scores(i, all_req)
            pos = np.argsort(self.class_rank[i])[ref]  # rank position of each reference label
            hits = np.zeros((L, self.n_requests, C + 1), dtype=bool)
            agree_at = np.zeros_like(hits)
            acc = np.zeros_like(X[0])
            for l in range(L):
                if depth == "dense" and self.rule == "coca":
                    acc = acc + self.score_base ** l * X[l]
                    s = acc
                else:
                    s = X[l]
                hits[l], arg = prefix_hits(s, rule=self.rule, threshold=self.threshold, temperature=self.temperature)
                agree_at[l] = arg == pos[:, None]
            if depth == "stable":  # hits at this layer and every deeper one
                hits = np.logical_and.accumulate(hits[::-1], axis=0)[::-1]
            depth_of = np.where(hits.any(axis=0), hits.argmax(axis=0), L)
            key = np.arange(C + 1)[None, :] * C + ref[:, None]  # (k, class) cell of every request
            for l in range(L):
                at = np.bincount(key[depth_of == l], minlength=(C + 1) * C).reshape(C + 1, C)
                r[i, :, l] = at / np.maximum(per_class, 1.0)
                seen = depth_of <= l
                den = np.bincount(key[seen], minlength=(C + 1) * C).reshape(C + 1, C)
                num = np.bincount(key[seen & agree_at[l]], minlength=(C + 1) * C).reshape(C + 1, C)
                prec[i, :, l] = np.where(den > 0, num / np.maximum(den, 1), 1.0)
        full = np.bincount(ref, weights=self.full_agrees.astype(float), minlength=C) / np.maximum(per_class, 1.0)
        full = np.where(per_class > 0, full, 1.0)
        return CachePlacement(
            block_time_s=self.block_time_s, lookup_fixed_s=self.lookup_fixed_s, lookup_entry_s=self.lookup_entry_s,
            dims=self.dims, request_prob=self.request_prob if request_prob is None else request_prob,
            class_rank=self.class_rank, weights=self.weights, max_entries=self.max_entries,
            max_memory_bytes=self.max_memory_bytes, max_layers=self.max_layers,
            accuracy_floor=self.accuracy_floor, latency_slo_s=self.latency_slo_s, goal=self.goal,
            bytes_per_value=self.bytes_per_value, name=f"{self.name}-{depth}", hit_prob=r, hit_precision=prec,
            full_precision=np.broadcast_to(full, (n, C)))


__all__ = ["DEPTHS", "RULES", "CacheReplay", "ReplayTrace", "prefix_hits"]
