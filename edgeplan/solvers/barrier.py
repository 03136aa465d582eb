r"""The barrier sweep, shared by every family whose devices run to a common barrier.

Devices :math:`i` choose a whole number :math:`x_i \in [l_i, h_i]` of units (local iterations, samples of a
batch) of :math:`a_i` seconds each after :math:`c_i` fixed seconds, and the round ends at the barrier
:math:`T = \max_i (a_i x_i + c_i)`. Maximise the weighted units per second

.. math::

    \max_x \frac{\sum_i w_i x_i}{\max_i (a_i x_i + c_i)} \quad \text{s.t. } \max_i (a_i x_i + c_i) \le L .

For a barrier :math:`T \ge T_0 = \max_i (a_i l_i + c_i)` the best choice is
:math:`x_i(T) = \min(h_i, \lfloor (T - c_i) / a_i \rfloor)`, and the numerator is a step function of :math:`T` that
rises by :math:`w_i` at each breakpoint :math:`a_i x + c_i`, :math:`x = l_i + 1 .. h_i`. The ratio falls between
breakpoints, so the optimum is at :math:`T_0` or a breakpoint: sort the :math:`\sum_i (h_i - l_i)` breakpoints,
accumulate their weights, and take the best ratio. An optimal plan's own barrier :math:`T^*` is a candidate, and
:math:`x(T^*) \ge x^*` with a barrier no later than :math:`T^*`, so the result is optimal.
"""

from __future__ import annotations

import numpy as np

from edgeplan.formulations.base import within

#: Relative slack of the floor: a barrier computed as ``a * x + c`` gives back ``x``.
FLOOR_SLACK = 1e-9


def fitted_units(per_unit: np.ndarray, fixed: np.ndarray, low: np.ndarray, high: np.ndarray,
                 barrier: float) -> np.ndarray:
    """:math:`\\min(h_i, \\max(l_i, \\lfloor (T - c_i) / a_i \\rfloor))` (``h_i`` where :math:`a_i = 0`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.floor((barrier - fixed) / per_unit * (1.0 + FLOOR_SLACK) + FLOOR_SLACK)
    room = np.where(per_unit > 0, room, high)
    return np.clip(room, low, high)


def barrier_sweep(per_unit: np.ndarray, fixed: np.ndarray, weight: np.ndarray, low: np.ndarray,
                  high: np.ndarray, bound: float = float("inf")) -> np.ndarray | None:
    """The optimal :math:`x` of the module docstring (``None``: even :math:`x = l` passes the bound ``L``).

    Parameters
    ----------
    per_unit, fixed, weight
        ``(n,)`` :math:`a_i \\ge 0`, :math:`c_i \\ge 0`, :math:`w_i \\ge 0`.
    low, high
        ``(n,)`` whole numbers :math:`l_i \\le h_i`.
    bound
        :math:`L`.
    """
    a, c, w = (np.asarray(v, dtype=float) for v in (per_unit, fixed, weight))
    lo, hi = np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64)
    t0 = float((a * lo + c).max())
    if not within(t0, bound):
        return None
    count = hi - lo
    dev = np.repeat(np.arange(a.size), count)
    start = np.cumsum(count) - count
    units = lo[dev] + 1 + (np.arange(dev.size) - start[dev])
    points = a[dev] * units + c[dev]
    order = np.argsort(points, kind="stable")
    points, gain = points[order], w[dev][order]
    base = float(w @ lo)
    cum = base + np.cumsum(gain)
    keep = (points >= t0) & within(points, bound)
    before = np.searchsorted(points, t0, side="right")  # breakpoints at or below T0 are reached at T0
    cand_t = np.concatenate([[t0], points[keep]])
    cand_n = np.concatenate([[base + gain[:before].sum()], cum[keep]])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(cand_t > 0, cand_n / cand_t, np.where(cand_n > 0, np.inf, 0.0))
    best = float(cand_t[int(np.argmax(ratio))])
    return fitted_units(a, c, lo, hi, best).astype(np.int64)


__all__ = ["FLOOR_SLACK", "barrier_sweep", "fitted_units"]
