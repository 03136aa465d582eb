r"""FedBE rounds measured on a real expanded model.

:func:`measure_subsets` expands a zoo decoder with :math:`J` zero-output blocks (:func:`~.expansion.expand_blocks`)
and measures, for every subset :math:`S` of the appended blocks a device may train, one training step with only
:math:`S` trainable (:func:`~.expansion.train_only`, Adam): the step's wall time on this host (fastest of
interleaved rounds in a fresh interpreter, as in :func:`~.measure.measure_many`), the bytes autograd saves for
backward (exact, ``saved_tensors_hooks``), the bytes of the trained parameters, their gradients and Adam's
state, and the bytes a device uploads (the trained blocks' parameters). :func:`measured_fedbe_instance`
(``"fedbe-measured"``) turns them into a :class:`~edgeplan.formulations.finetune.round.FineTuneRound` of N
preset devices whose data are Dirichlet mixtures of synthetic domains (:func:`domain_mixture`): the affinity
:math:`\alpha_{ij} = 1 + \kappa\,\mathrm{skew}_i (1 - z_j)` of
:func:`~edgeplan.formulations.finetune.candidates.fedbe_round` with :math:`z_j` block :math:`j`'s
relative depth in the expanded stack.
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.finetune.instances import draw_devices
from edgeplan.formulations.finetune.round import FineTuneRound
from edgeplan.profiles.memory import in_fresh_process
from edgeplan.registry import generator
from edgeplan.validation.finetune.expansion import EXPANDABLE, _get, expand_blocks, train_only
from edgeplan.validation.finetune.quant import SavedTensors
from edgeplan.validation.zoo import build_model

#: Configuration fields of a FedBE candidate: the bitmask of trained blocks and their number.
FEDBE_FIELDS = ("block_mask", "n_blocks")


@dataclass
class ExpandedModel:
    """A zoo decoder with appended blocks, its example inputs, and where the appended blocks sit.

    Attributes
    ----------
    name
        The zoo name.
    module
        The expanded ``transformers`` model (eval mode: no dropout).
    added
        Indices of the appended blocks in the expanded block list (bottom to top).
    n_total
        Blocks of the expanded stack.
    input_ids
        ``(batch, seq)`` example tokens.
    """

    name: str
    module: Any
    added: list[int]
    n_total: int
    input_ids: torch.Tensor

    def blocks(self, subset: tuple[int, ...]) -> list[int]:
        """Expanded-list indices of the appended blocks in ``subset`` (indices into :attr:`added`)."""
        return [self.added[j] for j in subset]


def expanded_model(model: str, n_blocks: int, *, batch_size: int = 4, seed: int = 0) -> ExpandedModel:
    """Zoo model ``model`` (``"gpt2:tiny"``, ``"llama_small:small"``...) with ``n_blocks`` appended blocks."""
    name, _, size = (model or "").partition(":")
    if name not in EXPANDABLE or size not in ("full", "small", "tiny"):
        raise ProblemDataError(f"`model` = {model!r}; expected '<name>:<size>' with a name among "
                               f"{', '.join(EXPANDABLE)} and a size among full, small, tiny")
    z = build_model(name, size=size, batch_size=batch_size, seed=seed)
    added = expand_blocks(z.module, name, n_blocks)
    z.module.eval()
    return ExpandedModel(name, z.module, added, len(_get(z.module, EXPANDABLE[name][0])), z.example_inputs[0])


def fedbe_subsets(n_blocks: int, max_blocks: int | None = None) -> list[tuple[int, ...]]:
    """Every subset of ``range(n_blocks)`` with at most ``max_blocks`` elements, by size then lexicographically
    (the candidate order of :func:`~edgeplan.formulations.finetune.candidates.fedbe_round`)."""
    cap = n_blocks if max_blocks is None else max_blocks
    return [s for m in range(cap + 1) for s in itertools.combinations(range(n_blocks), m)]


@dataclass(frozen=True, slots=True)
class SubsetMeasurement:
    """One subset's training step, measured.

    Attributes
    ----------
    subset
        The appended blocks trained (indices into the appended blocks).
    step_time_s
        Fastest step (forward, backward, Adam) on this host.
    saved_bytes
        Bytes autograd kept for backward.
    state_bytes
        Trained parameters, their gradients and Adam's state.
    frozen_bytes
        Every other parameter.
    upload_bytes
        The trained blocks' parameters.
    """

    subset: tuple[int, ...]
    step_time_s: float
    saved_bytes: int
    state_bytes: int
    frozen_bytes: int
    upload_bytes: int

    @property
    def memory_bytes(self) -> int:
        """What the step holds: every weight, the saved activations, and the trained blocks' state."""
        return self.frozen_bytes + self.saved_bytes + self.state_bytes


