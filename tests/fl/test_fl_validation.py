"""Real FL training pieces and the execution of planned FL rounds (small and fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.fl.common import AUTHOR_CODE_PAYLOAD_BITS
from edgeplan.formulations.fl.fl_round import FLSchedule
from edgeplan.formulations.fl.instances import fl_round_instance
from edgeplan.registry import validators_for
from edgeplan.solvers.api import solve
from edgeplan.validation.fl.execute import (
    calibrate_fl_training,
    host_fl_round,
    upload_round,
    validate_fl_round,
)
from edgeplan.validation.fltask import (
    FMNISTCNN,
    fedavg,
    fl_task,
    load_state_bytes,
    local_train,
    model_bits,
    state_bytes,
)


@pytest.fixture(scope="module")
def calibration():  # type: ignore[no-untyped-def]
    return calibrate_fl_training(samples=128, epochs=1, repeats=2)


def small_round(**kw):  # type: ignore[no-untyped-def]
    args = {"seed": 3, "samples": (30, 90), "local_epochs": 2, "cpu_hz": (3e8, 1e9), "bs_bandwidth_hz": 2e5} | kw
    return fl_round_instance(12, 4, 3, **args)


# -- the task ---------------------------------------------------------------------------------------------------
def test_fmnist_cnn_is_the_author_codes_payload() -> None:
    net = FMNISTCNN()
    assert sum(p.numel() for p in net.parameters()) == 21_840
    assert model_bits(net, "fp16") == AUTHOR_CODE_PAYLOAD_BITS
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_user_data_is_fixed_per_user_and_non_iid() -> None:
    task = fl_task(alpha=0.1, seed=1)
    x1, y1 = task.user_data(4, 300)
    x2, y2 = task.user_data(4, 300)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and x1.shape == (300, 1, 28, 28)
    _, other = task.user_data(5, 300)
    h4 = np.bincount(y1.numpy(), minlength=10) / 300
    h5 = np.bincount(other.numpy(), minlength=10) / 300
    assert 0.5 * np.abs(h4 - h5).sum() > 0.3  # total variation between two users' label mixes
    assert np.abs(h4 - task.class_mix(4)).max() < 0.1
    _, y_test = task.test_data(200)
    assert np.bincount(y_test.numpy()).tolist() == [20] * 10


def test_local_training_learns_and_fedavg_averages() -> None:
    task = fl_task(noise=1.0)
    model = task.new_model()
    x, y = task.user_data(0, 200)
    seen = []
    run = local_train(model, task, x, y, epochs=3, batch_size=32, on_step=seen.append)
    assert run.steps == 3 * 7 == len(seen) and run.samples == 600
    assert run.last_loss < 0.7 * run.first_loss
    half = local_train(task.new_model(), task, x, y, epochs=0.5, batch_size=32)
    assert half.samples == 100 and half.steps == 4
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(7)}
    b = {"w": torch.tensor([3.0, 2.0]), "n": torch.tensor(9)}
    avg = fedavg([a, b], [1, 2])
    assert torch.allclose(avg["w"], torch.tensor([2.0, 2.0])) and int(avg["n"]) == 7
    with pytest.raises(ProblemDataError, match="`weights`"):
        fedavg([a, b], [0, 0])


def test_state_bytes_round_trip_in_the_upload_precision() -> None:
    net = FMNISTCNN()
    raw = state_bytes(net, "fp16")
    back = load_state_bytes(raw)
    for k, v in net.state_dict().items():
        assert torch.allclose(back[k], v.half().float())
    assert 8 * len(raw) > model_bits(net, "fp16")  # torch.save adds its zip container
    assert len(state_bytes(net, "fp32")) > len(raw)
    with pytest.raises(ProblemDataError, match="`dtype` = 'int3'"):
        state_bytes(net, "int3")


def test_zoo_models_are_fl_tasks() -> None:
    for name, kind in (("resnet18", "image"), ("bert_base", "tokens"), ("gpt2", "lm")):
        task = fl_task(name, size="tiny")
        assert task.kind == kind
        x, y = task.user_data(0, 6)
        run = local_train(task.new_model(), task, x, y, epochs=1, batch_size=3)
        assert run.steps == 2 and np.isfinite(run.last_loss)
    with pytest.raises(ProblemDataError, match="`model` = 'alexnet'"):
        fl_task("alexnet")


# -- uploads ------------------------------------------------------------------------------------------------------
def test_uploads_arrive_whole_and_never_beat_their_rate() -> None:
    payloads = [bytes([i]) * n for i, n in enumerate((20_000, 50_000, 5_000))]
    rates, offsets = [2e6, 8e6, 1e6], [0.0, 0.05, 0.02]
    got, arrival = upload_round(payloads, rates, offsets, timeout_s=20)
    assert got == payloads
    floor = np.array(offsets) + 8 * np.array([len(p) for p in payloads]) / np.array(rates)
    assert (arrival >= floor - 1e-3).all() and (arrival < floor + 1.0).all()


# -- the validator -------------------------------------------------------------------------------------------------
def test_validated_round_matches_its_prediction(calibration) -> None:  # type: ignore[no-untyped-def]
    problem = host_fl_round(small_round(), calibration)
    res = solve(problem, "fl-bisect")
    rep = validate_fl_round(problem, res.plan, calibration=calibration, test_samples=100)
    users = np.flatnonzero(res.plan.selected)
    assert [u.user for u in rep.users] == users.tolist() and rep.dilation >= 1.0
    assert rep.predicted_round_s == pytest.approx(res.fun)
    assert rep.measured_round_s == pytest.approx(max(u.measured_s for u in rep.users))
    for u in rep.users:
        assert u.sent_bits == u.planned_bits == calibration.payload_bits
        assert u.measured_upload_s >= u.predicted_upload_s - 2e-3  # paced: never faster than the planned rate
        assert u.slowdown >= 1.0 and np.isfinite(u.last_loss)
    q = problem.cycles_per_sample[users] / problem.cpu_hz[users]  # the fastest user is the calibrated host
    assert q.min() >= calibration.seconds_per_sample * (1 - 1e-12)
    assert np.allclose([u.slowdown for u in rep.users], rep.dilation * q / rep.calibration.seconds_per_sample)
    assert abs(rep.error) < 0.6, str(rep)
    text = str(rep)
    assert "within +-10%" in text and "FedAvg" in text and f"{rep.users[0].user:>5}" in text


def test_device_emulation_dilates_time_for_fast_devices(calibration) -> None:  # type: ignore[no-untyped-def]
    problem = small_round(cycles_per_sample=2e4)  # devices faster than this host
    res = solve(problem, "dagsa")
    rep = validate_fl_round(problem, res.plan, calibration=calibration, test_samples=50)
    q = problem.cycles_per_sample[0] / problem.cpu_hz[[u.user for u in rep.users]]
    assert rep.dilation == pytest.approx(rep.calibration.seconds_per_sample / q.min())
    assert np.allclose([u.slowdown for u in rep.users], rep.dilation * q / rep.calibration.seconds_per_sample)
    assert rep.payload_error == pytest.approx(calibration.payload_bits / problem.payload_bits - 1)
    assert rep.calibration is not calibration  # measured again just before training (recalibrate=True)
    fixed = validate_fl_round(problem, res.plan, calibration=calibration, test_samples=50, recalibrate=False)
    assert fixed.calibration is calibration
    with pytest.raises(ProblemDataError, match="`max_dilation` = 2"):
        validate_fl_round(problem, res.plan, calibration=calibration, max_dilation=2)


def test_validator_rejects_bad_input(calibration) -> None:  # type: ignore[no-untyped-def]
    problem = small_round()
    with pytest.raises(PlanError, match="breaks"):
        validate_fl_round(problem, FLSchedule.empty(problem.n_users), calibration=calibration)
    plan = solve(problem, "dagsa").plan
    with pytest.raises(ProblemDataError, match="calibration"):
        validate_fl_round(problem, plan, calibration=calibration, batch_size=16)
    with pytest.raises(ProblemDataError, match="expected an FLRound"):
        validate_fl_round(plan, problem)  # type: ignore[arg-type]
    with pytest.raises(ProblemDataError, match="`payload` = 'none'"):
        host_fl_round(problem, calibration, payload="none")


def test_an_energy_round_runs_at_its_planned_clocks(calibration) -> None:  # type: ignore[no-untyped-def]
    from edgeplan.formulations.fl.instances import fl_energy_instance

    problem = fl_energy_instance(12, 4, 3, seed=1, samples=(30, 60), local_epochs=1, deadline_s=0.5)
    res = solve(problem, "fl-energy")
    rep = validate_fl_round(problem, res.plan, calibration=calibration, test_samples=50)
    m = problem.evaluate(res.plan)
    users = np.flatnonzero(res.plan.selected)
    assert rep.predicted_round_s == pytest.approx(np.max(m.latency_s[users]))
    q = problem.cycles_per_sample[users] / res.plan.cpu_hz[users]
    assert np.allclose([u.slowdown for u in rep.users], rep.dilation * q / rep.calibration.seconds_per_sample)
    assert np.allclose([u.predicted_s for u in rep.users], m.latency_s[users])
    assert "planned clocks" in validators_for(problem)[0][0]
    assert rep.deadline_s == 0.5 and "round deadline 0.500 s" in str(rep)


def test_the_registry_knows_the_fl_validator() -> None:
    labels = [label for label, _ in validators_for(small_round())]
    assert labels and "FL round" in labels[0]
