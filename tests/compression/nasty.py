"""Seeded tiny compression problems with degenerate data, for the exact-versus-brute-force sweep.

``round``: 1-3 devices, 1-3 levels (sometimes 0), tensors of 1-40 entries (ratios that compress nothing), compute
spanning 1e-9..1e3 s or zero, zero errors; the upload budget, download cap, samples floor and round bound each
left free, set to a random plan's value (binding exactly) or beyond every plan. ``ratios``: 1-3 devices, convex
profiles with zero rows and zero importances, a budget at a grid plan's deviation, 0, or below the uncompressed
deviation. ``batch``: 1-3 devices, compute spanning 1e-9..1e3 s or zero, free communication, a round bound at a
random plan's round or below every plan's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeplan.formulations.compression import (
    BatchPlan,
    BatchSizing,
    CompressionChoice,
    CompressionRound,
    RatioPlan,
    UploadRatios,
)


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    mode = rng.integers(3)
    if mode == 1:
        return 10.0 ** rng.uniform(-9, 3, n)
    if mode == 2:
        return np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0.01, 1.0, n))
    return rng.uniform(0.01, 1.0, n)


def _profile(rng: np.random.Generator, n: int, grid: np.ndarray) -> np.ndarray:
    slopes = np.sort(rng.uniform(0, 0.6, (n, grid.size - 1)), axis=1)  # nondecreasing slopes: convex
    prof = np.concatenate([np.zeros((n, 1)), np.cumsum(slopes * np.diff(grid)[None, :], axis=1)], axis=1)
    if rng.random() < 0.3:
        prof[rng.integers(n)] = 0.0
    return prof


def round_(seed: int) -> CompressionRound:
    rng = np.random.default_rng(seed)
    n, L = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    hi = int(rng.integers(1, 4 if n < 3 else 3))
    lo = int(rng.integers(1, hi + 1))
    levels = np.sort(rng.choice([0.0, 0.1, 0.3, 0.5, 0.7, 0.9], L, replace=False))
    err = _profile(rng, n, levels) if L > 1 else np.zeros((n, 1))
    p = CompressionRound(sizes=rng.integers(1, 41, int(rng.integers(1, 4))), levels=levels,
                         download_bps=rng.uniform(1, 100, n), upload_bps=rng.uniform(1, 100, n),
                         per_sample_s=_times(rng, n), importance=rng.uniform(0, 1, n) * (rng.random(n) < 0.8),
                         upload_error=err, download_error=err * rng.uniform(0, 1, (n, 1)), min_batch=lo,
                         max_batch=hi, goal=str(rng.choice(["traffic", "round_time"])))
    plan = CompressionChoice(rng.integers(0, L, n), rng.integers(0, L, n), rng.integers(lo, hi + 1, n))
    m = p.evaluate(plan)
    kw: dict = {}
    for field, used, beyond in (("upload_budget", m.upload_deviation, -1.0),
                                ("download_cap", float(m.download_error.max()), -1.0),
                                ("min_samples", m.samples, n * hi + 1.0), ("round_bound_s", m.round_s, -1.0)):
        mode = rng.integers(4)
        if mode == 1:
            kw[field] = used
        elif mode == 2 and beyond >= 0:
            kw[field] = beyond
        elif mode == 2:
            kw[field] = 0.0
    return dataclasses.replace(p, **kw)


def ratios(seed: int) -> UploadRatios:
    rng = np.random.default_rng(seed)
    n, G = int(rng.integers(1, 4)), int(rng.integers(2, 4))
    grid = np.sort(rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], G - 1, replace=False))
    grid = np.concatenate([[0.0], grid])
    err = _profile(rng, n, grid)
    if rng.random() < 0.2:
        err = err + rng.uniform(0, 0.05, (n, 1))  # a deviation even uncompressed
    imp = rng.uniform(0, 1, n) * (rng.random(n) < 0.8)
    p = UploadRatios(value_bytes=rng.uniform(0, 100, n) * (rng.random(n) < 0.9), importance=imp, grid=grid,
                     error=err, budget=1.0)
    mode = rng.integers(3)
    if mode == 0:
        budget = p.evaluate(RatioPlan(grid[rng.integers(0, G, n)])).deviation
    elif mode == 1:
        budget = 0.0
    else:
        budget = float(rng.uniform(0, 0.5))
    return dataclasses.replace(p, budget=budget)


def batch(seed: int) -> BatchSizing:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4))
    hi = int(rng.integers(1, 5))
    lo = int(rng.integers(1, hi + 1))
    comm = np.zeros(n) if rng.random() < 0.3 else _times(rng, n)
    a = _times(rng, n)
    if not (a.any() or comm.any()):
        a[0] = 1.0
    p = BatchSizing(per_sample_s=a, comm_s=comm, min_batch=lo, max_batch=hi)
    mode = rng.integers(3)
    if mode == 1:
        return dataclasses.replace(p, round_bound_s=p.evaluate(BatchPlan(rng.integers(lo, hi + 1, n))).round_s)
    if mode == 2:
        return dataclasses.replace(p, round_bound_s=float((a * lo + comm).max()) * 0.5)
    return p


#: The instance builders the nasty sweep runs (tests/contract/test_nasty.py), each on its own seeds.
INSTANCES = (round_, ratios, batch)
#: Exact methods whose failures on these instances are an ``error`` status (a solver gave up), never a plan.
MAY_FAIL: tuple[str, ...] = ()
