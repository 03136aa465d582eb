r"""Seeded instances of the partition families: synthetic profiles for tests, real profiles for studies.

* :func:`random_profile` draws a small model profile: a chain, a residual-style DAG (skip connections over
  1-3 blocks, as in ResNets and transformers), or a random DAG; a share of blocks get multi-tensor outputs
  (consumers reading different parts, the case the profile's :math:`\min(a_u, \sum e)` cut rule exists for).
  FLOPs :math:`\mathcal U(0.2, 2)` GFLOP, outputs :math:`\mathcal U(20, 400)` KiB, parameters
  :math:`\mathcal U(0, 4)` M per block; these ranges are ours, chosen so that compute and transfer trade off
  on the preset devices and links below.
* :func:`random_split_instance` / :func:`random_pipeline_instance` place such a profile on device presets
  (Jetson Nano, Jetson Orin Nano, Raspberry Pi 5, T4 edge server, A100 cloud) with random link rates.
* :func:`split_instance` / :func:`pipeline_instance` build the problems from a **real** profile (e.g. one
  measured by :func:`edgeplan.profiles.profile_model`), given device presets and link rates.
* :func:`pipeedge_instance` is the scheduling benchmark of PipeEdge's setting: a ViT-style chain of sublayers
  (attention, MLP, layer norms) on devices of several types with per-type bandwidths and memory caps.

Every generator takes ``seed`` and returns the same instance for the same arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.partition.common import positive_int
from edgeplan.formulations.partition.pipeline import PipelinePartition, rate_matrix
from edgeplan.formulations.partition.split import SplitInference
from edgeplan.profiles.devices import DeviceProfile
from edgeplan.profiles.links import WiredLink
from edgeplan.profiles.loading import load_device, load_profile
from edgeplan.profiles.model import ModelProfile
from edgeplan.registry import generator

#: Tier presets used by the random split instances (device, edge, cloud).
SPLIT_TIERS = ("jetson-nano", "edge-server-t4", "cloud-a100")
#: Device presets the random pipelines draw from.
PIPELINE_DEVICES = ("jetson-nano", "jetson-orin-nano-8gb", "raspberry-pi-5", "jetson-orin-nx-16gb", "laptop-cpu")
KINDS = ("chain", "residual", "dag")


def random_profile(n_blocks: int = 6, *, kind: str = "residual", seed: Any = None, multi_output: float = 0.3,
                   name: str | None = None) -> ModelProfile:
    """A random model profile (see the module docstring); ``kind`` is ``"chain"``, ``"residual"`` or ``"dag"``."""
    n = positive_int("n_blocks", n_blocks)
    if kind not in KINDS:
        raise ProblemDataError(f"`kind` = {kind!r}; expected one of {', '.join(map(repr, KINDS))}")
    rng = np.random.default_rng(seed)
    edges = {(i, i + 1) for i in range(n - 1)}
    if kind == "residual":
        for i in range(n - 2):
            if rng.random() < 0.5:
                edges.add((i, min(n - 1, i + int(rng.integers(2, 4)))))
    elif kind == "dag":
        for i in range(n):
            for j in range(i + 2, n):
                if rng.random() < 1.5 / n:
                    edges.add((i, j))
    e = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
    out = np.round(rng.uniform(20, 400, size=n)) * 1024.0
    eb = out[e[:, 0]].copy()
    if kind != "chain" and multi_output > 0:
        for u in range(n):
            mine = np.flatnonzero(e[:, 0] == u)
            if mine.size > 1 and rng.random() < multi_output:        # consumers read different parts
                parts = rng.uniform(0.2, 0.8, size=mine.size)
                eb[mine] = np.round(out[u] * parts / max(parts.sum(), 1.0) * (1 + rng.random()), -2)
    fwd = rng.uniform(0.2e9, 2e9, size=n)
    return ModelProfile(
        name=name or f"random-{kind}-{n}", block_names=tuple(f"b{i}" for i in range(n)),
        block_kinds=tuple(rng.choice(["conv", "linear", "attention"], size=n).tolist()), fwd_flops=fwd,
        bwd_flops=fwd * rng.uniform(1.5, 2.5, size=n), num_params=rng.integers(0, 4_000_000, size=n),
        out_bytes=out, edges=e, edge_bytes=np.minimum(eb, out[e[:, 0]]),
        input_bytes=float(rng.integers(10, 200)) * 1024, input_consumers=np.array([0]))


@generator("partition-split-presets", cells=lambda tiers=SPLIT_TIERS[:2], **_: 4096 * len(tiers), tiny=(
    {"model": "resnet18-small", "tiers": ["phone-midrange", "edge-server-t4"], "rates_bps": 20e6},
    {"model": "gpt2-small", "tiers": list(SPLIT_TIERS), "rates_bps": [50e6, 1e9], "minimize": "energy"}))
def split_instance(model: ModelProfile | str = "resnet18", tiers: Sequence[DeviceProfile | str] = SPLIT_TIERS[:2],
                   rates_bps: Sequence[float] | float = 50e6, *, latencies_s: Sequence[float] | float = 0.0,
                   seed: int | None = None, **kwargs: Any) -> SplitInference:
    """A :class:`SplitInference` of a named model over named device presets (the scenario family
    ``partition-split-presets``).

    ``model`` is a profile, a zoo model name (``"gpt2"``, ``"resnet18-small"``: the shipped profiles) or a
    profile ``.json`` path; ``tiers`` are device profiles or preset names (``edgeplan.profiles.list_presets``).

    Parameters
    ----------
    model
        A profile, a zoo model name or a profile ``.json`` path.
    tiers
        Two or three devices (profiles or preset names), first the device, last the farthest tier.
    rates_bps, latencies_s
        One value per link between consecutive tiers (scalars broadcast).
    seed
        Accepted for the scenario interface; unused.
    **kwargs
        Passed to :class:`SplitInference` (``minimize``, ``bit_widths``, ``min_bits``, ``memory_cap_bytes`` ...).

    Returns
    -------
    SplitInference
    """
    prof = load_profile(model) if isinstance(model, str) else model
    devs = [load_device(t) if isinstance(t, str) else t for t in tiers]
    nl = len(devs) - 1
    r = np.broadcast_to(np.asarray(rates_bps, dtype=float), (nl,))
    lat = np.broadcast_to(np.asarray(latencies_s, dtype=float), (nl,))
    links = [WiredLink(f"link{i}", float(r[i]), float(lat[i])) for i in range(nl)]
    return SplitInference(prof, devs, links, **kwargs)


@generator("partition-split", cells=lambda n_blocks, n_tiers, **_: 16 * n_blocks * n_tiers, tiny=(
    {"n_blocks": 4, "kind": "chain"}, {"n_blocks": 4, "n_tiers": 3, "kind": "dag", "minimize": "energy"},
    {"n_blocks": 4, "kind": "residual", "bits": True, "memory": True, "max_latency": True},
    {"n_blocks": 4, "n_tiers": 3, "kind": "residual", "minimize": "throughput", "bits": True, "memory": True}),
    demo=("Split inference over device/edge/cloud, residual DAG (latency)", {"n_blocks": 12, "n_tiers": 3},
          ("dads", "highs", "neurosurgeon", "coach", "device-only", "cloud-only")))
def random_split_instance(n_blocks: int = 6, n_tiers: int = 2, *, kind: str = "residual", minimize: str = "latency",
                          bits: bool = False, memory: bool = False, max_latency: bool = False,
                          seed: Any = None) -> SplitInference:
    r"""A small random :class:`SplitInference` on ``SPLIT_TIERS`` (for tests and examples).

    Link rates :math:`10^{\mathcal U(6.5, 8.5)}` bit/s (a few to a few hundred Mbit/s), latencies
    :math:`\mathcal U(0, 5)` ms. ``bits`` offers widths (2, 4, 8) with random minimum widths in {2, 4, 8, 32};
    ``memory`` caps each tier at :math:`\mathcal U(0.3, 1.2)` times the model's weights plus activations (some
    placements become infeasible); ``max_latency`` caps latency at :math:`\mathcal U(1, 2)` times the
    all-on-the-last-tier latency.
    """
    rng = np.random.default_rng(seed)
    prof = random_profile(n_blocks, kind=kind, seed=rng)
    T = int(n_tiers)
    if T not in (2, 3):
        raise ProblemDataError(f"`n_tiers` = {n_tiers!r}; expected 2 or 3")
    devs = [load_device(t) for t in (SPLIT_TIERS if T == 3 else SPLIT_TIERS[::2])]
    links = [WiredLink(f"link{i}", float(10 ** rng.uniform(6.5, 8.5)), float(rng.uniform(0, 5e-3)))
             for i in range(T - 1)]
    kw: dict[str, Any] = {"minimize": minimize, "name": f"random-split-{kind}-{n_blocks}x{T}"}
    if bits:
        kw["bit_widths"] = (2, 4, 8)
        kw["min_bits"] = rng.choice([2, 4, 8, 32], size=n_blocks)
    if memory:
        total = float(prof.num_params.sum() * 4 + 2 * prof.out_bytes.sum())
        kw["memory_cap_bytes"] = rng.uniform(0.3, 1.2, size=T) * total
    p = SplitInference(prof, devs, links, **kw)
    if max_latency:
        from edgeplan.formulations.partition.split import SplitPlan

        ref = p.evaluate(SplitPlan(np.full(n_blocks, T - 1))).latency_s
        p = SplitInference(prof, devs, links, max_latency_s=float(ref * rng.uniform(1.0, 2.0)), **kw)
    return p


#: The devices of ``partition-pipeline-presets`` by default.
PRESET_DEVICES = ("jetson-nano", "jetson-orin-nano-8gb", "jetson-orin-nx-16gb")


@generator("partition-pipeline-presets", cells=lambda devices=PRESET_DEVICES, **_: 4096 * len(devices) ** 2, tiny=(
    {"model": "resnet18-small", "devices": ["jetson-nano", "jetson-orin-nx-16gb", "raspberry-pi-5"],
     "bandwidth_bps": 100e6},
    {"model": "gpt2-small", "devices": ["phone-midrange", "phone-flagship"], "bandwidth_bps": [50e6, 200e6],
     "mode": "training", "minimize": "iteration", "n_micro": 4}))
def pipeline_instance(model: ModelProfile | str = "resnet18",
                      devices: Sequence[DeviceProfile | str] = PRESET_DEVICES, *,
                      bandwidth_bps: Sequence[float] | float | None = None, rates_bps: Any = None,
                      latency_s: float = 0.0, seed: int | None = None, **kwargs: Any) -> PipelinePartition:
    """A :class:`PipelinePartition` of a named model over named device presets (the scenario family
    ``partition-pipeline-presets``).

    Parameters
    ----------
    model
        A profile, a zoo model name or a profile ``.json`` path.
    devices
        The devices (profiles or preset names).
    bandwidth_bps
        Per-device bandwidth (PipeEdge's rule: a link runs at the smaller of its ends'); default 1 Gbit/s.
    rates_bps
        A ``(K, K)`` link-rate matrix instead of ``bandwidth_bps``.
    latency_s
        Every link's latency.
    seed
        Accepted for the scenario interface; unused.
    **kwargs
        Passed to :class:`PipelinePartition` (``order``, ``minimize``, ``mode``, ``micro_batch``, ``n_micro`` ...).

    Returns
    -------
    PipelinePartition
    """
    prof = load_profile(model) if isinstance(model, str) else model
    devs = [load_device(d) if isinstance(d, str) else d for d in devices]
    if rates_bps is None:
        bw = np.broadcast_to(np.asarray(1e9 if bandwidth_bps is None else bandwidth_bps, dtype=float), (len(devs),))
        rates_bps = rate_matrix(bw)
    return PipelinePartition(prof, devs, rates_bps=rates_bps, latency_s=latency_s, **kwargs)


@generator("partition-pipeline", cells=lambda n_blocks, n_devices, **_: 8 * n_blocks * n_devices, tiny=(
    {"n_blocks": 5, "n_devices": 3}, {"n_blocks": 5, "n_devices": 3, "order": "free", "memory": True},
    {"n_blocks": 5, "n_devices": 2, "minimize": "iteration", "mode": "training", "memory": True},
    {"n_blocks": 5, "n_devices": 3, "minimize": "iteration", "schedule": "1f1b", "mode": "training"}),
    demo=("Pipeline over 4 heterogeneous devices (bottleneck)", {"n_blocks": 24, "n_devices": 4},
          ("pipeline-dp", "uniform", "param-balanced", "flop-balanced", "block-partition")))
def random_pipeline_instance(n_blocks: int = 8, n_devices: int = 3, *, order: str = "fixed",
                             minimize: str = "bottleneck", mode: str = "inference", schedule: str = "gpipe",
                             n_micro: int = 4, memory: bool = False, kind: str = "chain",
                             seed: Any = None) -> PipelinePartition:
    r"""A small random :class:`PipelinePartition`: devices drawn from ``PIPELINE_DEVICES``, per-device
    bandwidths :math:`10^{\mathcal U(7, 9)}` bit/s (PipeEdge's min rule), optional memory caps at
    :math:`\mathcal U(0.3, 0.9)` of the whole model's footprint per device (with PipeEdge's I/O buffers, depth
    1, half the time)."""
    rng = np.random.default_rng(seed)
    prof = random_profile(n_blocks, kind=kind, seed=rng)
    devs = [load_device(str(d)) for d in rng.choice(PIPELINE_DEVICES, size=n_devices)]
    bw = 10 ** rng.uniform(7, 9, size=n_devices)
    p = PipelinePartition(prof, devs, rates_bps=rate_matrix(bw), order=order, minimize=minimize, mode=mode,
                          schedule=schedule, n_micro=n_micro, name=f"random-pipeline-{n_blocks}x{n_devices}")
    if memory:
        buffers = (1, 1) if rng.random() < 0.5 else None              # PipeEdge's I/O buffer rule, half the time
        full = p.stage_memory(0, n_blocks, 0, position=0, n_stages=1)
        caps = rng.uniform(0.3, 0.9, size=n_devices) * full
        p = PipelinePartition(prof, devs, rates_bps=rate_matrix(bw), order=order, minimize=minimize, mode=mode,
                              schedule=schedule, n_micro=n_micro, memory_cap_bytes=caps, data_buffers=buffers,
                              name=p.name)
    return p


def vit_sublayer_profile(n_blocks: int = 48, *, hidden: int = 768, tokens: int = 197, mlp_ratio: int = 4,
                         name: str | None = None) -> ModelProfile:
    """A ViT-style chain of sublayers as PipeEdge profiles them: per transformer block, 4 layers
    (attention, residual + norm, MLP up, MLP down + residual); ``n_blocks`` layers in total."""
    h, s, m = hidden, tokens, mlp_ratio * hidden
    per = [  # (fwd FLOPs per sample, params, output elements per sample)
        (2 * s * h * 3 * h + 4 * s * s * h + 2 * s * h * h, 4 * h * h + 4 * h, s * h),
        (8 * s * h, 2 * h, s * h),
        (2 * s * h * m, h * m + m, s * m),
        (2 * s * m * h + 8 * s * h, m * h + h + 2 * h, s * h),
    ]
    idx = np.arange(n_blocks) % 4
    fwd = np.array([per[i][0] for i in idx], dtype=float)
    params = np.array([per[i][1] for i in idx], dtype=np.int64)
    out = np.array([per[i][2] for i in idx], dtype=float) * 4.0
    kinds = tuple(("attention", "norm", "linear", "linear")[i] for i in idx)
    return ModelProfile.chain(name or f"vit-sublayers-{n_blocks}", fwd, out, num_params=params,
                              input_bytes=3 * 224 * 224 * 4.0, block_kinds=kinds)


@generator("partition-pipeedge", cells=lambda n_layers, n_types, per_type, **_: 8 * n_layers * n_types * per_type,
           tiny=({"n_layers": 8, "n_types": 2, "per_type": 1},))
def pipeedge_instance(n_layers: int = 192, n_types: int = 8, per_type: int = 2, *, micro_batch: int = 8,
                      memory: bool = True, seed: Any = 0) -> PipelinePartition:
    r"""PipeEdge's scheduling setting: a ViT-style chain of ``n_layers`` sublayers (4 per transformer block,
    ViT-Base widths) on ``n_types`` device types with ``per_type`` devices each, free device subset and order,
    bottleneck objective, PipeEdge's memory rule and link rule (min of the two ends' bandwidths).

    Types are drawn around the edge presets: FLOP rate :math:`10^{\mathcal U(10.5, 12)}` FLOP/s, bandwidth
    :math:`10^{\mathcal U(8, 9.5)}` bit/s, memory :math:`\mathcal U(0.5, 4)` GB (with ``memory``; else none).
    """
    rng = np.random.default_rng(seed)
    prof = vit_sublayer_profile(n_layers)
    base = load_device("jetson-orin-nx-16gb")
    types, bws, caps = [], [], []
    for k in range(n_types):
        rate = float(10 ** rng.uniform(10.5, 12.0))
        dev = base.with_calibration({"attention": rate, "norm": rate * 0.1, "linear": rate},
                                    name=f"type{k}", source="pipeedge_instance (synthetic)")
        types.append(dev)
        bws.append(float(10 ** rng.uniform(8.0, 9.5)))
        caps.append(float(rng.uniform(0.5, 4.0) * 1e9) if memory else math.inf)
    devs = [t for t in types for _ in range(per_type)]
    bw = np.repeat(bws, per_type)
    return PipelinePartition(prof, devs, rates_bps=rate_matrix(bw), order="free", minimize="bottleneck",
                             micro_batch=micro_batch, memory_cap_bytes=np.repeat(caps, per_type),
                             data_buffers=(1, 1), name=f"pipeedge-{n_layers}x{n_types * per_type}")


__all__ = ["KINDS", "PIPELINE_DEVICES", "SPLIT_TIERS", "pipeedge_instance", "pipeline_instance",
           "random_pipeline_instance", "random_profile", "random_split_instance", "split_instance",
           "vit_sublayer_profile"]
