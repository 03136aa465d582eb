"""The fine-tuning round and expert selection: the model by hand, candidate tables, HFedMoE's functions, and the
exact methods against each other on instances too large to enumerate."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgeplan import PlanError, ProblemDataError, Status, solve
from edgeplan.formulations.finetune import (
    ExpertPlan,
    FineTunePlan,
    FineTuneRound,
    expert_importance,
    gating_weights,
    sparsity_aware_expert_average,
    transformer_layer_costs,
)
from edgeplan.formulations.finetune.instances import experts_instance, fedbe_instance, finetune_instance

NAN = float("nan")


def _two_devices(**kw) -> FineTuneRound:
    return FineTuneRound(step_time_s=[[1.0, 2.0], [0.5, NAN]], memory_bytes=[[10, 20], [5, 0]],
                         upload_bytes=[[100, 200], [50, 0]], utility=[[0.2, 0.6], [0.3, 0]],
                         memory_cap_bytes=[20, 5], uplink_bps=[100.0, 10.0], local_steps=[2, 4],
                         weights=[1.0, 2.0], server_time_s=0.5, **kw)


def test_the_round_by_hand() -> None:
    p = _two_devices(server_bandwidth_bps=50.0)
    m = p.evaluate(FineTunePlan([1, 0]))
    # device 0: 2 steps x 2 s + 200 B / 100 B/s = 6 s; device 1: 4 x 0.5 + 50 / 10 = 7 s; ingress 250 / 50 = 5 s
    np.testing.assert_allclose(m.device_time_s, [6.0, 7.0])
    assert m.ingress_time_s == 5.0 and m.round_time_s == 7.5
    assert m.utility == pytest.approx(0.6 + 2 * 0.3)
    assert m.objective == pytest.approx(1.2 / 7.5)
    np.testing.assert_allclose(m.idle_s, [1.0, 0.0])
    assert not p.check(FineTunePlan([1, 0]))
    slow = dataclasses.replace(p, server_bandwidth_bps=10.0)
    assert slow.evaluate(FineTunePlan([1, 0])).round_time_s == 25.5  # the server's ingress is the bottleneck


def test_check_names_the_broken_rows() -> None:
    p = _two_devices(utility_floor=2.0, coverage=[[[1, 0], [1, 1]], [[0, 1], [0, 0]]], min_coverage=[1, 3])
    names = {v.name for v in p.check(FineTunePlan([1, 0]))}
    assert names == {"utility", "block[1].devices"}
    tight = dataclasses.replace(p, memory_cap_bytes=[15, 5], utility_floor=-np.inf, coverage=None)
    assert [v.name for v in tight.check(FineTunePlan([1, 0]))] == ["device[0].memory_bytes"]


def test_bad_data_and_plans_are_named() -> None:
    with pytest.raises(ProblemDataError, match=r"`utility`\[0, 1\] = -1.0"):
        _two_devices().__class__(step_time_s=[[1.0, 1.0]], memory_bytes=[[0, 0]], upload_bytes=[[0, 0]],
                                 utility=[[0.0, -1.0]])
    with pytest.raises(ProblemDataError, match="`step_time_s`"):
        FineTuneRound(step_time_s=[[np.inf]], memory_bytes=[[0]], upload_bytes=[[0]], utility=[[0]])
    with pytest.raises(ProblemDataError, match=r"`server_time_s` = 0\.0"):
        _two_devices().__class__(step_time_s=[[1.0]], memory_bytes=[[0]], upload_bytes=[[0]], utility=[[0]],
                                 server_time_s=0.0)
    with pytest.raises(ProblemDataError, match="`config_fields`"):
        FineTuneRound(step_time_s=[[1.0]], memory_bytes=[[0]], upload_bytes=[[0]], utility=[[0]],
                      config=[[[1, 2]]], config_fields=("lora_depth",))
    p = _two_devices()
    with pytest.raises(PlanError, match="not a candidate of device 1"):
        p.evaluate(FineTunePlan([0, 1]))
    with pytest.raises(PlanError, match="one per device"):
        p.evaluate(FineTunePlan([0]))


def test_fedquad_table_follows_the_model() -> None:
    c = transformer_layer_costs(4, 64, 32, 2, 4, 4, 100)
    t = c.fedquad_table((8, 4))
    cfg = t["config"]
    assert cfg.shape == (4 + 2 * 10, 3)
    full = (cfg[:, 0] == 4) & (cfg[:, 1] == 0)
    assert t["memory_bytes"][full][0] == pytest.approx(c.frozen_bytes + c.workspace_bytes
                                                       + 16 * c.lora_params.sum() + c.activation_bytes.sum())
    assert t["upload_bytes"][full][0] == pytest.approx(2 * c.lora_params.sum())
    for d in range(1, 5):  # more quantized layers: less memory, more time; 4 bits below 8 bits
        for b in (8, 4):
            sel = (cfg[:, 0] == d) & (cfg[:, 2] == b)
            assert np.all(np.diff(t["memory_bytes"][sel]) < 0) and np.all(np.diff(t["flops"][sel]) > 0)
        q8 = t["memory_bytes"][(cfg[:, 0] == d) & (cfg[:, 2] == 8)]
        q4 = t["memory_bytes"][(cfg[:, 0] == d) & (cfg[:, 2] == 4)]
        assert np.all(q4 < q8)
    plain = cfg[:, 1] == 0
    assert np.all(np.diff(t["utility"][plain]) > 0)  # deeper LoRA, more progress


def test_hfedmoe_importance_and_aggregation_by_hand() -> None:
    g = np.array([[0.5, 0.5, 0.0], [0.9, 0.1, 0.0]])
    imp = expert_importance(g, lam=0.5, beta=0.0)
    np.testing.assert_allclose(imp, [0.5 * 0.7 + 0.5 * 0.9, 0.5 * 0.3 + 0.5 * 0.5, 0.0])
    kl = expert_importance(g, lam=1.0, beta=1.0)
    p0 = 0.7
    expected0 = 0.7 - (0.5 * np.log(0.5 / p0) + 0.9 * np.log(0.9 / p0)) / 2
    assert kl[0] == pytest.approx(expected0)
    params = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    usage = np.array([[0.5, 0.0, 0.1], [0.5, 0.3, 0.0]])
    avg = sparsity_aware_expert_average(params, usage, [1.0, 3.0], tau=0.2)
    np.testing.assert_allclose(avg[0], 0.25 * params[0, 0] + 0.75 * params[1, 0])
    np.testing.assert_allclose(avg[1], params[1, 1])  # only client 1 uses expert 1 enough
    np.testing.assert_allclose(avg[2], 0.25 * params[0, 2] + 0.75 * params[1, 2])  # nobody: data-weighted
    w = gating_weights(usage, np.ones_like(usage), tau=0.2)
    assert w.sum() == pytest.approx(1.0) and w[1] > w[0]


@pytest.mark.parametrize("seed", range(4))
def test_the_sweep_and_the_milp_agree_beyond_enumeration(seed: int) -> None:
    for goal, frac in (("rate", 0.0), ("time", 0.8)):
        p = finetune_instance(20, 6, seed=seed, goal=goal, utility_floor_fraction=frac)
        a, b = solve(p, "finetune-sweep"), solve(p, "finetune-milp", time_limit=60)
        assert a.status is Status.OPTIMAL and b.status is Status.OPTIMAL, (a, b)
        assert b.fun == pytest.approx(a.fun, rel=2e-6)
        for m in ("fedquad", "no-quant", "uniform-depth", "full-depth", "random-config"):
            r = solve(p, m, seed=seed)
            if r.has_plan:
                assert (r.fun <= a.fun * (1 + 1e-9)) if goal == "rate" else (r.fun >= a.fun * (1 - 1e-9)), m


@pytest.mark.parametrize("seed", range(3))
def test_coupled_rounds_milp_beats_or_meets_every_heuristic(seed: int) -> None:
    p = fedbe_instance(12, 4, seed=seed, min_coverage=2)
    best = solve(p, "finetune-milp", time_limit=60)
    assert best.status is Status.OPTIMAL, best
    for m in ("fedbe", "fedquad", "random-config"):
        r = solve(p, m, seed=seed)
        if r.has_plan:
            assert r.fun <= best.fun * (1 + 2e-6), (m, r, best)
    shared = finetune_instance(10, 4, seed=seed, server_bandwidth_bps=2e4)
    r = solve(shared, "finetune-milp", time_limit=60)
    assert r.status is Status.OPTIMAL, r
    assert r.fun >= solve(shared, "fedquad").fun * (1 - 1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_expert_dp_equals_the_milp_on_forty_experts(seed: int) -> None:
    p = experts_instance(40, 16, seed=seed, max_experts=6 if seed % 2 else 0)
    a, b = solve(p, "expert-dp"), solve(p, "highs")
    assert a.status is Status.OPTIMAL and b.status is Status.OPTIMAL
    assert a.fun == pytest.approx(b.fun, rel=1e-9)
    for m in ("hfedmoe", "router-topk"):
        assert solve(p, m).fun <= a.fun + 1e-12
    with pytest.raises(PlanError):
        p.evaluate(ExpertPlan([40]))


def test_a_limit_shorter_than_one_sweep_is_not_started() -> None:
    p = finetune_instance(100, 24, seed=0)  # 60,000 (device, candidate) pairs: an estimated 12 ms
    r = solve(p, "finetune-sweep", time_limit=1e-9)
    assert r.status == Status.NO_SOLUTION and r.limit == "time" and "sweep" in r.message, r
    assert solve(p, "finetune-sweep").status == Status.OPTIMAL
