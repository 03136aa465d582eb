r"""The MILP of :class:`~edgeplan.formulations.partition.split.SplitInference` (DAG cuts, widths, memory).

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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeplan._checks import as_scalar
from edgeplan.formulations.milp import MILP
from edgeplan.formulations.partition._base import Columns, Rows
from edgeplan.formulations.partition.split import SplitInference, SplitPlan


def _tier_terms(x: np.ndarray, T: int, t: int) -> tuple[list[tuple[np.ndarray, float]], float]:
    """``y[:, t]`` as ``[(columns (L,), coefficient)], constant``."""
    if T == 1:
        return [], 1.0
    if t == 0:
        return [(x[:, 0], 1.0)], 0.0
    if t == T - 1:
        return [(x[:, T - 2], -1.0)], 1.0
    return [(x[:, t], 1.0), (x[:, t - 1], -1.0)], 0.0


def split_milp(problem: SplitInference, *, time_quantum_s: float | None = None,
               ) -> tuple[MILP, Callable[[Any], SplitPlan]]:
    """Build the MILP of the module docstring in one pass of numpy index arithmetic."""
    as_scalar("time_quantum_s", time_quantum_s, min_value=0.0, strict_min=True, allow_none=True)
    integral = time_quantum_s is not None
    d = problem.data()
    T, L, nl = problem.n_tiers, problem.n_blocks, problem.n_tiers - 1
    # byte columns are in units of `unit` bytes: HiGHS' presolve has returned wrong optima on this model when
    # bytes (1e5) and seconds per byte (1e-8) met in one row; integral mode keeps bytes (CP-SAT is exact)
    unit = 1.0 if integral else max(float(d["out_bytes"].max(initial=0.0)), d["input_bytes"], 1.0)
    src, dst = d["src"], d["dst"]
    eb = d["edge_bytes"] / unit
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
    c = cols.add("c", (n_s, nl), 0.0, np.inf, integer=integral)
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
        sent_terms.append((np.full(native_only.size, l), c[native_only, l], np.full(native_only.size, unit)))
    if nq:
        ub = np.where(allowed[qs][:, None, :], out[senders[qs]][:, None, None], 0.0) * np.ones((1, nl, 1))
        z = cols.add("z", (nq, nl, W), 0.0, (ub > 0).astype(float), integer=True)
        cw = cols.add("cw", (nq, nl, W), 0.0, np.inf, integer=integral)
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
        for l in range(nl):
            sent_terms.append((np.full(nq * W, l), cw[:, l, :].reshape(-1), unit * np.tile(frac, nq)))
            q_terms.append((np.full(nq * W, l), cw[:, l, :].reshape(-1), unit * np.tile(d["q_per_byte"][l], nq)))
            q_terms.append((np.full(nq * W, l + 1), cw[:, l, :].reshape(-1),
                            unit * np.tile(d["dq_per_byte"][l + 1], nq)))

    # input crossing k[l] >= 1 - x[w,l]; link in use g[l] >= 1 - x[s,l]
    k = cols.add("k", nl, 0.0, 1.0, integer=integral)
    g = cols.add("g", nl, 0.0, 1.0, integer=integral)
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
        p = cols.add(f"p{t}", (), 0.0, np.inf, integer=integral)
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
    quantum = time_quantum_s or 1.0
    if problem.minimize == "throughput":
        pi = cols.add("period", (), 0.0, np.inf, integer=integral)
    n_cols = cols.n
    if problem.max_latency_s is not None:
        vec, const = combine(ones, lat_extra)
        nz = np.flatnonzero(vec[:n_cols])
        rows.add(1, np.zeros(nz.size, dtype=int), nz, vec[nz], upper=problem.max_latency_s - const)
    if problem.minimize == "throughput":
        for s in range(T + nl):             # quantum * pi - stage_s >= const_s
            sc, sv = stage_cols[s], stage_vals[s]
            rows.add(1, np.zeros(sc.size + 1, dtype=int), np.concatenate([[int(pi)], sc]),
                     np.concatenate([[quantum], -sv]), lower=stage_const[s])
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


__all__ = ["split_milp"]
