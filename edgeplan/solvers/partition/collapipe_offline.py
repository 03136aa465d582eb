r"""The best CollaPipe schedule in hindsight: a Lagrangian lower bound and a column MILP upper bound.

Offline, all :math:`T` slots' gains are known and the budgets are hard:

.. math::

    \text{OPT} = \min_{\pi_1..\pi_T}\ \frac1T\sum_t T_t(\pi_t)\quad\text{s.t.}\quad
    \frac1T\sum_t E_{k,t}(\pi_t) \le \bar E_k\ \ \forall k.

**Lower bound: column generation.** The restricted master LP picks a convex combination of known plans
(columns) per slot with the budgets as rows (a penalized slack per budget keeps it feasible):

.. math::

    \min_{\lambda \ge 0, s \ge 0}\ \frac1T\sum_{t,j}\lambda_{tj} T_{tj} + P\sum_k s_k\quad\text{s.t.}\quad
    \sum_j \lambda_{tj} = 1\ \ (\pi_t),\qquad
    \frac1T\sum_{t,j}\lambda_{tj}E_{k,tj} - s_k \le \bar E_k\ \ (-\mu_k).

Its budget duals :math:`\mu \ge 0` price each slot exactly (the slot solver with latency weight 1 and energy
weights :math:`\mu`), and weak duality gives, for every :math:`\mu \ge 0`,

.. math::

    d(\mu) = \frac1T\sum_t \min_\pi\,[T_t(\pi) + \mu\cdot E_t(\pi)] - \mu\cdot\bar E \ \le\ \text{OPT}.

Plans with negative reduced cost :math:`T_t + \mu\cdot E_t - T\pi_t` join the master; when none is left, the
master's value equals :math:`d(\mu)`, the best bound of this kind (the LP relaxation of the offline problem over
every plan). The best :math:`d(\mu)` met is reported.

**Upper bound.** Every column, plus each slot's plans priced at :math:`\mu` scaled by a few factors around the
final duals (the trade-offs next to the optimum, which an integer schedule needs), and any schedules given
(e.g. a controller's), minus those another column of the same slot dominates, go to a MILP (HiGHS through
``scipy.optimize.milp``, one binary per slot and column, built as one sparse matrix) that picks one column per
slot with the budgets hard. Its value is a feasible schedule's, so :math:`d(\mu) \le \text{OPT} \le \text{MILP}`;
when the columns hold every plan of every slot (tiny slots), the MILP is the offline optimum itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from edgeplan.errors import ProblemDataError, SolverError
from edgeplan.formulations.partition.collapipe import CollaPipeHorizon, CollaPipePlan
from edgeplan.solvers.partition.collapipe_exact import solve_slot


@dataclass(frozen=True)
class OfflineBound:
    """Bounds on the best time-average latency in hindsight (s per round).

    Attributes
    ----------
    lower
        The best Lagrangian bound :math:`d(\\mu)`.
    upper
        The column MILP's value (``None``: no combination of columns meets the budgets).
    plans
        The MILP's schedule, one plan per slot (``None`` with ``upper``).
    multipliers
        The :math:`\\mu` of the best bound (s per J).
    columns
        Distinct plans per slot, summed.
    """

    lower: float
    upper: float | None
    plans: list[CollaPipePlan] | None
    multipliers: np.ndarray
    columns: int

    @property
    def gap(self) -> float:
        """``upper / lower - 1`` (inf without an upper bound)."""
        return math.inf if self.upper is None else self.upper / self.lower - 1.0 if self.lower > 0 else math.inf


def _table(horizon: CollaPipeHorizon, columns: list[list[CollaPipePlan]]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[CollaPipePlan]]:
    """Latency (s) and energy (J, one row per column) of every column, its slot, and the columns flat, after
    dropping per slot the columns another one dominates (no slower, no more energy on any device)."""
    lat, eng, slot_of, flat = [], [], [], []
    for t, cols in enumerate(columns):
        s = horizon.at(t)
        figs = [(e.round_s, e.energy_j) for e in map(s.evaluate, cols)]
        L = np.array([f[0] for f in figs])
        E = np.array([f[1] for f in figs]).reshape(len(cols), -1)
        order = np.lexsort((E.sum(axis=1), L))  # ties: the first kept dominates the rest
        keep: list[int] = []
        for j in order:
            if not any(L[i] <= L[j] and np.all(E[i] <= E[j]) for i in keep):
                keep.append(int(j))
        for j in sorted(keep):
            lat.append(L[j])
            eng.append(E[j])
            slot_of.append(t)
            flat.append(cols[j])
    return np.array(lat), np.array(eng).reshape(len(lat), -1), np.array(slot_of, dtype=int), flat


def schedule_milp(horizon: CollaPipeHorizon, columns: list[list[CollaPipePlan]], *, time_limit: float = 30.0
                  ) -> tuple[float | None, list[CollaPipePlan] | None]:
    """The best choice of one column per slot with the budgets hard (time-average latency, schedule); at the
    time limit, the best choice HiGHS found (still a feasible schedule, so still an upper bound)."""
    T = horizon.n_slots
    lat, eng, slot_of, flat = _table(horizon, columns)
    n = lat.size
    pick = sp.csr_matrix((np.ones(n), (slot_of, np.arange(n))), shape=(T, n))
    finite = np.isfinite(horizon.energy_budget_j)
    A = sp.vstack([pick, sp.csr_matrix(eng[:, finite].T / T)], format="csr")
    lo = np.concatenate([np.ones(T), np.full(int(finite.sum()), -np.inf)])
    hi = np.concatenate([np.ones(T), horizon.energy_budget_j[finite] * (1 + 1e-9)])
    res = milp(lat / T, constraints=LinearConstraint(A, lo, hi), integrality=np.ones(n),
               bounds=Bounds(0, 1), options={"time_limit": time_limit, "disp": False})
    if res.x is None:
        return None, None
    plans: list[CollaPipePlan] = [None] * T  # type: ignore[list-item]
    for j in np.flatnonzero(res.x > 0.5):
        plans[slot_of[j]] = flat[j]
    # re-evaluate: the schedule's own average latency, and its budgets
    figs = [horizon.at(t).evaluate(p) for t, p in enumerate(plans)]
    use = np.mean([e.energy_j for e in figs], axis=0)
    if np.any(use > horizon.energy_budget_j * (1 + 1e-6) + 1e-12):
        return None, None
    return float(np.mean([e.round_s for e in figs])), plans


def master_lp(horizon: CollaPipeHorizon, columns: list[dict[CollaPipePlan, tuple[float, np.ndarray]]],
              penalty: float) -> tuple[float, np.ndarray, np.ndarray]:
    """The restricted master LP of the module docstring: ``(value, mu, pi)``."""
    T, K = horizon.n_slots, horizon.slot.n_devices
    fin = np.isfinite(horizon.energy_budget_j)
    figs = [(t, lat, e) for t, cols in enumerate(columns) for lat, e in cols.values()]
    n, nf = len(figs), int(fin.sum())
    lat = np.array([f[1] for f in figs])
    eng = np.array([f[2] for f in figs]).reshape(n, K)[:, fin]
    slot_of = np.array([f[0] for f in figs])
    c = np.concatenate([lat / T, np.full(nf, penalty)])
    A_eq = sp.hstack([sp.csr_matrix((np.ones(n), (slot_of, np.arange(n))), shape=(T, n)),
                      sp.csr_matrix((T, nf))], format="csr")
    A_ub = sp.hstack([sp.csr_matrix(eng.T / T), -sp.identity(nf)], format="csr")
    res = linprog(c, A_ub=A_ub if nf else None, b_ub=horizon.energy_budget_j[fin] if nf else None, A_eq=A_eq,
                  b_eq=np.ones(T), bounds=(0, None), method="highs")
    if res.status != 0:
        raise SolverError(f"the offline master LP ended with status {res.status} ({res.message}); expected optimal")
    mu = np.zeros(K)
    if nf:
        mu[fin] = np.maximum(-res.ineqlin.marginals, 0.0)
    return float(res.fun), mu, np.asarray(res.eqlin.marginals)


def offline_bound(horizon: CollaPipeHorizon, *, iterations: int = 30,
                  extra: Iterable[list[CollaPipePlan]] = (), milp_time_limit: float = 30.0,
                  spread: tuple[float, ...] = (0.5, 0.8, 1.25, 2.0)) -> OfflineBound:
    """Lower and upper bounds on the offline optimum (module docstring).

    Parameters
    ----------
    horizon
        The slots and budgets.
    iterations
        Column-generation rounds at most (each prices every slot once).
    extra
        Further schedules (one plan per slot each, e.g. a controller's decisions) added as columns.
    milp_time_limit
        Seconds for the column MILP.
    spread
        Factors on the final duals at which every slot is priced once more for the MILP's columns.
    """
    T, K = horizon.n_slots, horizon.slot.n_devices
    budget = horizon.energy_budget_j
    fin = np.isfinite(budget)
    columns: list[dict[CollaPipePlan, tuple[float, np.ndarray]]] = [{} for _ in range(T)]

    def price(t: int, mu: np.ndarray) -> float:
        plan, _, _ = solve_slot(horizon.at(t, 1.0, mu))
        if plan is None:
            raise ProblemDataError(f"slot {t} of the horizon has no feasible plan; expected every slot to have one")
        if plan not in columns[t]:
            e = horizon.at(t).evaluate(plan)
            columns[t][plan] = (e.round_s, e.energy_j)
        lat, e = columns[t][plan]
        return lat + float(mu @ e)

    for sched in extra:
        for t, plan in enumerate(sched):
            e = horizon.at(t).evaluate(plan)
            columns[t][plan] = (e.round_s, e.energy_j)
    mu = np.zeros(K)
    best_lower, best_mu = -math.inf, mu
    for t in range(T):
        price(t, mu)
    worst = max(lat for cols in columns for lat, _ in cols.values())
    penalty = 1e4 * worst / max(float(budget[fin].min()) if fin.any() else 1.0, 1e-12)
    for _ in range(iterations):
        value, mu, _ = master_lp(horizon, columns, penalty)
        before = sum(map(len, columns))
        vals = np.array([price(t, mu) for t in range(T)])
        d = float(vals.mean() - mu[fin] @ budget[fin])
        if d > best_lower:
            best_lower, best_mu = d, mu.copy()
        if sum(map(len, columns)) == before or value - best_lower <= 1e-9 * abs(value):
            break  # no column prices out: the master's value is the best Lagrangian bound
    for f in spread:
        for t in range(T):
            price(t, best_mu * f)
    upper, plans = schedule_milp(horizon, [list(c) for c in columns], time_limit=milp_time_limit)
    return OfflineBound(best_lower, upper, plans, best_mu, sum(len(c) for c in columns))


__all__ = ["OfflineBound", "master_lp", "offline_bound", "schedule_milp"]
