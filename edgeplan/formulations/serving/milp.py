r"""The MILP of one speculative-serving step (:class:`~edgeplan.formulations.serving.step.SpeculativeServing`).

Columns, for the drafter sets :math:`S` a request may use (:meth:`SpeculativeServing.routes_of`, the empty set
first), all binary but :math:`\rho`:

* :math:`y_{rS}`: request :math:`r` is batched with drafters :math:`S`;
* :math:`z_{rSi}`, :math:`S \ne \emptyset`, :math:`i = 1..K`: it has an :math:`i`-th draft token;
* :math:`u_{ji}`: drafter :math:`j` drafts in round :math:`i`; :math:`\rho_i \ge 0`: the time of round :math:`i`;
* :math:`\beta`: the batch is not empty.

.. math::

    \min\ \omega\Big(\sum_i \rho_i + v_0\beta + v_1 \sum y + v_2 N + v_3 \sum n_r y_{rS}\Big)
          - \theta \sum_{r,S} w_r\Big(y_{rS} + \sum_i \alpha_{S d_r}^{\,i} z_{rSi}\Big)

subject to :math:`\text{urgent}_r \le \sum_S y_{rS} \le 1`; :math:`z_{rS1} \le y_{rS}`,
:math:`z_{rSi} \le z_{rS,i-1}`; :math:`m_{ji} = \sum_{r, S \ni j} z_{rSi} \le c_j u_{ji}`;
:math:`\rho_i \ge (\ell + a_j) u_{ji} + b_j m_{ji}`; :math:`\sum y \le R\beta`; and, when finite,
:math:`N = \sum y + \sum |S| z \le N_{max}`, :math:`\mu(\sum (n_r + 1) y + \sum |S| z) \le M` and the step time
:math:`\le L` (each scaled to its limit, and the round-time rows to the step bound, so that a solver's absolute
tolerance stays inside the relative slack of ``check``). The decoded length of a request is its number of
draft tokens (a request whose drafters draft nothing is decoded without drafters: the same tokens, less
load).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from edgeplan.formulations.base import FEAS_TOL
from edgeplan.formulations.milp import MILP
from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing
from edgeplan.registry import reduction

#: The step bound's value in the rows that carry time (round times, the step bound): a solver's absolute tolerance
#: of 1e-6 on them is then 1e-9 of the bound.
TIME_SCALE = 1e3
#: The share of check's relative slack left to the solver's own tolerance in the scaled cap rows.
SLACK_MARGIN = 0.05


def _alpha(problem: SpeculativeServing, routes: list[tuple[int, ...]]) -> np.ndarray:
    """``(R, len(routes))`` :math:`\\alpha_{S d_r}`."""
    out = np.zeros((problem.n_requests, len(routes)))
    for s, S in enumerate(routes):
        if S:
            out[:, s] = 1.0 - np.prod(1.0 - problem.acceptance[list(S)][:, problem.domain], axis=0)
    return out


class _Rows:
    """Sparse rows collected as triplets and stacked once."""

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.names: list[str] = []

    def add(self, r: np.ndarray, c: np.ndarray, v: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float,
            names: list[str]) -> None:
        n = len(names)
        self.r.append(len(self.names) + np.asarray(r, dtype=np.int64))
        self.c.append(np.asarray(c, dtype=np.int64))
        self.v.append(np.broadcast_to(np.asarray(v, dtype=float), np.shape(r)))
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)))
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)))
        self.names += names

    def matrix(self, n: int) -> sp.csc_array:
        return sp.csc_array((np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
                            shape=(len(self.names), n))


@reduction(SpeculativeServing)
def step_milp(problem: SpeculativeServing) -> tuple[MILP, Callable[[np.ndarray], ServingPlan]]:
    """The MILP of the module docstring, built as one sparse matrix."""
    R, J, K = problem.n_requests, problem.n_drafters, problem.max_speculation
    routes = problem.routes_of()
    nS, nD = len(routes), len(routes) - 1
    width = np.array([len(S) for S in routes], dtype=float)
    alpha = _alpha(problem, routes)
    nY, nZ = R * nS, R * nD * K
    oZ, oU = nY, nY + nZ
    oP = oU + J * K
    oB = oP + K
    n = oB + 1
    yc = np.arange(nY).reshape(R, nS)
    zc = oZ + np.arange(nZ).reshape(R, nD, K)
    uc = oU + np.arange(J * K).reshape(J, K)
    om, theta, w = problem.latency_weight, problem.token_value_s, problem.weight
    v0, v1, v2, v3 = problem.verify_s.tolist()
    ctx = problem.context_tokens
    i = np.arange(1, K + 1)
    z_tok = np.broadcast_to(width[None, 1:, None], (R, nD, K)).ravel()
    c = np.zeros(n)
    c[:nY] = np.repeat(om * (v1 + v2 + v3 * ctx) - theta * w, nS)
    c[oZ:oU] = om * v2 * z_tok - (theta * w[:, None, None] * alpha[:, 1:, None] ** i[None, None, :]).ravel()
    c[oP:oB] = om
    c[oB] = om * v0
    bound = problem.step_bound_s
    unit = TIME_SCALE / bound if np.isfinite(bound) and bound > 0 else 1.0  # time rows: step bound = TIME_SCALE
    rows = _Rows()
    rows.add(np.repeat(np.arange(R), nS), yc.ravel(), 1.0, problem.urgent.astype(float), 1.0,
             [f"route[{r}]" for r in range(R)])
    if nZ:
        prev = np.concatenate([yc[:, 1:, None], zc[:, :, :-1]], axis=2).ravel()  # y_rS, then z_rS(i-1)
        rr = np.arange(nZ)
        rows.add(np.repeat(rr, 2), np.stack([zc.ravel(), prev], 1).ravel(), np.tile([1.0, -1.0], nZ), -np.inf, 0.0,
                 [f"draft[{r},{s},{k}]" for r in range(R) for s in range(1, nS) for k in range(1, K + 1)])
        member = np.array([[j in S for S in routes[1:]] for j in range(J)])  # (J, nD)
        jj, ss = np.nonzero(member)
        # m_ji - c_j u_ji <= 0, one row per (j, i)
        row_z = (jj[:, None, None] * K + np.arange(K)[None, None, :]).repeat(R, 1)  # (pairs, R, K)
        col_z = zc[:, ss, :].transpose(1, 0, 2)
        cap = np.minimum(problem.draft_capacity, R)
        jk = np.arange(J * K)
        rows.add(np.concatenate([row_z.ravel(), jk]), np.concatenate([col_z.ravel(), uc.ravel()]),
                 np.concatenate([np.ones(col_z.size), -np.repeat(cap, K)]), -np.inf, 0.0,
                 [f"capacity[{j},{k}]" for j in range(J) for k in range(1, K + 1)])
        # (hop + a_j) u_ji + b_j m_ji - rho_i <= 0, in units of the step bound / TIME_SCALE
        b = problem.draft_per_request_s * unit
        rows.add(np.concatenate([row_z.ravel(), jk, jk]),
                 np.concatenate([col_z.ravel(), uc.ravel(), oP + np.tile(np.arange(K), J)]),
                 np.concatenate([np.repeat(b[jj], R * K), np.repeat(problem.hop_s + problem.draft_base_s, K) * unit,
                                 -np.full(J * K, unit)]), -np.inf, 0.0,
                 [f"round_s[{j},{k}]" for j in range(J) for k in range(1, K + 1)])
    rows.add(np.zeros(nY + 1, dtype=np.int64), np.append(np.arange(nY), oB), np.append(np.ones(nY), -float(R)),
             -np.inf, 0.0, ["nonempty"])
    mu = problem.kv_bytes_per_token
    caps = (("verify_tokens", problem.max_verify_tokens, np.concatenate([np.ones(nY), z_tok, np.zeros(n - nY - nZ)])),
            ("verifier_memory", problem.verifier_memory_bytes,
             np.concatenate([mu * np.repeat(ctx + 1.0, nS), mu * z_tok, np.zeros(n - nY - nZ)])),
            ("step_s", problem.step_bound_s,
             np.concatenate([np.repeat(v1 + v2 + v3 * ctx, nS), v2 * z_tok, np.zeros(J * K), np.ones(K), [v0]])))
    for (label, limit, coef), top in zip(caps, (1.0, 1.0, TIME_SCALE), strict=True):
        nzc = np.flatnonzero(coef)
        if np.isfinite(limit) and nzc.size:
            # scaled to a right-hand side of ``top`` with check's relative slack (less a margin for the solver's
            # absolute tolerance on the continuous round times): what the solver accepts, check accepts
            scale = top / limit if limit > 0 else 1.0
            rhs = top * (1.0 + FEAS_TOL * (1.0 - SLACK_MARGIN)) if limit > 0 else 0.0
            rows.add(np.zeros(nzc.size, dtype=np.int64), nzc, coef[nzc] * scale, -np.inf, rhs, [label])
    upper = np.ones(n)
    upper[oP:oB] = np.inf
    integer = np.ones(n)
    integer[oP:oB] = 0.0
    milp = MILP(c=c, A=rows.matrix(n), row_lower=np.concatenate(rows.lo), row_upper=np.concatenate(rows.hi),
                col_upper=upper, integrality=integer, sense="min", row_names=rows.names,
                name=f"{problem.name}-milp")

    def decode(x: np.ndarray) -> ServingPlan:
        x = np.asarray(x, dtype=float)
        y = x[:nY].reshape(R, nS)
        z = x[oZ:oU].reshape(R, nD, K) > 0.5
        out, lengths = [], np.zeros(R, dtype=np.int64)
        for r in range(R):
            s = int(np.argmax(y[r])) if y[r].max() > 0.5 else None
            k = 0 if not s else int(np.cumprod(z[r, s - 1]).sum())  # the draft tokens in order
            out.append(None if s is None else routes[s] if k else ())
            lengths[r] = k
        return ServingPlan(out, lengths)

    return milp, decode


def step_start(problem: SpeculativeServing, plan: ServingPlan) -> np.ndarray:
    """The column values of :func:`step_milp` for ``plan`` (a warm start)."""
    R, J, K = problem.n_requests, problem.n_drafters, problem.max_speculation
    routes = problem.routes_of()
    index = {S: s for s, S in enumerate(routes)}
    nS, nD = len(routes), len(routes) - 1
    nY, nZ = R * nS, R * nD * K
    x = np.zeros(nY + nZ + J * K + K + 1)
    m = problem.evaluate(plan)
    drafting = np.zeros((J, K))
    for r, S in enumerate(plan.routes):
        if S is None:
            continue
        s = index[S]
        x[r * nS + s] = 1.0
        if s:
            base = nY + (r * nD + s - 1) * K
            x[base: base + int(plan.lengths[r])] = 1.0
            drafting[list(S), : plan.lengths[r]] += 1.0
    x[nY + nZ: nY + nZ + J * K] = (drafting > 0).ravel()
    x[nY + nZ + J * K: nY + nZ + J * K + m.round_s.size] = m.round_s
    x[-1] = float(any(S is not None for S in plan.routes))
    return x


__all__ = ["step_milp", "step_start"]
