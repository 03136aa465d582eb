"""Seeded tiny cache problems with degenerate data, for the exact-versus-brute-force sweep.

From :func:`~edgeplan.formulations.cache.instances.random_cache_problem` with 1-2 clients, 2-3 layers and 2-3
classes, each seed applies some of: block times spanning 1e-9..1e3 s or zero, free lookups, and entry, memory,
accuracy and latency limits equal to a random plan's values (they bind exactly), or that nothing meets.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cache.brute import plans
from edgeplan.formulations.cache import CachePlacement
from edgeplan.formulations.cache.instances import random_cache_problem


def _limit(rng: np.random.Generator, used: np.ndarray, *, floor: bool = False) -> np.ndarray | None:
    """None (keep), a plan's own values (binding exactly), or a limit nothing meets."""
    mode = rng.integers(4)
    if mode == 1:
        return used.astype(float).copy()
    if mode == 2:
        return np.full(used.size, 1.0 if floor else 0.0)
    return None


def cache(seed: int) -> CachePlacement:
    rng = np.random.default_rng(seed)
    n, L, C = int(rng.integers(1, 3)), int(rng.integers(2, 4)), int(rng.integers(2, 4))
    p = random_cache_problem(n, L, C, seed=int(rng.integers(1 << 30)), goal=str(rng.choice(["latency", "accuracy"])),
                             max_layers=int(rng.integers(1, L + 1)) if rng.random() < 0.3 else None)
    kw: dict = {}
    mode = rng.integers(3)
    if mode == 1:
        kw["block_time_s"] = p.block_time_s * 10 ** rng.uniform(-6, 6, size=p.block_time_s.shape)
    elif mode == 2:
        kw["block_time_s"] = np.where(rng.random(p.block_time_s.shape) < 0.5, 0.0, p.block_time_s)
    if rng.random() < 0.3:
        kw["lookup_fixed_s"] = np.zeros_like(p.lookup_fixed_s)
        kw["lookup_entry_s"] = np.zeros_like(p.lookup_entry_s)
    p = dataclasses.replace(p, **kw)
    everything = list(plans(p))
    m = p.evaluate(everything[rng.integers(len(everything))])
    for field, used, floor in (("max_entries", m.entries, False), ("max_memory_bytes", m.memory_bytes, False),
                               ("accuracy_floor", m.accuracy, True), ("latency_slo_s", m.latency_s, False)):
        value = _limit(rng, np.asarray(used, dtype=float), floor=floor)
        if value is not None:
            kw[field] = value
    return dataclasses.replace(p, **kw)


#: The instance builders the nasty sweep runs (tests/contract/test_nasty.py), each on its own seeds.
INSTANCES = (cache,)
#: Exact methods whose failures on these instances are an ``error`` status (a solver gave up), never a plan.
MAY_FAIL: tuple[str, ...] = ()
