"""Every admission of a small SLIDE problem: each user gets any model it can meet in time, or none.

A served pair gets its minimum bandwidth share (bisection to adjacent floats) and the clocks that meet the
deadline at that share; ``check`` then decides whether the admission fits the band and the energy budgets.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgeplan.formulations.slide import SlideProvisioning
from edgeplan.solvers.slide.slide import build_plan, min_latency_clocks, pair_min_shares

TYPES = (SlideProvisioning,)


def plans(p):
    _, share, _ = pair_min_shares(p, rtol=0.0)
    options = [[-1, *np.flatnonzero(np.isfinite(share[k])).tolist()] for k in range(p.n_users)]
    for choice in itertools.product(*options):
        model = np.asarray(choice)
        users = np.flatnonzero(model >= 0)
        s = np.where(model >= 0, share[np.arange(p.n_users), np.maximum(model, 0)], 0.0)
        if s.sum() > 1.0 + 1e-9:
            continue
        clocks = {}
        if users.size:
            pd = p.pair_data(users, model[users])
            _, z = min_latency_clocks(pd, s[users])
            clocks = {int(u): z[r, : pd["n_layers"][r]].copy() for r, u in enumerate(users)}
        yield build_plan(p, model, s, clocks, model >= 0)


def brute_force_served(shares: np.ndarray) -> int:
    """Most users served, enumerating every subset and model assignment; shares ``(K, I)``, inf = impossible
    (the admission's rounding slack: shares summing to 1 within 1e-12 fit)."""
    k, n = shares.shape
    best = 0
    for choice in itertools.product(range(-1, n), repeat=k):
        c = np.asarray(choice)
        s = c >= 0
        if s.sum() > best and shares[np.flatnonzero(s), c[s]].sum() <= 1.0 + 1e-12:
            best = int(s.sum())
    return best

