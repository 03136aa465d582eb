"""``edgeplan validate`` for the clustering family: split-FL iterations in real time, FedGCF trained for real.

:func:`validate_split_fl` runs ``repeats`` iterations of every cluster of the plan with
:func:`~edgeplan.validation.clustering.splitfl.run_iteration` (the FashionMNIST CNN cut after its convolutions,
each bottom worker on its own non-IID mini-batch of 32, links paced and compute padded to the plan) and reports the
median measured iteration and barrier wait of each cluster against the model's.

``graph-clients-measured`` builds a :class:`~edgeplan.formulations.clustering.groups.GraphClustering` from graph
clients made here (:mod:`edgeplan.validation.clustering.fedgcf`); :func:`validate_fedgcf` trains FedGCF with the
plan's clusters and reports its accuracy against FedAvg of one GCN and against FedGCF with a single cluster.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.clustering.clients import ClientClustering, ClusterPlan
from edgeplan.formulations.clustering.groups import GraphClustering, GroupPlan
from edgeplan.registry import generator, validator
from edgeplan.validation.clustering.fedgcf import graph_clients, measured_graph_clustering, train_fedgcf
from edgeplan.validation.clustering.splitfl import run_iteration, split_cnn, worker_data
from edgeplan.validation.fltask import fl_task


@dataclass(frozen=True)
class SplitFLValidationReport:
    """Every cluster's iteration executed ``repeats`` times.

    Attributes
    ----------
    predicted_iteration_s, measured_iteration_s
        ``(C,)`` the model's iteration and the median measured one.
    predicted_wait_s, measured_wait_s
        ``(C,)`` the bottoms' mean wait at the barrier, modelled and measured (median).
    overrun_s
        The most a compute step ran past its planned duration (0: the host kept the plan's pace).
    repeats
        Iterations per cluster.
    """

    predicted_iteration_s: np.ndarray
    measured_iteration_s: np.ndarray
    predicted_wait_s: np.ndarray
    measured_wait_s: np.ndarray
    overrun_s: float
    repeats: int

    def within(self, tol: float = 0.1) -> float:
        """Share of clusters whose predicted iteration is within ``tol`` of the measured one."""
        err = np.abs(self.predicted_iteration_s / self.measured_iteration_s - 1.0)
        return float(np.mean(err <= tol)) if err.size else 1.0

    def __str__(self) -> str:
        rows = [f"cluster {c}: iteration {m * 1e3:.1f} ms measured, {p * 1e3:.1f} ms predicted "
                f"({100 * (p / m - 1):+.1f} %); barrier wait {mw * 1e3:.1f} ms measured, {pw * 1e3:.1f} ms predicted"
                for c, (m, p, mw, pw) in enumerate(zip(self.measured_iteration_s, self.predicted_iteration_s,
                                                       self.measured_wait_s, self.predicted_wait_s, strict=True))]
        return "\n".join([*rows, f"clusters within 10 %: {100 * self.within():.0f} %; "
                                 f"largest compute overrun {self.overrun_s * 1e3:.2f} ms"])


@validator(ClientClustering, "every cluster's split-FL iteration in real time (paced links, emulated speeds)")
def validate_split_fl(problem: ClientClustering, plan: ClusterPlan, *, device: str = "cpu", repeats: int = 3,
                      batch: int = 32, seed: int = 0) -> SplitFLValidationReport:
    """Execute every cluster of ``plan`` ``repeats`` times (module docstring).

    Parameters
    ----------
    problem, plan
        The workers and their clusters.
    device
        Where the models compute.
    repeats, batch, seed
        Iterations per cluster, the mini-batch, the seed of the data and weights.
    """
    task = fl_task("fmnist_cnn", alpha=0.1, noise=4.0, seed=seed)
    bottom0, top0 = split_cnn(task)
    data = worker_data(task, problem.n_workers, batch, seed)
    pi, mi, pw, mw, over = [], [], [], [], 0.0
    for c in range(plan.n_clusters):
        members = [int(i) for i in np.flatnonzero(plan.assignment == c) if i != plan.top[c]]
        models = {i: copy.deepcopy(bottom0) for i in members}
        top = copy.deepcopy(top0)
        runs = [run_iteration(problem, members, int(plan.top[c]), models, top, {i: data[i] for i in members},
                              device=device) for _ in range(repeats)]
        pi.append(runs[0].predicted_iteration_s)
        pw.append(runs[0].predicted_barrier_wait_s)
        mi.append(float(np.median([r.iteration_s for r in runs])))
        mw.append(float(np.median([r.barrier_wait_s for r in runs])))
        over = max(over, *(r.overrun_s for r in runs))
    return SplitFLValidationReport(predicted_iteration_s=np.array(pi), measured_iteration_s=np.array(mi),
                                   predicted_wait_s=np.array(pw), measured_wait_s=np.array(mw), overrun_s=over,
                                   repeats=repeats)


@generator("graph-clients-measured", real_model=True, tiny=({"n_clients": 4},))
def measured_graph_instance(n_clients: int = 12, *, seed: int = 0, n_clusters: int = 2, min_size: int = 1,
                            max_size: int = 1_000_000) -> GraphClustering:
    """Graph clients made here (half homophilous, half heterophilous) clustered by their measured structure.

    Parameters
    ----------
    n_clients
        :math:`N`.
    seed
        The seed of the graphs.
    n_clusters, min_size, max_size
        As in :class:`~edgeplan.formulations.clustering.groups.GraphClustering`.
    """
    p = measured_graph_clustering(graph_clients(n_clients, seed=seed), n_clusters, min_size=min_size,
                                  max_size=max_size)
    return GraphClustering(dissimilarity=p.dissimilarity, n_clusters=n_clusters, min_size=min_size,
                           max_size=max_size, name=f"graph-clients-measured-n{n_clients}-s{seed}")


@dataclass(frozen=True)
class FedGCFValidationReport:
    """FedGCF trained with the plan's clusters, against FedAvg and a single cluster.

    Attributes
    ----------
    fedgcf, single_cluster, fedavg
        ``(R,)`` mean client test accuracy after each round: FedGCF with the plan's clusters, FedGCF with every
        client in one cluster, FedAvg of one GCN.
    homophilous_in_cluster
        ``(K,)`` the share of homophilous clients in each of the plan's clusters.
    """

    fedgcf: np.ndarray
    single_cluster: np.ndarray
    fedavg: np.ndarray
    homophilous_in_cluster: np.ndarray

    def __str__(self) -> str:
        return (f"final accuracy: FedGCF {self.fedgcf[-1]:.3f}, one cluster {self.single_cluster[-1]:.3f}, FedAvg "
                f"(one GCN) {self.fedavg[-1]:.3f} ({100 * (self.fedgcf[-1] - self.fedavg[-1]):+.1f} points); "
                f"homophilous share per cluster {np.round(self.homophilous_in_cluster, 2).tolist()}")


@validator(GraphClustering, "FedGCF trained on the graph clients made here, against FedAvg")
def validate_fedgcf(problem: GraphClustering, plan: GroupPlan, *, device: str = "cpu", rounds: int = 30,
                    rho: float = 0.5) -> FedGCFValidationReport:
    """Train FedGCF with ``plan``'s clusters (CPU), FedGCF with one cluster and FedAvg of one GCN.

    Parameters
    ----------
    problem, plan
        A ``graph-clients-measured`` instance (its name carries the clients) and its clusters.
    device
        Accepted for the common signature; the graphs are small and train on the CPU.
    rounds, rho
        Rounds and the fusion ratio of the structural model.
    """
    m = re.fullmatch(r"graph-clients-measured-n(\d+)-s(\d+)", problem.name)
    if m is None:
        raise ProblemDataError(f"`problem.name` = {problem.name!r}; the validator trains on instances of "
                               "'graph-clients-measured' (their name carries the clients)")
    clients = graph_clients(int(m.group(1)), seed=int(m.group(2)))
    one = GroupPlan(np.zeros(len(clients), dtype=np.int64))
    homo = np.array([c.homophilous for c in clients], dtype=float)
    share = np.array([homo[plan.assignment == k].mean() for k in range(problem.n_clusters)])
    return FedGCFValidationReport(fedgcf=train_fedgcf(clients, plan, rho=rho, rounds=rounds).accuracy,
                                  single_cluster=train_fedgcf(clients, one, rho=rho, rounds=rounds).accuracy,
                                  fedavg=train_fedgcf(clients, one, rho=1.0, rounds=rounds).accuracy,
                                  homophilous_in_cluster=share)


__all__ = ["FedGCFValidationReport", "SplitFLValidationReport", "measured_graph_instance", "validate_fedgcf",
           "validate_split_fl"]
