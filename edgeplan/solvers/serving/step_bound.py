r"""A lower bound on one speculative-serving step's optimum in a fraction of a second: Lagrangian relaxation.

``step-milp``'s MILP has tens of thousands of columns at 512 requests, and HiGHS cannot be stopped before it has
solved its root LP (seconds). This bound gives a time-limited ``step-milp`` a gap to report.

Relax, in the MILP of :mod:`edgeplan.formulations.serving.milp`, the verifier memory (multiplier
:math:`\lambda \ge 0`, on the row divided by :math:`M`), the verifiable tokens (:math:`\eta \ge 0`, divided by
:math:`N_{max}`), the capacity rows :math:`m_{ji} \le c_j u_{ji}` (:math:`\kappa_{ji} \ge 0`) and the round-time
rows :math:`\rho_i \ge (\ell + a_j) u_{ji} + b_j m_{ji}` (:math:`\pi_{ji} \ge 0` with
:math:`\sum_j \pi_{ji} \le \omega`, so that :math:`\rho_i` keeps a cost of at least 0). What is left splits into
one choice per request and one per :math:`u_{ji}`:

.. math::

    L = [\text{any urgent}]\,\omega v_0 + \sum_r \min_o g_r(o)
        + \sum_{j,i} \min\big(0, \pi_{ji}(\ell + a_j) - \kappa_{ji} c_j\big) - \lambda - \eta,

    g_r(o) = \omega(v_1 + v_3 n_r + v_2 t_o) - \theta w_r E_S(k) + \lambda \mu (n_r + t_o) / M
             + \eta\, t_o / N_{max} + \sum_{j \in S} \sum_{i \le k} (\pi_{ji} b_j + \kappa_{ji}),

over the options :math:`o` = (drafter set :math:`S`, length :math:`k`) of the MILP, the plain slot
(:math:`S = \emptyset, k = 0`) and, unless the request is urgent, staying out (:math:`g = 0`); :math:`t_o = 1 +
k|S|`. Every multiplier gives a valid bound (weak duality); the best over the multipliers is the MILP's LP bound.
:func:`step_bound` climbs towards it by projected subgradient steps of Polyak's length towards the cost of a known
plan, and returns the best value it met. :func:`lagrangian_plan` repairs the relaxation's choices into a plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing, tree_tokens
from edgeplan.solvers.serving.batching import BatchBuilder

#: Subgradient steps on the drafters' multipliers per round of the ascent.
STEPS = 60
#: Rounds: bisect the memory multiplier, then the tokens', then take :data:`STEPS` subgradient steps.
ROUNDS = 3
#: Bisection steps per multiplier.
BISECT = 30
#: Steps without a better bound after which the step length halves.
PATIENCE = 15


def _options(problem: SpeculativeServing) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per request and option (the plain slot, then every drafter set by length): the cost without multipliers
    ``(R, O)``, the memory ``(R, O)``, the tokens ``(O,)``, the length ``(O,)`` and the membership ``(J, O)``."""
    R, J, K = problem.n_requests, problem.n_drafters, problem.max_speculation
    sets = problem.routes_of()[1:]
    om, theta, w = problem.latency_weight, problem.token_value_s, problem.weight
    _, v1, v2, v3 = problem.verify_s.tolist()
    member = np.zeros((J, len(sets) * K + 1))
    gain = np.ones((R, member.shape[1]))  # E: 1 for the plain slot
    for s, S in enumerate(sets):
        cols = slice(1 + s * K, 1 + (s + 1) * K)
        member[list(S), cols] = 1.0
        chains = -np.sort(-problem.acceptance[list(S)][:, problem.domain], axis=0).T  # (R, |S|), best first
        gain[:, cols] = tree_tokens(chains[:, None, :], np.arange(1, K + 1)[None, :])
    k = np.concatenate([[0], np.tile(np.arange(1, K + 1), len(sets))]).astype(np.int64)
    tok = 1.0 + k * member.sum(axis=0)
    ctx = problem.context_tokens[:, None]
    base = om * (v1 + v3 * ctx + v2 * tok[None, :]) - theta * w[:, None] * gain
    return base, problem.kv_bytes_per_token * (ctx + tok[None, :]), tok, k, member


