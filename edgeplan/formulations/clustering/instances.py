r"""Seeded clustering instances: ``"split-fl-clusters"``, ``"update-frequency"`` and ``"graph-clients"``.

``split-fl-clusters``: workers with relative speeds U(0.5, 4) (Jetson-class devices); a bottom iteration takes
0.1 s and a top pass over one bottom mini-batch 0.02 s at speed 1; 0.4 MB of smashed data and gradients per
iteration over links of U(2, 20) MB/s; a top's ingress U(20, 80) MB/s; label histograms of 600 samples per
label split by Dirichlet(``alpha``) (:func:`edgeplan.profiles.data.dirichlet_label_counts`); a ResNet-18-sized
model (45 MB) to the parameter server over U(10, 100) MB/s.

``update-frequency``: clusters with iterations of U(0.1, 1) s, model exchanges of U(0.5, 5) s and U{2..8} bottom
workers.

``graph-clients``: FedGCF's graph clients of a few latent structure types (:func:`graph_clients_instance`).
"""

from __future__ import annotations

import numpy as np

from edgeplan.formulations.clustering.clients import ClientClustering
from edgeplan.formulations.clustering.frequency import UpdateFrequency
from edgeplan.formulations.clustering.groups import GraphClustering
from edgeplan.profiles.data import dirichlet_label_counts
from edgeplan.registry import generator

MB = 1e6


@generator("split-fl-clusters", cells=lambda n_workers=20, n_labels=10, **_: n_workers * (n_labels + 8),
           tiny=({"n_workers": 4, "n_labels": 3}, {"n_workers": 5, "n_labels": 2, "divergence": "l1"},
                 {"n_workers": 6, "n_labels": 3, "min_bottoms": 2, "max_bottoms": 3, "weight": 0.8}),
           demo=("ParallelSFL: clusters of split-FL workers and their top workers",
                 {"n_workers": 10}, ("cluster-dp", "parallelsfl", "kmeans-only", "random-clusters", "one-cluster")))
def split_fl_instance(n_workers: int = 20, n_labels: int = 10, *, seed: int = 0, alpha: float = 0.5,
                      divergence: str = "kl", weight: float = 0.5, min_bottoms: int = 1,
                      max_bottoms: int = 6) -> ClientClustering:
    """Workers of a split-FL testbed as in the module docstring.

    Parameters
    ----------
    n_workers, n_labels
        :math:`N` and the number of labels.
    seed
        The seed of every draw.
    alpha
        The Dirichlet concentration of the label split (small: skewed).
    divergence, weight, min_bottoms, max_bottoms
        As in :class:`~edgeplan.formulations.clustering.clients.ClientClustering`.
    """
    rng = np.random.default_rng(seed)
    speed = rng.uniform(0.5, 4.0, n_workers)
    labels = dirichlet_label_counts(np.full(n_labels, 600), n_workers, alpha, seed=rng) + 1
    return ClientClustering(
        bottom_s=0.1 / speed, top_s=0.02 / speed, smashed_bytes=0.4 * MB,
        link_bps=rng.uniform(2, 20, n_workers) * MB, ingress_bps=rng.uniform(20, 80, n_workers) * MB,
        labels=labels, weight=weight, divergence=divergence, min_bottoms=min_bottoms, max_bottoms=max_bottoms,
        model_bytes=45 * MB, server_bps=rng.uniform(10, 100, n_workers) * MB,
        name=f"split-fl-clusters-{n_workers}")


@generator("update-frequency", cells=lambda n_clusters=8, **_: 3 * n_clusters,
           tiny=({"n_clusters": 2, "tau_max": 3}, {"n_clusters": 3, "tau_max": 4},
                 {"n_clusters": 3, "tau_max": 3, "round_bound_s": 4.0}),
           demo=("ParallelSFL: local updating frequencies of the clusters", {"n_clusters": 8},
                 ("frequency-sweep", "eq17", "same-frequency")))
def update_frequency_instance(n_clusters: int = 8, *, seed: int = 0, tau_max: int = 5,
                              round_bound_s: float = float("inf")) -> UpdateFrequency:
    """Clusters as in the module docstring.

    Parameters
    ----------
    n_clusters
        :math:`C`.
    seed
        The seed of every draw.
    tau_max, round_bound_s
        As in :class:`~edgeplan.formulations.clustering.frequency.UpdateFrequency`.
    """
    rng = np.random.default_rng(seed)
    return UpdateFrequency(iteration_s=rng.uniform(0.1, 1.0, n_clusters), sync_s=rng.uniform(0.5, 5.0, n_clusters),
                           bottoms=rng.integers(2, 9, n_clusters), tau_max=tau_max, round_bound_s=round_bound_s,
                           name=f"update-frequency-{n_clusters}")


@generator("graph-clients", cells=lambda n_clients=20, **_: n_clients * n_clients * 2,
           tiny=({"n_clients": 4, "n_clusters": 2}, {"n_clients": 5, "n_clusters": 2, "min_size": 2},
                 {"n_clients": 5, "n_clusters": 3, "max_size": 2}),
           demo=("FedGCF: graph clients clustered by structural similarity", {"n_clients": 12, "n_clusters": 3},
                 ("group-dp", "highs", "fedgcf", "random-groups")))
def graph_clients_instance(n_clients: int = 20, n_clusters: int = 4, *, seed: int = 0, min_size: int = 1,
                           max_size: int = 1_000_000, noise: float = 0.3) -> GraphClustering:
    """Graph clients of ``n_clusters`` latent structure types: each type has its statistics (homophily, mean degree,
    degree spread, triangle density) drawn U(0, 1); a client's are its type's plus Gaussian noise of ``noise``;
    the dissimilarity is the Euclidean distance between clients' statistics.

    Parameters
    ----------
    n_clients, n_clusters
        :math:`N` and :math:`K`.
    seed
        The seed of every draw.
    min_size, max_size, noise
        Cluster sizes and the spread of a type's clients.
    """
    rng = np.random.default_rng(seed)
    types = rng.uniform(0.0, 1.0, (n_clusters, 4))
    stats = types[rng.integers(0, n_clusters, n_clients)] + rng.normal(0.0, noise, (n_clients, 4))
    d = np.sqrt(((stats[:, None, :] - stats[None, :, :]) ** 2).sum(axis=-1))
    return GraphClustering(dissimilarity=(d + d.T) / 2, n_clusters=n_clusters, min_size=min_size, max_size=max_size,
                           name=f"graph-clients-{n_clients}")
