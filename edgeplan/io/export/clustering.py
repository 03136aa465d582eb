"""The ``cluster-plan`` export of a split-FL clustering: what a parameter server needs to run it, one JSON file.

``workers`` lists, per worker, its cluster, its role (``"top"`` or ``"bottom"``) and its cluster's top;
``clusters`` lists, per cluster, its top and bottoms, its local updating frequency (the exact
``frequency-sweep`` on the plan's :meth:`~edgeplan.formulations.clustering.clients.ClientClustering.frequency_problem`,
or ``eq17``), and the model's predictions: iteration time, waiting time, label divergence and utility, with the
round's barrier. A runtime reads ``workers`` and the frequencies; the predictions let a run be checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeplan._checks import one_of
from edgeplan.formulations.clustering.clients import ClientClustering, ClusterPlan
from edgeplan.registry import exporter

CLUSTER_FORMAT = "edgeplan.clustering.plan"
CLUSTER_VERSION = 1


def cluster_plan(problem: ClientClustering, plan: ClusterPlan, tau_max: int = 5,
                 frequency: str = "frequency-sweep") -> dict[str, Any]:
    """The export's content (module docstring).

    Parameters
    ----------
    problem, plan
        The workers and their clusters.
    tau_max
        The most local iterations per round.
    frequency
        ``"frequency-sweep"`` (exact) or ``"eq17"`` (ParallelSFL's rule).
    """
    from edgeplan.solvers.api import solve

    one_of("frequency", frequency, ("frequency-sweep", "eq17"))
    m = problem.evaluate(plan)
    fp = problem.frequency_problem(plan, tau_max=tau_max)
    res = solve(fp, frequency)
    tau = res.plan.tau.tolist() if res.has_plan else [None] * plan.n_clusters
    fm = fp.evaluate(res.plan) if res.has_plan else None
    workers = [{"worker": i, "cluster": int(plan.assignment[i]),
                "role": "top" if i == int(plan.top[plan.assignment[i]]) else "bottom",
                "top": int(plan.top[plan.assignment[i]])} for i in range(problem.n_workers)]
    clusters = [{"cluster": c, "top": int(plan.top[c]),
                 "bottoms": [i for i in range(problem.n_workers) if plan.assignment[i] == c and i != plan.top[c]],
                 "frequency": tau[c], "iteration_s": float(m.iteration_s[c]), "waiting_s": float(m.waiting_s[c]),
                 "divergence": float(m.divergence[c]), "utility": float(m.utility[c])}
                for c in range(plan.n_clusters)]
    return {"format": CLUSTER_FORMAT, "version": CLUSTER_VERSION, "name": problem.name,
            "divergence": problem.divergence, "weight": problem.weight, "workers": workers, "clusters": clusters,
            "frequency_method": frequency, "round_s": None if fm is None else fm.round_s,
            "throughput": None if fm is None else fm.throughput, "cost": m.cost}


@exporter("cluster-plan", plan=ClusterPlan)
def export_cluster_plan(problem: ClientClustering, plan: ClusterPlan, out_dir: Path, **kwargs: Any) -> list[Path]:
    """Every worker's cluster, role and top, and every cluster's frequency and predictions, one JSON file."""
    path = Path(out_dir) / "cluster_plan.json"
    path.write_text(json.dumps(cluster_plan(problem, plan, **kwargs), indent=2, allow_nan=False) + "\n")
    return [path]


__all__ = ["CLUSTER_FORMAT", "CLUSTER_VERSION", "cluster_plan", "export_cluster_plan"]