def step_bound(problem: SpeculativeServing, upper: float | None = None, steps: int = STEPS,
               until: float | None = None, costs: list | None = None) -> float:
    """A valid lower bound on the step's optimal cost (module docstring); ``inf`` when an urgent request has no
    option at all.

    Parameters
    ----------
    problem
        The step.
    upper
        The cost of a known plan, the target of Polyak's steps (None: none known).
    steps
        Subgradient steps on the drafters' multipliers per round of the ascent.
    until
        A :func:`time.perf_counter` time after which the best bound evaluated so far is returned (None: no limit).
    costs
        A list to which the option costs :math:`g_r(o)` ``(R, O)`` at the best multipliers are appended (for
        :func:`lagrangian_plan`), or None.
    """
    R, J, K = problem.n_requests, problem.n_drafters, problem.max_speculation
    base, mem, tok, k, member = _options(problem)
    # the caps as check applies them (with its slack): a plan check accepts keeps every relaxed row
    M, N = (float(c + slack_tol(np.asarray(c), FEAS_TOL)) for c in (problem.verifier_memory_bytes,
                                                                     problem.max_verify_tokens))
    cap = np.floor(problem.draft_capacity + slack_tol(problem.draft_capacity, FEAS_TOL))
    om = problem.latency_weight
    # an option no plan may use (alone over a cap, or on a drafter without capacity) leaves the relaxation
    bad = (member[cap < 1].sum(axis=0) > 0)[None, :] | (mem > M) | (tok > N)[None, :]
    base = np.where(bad, np.inf, base)
    use_mem, use_tok = bool(np.isfinite(M)), bool(np.isfinite(N))
    mem_s = mem / M if use_mem else np.zeros_like(mem)
    tok_s = tok / N if use_tok else np.zeros_like(tok)
    out = np.where(problem.urgent, np.inf, 0.0)
    fixed = om * float(problem.verify_s[0]) * bool(problem.urgent.any())
    a_hop = problem.hop_s + problem.draft_base_s
    rounds = (np.arange(1, K + 1)[None, :] <= k[:, None]).astype(float)  # (O, K): the rounds option o drafts in
    rows = np.arange(R)

    seen: list = [-np.inf, None]  # the best bound evaluated, and its option costs

    def evaluate(lam: float, eta: float, pi: np.ndarray, kappa: np.ndarray) -> tuple[float, ...]:
        """The bound at these multipliers and its subgradient."""
        if until is not None and time.perf_counter() > until and np.isfinite(seen[0]):
            raise TimeoutError
        per_round = pi * problem.draft_per_request_s[:, None] + kappa  # (J, K)
        g = base + lam * mem_s + eta * tok_s[None, :] + np.einsum("jo,jk,ok->o", member, per_round, rounds)[None, :]
        choice = np.argmin(g, axis=1)
        cost = g[rows, choice]
        inside = cost < out
        charge = pi * a_hop[:, None] - kappa * cap[:, None]
        value = fixed + float(np.where(inside, cost, out).sum()) + float(np.minimum(charge, 0.0).sum()) \
            - lam * use_mem - eta * use_tok
        if value > seen[0]:
            seen[0], seen[1] = value, g
        chosen = choice[inside]
        m = member[:, chosen] @ rounds[chosen]  # (J, K) m_ji
        u = (charge < 0).astype(float)
        return (value, float(mem_s[rows[inside], chosen].sum()) - 1.0, float(tok_s[chosen].sum()) - 1.0,
                a_hop[:, None] * u + problem.draft_per_request_s[:, None] * m, m - cap[:, None] * u)

    def root(slope: Callable[[float], float]) -> float:
        """Where a non-increasing ``slope`` (a concave function's subgradient) crosses 0 on ``t >= 0``."""
        if slope(0.0) <= 0:
            return 0.0
        lo, hi = 0.0, 1.0
        while slope(hi) > 0 and hi < 1e15:
            lo, hi = hi, hi * 2
        for _ in range(BISECT):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if slope(mid) > 0 else (lo, mid)
        return (lo + hi) / 2

    try:
        lam = eta = 0.0
        pi, kappa = np.zeros((J, K)), np.zeros((J, K))
        best, scale = -np.inf, 1.0
        for _ in range(ROUNDS):
            if use_mem:
                lam = root(lambda t, e=eta, p=pi, k=kappa: evaluate(t, e, p, k)[1])
            if use_tok:
                eta = root(lambda t, m=lam, p=pi, k=kappa: evaluate(m, t, p, k)[2])
            since = 0
            for _ in range(steps):
                value, _, _, d_pi, d_kappa = evaluate(lam, eta, pi, kappa)
                if not np.isfinite(value):
                    return float(value)
                if value > best + 1e-12 * max(1.0, abs(value)):
                    best, since = value, 0
                else:
                    since += 1
                    if since >= PATIENCE:
                        scale, since = scale / 2, 0
                norm = float((d_pi ** 2).sum() + (d_kappa ** 2).sum())
                if norm == 0.0:
                    break
                target = upper if upper is not None and upper > value else value + max(abs(value), 1.0) * 0.01
                t = scale * (target - value) / norm
                kappa = np.maximum(kappa + t * d_kappa, 0.0)
                pi = _cap_columns(np.maximum(pi + t * d_pi, 0.0), om)
        evaluate(lam, eta, pi, kappa)
    except TimeoutError:
        pass
    if costs is not None:
        costs.append(seen[1])
    return float(seen[0])


