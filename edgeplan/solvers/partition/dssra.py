r"""DSSRA: CollaPipe's online control of segments, micro-batches, bandwidth and power under energy budgets.

Per slot :math:`t` the controller solves the slot problem exactly (``collapipe-exact``) with the
drift-plus-penalty weights of :mod:`edgeplan.solvers.lyapunov`: latency weight :math:`V` and energy weights
:math:`Q_k(t)`, the virtual queues of the per-device budgets :math:`\bar E_k`,

.. math::

    \min\; V\, T(t) + \sum_k Q_k(t)\, E_k(t),\qquad Q_k(t+1) = \max\{Q_k(t) + E_k(t) - \bar E_k, 0\}.

Baselines run through the same loop (so their budget excess is reported the same way):

* ``myopic``: the exact latency-optimal plan of each slot (the budgets ignored);
* ``static``: one latency-optimal plan for the time-average gains, kept every slot;
* ``equal-pipeline``: equal segments and bandwidth at the highest allowed power each slot
  (:mod:`.equal_pipeline`).

:func:`offline_bound` measures how far a run is from the best schedule in hindsight (:mod:`.collapipe_offline`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.partition.collapipe import CollaPipeHorizon, CollaPipePlan, CollaPipeSlot
from edgeplan.solvers.lyapunov import LyapunovRun, drift_plus_penalty
from edgeplan.solvers.partition.collapipe_exact import solve_slot
from edgeplan.solvers.partition.equal_pipeline import best_equal_plan

POLICIES = ("dssra", "myopic", "static", "equal-pipeline")


def _exact(slot: CollaPipeSlot) -> CollaPipePlan:
    plan, _, _ = solve_slot(slot)
    if plan is None:
        raise ProblemDataError(f"slot {slot.name}: no plan fits the memory caps or no link can send")
    return plan


def _equal(slot: CollaPipeSlot) -> CollaPipePlan:
    plan = best_equal_plan(slot)
    if plan is None:
        raise ProblemDataError(f"slot {slot.name}: the equal split does not fit the memory caps")
    return plan


def run_policy(horizon: CollaPipeHorizon, policy: str = "dssra", V: float = 100.0, *,
               tighten: float = 0.05) -> LyapunovRun:
    """Run ``policy`` (one of :data:`POLICIES`) over the horizon; penalty = round latency (s), costs = each
    device's energy per round (J).

    Parameters
    ----------
    horizon
        The slots and budgets.
    policy
        ``"dssra"`` (drift-plus-penalty with the exact slot solver), ``"myopic"``, ``"static"`` or
        ``"equal-pipeline"`` (module docstring).
    V
        The latency weight of ``dssra`` (s of latency against J of queue-weighted energy).
    tighten
        The queues serve :math:`(1 - \\epsilon)` of each budget
        (:func:`~edgeplan.solvers.lyapunov.drift_plus_penalty`), so that a finite run ends within the budgets.
    """
    if policy not in POLICIES:
        raise ProblemDataError(f"`policy` = {policy!r}; expected one of {', '.join(POLICIES)}")
    static = _exact(horizon.mean_slot()) if policy == "static" else None
    pick: dict[str, Callable[[CollaPipeSlot], CollaPipePlan]] = {
        "dssra": _exact, "myopic": _exact, "static": lambda s: static, "equal-pipeline": _equal}

    def decide(t: int, v: float, Q: np.ndarray) -> tuple[CollaPipePlan, float, np.ndarray]:
        slot = horizon.at(t, v, Q) if policy == "dssra" else horizon.at(t)
        plan = pick[policy](slot)
        e = slot.evaluate(plan)
        return plan, e.round_s, e.energy_j

    return drift_plus_penalty(range(horizon.n_slots), decide, horizon.energy_budget_j, V, tighten=tighten)


def plans_to_json(horizon: CollaPipeHorizon, run: LyapunovRun) -> dict[str, Any]:
    """Per-slot plans as plain data: per-device segment ranges, micro-batches, bandwidth (Hz) and power (W).

    Parameters
    ----------
    horizon
        The horizon the run controlled.
    run
        :func:`run_policy`'s result.
    """
    s = horizon.slot
    out = []
    for t, plan in enumerate(run.decisions):
        ends = np.cumsum(plan.segments)
        out.append({"slot": t, "segments": [[int(e - n), int(e)] for n, e in zip(plan.segments, ends, strict=True)],
                    "micro_batches": plan.micro_batches,
                    "bandwidth_hz": [u * s.bandwidth_hz / s.n_units for u in plan.units],
                    "power_w": [float(s.power_levels_w[i]) for i in plan.power],
                    "round_s": float(run.penalty[t]), "energy_j": run.costs[t].tolist()})
    return {"format": "edgeplan-collapipe-schedule", "version": 1, "V": run.V,
            "energy_budget_j": horizon.energy_budget_j.tolist(), "slots": out}


__all__ = ["POLICIES", "plans_to_json", "run_policy"]
