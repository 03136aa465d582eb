"""Seeded tiny partition instances with degenerate data, for the exact-versus-brute-force sweep.

Each seed draws, independently: block times spanning 1e-9..1e3 s, all zero, or small integers (ties); zero
or huge activation and input bytes; link rates spanning 1e3..1e10 bit/s with zero or large latencies; and
caps that bind exactly (the memory or latency of a random plan), that nothing meets, or none.
"""

from __future__ import annotations

import numpy as np

from edgeplan.formulations.partition import PipelinePartition, SplitInference, rate_matrix
from edgeplan.profiles import Measurement, ModelProfile, WiredLink
from partition.helpers import device, pipeline_plans, split_plans


def _times(rng: np.random.Generator, n: int) -> np.ndarray:
    mode = rng.integers(4)
    if mode == 0:
        return 10 ** rng.uniform(-9, 3, size=n)
    if mode == 1:
        return np.where(rng.random(n) < 0.6, 0.0, 10 ** rng.uniform(-9, 3, size=n))
    if mode == 2:
        return rng.integers(0, 3, size=n).astype(float)
    return np.zeros(n)


def _bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    mode = rng.integers(3)
    if mode == 0:
        return np.zeros(n)
    if mode == 1:
        return np.where(rng.random(n) < 0.5, 0.0, np.round(10 ** rng.uniform(0, 7, size=n)))
    return rng.integers(0, 3, size=n) * 1000.0


def _profile(rng: np.random.Generator, n: int, devices: list[str], *, dag: bool) -> ModelProfile:
    edges = {(i, i + 1) for i in range(n - 1)}
    if dag:
        edges |= {(i, j) for i in range(n) for j in range(i + 2, n) if rng.random() < 0.4}
    e = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
    out = _bytes(rng, n)
    eb = np.minimum(out[e[:, 0]], _bytes(rng, len(e))) if dag and rng.random() < 0.5 else out[e[:, 0]]
    params = np.where(rng.random(n) < 0.3, 0, rng.integers(0, 1000, size=n))
    meas = tuple(Measurement(d, 1, "fp32", _times(rng, n), 1.0) for d in devices)
    return ModelProfile(name="nasty", block_names=tuple(f"b{i}" for i in range(n)), block_kinds=("other",) * n,
                        fwd_flops=np.ones(n), bwd_flops=rng.choice([0.0, 1.0, 2.0], size=n), num_params=params,
                        out_bytes=out, edges=e, edge_bytes=eb, input_bytes=float(_bytes(rng, 1)[0]),
                        input_consumers=np.array([0]), measurements=meas)


def _rate(rng: np.random.Generator) -> float:
    return float(10 ** rng.uniform(3, 10))


def _latency(rng: np.random.Generator) -> float:
    return float(rng.choice([0.0, 10 ** rng.uniform(-9, 0)]))


def _caps(rng: np.random.Generator, used: np.ndarray) -> np.ndarray | None:
    """No caps, caps equal to a plan's use (they bind exactly), a cap nothing meets, or loose caps."""
    mode = rng.integers(4)
    if mode == 0:
        return None
    if mode == 1:
        return used.astype(float).copy()
    if mode == 2:
        caps = np.full(used.size, np.inf)
        caps[rng.integers(used.size)] = 0.0
        return caps
    return np.where(rng.random(used.size) < 0.5, np.inf, used * rng.uniform(0.5, 1.5))


def split(seed: int) -> SplitInference:
    """A degenerate split instance: 1-4 blocks, 2-3 tiers, every objective, widths, caps."""
    rng = np.random.default_rng(seed)
    n, T = int(rng.integers(1, 5)), int(rng.integers(2, 4))
    names = [f"t{t}" for t in range(T)]
    prof = _profile(rng, n, names, dag=bool(rng.random() < 0.5))
    tiers = [device(d) for d in names]
    links = [WiredLink(f"l{t}", _rate(rng), _latency(rng)) for t in range(T - 1)]
    kw = {"minimize": str(rng.choice(["latency", "energy", "throughput"]))}
    if rng.random() < 0.4:
        kw["bit_widths"] = (2, 4, 8)
        kw["min_bits"] = rng.choice([2, 4, 8, 32], size=n)
    p = SplitInference(prof, tiers, links, **kw)
    plans = list(split_plans(p))
    some = p.evaluate(plans[rng.integers(len(plans))])
    caps = _caps(rng, some.memory_bytes)
    if caps is not None:
        kw["memory_cap_bytes"] = caps
    mode = rng.integers(4)
    if mode == 1:
        kw["max_latency_s"] = float(some.latency_s)
    elif mode == 2:
        kw["max_latency_s"] = float(some.latency_s) * rng.uniform(0.0, 1.0)
    return SplitInference(prof, tiers, links, **kw)


