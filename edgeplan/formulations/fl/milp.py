r"""The MILPs of :class:`~edgeplan.formulations.fl.fl_energy.FLRoundEnergy`: operating points and tangents.

Both share the selection rows (at most one column per user, the quota, per-BS bandwidth and channels) and the
linearized coverage rows of the module docstring of :mod:`.fl_energy`: per community :math:`c`,

.. math::

    \text{cover}_g - \sum_{n \in P_g \cap U_c} s_n \le 0,\quad
    \sum_{g} |g|\,\text{cover}_g \ge r^{\min}_{\rm ef} D^{\rm ef}_{U_c},\quad
    s_i + s_j - w_{ij} \le 1,\quad \sum_{i<j} |D_i\cap D_j|\, w_{ij} \le r^{\max}_{\rm re} D^{\rm re}_{U_c},

with :math:`\text{cover}_g, w_{ij} \in [0, 1]` continuous and :math:`s_n` the sum of user :math:`n`'s selection
columns. The cover variables may only be 1 for groups some selected owner holds, and :math:`w_{ij}` is pushed
to :math:`\max(0, s_i + s_j - 1) = s_i s_j` by the cap, so both linearizations are exact. Rows are assembled
as COO arrays in one go.

Coverage cuts
-------------
With many distinct sample groups the cover columns make the LP large and slow. The solvers can instead pass
``cuts``. The effective coverage :math:`f_c(S)` is monotone and submodular, so for any selection :math:`S_0`
(Nemhauser, Wolsey and Fisher 1978, Prop. 2.3, with :math:`\rho_j(A) = f_c(A \cup j) - f_c(A)`)

.. math::

    f_c(S) &\le f_c(S_0) + \sum_{j \notin S_0} \rho_j(S_0)\, s_j,\\
    f_c(S) &\le f_c(S_0) - \sum_{j \in S_0} \rho_j(S_0 \setminus j)\,(1 - s_j)
              + \sum_{j \notin S_0} f_c(\{j\})\, s_j,

and requiring either right side to reach :math:`r^{\min}_{\rm ef} D^{\rm ef}_{U_c}` is valid for every feasible
selection and exact at :math:`S = S_0` (:func:`edcr_cut`). A solver adds both cuts of each selection that misses
the floor and re-solves; the MILP with cuts is a relaxation, so its bound stays valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from edgeplan.formulations.fl.fl_energy import FLEnergySchedule, FLRoundEnergy
from edgeplan.formulations.milp import MILP
from edgeplan.registry import reduction


def edcr_cut(problem: FLRoundEnergy, selected: np.ndarray, community: int) -> list[tuple[np.ndarray, float]]:
    r"""The two submodular cuts of the module docstring at ``selected`` for ``community``: pairs ``(coef, rhs)``
    meaning :math:`\sum_n \text{coef}_n s_n \ge \text{rhs}` (coefficients 0 outside the community)."""
    data = problem.data
    inside = data.community == community
    s0 = np.asarray(selected, dtype=bool) & inside
    own = data.patterns & inside[None, :]
    sizes = data.group_sizes.astype(float)
    k = own[:, s0].sum(axis=1)
    ownf = own.T.astype(float)
    gain = ownf @ (sizes * (k == 0))          # f(j | S0), j outside S0
    loss = ownf @ (sizes * (k == 1))          # f(j | S0 - j), j in S0
    alone = ownf @ sizes                      # f({j})
    f0 = float(sizes[k > 0].sum())
    floor = problem.edcr_min * float(data.distinct(inside)) * (1 - 1e-12)
    cut_a = (np.where(s0, 0.0, gain) * inside, floor - f0)
    cut_b = (np.where(s0, loss, alone) * inside, floor - f0 + float(loss[s0].sum()))
    return [cut_a, cut_b]


def initial_edcr_cuts(problem: FLRoundEnergy) -> list[tuple[np.ndarray, float]]:
    r"""The cuts at :math:`S_0 = \emptyset` and :math:`S_0 = U_c` for every community (none without a floor)."""
    if problem.data is None or problem.edcr_min <= 0:
        return []
    out = []
    for c in np.unique(problem.data.community):
        out += edcr_cut(problem, np.zeros(problem.n_users, dtype=bool), int(c))[:1]
        out += edcr_cut(problem, problem.data.community == c, int(c))[1:]
    return out


def coverage_rows(problem: FLRoundEnergy, sel_cols: np.ndarray, first_row: int, first_col: int,
                  cuts: list[tuple[np.ndarray, float]] | None = None) -> dict[str, Any]:
    """COO pieces of the coverage rows over the selection indicators :math:`s_n` (column ``sel_cols[n]``); the
    extra continuous columns (cover, w) are numbered from ``first_col`` and the rows from ``first_row``. With
    ``cuts`` the effective coverage is given by those rows instead of the group formulation."""
    out: dict[str, Any] = {"rows": [], "cols": [], "vals": [], "lo": [], "hi": [], "n_rows": 0, "n_cols": 0}
    if problem.data is None or (problem.edcr_min <= 0 and problem.rdcr_max >= 1):
        return out
    if cuts:
        coef = np.stack([c for c, _ in cuts])
        coo = sp.coo_array(coef)
        out["rows"] += [coo.row + first_row]
        out["cols"] += [sel_cols[coo.col]]
        out["vals"] += [coo.data]
        out["lo"] = np.array([r for _, r in cuts])
        out["hi"] = np.full(len(cuts), np.inf)
        first_row += len(cuts)
    n = problem.n_users
    r, c = first_row, first_col

    def add(block: Any, extra_coef: float, lo: np.ndarray, hi: np.ndarray) -> None:
        """Rows ``block @ x + extra_coef * (one new column per row)`` within ``[lo, hi]``."""
        nonlocal r, c
        coo = sp.coo_array(block)
        k = block.shape[0]
        out["rows"] += [coo.row + r, r + np.arange(k)]
        out["cols"] += [sel_cols[coo.col], c + np.arange(k)]
        out["vals"] += [coo.data, np.full(k, extra_coef)]
        out["lo"] = np.concatenate([out["lo"], lo])
        out["hi"] = np.concatenate([out["hi"], hi])
        r += k
        c += k

    def total(cols: np.ndarray, weights: np.ndarray, lo: float, hi: float) -> None:
        """One row ``sum_k weights[k] * x[cols[k]]`` within ``[lo, hi]`` over the extra columns just added."""
        nonlocal r
        out["rows"] += [np.full(cols.size, r)]
        out["cols"] += [cols]
        out["vals"] += [weights]
        out["lo"] = np.concatenate([out["lo"], [lo]])
        out["hi"] = np.concatenate([out["hi"], [hi]])
        r += 1

    owners = problem.data.patterns                              # (G, N)
    sizes = problem.data.group_sizes.astype(float)
    overlap = problem.data.overlap_matrix().astype(float) if problem.rdcr_max < 1 else None
    for comm in np.unique(problem.data.community):
        inside = problem.data.community == comm
        if problem.edcr_min > 0 and cuts is None:                # cover_g - sum_{n owns g} s_n <= 0
            own = owners & inside[None, :]
            groups = np.flatnonzero(own.any(axis=1))
            block = -sp.csr_array(own[groups].astype(float))
            add(block, 1.0, np.full(groups.size, -np.inf), np.zeros(groups.size))
            floor = problem.edcr_min * float(sizes[groups].sum()) * (1 - 1e-12)
            total(np.arange(c - groups.size, c), sizes[groups], floor, np.inf)
        if overlap is not None:                                  # s_i + s_j - w_ij <= 1
            iu, ju = np.triu_indices(n, k=1)
            keep = inside[iu] & inside[ju] & (overlap[iu, ju] > 0)
            iu, ju = iu[keep], ju[keep]
            pairs = sp.csr_array((np.ones(2 * iu.size), (np.tile(np.arange(iu.size), 2), np.concatenate([iu, ju]))),
                                 shape=(iu.size, n))
            add(pairs, -1.0, np.full(iu.size, -np.inf), np.ones(iu.size))
            weight = overlap[iu, ju]
            total(np.arange(c - iu.size, c), weight, -np.inf, problem.rdcr_max * float(weight.sum()) * (1 + 1e-12))
    out["n_rows"], out["n_cols"] = r - first_row + (len(cuts) if cuts else 0), c - first_col
    return out


def assemble(problem: FLRoundEnergy, col_user: np.ndarray, col_bs: np.ndarray, usage: np.ndarray,
             capacity: np.ndarray, n_int: int, extra: dict[str, Any], cost: np.ndarray, name: str,
             cuts: list[tuple[np.ndarray, float]] | None = None) -> MILP:
    r"""The rows every energy MILP has, over its first ``n_int`` (binary) columns :math:`x_i` of users ``col_user``
    on BSs ``col_bs``, plus the family-specific ``extra`` rows and columns.

    Columns: :math:`x` (``n_int``), the extra ones, :math:`s_n` (one binary per user), then the coverage columns.
    Rows: :math:`\sum_{i: n_i = n} x_i - s_n = 0`; the quota :math:`\sum_n s_n = K` (:math:`\ge K`); per BS the
    bandwidth (``extra["bw_rows"]``/``["bw_cols"]`` with ``usage``, against ``capacity``) and the channels
    :math:`\sum_{i: m_i = m} x_i \le C_m`; the extra rows; the coverage rows over :math:`s`. Selecting through
    :math:`s` keeps the coverage rows short and gives the branch-and-bound one variable per user to branch on.
    ``cuts`` (a list, possibly empty) replaces the group formulation of the coverage floor by those rows.
    """
    n, m = problem.gain.shape
    p = col_user.size
    s0 = n_int + extra["n_cols"]                      # first s column
    # rows: [link (N) | quota (1) | bandwidth (M) | channels (M)] + extra + coverage
    base_rows = [col_user, n + np.arange(n), np.full(n, n), n + 1 + m + col_bs]
    base_cols = [np.arange(p), s0 + np.arange(n), s0 + np.arange(n), np.arange(p)]
    base_vals = [np.ones(p), -np.ones(n), np.ones(n), np.ones(p)]
    base_rows[1] = np.arange(n)
    cov = coverage_rows(problem, s0 + np.arange(n), n + 1 + 2 * m + extra["n_rows"], s0 + n, cuts)
    total_cols = s0 + n + cov["n_cols"]
    total_rows = n + 1 + 2 * m + extra["n_rows"] + cov["n_rows"]
    all_rows = np.concatenate([*base_rows, extra["bw_rows"] + n + 1, *extra["rows"], *cov["rows"]])
    all_cols = np.concatenate([*base_cols, extra["bw_cols"], *extra["cols"], *cov["cols"]])
    all_vals = np.concatenate([*base_vals, usage, *extra["vals"], *cov["vals"]])
    A = sp.coo_array((all_vals, (all_rows.astype(np.int64), all_cols.astype(np.int64))),
                     shape=(total_rows, total_cols))
    k = float(problem.n_select)
    lower = np.concatenate([np.zeros(n), [k], np.full(2 * m, -np.inf), extra["lo"], cov["lo"]])
    upper = np.concatenate([np.zeros(n), [k if problem.quota == "exact" else np.inf], capacity,
                            problem.bs_channels.astype(float), extra["hi"], cov["hi"]])
    c = np.zeros(total_cols)
    c[: cost.size] = cost
    col_hi = np.concatenate([np.ones(n_int), extra["col_hi"], np.ones(n), np.ones(cov["n_cols"])])
    integ = np.concatenate([np.ones(n_int), np.zeros(extra["n_cols"]), np.ones(n), np.zeros(cov["n_cols"])])
    return MILP(c=c, A=A, row_lower=lower, row_upper=upper, col_upper=col_hi, integrality=integ, name=name)


def point_milp(problem: FLRoundEnergy, users: Any, bs: Any, bandwidth_hz: Any, energy_j: Any, *, usage: Any = None,
               capacity: Any = None, energy_scale: float = 1.0, cuts: list[tuple[np.ndarray, float]] | None = None,
               ) -> tuple[MILP, Callable[[np.ndarray], np.ndarray]]:
    r"""The operating-point MILP: one binary :math:`x_i` per point :math:`i = (n_i, m_i, b_i)` with energy
    :math:`\mathcal E_i`.

    .. math::

        \min \sum_i \mathcal E_i x_i\quad\text{s.t.}\quad \sum_{i: n_i = n} x_i \le 1,\quad
        \sum_i x_i = K\ (\ge K),\quad \sum_{i: m_i = m} u_i x_i \le U_m,\quad
        \sum_{i: m_i = m} x_i \le C_m,\quad\text{coverage rows},

    with usage :math:`u_i` and capacity :math:`U_m` (default: bandwidth over each band, capacity 1; with
    resource blocks pass block counts and :math:`R_m`). Costs are in units of ``energy_scale`` joules (solvers'
    absolute gaps and tolerances, e.g. HiGHS's ``mip_abs_gap`` of 1e-6, need objectives of order 1). The
    decoder returns the chosen point indices.
    """
    u = np.asarray(users, dtype=np.int64)
    b = np.asarray(bs, dtype=np.int64)
    e = np.asarray(energy_j, dtype=float)
    use = (np.asarray(bandwidth_hz, dtype=float) / problem.bs_bandwidth_hz[b] if usage is None
           else np.asarray(usage, dtype=float))
    cap = np.ones(problem.n_bs) if capacity is None else np.asarray(capacity, dtype=float)
    extra = {"n_rows": 0, "n_cols": 0, "rows": [], "cols": [], "vals": [], "lo": [], "hi": [],
             "col_hi": np.zeros(0), "bw_rows": b, "bw_cols": np.arange(u.size)}
    milp = assemble(problem, u, b, use, cap, u.size, extra, e / energy_scale, f"{problem.name}-points", cuts)
    return milp, lambda x: np.flatnonzero(np.asarray(x)[: u.size] > 0.5)


def tangent_milp(problem: FLRoundEnergy, users: Any, bs: Any, b_min: Any, points: Any, values: Any, slopes: Any,
                 *, energy_scale: float = 1.0, cuts: list[tuple[np.ndarray, float]] | None = None,
                 ) -> tuple[MILP, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]:
    r"""The outer approximation for continuous bandwidth over pairs :math:`j = (n_j, m_j)`.

    Columns: :math:`z_j \in \{0,1\}`, then :math:`y_j \in [0, 1]` (bandwidth as a fraction of
    :math:`B_{m_j}`), then :math:`e_j \ge 0`. With tangent points :math:`\beta_{jk}` (``points[j]``),
    :math:`\mathcal E^\star` values and slopes:

    .. math::

        \min \sum_j e_j\quad\text{s.t.}\quad
        & e_j - s_{jk} B_{m_j} y_j - (\mathcal E^\star(\beta_{jk}) - s_{jk}\beta_{jk}) z_j \ge 0\ \ \forall j,k,\\
        & y_j - (\check b_j/B_{m_j}) z_j \ge 0,\quad y_j - z_j \le 0,\quad \sum_{j: m_j = m} y_j \le 1,\\
        & \text{and the selection, channel and coverage rows of } z.

    Its optimum is a lower bound (tangents of a convex function lie below it). Energies :math:`e_j` are in
    units of ``energy_scale`` joules (keep them of order 1: solvers' tolerances are absolute). The decoder
    returns ``(chosen pairs, their bandwidths in Hz)``.
    """
    u = np.asarray(users, dtype=np.int64)
    b = np.asarray(bs, dtype=np.int64)
    P = u.size
    B = problem.bs_bandwidth_hz[b]
    bmin = np.asarray(b_min, dtype=float)
    pts = [np.asarray(x, dtype=float) for x in points]
    vals = [np.asarray(x, dtype=float) for x in values]
    slp = [np.asarray(x, dtype=float) for x in slopes]
    z, y, e = np.arange(P), P + np.arange(P), 2 * P + np.arange(P)
    n_k = np.array([x.size for x in pts], dtype=np.int64)   # int even with no pair at all
    j_of = np.repeat(np.arange(P), n_k)
    beta, val, s = (np.concatenate(x) if P else np.zeros(0) for x in (pts, vals, slp))
    T = beta.size
    r_tan = np.arange(T)
    r_min = T + np.arange(P)
    r_max = T + P + np.arange(P)
    rows = [np.concatenate([r_tan, r_tan, r_tan]), np.concatenate([r_min, r_min]),
            np.concatenate([r_max, r_max])]
    cols = [np.concatenate([e[j_of], y[j_of], z[j_of]]), np.concatenate([y, z]), np.concatenate([y, z])]
    vals_ = [np.concatenate([np.ones(T), -s * B[j_of] / energy_scale, -(val - s * beta) / energy_scale]),
             np.concatenate([np.ones(P), -bmin / B]), np.concatenate([np.ones(P), -np.ones(P)])]
    n, m = problem.gain.shape
    offset = n + 1 + 2 * m
    extra = {"n_rows": T + 2 * P, "n_cols": 2 * P, "rows": [x + offset for x in rows], "cols": cols,
             "vals": vals_, "lo": np.concatenate([np.zeros(T + P), np.full(P, -np.inf)]),
             "hi": np.concatenate([np.full(T + P, np.inf), np.zeros(P)]),
             "col_hi": np.concatenate([np.ones(P), np.full(P, np.inf)]), "bw_rows": b, "bw_cols": y}
    cost = np.concatenate([np.zeros(2 * P), np.ones(P)])
    milp = assemble(problem, u, b, np.ones(P), np.ones(m), P, extra, cost, f"{problem.name}-tangents", cuts)

    def decode(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        on = np.flatnonzero(np.asarray(x)[:P] > 0.5)
        return on, np.maximum(np.asarray(x)[P + on], bmin[on] / B[on]) * B[on]

    return milp, decode


@reduction(FLRoundEnergy)
def energy_round_milp(problem: FLRoundEnergy) -> tuple[MILP, Callable[[np.ndarray], FLEnergySchedule]]:
    """The exact MILP of a resource-block energy round: :func:`point_milp` over the problem's
    :meth:`~FLRoundEnergy.block_points` (``FLRoundEnergy.to_milp()``, which refuses continuous bandwidth first)."""
    pts = problem.block_points()
    milp, decode = point_milp(problem, pts["user"], pts["bs"], pts["blocks"] * problem.resource_block_hz,
                                   pts["energy_j"], usage=pts["blocks"], capacity=problem.n_blocks)

    def to_plan(x: np.ndarray) -> FLEnergySchedule:
        i = decode(x)
        return problem.schedule_from_points(pts["user"][i], pts["bs"][i], pts["blocks"][i] * problem.resource_block_hz)

    return milp, to_plan


__all__ = ["assemble", "coverage_rows", "edcr_cut", "energy_round_milp", "initial_edcr_cuts", "point_milp",
           "tangent_milp"]
