r"""The MILP of ParallelSFL's clustering with the L1 distance (:class:`ClientClustering`, ``divergence="l1"``).

Cluster slots :math:`c = 1..\bar C` (:math:`\bar C = \lfloor N / (n_{min} + 1) \rfloor`), sizes
:math:`n \in n_{min}..n_{max}`, times in units of :math:`\bar t = \max_i t_i`. Binary columns: :math:`a_{ic}`
(bottom of :math:`c`), :math:`r_{ic}` (top of :math:`c`), :math:`s_{cn}` (:math:`c` has :math:`n` bottoms),
:math:`z_{ic}` (the slowest bottom of :math:`c`); continuous: :math:`e_{cm}` (label gaps), :math:`g_c`
(:math:`D_c`), :math:`T_c` (slowest bottom time), :math:`h_{ic}` (bottom :math:`i`'s wait), :math:`w_c`
(:math:`W_c`).

.. math::

    \min \sum_c \lambda \frac{\bar t\, w_c}{\bar W} + (1 - \lambda) \frac{g_c}{\bar D}

subject to :math:`\sum_c (a_{ic} + r_{ic}) = 1`; :math:`o_c = \sum_i r_{ic} \le 1`,
:math:`\sum_n s_{cn} = o_c`, :math:`\sum_i a_{ic} = \sum_n n\, s_{cn}`;
:math:`e_{cm} \ge \pm \sum_i a_{ic} (\phi_{im} - \Phi_{0m})`,
:math:`g_c \ge \frac1n \sum_m e_{cm} - \frac{2 n_{max}}{n} (1 - s_{cn})`;
:math:`T_c \ge t_i a_{ic}`, :math:`T_c \le \sum_i t_i z_{ic}`, :math:`z_{ic} \le a_{ic}`,
:math:`\sum_i z_{ic} = o_c`; :math:`h_{ic} \ge T_c - t_i - \Delta (1 - a_{ic})` (:math:`\Delta = \max t - \min t`),
:math:`w_c \ge \frac1n \sum_i h_{ic} - \frac{n_{max}}{n} \Delta (1 - s_{cn})` (and the weaker rows
without indicators, :math:`g_c \ge \frac{1}{n_{max}} \sum_m e_{cm}`, :math:`w_c \ge \frac{1}{n_{max}} \sum_i h_{ic}`);
Eq. 8 :math:`\sum_i r_i a_{ic} \le \sum_j B_j r_{jc}`; Eq. 10
:math:`\mu_{p,j} \sum_i a_{ic} \le T_c + \mu_{p,j} n_{max} (1 - r_{jc})`; and slots in order of their tops'
indices (:math:`o_c \ge o_{c+1}`, :math:`\sum_j j\, r_{jc} + 1 \le \sum_j j\, r_{j,c+1} + N (1 - o_{c+1})`).
With a fixed size the mixture is linear in :math:`a`; the size indicators carry the :math:`1/n` (big-M rows
that bind only at the chosen size).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeplan.errors import UnsupportedProblemError
from edgeplan.formulations.clustering.clients import ClientClustering, ClusterPlan
from edgeplan.formulations.clustering.groups import GraphClustering, GroupPlan
from edgeplan.formulations.milp import MILP, SparseRows
from edgeplan.registry import reduction


def layout(problem: ClientClustering) -> dict[str, Any]:
    """Slots, sizes and the column offsets of every block."""
    N, M = problem.n_workers, problem.labels.shape[1]
    C = max(1, N // (problem.min_bottoms + 1))
    sizes = np.arange(problem.min_bottoms, min(problem.max_bottoms, N - 1) + 1)
    blocks = {"a": N * C, "r": N * C, "s": C * sizes.size, "z": N * C, "e": C * M, "g": C, "T": C, "h": N * C, "w": C}
    off, at = {}, 0
    for key, size in blocks.items():
        off[key] = at
        at += size
    return {"N": N, "M": M, "C": C, "sizes": sizes, "off": off, "n": at}


def _mean_at_size(rows: SparseRows, target: np.ndarray, s_col: np.ndarray, terms: np.ndarray, sizes: np.ndarray,
                  big: np.ndarray) -> None:
    """Rows ``target_c - (1/n) sum_k terms_ck - big_n s_cn >= -big_n`` for every slot ``c`` and size ``n``: the mean
    of the terms over the slot's ``n`` bottoms when the slot has that size, void otherwise."""
    C, S = s_col.shape
    K = terms.shape[1]
    rr = np.arange(C * S).reshape(C, S)
    cols = [np.repeat(target[:, None, None], S, 1), s_col[..., None], np.repeat(terms[:, None, :], S, 1)]
    vals = [np.ones((C, S, 1)), -np.broadcast_to(big[None, :, None], (C, S, 1)),
            -np.broadcast_to((1.0 / sizes)[None, :, None], (C, S, K))]
    rows.add(np.concatenate([rr[..., None], rr[..., None], np.repeat(rr[..., None], K, 2)], 2),
             np.concatenate(cols, 2), np.concatenate(vals, 2), -np.tile(big, C), np.inf, C * S)


