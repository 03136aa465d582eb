"""PipelinePartition: hand-derived figures, errors, PipeEdge files, exact methods against brute force."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from contract.registry_cases import brute_force

import edgeplan as ep
from edgeplan import PlanError, ProblemDataError, Status, UnsupportedProblemError
from edgeplan.formulations.partition import PipelinePartition, PipelinePlan, rate_matrix
from edgeplan.formulations.partition.instances import pipeedge_instance, random_pipeline_instance
from edgeplan.formulations.partition.pipeedge import plan_from_schedule, read_pipeedge, schedule_yaml, write_pipeedge
from edgeplan.io.plans import load_plan, save_plan
from edgeplan.profiles import ModelProfile, load_device
from partition.helpers import device, hand_pipeline

TIGHT = {"mip_rel_gap": 1e-9, "highs_options": {"mip_abs_gap": 0.0}}
PLAN = PipelinePlan([0, 2, 4], [0, 1])


def test_hand_inference_and_training_times() -> None:
    # F = (2, 4) ms, X = 1000 B * 8 / 8e6 = 1 ms, M = 3
    m = hand_pipeline().evaluate(PLAN)
    assert m.forward_s == pytest.approx([0.002, 0.004]) and m.link_s == pytest.approx([0.001])
    assert m.bottleneck_s == pytest.approx(0.004) and m.iteration_s == pytest.approx(0.002 + 0.001 + 0.004 + 2 * 0.004)
    assert m.throughput_per_s == pytest.approx(250.0) and m.time_source[1].startswith("measured (d1")
    # training, backward = 2 x forward (the chain's FLOP ratio): B = (4, 8) ms
    g = hand_pipeline(mode="training", minimize="iteration").evaluate(PLAN)
    assert g.iteration_s == pytest.approx((0.006 + 0.001 + 2 * 0.004) + (0.012 + 0.001 + 2 * 0.008))
    one = hand_pipeline(mode="training", schedule="1f1b", minimize="iteration").evaluate(PLAN)
    assert one.iteration_s == pytest.approx(0.018 + 2 * 0.001 + 2 * 0.012)
    assert g.bottleneck_s == pytest.approx(0.012)
    assert g.bubble_s == pytest.approx(2 * g.iteration_s - 3 * (0.006 + 0.012))


def test_memory_rules() -> None:
    p = hand_pipeline(mode="training", schedule="1f1b", n_micro=4, optimizer_bytes_per_param=16.0,
                      data_buffers=(1, 2))
    mem = p.evaluate(PLAN).memory_bytes
    # no parameters; stage 0: in 100 B x 1 + out 1000 B x 3 + acts 2000 B x min(4, 2) ; stage 1: in 1000 x 2 +
    # out 1000 x 3 + acts 2000 x min(4, 1)
    assert mem == pytest.approx([100 + 3000 + 4000, 2000 + 3000 + 2000])
    assert hand_pipeline().evaluate(PLAN).memory_bytes == pytest.approx([0.0, 0.0])     # weights only: none here
    capped = hand_pipeline(memory_cap_bytes=[1000.0, np.inf], data_buffers=(0, 0))   # stage 0: 100 + 1000 B
    assert [v.name for v in capped.check(PLAN)] == ["memory_bytes[stage 0 on device 0 'd0']"]


@pytest.mark.parametrize(("change", "match"), [
    ({"rates_bps": np.ones((3, 3))}, r"`rates_bps` has shape \(3, 3\); expected shape \(2, 2\)"),
    ({"rates_bps": np.zeros((2, 2))}, r"`rates_bps` has a zero rate between two devices"),
    ({"order": "any"}, r"`order` = 'any'; expected one of 'fixed', 'free'"),
    ({"minimize": "latency"}, r"`minimize` = 'latency'; expected one of 'bottleneck', 'iteration'"),
    ({"mode": "train"}, r"`mode` = 'train'; expected one of 'inference', 'training'"),
    ({"schedule": "zb"}, r"`schedule` = 'zb'; expected one of 'gpipe', '1f1b'"),
    ({"n_micro": 0}, r"`n_micro` = 0; expected an integer >= 1"),
    ({"data_buffers": (1,)}, r"`data_buffers` = \(1,\); expected None or two integers >= 0"),
    ({"devices": [device("x")] * 5, "rates_bps": np.ones((5, 5))},
     r"`devices` has 5 devices for 4 blocks; a fixed order uses every device"),
])
def test_problem_errors(change: dict, match: str) -> None:
    with pytest.raises(ProblemDataError, match=match):
        hand_pipeline(**change)


@pytest.mark.parametrize(("plan", "match"), [
    (PipelinePlan([0, 3, 2, 4], [0, 1, 1]), r"non-empty contiguous segments"),
    (PipelinePlan([0, 2, 5], [0, 1]), r"strictly increasing from 0 to 4"),
    (PipelinePlan([0, 2, 4], [0, 7]), r"`plan.devices`\[1\] = 7 is an unknown device; expected 0..1"),
    (PipelinePlan([0, 2, 4], [1, 1]), r"uses a device twice"),
    (PipelinePlan([0, 2, 4], [1, 0]), r"a fixed order uses all 2 devices in order \[0, 1\]"),
    (PipelinePlan([0, 4], [0]), r"a fixed order uses all 2 devices"),
])
def test_invalid_plans_are_rejected(plan: PipelinePlan, match: str) -> None:
    with pytest.raises(PlanError, match=match):
        hand_pipeline().evaluate(plan)


def test_plan_constructor_and_json_round_trip(tmp_path) -> None:
    with pytest.raises(PlanError, match="expected one more boundary than stages"):
        PipelinePlan([0, 4], [0, 1])
    p = random_pipeline_instance(8, 3, order="free", seed=2)
    r = ep.solve(p, "pipeline-dp")
    back = load_plan(save_plan(tmp_path / "p.json", p, r), p)
    assert back.plan == r.plan and back.result["method"] == "pipeline-dp"


def test_pipeedge_round_trip(tmp_path) -> None:
    q = pipeedge_instance(24, 3, 2, seed=1)
    paths = write_pipeedge(q, tmp_path)
    q2, hosts = read_pipeedge(*paths, q.model.name)
    assert q2.n_devices == 6 and all(s.startswith("measured") for s in q2.time_source)
    r1, r2 = ep.solve(q, "pipeline-dp"), ep.solve(q2, "pipeline-dp")
    assert r1.fun == pytest.approx(r2.fun, rel=1e-9)
    sched = schedule_yaml(r2.plan, hosts)
    assert plan_from_schedule(yaml.safe_load(yaml.safe_dump(sched)), hosts) == r2.plan
    with pytest.raises(PlanError, match="names the unknown host 'nowhere'"):
        plan_from_schedule([{"nowhere": [1, 24]}], hosts)
    with pytest.raises(ProblemDataError, match="missing key `other`"):
        read_pipeedge(*paths, "other")
    bad = PipelinePartition(q.model, q.devices[:3], rates_bps=np.array([[0, 1e9, 2e9], [1e9, 0, 3e9], [2e9, 3e9, 0]]))
    with pytest.raises(ProblemDataError, match="does not follow PipeEdge's rule"):
        write_pipeedge(bad, tmp_path / "bad")


# -- exact methods against brute force -----------------------------------------------------------------------------
VARIANTS = [("bottleneck", "inference", "gpipe"), ("bottleneck", "training", "1f1b"),
            ("iteration", "inference", "gpipe"), ("iteration", "training", "gpipe"), ("iteration", "training", "1f1b")]


@pytest.mark.parametrize("seed", range(24))
@pytest.mark.parametrize(("minimize", "mode", "schedule"), VARIANTS)
def test_exact_methods_equal_brute_force(seed: int, minimize: str, mode: str, schedule: str) -> None:
    """120 random tiny instances: chains and residual DAGs, fixed and free orders, memory caps."""
    order = "fixed" if seed % 2 else "free"
    p = random_pipeline_instance(5, 2 + seed % 2, order=order, minimize=minimize, mode=mode, schedule=schedule,
                                 n_micro=1 + seed % 4, memory=seed % 3 == 0, kind=("chain", "residual")[seed % 2],
                                 seed=seed)
    best = brute_force(p)
    free_1f1b_caps = order == "free" and schedule == "1f1b" and mode == "training" and np.isfinite(
        p.memory_cap_bytes).any()
    if not free_1f1b_caps:
        r = ep.solve(p, "highs", options=TIGHT)
        assert (best is None and r.status is Status.INFEASIBLE) or r.fun == pytest.approx(best, rel=1e-6)
    dp_ok = minimize == "bottleneck" or (order == "fixed" and not (mode == "training" and schedule == "gpipe"))
    if dp_ok:
        r = ep.solve(p, "pipeline-dp")
        assert (best is None and r.status is Status.INFEASIBLE) or (
            r.status is Status.OPTIMAL and r.fun == pytest.approx(best, rel=1e-9)), (best, r)


def test_identical_devices_form_classes() -> None:
    q = pipeedge_instance(16, 3, 2, seed=0)
    assert q.device_classes().tolist() == [0, 0, 1, 1, 2, 2] or len(set(q.device_classes().tolist())) == 3
    p = PipelinePartition(q.model, [device("a")] * 4, rates_bps=rate_matrix([1e9, 1e9, 2e9, 2e9]), order="free")
    assert len(set(p.device_classes().tolist())) == 2


def test_pipeline_dp_refusals_and_milp_refusal() -> None:
    p = random_pipeline_instance(5, 3, order="free", minimize="iteration", seed=0)
    with pytest.raises(UnsupportedProblemError, match="'pipeline-dp' cannot take a PipelinePartition with iteration "
                       "time with a free device order; it minimizes iteration time only with a fixed"):
        ep.solve(p, "pipeline-dp")
    q = random_pipeline_instance(5, 3, order="free", mode="training", schedule="1f1b", memory=True, seed=0)
    with pytest.raises(UnsupportedProblemError, match="1F1B's position-dependent in-flight activations"):
        q.to_milp()


def test_cp_sat_takes_the_integral_pipeline_milp() -> None:
    p = hand_pipeline(minimize="iteration")       # best: blocks 0-2 on d0 (3 ms), 3 on d1 (2 ms): 3+1+2 + 2 x 3 ms
    milp, decode = p.to_milp(time_quantum_s=1e-3)
    r = ep.solve(milp, "cp-sat")
    assert r.status is Status.OPTIMAL and p.objective(decode(r.plan)) == pytest.approx(0.012)
    assert decode(r.plan) == PipelinePlan([0, 3, 4], [0, 1])
    assert ep.solve(p, "pipeline-dp").fun == pytest.approx(0.012)


def test_pipeline_dp_at_scale_matches_highs_on_a_fixed_chain() -> None:
    p = random_pipeline_instance(60, 5, order="fixed", memory=True, seed=11)
    dp, milp = ep.solve(p, "pipeline-dp"), ep.solve(p, "highs", options=TIGHT)
    assert dp.status is Status.OPTIMAL and dp.fun == pytest.approx(milp.fun, rel=1e-6)


def test_pipeedge_export_names_the_dtype_the_plan_counts(tmp_path) -> None:
    """An fp16 plan counts 2-byte elements: its device_types.yml says torch.float16 (it said torch.float32), and
    reading the files back with that dtype gives the same optimum."""
    q = dataclasses.replace(pipeedge_instance(8, 2, 1, seed=1), dtype="fp16")
    paths = write_pipeedge(q, tmp_path)
    types = yaml.safe_load(paths[1].read_text())
    assert {p["dtype"] for t in types.values() for p in t["model_profiles"][q.model.name]} == {"torch.float16"}
    models = yaml.safe_load(paths[0].read_text())[q.model.name]
    assert models["parameters_in"] == round(q.data()["boundary"][0] / q.micro_batch / 2)
    q2, _ = read_pipeedge(*paths, q.model.name, dtype="torch.float16")
    assert ep.solve(q2, "pipeline-dp").fun == pytest.approx(ep.solve(q, "pipeline-dp").fun, rel=1e-9)
    with pytest.raises(ProblemDataError, match=r"`dtype` = 'int8'; PipeEdge's profiles name torch dtypes"):
        write_pipeedge(dataclasses.replace(q, dtype="int8"), tmp_path / "int8")


def test_raw_input_crosses_interior_cuts_at_its_own_precision() -> None:
    """Block 2 reads the network input: the cuts after blocks 0 and 1 carry it, at its own 1000 bytes whatever the
    compute dtype (activations halve at fp16: 500 -> 250 bytes)."""
    m = ModelProfile(name="skip-input", block_names=("a", "b", "c"), block_kinds=("other",) * 3,
                     fwd_flops=np.ones(3), bwd_flops=np.ones(3), num_params=np.zeros(3, dtype=np.int64),
                     out_bytes=np.full(3, 500.0), edges=np.array([[0, 1], [1, 2]]), edge_bytes=np.full(2, 500.0),
                     input_bytes=1000.0, input_consumers=np.array([0, 2]))
    devs = [dataclasses.replace(load_device("jetson-orin-nx-16gb"), name=f"d{i}") for i in range(2)]
    for dtype, act in (("fp32", 500.0), ("fp16", 250.0)):
        beta = PipelinePartition(m, devs, rates_bps=rate_matrix([1e9, 1e9]), dtype=dtype).data()["boundary"]
        assert beta.tolist() == [1000.0, act + 1000.0, act + 1000.0, act], dtype
