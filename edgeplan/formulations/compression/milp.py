r"""The MILP of a Caesar round (:class:`~edgeplan.formulations.compression.round.CompressionRound`).

Binary :math:`y_{i\ell}` (download level), :math:`x_{i\ell}` (upload level), integer :math:`b_i`, continuous
:math:`T`:

.. math::

    \min \sum_{i\ell} (D_\ell y_{i\ell} + U_\ell x_{i\ell}) \ \text{ or } \ T \quad \text{s.t.} \quad
    \sum_\ell y_{i\ell} = \sum_\ell x_{i\ell} = 1, \quad
    \sum_\ell \frac{D_\ell}{r^d_i} y_{i\ell} + a_i b_i + \sum_\ell \frac{U_\ell}{r^u_i} x_{i\ell} \le T,

:math:`\sum_{i\ell} C_i \epsilon^u_{i\ell} x_{i\ell} \le \Delta_u`, :math:`\sum_i b_i \ge S`,
:math:`b_{min} \le b_i \le b_{max}`, :math:`T \le L`, and :math:`y_{i\ell} = 0` where
:math:`\epsilon^d_{i\ell} > \epsilon_d`. Times are in units of the round bound (or of the slowest possible
round), the budget row in units of the budget, so that a solver's absolute tolerances stay within ``check``'s
relative slack.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgeplan.formulations.base import within
from edgeplan.formulations.compression.round import CompressionChoice, CompressionRound
from edgeplan.formulations.milp import MILP, SparseRows
from edgeplan.registry import reduction


@reduction(CompressionRound)
def compression_milp(problem: CompressionRound) -> tuple[MILP, Callable[[np.ndarray], CompressionChoice]]:
    """The MILP of the module docstring and its decoder."""
    n, L = problem.n_devices, problem.levels.size
    D, U = problem.level_bytes
    down_s = D[None, :] / problem.download_bps[:, None]  # (n, L)
    up_s = U[None, :] / problem.upload_bps[:, None]
    slowest = float((down_s.max(axis=1) + problem.per_sample_s * problem.max_batch + up_s.max(axis=1)).max())
    tscale = problem.round_bound_s if np.isfinite(problem.round_bound_s) and problem.round_bound_s > 0 else slowest
    tscale = tscale if tscale > 0 else 1.0
    y0, x0, b0, T = 0, n * L, 2 * n * L, 2 * n * L + n  # column offsets; T is the last column
    nv = T + 1
    yi = y0 + np.arange(n * L).reshape(n, L)
    xi = x0 + np.arange(n * L).reshape(n, L)
    bi = b0 + np.arange(n)
    rows = SparseRows()

    one = np.repeat(np.arange(n)[:, None], L, 1)
    rows.add(one, yi, 1.0, 1.0, 1.0, n)
    rows.add(one, xi, 1.0, 1.0, 1.0, n)
    # time: (sum y down_s + a b + sum x up_s) / tscale - T' <= 0
    r = np.repeat(np.arange(n)[:, None], 2 * L + 2, 1)
    rows.add(r, np.hstack([yi, xi, bi[:, None], np.full((n, 1), T)]),
             np.hstack([down_s / tscale, up_s / tscale, problem.per_sample_s[:, None] / tscale, -np.ones((n, 1))]),
             -np.inf, 0.0, n)
    if np.isfinite(problem.upload_budget):
        w = problem.importance[:, None] * problem.upload_error
        scale = problem.upload_budget if problem.upload_budget > 0 else max(float(w.max(initial=0.0)), 1.0)
        rows.add(np.zeros((n, L), dtype=np.int64), xi, w / scale, -np.inf, problem.upload_budget / scale, 1)
    if problem.min_samples > 0:
        rows.add(np.zeros(n, dtype=np.int64), bi, 1.0, problem.min_samples, np.inf, 1)
    A, row_lo, row_hi = rows.assemble(nv)
    upper = np.ones(nv)
    banned = ~within(problem.download_error, problem.download_cap)
    upper[yi[banned]] = 0.0
    lower = np.zeros(nv)
    lower[bi], upper[bi] = problem.min_batch, problem.max_batch
    upper[T] = problem.round_bound_s / tscale if np.isfinite(problem.round_bound_s) else np.inf
    integrality = np.ones(nv)
    integrality[T] = 0.0
    c = np.zeros(nv)
    if problem.goal == "traffic":
        c[yi] = D[None, :]
        c[xi] = U[None, :]
    else:
        c[T] = tscale
    milp = MILP(c=c, A=A, row_lower=row_lo, row_upper=row_hi, col_lower=lower,
                col_upper=upper, integrality=integrality, sense="min", name=f"{problem.name}-milp")

    def decode(x: np.ndarray) -> CompressionChoice:
        x = np.asarray(x)
        return CompressionChoice(np.argmax(x[yi], axis=1), np.argmax(x[xi], axis=1), np.round(x[bi]).astype(np.int64))

    return milp, decode


def compression_start(problem: CompressionRound, plan: CompressionChoice) -> np.ndarray:
    """The integer column values of :func:`compression_milp` for ``plan`` (a warm start; the solver completes
    :math:`T`)."""
    n, L = problem.n_devices, problem.levels.size
    x = np.zeros(2 * n * L + n + 1)
    x[np.arange(n) * L + plan.down] = 1.0
    x[n * L + np.arange(n) * L + plan.up] = 1.0
    x[2 * n * L: 2 * n * L + n] = plan.batch
    x[-1] = np.nan
    return x


__all__ = ["compression_milp", "compression_start"]
