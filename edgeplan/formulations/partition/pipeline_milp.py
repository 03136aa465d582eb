r"""The MILP of :class:`~edgeplan.formulations.partition.pipeline.PipelinePartition`.

Fixed order (:math:`S = K` stages, stage :math:`k` on device :math:`k`), with :math:`y_{v,k} \in \{0,1\}`
meaning "block :math:`v` is in a stage :math:`\le k`" (:math:`k = 0..K-2`; :math:`y_{v,-1} = 0`,
:math:`y_{v,K-1} = 1`):

.. math::

    & y_{v,k} \ge y_{v+1,k},\quad y_{v,k} \le y_{v,k+1},\quad \textstyle\sum_v (y_{v,k} - y_{v,k-1}) \ge 1
        && \text{(prefixes, nested, non-empty stages)}\\
    & F_k = \textstyle\sum_v t^f_{v,k}(y_{v,k} - y_{v,k-1}),\quad
      X_k = \sum_{j=1}^{L-1} \frac{8 b \beta_j}{r_{k,k+1}}(y_{j-1,k} - y_{j,k})
        && \text{(stage and link times: linear)}\\
    & \textstyle\sum_v (w_v + \phi_k a_v)(y_{v,k} - y_{v,k-1}) + (1 + \delta_{\rm in})\,\mathrm{in}_k
      + (1 + \delta_{\rm out})\,\mathrm{out}_k \le M_k
        && (\mathrm{in}_k, \mathrm{out}_k \text{ boundary bytes, linear in } y)

Free order: :math:`m_{v,d} \in \{0,1\}` (block :math:`v` on device :math:`d`), :math:`\sum_d m_{v,d} = 1`;
contiguity by run starts :math:`\sigma_{v,d} \ge m_{v,d} - m_{v-1,d}`, :math:`\sum_v \sigma_{v,d} \le 1`;
boundaries between devices by :math:`p_{j,d,e} \ge m_{j-1,d} + m_{j,e} - 1` (:math:`d \ne e`), so that device
:math:`d`'s outgoing link time is :math:`X_d = \sum_{j,e} \frac{8 b\beta_j}{r_{de}} p_{j,d,e}` (each device
has one outgoing boundary at most). Memory uses the same boundary bytes through :math:`p`. 1F1B's
position-dependent in-flight count is not modelled with a free order (use ``pipeline-dp``).

Objective, with epigraph variables :math:`\theta \ge P_s,\ \theta \ge X_s` (:math:`P = F` or :math:`F + B`):
bottleneck :math:`\min\theta`; iteration :math:`\min \sum F + \sum X + \sum\Lambda + (M-1)\theta` (inference),
:math:`\sum(F + B) + 2\sum(X + \Lambda) + (M-1)(\theta_F + \theta_B)` with :math:`\theta_F \ge F, X` and
:math:`\theta_B \ge B, X` (GPipe training), or :math:`\sum P + 2\sum(X + \Lambda) + (M-1)\theta` (1F1B).
``time_quantum_s = q`` makes the :math:`\theta` columns integer multiples of ``q`` (and every column
integer), for CP-SAT; exact when every stage time is a multiple of ``q``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeplan._checks import as_scalar
from edgeplan.errors import UnsupportedProblemError
from edgeplan.formulations.milp import MILP
from edgeplan.formulations.partition._base import Columns, Rows
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan


class _Expr:
    """Sparse linear expressions indexed by a stage: lists of (stage, column, coefficient) and constants."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.s: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.const = np.zeros(n)

    def add(self, stage: Any, col: Any, val: Any) -> None:
        col = np.asarray(col, dtype=np.int64).reshape(-1)
        self.s.append(np.broadcast_to(np.asarray(stage, dtype=np.int64), col.shape).reshape(-1))
        self.c.append(col)
        self.v.append(np.broadcast_to(np.asarray(val, dtype=float), col.shape).reshape(-1))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.s:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(self.s), np.concatenate(self.c), np.concatenate(self.v)

    def sum_into(self, vec: np.ndarray, weight: float = 1.0) -> float:
        _, c, v = self.arrays()
        np.add.at(vec, c, weight * v)
        return float(weight * self.const.sum())


def _epigraph(rows: Rows, theta: int, quantum: float, exprs: list[_Expr]) -> None:
    """``quantum * theta - expr_s >= const_s`` for every stage of every expression."""
    for e in exprs:
        s, c, v = e.arrays()
        rows.add(e.n, np.concatenate([np.arange(e.n), s]), np.concatenate([np.full(e.n, theta), c]),
                 np.concatenate([np.full(e.n, quantum), -v]), lower=e.const)


