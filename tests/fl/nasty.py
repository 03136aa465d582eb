"""Seeded tiny FL rounds with degenerate data, for the exact-versus-brute-force sweep.

Starting from the enumerable rounds of :mod:`fl.helpers` (resource blocks, 2-4 users, 1-2 BSs), each seed
applies some of: users with no option at all (no gain, no coverage or no power), zero samples (no compute),
a one-bit payload, windows and deadlines equal to a user's latency at some block count (they bind exactly),
zero CPU energy (kappa 0), gains spanning twelve orders of magnitude, and a quota that nothing can meet.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeplan.formulations.fl import FLRound, FLRoundEnergy
from edgeplan.profiles.links import rate_power_bps
from fl.helpers import tiny_energy, tiny_round


def _common(rng: np.random.Generator, p) -> dict:
    n = p.gain.shape[0]
    kw: dict = {}
    gain, window = p.gain.copy(), p.window_s.copy()
    if rng.random() < 0.3:                            # a user with no option at all
        u = rng.integers(n)
        if rng.random() < 0.5:
            gain[u] = 0.0
        else:
            window[u] = 0.0
    if rng.random() < 0.3:                            # gains over twelve orders of magnitude
        gain = gain * 10 ** rng.uniform(-6, 6, size=gain.shape)
    kw["gain"], kw["window_s"] = gain, window
    if rng.random() < 0.3:
        samples = p.samples.copy()
        samples[rng.random(n) < 0.5] = 0.0            # nothing to train: compute time and energy 0
        kw["samples"] = samples
    if rng.random() < 0.2:
        kw["payload_bits"] = 1.0
    if rng.random() < 0.2:
        kw["n_select"] = int(rng.integers(0, n + 1))
    if rng.random() < 0.1:
        kw["n_select"] = n                            # every user, which the coverage often forbids
        kw["quota"] = "exact"
    return kw


def _binding_window(rng: np.random.Generator, p, latency) -> np.ndarray:
    """Windows equal to a user's latency on a BS at some block count."""
    window = p.window_s.copy()
    n, m = window.shape
    u, j = int(rng.integers(n)), int(rng.integers(m))
    k = int(rng.integers(1, max(int(p.n_blocks[j]), 1) + 1))
    t = float(latency(u, j, k * p.resource_block_hz))
    if np.isfinite(t):
        window[u, j] = t
    return window


def fl_round(seed: int) -> FLRound:
    rng = np.random.default_rng(seed)
    p = tiny_round(seed, blocks=True)
    kw = _common(rng, p)
    if rng.random() < 0.2:
        power = p.tx_power_w.copy()
        power[rng.integers(p.n_users)] = 0.0          # cannot upload
        kw["tx_power_w"] = power
    p = dataclasses.replace(p, **kw)
    if rng.random() < 0.4:
        p = dataclasses.replace(p, window_s=_binding_window(
            rng, p, lambda u, j, b: p.latency_s(np.array([u]), np.array([j]), np.array([b]))[0]))
    return p


def fl_energy(seed: int) -> FLRoundEnergy:
    rng = np.random.default_rng(seed)
    p = tiny_energy(seed, blocks=True, coverage=rng.random() < 0.5)
    kw = _common(rng, p)
    if rng.random() < 0.3:
        kw["kappa"] = 0.0                             # computing costs no energy
    if rng.random() < 0.2:
        power = p.max_power_w.copy()
        power[rng.integers(p.n_users)] = 0.0
        kw["max_power_w"] = power
    p = dataclasses.replace(p, **kw)
    if rng.random() < 0.3:                            # the deadline equals a user's fastest latency on a BS
        u, j = int(rng.integers(p.n_users)), int(rng.integers(p.n_bs))
        b = float(p.n_blocks[j] * p.resource_block_hz)
        h = p.gain[u, j] / p.noise_psd_w_per_hz
        with np.errstate(divide="ignore"):
            t = p.cycles[u] / p.cpu_max_hz[u] + p.payload_bits / rate_power_bps(b, p.max_power_w[u], h, 1.0)
        if np.isfinite(t) and t > 0:
            p = dataclasses.replace(p, deadline_s=t)
    return p


#: The instance builders the nasty sweep runs (tests/contract/test_nasty.py), each on its own seeds.
INSTANCES = (fl_round, fl_energy)
#: Exact methods whose failures on these instances are an ``error`` status (a solver gave up), never a plan:
#: Clarabel does not converge on some operating points of degenerate rounds (12 of 300 at the last count).
MAY_FAIL: tuple[str, ...] = ("fl-energy-cvxpy",)