def lagrangian_plan(problem: SpeculativeServing, costs: np.ndarray) -> ServingPlan:
    r"""A plan repaired from the relaxation's choices: urgent requests first, then by their Lagrangian cost
    :math:`\min_o g_r(o)` (the most valuable first, those the relaxation leaves out stay out), each with its
    relaxed choice of drafters and length, shortened draft by draft until the step's caps hold, else without
    drafters, else left out.

    Parameters
    ----------
    problem
        The step.
    costs
        ``(R, O)`` the option costs :math:`g_r(o)` that :func:`step_bound` appends to its ``costs`` list.
    """
    K = problem.max_speculation
    sets = problem.routes_of()[1:]
    choice = np.argmin(costs, axis=1)
    cost = costs[np.arange(problem.n_requests), choice]
    b = BatchBuilder(problem)
    for r in np.lexsort((cost, ~problem.urgent)).tolist():
        if not np.isfinite(cost[r]) or (cost[r] >= 0 and not problem.urgent[r]):
            continue
        o = int(choice[r])
        S, k = (sets[(o - 1) // K], (o - 1) % K + 1) if o else ((), 0)
        if not any(b.add(r, S, kk) for kk in range(k, 0, -1)):
            b.add(r, (), 0)
    return b.plan()


def _cap_columns(pi: np.ndarray, total: float) -> np.ndarray:
    """``pi`` ``(J, K)`` with each column's sum brought down to at most ``total`` (Euclidean projection onto
    :math:`\\{\\pi \\ge 0, \\sum_j \\pi_{ji} \\le \\omega\\}`, column by column)."""
    over = pi.sum(axis=0) > total
    for i in np.flatnonzero(over):
        v = np.sort(pi[:, i])[::-1]
        cum = np.cumsum(v) - total
        idx = np.arange(1, v.size + 1)
        rho = np.flatnonzero(v - cum / idx > 0)[-1]
        pi[:, i] = np.maximum(pi[:, i] - cum[rho] / (rho + 1), 0.0)
    return pi


__all__ = ["lagrangian_plan", "step_bound"]