def pipeline(seed: int) -> PipelinePartition:
    """A degenerate pipeline instance: 1-5 blocks on 1-3 devices, fixed or free order, every objective."""
    rng = np.random.default_rng(seed)
    n, K = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    names = [f"d{k}" for k in range(K)]
    prof = _profile(rng, n, names, dag=False)
    devs = [device(d) for d in names]
    mode = str(rng.choice(["inference", "training"]))
    kw = {"order": "free" if K > n else str(rng.choice(["fixed", "free"])),
          "minimize": str(rng.choice(["bottleneck", "iteration"])), "mode": mode,
          "schedule": str(rng.choice(["gpipe", "1f1b"])) if mode == "training" else "gpipe",
          "n_micro": int(rng.integers(1, 4)), "latency_s": _latency(rng),
          "rates_bps": rate_matrix([_rate(rng) for _ in range(K)])}
    p = PipelinePartition(prof, devs, **kw)
    plans = list(pipeline_plans(p))
    if plans:
        plan = plans[rng.integers(len(plans))]
        used = np.zeros(K)          # each device's memory in a random plan (0 on the devices it leaves out)
        used[plan.devices] = p.evaluate(plan).memory_bytes
        caps = _caps(rng, used)
        if caps is not None:
            kw["memory_cap_bytes"] = caps
    return PipelinePartition(prof, devs, **kw)


def collapipe(seed: int):
    """A degenerate CollaPipe slot: 1-3 devices, 1-4 blocks, zero FLOPs/bytes/parameters, zero hidden bytes,
    costs spanning 1e-9..1e3, an edge stage and D2E hop that may be the bottleneck, memory caps that bind
    exactly at some plan or admit nothing, power caps below every level (no link can send), zero weights."""
    from edgeplan.formulations.partition.collapipe import CollaPipeSlot
    from partition.helpers import collapipe_plans

    rng = np.random.default_rng(seed)
    K = int(rng.integers(1, 4))
    L = int(rng.integers(K, 5))
    span = lambda n: np.where(rng.random(n) < 0.25, 0.0, 10 ** rng.uniform(-9, 3, n))  # noqa: E731
    kw = {"block_flops": span(L), "block_params": span(L), "block_act_bytes": span(L),
          "hidden_bytes": float(span(1)[0]), "batch_size": int(rng.choice([1, 2, 4])),
          "device_flops": 10 ** rng.uniform(-3, 3, K), "device_memory": np.full(K, np.inf),
          "energy_per_flop": span(K), "gains": 10 ** rng.uniform(-12, 0, K - 1),
          "power_cap_w": rng.choice([0.0, 0.1, 1.0], K), "n_units": int(rng.integers(max(K - 1, 1), 4)),
          "power_levels_w": np.sort(rng.choice([0.05, 0.1, 0.5], int(rng.integers(1, 3)), replace=False)),
          "bandwidth_hz": float(10 ** rng.uniform(0, 7)), "schedule": str(rng.choice(["1f1b", "gpipe"])),
          "latency_weight": float(rng.choice([0.0, 1.0, 1e3])), "energy_weights": span(K),
          "local_iters": int(rng.integers(1, 3)),
          "edge_s_per_sample": float(rng.choice([0.0, 10 ** rng.uniform(-9, 1)])),
          "d2e_rate_bps": float(rng.choice([np.inf, 10 ** rng.uniform(0, 9)]))}
    p = CollaPipeSlot(**kw)
    plans = list(collapipe_plans(p))
    used = p.evaluate(plans[rng.integers(len(plans))]).memory_bytes
    caps = _caps(rng, used)
    if caps is not None:
        kw["device_memory"] = caps
    return CollaPipeSlot(**kw)


#: The instance builders the nasty sweep runs (tests/contract/test_nasty.py), each on its own seeds.
INSTANCES = (split, pipeline, collapipe)
#: Exact methods whose failures on these instances are an ``error`` status (a solver gave up), never a plan.
MAY_FAIL: tuple[str, ...] = ()
