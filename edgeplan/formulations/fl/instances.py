"""Seeded FL rounds: the scenario families ``"fl-round"`` and ``"fl-energy"``."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeplan.formulations.fl.common import (
    AUTHOR_CODE_PAYLOAD_BITS,
    channel_profile,
    count,
    draw_per_user,
    draw_round,
    payload_bits_of,
    user_compute,
)
from edgeplan.formulations.fl.fl_energy import FLRoundEnergy
from edgeplan.formulations.fl.fl_round import FLRound
from edgeplan.profiles.data import social_network_data
from edgeplan.profiles.links import WirelessChannel
from edgeplan.registry import generator


@generator("fl-round", cells=lambda n_users, n_bs, **_: 8 * n_users * n_bs,
           tiny=({"n_users": 4, "n_bs": 2, "n_select": 2, "resource_block_hz": 3e5},
                             {"n_users": 4, "n_bs": 2, "n_select": 2, "resource_block_hz": 3e5, "quota": "at_least",
                              "bs_channels": 1}),
           demo=("FL round: selection + BS + bandwidth under mobility", {"n_users": 20, "n_bs": 3, "n_select": 6},
                 ("fl-bisect", "dagsa", "dagsa-static", "best-channel", "fastest-compute", "random")))
def fl_round_instance(
    n_users: int = 40,
    n_bs: int = 4,
    n_select: int = 10,
    *,
    seed: int | np.random.Generator | None = 0,
    quota: str = "exact",
    side_m: float = 1000.0,
    speed_mps: Any = 20.0,
    coverage: str = "cell",
    cell_radius_m: float | None = None,
    window_cap_s: float | None = None,
    gain_at: str = "start",
    channel: str | WirelessChannel = "channel-macro-dagsa",
    bs_bandwidth_hz: Any = 1e6,
    bs_channels: Any = None,
    resource_block_hz: float | None = None,
    tx_power_w: float = 0.2,
    cpu_hz: Any = (1e8, 1e9),
    cycles_per_sample: float = 1e4,
    local_epochs: float = 5.0,
    samples: Any = (300, 900),
    payload_bits: float | None = None,
    model: Any = None,
    dtype: str = "fp16",
    device: Any = None,
    positions_m: Any = None,
    velocities_mps: Any = None,
    name: str | None = None,
) -> FLRound:
    """A seeded DAGSA round from the profiles (scenario family ``"fl-round"``).

    Defaults follow the DAGSA author code (see ``docs/models/fl.md``): a 1 km square with 4 BSs at the
    quadrant centres (``n_bs`` != 4: a grid), users uniform in the area with random headings at ``speed_mps``
    (a number or a ``(low, high)`` range), the ``channel-macro-dagsa`` channel (macro path loss, Rayleigh with
    :math:`E|h|^2 = 2`, no shadowing, -174 dBm/Hz), 0.2 W, CPU :math:`U[0.1, 1]` GHz, :math:`\\gamma = 10^4`,
    5 epochs, and the FMNIST CNN payload of 349,440 bits. Our choices: 1 MHz per BS (the paper's is unknown),
    :math:`D_n \\sim U\\{300..900\\}`, no channel limit and no window cap. ``model`` (a ModelProfile or its JSON
    file) sets the payload from its parameters in ``dtype``; with ``device`` (a preset) too, the cycles per
    sample come from its FLOPs. ``positions_m``/``velocities_mps`` fix the geometry (multi-round simulation).
    """
    n = count("n_users", n_users, minimum=1)
    m = count("n_bs", n_bs, minimum=1)
    rng = np.random.default_rng(seed)
    chan = channel_profile(channel)
    geo, gain, win = draw_round(rng, n, m, side_m=side_m, speed_mps=speed_mps, coverage=coverage,
                                cell_radius_m=cell_radius_m, window_cap_s=window_cap_s, channel=chan, gain_at=gain_at,
                                positions_m=positions_m, velocities_mps=velocities_mps)
    f = draw_per_user(rng, "cpu_hz", cpu_hz, n)
    d, gamma = user_compute(rng, n, samples=samples, cycles_per_sample=cycles_per_sample, model=model, device=device)
    if payload_bits is None:
        payload_bits = AUTHOR_CODE_PAYLOAD_BITS if model is None else payload_bits_of(model, dtype)
    return FLRound(gain=gain, window_s=win, samples=d, cpu_hz=f, tx_power_w=tx_power_w, payload_bits=payload_bits,
                   bs_bandwidth_hz=bs_bandwidth_hz, bs_channels=bs_channels, n_select=n_select, quota=quota,
                   cycles_per_sample=gamma, local_epochs=local_epochs, noise_psd_w_per_hz=chan.noise_psd_w_per_hz,
                   resource_block_hz=resource_block_hz, geometry=geo,
                   name=name or f"fl-round-{n}x{m}-k{n_select}")


@generator("fl-energy", cells=lambda n_users, n_bs, **_: 64 * n_users * n_bs,
           tiny=({"n_users": 4, "n_bs": 2, "n_select": 2, "resource_block_hz": 3e5},
                              {"n_users": 4, "n_bs": 2, "n_select": 1, "resource_block_hz": 4e5, "quota": "exact",
                               "deadline_s": 0.5}))
def fl_energy_instance(
    n_users: int = 20,
    n_bs: int = 4,
    n_select: int = 5,
    *,
    seed: int | np.random.Generator | None = 0,
    deadline_s: float = 1.0,
    quota: str = "at_least",
    side_m: float = 1000.0,
    speed_mps: Any = 20.0,
    coverage: str = "cell",
    cell_radius_m: float | None = None,
    channel: str = "channel-macro-dagsa",
    bs_bandwidth_hz: Any = 1e6,
    bs_channels: Any = None,
    resource_block_hz: float | None = None,
    max_power_w: float = 0.2,
    cpu_hz: tuple[float, float] = (1e8, 1e9),
    kappa: float = 1e-27,
    cycles_per_sample: float = 1e4,
    local_epochs: float = 5.0,
    samples: Any = (300, 900),
    payload_bits: float | None = None,
    model: Any = None,
    dtype: str = "fp16",
    device: Any = None,
    n_communities: int = 1,
    shared_fraction: float = 0.0,
    edcr_min: float = 0.0,
    rdcr_max: float = 1.0,
    positions_m: Any = None,
    velocities_mps: Any = None,
    name: str | None = None,
) -> FLRoundEnergy:
    """A seeded least-energy round (scenario family ``"fl-energy"``); geometry and channel as in
    :func:`~edgeplan.formulations.fl.fl_round.fl_round_instance`.

    Each user's clock range is ``cpu_hz`` (the author code's :math:`[0.1, 1]` GHz) and :math:`\\kappa = 10^{-27}`
    (its :math:`\\alpha`, "kappa" convention); with ``device`` (a preset) the clock range, :math:`\\kappa` (converted
    to the kappa convention by the profile) and the power cap come from it. With ``shared_fraction`` > 0 the users
    hold overlapping data (:func:`~edgeplan.profiles.data.social_network_data`, ``n_communities`` communities, the
    sample counts drawn from ``samples``) and ``edcr_min``/``rdcr_max`` constrain the selection.
    ``positions_m``/``velocities_mps`` fix the geometry (multi-round simulation).
    """
    n = count("n_users", n_users, minimum=1)
    m = count("n_bs", n_bs, minimum=1)
    rng = np.random.default_rng(seed)
    chan = channel_profile(channel)
    geo, gain, win = draw_round(rng, n, m, side_m=side_m, speed_mps=speed_mps, coverage=coverage,
                                cell_radius_m=cell_radius_m, window_cap_s=None, channel=chan,
                                positions_m=positions_m, velocities_mps=velocities_mps)
    d, gamma = user_compute(rng, n, samples=samples, cycles_per_sample=cycles_per_sample, model=model, device=device)
    fmin, fmax, kap, pmax = np.full(n, cpu_hz[0]), np.full(n, cpu_hz[1]), kappa, max_power_w
    if device is not None:
        from edgeplan.profiles.loading import load_device

        dev = device if not isinstance(device, str) else load_device(device)
        fmin, fmax = np.full(n, dev.clock_min_hz), np.full(n, dev.clock_max_hz)
        kap = dev.power.kappa
        pmax = dev.max_tx_power_w if dev.max_tx_power_w is not None else max_power_w
    data = None
    if shared_fraction > 0 or edcr_min > 0 or rdcr_max < 1:
        data = social_network_data(n, n_communities=n_communities, samples_per_user=d.astype(np.int64),
                                   shared_fraction=shared_fraction, seed=rng)
        d = data.sample_counts().astype(float)
    if payload_bits is None:
        from edgeplan.formulations.fl.common import payload_bits_of

        payload_bits = AUTHOR_CODE_PAYLOAD_BITS if model is None else payload_bits_of(model, dtype)
    return FLRoundEnergy(gain=gain, window_s=win, samples=d, cpu_min_hz=fmin, cpu_max_hz=fmax, max_power_w=pmax,
                         kappa=kap, deadline_s=deadline_s, data=data, edcr_min=edcr_min, rdcr_max=rdcr_max,
                         payload_bits=payload_bits, bs_bandwidth_hz=bs_bandwidth_hz, bs_channels=bs_channels,
                         n_select=n_select, quota=quota, cycles_per_sample=gamma, local_epochs=local_epochs,
                         noise_psd_w_per_hz=chan.noise_psd_w_per_hz, resource_block_hz=resource_block_hz,
                         geometry=geo, name=name or f"fl-energy-{n}x{m}-k{n_select}")


__all__ = ["fl_energy_instance", "fl_round_instance"]
