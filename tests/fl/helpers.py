"""Tiny FL round instances and brute-force optima, independent of the package's FL kernels.

The energy variant's brute force uses scipy's bounded Brent minimization on the energy written out from the
model (not the package's time split), and scipy again for the split of a band between two users.

Brute force enumerates every assignment of users to base stations (or none) with the quota and channel limits,
and solves each BS's min-max bandwidth problem by plain bisection on T using the profiles' inverse-rate
primitive :func:`edgeplan.profiles.links.min_bandwidth_power_hz` (continuous bandwidth), or by enumerating
block allocations with the forward rate :func:`edgeplan.profiles.links.rate_power_bps` (resource blocks).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize_scalar

from edgeplan.formulations.fl.fl_energy import FLRoundEnergy
from edgeplan.formulations.fl.fl_round import FLRound
from edgeplan.profiles.data import DataOwnership
from edgeplan.profiles.links import min_bandwidth_power_hz, rate_power_bps


def tiny_round(seed: int, *, blocks: bool = False, n_max: int = 4, m_max: int = 2) -> FLRound:
    """A random round small enough to enumerate: 2..n_max users, 1..m_max BSs, windows that bind."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, n_max + 1))
    m = int(rng.integers(1, m_max + 1))
    k = int(rng.integers(1, n + 1))
    noise = 1e-20
    power = rng.uniform(0.05, 0.3, size=n)
    a = 10 ** rng.uniform(5.0, 7.0, size=(n, m))          # p g / N0 in Hz
    gain = a * noise / power[:, None]
    tc = rng.uniform(0.01, 0.2, size=n)
    cycles = 1e4
    epochs = 1.0
    samples = rng.integers(50, 500, size=n).astype(float)
    cpu = epochs * cycles * samples / tc
    kind = rng.integers(0, 3, size=(n, m))                  # 0: not covered, 1: never leaves, 2: finite window
    window = np.where(kind == 0, 0.0, np.where(kind == 1, np.inf, rng.uniform(0.15, 1.2, size=(n, m))))
    window[np.arange(n), rng.integers(0, m, size=n)] = np.where(rng.random(n) < 0.5, np.inf,
                                                                rng.uniform(0.3, 1.5, size=n))
    band = rng.uniform(2e5, 1e6, size=m)
    chans = rng.integers(1, n + 1, size=m) if rng.random() < 0.5 else None
    rb = float(band.min() / rng.integers(2, 6)) if blocks else None
    return FLRound(gain=gain, window_s=window, samples=samples, cpu_hz=cpu, tx_power_w=power, payload_bits=1e5,
                   bs_bandwidth_hz=band, bs_channels=chans, n_select=k, quota="exact" if rng.random() < 0.7 else
                   "at_least", cycles_per_sample=cycles, local_epochs=epochs, noise_psd_w_per_hz=noise,
                   resource_block_hz=rb, name=f"tiny-{seed}")


def minmax_continuous(p: FLRound, groups: list[tuple[int, tuple[int, ...]]]) -> dict:
    """Min-max latency of every group ``(bs, users)`` by bisection on T with the profiles' inverse primitive
    (all groups bisected together)."""
    n = p.n_users
    G = len(groups)
    mask = np.zeros((G, n), dtype=bool)
    bs = np.array([g[0] for g in groups])
    for i, (_, users) in enumerate(groups):
        mask[i, list(users)] = True
    tc = np.broadcast_to(p.compute_s, (G, n))
    w = p.window_s[:, bs].T
    gain = p.gain[:, bs].T
    power = np.broadcast_to(p.tx_power_w, (G, n))

    def fits(T: np.ndarray) -> np.ndarray:
        dl = np.minimum(T[:, None], w) - tc
        b = min_bandwidth_power_hz(p.payload_bits, np.where(dl > 0, dl, 0.0), power, gain, p.noise_psd_w_per_hz)
        b = np.where(mask, b, 0.0)
        return np.all(np.isfinite(b), axis=1) & (b.sum(axis=1) <= p.bs_bandwidth_hz[bs])

    lo = np.max(np.where(mask, tc, 0.0), axis=1)
    hi = lo + 1.0
    for _ in range(60):
        hi = np.where(fits(hi), hi, 2.0 * hi)
    ok = fits(hi)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        good = fits(mid)
        lo, hi = np.where(good, lo, mid), np.where(good, mid, hi)
    return {g: (float(h) if o else np.inf) for g, h, o in zip(groups, hi, ok, strict=True)}


