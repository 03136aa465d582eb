"""Seeded tiny sync schedules with degenerate data, for the exact-versus-brute-force sweep.

FedAttn (``kv_sync``): 1-4 participants, 2-6 blocks; some seeds have zero tokens, zero K/V bytes, free
links, zero or 1e-9..1e3 block times and errors, and an error budget equal to a random plan's error (binding
exactly), zero, or none. CoCoDC (``fragments``): 1-3 fragments over 1-3 slots; some seeds have zero sizes,
zero values, values spanning 1e-9..1e3, capacities equal to a random subset's bytes (binding exactly) or 0,
and staleness limits that nothing meets.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeplan.formulations.sync import FragmentSync, KVSyncSchedule
from edgeplan.formulations.sync.instances import fragment_sync_instance, kv_sync_instance
from sync.brute import plans


def _spread(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    mode = rng.integers(4)
    if mode == 1:
        return a * 10 ** rng.uniform(-9, 3, size=a.shape) / max(float(a.max()), 1e-300)
    if mode == 2:
        return np.where(rng.random(a.shape) < 0.5, 0.0, a)
    return a


def kv_sync(seed: int) -> KVSyncSchedule:
    rng = np.random.default_rng(seed)
    p = kv_sync_instance(int(rng.integers(2, 7)), int(rng.integers(1, 5)), seed=int(rng.integers(1 << 30)),
                         min_tokens=int(rng.integers(0, 3)), max_tokens=int(rng.integers(3, 40)),
                         depth=float(rng.choice([-0.9, 0.0, 2.0, 10.0])))
    kw: dict = {"local_time_s": _spread(rng, p.local_time_s), "error": _spread(rng, p.error)}
    kw["global_time_s"] = kw["local_time_s"] + _spread(rng, p.global_time_s - p.local_time_s)
    if rng.random() < 0.3:
        kw["kv_bytes_per_token"] = np.zeros(p.n_blocks)
    if rng.random() < 0.2:
        kw["uplink_bps"] = np.full(p.n_participants, np.inf)
    if rng.random() < 0.3:
        kw["sync_latency_s"] = float(rng.choice([0.0, 1e-9, 1e3]))
    p = dataclasses.replace(p, **kw)
    mode = rng.integers(4)
    if mode == 0:
        everything = list(plans(p))
        budget = p.evaluate(everything[rng.integers(len(everything))]).error
    else:
        budget = (0.0, float("inf"), 0.3 * float(p.error.max()) * p.n_blocks)[mode - 1]
    return dataclasses.replace(p, error_budget=budget)


def fragments(seed: int) -> FragmentSync:
    rng = np.random.default_rng(seed)
    F, T = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    while F * T > 9:
        T -= 1
    p = fragment_sync_instance(F, T, seed=int(rng.integers(1 << 30)), fragment_params=int(rng.integers(1, 4)) << 18,
                               max_staleness=int(rng.integers(0, 4)), capacity_fraction=float(rng.uniform(0.2, 1.2)))
    kw: dict = {"value": _spread(rng, p.value)}
    if rng.random() < 0.3:
        kw["sizes_bytes"] = np.where(rng.random(F) < 0.5, 0.0, p.sizes_bytes)
    mode = rng.integers(4)
    if mode == 1:  # each slot's capacity is the bytes of a random subset: binds exactly
        pick = rng.random((T, F)) < 0.5
        kw["window_s"] = (pick @ kw.get("sizes_bytes", p.sizes_bytes)) / p.wan_bps
    elif mode == 2:
        kw["window_s"] = np.zeros(T)
    return dataclasses.replace(p, **kw)


#: The instance builders the nasty sweep runs (tests/contract/test_nasty.py), each on its own seeds.
INSTANCES = (kv_sync, fragments)
#: Exact methods whose failures on these instances are an ``error`` status (a solver gave up), never a plan.
MAY_FAIL: tuple[str, ...] = ()
