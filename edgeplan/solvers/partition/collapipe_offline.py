r"""The best CollaPipe schedule in hindsight: a Lagrangian lower bound and a column MILP upper bound.

Offline, all :math:`T` slots' gains are known and the budgets are hard:

.. math::

    \text{OPT} = \min_{\pi_1..\pi_T}\ \frac1T\sum_t T_t(\pi_t)\quad\text{s.t.}\quad
    \frac1T\sum_t E_{k,t}(\pi_t) \le \bar E_k\ \ \forall k.

**Lower bound.** For any :math:`\mu \ge 0`, weak duality gives
:math:`d(\mu) = \frac1T\sum_t \min_\pi [T_t(\pi) + \mu\cdot E_t(\pi)] - \mu\cdot\bar E \le \text{OPT}`; each inner
minimum is the exact slot solver (latency weight 1, energy weights :math:`\mu`). :math:`\mu` follows projected
subgradient steps (Polyak's step towards the best upper bound); the best :math:`d(\mu)` is reported.

**Upper bound.** Every slot plan met on the way (and any given, e.g. a controller's) is a column; a MILP
(HiGHS through ``scipy.optimize.milp``, one binary per slot and column, built as one sparse matrix) picks one
column per slot with the budgets hard. Its value is a feasible schedule's, so
:math:`d(\mu) \le \text{OPT} \le \text{MILP}`; when the columns hold every plan of every slot (tiny slots), the
MILP is the offline optimum itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from edgeplan.errors import ProblemDataError
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


def schedule_milp(horizon: CollaPipeHorizon, columns: list[list[CollaPipePlan]], *, time_limit: float = 30.0
                  ) -> tuple[float | None, list[CollaPipePlan] | None]:
    """The best choice of one column per slot with the budgets hard (time-average latency, schedule); at the
    time limit, the best choice HiGHS found (still a feasible schedule, so still an upper bound)."""
    T = horizon.n_slots
    lat, eng, slot_of = [], [], []
    for t, cols in enumerate(columns):
        s = horizon.at(t)
        for plan in cols:
            e = s.evaluate(plan)
            lat.append(e.round_s / T)
            eng.append(e.energy_j / T)
            slot_of.append(t)
    n = len(lat)
    rows = np.asarray(slot_of)
    pick = sp.csr_matrix((np.ones(n), (rows, np.arange(n))), shape=(T, n))
    budget = sp.csr_matrix(np.array(eng).T)
    finite = np.isfinite(horizon.energy_budget_j)
    A = sp.vstack([pick, budget[finite]], format="csr")
    lo = np.concatenate([np.ones(T), np.full(int(finite.sum()), -np.inf)])
    hi = np.concatenate([np.ones(T), horizon.energy_budget_j[finite] * (1 + 1e-9)])
    res = milp(np.array(lat), constraints=LinearConstraint(A, lo, hi), integrality=np.ones(n),
               bounds=Bounds(0, 1), options={"time_limit": time_limit, "disp": False})
    if res.x is None:
        return None, None
    chosen = np.flatnonzero(res.x > 0.5)
    plans: list[CollaPipePlan] = [None] * T  # type: ignore[list-item]
    flat = [p for cols in columns for p in cols]
    for j in chosen:
        plans[slot_of[j]] = flat[j]
    # re-evaluate: the schedule's own average latency, and its budgets
    avg = float(np.mean([horizon.at(t).evaluate(p).round_s for t, p in enumerate(plans)]))
    use = np.mean([horizon.at(t).evaluate(p).energy_j for t, p in enumerate(plans)], axis=0)
    if np.any(use > horizon.energy_budget_j * (1 + 1e-6) + 1e-12):
        return None, None
    return avg, plans


def offline_bound(horizon: CollaPipeHorizon, *, iterations: int = 30,
                  extra: Iterable[list[CollaPipePlan]] = (), milp_time_limit: float = 30.0) -> OfflineBound:
    """Lower and upper bounds on the offline optimum (module docstring).

    Parameters
    ----------
    horizon
        The slots and budgets.
    iterations
        Subgradient steps on :math:`\\mu`.
    extra
        Further schedules (one plan per slot each, e.g. a controller's decisions) added as columns.
    milp_time_limit
        Seconds per column MILP.
    """
    T, K = horizon.n_slots, horizon.slot.n_devices
    budget = horizon.energy_budget_j
    fin = np.isfinite(budget)
    columns: list[dict[CollaPipePlan, None]] = [{} for _ in range(T)]
    for sched in extra:
        for t, plan in enumerate(sched):
            columns[t][plan] = None
    mu = np.zeros(K)
    best_lower, best_mu = -math.inf, mu.copy()
    upper, plans = schedule_milp(horizon, [list(c) for c in columns], time_limit=milp_time_limit) \
        if any(columns) else (None, None)
    for it in range(iterations):
        lat = np.zeros(T)
        use = np.zeros((T, K))
        for t in range(T):
            s = horizon.at(t, 1.0, mu)
            plan, _, _ = solve_slot(s)
            if plan is None:
                raise ProblemDataError(f"slot {t} of the horizon has no feasible plan; expected every slot to have one")
            e = s.evaluate(plan)
            lat[t], use[t] = e.round_s, e.energy_j
            columns[t][plan] = None
        g = np.where(fin, use.mean(axis=0) - np.where(fin, budget, 0.0), 0.0)
        d = float(lat.mean() + mu @ g)
        if d > best_lower:
            best_lower, best_mu = d, mu.copy()
        if it % 5 == 4 or it == iterations - 1:
            u, p = schedule_milp(horizon, [list(c) for c in columns], time_limit=milp_time_limit)
            if u is not None and (upper is None or u < upper):
                upper, plans = u, p
        if not np.any(g > 0) and np.all(mu[g < 0] == 0):
            break  # mu = 0 plans meet the budgets, or complementary slackness holds: d(mu) is OPT
        target = upper if upper is not None else d * 1.5
        step = max(target - d, 1e-3 * abs(d)) / max(float(g @ g), 1e-300)
        mu = np.maximum(mu + step * g, 0.0)
    return OfflineBound(best_lower, upper, plans, best_mu, sum(len(c) for c in columns))


__all__ = ["OfflineBound", "offline_bound", "schedule_milp"]