def cluster_milp(problem: ClientClustering) -> tuple[MILP, Callable[[np.ndarray], ClusterPlan]]:
    """The MILP of the module docstring and its decoder (L1 distance only)."""
    if problem.divergence != "l1":
        raise UnsupportedProblemError(
            "the cluster MILP linearises the L1 distance; this instance uses "
            f"divergence {problem.divergence!r} (use 'cluster-dp' or set divergence='l1')"
        )
    L = layout(problem)
    N, M, C, sizes, off, n = L["N"], L["M"], L["C"], L["sizes"], L["off"], L["n"]
    S = sizes.size
    ii, cc = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")  # (N, C)
    col = {k: off[k] + ii * C + cc for k in ("a", "r", "z", "h")}  # (N, C) column indices
    s_col = off["s"] + np.arange(C)[:, None] * S + np.arange(S)[None, :]  # (C, S)
    e_col = off["e"] + np.arange(C)[:, None] * M + np.arange(M)[None, :]  # (C, M)
    g_col, T_col, w_col = (off[k] + np.arange(C) for k in ("g", "T", "w"))
    t = problem.bottom_time_s
    tbar = float(t.max()) if t.max() > 0 else 1.0
    tn = t / tbar
    spread = float(tn.max() - tn.min())
    dphi = problem.distributions - problem.reference[None, :]  # (N, M)
    links = problem.link_bps
    lscale = float(links.sum())
    ingress = np.minimum(problem.ingress_bps, lscale) / lscale
    rows = SparseRows()
    # each worker in one slot, as a bottom or as the top
    rows.add(np.repeat(np.arange(N)[:, None], 2 * C, 1), np.hstack([col["a"], col["r"]]), 1.0, 1.0, 1.0, N)
    ar = np.arange(C)
    # o_c <= 1 ; sum_n s_cn - o_c = 0 ; sum_i a_ic - sum_n n s_cn = 0 ; sum_i z_ic - o_c = 0
    rows.add(np.repeat(ar[:, None], N, 1), col["r"].T, 1.0, 0.0, 1.0, C)
    rows.add(
        np.hstack([np.repeat(ar[:, None], S, 1), np.repeat(ar[:, None], N, 1)]),
        np.hstack([s_col, col["r"].T]),
        np.hstack([np.ones((C, S)), -np.ones((C, N))]),
        0.0,
        0.0,
        C,
    )
    rows.add(
        np.hstack([np.repeat(ar[:, None], N, 1), np.repeat(ar[:, None], S, 1)]),
        np.hstack([col["a"].T, s_col]),
        np.hstack([np.ones((C, N)), -np.tile(sizes, (C, 1))]),
        0.0,
        0.0,
        C,
    )
    rows.add(
        np.hstack([np.repeat(ar[:, None], N, 1), np.repeat(ar[:, None], N, 1)]),
        np.hstack([col["z"].T, col["r"].T]),
        np.hstack([np.ones((C, N)), -np.ones((C, N))]),
        0.0,
        0.0,
        C,
    )
    # e_cm -/+ sum_i a_ic dphi_im >= 0
    for sign in (1.0, -1.0):
        rr = np.arange(C * M).reshape(C, M)
        rows.add(
            np.concatenate([rr[:, :, None], np.repeat(rr[:, :, None], N, 2)], axis=2),
            np.concatenate([e_col[:, :, None], np.broadcast_to(col["a"].T[:, None, :], (C, M, N))], 2),
            np.concatenate([np.ones((C, M, 1)), np.broadcast_to(-sign * dphi.T[None], (C, M, N))], 2),
            0.0,
            np.inf,
            C * M,
        )
    # g_c - (1/n) sum_m e_cm - (2 nmax / n) s_cn >= -(2 nmax / n)
    big_d = 2.0 * problem.max_bottoms / sizes
    _mean_at_size(rows, g_col, s_col, e_col, sizes, big_d)
    # valid without the size indicators (n <= nmax): g_c >= (1/nmax) sum_m e_cm, w_c >= (1/nmax) sum_i h_ic
    rows.add(
        np.hstack([ar[:, None], np.repeat(ar[:, None], M, 1)]),
        np.hstack([g_col[:, None], e_col]),
        np.hstack([np.ones((C, 1)), np.full((C, M), -1.0 / problem.max_bottoms)]),
        0.0,
        np.inf,
        C,
    )
    rows.add(
        np.hstack([ar[:, None], np.repeat(ar[:, None], N, 1)]),
        np.hstack([w_col[:, None], col["h"].T]),
        np.hstack([np.ones((C, 1)), np.full((C, N), -1.0 / problem.max_bottoms)]),
        0.0,
        np.inf,
        C,
    )
    # T_c - t_i a_ic >= 0 ; T_c - sum_i t_i z_ic <= 0 ; z_ic - a_ic <= 0
    rr = np.arange(N * C).reshape(N, C)
    rows.add(
        np.stack([rr, rr], -1),
        np.stack([np.broadcast_to(T_col, (N, C)), col["a"]], -1),
        np.stack([np.ones((N, C)), -np.broadcast_to(tn[:, None], (N, C))], -1),
        0.0,
        np.inf,
        N * C,
    )
    rows.add(
        np.hstack([ar[:, None], np.repeat(ar[:, None], N, 1)]),
        np.hstack([T_col[:, None], col["z"].T]),
        np.hstack([np.ones((C, 1)), -np.broadcast_to(tn[None, :], (C, N))]),
        -np.inf,
        0.0,
        C,
    )
    rows.add(
        np.stack([rr, rr], -1),
        np.stack([col["z"], col["a"]], -1),
        np.stack([np.ones((N, C)), -np.ones((N, C))], -1),
        -np.inf,
        0.0,
        N * C,
    )
    # h_ic - T_c - spread a_ic >= -t_i - spread
    rows.add(
        np.stack([rr, rr, rr], -1),
        np.stack([col["h"], np.broadcast_to(T_col, (N, C)), col["a"]], -1),
        np.stack([np.ones((N, C)), -np.ones((N, C)), -np.full((N, C), spread)], -1),
        np.repeat(-tn - spread, C),
        np.inf,
        N * C,
    )
    # w_c - (1/n) sum_i h_ic - (nmax spread / n) s_cn >= -(nmax spread / n)
    big_w = problem.max_bottoms * spread / sizes
    _mean_at_size(rows, w_col, s_col, col["h"].T, sizes, big_w)
    # Eq. 8: sum_i (r_i / sum r) a_ic - sum_j (B_j / sum r) r_jc <= 0
    rows.add(
        np.hstack([np.repeat(ar[:, None], N, 1), np.repeat(ar[:, None], N, 1)]),
        np.hstack([col["a"].T, col["r"].T]),
        np.hstack([np.broadcast_to(links / lscale, (C, N)), -np.broadcast_to(ingress, (C, N))]),
        -np.inf,
        0.0,
        C,
    )
    # Eq. 10: mu_j sum_i a_ic - T_c + mu_j nmax r_jc <= mu_j nmax   (one row per top j and slot c)
    mu = problem.top_s / tbar
    jc = np.arange(N * C).reshape(N, C)
    rows.add(
        np.concatenate([np.repeat(jc[..., None], N + 2, 2)], 2),
        np.concatenate(
            [
                np.broadcast_to(col["a"].T[None], (N, C, N)),
                np.broadcast_to(T_col[None, :, None], (N, C, 1)),
                col["r"][..., None],
            ],
            2,
        ),
        np.concatenate(
            [
                np.broadcast_to(mu[:, None, None], (N, C, N)),
                -np.ones((N, C, 1)),
                np.broadcast_to((mu * problem.max_bottoms)[:, None, None], (N, C, 1)),
            ],
            2,
        ),
        -np.inf,
        np.repeat(mu * problem.max_bottoms, C),
        N * C,
    )
    # symmetry: o_c - o_{c+1} >= 0 ; sum_j j r_jc - sum_j j r_j,c+1 + N o_{c+1} <= N - 1
    if C > 1:
        k = np.arange(C - 1)
        rows.add(
            np.hstack([np.repeat(k[:, None], N, 1), np.repeat(k[:, None], N, 1)]),
            np.hstack([col["r"].T[:-1], col["r"].T[1:]]),
            np.hstack([np.ones((C - 1, N)), -np.ones((C - 1, N))]),
            0.0,
            np.inf,
            C - 1,
        )
        j = np.arange(N, dtype=float)
        rows.add(
            np.hstack([np.repeat(k[:, None], 2 * N, 1), np.repeat(k[:, None], N, 1)]),
            np.hstack([col["r"].T[:-1], col["r"].T[1:], col["r"].T[1:]]),
            np.hstack([np.broadcast_to(j, (C - 1, N)), -np.broadcast_to(j, (C - 1, N)), np.full((C - 1, N), float(N))]),
            -np.inf,
            float(N - 1),
            C - 1,
        )
    A, lo, hi = rows.assemble(n)
    w_bar, d_bar = problem.normalisers
    c = np.zeros(n)
    c[w_col] = problem.weight * tbar / w_bar
    c[g_col] = (1.0 - problem.weight) / d_bar
    integrality = np.zeros(n)
    for key in ("a", "r", "s", "z"):
        integrality[off[key] : off[key] + {"s": C * S}.get(key, N * C)] = 1.0
    upper = np.where(integrality > 0, 1.0, np.inf)
    milp = MILP(
        c=c,
        A=A,
        row_lower=lo,
        row_upper=hi,
        col_upper=upper,
        integrality=integrality,
        sense="min",
        name=f"{problem.name}-milp",
    )

    def decode(x: np.ndarray) -> ClusterPlan:
        a = np.asarray(x[off["a"] : off["a"] + N * C]).reshape(N, C) > 0.5
        r = np.asarray(x[off["r"] : off["r"] + N * C]).reshape(N, C) > 0.5
        slots = [c for c in range(C) if r[:, c].any()]
        assignment = np.zeros(N, dtype=np.int64)
        for k, c in enumerate(slots):
            assignment[a[:, c] | r[:, c]] = k
        return ClusterPlan(assignment, [int(np.flatnonzero(r[:, c])[0]) for c in slots])

    return milp, decode