def _nbytes(ts: Any) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


def measure_subsets(model: str, n_blocks: int, subsets: list[tuple[int, ...]], *, batch_size: int = 4,
                    rounds: int = 3, warmup: int = 1, seed: int = 0,
                    base: ExpandedModel | None = None) -> list[SubsetMeasurement]:
    """Measure one training step of ``model`` expanded with ``n_blocks`` blocks, for each subset trained (see the
    module docstring). The empty subset runs the forward pass only (the device trains nothing).

    Parameters
    ----------
    model
        ``"<zoo name>:<size>"`` with a name among the expandable ones (``gpt2``, ``llama_small``).
    n_blocks
        :math:`J`.
    subsets
        Subsets of ``range(J)``.
    batch_size, rounds, warmup, seed
        Sequences per step; timed rounds (interleaved over subsets) and untimed first steps; weight seed.
    base
        The expanded model, if already built (:func:`expanded_model` of the same arguments); it is copied, not
        trained.
    """
    base = base or expanded_model(model, n_blocks, batch_size=batch_size, seed=seed)
    return in_fresh_process(_measure_here, base, [tuple(int(j) for j in s) for s in subsets], rounds, warmup)


def _measure_here(base: ExpandedModel, subsets: list[tuple[int, ...]], rounds: int,
                  warmup: int) -> list[SubsetMeasurement]:
    runs = []
    for s in subsets:
        em = copy.deepcopy(base)
        params = train_only(em.module, em.name, em.blocks(s))
        opt = torch.optim.Adam(params, lr=1e-4) if params else None
        runs.append((s, em, params, opt, []))
    first: dict[tuple[int, ...], int] = {}

    def step(s: tuple[int, ...], em: ExpandedModel, params: list, opt: Any) -> float:
        saved = SavedTensors.for_model(em.module)
        t0 = time.perf_counter()
        if not params:
            with torch.no_grad():
                em.module(input_ids=em.input_ids, labels=em.input_ids)
        else:
            with saved:
                loss = em.module(input_ids=em.input_ids, labels=em.input_ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=False)
        dt = time.perf_counter() - t0
        first.setdefault(s, saved.bytes)
        return dt

    for s, em, params, opt, _ in runs:
        for _ in range(warmup):
            step(s, em, params, opt)
    for _ in range(rounds):
        for s, em, params, opt, times in runs:
            times.append(step(s, em, params, opt))
    out = []
    for s, em, params, opt, times in runs:
        state = _nbytes(params) * 2 + (sum(_nbytes(v for v in st.values() if torch.is_tensor(v) and v.dim() > 0)
                                           for st in opt.state.values()) if opt else 0)
        frozen = _nbytes(p for p in em.module.parameters() if not p.requires_grad)
        out.append(SubsetMeasurement(s, min(times), first[s], state, frozen, _nbytes(params)))
    return out


