"""Seeded tiny fine-tuning rounds and expert selections with degenerate data, for the exact-versus-brute-force sweep.

``round_table``: 1-3 devices, 1-4 candidates with missing ones (NaN step times); each seed applies some of:
step times spanning 1e-9..1e3 s or zero, zero uploads and utilities, memory caps equal to a candidate's memory
(binding exactly) or below everything, a utility floor equal to a random plan's utility or above every plan's,
a shared server bandwidth from loose to binding, coverage rows with floors from 0 to more than the devices, and
both goals. ``fedquad_tiny`` and ``fedbe_tiny`` perturb the generators' instances the same way.
``expert_table``: 1-6 experts with negative, zero and tiny importances, zero costs, budgets equal to a subset's
cost or 0, a count cap, and routed sets from none to all.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeplan.formulations.finetune import ExpertSelection, FineTunePlan, FineTuneRound
from edgeplan.formulations.finetune.instances import experts_instance, fedbe_instance, finetune_instance


def _degenerate(rng: np.random.Generator, p: FineTuneRound) -> FineTuneRound:
    n, k = p.n_devices, p.n_candidates
    kw: dict = {}
    t = np.where(p.available, p.step_time_s, np.nan)
    mode = rng.integers(3)
    if mode == 1:
        t = t * 10 ** rng.uniform(-9, 3, size=(n, 1))
    elif mode == 2:
        t = np.where(rng.random((n, k)) < 0.4, 0.0, t)
    kw["step_time_s"] = t
    if rng.random() < 0.3:
        kw["upload_bytes"] = np.zeros((n, k))
    if rng.random() < 0.3:
        kw["utility"] = np.where(rng.random((n, k)) < 0.5, 0.0, p.utility)
    if rng.random() < 0.3:
        kw["uplink_bps"] = 10 ** rng.uniform(-2, 6, size=n)
    p = dataclasses.replace(p, **kw)
    avail = [np.flatnonzero(p.available[i]) for i in range(n)]
    plan = FineTunePlan(np.array([rng.choice(a) for a in avail]))
    m = p.evaluate(plan)
    mode = rng.integers(4)
    if mode == 1:
        kw["memory_cap_bytes"] = m.memory_bytes.copy()
    elif mode == 2:
        cap = np.full(n, np.inf)
        cap[rng.integers(n)] = 0.0 if p.memory_bytes.min() > 0 else -1.0
        kw["memory_cap_bytes"] = np.maximum(cap, 0.0) if cap.min() >= 0 else None
        if kw["memory_cap_bytes"] is None:
            del kw["memory_cap_bytes"]
    mode = rng.integers(4)
    if mode == 1:
        kw["utility_floor"] = m.utility
    elif mode == 2:
        kw["utility_floor"] = float(p.weighted_utility().max(axis=1).sum()) * 1.01 + 1e-6
    if rng.random() < 0.3:
        kw["server_bandwidth_bps"] = float(max(m.upload_bytes.sum(), 1.0) / 10 ** rng.uniform(-3, 3))
    if rng.random() < 0.3:
        kw["goal"] = "time" if p.goal == "rate" else "rate"
    return dataclasses.replace(p, **kw)


def round_table(seed: int) -> FineTuneRound:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    t = rng.uniform(0.01, 1.0, size=(n, k))
    t[rng.random((n, k)) < 0.25] = np.nan
    t[np.arange(n), rng.integers(k, size=n)] = rng.uniform(0.01, 1.0, size=n)  # one candidate at least
    cov = None
    if rng.random() < 0.5:
        J = int(rng.integers(1, 3))
        cov = rng.random((n, k, J)) < 0.5
    p = FineTuneRound(step_time_s=t, memory_bytes=rng.uniform(0, 1e9, size=(n, k)),
                      upload_bytes=rng.uniform(0, 1e6, size=(n, k)), utility=rng.uniform(0, 1, size=(n, k)),
                      uplink_bps=rng.uniform(1e5, 1e7, size=n), local_steps=rng.integers(0, 5, size=n),
                      weights=rng.uniform(0, 2, size=n), server_time_s=10 ** rng.uniform(-6, 0),
                      coverage=cov, min_coverage=int(rng.integers(0, n + 2)) if cov is not None else 1,
                      goal=str(rng.choice(["rate", "time"])))
    return _degenerate(rng, p)


def fedquad_tiny(seed: int) -> FineTuneRound:
    rng = np.random.default_rng(seed)
    p = finetune_instance(int(rng.integers(1, 3)), int(rng.integers(1, 3)), seed=int(rng.integers(1 << 30)),
                          bits=str(rng.choice(["8", "4", "8,4"])))
    return _degenerate(rng, p)


def fedbe_tiny(seed: int) -> FineTuneRound:
    rng = np.random.default_rng(seed)
    p = fedbe_instance(int(rng.integers(1, 4)), int(rng.integers(1, 3)), seed=int(rng.integers(1 << 30)),
                       min_coverage=int(rng.integers(0, 3)))
    return _degenerate(rng, p)


def expert_table(seed: int) -> ExpertSelection:
    rng = np.random.default_rng(seed)
    e = int(rng.integers(1, 7))
    p = experts_instance(e, int(rng.integers(1, 5)), seed=int(rng.integers(1 << 30)))
    imp = p.importance * np.where(rng.random(e) < 0.3, -1.0, 1.0)
    imp = np.where(rng.random(e) < 0.2, 0.0, imp) * 10 ** rng.uniform(-9, 3)
    cost = np.where(rng.random(e) < 0.3, 0.0, p.cost)
    subset = rng.random(e) < 0.5
    budget = float(rng.choice([cost[subset].sum(), 0.0, cost.sum(), p.budget]))
    routed = rng.random(e) < rng.choice([0.0, 0.5, 1.0])
    cap = int(rng.integers(0, e + 1)) if rng.random() < 0.4 else None
    return dataclasses.replace(p, importance=imp, cost=cost, budget=budget, routed=routed, max_experts=cap,
                               router_score=None)


#: The instance builders the nasty sweep runs (tests/contract/test_nasty.py), each on its own seeds.
INSTANCES = (round_table, fedquad_tiny, fedbe_tiny, expert_table)
#: Exact methods whose failures on these instances are an ``error`` status (a solver gave up), never a plan.
MAY_FAIL: tuple[str, ...] = ()
