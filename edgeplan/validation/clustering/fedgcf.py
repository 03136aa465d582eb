r"""FedGCF for real: federated GCN training on graph clients whose structures differ.

Clients (:func:`graph_clients`) hold node-classification graphs drawn from stochastic block models: the communities
are the classes, and a client is *homophilous* (edges mostly within a class) or *heterophilous* (edges mostly
between neighbouring classes of a cycle, :math:`c \leftrightarrow c \pm 1`), with its own density. Node features are
a class signal shared by every client plus Gaussian noise. A client's structure statistics (no labels) are its
average clustering coefficient, transitivity and degree coefficient of variation (:func:`structure_stats`):
scale-free, so that density does not hide the type; the dissimilarity of two clients is the Euclidean distance of
their standardised statistics, which makes a :class:`~edgeplan.formulations.clustering.groups.GraphClustering`
(:func:`measured_graph_clustering`).

FedGCF (:func:`train_fedgcf`): every client trains the fused model :math:`\rho\, \mathrm{GCN}(x, A) + (1 - \rho)\,
\mathrm{MLP}(x)` on its training nodes; after each round the structural model (the two-layer GCN,
``torch_geometric.nn.GCNConv``) is averaged within each cluster and the common node model (the MLP on node features)
across every client. FedAvg: one GCN averaged across every client. Accuracy is the mean over clients of their test
nodes' accuracy with their cluster's models.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edgeplan.formulations.clustering.groups import GraphClustering, GroupPlan
from edgeplan.validation.fltask import torch_threads


@dataclass(frozen=True, slots=True)
class GraphClient:
    """One client's graph.

    Attributes
    ----------
    x, y, edge_index
        Node features, labels and edges (``torch_geometric`` layout).
    train, test
        Boolean node masks.
    homophilous
        The client's structure type.
    """

    x: torch.Tensor
    y: torch.Tensor
    edge_index: torch.Tensor
    train: torch.Tensor
    test: torch.Tensor
    homophilous: bool


def graph_clients(n_clients: int = 12, *, n_classes: int = 4, nodes: int = 240, features: int = 16,
                  signal: float = 0.3, seed: int = 0) -> list[GraphClient]:
    """Clients as in the module docstring: the first half homophilous, the rest heterophilous, densities drawn
    per client.

    Parameters
    ----------
    n_clients
        :math:`N` (the first half homophilous).
    n_classes, nodes, features
        Classes (communities), nodes per graph and feature width.
    signal
        The class signal's weight in the node features.
    seed
        The seed of every draw.
    """
    from torch_geometric.utils import stochastic_blockmodel_graph, to_undirected

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn((n_classes, features), generator=gen)
    out = []
    for i in range(n_clients):
        homo = i < n_clients // 2
        dens = float(rng.uniform(0.6, 1.4))
        sizes = [nodes // n_classes] * n_classes

        def prob(a: int, b: int, homo: bool = homo, dens: float = dens) -> float:
            near = (a - b) % n_classes in (1, n_classes - 1)
            if homo:
                return (0.10 if a == b else 0.004) * dens
            return (0.06 if near else 0.004) * dens

        probs = [[prob(a, b) for b in range(n_classes)] for a in range(n_classes)]
        torch.manual_seed(int(rng.integers(1 << 31)))
        edges = to_undirected(stochastic_blockmodel_graph(sizes, probs))
        y = torch.repeat_interleave(torch.arange(n_classes), torch.tensor(sizes))
        x = signal * centres[y] + torch.randn((y.numel(), features), generator=gen)
        perm = torch.randperm(y.numel(), generator=gen)
        train = torch.zeros(y.numel(), dtype=torch.bool)
        train[perm[: y.numel() // 2]] = True
        out.append(GraphClient(x=x, y=y, edge_index=edges, train=train, test=~train, homophilous=homo))
    return out


def structure_stats(client: GraphClient) -> np.ndarray:
    """Average clustering coefficient, transitivity and degree coefficient of variation of the client's graph (no
    labels).

    Parameters
    ----------
    client
        A graph client.
    """
    n = client.y.numel()
    adj = np.zeros((n, n))
    e = client.edge_index.numpy()
    adj[e[0], e[1]] = 1.0
    np.fill_diagonal(adj, 0.0)
    deg = adj.sum(axis=1)
    triangles = np.einsum("ij,jk,ki->i", adj, adj, adj) / 2.0
    pairs = deg * (deg - 1) / 2.0
    clustering = float(np.mean(np.where(pairs > 0, triangles / np.maximum(pairs, 1), 0.0)))
    transitivity = float(triangles.sum() / pairs.sum()) if pairs.sum() > 0 else 0.0
    return np.array([clustering, transitivity, deg.std() / deg.mean() if deg.mean() > 0 else 0.0])


def measured_graph_clustering(clients: list[GraphClient], n_clusters: int = 2, **kw: Any) -> GraphClustering:
    """The clustering problem of ``clients``: distances between their standardised structure statistics
    (``kw``: the other fields of :class:`~edgeplan.formulations.clustering.groups.GraphClustering`).

    Parameters
    ----------
    clients
        The graph clients.
    n_clusters
        :math:`K`.
    kw
        The other fields of :class:`~edgeplan.formulations.clustering.groups.GraphClustering`.
    """
    s = np.array([structure_stats(c) for c in clients])
    s = (s - s.mean(axis=0)) / np.where(s.std(axis=0) > 0, s.std(axis=0), 1.0)
    d = np.sqrt(((s[:, None, :] - s[None, :, :]) ** 2).sum(axis=-1))
    return GraphClustering(dissimilarity=(d + d.T) / 2, n_clusters=n_clusters, name="graph-clients-measured", **kw)


class _Fused(torch.nn.Module):
    def __init__(self, features: int, classes: int, hidden: int = 32) -> None:
        from torch_geometric.nn import GCNConv

        super().__init__()
        self.gcn1, self.gcn2 = GCNConv(features, hidden), GCNConv(hidden, classes)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor, edges: torch.Tensor, rho: float) -> torch.Tensor:
        g = self.gcn2(torch.relu(self.gcn1(x, edges)), edges)
        return rho * g + (1.0 - rho) * self.mlp(x) if rho < 1.0 else g


def _mean_state(states: list[dict[str, torch.Tensor]], keys: list[str]) -> dict[str, torch.Tensor]:
    return {k: sum(s[k] for s in states) / len(states) for k in keys}


@dataclass(frozen=True, slots=True)
class GraphTrainingRun:
    """Accuracy after every round.

    Attributes
    ----------
    accuracy
        ``(R,)`` mean test accuracy over clients.
    per_client
        ``(N,)`` each client's test accuracy after the last round.
    """

    accuracy: np.ndarray
    per_client: np.ndarray


def train_fedgcf(clients: list[GraphClient], plan: GroupPlan, *, rho: float = 0.5, rounds: int = 30,
                 epochs: int = 5, lr: float = 0.01, seed: int = 0) -> GraphTrainingRun:
    """FedGCF's training (module docstring); ``rho = 1`` with one cluster is FedAvg of a GCN.

    Parameters
    ----------
    clients
        The graph clients.
    plan
        Their clusters (the structural models' groups).
    rho
        The structural model's share of the fused logits.
    rounds, epochs, lr, seed
        Rounds, local epochs (full-batch Adam steps) per round, step size and seed.
    """
    torch.manual_seed(seed)
    feats, classes = clients[0].x.shape[1], int(max(int(c.y.max()) for c in clients)) + 1
    base = _Fused(feats, classes)
    structural = [k for k in base.state_dict() if k.startswith("gcn")]
    node = [k for k in base.state_dict() if k.startswith("mlp")]
    K = int(plan.assignment.max()) + 1
    cluster_state = [copy.deepcopy(base.state_dict()) for _ in range(K)]
    common = {k: base.state_dict()[k].clone() for k in node}
    acc = []
    with torch_threads(1):
        for _ in range(rounds):
            states = []
            for i, c in enumerate(clients):
                model = _Fused(feats, classes)
                model.load_state_dict({**cluster_state[plan.assignment[i]], **common})
                opt = torch.optim.Adam(model.parameters(), lr=lr)
                for _ in range(epochs):
                    opt.zero_grad(set_to_none=True)
                    out = model(c.x, c.edge_index, rho)
                    torch.nn.functional.cross_entropy(out[c.train], c.y[c.train]).backward()
                    opt.step()
                states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            common = _mean_state(states, node)
            for k in range(K):
                members = [s for s, a in zip(states, plan.assignment, strict=True) if a == k]
                if members:
                    cluster_state[k] = {**cluster_state[k], **_mean_state(members, structural)}
            scores = []
            for i, c in enumerate(clients):
                model = _Fused(feats, classes)
                model.load_state_dict({**cluster_state[plan.assignment[i]], **common})
                with torch.no_grad():
                    pred = model(c.x, c.edge_index, rho).argmax(-1)
                scores.append(float((pred[c.test] == c.y[c.test]).float().mean()))
            acc.append(float(np.mean(scores)))
    return GraphTrainingRun(accuracy=np.array(acc), per_client=np.array(scores))


__all__ = ["GraphClient", "GraphTrainingRun", "graph_clients", "measured_graph_clustering", "structure_stats",
           "train_fedgcf"]
