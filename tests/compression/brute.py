"""Every plan of a small compression problem: levels and batches per device; the LP vertices of upload ratios."""

from __future__ import annotations

import itertools

import numpy as np

from edgeplan.formulations.compression import (
    BatchPlan,
    BatchSizing,
    CompressionChoice,
    CompressionRound,
    RatioPlan,
    UploadRatios,
)

TYPES = (CompressionRound, UploadRatios, BatchSizing)


def _ratio_vertices(p: UploadRatios):
    """Every plan with all devices on grid points, and with all but one on grid points and that one where the
    budget binds (an optimum of the linear program is among them)."""
    g, n = p.grid, p.n_devices
    for point in itertools.product(range(g.size), repeat=n):
        theta = g[list(point)]
        yield RatioPlan(theta)
        base = p.importance @ p.profile(theta)
        for f in range(n):
            others = base - p.importance[f] * p.error[f, point[f]]
            for k in range(g.size - 1):
                lo_e, hi_e = p.error[f, k], p.error[f, k + 1]
                if p.importance[f] <= 0 or hi_e <= lo_e:
                    continue
                e = (p.budget - others) / p.importance[f]
                if lo_e < e < hi_e:
                    t = theta.copy()
                    t[f] = g[k] + (e - lo_e) / (hi_e - lo_e) * (g[k + 1] - g[k])
                    yield RatioPlan(t)


def plans(p):
    if isinstance(p, UploadRatios):
        yield from _ratio_vertices(p)
        return
    batches = range(p.min_batch, p.max_batch + 1)
    if isinstance(p, BatchSizing):
        for b in itertools.product(batches, repeat=p.n_devices):
            yield BatchPlan(list(b))
        return
    L = p.levels.size
    per = list(itertools.product(range(L), range(L), batches))
    for choice in itertools.product(per, repeat=p.n_devices):
        arr = np.array(choice)
        yield CompressionChoice(arr[:, 0], arr[:, 1], arr[:, 2])
