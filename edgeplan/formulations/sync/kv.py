r"""FedAttn: at which transformer blocks the participants exchange their key/value matrices.

Deng et al., "Federated Attention", arXiv 2511.02647 (the idea is the paper's; this planning model is ours:
``docs/models/sync.md``). :math:`N` participants hold :math:`n_i` prompt tokens each (:math:`n = \sum_i n_i`).
Every block :math:`l \in \{0..L-1\}` runs attention either **locally** (each participant's queries over its own
keys and values) or **globally** (after the participants exchange their K/V of block :math:`l`, over all
:math:`n` tokens). A plan is the set :math:`\mathcal S` of synced (global) blocks.

**Latency.** A sync is a barrier. Between two consecutive syncs :math:`s < t` (with :math:`s = -1` the start
and :math:`t = L` the end), participant :math:`i` computes the global block :math:`s` and the local blocks
:math:`s+1..t-1`; then the K/V of block :math:`t` travel through an aggregator (all uploads, then every
participant downloads the K/V it attends to):

.. math::

    w(s, t) = \max_i \Big( g_{i s}\,[s \ge 0] + \sum_{k=s+1}^{t-1} \ell_{i k} \Big) + c_t,\qquad
    c_t = \delta + \max_i \frac{\bar n_i b_t}{u_i} + \max_i \frac{\underline n_i b_t}{d_i}

(:math:`c_L = 0`). In a decoder's prefill (``causal``) participant :math:`i` holds the tokens after
:math:`o_i = \sum_{j<i} n_j` others and attends only to those before its own: it downloads
:math:`\underline n_i = o_i [n_i > 0]` tokens' K/V and uploads :math:`\bar n_i = n_i` when a later participant has
tokens (else 0); without causality :math:`\underline n_i = n - n_i`, :math:`\bar n_i = n_i`. With local and
global block times :math:`\ell_{ik}, g_{ik}`, K/V bytes per token :math:`b_t`, up/down link rates
:math:`u_i, d_i` and a per-sync latency :math:`\delta`. The round latency is :math:`T(\mathcal S) = \sum w`
over consecutive syncs.

**Error.** A local block :math:`k` run :math:`\gamma_k = k - s` blocks after the last sync :math:`s` adds
:math:`e_{k, \gamma_k}` (a table from calibration runs on a real model: :mod:`edgeplan.validation.sync`):

.. math::

    E(\mathcal S) = \sum_{k \notin \mathcal S} e_{k,\gamma_k(\mathcal S)} \le \varepsilon .

The problem is :math:`\min_{\mathcal S} T(\mathcal S)` s.t. :math:`E(\mathcal S) \le \varepsilon`: a shortest
path over the blocks with a resource constraint (``kv-sync-dp``). Syncing every block has error 0, so some
plan is always feasible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_le


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """The blocks whose attention is global (their K/V are exchanged).

    Attributes
    ----------
    blocks
        Block indices (stored sorted).
    """

    blocks: Any

    def __post_init__(self) -> None:
        if isinstance(self.blocks, str | bytes | Mapping) or self.blocks is None or np.ndim(self.blocks) != 1:
            raise PlanError(f"`blocks` = {self.blocks!r}; expected a sequence of block indices")
        v = int_vector("blocks", np.asarray(list(self.blocks)), expected="block indices")
        if len(set(v.tolist())) != v.size:
            raise PlanError(f"`blocks` = {v.tolist()!r} has duplicates; expected distinct blocks")
        object.__setattr__(self, "blocks", tuple(sorted(v.tolist())))

    def to_dict(self) -> dict[str, list[int]]:
        return {"blocks": list(self.blocks)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SyncPlan:
        if not isinstance(data, Mapping) or set(data) != {"blocks"}:
            raise PlanError(f"`plan` = {data!r}; expected an object with the key 'blocks'")
        return cls(blocks=data["blocks"])


@dataclass(frozen=True, slots=True)
class KVSyncMetrics:
    """``evaluate(plan)``.

    Attributes
    ----------
    latency_s
        :math:`T(\\mathcal S)`, the objective.
    compute_s, comm_s
        The compute (max over participants per segment) and communication parts of the latency.
    error
        :math:`E(\\mathcal S)`.
    bytes_up, bytes_down
        K/V bytes uploaded to and downloaded from the aggregator over all syncs.
    n_syncs
        :math:`|\\mathcal S|`.
    """

    latency_s: float
    compute_s: float
    comm_s: float
    error: float
    bytes_up: float
    bytes_down: float
    n_syncs: int


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class KVSyncSchedule:
    """FedAttn's sync-block choice (see the module docstring for the model).

    Parameters
    ----------
    tokens
        ``(N,)`` :math:`n_i`, prompt tokens per participant (>= 0).
    kv_bytes_per_token
        ``(L,)`` :math:`b_l`, K and V bytes per token at block :math:`l`.
    local_time_s, global_time_s
        ``(N, L)`` :math:`\\ell_{il}, g_{il}`: block times with local and with global attention.
    uplink_bps, downlink_bps
        ``(N,)`` :math:`u_i, d_i` in bytes per second (``inf``: free).
    error
        ``(L, L)`` :math:`e_{l,\\gamma}` at column :math:`\\gamma - 1` (gap :math:`\\gamma = 1..L`); >= 0.
    error_budget
        :math:`\\varepsilon` (``inf``: none).
    sync_latency_s
        :math:`\\delta`, the fixed cost of one exchange.
    causal
        A decoder's prefill (participants hold consecutive parts of the prompt in order): participant :math:`i`
        needs only the K/V of the tokens before its own, :math:`o_i = \\sum_{j<i} n_j`, and uploads its own only
        when a later participant has tokens. ``False`` (an encoder): it needs all :math:`n - n_i` others.
    """

    tokens: Any
    kv_bytes_per_token: Any
    local_time_s: Any
    global_time_s: Any
    uplink_bps: Any
    downlink_bps: Any
    error: Any
    error_budget: float = float("inf")
    sync_latency_s: float = 0.0
    causal: bool = True
    name: str = "kv-sync"
    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        tok = as_array("tokens", self.tokens, shape=(None,), min_value=0.0)
        if tok.size < 1 or np.any(tok != np.round(tok)):
            raise ProblemDataError(f"`tokens` = {tok.tolist()!r}; expected whole token counts, one per participant")
        n = tok.size
        b = as_array("kv_bytes_per_token", self.kv_bytes_per_token, shape=(None,), min_value=0.0)
        if b.size < 1:
            raise ProblemDataError("`kv_bytes_per_token` is empty; expected one entry per block")
        L = b.size
        loc = as_array("local_time_s", self.local_time_s, shape=(n, L), min_value=0.0)
        glo = as_array("global_time_s", self.global_time_s, shape=(n, L), min_value=0.0)
        up = as_array("uplink_bps", self.uplink_bps, shape=(n,), min_value=0.0, strict_min=True, allow_inf=True)
        down = as_array("downlink_bps", self.downlink_bps, shape=(n,), min_value=0.0, strict_min=True,
                        allow_inf=True)
        err = as_array("error", self.error, shape=(L, L), min_value=0.0)
        eps = float("inf") if self.error_budget == float("inf") else as_scalar("error_budget", self.error_budget,
                                                                               min_value=0.0)
        lat = as_scalar("sync_latency_s", self.sync_latency_s, min_value=0.0)
        if not isinstance(self.causal, bool | np.bool_):
            raise ProblemDataError(f"`causal` = {self.causal!r}; expected true or false")
        for key, value in (("tokens", tok), ("kv_bytes_per_token", b), ("local_time_s", loc),
                           ("global_time_s", glo), ("uplink_bps", up), ("downlink_bps", down), ("error", err),
                           ("error_budget", eps), ("sync_latency_s", lat)):
            object.__setattr__(self, key, value)

    @property
    def n_blocks(self) -> int:
        return int(self.kv_bytes_per_token.size)

    @property
    def n_participants(self) -> int:
        return int(self.tokens.size)

    def exchanged_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        """``(N,)`` tokens whose K/V each participant uploads and downloads at one sync: causal, its own tokens
        when a later participant has tokens, and the tokens before its own when it has any; else its own and all
        others'."""
        n = self.tokens.sum()
        if not self.causal:
            return self.tokens, n - self.tokens
        before = np.concatenate([[0.0], np.cumsum(self.tokens)[:-1]])
        return np.where(n - before - self.tokens > 0, self.tokens, 0.0), np.where(self.tokens > 0, before, 0.0)

    def comm_s(self) -> np.ndarray:
        """``(L,)`` :math:`c_l`, the time of one exchange at each block."""
        up_tok, down_tok = self.exchanged_tokens()
        with np.errstate(invalid="ignore"):
            up = np.nan_to_num(np.outer(self.kv_bytes_per_token, up_tok) / self.uplink_bps, nan=0.0)
            down = np.nan_to_num(np.outer(self.kv_bytes_per_token, down_tok) / self.downlink_bps, nan=0.0)
        return self.sync_latency_s + up.max(axis=1) + down.max(axis=1)

    def segment_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``(L+1, L+1)`` :math:`w(s, t)` and the error of its local blocks, indexed ``[s+1, t]`` (``inf``
        where :math:`t \\le s`); the shortest-path arcs of ``kv-sync-dp``."""
        L = self.n_blocks
        pre = np.concatenate([np.zeros((self.n_participants, 1)), np.cumsum(self.local_time_s, axis=1)], axis=1)
        glob = np.concatenate([np.zeros((self.n_participants, 1)), self.global_time_s], axis=1)  # at r = s + 1
        comm = np.append(self.comm_s(), 0.0)
        r = np.arange(L + 1)[:, None]  # row r = s + 1
        t = np.arange(L + 1)[None, :]
        valid = t >= r
        # participant i's busy time between the syncs s and t: g_is + (local blocks s+1..t-1)
        busy = (glob[:, :, None] + pre[:, None, :] - pre[:, :, None]).max(axis=0)
        w = np.where(valid, busy + comm[None, :], np.inf)
        # local block k after the sync s has gap k - s, i.e. column k - r of the error table
        k = np.arange(L)[None, :]
        contrib = np.where(k >= r, self.error[np.broadcast_to(k, (L + 1, L)), np.clip(k - r, 0, L - 1)], 0.0)
        cum = np.concatenate([np.zeros((L + 1, 1)), np.cumsum(contrib, axis=1)], axis=1)
        e = np.where(valid, cum, np.inf)
        return w, e

    def _blocks(self, plan: Any) -> np.ndarray:
        if not isinstance(plan, SyncPlan):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected a SyncPlan")
        s = np.asarray(plan.blocks, dtype=int)
        if s.size and (s[0] < 0 or s[-1] >= self.n_blocks):
            raise PlanError(f"`plan.blocks` = {list(plan.blocks)!r}; expected blocks in 0..{self.n_blocks - 1}")
        return s

    def evaluate(self, plan: SyncPlan) -> KVSyncMetrics:
        """Latency, its compute and communication parts, error and bytes (a direct walk over the segments)."""
        s = self._blocks(plan)
        comm = self.comm_s()
        a = np.concatenate([[-1], s])  # each segment's opening sync (-1: the start) ...
        b = np.append(s, self.n_blocks)  # ... and closing one (L: the end)
        pre = np.concatenate([np.zeros((self.n_participants, 1)), np.cumsum(self.local_time_s, axis=1)], axis=1)
        opening = np.where(a >= 0, self.global_time_s[:, np.maximum(a, 0)], 0.0)
        busy = opening + pre[:, b] - pre[:, a + 1]  # (N, segments)
        compute = float(busy.max(axis=0).sum())
        comm_total = float(comm[s].sum())
        synced = np.zeros(self.n_blocks, dtype=bool)
        synced[s] = True
        last = np.maximum.accumulate(np.where(synced, np.arange(self.n_blocks), -1))
        prev = np.concatenate([[-1], last[:-1]])
        gap = np.arange(self.n_blocks) - prev  # 1..L
        error = float(self.error[np.arange(self.n_blocks), gap - 1][~synced].sum())
        up_tok, down_tok = self.exchanged_tokens()
        kv = float(self.kv_bytes_per_token[s].sum())
        return KVSyncMetrics(latency_s=compute + comm_total, compute_s=compute, comm_s=comm_total, error=error,
                             bytes_up=float(up_tok.sum()) * kv, bytes_down=float(down_tok.sum()) * kv,
                             n_syncs=int(s.size))

    def objective(self, plan: SyncPlan) -> float:
        """:math:`T(\\mathcal S)`."""
        return self.evaluate(plan).latency_s

    def check(self, plan: SyncPlan, tol: float = FEAS_TOL) -> list[Violation]:
        """The error budget."""
        return violations_le(["error"], [self.evaluate(plan).error], [self.error_budget], tol)


__all__ = ["KVSyncMetrics", "KVSyncSchedule", "SyncPlan"]