def minmax_blocks(p: FLRound, groups: list[tuple[int, tuple[int, ...]]]) -> dict:
    """Min-max latency of every group ``(bs, users)`` over every allocation of whole blocks (forward rates)."""
    return {g: _blocks(p, *g) for g in groups}


def _blocks(p: FLRound, m: int, users: tuple[int, ...]) -> float:
    u = np.asarray(users)
    R = int(np.floor(p.bs_bandwidth_hz[m] / p.resource_block_hz * (1 + 1e-12)))
    best = np.inf
    for ks in itertools.product(range(1, R + 1), repeat=u.size):
        if sum(ks) > R:
            continue
        r = rate_power_bps(np.asarray(ks) * p.resource_block_hz, p.tx_power_w[u], p.gain[u, m], p.noise_psd_w_per_hz)
        lat = p.compute_s[u] + p.payload_bits / r
        if np.all(lat <= p.window_s[u, m]):
            best = min(best, float(lat.max()))
    return best


def assignments(p: FLRound | FLRoundEnergy):  # type: ignore[no-untyped-def]
    """Every BS-per-user vector (-1: not selected) meeting the quota and channel counts, with its groups
    ``[(bs, users)]``."""
    m = p.gain.shape[1]
    for choice in itertools.product(range(-1, m), repeat=p.gain.shape[0]):
        c = np.asarray(choice)
        k = int((c >= 0).sum())
        if k < p.n_select or (p.quota == "exact" and k > p.n_select):
            continue
        if np.any(np.bincount(c[c >= 0], minlength=m) > p.bs_channels):
            continue
        yield c, [(int(j), tuple(np.flatnonzero(c == j).tolist())) for j in np.unique(c[c >= 0])]


def brute_force(p: FLRound) -> float:
    """The optimal round latency by enumeration (``inf``: infeasible)."""
    n, m = p.gain.shape
    solve_groups = minmax_blocks if p.resource_block_hz is not None else minmax_continuous
    if p.n_select == 0:
        return 0.0
    groups = [(j, users) for j in range(m) for size in range(1, n + 1)
              for users in itertools.combinations(range(n), size)]
    value = solve_groups(p, groups)
    best = np.inf
    for _, keys in assignments(p):
        best = min(best, max(value[key] for key in keys))
    return best


