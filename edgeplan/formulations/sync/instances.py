r"""Seeded synchronisation schedules: ``"kv-sync"`` (FedAttn) and ``"fragment-sync"`` (CoCoDC).

:func:`transformer_kv_sync` builds a :class:`~edgeplan.formulations.sync.kv.KVSyncSchedule` from a decoder's
shape: participant :math:`i` holds the consecutive prompt tokens after :math:`o_i = \sum_{j<i} n_j` others; a
block's forward work for its tokens is :math:`24 n_i h^2` (projections and MLP) plus :math:`4h` per causal
query-key pair, :math:`n_i(n_i+1)/2` pairs with local attention and :math:`n_i o_i + n_i(n_i+1)/2` with global;
K and V are :math:`2 h_{kv}` elements per token and block. The error table is the generators' synthetic
stand-in for a calibration (the measured one: :mod:`edgeplan.validation.sync`):
:math:`e_{l,\gamma} = \alpha\,(1 + \kappa\, l/L)\,(1-\rho^\gamma)/(1-\rho)\cdot(1 - \sum_i (n_i/n)^2)`, deeper
blocks hurting more (FedAttn's observation), the loss growing with the gap and with the share of
cross-participant query-key pairs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.sync.fragments import FragmentSync, staleness_limit
from edgeplan.formulations.sync.kv import KVSyncSchedule
from edgeplan.registry import generator

#: Device presets the FedAttn participants are drawn from.
DEVICE_POOL = ("phone-midrange", "phone-flagship", "jetson-orin-nano-8gb", "laptop-cpu", "jetson-orin-nx-16gb")


def synthetic_error(n_blocks: int, tokens: np.ndarray, *, scale: float = 0.05, depth: float = 2.0,
                    rho: float = 0.7) -> np.ndarray:
    """``(L, L)`` :math:`e_{l,\\gamma}` of the module docstring."""
    n = max(float(tokens.sum()), 1.0)
    cross = 1.0 - float(((tokens / n) ** 2).sum())
    gap = np.arange(1, n_blocks + 1)
    growth = (1.0 - rho ** gap) / (1.0 - rho)
    return scale * cross * np.outer(1.0 + depth * np.arange(n_blocks) / max(n_blocks, 1), growth)


def transformer_kv_sync(tokens: Any, flops_per_s: Any, uplink_bps: Any, downlink_bps: Any, error: Any, *,
                        n_blocks: int, hidden: int, kv_hidden: int | None = None, element_bytes: float = 2.0,
                        error_budget: float = float("inf"), sync_latency_s: float = 0.0,
                        name: str = "kv-sync") -> KVSyncSchedule:
    """A :class:`KVSyncSchedule` from a decoder's shape (the module docstring's work model).

    Parameters
    ----------
    tokens, flops_per_s, uplink_bps, downlink_bps
        ``(N,)`` per participant: prompt tokens, FLOP/s, link rates in bytes/s.
    error
        ``(L, L)`` :math:`e_{l,\\gamma}`.
    n_blocks, hidden, kv_hidden
        :math:`L`, :math:`h` and the K (or V) width per token (default :math:`h`; smaller with grouped queries).
    element_bytes
        Bytes per K/V element.
    error_budget, sync_latency_s
        As in :class:`KVSyncSchedule`.
    """
    tok = np.asarray(tokens, dtype=float)
    rate = np.asarray(flops_per_s, dtype=float)
    if tok.ndim != 1 or rate.shape != tok.shape or np.any(rate <= 0):
        raise ProblemDataError(f"`flops_per_s` = {rate.tolist()!r}; expected one positive rate per participant")
    offset = np.concatenate([[0.0], np.cumsum(tok)[:-1]])
    own = tok * (tok + 1) / 2
    linear = 24.0 * tok * hidden * hidden
    local = (linear + 4.0 * hidden * own) / rate
    glob = (linear + 4.0 * hidden * (own + tok * offset)) / rate
    kv = 2.0 * (kv_hidden or hidden) * element_bytes
    return KVSyncSchedule(tokens=tok, kv_bytes_per_token=np.full(n_blocks, kv),
                          local_time_s=np.repeat(local[:, None], n_blocks, axis=1),
                          global_time_s=np.repeat(glob[:, None], n_blocks, axis=1), uplink_bps=uplink_bps,
                          downlink_bps=downlink_bps, error=error, error_budget=error_budget,
                          sync_latency_s=sync_latency_s, name=name)


@generator("kv-sync", cells=lambda n_blocks, n_participants, **_: n_participants * (n_blocks + 1) ** 2,
           tiny=({"n_blocks": 5, "n_participants": 2}, {"n_blocks": 6, "n_participants": 3, "budget_fraction": 0.1},
                 {"n_blocks": 4, "n_participants": 4, "budget_fraction": 0.0}),
           demo=("FedAttn: where participants exchange K/V (least latency within an error budget)",
                 {"n_blocks": 32, "n_participants": 8}, ("kv-sync-dp", "fedattn-uniform", "fedattn-deep",
                                                         "all-sync", "no-sync")))
def kv_sync_instance(n_blocks: int = 24, n_participants: int = 4, *, seed: int = 0, hidden: int = 1024,
                     min_tokens: int = 64, max_tokens: int = 512, budget_fraction: float = 0.3,
                     sync_latency_s: float = 0.005, depth: float = 2.0) -> KVSyncSchedule:
    """Participants from device presets (their fp32 rate), links 2-50 MB/s up and down, prompt shares
    U(``min_tokens``, ``max_tokens``); the error budget is ``budget_fraction`` of the error of no sync."""
    from edgeplan.profiles import load_device

    if n_blocks < 1 or n_participants < 1:
        raise ProblemDataError(f"`n_blocks` = {n_blocks}, `n_participants` = {n_participants}; expected both >= 1")
    rng = np.random.default_rng(seed)
    devs = [load_device(str(d)) for d in rng.choice(DEVICE_POOL, size=n_participants)]
    rate = np.array([d.peak("fp32") * d.efficiency for d in devs])
    tok = rng.integers(min_tokens, max_tokens + 1, size=n_participants).astype(float)
    err = synthetic_error(n_blocks, tok, depth=depth)
    full = float(err[np.arange(n_blocks), np.arange(n_blocks)].sum())  # no sync: block l has gap l + 1
    return transformer_kv_sync(tok, rate, rng.uniform(2e6, 50e6, n_participants),
                               rng.uniform(2e6, 50e6, n_participants), err, n_blocks=n_blocks, hidden=hidden,
                               error_budget=budget_fraction * full, sync_latency_s=sync_latency_s,
                               name=f"kv-sync-{n_blocks}x{n_participants}")


@generator("fragment-sync", cells=lambda n_fragments, n_slots, **_: n_fragments * n_slots * 4,
           tiny=({"n_fragments": 3, "n_slots": 3}, {"n_fragments": 4, "n_slots": 2, "max_staleness": 2},
                 {"n_fragments": 2, "n_slots": 4, "max_staleness": 3, "capacity_fraction": 0.1}),
           demo=("CoCoDC: model fragments over a WAN, slot by slot", {"n_fragments": 64, "n_slots": 24},
                 ("fragment-dp", "fragment-milp", "cocodc", "streaming-diloco", "diloco")))
def fragment_sync_instance(n_fragments: int = 32, n_slots: int = 20, *, seed: int = 0,
                           fragment_params: int = 2_000_000, capacity_fraction: float = 0.25,
                           max_staleness: int = 0, wan_bps: float = 12.5e6,
                           decay: float = 0.05) -> FragmentSync:
    """Fragments of about ``fragment_params`` fp32 parameters each (x U(0.5, 2), whole MiB); the change of fragment f in
    slot t is lognormal around a per-fragment scale that decays by ``decay`` per slot; the WAN rate varies
    +-30 % around ``wan_bps`` and the window is scaled so that a slot carries ``capacity_fraction`` of the
    model on average; ``max_staleness`` 0 means no limit."""
    if n_fragments < 1 or n_slots < 1:
        raise ProblemDataError(f"`n_fragments` = {n_fragments}, `n_slots` = {n_slots}; expected both >= 1")
    rng = np.random.default_rng(seed)
    unit = 2**18  # parameters: fragments are whole MiB of fp32 (the knapsack DP's unit)
    sizes = 4.0 * unit * np.maximum(np.round(fragment_params * rng.uniform(0.5, 2.0, n_fragments) / unit), 1)
    scale = rng.lognormal(0.0, 1.0, n_fragments)
    value = (scale[None, :] * np.exp(-decay * np.arange(n_slots))[:, None]
             * rng.lognormal(0.0, 0.5, (n_slots, n_fragments)))
    wan = wan_bps * rng.uniform(0.7, 1.3, n_slots)
    window = capacity_fraction * sizes.sum() / wan_bps
    return FragmentSync(sizes_bytes=sizes, value=value, wan_bps=wan, window_s=window,
                        max_staleness=staleness_limit(max_staleness), name=f"fragments-{n_fragments}x{n_slots}")


__all__ = ["DEVICE_POOL", "fragment_sync_instance", "kv_sync_instance", "synthetic_error", "transformer_kv_sync"]