def _le(rows: Rows, exprs: list[_Expr], upper: np.ndarray) -> None:
    """``sum of exprs (per stage) <= upper`` for the stages with a finite upper bound."""
    n = exprs[0].n
    parts = [e.arrays() for e in exprs]
    s = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    v = np.concatenate([p[2] for p in parts])
    const = sum(e.const for e in exprs)
    keep = np.isfinite(upper)
    new = np.full(n, -1)
    new[keep] = np.arange(int(keep.sum()))
    sel = keep[s]
    rows.add(int(keep.sum()), new[s[sel]], c[sel], v[sel], upper=(upper - const)[keep])


def pipeline_milp(problem: PipelinePartition, *, time_quantum_s: float | None = None,
                  ) -> tuple[MILP, Callable[[Any], PipelinePlan]]:
    """Build the MILP of the module docstring (fixed or free order) with numpy index arithmetic."""
    as_scalar("time_quantum_s", time_quantum_s, min_value=0.0, strict_min=True, allow_none=True)
    integral = time_quantum_s is not None
    quantum = time_quantum_s or 1.0
    d = problem.data()
    L, K = problem.n_blocks, problem.n_devices
    beta = d["boundary"]
    io = problem.data_buffers is not None
    din, dout = problem.data_buffers if io else (0, 0)
    cols, rows = Columns(), Rows()
    caps = problem.memory_cap_bytes
    has_caps = bool(np.isfinite(caps).any())
    j = np.arange(1, L)                                             # interior boundaries
    if problem.order == "fixed":
        y = cols.add("y", (L, K - 1), 0.0, 1.0, integer=True)
        if L > 1 and K > 1:   # prefix: y[v+1,k] - y[v,k] <= 0
            a, b = y[1:].reshape(-1), y[:-1].reshape(-1)
            rows.add(a.size, np.repeat(np.arange(a.size), 2), np.stack([a, b], 1).reshape(-1),
                     np.tile([1.0, -1.0], a.size), upper=0.0)
        if K > 2:             # nested: y[v,k] - y[v,k+1] <= 0
            a, b = y[:, :-1].reshape(-1), y[:, 1:].reshape(-1)
            rows.add(a.size, np.repeat(np.arange(a.size), 2), np.stack([a, b], 1).reshape(-1),
                     np.tile([1.0, -1.0], a.size), upper=0.0)

        def member(e: _Expr, weights: np.ndarray) -> None:
            """e[k] += sum_v weights[k, v] (y[v,k] - y[v,k-1])."""
            for k in range(K):
                if k < K - 1:
                    e.add(k, y[:, k], weights[k])
                else:
                    e.const[k] += weights[k].sum()
                if k > 0:
                    e.add(k, y[:, k - 1], -weights[k])

        count = _Expr(K)
        member(count, np.ones((K, L)))
        s_, c_, v_ = count.arrays()
        rows.add(K, s_, c_, v_, lower=1.0 - count.const)
        F, B, X, lam_const = _Expr(K), _Expr(K), _Expr(max(K - 1, 0)), np.zeros(max(K - 1, 0))
        member(F, d["fwd"])
        member(B, d["bwd"])
        out_b = _Expr(K)          # bytes leaving stage k (boundary after it), linear in y
        for k in range(K - 1):
            coef = 8.0 * beta[j] / problem.rates_bps[k, k + 1]
            X.add(k, y[j - 1, k], coef)
            X.add(k, y[j, k], -coef)
            out_b.add(k, y[j - 1, k], beta[j])
            out_b.add(k, y[j, k], -beta[j])
            lam_const[k] = problem.latency_s[k, k + 1]
        out_b.const[K - 1] = beta[L]
        if has_caps:
            phi = problem.in_flight(np.arange(K), K)
            mem = _Expr(K)
            member(mem, d["weights"][None, :] + phi[:, None] * d["acts"][None, :])
            inb = _Expr(K)
            inb.const[0] = beta[0] if io else 0.0
            s_, c_, v_ = out_b.arrays()
            mask = s_ < K - 1
            outb = _Expr(K)
            if io:
                inb.add(s_[mask] + 1, c_[mask], (1 + din) * v_[mask])
                outb.add(s_, c_, (1 + dout) * v_)
                outb.const = (1 + dout) * out_b.const
            _le(rows, [mem, inb, outb], caps)

        def decode(sol: Any) -> PipelinePlan:
            yv = np.round(np.asarray(sol, dtype=float)[y]).astype(np.int64)
            stage = (1 - yv).sum(axis=1) if K > 1 else np.zeros(L, dtype=np.int64)
            sizes = np.bincount(stage, minlength=K)
            return PipelinePlan.from_sizes(sizes)
    else:
        m = cols.add("m", (L, K), 0.0, 1.0, integer=True)
        rows.add(L, np.repeat(np.arange(L), K), m.reshape(-1), 1.0, lower=1.0, upper=1.0)
        sig = cols.add("sigma", (L, K), 0.0, 1.0, integer=integral)
        # sigma[v,d] - m[v,d] + m[v-1,d] >= 0
        n = L * K
        rr = np.concatenate([np.arange(n), np.arange(n), np.arange(K, n)])
        cc = np.concatenate([sig.reshape(-1), m.reshape(-1), m[:-1].reshape(-1)])
        vv = np.concatenate([np.ones(n), -np.ones(n), np.ones(n - K)])
        rows.add(n, rr, cc, vv, lower=0.0)
        rows.add(K, np.tile(np.arange(K), L), sig.reshape(-1), 1.0, upper=1.0)
        dd, ee = np.nonzero(~np.eye(K, dtype=bool))
        npair = dd.size
        p = cols.add("p", (max(L - 1, 0), npair), 0.0, 1.0, integer=integral)
        if L > 1:   # p[j,d,e] - m[j-1,d] - m[j,e] >= -1
            nn = (L - 1) * npair
            jj = np.repeat(np.arange(1, L), npair)
            rows.add(nn, np.repeat(np.arange(nn), 3),
                     np.stack([p.reshape(-1), m[jj - 1, np.tile(dd, L - 1)], m[jj, np.tile(ee, L - 1)]], 1).reshape(-1),
                     np.tile([1.0, -1.0, -1.0], nn), lower=-1.0)
        F, B, X = _Expr(K), _Expr(K), _Expr(K)
        for k in range(K):
            F.add(k, m[:, k], d["fwd"][k])
            B.add(k, m[:, k], d["bwd"][k])
        lam = _Expr(K)
        if L > 1:
            jj = np.repeat(np.arange(1, L), npair)
            dev_from, dev_to = np.tile(dd, L - 1), np.tile(ee, L - 1)
            X.add(dev_from, p.reshape(-1), 8.0 * beta[jj] / problem.rates_bps[dev_from, dev_to])
            lam.add(dev_from, p.reshape(-1), problem.latency_s[dev_from, dev_to])
        if has_caps:
            if problem.training and problem.schedule == "1f1b":
                raise UnsupportedProblemError(
                    "the pipeline MILP does not model 1F1B's position-dependent in-flight activations with a free "
                    "device order and memory caps; use method 'pipeline-dp'")
            phi = float(problem.in_flight(0, 1)) if problem.training else 0.0
            mem = _Expr(K)
            for k in range(K):
                mem.add(k, m[:, k], d["weights"] + phi * d["acts"])
                if io:
                    mem.add(k, m[0, k], beta[0])
                    mem.add(k, m[L - 1, k], (1 + dout) * beta[L])
            if L > 1 and io:
                mem.add(dev_from, p.reshape(-1), (1 + dout) * beta[jj])
                mem.add(dev_to, p.reshape(-1), (1 + din) * beta[jj])
            _le(rows, [mem], caps)

        def decode(sol: Any) -> PipelinePlan:
            mv = np.asarray(sol, dtype=float)[m]
            dev = np.argmax(mv, axis=1)
            starts = np.concatenate([[0], np.flatnonzero(np.diff(dev) != 0) + 1])
            return PipelinePlan(np.concatenate([starts, [L]]), dev[starts])

    # objective
    M = problem.n_micro
    n_th = 2 if (problem.training and problem.schedule == "gpipe" and problem.minimize == "iteration") else 1
    theta = cols.add("theta", n_th, 0.0, np.inf, integer=integral)
    P = F
    if problem.training:
        P = _Expr(F.n)
        for e in (F, B):
            s_, c_, v_ = e.arrays()
            P.add(s_, c_, v_)
            P.const += e.const
    if n_th == 2:
        _epigraph(rows, int(theta[0]), quantum, [F, X])
        _epigraph(rows, int(theta[1]), quantum, [B, X])
    else:
        _epigraph(rows, int(theta[0]), quantum, [P, X])
    cost = np.zeros(cols.n)
    constant = 0.0
    if problem.minimize == "bottleneck":
        cost[theta[0]] = quantum
    else:
        link_w = 2.0 if problem.training else 1.0
        constant += P.sum_into(cost)
        constant += X.sum_into(cost, link_w)
        if problem.order == "fixed":
            constant += link_w * float(lam_const.sum())
        else:
            constant += lam.sum_into(cost, link_w)
        cost[theta] += (M - 1) * quantum
    lower, upper, integer = cols.bounds()
    A, rl, ru = rows.matrix(cols.n)
    milp = MILP(c=cost, A=A, row_lower=rl, row_upper=ru, col_lower=lower, col_upper=upper, integrality=integer,
                constant=constant, col_names=cols.names, name=f"{problem.name}-milp")
    return milp, decode


__all__ = ["pipeline_milp"]