# -- the energy variant ------------------------------------------------------------------------------------------------
def tiny_energy(seed: int, *, blocks: bool = False, n_max: int = 4, m_max: int = 2, coverage: bool = True,
                k_max: int | None = None) -> FLRoundEnergy:
    """A random least-energy round small enough to enumerate, with overlapping data and coverage limits."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, n_max + 1))
    m = int(rng.integers(1, m_max + 1))
    k = int(rng.integers(1, min(n, k_max or n) + 1))
    noise = 1e-20
    pmax = rng.uniform(0.05, 0.3, size=n)
    a = 10 ** rng.uniform(5.0, 7.0, size=(n, m))
    gain = a * noise / pmax[:, None]
    cycles_per_sample, epochs = 1e4, 1.0
    samples = rng.integers(50, 500, size=n).astype(float)
    kind = rng.integers(0, 3, size=(n, m))
    window = np.where(kind == 0, 0.0, np.where(kind == 1, np.inf, rng.uniform(0.2, 1.2, size=(n, m))))
    window[np.arange(n), rng.integers(0, m, size=n)] = np.inf
    band = rng.uniform(2e5, 1e6, size=m)
    data, edcr_min, rdcr_max = None, 0.0, 1.0
    if coverage and rng.random() < 0.7:
        member = rng.random((n, 12)) < 0.4
        member[np.arange(n), rng.integers(0, 12, size=n)] = True
        data = DataOwnership.from_membership(member, rng.integers(0, 2, size=n) if rng.random() < 0.3 else None)
        samples = data.sample_counts().astype(float) * 40
        edcr_min = float(rng.choice([0.0, 0.5, 0.8]))
        rdcr_max = float(rng.choice([1.0, 0.6, 0.3]))
    rb = float(band.min() / rng.integers(2, 5)) if blocks else None
    return FLRoundEnergy(gain=gain, window_s=window, samples=samples, cpu_min_hz=1e8, cpu_max_hz=1e9 * rng.uniform(
        0.5, 1.0, size=n), max_power_w=pmax, kappa=1e-27 * rng.uniform(0.5, 2.0, size=n),
        deadline_s=float(rng.uniform(0.4, 1.0)), data=data, edcr_min=edcr_min, rdcr_max=rdcr_max, payload_bits=1e5,
        bs_bandwidth_hz=band, bs_channels=rng.integers(1, n + 1, size=m) if rng.random() < 0.4 else None,
        n_select=k, quota="at_least" if rng.random() < 0.6 else "exact", cycles_per_sample=cycles_per_sample,
        local_epochs=epochs, noise_psd_w_per_hz=noise, resource_block_hz=rb, name=f"tiny-energy-{seed}")


def point_energy(p: FLRoundEnergy, u: int, m: int, b: float) -> float:
    """Least energy of user ``u`` on BS ``m`` at bandwidth ``b``: scipy's bounded Brent on the energy of the
    upload time (written out here from the model, independent of the package's time split)."""
    Z, C = p.payload_bits, p.cycles[u]
    h = p.gain[u, m] / p.noise_psd_w_per_hz
    d = p.pair_deadline_s[u, m]
    t_lo = max(Z / rate_power_bps(b, p.max_power_w[u], h, 1.0), d - C / p.cpu_min_hz[u])
    t_hi = d - C / p.cpu_max_hz[u]
    if not (t_hi > 0 and t_lo <= t_hi):
        return np.inf

    def energy(t: float) -> float:
        power = min((2.0 ** (Z / (b * t)) - 1.0) * b / h, p.max_power_w[u])
        f = C / (d - t)
        return float(p.kappa[u] * C * f**2 + power * Z / rate_power_bps(b, power, h, 1.0))

    best = minimize_scalar(energy, bounds=(t_lo, t_hi), method="bounded", options={"xatol": 1e-14})
    return min(float(best.fun), energy(t_lo), energy(t_hi))


def _energy_groups(p: FLRoundEnergy, groups: list[tuple[int, tuple[int, ...]]]) -> dict:
    """Least total energy of every group ``(bs, users)`` sharing its band (``inf``: does not fit)."""
    out = {}
    for m, users in groups:
        B = p.bs_bandwidth_hz[m]
        if p.resource_block_hz is not None:
            R = int(np.floor(B / p.resource_block_hz * (1 + 1e-12)))
            table = {(u, k): point_energy(p, u, m, k * p.resource_block_hz) for u in users for k in range(1, R + 1)}
            best = np.inf
            for ks in itertools.product(range(1, R + 1), repeat=len(users)):
                if sum(ks) <= R:
                    best = min(best, sum(table[(u, k)] for u, k in zip(users, ks, strict=True)))
            out[(m, users)] = best
        elif len(users) == 1:
            out[(m, users)] = point_energy(p, users[0], m, B)       # energy falls with bandwidth: take it all
        else:
            u, v = users
            lo = p.min_bandwidth_hz()[u, m] * (1 + 1e-10)
            hi = B - p.min_bandwidth_hz()[v, m] * (1 + 1e-10)
            if not lo < hi:
                out[(m, users)] = np.inf
                continue
            def pair(b: float, u: int = u, v: int = v, m: int = m, B: float = B) -> float:
                return point_energy(p, u, m, b) + point_energy(p, v, m, B - b)

            res = minimize_scalar(pair, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6 * B})
            out[(m, users)] = float(res.fun)
    return out


def brute_force_energy(p: FLRoundEnergy, max_group: int = 2) -> float:
    """The least energy by enumerating selections and assignments (groups of at most ``max_group`` users per BS
    for continuous bandwidth); coverage by :class:`~edgeplan.profiles.data.DataOwnership` itself."""
    n, m = p.gain.shape
    groups = [(j, users) for j in range(m) for size in range(1, (n if p.resource_block_hz else max_group) + 1)
              for users in itertools.combinations(range(n), size) if np.all(p.window_s[list(users), j] > 0)]
    value = _energy_groups(p, groups)
    best = np.inf
    for c, keys in assignments(p):
        edcr, rdcr = p.coverage(c >= 0)
        if np.any(edcr < p.edcr_min - 1e-12) or np.any(rdcr > p.rdcr_max + 1e-12):
            continue
        if any(key not in value for key in keys):
            if any(len(key[1]) > max_group and p.resource_block_hz is None for key in keys):
                raise ValueError("a group exceeds max_group: enlarge it or shrink the instance")
            continue
        best = min(best, sum(value[key] for key in keys))
    return best
