r"""Continuous bandwidth for fixed CollaPipe segments: the convex link problem, solved by bisection.

For fixed segments and micro-batch count, the slot's latency depends on the links only. With the bandwidth a
continuous share :math:`\beta_k \ge 0` of :math:`W` (instead of units) and every link at its highest allowed
power (a rate grows with power, so for latency alone the cap is optimal), link :math:`k` takes

.. math::

    x_k(\beta_k) = \frac{2 \cdot 8\, b\, h}{\beta_k \log_2(1 + a_k/\beta_k)},\qquad a_k = \frac{p_k g_k}{N_0},

convex and decreasing in :math:`\beta_k` (:math:`\beta\log(1 + a/\beta)` is the perspective of a concave
function). The iteration time to minimize is

.. math::

    \min_{\beta \ge 0,\ \sum_k \beta_k \le W}\ \sum_k x_k(\beta_k) + (M-1)\max\big(C, \max_k x_k(\beta_k)\big)
    + \text{const},

with :math:`C` the largest compute stage (and the edge stage and hop, when modelled). Write :math:`z` for the
bottleneck: for each :math:`z`, every link needs :math:`\beta_k \ge \beta_k(z)` (where :math:`x_k = z`), and the
rest of the band goes where it shortens :math:`\sum_k x_k` most, equalizing the slopes
:math:`-x_k'(\beta_k) = \lambda` (water-filling; bisection on the multiplier :math:`\lambda`). The minimum over
:math:`\beta` of a jointly convex function is convex in :math:`z`, so a golden-section search over :math:`z`
finds the optimum. This is the latency-only problem (energy weights zero): with energy weights, transmit energy
:math:`p\,8Bh/r` makes the objective nonconvex and the discrete solver (:mod:`.collapipe_exact`) is the tool.
Because units and power levels are a restriction of this problem, its value bounds the discrete optimum for the
same segments and :math:`M` from below (the price of discretization).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.partition.collapipe import CollaPipeSlot

_LN2 = math.log(2.0)
_ITERS = 60
_GRID = 64


@dataclass(frozen=True)
class ContinuousLinks:
    """The continuous link allocation for fixed segments (module docstring).

    Attributes
    ----------
    bandwidth_hz
        :math:`\\beta_k` per link.
    power_w
        The power per link (the highest allowed level).
    link_s
        :math:`x_k`, both directions per micro-batch.
    round_s
        The round latency :math:`\tau T^{\rm it} + T^{\rm up}` (the slot model's, with these links).
    """

    bandwidth_hz: np.ndarray
    power_w: np.ndarray
    link_s: np.ndarray
    round_s: float


def _x(beta: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        L = beta * np.log1p(a / beta)
        return np.where(beta > 0, c * _LN2 / L, np.inf)


def _slope(beta: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:math:`-x'(\\beta) > 0`, decreasing in :math:`\\beta`."""
    L = beta * np.log1p(a / beta)
    dL = np.log1p(a / beta) - a / (beta + a)
    return c * _LN2 * dL / (L * L)


def _invert(target: np.ndarray, f: object, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Elementwise, the :math:`\beta` in ``[lo, hi]`` (positive) where the decreasing ``f`` meets ``target``
    (bisection on a log scale; arrays broadcast)."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float))
    lo, hi = lo.copy(), hi.copy()
    for _ in range(_ITERS):
        mid = np.sqrt(lo * hi)
        above = f(mid) > target  # type: ignore[operator]
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return hi


def continuous_links(slot: CollaPipeSlot, segments: tuple[int, ...], micro_batches: int) -> ContinuousLinks | None:
    """The best continuous bandwidth (highest allowed power) for ``segments`` and ``micro_batches`` on ``slot``
    (latency only; ``None`` when a link has no allowed power level).

    Parameters
    ----------
    slot
        The slot (its energy weights must be zero).
    segments, micro_batches
        The fixed part of the plan.
    """
    if np.any(slot.energy_weights > 0):
        raise ProblemDataError("`energy_weights` are not all 0; the continuous link problem is latency-only "
                               "(expected a latency-only slot)")
    K, M = slot.n_devices, int(micro_batches)
    if M not in slot.micro_batches:
        raise ProblemDataError(f"`micro_batches` = {micro_batches!r}; expected one of {list(slot.micro_batches)}")
    seg = np.asarray(segments, dtype=int)
    if seg.shape != (K,) or np.any(seg < 1) or seg.sum() != slot.n_blocks:
        raise ProblemDataError(f"`segments` = {list(segments)!r}; expected {K} sizes >= 1 summing to "
                               f"{slot.n_blocks}")
    b = slot.batch_size / M
    starts = np.cumsum(seg) - seg
    comp = b * (1.0 + slot.backward_ratio) * np.add.reduceat(slot.block_flops, starts) / slot.device_flops
    e, y = slot.edge_stage_s(M)
    C = max(float(comp.max()), e, y)
    const = float(comp.sum()) + e + y
    ok = slot.link_power_ok()
    if K > 1 and not ok.any(axis=1).all():
        return None
    p = np.array([slot.power_levels_w[np.flatnonzero(row)[-1]] for row in ok]) if K > 1 else np.zeros(0)
    a = p * slot.gains / slot.noise_w_per_hz
    c = np.full(K - 1, 2.0 * 8.0 * b * slot.hidden_bytes)
    W = slot.bandwidth_hz
    tau, up = slot.local_iters, slot.upload_s

    def finish(beta: np.ndarray) -> ContinuousLinks:
        x = np.where(c > 0, _x(beta, a, c), 0.0)
        it = const + float(x.sum()) + (M - 1) * max(C, float(x.max(initial=0.0)))
        return ContinuousLinks(beta, p, x, it)

    if K == 1 or not np.any(c > 0):  # nothing crosses a link: any split of the band
        return finish(np.full(K - 1, W / max(K - 1, 1)))
    tiny = W * 1e-15

    def floor(z: float) -> np.ndarray:
        """Least bandwidth per link with x_k <= z."""
        return _invert(np.full(K - 1, z), lambda bb: _x(bb, a, c), np.full(K - 1, tiny), np.full(K - 1, W))

    def fill(z: float) -> np.ndarray | None:
        """Water-filling above the floors; None when the floors exceed W. The multiplier is bracketed on a
        log grid of :data:`_GRID` values at a time (every link's bandwidth for each, vectorized), four times."""
        lo = floor(z) if math.isfinite(z) else np.full(K - 1, tiny)
        if lo.sum() > W:
            return None
        lam_lo, lam_hi = float(_slope(np.full(K - 1, W), a, c).min()), float(_slope(lo, a, c).max())
        beta = lo
        for _ in range(4):
            lams = np.geomspace(lam_lo, lam_hi, _GRID)[:, None]
            betas = np.maximum(lo, _invert(lams, lambda bb: _slope(bb, a, c), lo, W))
            used = betas.sum(axis=1)  # decreasing in the multiplier
            j = int(np.searchsorted(-used, -W))  # first multiplier whose bandwidth fits W
            j = min(max(j, 1), _GRID - 1)
            lam_lo, lam_hi, beta = float(lams[j - 1, 0]), float(lams[j, 0]), betas[j]
        return beta * (W / beta.sum())  # all the band: x decreases in every share

    def value(z: float) -> float:
        beta = fill(z)
        return math.inf if beta is None else finish(beta).round_s

    free = fill(math.inf)
    hi = max(C, float(_x(free, a, c).max()))  # no bottleneck beyond the unconstrained allocation's
    lo = C
    if fill(lo) is None:  # the smallest z whose floors fit the band
        z_lo, z_hi = lo, hi
        for _ in range(_ITERS):
            mid = 0.5 * (z_lo + z_hi)
            z_lo, z_hi = (mid, z_hi) if fill(mid) is None else (z_lo, mid)
        lo = z_hi
    g = (math.sqrt(5.0) - 1.0) / 2.0
    u, v = hi - g * (hi - lo), lo + g * (hi - lo)
    fu, fv = value(u), value(v)
    for _ in range(_ITERS):
        if fu <= fv:
            hi, v, fv = v, u, fu
            u = hi - g * (hi - lo)
            fu = value(u)
        else:
            lo, u, fu = u, v, fv
            v = lo + g * (hi - lo)
            fv = value(v)
    best = min((lo, hi, u, v), key=value)
    out = finish(fill(best))  # type: ignore[arg-type]
    return ContinuousLinks(out.bandwidth_hz, out.power_w, out.link_s, tau * out.round_s + up)


__all__ = ["ContinuousLinks", "continuous_links"]