def domain_mixture(n_devices: int, n_domains: int, alpha: float, *, samples: int = 64, seed: int = 0) -> np.ndarray:
    """``(N, D)`` samples of each synthetic domain per device: a Dirichlet(``alpha``) split of ``samples`` x N
    samples per domain (:func:`edgeplan.profiles.data.dirichlet_label_counts`), each device with at least one.

    Parameters
    ----------
    n_devices, n_domains
        N and D.
    alpha
        The Dirichlet concentration (small: skewed devices).
    samples
        Mean samples per device.
    seed
        Seeds the split.
    """
    from edgeplan.profiles.data import dirichlet_label_counts

    counts = dirichlet_label_counts(np.full(n_domains, samples * n_devices // n_domains), n_devices, alpha,
                                    seed=seed)
    return np.maximum(counts, (counts.sum(axis=1, keepdims=True) == 0).astype(counts.dtype))


@generator("fedbe-measured", real_model=True, tiny=({"n_devices": 2, "model": "gpt2:tiny", "n_blocks": 2,
                                                     "rounds": 1},))
def measured_fedbe_instance(n_devices: int = 6, *, seed: int = 0, model: str = "gpt2:tiny", n_blocks: int = 2,
                            max_blocks: int = 0, min_coverage: int = 1, batch_size: int = 4, rounds: int = 3,
                            local_steps: float = 10.0, n_domains: int = 4, dirichlet_alpha: float = 0.5,
                            affinity_slope: float = 1.0, memory_share_low: float = 0.0005,
                            memory_share_high: float = 0.005, goal: str = "rate",
                            server_time_s: float = 0.05) -> FineTuneRound:
    """A FedBE round whose candidate table (one per subset of appended blocks) is measured on ``model`` expanded
    with ``n_blocks`` blocks on this host (:func:`measure_subsets`). Devices from the presets; memory caps a share
    U(``memory_share_low``, ``memory_share_high``) of their memory, at least the forward-only footprint; a
    device's step time is the host's times the host's measured throughput over the device's (``time_scale``).

    Parameters
    ----------
    n_devices
        N.
    seed
        Seeds the devices, memory shares and uplinks; ``seed + 1`` seeds the domain mixtures (the measurements
        are the host's).
    model
        ``"<zoo name>:<size>"``, an expandable zoo decoder (``gpt2``, ``llama_small``).
    n_blocks, max_blocks, min_coverage
        :math:`J`; the most blocks one device trains (0: all); devices that must train each block.
    batch_size, rounds
        Sequences per step, and timed rounds per subset.
    local_steps, goal, server_time_s
        As in :class:`~edgeplan.formulations.finetune.round.FineTuneRound`.
    n_domains, dirichlet_alpha
        Synthetic domains and the concentration of each device's mixture (:func:`domain_mixture`); a device's
        label skew and data share come from it.
    affinity_slope
        :math:`\\kappa` of the affinity.
    memory_share_low, memory_share_high
        Range of the share of a device's memory left for fine-tuning.
    """
    from edgeplan.profiles.data import label_skew

    subsets = fedbe_subsets(n_blocks, max_blocks or None)
    base = expanded_model(model, n_blocks, batch_size=batch_size)
    meas = measure_subsets(model, n_blocks, subsets, batch_size=batch_size, rounds=rounds, base=base)
    rng = np.random.default_rng(seed)
    memory = np.array([m.memory_bytes for m in meas], dtype=float)
    dev = draw_devices(n_devices, rng, (memory_share_low, memory_share_high), float(memory[0]))
    n_params = sum(p.numel() for p in base.module.parameters())
    full = max(range(len(subsets)), key=lambda c: len(subsets[c]))
    host_rate = 4.0 * n_params * base.input_ids.numel() / meas[full].step_time_s
    scale = host_rate / dev["flops_per_s"]
    counts = domain_mixture(n_devices, n_domains, dirichlet_alpha, seed=seed + 1)
    skew = label_skew(counts)
    z = np.array([base.added[j] / max(base.n_total - 1, 1) for j in range(n_blocks)])
    cover = np.zeros((len(subsets), n_blocks), dtype=bool)
    for c, s in enumerate(subsets):
        cover[c, list(s)] = True
    alpha = 1.0 + affinity_slope * skew[:, None] * (1.0 - z[None, :])
    w = counts.sum(axis=1).astype(float)
    host_t = np.array([m.step_time_s for m in meas])
    cfg = np.array([[sum(1 << j for j in s), len(s)] for s in subsets], dtype=np.int64)
    n, k = n_devices, len(subsets)
    return FineTuneRound(step_time_s=host_t[None, :] * scale[:, None], memory_bytes=np.broadcast_to(memory, (n, k)),
                         upload_bytes=np.broadcast_to(np.array([m.upload_bytes for m in meas], dtype=float), (n, k)),
                         utility=alpha @ cover.T.astype(float), memory_cap_bytes=dev["memory_cap_bytes"],
                         uplink_bps=dev["uplink_bps"], local_steps=local_steps, weights=w / w.sum(), goal=goal,
                         server_time_s=server_time_s, coverage=np.broadcast_to(cover, (n, k, n_blocks)),
                         min_coverage=min_coverage, config=np.broadcast_to(cfg, (n, k, 2)),
                         config_fields=FEDBE_FIELDS, model=model, time_scale=scale,
                         name=f"fedbe-{model.replace(':', '-')}-x{n_blocks}")


__all__ = ["FEDBE_FIELDS", "ExpandedModel", "SubsetMeasurement", "domain_mixture", "expanded_model", "fedbe_subsets",
           "measure_subsets", "measured_fedbe_instance"]
