"""Seeded fine-tuning rounds and expert selections: ``"finetune"`` (FedQuad), ``"finetune-fedbe"``, ``"experts"``.

Devices are drawn from the shipped presets (:func:`edgeplan.profiles.load_device`): their fp32 rate times
efficiency, a share of their memory left for fine-tuning and an uplink rate; the model is a decoder described
by the formulas of :func:`~edgeplan.formulations.finetune.candidates.transformer_layer_costs`. The ranges are
ours, stated in each docstring; candidates measured on a real model come from
:func:`edgeplan.validation.finetune.measure.measure_layer_costs`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.finetune.candidates import fedbe_round, fedquad_round, transformer_layer_costs
from edgeplan.formulations.finetune.experts import ExpertSelection, expert_importance, routed_experts
from edgeplan.formulations.finetune.round import FineTuneRound
from edgeplan.registry import generator

#: Device presets the generators draw from.
DEVICE_POOL = ("phone-midrange", "phone-flagship", "jetson-nano", "jetson-orin-nano-8gb", "raspberry-pi-5",
               "laptop-cpu", "jetson-orin-nx-16gb")


def draw_devices(n: int, rng: np.random.Generator, memory_share: tuple[float, float],
                 min_memory: float = 0.0) -> dict[str, np.ndarray]:
    """Rates (FLOP/s), memory caps (bytes) and uplinks (bytes/s, 0.5-10 MB/s) of ``n`` preset devices.

    A device's cap is a share U(``memory_share``) of its memory, and at least ``min_memory`` times U(1, 1.3)
    (the smallest configuration, so that every device can take part).
    """
    from edgeplan.profiles import load_device

    names = rng.choice(DEVICE_POOL, size=n)
    devs = [load_device(str(d)) for d in names]
    rate = np.array([d.peak("fp32") * d.efficiency for d in devs])
    mem = np.maximum(np.array([d.memory_bytes for d in devs]) * rng.uniform(*memory_share, size=n),
                     min_memory * rng.uniform(1.0, 1.3, size=n))
    return {"flops_per_s": rate, "memory_cap_bytes": mem, "uplink_bps": rng.uniform(0.5e6, 10e6, size=n),
            "names": names}


def _bits(bits: str) -> tuple[int, ...]:
    try:
        out = tuple(int(b) for b in str(bits).split(",") if b.strip())
    except ValueError:
        out = ()
    if not out or any(b not in (2, 4, 8) for b in out):
        raise ProblemDataError(f"`bits` = {bits!r}; expected comma-separated widths among 2, 4, 8 (e.g. '8,4')")
    return out


def _floor(problem: FineTuneRound, fraction: float) -> float:
    """``fraction`` of the utility every device gets from its best candidate that fits."""
    u = np.where(problem.allowed(), problem.weighted_utility(), -np.inf).max(axis=1)
    return float(fraction * np.where(np.isfinite(u), u, 0.0).sum())


@generator("finetune", cells=lambda n_devices, n_layers, **_: 8 * n_devices * n_layers * (n_layers + 1),
           tiny=({"n_devices": 2, "n_layers": 3},
                 {"n_devices": 3, "n_layers": 2, "goal": "time", "utility_floor_fraction": 0.7},
                 {"n_devices": 2, "n_layers": 3, "server_bandwidth_bps": 2e4, "bits": "8"}),
           demo=("Federated fine-tuning: FedQuad's LoRA depth and activation quantization",
                 {"n_devices": 12, "n_layers": 12},
                 ("finetune-sweep", "fedquad", "uniform-depth", "full-depth", "no-quant", "random-config")))
def finetune_instance(n_devices: int = 8, n_layers: int = 12, *, seed: int = 0, hidden: int = 768,
                      seq_len: int = 256, batch: int = 8, lora_rank: int = 8, bits: str = "8,4",
                      local_steps: float = 10.0, goal: str = "rate", utility_floor_fraction: float = 0.0,
                      memory_share_low: float = 0.05, memory_share_high: float = 0.5,
                      server_bandwidth_bps: float = np.inf, server_time_s: float = 0.05) -> FineTuneRound:
    """A FedQuad round: N preset devices fine-tune an ``n_layers`` decoder with LoRA of rank ``lora_rank``.

    Our ranges: a memory share U(``memory_share_low``, ``memory_share_high``) of each device's memory is left
    for fine-tuning (so the caps bind and depths differ); uplinks 0.5-10 MB/s; weights = data shares drawn
    U(0.5, 1.5) and normalised; ``utility_floor_fraction`` of the utility every device's best fitting candidate
    would give.
    """
    if n_devices < 1 or n_layers < 1:
        raise ProblemDataError(f"`n_devices` = {n_devices}, `n_layers` = {n_layers}; expected both >= 1")
    rng = np.random.default_rng(seed)
    costs = transformer_layer_costs(n_layers, hidden, seq_len, batch, max(1, hidden // 64), lora_rank)
    table = costs.fedquad_table(_bits(bits))
    smallest = table["memory_bytes"][(table["config"][:, 0] == 1) & (table["config"][:, 1] == 0)].min()
    dev = draw_devices(n_devices, rng, (memory_share_low, memory_share_high), smallest)
    w = rng.uniform(0.5, 1.5, size=n_devices)
    p = fedquad_round(costs, dev["flops_per_s"], dev["memory_cap_bytes"], dev["uplink_bps"], bits=_bits(bits),
                      local_steps=local_steps, weights=w / w.sum(), goal=goal, server_time_s=server_time_s,
                      server_bandwidth_bps=server_bandwidth_bps, name=f"finetune-{n_devices}x{n_layers}")
    if utility_floor_fraction > 0:
        p = replace(p, utility_floor=_floor(p, utility_floor_fraction))
    return p


@generator("finetune-fedbe", cells=lambda n_devices, n_blocks, **_: 4 * n_devices * 2 ** n_blocks * (n_blocks + 3),
           tiny=({"n_devices": 3, "n_blocks": 2},
                 {"n_devices": 3, "n_blocks": 3, "max_blocks": 2, "min_coverage": 2},
                 {"n_devices": 2, "n_blocks": 2, "goal": "time", "utility_floor_fraction": 0.5}),
           demo=("Federated fine-tuning: FedBE's expanded blocks (every block trained by 2 devices)",
                 {"n_devices": 10, "n_blocks": 4, "min_coverage": 2}, ("finetune-milp", "fedbe", "random-config")))
def fedbe_instance(n_devices: int = 8, n_blocks: int = 4, *, seed: int = 0, n_layers: int = 12, hidden: int = 768,
                   seq_len: int = 256, batch: int = 8, max_blocks: int = 0, min_coverage: int = 1,
                   dirichlet_alpha: float = 0.5, local_steps: float = 10.0, goal: str = "rate",
                   utility_floor_fraction: float = 0.0, memory_share_low: float = 0.1,
                   memory_share_high: float = 0.6, server_time_s: float = 0.05) -> FineTuneRound:
    """A FedBE round: N preset devices, ``n_blocks`` appended blocks, each block trained by ``min_coverage``
    devices; ``max_blocks`` caps a device's subset (0: no cap).

    Label skew from a Dirichlet(``dirichlet_alpha``) split of 10 classes over the devices; memory shares and
    uplinks as in ``"finetune"``.
    """
    from edgeplan.profiles.data import dirichlet_label_counts, label_skew

    rng = np.random.default_rng(seed)
    costs = transformer_layer_costs(n_layers, hidden, seq_len, batch, max(1, hidden // 64))
    smallest = costs.frozen_bytes + costs.workspace_bytes + n_blocks * costs.layer_params.mean() * costs.element_bytes
    dev = draw_devices(n_devices, rng, (memory_share_low, memory_share_high), smallest)
    counts = dirichlet_label_counts(np.full(10, 100 * n_devices), n_devices, dirichlet_alpha,
                                    seed=int(rng.integers(1 << 30)))
    w = counts.sum(axis=1).astype(float)
    p = fedbe_round(costs, n_blocks, dev["flops_per_s"], dev["memory_cap_bytes"], dev["uplink_bps"],
                    skew=label_skew(counts), max_blocks=max_blocks or None, min_coverage=min_coverage,
                    local_steps=local_steps, weights=w / max(w.sum(), 1.0), goal=goal, server_time_s=server_time_s,
                    name=f"fedbe-{n_devices}x{n_blocks}")
    if utility_floor_fraction > 0:
        p = replace(p, utility_floor=_floor(p, utility_floor_fraction))
    return p


@generator("experts", cells=lambda n_experts, batch, **_: n_experts * (batch + 4),
           tiny=({"n_experts": 5, "batch": 4}, {"n_experts": 6, "batch": 2, "max_experts": 2},
                 {"n_experts": 4, "batch": 8, "budget_fraction": 0.0}),
           demo=("HFedMoE: experts a device can afford to update in one batch", {"n_experts": 32, "batch": 8},
                 ("expert-dp", "hfedmoe", "router-topk")))
def experts_instance(n_experts: int = 16, batch: int = 8, *, seed: int = 0, top_k: int = 2,
                     budget_fraction: float = 0.5, max_experts: int = 0, lam: float = 0.5, beta: float = 0.1,
                     concentration: float = 0.3) -> ExpertSelection:
    """One batch of an MoE layer: router probabilities from Dirichlet(``concentration``) rows; expert costs
    (backward work in units of the smallest expert) 1-4 (heterogeneous experts); the budget is
    ``budget_fraction`` of the routed experts' total cost; ``max_experts`` caps the count (0: no cap)."""
    if n_experts < 1 or batch < 1:
        raise ProblemDataError(f"`n_experts` = {n_experts}, `batch` = {batch}; expected both >= 1")
    rng = np.random.default_rng(seed)
    gates = rng.dirichlet(np.full(n_experts, concentration), size=batch)
    routed = routed_experts(gates, min(max(top_k, 1), n_experts))
    cost = rng.integers(1, 5, size=n_experts).astype(float)
    return ExpertSelection(importance=expert_importance(gates, lam=lam, beta=beta), cost=cost,
                           budget=float(np.floor(budget_fraction * cost[routed].sum())), routed=routed,
                           max_experts=max_experts or None, router_score=gates.mean(axis=0),
                           name=f"experts-{n_experts}")


__all__ = ["DEVICE_POOL", "draw_devices", "experts_instance", "fedbe_instance", "finetune_instance"]