def cluster_start(problem: ClientClustering, plan: ClusterPlan) -> np.ndarray:
    """The binary columns of :func:`cluster_milp` for ``plan`` (clusters in slots by their tops' indices; NaN
    for the continuous columns, which the solver completes)."""
    L = layout(problem)
    N, C, sizes, off = L["N"], L["C"], L["sizes"], L["off"]
    x = np.full(L["n"], np.nan)
    for key in ("a", "r", "z"):
        x[off[key] : off[key] + N * C] = 0.0
    x[off["s"] : off["s"] + C * sizes.size] = 0.0
    t = problem.bottom_time_s
    for slot, c in enumerate(np.argsort(plan.top)):
        if slot >= C:
            break
        bottoms = np.flatnonzero((plan.assignment == c) & plan.bottoms())
        x[off["a"] + bottoms * C + slot] = 1.0
        x[off["r"] + plan.top[c] * C + slot] = 1.0
        x[off["z"] + bottoms[np.argmax(t[bottoms])] * C + slot] = 1.0
        k = np.flatnonzero(sizes == bottoms.size)
        if k.size:
            x[off["s"] + slot * sizes.size + k[0]] = 1.0
    return x


@reduction(GraphClustering)
def group_milp(problem: GraphClustering) -> tuple[MILP, Callable[[np.ndarray], GroupPlan]]:
    """The MILP of :mod:`~edgeplan.formulations.clustering.groups` and its decoder."""
    N, K = problem.n_clients, problem.n_clusters
    iu, ju = np.triu_indices(N, 1)
    P = iu.size
    nx = N * K
    x = np.arange(nx).reshape(N, K)
    y = nx + np.arange(P * K).reshape(P, K)
    rows = SparseRows()
    rows.add(np.repeat(np.arange(N)[:, None], K, 1), x, 1.0, 1.0, 1.0, N)  # each client in one cluster
    rows.add(np.repeat(np.arange(K)[:, None], N, 1), x.T, 1.0, problem.min_size, problem.max_size, K)
    r = np.arange(P * K).reshape(P, K)  # y_pc - x_ic - x_jc >= -1
    rows.add(
        np.stack([r, r, r], -1),
        np.stack([y, x[iu], x[ju]], -1),
        np.stack([np.ones((P, K)), -np.ones((P, K)), -np.ones((P, K))], -1),
        -1.0,
        np.inf,
        P * K,
    )
    A, lo, hi = rows.assemble(nx + P * K)
    c = np.zeros(nx + P * K)
    c[y] = problem.dissimilarity[iu, ju][:, None]
    upper = np.ones(nx + P * K)
    upper[x[np.arange(N)[:, None] < np.arange(K)[None, :]]] = 0.0  # client i in a cluster c <= i
    integrality = np.zeros(nx + P * K)
    integrality[:nx] = 1.0
    milp = MILP(
        c=c,
        A=A,
        row_lower=lo,
        row_upper=hi,
        col_upper=upper,
        integrality=integrality,
        sense="min",
        name=f"{problem.name}-milp",
    )

    def decode(v: np.ndarray) -> GroupPlan:
        return GroupPlan(np.argmax(np.asarray(v)[:nx].reshape(N, K), axis=1))

    return milp, decode


__all__ = ["cluster_milp", "cluster_start", "group_milp", "layout"]
