r"""Seeded CollaPipe slots and horizons: a BERT-style encoder on a cluster of phones that move.

The encoder is BERT-base-like (:math:`d = 768`, sequence 128, fp32): per sample and block
:math:`W = s(24 d^2 + 4 s d)` forward FLOPs, :math:`12 d^2` parameters, :math:`h = 4 s d` bytes crossing a cut
and :math:`a = 4 s (34 d + 5 n_h s)` bytes kept for backward (the usual activation count of a Transformer
layer in fp32), each block's figures scaled by a factor drawn in [0.8, 1.2] so that cuts matter. Phones train at
50-400 GFLOP/s with 1-5e-11 J/FLOP and 0.5-3 GB for training. A D2D link's gain is
:math:`10^{-(38.5 + 30\log_{10} d)/10}\,|h|^2` (distance :math:`d` between consecutive devices, Rayleigh fading
:math:`|h|^2 \sim \mathrm{Exp}(1)`), the devices moving by Gauss-Markov mobility
(:func:`edgeplan.profiles.mobility.gauss_markov`) in a 60 m square, one slot per second.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeplan._checks import read_text
from edgeplan.errors import ProblemDataError
from edgeplan.formulations.partition.collapipe import CollaPipeHorizon, CollaPipePlan, CollaPipeSlot
from edgeplan.profiles.links import noise_psd_w_per_hz
from edgeplan.profiles.mobility import Area, gauss_markov
from edgeplan.registry import generator

D_MODEL, SEQ, HEADS = 768, 128, 12


def encoder_profile(n_blocks: int, rng: np.random.Generator, *, d_model: int = D_MODEL,
                    seq_len: int = SEQ, heads: int = HEADS) -> dict[str, Any]:
    """Per-block FLOPs, parameters and kept bytes per sample of a BERT-style encoder (module docstring)."""
    scale = rng.uniform(0.8, 1.2, size=n_blocks)
    d, s = float(d_model), float(seq_len)
    return {"block_flops": scale * s * (24 * d * d + 4 * s * d), "block_params": scale * 12 * d * d,
            "block_act_bytes": scale * 4 * s * (34 * d + 5 * heads * s), "hidden_bytes": 4 * s * d}


def d2d_gains(distance_m: Any, rng: np.random.Generator) -> np.ndarray:
    """Linear gains: path loss :math:`38.5 + 30 \\log_{10} d` dB (d >= 1 m) times Rayleigh fading."""
    d = np.maximum(np.asarray(distance_m, dtype=float), 1.0)
    return 10 ** (-(38.5 + 30 * np.log10(d)) / 10) * rng.exponential(1.0, size=d.shape)


def _devices(n: int, rng: np.random.Generator, need: float, memory: bool) -> dict[str, Any]:
    mem = rng.uniform(0.5e9, 3e9, size=n) if memory else np.full(n, np.inf)
    mem = np.maximum(mem, need)  # every device can hold at least its share of an even split
    return {"device_flops": rng.uniform(50e9, 400e9, size=n), "device_memory": mem,
            "energy_per_flop": rng.uniform(1e-11, 5e-11, size=n), "power_cap_w": rng.choice([0.1, 0.2], size=n)}


@generator("collapipe-slot", cells=lambda n_blocks=12, n_devices=4, n_units=16, **_: (
    4 * n_devices * (n_blocks + 1) ** 2 + 8 * n_devices * n_units), tiny=(
    {"n_devices": 2, "n_blocks": 3, "batch_size": 4, "n_units": 3, "levels": 2},
    {"n_devices": 3, "n_blocks": 4, "batch_size": 4, "n_units": 4, "levels": 2, "schedule": "gpipe"},
    {"n_devices": 3, "n_blocks": 4, "batch_size": 2, "n_units": 3, "levels": 2, "energy": True}),
    demo=("CollaPipe slot: a BERT-style encoder over 4 phones (latency + queue-weighted energy)",
          {"n_devices": 4, "n_blocks": 12, "energy": True}, ("collapipe-exact", "equal-pipeline")))
def collapipe_slot(n_devices: int = 4, n_blocks: int = 12, *, batch_size: int = 16, n_units: int = 16,
                   levels: int = 3, bandwidth_hz: float = 20e6, schedule: str = "1f1b", local_iters: int = 1,
                   energy: bool = False, memory: bool = True, distance_m: float = 10.0,
                   seed: Any = 0) -> CollaPipeSlot:
    r"""One CollaPipe slot (module docstring): phones in a row, one fading draw.

    Parameters
    ----------
    n_devices, n_blocks
        :math:`K` and :math:`L`.
    batch_size, n_units, levels, bandwidth_hz
        :math:`B`; bandwidth units :math:`U` of ``bandwidth_hz`` in all; power levels (50-200 mW, geometric).
    schedule, local_iters
        ``"1f1b"`` or ``"gpipe"``; :math:`\tau`.
    energy
        Draw energy weights (as a controller's queues would be) in [0, 1] per J against a latency weight of 1
        per s; else latency only.
    memory
        Draw memory caps (0.5-3 GB, at least an even split's need); else none.
    distance_m
        Mean spacing of consecutive devices (times a draw in [0.5, 2]).
    seed
        Seeds everything.
    """
    rng = np.random.default_rng(seed)
    prof = encoder_profile(n_blocks, rng)
    per_dev = 16 * prof["block_params"].max() * -(-n_blocks // n_devices) \
        + batch_size * prof["block_act_bytes"].max() * -(-n_blocks // n_devices)
    lv = np.geomspace(0.05, 0.2, levels) if levels > 1 else np.array([0.1])
    return CollaPipeSlot(**prof, batch_size=batch_size, **_devices(n_devices, rng, per_dev, memory),
                         gains=d2d_gains(distance_m * rng.uniform(0.5, 2.0, size=n_devices - 1), rng),
                         bandwidth_hz=bandwidth_hz, n_units=n_units, power_levels_w=lv,
                         noise_w_per_hz=float(noise_psd_w_per_hz()), schedule=schedule, local_iters=local_iters,
                         energy_weights=rng.uniform(0, 1, size=n_devices) if energy else None,
                         name=f"collapipe-{n_devices}x{n_blocks}-s{seed}")


def horizon_gains(n_devices: int, n_slots: int, *, side_m: float = 60.0, speed_mps: float = 1.5,
                  seed: Any = 0) -> np.ndarray:
    """``(T, K-1)`` D2D gains of consecutive devices moving by Gauss-Markov mobility, fading drawn per slot."""
    rng = np.random.default_rng(seed)
    traj = gauss_markov(n_devices, n_slots, area=Area(0, side_m, 0, side_m), mean_speed_mps=speed_mps,
                        seed=rng.integers(2**31))
    pos = traj.positions_m[1:]
    dist = np.linalg.norm(pos[:, 1:] - pos[:, :-1], axis=-1)
    return d2d_gains(dist, rng)


def read_trace(path: Any, n_links: int | None = None) -> np.ndarray:
    r"""A channel trace: a CSV file with a header ``slot,g0,g1,...`` and one row per slot of linear D2D gains
    (link :math:`k \to k+1` in column ``g<k>``), slots numbered from 0 in order; returns ``(T, K-1)``.

    Parameters
    ----------
    path
        The CSV file (``#`` lines are comments).
    n_links
        :math:`K-1` expected (``None``: as the header says).
    """
    text = read_text(path, "trace")
    rows = [r.strip() for r in text.splitlines() if r.strip() and not r.lstrip().startswith("#")]
    if not rows:
        raise ProblemDataError(f"`trace` {path!s} is empty; expected a header slot,g0,g1,... and rows")
    head = [h.strip() for h in rows[0].split(",")]
    n = n_links if n_links is not None else max(len(head) - 1, 1)
    want = ["slot"] + [f"g{k}" for k in range(n)]
    if head != want:
        raise ProblemDataError(f"`trace` header = {rows[0]!r}; expected {','.join(want)!r}")
    out = []
    for t, row in enumerate(rows[1:]):
        cells = row.split(",")
        try:
            vals = [float(c) for c in cells]
        except ValueError:
            raise ProblemDataError(f"`trace` row {t + 1} = {row!r}; expected numbers") from None
        if len(vals) != len(head) or vals[0] != t or not all(np.isfinite(v) and v > 0 for v in vals[1:]):
            raise ProblemDataError(f"`trace` row {t + 1} = {row!r}; expected slot {t} and {len(head) - 1} "
                                   "positive finite gains")
        out.append(vals[1:])
    if not out:
        raise ProblemDataError(f"`trace` {path!s} has a header and no slots")
    return np.array(out)


def write_trace(path: Any, gains: Any) -> None:
    """Write ``(T, K-1)`` gains as a :func:`read_trace` CSV file."""
    g = np.asarray(gains, dtype=float)
    lines = ["slot," + ",".join(f"g{k}" for k in range(g.shape[1]))]
    lines += [f"{t}," + ",".join(repr(float(v)) for v in row) for t, row in enumerate(g)]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def collapipe_horizon(n_slots: int = 100, n_devices: int = 4, n_blocks: int = 12, *, budget_share: float = 1.1,
                      batch_size: int = 16, n_units: int = 16, levels: int = 3, trace: str = "",
                      speed_mps: float = 1.5, seed: Any = 0) -> CollaPipeHorizon:
    """A horizon of ``n_slots`` slots (gains from :func:`horizon_gains`, or from a ``trace`` file,
    :func:`read_trace`, which sets the number of slots). Each device's energy budget per round is
    ``budget_share`` of its time-average energy, over these very slots, in the reference plan: the equal split
    with equal bandwidth at the middle power level its links allow (energy does not depend on the micro-batch
    count). With ``budget_share`` >= 1 the reference plan meets every budget, so the budgets are feasible (the
    default leaves 10 % for a controller that serves tightened budgets); the latency-optimal plans load the fast
    devices beyond them, so the budgets bind.

    Parameters
    ----------
    n_slots, n_devices, n_blocks
        :math:`T`, :math:`K`, :math:`L`.
    budget_share
        Budgets as a share of the reference plan's time-average energy.
    batch_size, n_units, levels
        As in :func:`collapipe_slot`.
    trace
        A channel trace file (:func:`read_trace`); ``""``: Gauss-Markov mobility.
    speed_mps
        Mean speed of the devices.
    seed
        Seeds the slot data and the mobility.
    """
    slot = collapipe_slot(n_devices, n_blocks, batch_size=batch_size, n_units=n_units, levels=levels, seed=seed)
    gains = read_trace(trace, n_devices - 1) if trace else horizon_gains(n_devices, n_slots, speed_mps=speed_mps,
                                                                       seed=seed)
    h = CollaPipeHorizon(slot, gains, np.full(n_devices, np.inf))
    return CollaPipeHorizon(slot, gains, budget_share * reference_energy(h))


def reference_energy(h: CollaPipeHorizon) -> np.ndarray:
    """Time-average energy per device (J per round) of :func:`collapipe_horizon`'s reference plan."""
    slot = h.slot
    K, L = slot.n_devices, slot.n_blocks
    mid = [int(np.flatnonzero(row)[len(np.flatnonzero(row)) // 2]) if row.any() else 0
           for row in slot.link_power_ok()]
    ref = CollaPipePlan(tuple(int(v) for v in np.full(K, L // K) + (np.arange(K) < L % K)), slot.micro_batches[0],
                        (slot.n_units // max(K - 1, 1),) * (K - 1), tuple(mid))
    return np.mean([h.at(t).evaluate(ref).energy_j for t in range(h.n_slots)], axis=0)


__all__ = ["collapipe_horizon", "collapipe_slot", "d2d_gains", "encoder_profile", "horizon_gains", "read_trace",
           "reference_energy", "write_trace"]
