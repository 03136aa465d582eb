"""Every plan of a small cache problem: each client's class count and set of active layers."""

from __future__ import annotations

import itertools

from edgeplan.formulations.cache import CachePlacement, CacheReplay

TYPES = (CachePlacement, CacheReplay)


def plans(p):
    cap = p.layer_cap()
    per_client = [(k, A) for k in range(p.n_classes + 1) for m in range(cap + 1)
                  for A in itertools.combinations(range(p.n_layers), m)]
    for choice in itertools.product(per_client, repeat=p.n_clients):
        yield p.plan([k for k, _ in choice], [A for _, A in choice])
