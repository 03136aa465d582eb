"""``edgeplan validate`` for split-FL clusterings: every cluster's iteration executed in real time.

:func:`validate_split_fl` runs ``repeats`` iterations of every cluster of the plan with
:func:`~edgeplan.validation.clustering.splitfl.run_iteration` (the FashionMNIST CNN cut after its convolutions,
each bottom worker on its own non-IID mini-batch of 32, links paced and compute padded to the plan) and reports the
median measured iteration and barrier wait of each cluster against the model's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from edgeplan.formulations.clustering.clients import ClientClustering, ClusterPlan
from edgeplan.registry import validator
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


__all__ = ["SplitFLValidationReport", "validate_split_fl"]
