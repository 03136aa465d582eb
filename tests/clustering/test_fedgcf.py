"""FedGCF: graph clients made here, their structure statistics, the structural clustering and federated training."""

from __future__ import annotations

import numpy as np
import pytest

from edgeplan import ProblemDataError, Status, solve
from edgeplan.formulations.clustering import GraphClustering, GroupPlan
from edgeplan.formulations.clustering.instances import graph_clients_instance
from edgeplan.validation.clustering.fedgcf import (
    graph_clients,
    measured_graph_clustering,
    structure_stats,
    train_fedgcf,
)


def test_structure_statistics_tell_the_two_kinds_of_client_apart() -> None:
    clients = graph_clients(8, seed=0)
    stats = np.array([structure_stats(c) for c in clients])
    homo = np.array([c.homophilous for c in clients])
    assert homo.sum() == 4
    assert stats[homo, 0].min() > stats[~homo, 0].max()  # clustering coefficient: triangles within classes
    p = measured_graph_clustering(clients, 2)
    r = solve(p, "highs")
    assert r.status is Status.OPTIMAL
    a = r.plan.assignment
    assert len(set(a[homo])) == 1 and len(set(a[~homo])) == 1 and a[homo][0] != a[~homo][0]


def test_training_keeps_structural_models_per_cluster() -> None:
    clients = graph_clients(4, seed=1, nodes=80)
    run = train_fedgcf(clients, GroupPlan([0, 0, 1, 1]), rounds=3, epochs=2)
    assert run.accuracy.shape == (3,) and run.per_client.shape == (4,)
    assert np.all((run.accuracy >= 0) & (run.accuracy <= 1))


def test_bad_dissimilarities_are_named() -> None:
    with pytest.raises(ProblemDataError, match="not symmetric with a zero diagonal"):
        GraphClustering(dissimilarity=[[0, 1], [2, 0]], n_clusters=1)
    with pytest.raises(ProblemDataError, match=r"`n_clusters` = 0"):
        GraphClustering(dissimilarity=[[0, 1], [1, 0]], n_clusters=0)


def test_the_heuristic_is_feasible_and_sizes_bind() -> None:
    p = graph_clients_instance(n_clients=12, n_clusters=3, seed=4, min_size=4, max_size=4)
    h, e = solve(p, "fedgcf"), solve(p, "highs", time_limit=60)
    assert h.has_plan and e.status is Status.OPTIMAL
    assert np.all(p.evaluate(h.plan).sizes == 4)
    assert h.fun >= e.fun - 1e-9


def test_the_validator_needs_the_measured_instances() -> None:
    from edgeplan.validation.clustering.execute import validate_fedgcf

    p = graph_clients_instance(n_clients=4, n_clusters=2, seed=0)
    with pytest.raises(ProblemDataError, match="graph-clients-measured"):
        validate_fedgcf(p, GroupPlan([0, 0, 1, 1]))
