r"""The MILPs of the partition family: :class:`~edgeplan.formulations.partition.split.SplitInference` and
:class:`~edgeplan.formulations.partition.pipeline.PipelinePartition`.

Both are registered as the problems' reductions to :class:`~edgeplan.formulations.milp.MILP`
(``problem.to_milp()`` looks them up in :mod:`edgeplan.registry`); this module imports the problems, never the reverse.

Split inference (DAG cuts, widths, memory)
------------------------------------------

Variables (``l`` a link, ``t`` a tier, ``u`` a block with successors, ``w`` a width):

* :math:`x_{v,l} \in \{0,1\}`: block :math:`v` runs on tier :math:`\le l` (so :math:`y_{v,0} = x_{v,0}`,
  :math:`y_{v,t} = x_{v,t} - x_{v,t-1}`, :math:`y_{v,T-1} = 1 - x_{v,T-2}` place it);
* :math:`c_{u,l} \ge 0`: native bytes of :math:`u`'s output crossing link :math:`l`;
* :math:`s_{u,l} \in \{0,1\}` for blocks whose consumers read different parts of a multi-tensor output
  (:math:`\sum_w e'_{uw} > a_u` with some :math:`e'_{uw} < a_u`): selects the cap :math:`a_u` of the
  profile's rule :math:`\min(a_u, \sum e')`;
* :math:`z_{u,l,w} \in \{0,1\}`, :math:`c_{u,l,w} \ge 0` for outputs that may be quantized: the width and the
  bytes sent at it;
* :math:`k_l \in [0,1]`: the input crosses link :math:`l`; :math:`g_l \in [0,1]`: link :math:`l` is in use;
* :math:`p_t \ge 0`: the largest activation on tier :math:`t` (with memory caps); :math:`\Pi \ge 0`: the
  period (throughput objective).

Constraints:

.. math::

    & x_{v,l} \le x_{v,l+1},\quad x_{w,l} \le x_{u,l}\ \ \forall (u,w) \in E
        && \text{(nested, ancestor-closed)}\\
    & c_{u,l} \ge e'_{uw}(x_{u,l} - x_{w,l})\ \ \forall (u,w)
        && \text{(exact when one tensor feeds every consumer)}\\
    & c_{u,l} \ge \textstyle\sum_w e'_{uw}(x_{u,l} - x_{w,l})\ \ [-\ (\sum_w e'_{uw} - a_u)s_{u,l}],
      \quad c_{u,l} \ge a_u s_{u,l}
        && \text{(sum rule; min with } a_u \text{ via } s)\\
    & \textstyle\sum_w c_{u,l,w} = c_{u,l},\quad c_{u,l,w} \le a_u z_{u,l,w},\quad \sum_w z_{u,l,w} \le 1
        && \text{(one width per crossing)}\\
    & k_l \ge 1 - x_{w,l}\ \forall w \text{ reading the input},\quad g_l \ge 1 - x_{s,l}\ \forall \text{ sinks } s\\
    & \textstyle\sum_v \omega_v y_{v,t} + p_t \le M_t,\quad p_t \ge \alpha_v y_{v,t}
        && \text{(memory)}\\
    & C_t = \textstyle\sum_v t_{v,t} y_{v,t} + \sum_{u,w} q_{t,w} c_{u,t,w} + \sum_{u,w} d_{t,w} c_{u,t-1,w},
      \quad X_l = \frac{8}{r_l}\big(\sum_{u,w} \tfrac{w}{w_0} c_{u,l,w} + b a_{\rm in} k_l\big)\\
    & \text{latency} = \textstyle\sum_t C_t + \sum_l (X_l + \lambda_l g_l) \le T_{\max},\quad
      \Pi \ge C_t,\ \Pi \ge X_l

(outputs that are never quantized use :math:`c_{u,l}` at native width directly). Objective: latency,
:math:`P^{\rm idle}\,\text{latency} + P^{\rm dyn} C_0 + P^{\rm tx} X_0`, or :math:`\Pi`. Every continuous
variable is pushed down by the objective or free to sit above its bound without changing it, and the decoder
reads only :math:`x` and :math:`z`; :meth:`SplitInference.evaluate` then recomputes the plan exactly.

``time_quantum_s = q`` writes :math:`\Pi = q\pi` with integer :math:`\pi` and declares every other column
integer (bytes and indicators), so that CP-SAT can take the model; it is exact when every stage time is a
multiple of ``q``.

Pipelines
---------

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
from edgeplan.formulations.milp import MILP, time_unit
from edgeplan.formulations.partition.common import Columns, Rows
from edgeplan.formulations.partition.pipeline import PipelinePartition, PipelinePlan
from edgeplan.formulations.partition.split import SplitInference, SplitPlan
from edgeplan.registry import reduction


def _tier_terms(x: np.ndarray, T: int, t: int) -> tuple[list[tuple[np.ndarray, float]], float]:
    """``y[:, t]`` as ``[(columns (L,), coefficient)], constant``."""
    if T == 1:
        return [], 1.0
    if t == 0:
        return [(x[:, 0], 1.0)], 0.0
    if t == T - 1:
        return [(x[:, T - 2], -1.0)], 1.0
    return [(x[:, t], 1.0), (x[:, t - 1], -1.0)], 0.0


@reduction(SplitInference)
def split_milp(problem: SplitInference, *, time_quantum_s: float | None = None,
               ) -> tuple[MILP, Callable[[Any], SplitPlan]]:
    """Build the MILP of the module docstring in one pass of numpy index arithmetic.

    Length: one function adds the row families in the order of the docstring's constraints, so the code reads
    against the math line by line; the column blocks it allocates first are shared by every family of rows.
    """
    as_scalar("time_quantum_s", time_quantum_s, min_value=0.0, strict_min=True, allow_none=True)
    integral = time_quantum_s is not None
    d = problem.data()
    T, L, nl = problem.n_tiers, problem.n_blocks, problem.n_tiers - 1
    # block u's byte columns are in units of its own output a_u, so every byte row reads in [0, 1]: with one
    # global unit a 2-byte edge beside a 5 MB input was 4e-7, under HiGHS' 1e-6 feasibility tolerance, and the
    # MILP sent it for free; bytes (1e5) meeting seconds per byte (1e-8) in one row has also misled HiGHS'
    # presolve. Integral mode keeps bytes (CP-SAT is exact).
    unit = np.ones(L) if integral else np.where(d["out_bytes"] > 0, d["out_bytes"], 1.0)
    src, dst = d["src"], d["dst"]
    eb = d["edge_bytes"] / unit[src]
    out = d["out_bytes"] / unit
    widths = problem.widths
    w0 = problem.native_bits
    cols = Columns()
    rows = Rows()
    x = cols.add("x", (L, nl), 0.0, 1.0, integer=True)

    # nesting x[v,l] <= x[v,l+1]; precedence x[w,l] <= x[u,l]  (as  a - b <= 0)
    if nl > 1:
        a, b = x[:, :-1].reshape(-1), x[:, 1:].reshape(-1)
        rows.add(a.size, np.repeat(np.arange(a.size), 2), np.stack([a, b], 1).reshape(-1), np.tile([1.0, -1.0], a.size),
                 upper=0.0)
    E = src.size
    if E:
        a, b = x[dst].reshape(-1), x[src].reshape(-1)
        rows.add(a.size, np.repeat(np.arange(a.size), 2), np.stack([a, b], 1).reshape(-1), np.tile([1.0, -1.0], a.size),
                 upper=0.0)

    # crossing bytes c[u,l] for blocks with successors
    senders = np.unique(src)
    n_s = senders.size
    pos = np.full(L, -1)
    pos[senders] = np.arange(n_s)
    # no upper bounds on the byte columns (the rows bound them): with bounds, HiGHS 1.14's aggregator presolve rule
    # returned a wrong "optimal" plan on instances with memory caps (reproduced against SCIP)
    # in integral mode (CP-SAT) every column needs a finite box: a sender's bytes never exceed its output
    c = cols.add("c", (n_s, nl), 0.0, out[senders][:, None] if integral else np.inf, integer=integral)
    if E:
        # max rule: c[u,l] - e'(x[u,l] - x[w,l]) >= 0 for every edge and link
        ce = c[pos[src]]                                                                  # (E, nl)
        r = np.arange(E * nl)
        trip = np.stack([ce.reshape(-1), x[src].reshape(-1), x[dst].reshape(-1)], 1).reshape(-1)
        rows.add(E * nl, np.repeat(r, 3), trip,
                 np.stack([np.ones(E * nl), -np.repeat(eb, nl), np.repeat(eb, nl)], 1).reshape(-1), lower=0.0)
    total = np.bincount(src, weights=eb, minlength=L)[senders]
    n_edges = np.bincount(src, minlength=L)[senders]
    all_full = np.ones(n_s, dtype=bool)
    if E:
        np.logical_and.at(all_full, pos[src], np.isclose(eb, out[src], rtol=1e-12, atol=0.0))
    sum_rule = (n_edges > 1) & ~all_full
    needs_s = sum_rule & (total > out[senders] * (1 + 1e-12))
    if sum_rule.any():
        # sum rule: c[u,l] - sum_w e'(x[u,l] - x[w,l]) [+ M s[u,l]] >= 0
        us = senders[sum_rule]
        s_cols = np.full((n_s, nl), -1)
        if needs_s.any():
            s_cols[needs_s] = cols.add("s", (int(needs_s.sum()), nl), 0.0, 1.0, integer=True)
        emask = sum_rule[pos[src]]
        es, ed, ew = src[emask], dst[emask], eb[emask]
        row_of_u = np.full(L, -1)
        row_of_u[us] = np.arange(us.size)
        for l in range(nl):        # nl <= 2: a loop over links, each block vectorized
            rr = [np.arange(us.size), row_of_u[es], row_of_u[es]]
            cc = [c[pos[us], l], x[es, l], x[ed, l]]
            vv = [np.ones(us.size), -ew, ew]
            ns = needs_s[sum_rule]
            big = (total - out[senders])[sum_rule]
            rr.append(np.flatnonzero(ns))
            cc.append(s_cols[pos[us[ns]], l])
            vv.append(big[ns])
            rows.add(us.size, np.concatenate(rr), np.concatenate(cc), np.concatenate(vv), lower=0.0)
        if needs_s.any():
            # c[u,l] - a_u s[u,l] >= 0
            sc = s_cols[needs_s].reshape(-1)
            cc = c[needs_s].reshape(-1)
            av = np.repeat(out[senders[needs_s]], nl)
            rows.add(sc.size, np.repeat(np.arange(sc.size), 2), np.stack([cc, sc], 1).reshape(-1),
                     np.stack([np.ones(sc.size), -av], 1).reshape(-1), lower=0.0)

    # widths: z[u,l,w], cw[u,l,w] for senders that may be quantized
    allowed = d["allowed"][senders]                                                  # (n_s, W)
    quantizable = allowed.sum(axis=1) > 1
    qs = np.flatnonzero(quantizable)
    nq, W = qs.size, widths.size
    sent_terms: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []    # (link, column, bytes-sent coefficient)
    q_terms: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []       # (tier, column, seconds coefficient)
    native_only = np.flatnonzero(~quantizable)
    for l in range(nl):
        sent_terms.append((np.full(native_only.size, l), c[native_only, l], unit[senders[native_only]]))
    if nq:
        ub = np.where(allowed[qs][:, None, :], out[senders[qs]][:, None, None], 0.0) * np.ones((1, nl, 1))
        z = cols.add("z", (nq, nl, W), 0.0, (ub > 0).astype(float), integer=True)
        cw = cols.add("cw", (nq, nl, W), 0.0, ub if integral else np.inf, integer=integral)
        n = nq * nl
        # sum_w cw - c = 0
        rows.add(n, np.concatenate([np.repeat(np.arange(n), W), np.arange(n)]),
                 np.concatenate([cw.reshape(-1), c[qs].reshape(-1)]),
                 np.concatenate([np.ones(n * W), -np.ones(n)]), lower=0.0, upper=0.0)
        # cw - a z <= 0
        m = n * W
        rows.add(m, np.repeat(np.arange(m), 2), np.stack([cw.reshape(-1), z.reshape(-1)], 1).reshape(-1),
                 np.stack([np.ones(m), -ub.reshape(-1)], 1).reshape(-1), upper=0.0)
        # sum_w z <= 1
        rows.add(n, np.repeat(np.arange(n), W), z.reshape(-1), 1.0, upper=1.0)
        frac = widths / w0
        uq = np.repeat(unit[senders[qs]], W)                                      # (nq * W,) in (q, w) order
        for l in range(nl):
            sent_terms.append((np.full(nq * W, l), cw[:, l, :].reshape(-1), uq * np.tile(frac, nq)))
            q_terms.append((np.full(nq * W, l), cw[:, l, :].reshape(-1), uq * np.tile(d["q_per_byte"][l], nq)))
            q_terms.append((np.full(nq * W, l + 1), cw[:, l, :].reshape(-1),
                            uq * np.tile(d["dq_per_byte"][l + 1], nq)))

    # input crossing k[l] >= 1 - x[w,l]; link in use g[l] >= 1 - x[s,l]
    k = cols.add("k", nl, 0.0, 1.0, integer=True)
    g = cols.add("g", nl, 0.0, 1.0, integer=True)
    for var, who in ((k, d["input_consumers"]), (g, d["sinks"])):
        n = who.size * nl
        if n:
            xs = x[np.tile(who, nl), np.repeat(np.arange(nl), who.size)]
            pairs = np.stack([np.repeat(var, who.size), xs], 1).reshape(-1)
            rows.add(n, np.repeat(np.arange(n), 2), pairs, 1.0, lower=1.0)
    sent_terms.append((np.arange(nl), k, np.full(nl, d["input_bytes"])))

    # memory: sum_v weights y[v,t] + p[t] <= M_t ; p[t] - act y[v,t] >= 0   (rows and p[t] in units of M_t, so
    # that byte-sized coefficients never meet second-sized ones: HiGHS' presolve has erred on such mixes)
    caps = problem.memory_cap_bytes
    for t in np.flatnonzero(np.isfinite(caps)):
        mu = max(float(caps[t]), 1.0) if not integral else 1.0
        p = cols.add(f"p{t}", (), 0.0, float(d["act_peak"].max(initial=0.0)) if integral else np.inf,
                     integer=integral)
        terms, const = _tier_terms(x, T, int(t))
        wts = d["weights"] / mu
        rr = np.concatenate([np.zeros(L * len(terms), dtype=int), [0]])
        cc = np.concatenate([*(tc for tc, _ in terms), [int(p)]])
        vv = np.concatenate([*(coef * wts for _, coef in terms), [1.0]])
        rows.add(1, rr, cc, vv, upper=caps[t] / mu - const * wts.sum())
        act = d["act_peak"] / mu
        big = act > 0
        nb = int(big.sum())
        rr = np.concatenate([np.arange(nb)] * (len(terms) + 1))
        cc = np.concatenate([np.full(nb, int(p)), *(tc[big] for tc, _ in terms)])
        vv = np.concatenate([np.ones(nb), *(-coef * act[big] for _, coef in terms)])
        rows.add(nb, rr, cc, vv, lower=const * act[big])

    # stage-time expressions: C_t and X_l as (column, coefficient) lists plus constants
    stage_cols: list[np.ndarray] = []
    stage_vals: list[np.ndarray] = []
    stage_const = np.zeros(T + nl)
    for t in range(T):
        terms, const = _tier_terms(x, T, t)
        cc = [tc for tc, _ in terms]
        vv = [coef * d["time"][t] for _, coef in terms]
        stage_const[t] += const * d["time"][t].sum()
        for tier, col, coef in q_terms:
            sel = tier == t
            cc.append(col[sel])
            vv.append(coef[sel])
        stage_cols.append(np.concatenate(cc) if cc else np.zeros(0, dtype=int))
        stage_vals.append(np.concatenate(vv) if vv else np.zeros(0))
    for l in range(nl):
        cc, vv = [], []
        for link, col, coef in sent_terms:
            sel = link == l
            cc.append(col[sel])
            vv.append(8.0 * coef[sel] / d["rate"][l])
        stage_cols.append(np.concatenate(cc))
        stage_vals.append(np.concatenate(vv))

    def combine(weights: np.ndarray, extra: list[tuple[np.ndarray, np.ndarray]] = ()) -> tuple[np.ndarray, float]:
        vec = np.zeros(cols.n)
        for s, wgt in enumerate(weights):
            if wgt:
                np.add.at(vec, stage_cols[s], wgt * stage_vals[s])
        for col, val in extra:
            np.add.at(vec, col, val)
        return vec, float(weights @ stage_const)

    lat_extra = [(g, d["latency"])]
    ones = np.ones(T + nl)
    idle, dyn, tx = d["power"]
    quantum = time_quantum_s or time_unit(*stage_vals, stage_const)
    if problem.minimize == "throughput":
        top = max(cols.expr_upper(stage_cols[s], stage_vals[s], stage_const[s]) for s in range(T + nl))
        pi = cols.add("period", (), 0.0, np.ceil(top / quantum) if integral else np.inf, integer=integral)
    n_cols = cols.n
    if problem.max_latency_s is not None:
        vec, const = combine(ones, lat_extra)
        nz = np.flatnonzero(vec[:n_cols])
        # in units of the cap: the solver's absolute row tolerance becomes relative to it
        unit_t = problem.max_latency_s if problem.max_latency_s > 0 and not integral else 1.0
        rows.add(1, np.zeros(nz.size, dtype=int), nz, vec[nz] / unit_t, upper=(problem.max_latency_s - const) / unit_t)
    if problem.minimize == "throughput":
        k = 1.0 if integral else 1.0 / quantum      # rows in units of the period's unit (see time_unit)
        for s in range(T + nl):             # quantum * pi - stage_s >= const_s
            sc, sv = stage_cols[s], stage_vals[s]
            rows.add(1, np.zeros(sc.size + 1, dtype=int), np.concatenate([[int(pi)], sc]),
                     np.concatenate([[quantum * k], -sv * k]), lower=stage_const[s] * k)
        cost = np.zeros(n_cols)
        cost[int(pi)] = quantum
        constant = 0.0
    else:
        weights = ones.copy()
        extra = list(lat_extra)
        if problem.minimize == "energy":
            weights = idle * ones
            weights[0] += dyn
            weights[T] += tx
            extra = [(g, idle * d["latency"])]
        cost, constant = combine(weights, extra)
    lower, upper, integer = cols.bounds()
    A, rl, ru = rows.matrix(n_cols)
    names = cols.names
    milp = MILP(c=cost, A=A, row_lower=rl, row_upper=ru, col_lower=lower, col_upper=upper, integrality=integer,
                constant=constant, col_names=names, name=f"{problem.name}-milp")

    def decode(sol: Any) -> SplitPlan:
        v = np.asarray(sol, dtype=float)
        xv = np.round(v[x]).astype(np.int64)
        tier = (1 - xv).sum(axis=1) if nl else np.zeros(L, dtype=np.int64)
        bits = np.zeros((nl, L), dtype=np.int64)
        if nq:
            zv = v[z]                                                                 # (nq, nl, W)
            on = zv.max(axis=2) > 0.5
            pick = widths[np.argmax(zv, axis=2)]
            bits[:, senders[qs]] = np.where(on, np.where(pick == w0, 0, pick), 0).T
        return problem.canonical(SplitPlan(tier, bits))

    return milp, decode


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


def _epigraph(rows: Rows, theta: int, quantum: float, exprs: list[_Expr], divide: bool) -> None:
    """``quantum * theta - expr_s >= const_s`` for every stage of every expression (divided by ``quantum``
    when ``divide``: theta is then in units of ``quantum`` and the row reads in those units too)."""
    k = 1.0 / quantum if divide else 1.0
    for e in exprs:
        s, c, v = e.arrays()
        rows.add(e.n, np.concatenate([np.arange(e.n), s]), np.concatenate([np.full(e.n, theta), c]),
                 np.concatenate([np.full(e.n, quantum * k), -v * k]), lower=e.const * k)


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


@reduction(PipelinePartition)
def pipeline_milp(problem: PipelinePartition, *, time_quantum_s: float | None = None,
                  ) -> tuple[MILP, Callable[[Any], PipelinePlan]]:
    """Build the MILP of the module docstring (fixed or free order) with numpy index arithmetic.

    Length: as :func:`split_milp`, the row families follow the docstring's constraints in order over shared
    column blocks (the free-order boundary columns feed both the link times and the memory rows).
    """
    as_scalar("time_quantum_s", time_quantum_s, min_value=0.0, strict_min=True, allow_none=True)
    integral = time_quantum_s is not None
    d = problem.data()
    quantum = time_quantum_s or time_unit(d["fwd"], d["bwd"], 8.0 * d["boundary"][:, None, None] / problem.rates_bps,
                                         problem.latency_s)
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
    top = np.inf
    if integral:   # CP-SAT needs a finite box: no stage or link can take longer than its largest possible sum
        parts = [F, B, X] if problem.training else [F, X]
        top = max(max((cols.expr_upper(c_[s_ == k], v_[s_ == k], e.const[k]) for k in range(e.n)), default=0.0)
                  for e in parts for s_, c_, v_ in [e.arrays()])
        top = np.ceil(2.0 * top / quantum) if np.isfinite(top) else np.inf    # F + B <= 2 max
    theta = cols.add("theta", n_th, 0.0, top, integer=integral)
    P = F
    if problem.training:
        P = _Expr(F.n)
        for e in (F, B):
            s_, c_, v_ = e.arrays()
            P.add(s_, c_, v_)
            P.const += e.const
    if n_th == 2:
        _epigraph(rows, int(theta[0]), quantum, [F, X], not integral)
        _epigraph(rows, int(theta[1]), quantum, [B, X], not integral)
    else:
        _epigraph(rows, int(theta[0]), quantum, [P, X], not integral)
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


__all__ = ["pipeline_milp", "split_milp"]
