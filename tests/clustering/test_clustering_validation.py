"""Split FL for real: the split model, one real-time iteration against the model, training rounds, the validator."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from edgeplan import solve
from edgeplan.formulations.clustering import ClusterPlan
from edgeplan.formulations.clustering.instances import split_fl_instance
from edgeplan.validation.clustering.splitfl import (
    SMASHED_FEATURES,
    run_iteration,
    smashed_bytes,
    split_cnn,
    train_rounds,
    worker_data,
)
from edgeplan.validation.fltask import fl_task


def test_the_split_model_computes_the_whole_model() -> None:
    task = fl_task("fmnist_cnn", seed=3)
    bottom, top = split_cnn(task)
    x, _ = task.user_data(0, 8)
    h = bottom(x)
    assert h.shape == (8, SMASHED_FEATURES)
    assert torch.allclose(top(h), task.new_model()(x), atol=1e-6)
    assert smashed_bytes(32) == 2 * 4 * SMASHED_FEATURES * 32


def test_an_iteration_never_beats_its_plan_and_trains_every_part() -> None:
    """Compute is padded to the plan and links are paced, so no finish can come before the model's (the queue at
    the top is monotone in the arrivals); every bottom model and the top model change. The premise is that the
    pacing held: a run that beat its plan while real compute overran its pace (a loaded host, which can reorder
    the top's queue) is repeated, at most three runs in all."""
    task = fl_task("fmnist_cnn", seed=0)
    p = dataclasses.replace(split_fl_instance(n_workers=4, seed=1, max_bottoms=3), smashed_bytes=smashed_bytes(16))
    bottom0, top0 = split_cnn(task)
    data = worker_data(task, 4, 16)
    models = {i: copy.deepcopy(bottom0) for i in (1, 2, 3)}
    top = copy.deepcopy(top0)
    for _ in range(3):
        run = run_iteration(p, [1, 2, 3], 0, models, top, {i: data[i] for i in (1, 2, 3)})
        kept = bool(np.all(run.finish_s >= 0.98 * run.predicted_finish_s - 1e-3))
        if kept or run.overrun_s == 0.0:  # a miss without an overrun is a real failure
            break
    assert kept, run
    assert run.finish_s.shape == run.predicted_finish_s.shape == (3,)
    assert run.iteration_s == run.finish_s.max()
    assert run.predicted_iteration_s == p.evaluate(ClusterPlan([0, 0, 0, 0], [0])).iteration_s[0]
    for i in (1, 2, 3):
        assert not torch.equal(models[i].conv1.weight, bottom0.conv1.weight)
    assert not torch.equal(top[0].weight, top0[0].weight)


def test_training_rounds_learn_and_keep_the_planned_clock() -> None:
    p = split_fl_instance(n_workers=6, seed=0, max_bottoms=5)
    r = solve(p, "cluster-dp")
    easy = fl_task("fmnist_cnn", alpha=0.5, noise=1.0, seed=0)
    run = train_rounds(p, r.plan, [2] * r.plan.n_clusters, 1.5, task=easy, rounds=9, samples=64, lr=0.1, seed=0)
    assert run.wall_s.tolist() == [1.5 * k for k in range(1, 10)]
    assert np.all(np.isfinite(run.accuracy))
    assert run.accuracy[-1] > 0.5  # ten classes: chance is 0.1


def test_the_validator_reports_every_cluster() -> None:
    from edgeplan.validation.clustering.execute import validate_split_fl

    p = split_fl_instance(n_workers=5, seed=2, max_bottoms=4)
    r = solve(p, "cluster-dp")
    rep = validate_split_fl(p, r.plan, repeats=1)
    assert rep.measured_iteration_s.shape == (r.plan.n_clusters,)
    assert np.all(rep.measured_iteration_s >= 0.98 * rep.predicted_iteration_s - 1e-3)
    assert "clusters within 10 %" in str(rep)
