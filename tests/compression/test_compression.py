"""The compression family's own checks: codec bytes against the byte model, the recovery rule, bad input, the
two exact upload methods against each other, and a short trained run against its plans."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeplan import ProblemDataError, Status, solve
from edgeplan.formulations.compression import CompressionChoice, RatioPlan, UploadRatios
from edgeplan.formulations.compression.instances import caesar_round_instance, upload_ratios_instance
from edgeplan.formulations.compression.wire import download_bytes, topk_error_profile, upload_bytes
from edgeplan.validation.compression.codecs import (
    caesar_decode,
    caesar_encode,
    decode_state,
    deviation,
    encode_state,
    topk_decode,
    topk_encode,
)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 10, 100, 4099])
@pytest.mark.parametrize("theta", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_payloads_have_the_modelled_length_and_the_profile_deviation(n: int, theta: float) -> None:
    x = torch.randn(n, generator=torch.Generator().manual_seed(n)) ** 3  # heavy tails
    up, down = topk_encode(x, theta), caesar_encode(x, theta)
    assert len(up) == upload_bytes(theta, [n])
    assert len(down) == download_bytes(theta, [n])
    assert deviation(x, topk_decode(up, x.shape, theta)) == pytest.approx(
        topk_error_profile(x.numpy(), [theta])[0], rel=1e-5, abs=1e-12)


def test_a_model_state_round_trips_with_exact_bytes() -> None:
    from edgeplan.validation.fltask import FMNISTCNN

    state = FMNISTCNN().state_dict()
    sizes = [v.numel() for v in state.values() if v.is_floating_point()]
    for theta in (0.0, 0.3, 0.9):
        for codec, model in (("upload", upload_bytes), ("download", download_bytes)):
            pay = encode_state(state, theta, codec)
            assert sum(map(len, pay.values())) == model(theta, sizes)
            back = decode_state(pay, state, theta, codec)
            assert set(back) == set(state)
            if theta == 0.0:
                assert all(torch.equal(back[k], state[k]) for k in state)


def test_the_recovery_rule_keeps_agreeing_stale_values() -> None:
    w = torch.tensor([5.0, -4.0, 0.3, -0.2, 0.1, -0.05])
    local = torch.tensor([0.0, 0.0, 0.25, 0.9, -0.1, -0.04])
    got = caesar_decode(caesar_encode(w, 0.5), local, 0.5)
    # q = 3 compressed: -0.2, 0.1, -0.05 (mean magnitude 0.1167, largest 0.2); kept: 5, -4, 0.3
    assert got[:3].tolist() == pytest.approx([5.0, -4.0, 0.3])
    mean = (0.2 + 0.1 + 0.05) / 3
    # -0.2: stale 0.9 has the wrong sign -> -mean; 0.1: stale -0.1 wrong sign -> +mean; -0.05: stale -0.04 agrees
    assert got[3:].tolist() == pytest.approx([-mean, mean, -0.04], rel=1e-6)


def test_bad_data_names_the_field() -> None:
    p = upload_ratios_instance(n_devices=3, seed=0, n_grid=3)
    err = np.array(p.error, dtype=float)
    err[1, 2] = err[1, 1]  # flat then rising: not convex
    with pytest.raises(ProblemDataError, match=r"`error`\[1\] .* not nondecreasing and convex"):
        UploadRatios(value_bytes=p.value_bytes, importance=p.importance, grid=p.grid, error=err, budget=p.budget)
    with pytest.raises(ProblemDataError, match=r"`grid`"):
        UploadRatios(value_bytes=p.value_bytes, importance=p.importance, grid=[0.0, 0.5, 1.0], error=p.error,
                     budget=p.budget)
    with pytest.raises(ProblemDataError, match=r"`goal`"):
        caesar_round_instance(n_devices=2, goal="energy")


def test_waterfilling_and_cvxpy_agree_and_meet_the_dual_bound() -> None:
    p = upload_ratios_instance(n_devices=60, seed=3, budget=0.03)
    w, c = solve(p, "upload-waterfill"), solve(p, "upload-cvxpy")
    assert w.status is Status.OPTIMAL and c.status is Status.OPTIMAL
    assert c.fun == pytest.approx(w.fun, rel=1e-7)
    assert p.evaluate(w.plan).deviation == pytest.approx(p.budget, rel=1e-9)  # the budget binds
    # more budget never costs bytes; a zero-importance device is compressed fully
    more = solve(UploadRatios(value_bytes=p.value_bytes, importance=p.importance, grid=p.grid, error=p.error,
                              budget=2 * p.budget), "upload-waterfill")
    assert more.fun <= w.fun
    imp = np.array(p.importance)
    imp[0] = 0.0
    z = solve(UploadRatios(value_bytes=p.value_bytes, importance=imp, grid=p.grid, error=p.error, budget=p.budget),
              "upload-waterfill")
    assert z.plan.theta[0] == pytest.approx(p.grid[-1])
    assert isinstance(z.plan, RatioPlan)


def test_a_short_trained_run_puts_the_planned_bytes_and_deviations_on_the_wire() -> None:
    from edgeplan.experiments.caesar_run import run_caesar

    run = run_caesar("compression-milp", n_devices=6, rounds=4, participation=0.5, budget=0.02)
    assert len(run.rounds) == 4
    for r in run.rounds:
        assert r.bytes == r.predicted_bytes
        assert r.upload_deviation.shape == r.predicted_upload.shape == r.forecast_upload.shape == (3,)
        # shared reference and re-planned uploads: the plan's deviations are the executed ones
        assert np.allclose(r.download_deviation, r.predicted_download, rtol=1e-5, atol=1e-9)
        assert np.allclose(r.upload_deviation, r.predicted_upload, rtol=1e-5, atol=1e-9)
        assert np.all(r.download_deviation <= 0.05 + 1e-6)
        assert r.weighted_upload[0] <= 0.02 * r.importance.sum() * (1 + 1e-5)
    assert any(r.plan.up.max() > 0 for r in run.rounds)  # the budget let something be compressed
    assert np.all(np.isfinite(run.accuracy))
    assert run.traffic[-1] == sum(r.bytes for r in run.rounds)


def test_the_local_reference_recovers_against_the_trained_model() -> None:
    from edgeplan.experiments.caesar_run import run_caesar

    run = run_caesar("caesar", n_devices=4, rounds=5, participation=0.5, replan=False, reference="local")
    stale = [r for r in run.rounds[2:] if np.any(r.predicted_download > 0)]
    assert stale and all(r.bytes == r.predicted_bytes for r in run.rounds)
    # the server's proxy misses the part of the update never sent
    assert not np.allclose(np.concatenate([r.download_deviation for r in stale]),
                           np.concatenate([r.predicted_download for r in stale]), rtol=1e-3)
    with pytest.raises(ProblemDataError, match="reference"):
        run_caesar(reference="server")


def test_the_upload_problem_keeps_downloads_batches_and_the_round() -> None:
    p = caesar_round_instance(n_devices=6, seed=3)
    plan = solve(p, "compression-milp").plan
    up = p.upload_problem(plan, np.asarray(p.upload_error) * 0.5)
    same = CompressionChoice(plan.down, plan.up, np.ones(6, int))  # batches are folded into the compute
    assert up.check(same) == [] and up.objective(same) == pytest.approx(p.objective(plan))
    again = solve(up, "compression-milp")
    assert again.status is Status.OPTIMAL
    assert np.array_equal(again.plan.down, plan.down)
    assert up.evaluate(again.plan).round_s <= p.evaluate(plan).round_s * (1 + 1e-9)
    assert again.fun <= p.objective(plan) + 1e-9  # half the deviation: never more bytes


def test_the_batch_problem_of_a_plan_times_the_same_round() -> None:
    p = caesar_round_instance(n_devices=6, seed=2)
    plan = solve(p, "compression-milp").plan
    b = p.batch_problem(plan)
    from edgeplan.formulations.compression import BatchPlan

    same = b.evaluate(BatchPlan(plan.batch))
    assert same.round_s == pytest.approx(p.evaluate(plan).round_s)
    best = solve(b, "batch-sweep")
    assert best.status is Status.OPTIMAL and best.fun >= b.objective(BatchPlan(plan.batch)) - 1e-12


def test_the_validator_encodes_every_payload_as_planned() -> None:
    from edgeplan.validation.compression.execute import validate_compression

    p = caesar_round_instance(n_devices=3, seed=1, levels=(0.0, 0.5, 0.9), min_batch=1, max_batch=4)
    plan = solve(p, "compression-milp").plan
    rep = validate_compression(p, plan)
    assert rep.exact and rep.measured_bytes.shape == (3, 2)
    assert np.allclose(rep.upload_deviation, rep.profile_deviation, atol=1e-6)
    assert "every payload as planned: True" in str(rep)
