r"""Lyapunov drift-plus-penalty control of long-term average constraints (any family).

A controller decides once per slot :math:`t` and incurs a penalty :math:`y_0(t)` (e.g. latency) and costs
:math:`y_n(t)`, :math:`n = 1..N` (e.g. each device's energy), with long-term budgets
:math:`\limsup_T \frac1T \sum_t \mathbb E\, y_n(t) \le \bar y_n`. Virtual queues
:math:`Q_n(t+1) = \max\{Q_n(t) + y_n(t) - \bar y_n, 0\}` turn the budgets into queue stability, and each slot
minimizes the drift-plus-penalty bound

.. math::

    V\, y_0(t) + \sum_n Q_n(t)\, y_n(t)

(Neely, *Stochastic Network Optimization with Application to Communication and Queueing Systems*, 2010).
With i.i.d. (or ergodic) slot states and an exact per-slot minimizer, the time-average penalty is within
:math:`O(1/V)` of the best achievable and the backlogs grow as :math:`O(V)`; since
:math:`\frac1T\sum_t y_n(t) \le \bar y_n + Q_n(T)/T`, a finite run exceeds a budget by at most its final backlog
over :math:`T` (reported as :attr:`LyapunovRun.excess`). To stay within the budgets over a finite run, the
queues can serve a tightened budget :math:`(1 - \epsilon)\bar y_n` (``tighten``): then the excess is at most
:math:`Q_n(T)/T - \epsilon \bar y_n`.

:func:`drift_plus_penalty` is the loop; the family supplies ``decide(state, V, Q) -> (decision, penalty,
costs)``, which must minimize the weighted sum above for the ``drift_plus_penalty`` guarantee (a baseline that
ignores ``Q`` runs through the same loop and gets the same bookkeeping).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar


@dataclass(frozen=True)
class LyapunovRun:
    """What a controlled run did, slot by slot.

    Attributes
    ----------
    decisions
        The decision of every slot.
    penalty
        :math:`y_0(t)`, shape ``(T,)``.
    costs
        :math:`y_n(t)`, shape ``(T, N)``.
    backlog
        :math:`Q_n(t)` at the start of each slot and after the last, shape ``(T+1, N)``.
    budgets
        :math:`\\bar y_n`.
    V
        The penalty weight.
    """

    decisions: list[Any]
    penalty: np.ndarray
    costs: np.ndarray
    backlog: np.ndarray
    budgets: np.ndarray
    V: float

    @property
    def average_penalty(self) -> float:
        return float(self.penalty.mean())

    @property
    def average_costs(self) -> np.ndarray:
        """Time-average cost per constraint."""
        return self.costs.mean(axis=0)

    @property
    def excess(self) -> np.ndarray:
        """Time-average cost minus budget (<= 0: within budget)."""
        return self.average_costs - self.budgets

    @property
    def average_backlog(self) -> np.ndarray:
        return self.backlog[1:].mean(axis=0)


def drift_plus_penalty(states: Iterable[Any], decide: Callable[[Any, float, np.ndarray], tuple[Any, float, Any]],
                       budgets: Any, V: float, *, tighten: float = 0.0, initial_backlog: Any = None) -> LyapunovRun:
    """Run the drift-plus-penalty loop over ``states`` (module docstring).

    Parameters
    ----------
    states
        One state per slot (channel gains, availability, ...), handed to ``decide``.
    decide
        ``decide(state, V, Q) -> (decision, penalty, costs)``, minimizing
        :math:`V\\,\\text{penalty} + Q \\cdot \\text{costs}` over the slot's decisions (costs of shape ``(N,)``).
    budgets
        :math:`\\bar y_n`, shape ``(N,)``.
    V
        Penalty weight, >= 0.
    tighten
        :math:`\\epsilon` in [0, 1): the queues serve :math:`(1-\\epsilon)` of each budget.
    initial_backlog
        :math:`Q(0)` (zeros by default).
    """
    b = as_array("budgets", budgets, shape=(None,), min_value=0, allow_inf=True)
    V = as_scalar("V", V, min_value=0)
    served = b * (1.0 - as_scalar("tighten", tighten, min_value=0, max_value=0.999))
    Q = np.zeros(b.size) if initial_backlog is None else as_array("initial_backlog", initial_backlog,
                                                                  shape=b.shape, min_value=0).copy()
    decisions, pen, costs, backlog = [], [], [], [Q.copy()]
    for state in states:
        d, y0, y = decide(state, V, Q.copy())
        y = np.asarray(y, dtype=float).reshape(b.shape)
        decisions.append(d)
        pen.append(float(y0))
        costs.append(y)
        Q = np.maximum(Q + y - served, 0.0)  # an infinite budget keeps its queue at 0
        backlog.append(Q.copy())
    return LyapunovRun(decisions, np.array(pen), np.array(costs).reshape(len(pen), b.size), np.array(backlog),
                       b, V)


__all__ = ["LyapunovRun", "drift_plus_penalty"]
