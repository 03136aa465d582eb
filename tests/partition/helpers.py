"""Shared by the partition tests: hand-made instances and brute-force enumeration of every plan."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from edgeplan import PlanError
from edgeplan.formulations.partition import PipelinePartition, PipelinePlan, SplitInference, SplitPlan, rate_matrix
from edgeplan.profiles import Measurement, ModelProfile, WiredLink, load_device


def device(name: str):
    return dataclasses.replace(load_device("laptop-cpu"), name=name)


def hand_split(**kw) -> SplitInference:
    """3-block chain; device times (10, 20, 30) ms, cloud (1, 2, 3) ms; outputs 1000/500/10 B, input 2000 B;
    a 1e5 B/s link with 5 ms latency (see test_hand_split_latency for the figures)."""
    m = ModelProfile.chain("hand", [1.0, 1.0, 1.0], [1000.0, 500.0, 10.0], input_bytes=2000.0, measurements=(
        Measurement("dev", 1, "fp32", np.array([0.010, 0.020, 0.030]), 0.060),
        Measurement("cloud", 1, "fp32", np.array([0.001, 0.002, 0.003]), 0.006)))
    args = {"model": m, "tiers": [device("dev"), device("cloud")], "links": [WiredLink("l", 8e5, 0.005)]}
    args.update(kw)
    return SplitInference(**args)


def hand_pipeline(**kw) -> PipelinePartition:
    """4-block chain on two devices: 1 ms and 2 ms per block, 1000 B between blocks, 8e6 bit/s links."""
    m = ModelProfile.chain("hand", [1.0] * 4, [1000.0] * 4, input_bytes=100.0, measurements=(
        Measurement("d0", 1, "fp32", np.full(4, 0.001), 0.004),
        Measurement("d1", 1, "fp32", np.full(4, 0.002), 0.008)))
    args = {"model": m, "devices": [device("d0"), device("d1")], "rates_bps": rate_matrix([8e6, 8e6]), "n_micro": 3}
    args.update(kw)
    return PipelinePartition(**args)


def split_plans(p: SplitInference):
    """Every monotone placement with every width choice of the crossing tensors."""
    L, T = p.n_blocks, p.n_tiers
    for tier in itertools.product(range(T), repeat=L):
        tier = np.array(tier)
        try:
            p._parts(SplitPlan(tier))
        except PlanError:
            continue
        raw, _ = p.crossing(tier)
        cross = np.argwhere(raw > 0)
        for ws in itertools.product(p.widths.tolist(), repeat=len(cross)):
            bits = np.zeros((T - 1, L), dtype=np.int64)
            for (l, u), w in zip(cross, ws, strict=True):
                bits[l, u] = 0 if w == p.native_bits else w
            yield SplitPlan(tier, bits)


def pipeline_plans(p: PipelinePartition):
    L, K = p.n_blocks, p.n_devices
    if p.order == "fixed":
        for cuts in itertools.combinations(range(1, L), K - 1):
            yield PipelinePlan(np.array([0, *cuts, L]), np.arange(K))
        return
    for S in range(1, min(K, L) + 1):
        for cuts in itertools.combinations(range(1, L), S - 1):
            for devs in itertools.permutations(range(K), S):
                yield PipelinePlan(np.array([0, *cuts, L]), np.array(devs))


def compositions(total: int, parts: int):
    """Every tuple of ``parts`` integers >= 1 summing to ``total``."""
    for cuts in itertools.combinations(range(1, total), parts - 1):
        yield tuple(np.diff((0, *cuts, total)).tolist())


def collapipe_plans(p):
    """Every CollaPipe slot plan: segments, micro-batch count, units (each >= 1, at most U in all) and levels."""
    from edgeplan.formulations.partition.collapipe import CollaPipePlan

    n_links = p.n_devices - 1
    unit_sets = [u for u in itertools.product(range(1, p.n_units + 1), repeat=n_links) if sum(u) <= p.n_units]
    levels = list(itertools.product(range(p.power_levels_w.size), repeat=n_links))
    for seg in compositions(p.n_blocks, p.n_devices):
        for M in p.micro_batches:
            for u in unit_sets:
                for lv in levels:
                    yield CollaPipePlan(seg, M, u, lv)

