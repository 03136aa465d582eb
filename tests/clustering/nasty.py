"""Seeded tiny clustering problems with degenerate data, for the exact-versus-brute-force sweep.

``clients``: 2-6 workers, 1-3 labels, KL or L1; each seed applies some of: compute times spanning 1e-9..1e3 s
or zero, no smashed data, identical label mixes (zero divergences), a top ingress equal to the links of a random
set of workers (binding exactly), top compute that makes Eq. 10 bind or fail, size limits nothing meets.
``frequency``: 1-3 clusters; iterations spanning 1e-9..1e3 s, free model exchanges, a round bound equal to a
random plan's round (binding exactly) or below every plan's. ``groups``: 1-6 graph clients into 1-3 clusters,
dissimilarities spanning 1e-9..1e3 or zero, size limits that bind or that no split meets.
"""

from __future__ import annotations

import numpy as np

from edgeplan.formulations.clustering import ClientClustering, FrequencyPlan, GraphClustering, UpdateFrequency


def clients(seed: int) -> ClientClustering:
    rng = np.random.default_rng(seed)
    N, M = int(rng.integers(2, 7)), int(rng.integers(1, 4))
    bottom = rng.uniform(0.01, 1.0, N)
    mode = rng.integers(3)
    if mode == 1:
        bottom = 10.0 ** rng.uniform(-9, 3, N)
    elif mode == 2:
        bottom = np.where(rng.random(N) < 0.5, 0.0, bottom)
    labels = rng.integers(0, 20, (N, M)) + (np.arange(M)[None, :] == rng.integers(0, M, (N, 1)))
    if rng.random() < 0.2:
        labels = np.tile(labels[:1], (N, 1))
    link = rng.uniform(1.0, 10.0, N)
    ingress = np.full(N, np.inf)
    if rng.random() < 0.5:
        for j in range(N):
            ingress[j] = link[rng.random(N) < 0.6].sum()
    smashed = 0.0 if rng.random() < 0.3 else float(rng.uniform(0.1, 2.0))
    t = bottom + smashed / link
    top = rng.uniform(0.0, 0.5, N) * t.max()
    if rng.random() < 0.3:  # Eq. 10 binds exactly for some (top, size) pairs
        top = t[rng.integers(0, N, N)] / rng.integers(1, 4, N)
    lo = int(rng.integers(1, 3))
    hi = int(rng.integers(lo, 5))
    return ClientClustering(bottom_s=bottom, top_s=top, smashed_bytes=smashed, link_bps=link, ingress_bps=ingress,
                            labels=labels, weight=float(rng.choice([0.0, 1.0, rng.uniform()])),
                            divergence=str(rng.choice(["kl", "l1"])), min_bottoms=lo, max_bottoms=hi)


def frequency(seed: int) -> UpdateFrequency:
    rng = np.random.default_rng(seed)
    C, tau_max = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    it = rng.uniform(0.1, 1.0, C) if rng.random() < 0.5 else 10.0 ** rng.uniform(-9, 3, C)
    sync = np.zeros(C) if rng.random() < 0.3 else rng.uniform(0.0, 3.0, C) * it.max()
    p = UpdateFrequency(iteration_s=it, sync_s=sync, bottoms=rng.integers(0, 6, C), tau_max=tau_max)
    mode = rng.integers(3)
    if mode == 1:
        bound = p.evaluate(FrequencyPlan(rng.integers(1, tau_max + 1, C))).round_s
    elif mode == 2:
        bound = float((it + sync).max()) * 0.5
    else:
        return p
    return UpdateFrequency(iteration_s=it, sync_s=sync, bottoms=p.bottoms, tau_max=tau_max, round_bound_s=bound)


def groups(seed: int) -> GraphClustering:
    rng = np.random.default_rng(seed)
    N, K = int(rng.integers(1, 7)), int(rng.integers(1, 4))
    d = rng.uniform(0, 1, (N, N))
    mode = rng.integers(3)
    if mode == 1:
        d = 10.0 ** rng.uniform(-9, 3, (N, N))
    elif mode == 2:
        d = np.where(rng.random((N, N)) < 0.5, 0.0, d)
    d = np.triu(d, 1)
    lo = int(rng.integers(1, 3))
    hi = int(rng.integers(lo, 5))
    return GraphClustering(dissimilarity=d + d.T, n_clusters=K, min_size=lo, max_size=hi)


#: The instance builders the nasty sweep runs (tests/contract/test_nasty.py), each on its own seeds.
INSTANCES = (clients, frequency, groups)
#: Exact methods whose failures on these instances are an ``error`` status (a solver gave up), never a plan.
MAY_FAIL: tuple[str, ...] = ()
