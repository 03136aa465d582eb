"""Every plan of a small clustering problem: set partitions (with a top worker per block, or into exactly K
blocks); every frequency vector."""

from __future__ import annotations

import itertools

from edgeplan.formulations.clustering import (
    ClientClustering,
    ClusterPlan,
    FrequencyPlan,
    GraphClustering,
    GroupPlan,
    UpdateFrequency,
)

TYPES = (ClientClustering, UpdateFrequency, GraphClustering)


def _partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        yield [[first], *part]
        for k in range(len(part)):
            yield [*part[:k], [first, *part[k]], *part[k + 1:]]


def plans(p):
    if isinstance(p, UpdateFrequency):
        for tau in itertools.product(range(1, p.tau_max + 1), repeat=p.n_clusters):
            yield FrequencyPlan(list(tau))
        return
    if isinstance(p, GraphClustering):  # exactly K clusters (labels in order of first client)
        for blocks in _partitions(list(range(p.n_clients))):
            if len(blocks) == p.n_clusters:
                a = [0] * p.n_clients
                for c, block in enumerate(sorted(blocks)):
                    for i in block:
                        a[i] = c
                yield GroupPlan(a)
        return
    N = p.n_workers
    for blocks in _partitions(list(range(N))):
        assignment = [0] * N
        for c, block in enumerate(blocks):
            for i in block:
                assignment[i] = c
        for tops in itertools.product(*blocks):
            yield ClusterPlan(assignment, list(tops))
