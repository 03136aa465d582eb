r"""The MILP of one speculative-serving step (:class:`~edgeplan.formulations.serving.step.SpeculativeServing`).

Columns, for the drafter sets :math:`S` a request may use (:meth:`SpeculativeServing.routes_of`), all binary
but :math:`\rho`:

* :math:`y_r`: request :math:`r` is batched without drafters;
* :math:`x_{rSk}`, :math:`S \ne \emptyset`, :math:`k = 1..K`: it is batched with drafters :math:`S` and :math:`k`
  draft tokens (a pattern);
* :math:`u_{ji}`: drafter :math:`j` drafts in round :math:`i`; :math:`\rho_i \ge 0`: the time of round :math:`i`;
* :math:`\beta`: the batch is not empty.

.. math::

    \min\ \omega\Big(\sum_i \rho_i + v_0\beta + v_1 B + v_2 N + v_3 \sum n_r\Big)
          - \theta \sum_r w_r\Big(y_r + \sum_{S,k} E_S(k)\, x_{rSk}\Big)

with :math:`B = \sum y + \sum x`, :math:`N = \sum y + \sum (1 + k|S|) x` and the contexts summed over the batch,
subject to :math:`\text{urgent}_r \le y_r + \sum_{S,k} x_{rSk} \le 1`;
:math:`m_{ji} = \sum_{r, S \ni j, k \ge i} x_{rSk} \le c_j u_{ji}`;
:math:`\rho_i \ge (\ell + a_j) u_{ji} + b_j m_{ji}`; :math:`B \le R\beta`; and, when finite,
:math:`N \le N_{max}`, :math:`\mu(\sum_{\mathcal B} (n_r + 1) + \sum k|S| x) \le M` and the step time
:math:`\le L` (each scaled to its limit, and the round-time rows to the step bound, so that a solver's absolute
tolerance stays inside the relative slack of ``check``). Patterns rather than one column per draft token keep
one row per request instead of one per draft token (the same LP bound: the two are related by a unimodular
change of variables), which makes the LP of a 512-request step fast.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeplan.formulations.base import FEAS_TOL
from edgeplan.formulations.milp import MILP, SparseRows
from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing, tree_tokens
from edgeplan.registry import reduction

#: The step bound's value in the rows that carry time (round times, the step bound): a solver's absolute tolerance
#: of 1e-6 on them is then 1e-9 of the bound.
TIME_SCALE = 1e3
#: The share of check's relative slack left to the solver's own tolerance in the scaled cap rows.
SLACK_MARGIN = 0.05


@reduction(SpeculativeServing)
def step_milp(problem: SpeculativeServing) -> tuple[MILP, Callable[[np.ndarray], ServingPlan]]:
    """The MILP of the module docstring, built as one sparse matrix: every pattern of every request."""
    return pattern_milp(problem, *_full(problem))


def pattern_milp(problem: SpeculativeServing, pr: np.ndarray, ps: np.ndarray,
                 pk: np.ndarray) -> tuple[MILP, Callable[[np.ndarray], ServingPlan]]:
    """The MILP of the module docstring over the given patterns only: pattern ``p`` batches request ``pr[p]`` with
    drafter set ``routes_of()[ps[p]]`` (``ps`` >= 1) and ``pk[p]`` >= 1 draft tokens. With every pattern it is
    :func:`step_milp`; with fewer it is the step restricted to them (e.g. routes and lengths fixed, the batch
    free)."""
    R, J, K = problem.n_requests, problem.n_drafters, problem.max_speculation
    routes = problem.routes_of()
    pr, ps, pk = (np.asarray(a, dtype=np.int64) for a in (pr, ps, pk))
    P = pr.size
    width = np.array([len(S) for S in routes], dtype=float)
    s_max = int(width.max(initial=1))
    chains = np.zeros((len(routes), problem.n_domains, s_max))  # each set's chains in the verifier's order, per domain
    for i, S in enumerate(routes[1:], start=1):
        chains[i, :, :len(S)] = -np.sort(-problem.acceptance[list(S)], axis=0).T
    oX = R
    oU = oX + P
    oP = oU + J * K
    oB = oP + K
    n = oB + 1
    uc = oU + np.arange(J * K).reshape(J, K)
    om, theta, w = problem.latency_weight, problem.token_value_s, problem.weight
    v0, v1, v2, v3 = problem.verify_s.tolist()
    ctx = problem.context_tokens
    tok = 1.0 + width[ps] * pk  # verified tokens of each pattern
    gain = tree_tokens(chains[ps, problem.domain[pr]], pk)
    per_req = om * (v1 + v3 * ctx) - theta * w
    c = np.zeros(n)
    c[:R] = per_req + om * v2
    c[oX:oU] = per_req[pr] + theta * w[pr] + om * v2 * tok - theta * w[pr] * gain  # per_req credits the own token
    c[oP:oB] = om
    c[oB] = om * v0
    rows = SparseRows()
    rows.add(np.concatenate([np.arange(R), pr]), np.arange(oU), 1.0, problem.urgent.astype(float), 1.0,
             [f"route[{r}]" for r in range(R)])
    bound = problem.step_bound_s
    unit = TIME_SCALE / bound if np.isfinite(bound) and bound > 0 else 1.0  # time rows: step bound = TIME_SCALE
    if P:
        member = np.array([[j in S for S in routes] for j in range(J)])  # (J, sets)
        # pattern p loads each drafter j of its set in rounds 1..k: an entry in row (j, i) for i < k
        jj, pp = np.nonzero(member[:, ps])
        reps = pk[pp]
        ep = np.repeat(pp, reps)
        ej = np.repeat(jj, reps)
        ei = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        rows_ji = ej * K + ei
        jk = np.arange(J * K)
        cap = np.minimum(problem.draft_capacity, R)
        rows.add(np.concatenate([rows_ji, jk]), np.concatenate([oX + ep, uc.ravel()]),
                 np.concatenate([np.ones(ep.size), -np.repeat(cap, K)]), -np.inf, 0.0,
                 [f"capacity[{j},{i}]" for j in range(J) for i in range(1, K + 1)])
        # (hop + a_j) u_ji + b_j m_ji - rho_i <= 0, in units of the step bound / TIME_SCALE
        b = problem.draft_per_request_s * unit
        rows.add(np.concatenate([rows_ji, jk, jk]),
                 np.concatenate([oX + ep, uc.ravel(), oP + np.tile(np.arange(K), J)]),
                 np.concatenate([b[ej], np.repeat(problem.hop_s + problem.draft_base_s, K) * unit,
                                 -np.full(J * K, unit)]), -np.inf, 0.0,
                 [f"round_s[{j},{i}]" for j in range(J) for i in range(1, K + 1)])
    rows.add(np.zeros(oU + 1, dtype=np.int64), np.append(np.arange(oU), oB), np.append(np.ones(oU), -float(R)),
             -np.inf, 0.0, ["nonempty"])
    mu = problem.kv_bytes_per_token
    tokens = np.concatenate([np.ones(R), tok])
    ctx_x = np.concatenate([ctx, ctx[pr]])
    rest = np.zeros(n - oU)
    time_rest = np.concatenate([np.zeros(J * K), np.ones(K), [v0]])
    caps = (("verify_tokens", problem.max_verify_tokens, np.concatenate([tokens, rest])),
            ("verifier_memory", problem.verifier_memory_bytes, np.concatenate([mu * (ctx_x + tokens), rest])),
            ("step_s", bound, np.concatenate([v1 + v3 * ctx_x + v2 * tokens, time_rest])))
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
        out: list[tuple[int, ...] | None] = [() if x[r] > 0.5 else None for r in range(R)]
        lengths = np.zeros(R, dtype=np.int64)
        for p in np.flatnonzero(x[oX:oU] > 0.5).tolist():
            out[pr[p]] = routes[ps[p]]
            lengths[pr[p]] = pk[p]
        return ServingPlan(out, lengths)

    return milp, decode


def _full(problem: SpeculativeServing) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pattern of every request: (request, drafter set >= 1, length >= 1), in that order."""
    sets = np.arange(1, len(problem.routes_of()))
    return tuple(a.ravel() for a in np.meshgrid(np.arange(problem.n_requests), sets,
                                                np.arange(1, problem.max_speculation + 1), indexing="ij"))


def step_start(problem: SpeculativeServing, plan: ServingPlan) -> np.ndarray:
    """The column values of :func:`step_milp` for ``plan`` (a warm start; pattern ``(r, s, k)`` is column
    ``R + (r * sets + s - 1) * K + k - 1``, the order of :func:`_full`)."""
    R, J, K = problem.n_requests, problem.n_drafters, problem.max_speculation
    routes = problem.routes_of()
    where = {S: s for s, S in enumerate(routes)}
    oU = R + R * (len(routes) - 1) * K
    x = np.zeros(oU + J * K + K + 1)
    drafting = np.zeros((J, K))
    for r, S in enumerate(plan.routes):
        if S is None:
            continue
        if not S:
            x[r] = 1.0
            continue
        k = int(plan.lengths[r])
        x[R + (r * (len(routes) - 1) + where[S] - 1) * K + k - 1] = 1.0
        drafting[list(S), :k] += 1.0
    m = problem.evaluate(plan)
    x[oU:oU + J * K] = (drafting > 0).ravel()
    x[oU + J * K:oU + J * K + m.round_s.size] = m.round_s
    x[-1] = float(any(S is not None for S in plan.routes))
    return x


__all__ = ["pattern_milp", "step_milp", "step_start"]
