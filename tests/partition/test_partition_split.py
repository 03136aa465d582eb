"""SplitInference: hand-derived figures, errors, and every exact method against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from contract.registry_cases import brute_force
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgeplan as ep
from edgeplan import PlanError, ProblemDataError, Status, UnsupportedProblemError
from edgeplan.formulations.partition import SplitInference, SplitPlan, wireless_link
from edgeplan.formulations.partition.instances import random_profile, random_split_instance, split_instance
from edgeplan.io.plans import load_plan, save_plan
from edgeplan.profiles import WiredLink, WirelessChannel
from partition.helpers import device, hand_split

TIGHT = {"mip_rel_gap": 1e-9, "highs_options": {"mip_abs_gap": 0.0}}


def agree(value: float | None, result: ep.Result, rtol: float = 1e-6) -> bool:
    if value is None:
        return result.status is Status.INFEASIBLE
    return result.has_plan and abs(result.fun - value) <= rtol * max(1.0, abs(value))


# -- the model by hand -----------------------------------------------------------------------------------------
def test_hand_split_latency_period_bubble_energy() -> None:
    p = hand_split()
    # cut after k blocks: device sum + bytes / 1e5 B/s + 5 ms (if anything is remote) + cloud sum
    want = {0: 0.020 + 0.005 + 0.006, 1: 0.010 + 0.010 + 0.005 + 0.005, 2: 0.030 + 0.005 + 0.005 + 0.003, 3: 0.060}
    for k, lat in want.items():
        m = p.evaluate(SplitPlan.from_cuts([k], 3))
        assert m.latency_s == pytest.approx(lat, rel=1e-12), k
    m = p.evaluate(SplitPlan.from_cuts([1], 3))
    assert m.period_s == pytest.approx(0.010) and m.bubble_s == pytest.approx(3 * 0.010 - 0.025)
    assert m.link_bytes[0] == 1000 and m.link_used[0] and m.time_source[0].startswith("measured (dev")
    dev = p.tiers[0]
    dyn = dev.power.kappa * dev.clock_max_hz**3
    assert m.energy_j == pytest.approx(dev.power.idle_w * 0.030 + dyn * 0.010 + dev.max_tx_power_w * 0.010)
    assert ep.solve(p, "split-enum").fun == pytest.approx(0.030)
    assert p.evaluate(SplitPlan.from_cuts([3], 3)).period_s == pytest.approx(0.060)   # one stage in use


def test_hand_quantized_cut_costs() -> None:
    p = hand_split(bit_widths=(8,), min_bits=8, quant_bandwidth_bytes_per_s=[1e6, 1e7])
    m = p.evaluate(SplitPlan.from_cuts([1], 3, bits=[[8, 0, 0]]))
    # 250 B at 1e5 B/s; quantize 1000 B x (1 + 8/32) / 1e6 on the device, dequantize / 1e7 in the cloud
    assert m.link_time_s[0] == pytest.approx(0.0025)
    assert m.quant_time_s == pytest.approx([0.00125, 0.000125])
    assert m.latency_s == pytest.approx(0.010 + 0.00125 + 0.0025 + 0.005 + 0.005 + 0.000125)
    low = hand_split(bit_widths=(4, 8), min_bits=8)
    bad = low.check(SplitPlan.from_cuts([1], 3, bits=[[4, 0, 0]]))
    assert [v.name for v in bad] == ["bits[link 0, block 0] (min_bits of 'block0')"]


def test_memory_and_latency_caps_are_violations() -> None:
    p = hand_split(memory_cap_bytes=[1500.0, np.inf], max_latency_s=0.025)
    names = {v.name for v in p.check(SplitPlan.from_cuts([1], 3))}
    assert names == {"memory_bytes[tier 0]", "latency_s"}
    assert p.check(SplitPlan.from_cuts([0], 3)) == [v for v in p.check(SplitPlan.from_cuts([0], 3))
                                                     if v.name == "latency_s"]


def test_wireless_link_rate_matches_channel() -> None:
    ch = WirelessChannel("ch", bandwidth_hz=20e6, fading="none", shadowing_std_db=0.0)
    link = wireless_link("up", ch, bandwidth_hz=10e6, power_w=0.2, gain=1e-10)
    assert link.rate_bps == pytest.approx(float(ch.rate_bps(10e6, 0.2, 1e-10)))
    with pytest.raises(ProblemDataError, match="give exactly one of `gain` and `distance_m`"):
        wireless_link("up", ch, bandwidth_hz=1e6, power_w=0.1)


# -- errors ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "match"), [
    ({"tiers": [device("a")]}, r"`tiers` has 1 devices; expected 2\.\.3"),
    ({"tiers": "jetson"}, r"`tiers` is a str; expected a sequence of DeviceProfile"),
    ({"links": []}, r"`links` has 0 entries; expected 1 WiredLink"),
    ({"links": WiredLink("x", 1e6)}, r"`links` is a WiredLink; expected a sequence of 1 WiredLink"),
    ({"minimize": "speed"}, r"`minimize` = 'speed'; expected one of 'latency', 'energy', 'throughput'"),
    ({"batch_size": 0}, r"`batch_size` = 0; expected an integer >= 1"),
    ({"bit_widths": (8, 32)}, r"`bit_widths` = \[8, 32\]; expected integers in \[1, 31\]"),
    ({"min_bits": [1.5, 2, 3]}, r"`min_bits` = .*expected integers >= 1"),
    ({"memory_cap_bytes": [1.0, -1.0]}, r"`memory_cap_bytes`\[1\] = -1.0; expected values >= 0"),
    ({"max_latency_s": -1.0}, r"`max_latency_s` = -1.0; expected a value >= 0"),
    ({"model": "resnet"}, r"`model` = 'resnet': `name` = 'resnet' is neither a file nor a preset"),
    ({"use_measured": 1}, r"`use_measured` = 1; expected True or False"),
])
def test_problem_errors(change: dict, match: str) -> None:
    with pytest.raises(ProblemDataError, match=match):
        hand_split(**change)


@pytest.mark.parametrize(("plan", "match"), [
    (SplitPlan([0, 0]), r"`plan.tier` has 2 entries; expected 3"),
    (SplitPlan([0, 2, 1]), r"`plan.tier`\[1\] = 2 is not a tier; expected 0..1"),
    (SplitPlan([1, 0, 0]), r"not ancestor-closed: block 0 \('block0'\) on tier 1 feeds block 1"),
    (SplitPlan([0, 1, 1], bits=[[3, 0, 0]]), r"`plan.bits`\[0, 0\] = 3 is not a transmission width"),
    (SplitPlan([0, 1, 1], bits=[[0, 0, 0], [0, 0, 0]]), r"`plan.bits` has shape \(2, 3\); expected \(1, 3\)"),
    ("0,1,1", r"`plan` is a str; expected a SplitPlan"),
])
def test_invalid_plans_are_rejected(plan, match: str) -> None:
    with pytest.raises(PlanError, match=match):
        hand_split().evaluate(plan)


def test_plan_constructor_errors() -> None:
    with pytest.raises(PlanError, match=r"`tier` = \[0.5\]; expected integer tier indices"):
        SplitPlan([0.5])
    with pytest.raises(PlanError, match=r"`cuts` = \[2, 1\]; expected non-decreasing positions in \[0, 3\]"):
        SplitPlan.from_cuts([2, 1], 3)
    with pytest.raises(PlanError, match=r"split plan mapping has unknown keys \['x'\]"):
        SplitPlan.from_dict({"tier": [0], "x": 1})


def test_method_refusals_name_alternatives() -> None:
    dag = random_split_instance(5, kind="dag", seed=1)
    with pytest.raises(UnsupportedProblemError, match="'split-enum' cannot take a SplitInference with a DAG model; "
                                                      "use 'dads'"):
        ep.solve(dag, "split-enum")
    with pytest.raises(UnsupportedProblemError, match="'dads' cannot take a SplitInference with the throughput "
                                                      "objective; it solves unconstrained latency/energy splits"):
        ep.solve(random_split_instance(5, minimize="throughput", seed=1), "dads")


def test_plan_json_round_trip(tmp_path) -> None:
    p = random_split_instance(6, 3, bits=True, seed=4)
    r = ep.solve(p, "highs")
    path = save_plan(tmp_path / "plan.json", p, r, source={"family": "partition-split",
                                                           "params": {"n_blocks": 6, "n_tiers": 3, "bits": True},
                                                           "seed": 4})
    back = load_plan(path, p)
    assert np.array_equal(back.plan.tier, r.plan.tier) and p.objective(back.plan) == pytest.approx(r.fun)
    assert back.result["status"] == "optimal" and back.rebuild_problem().n_blocks == 6
    other = random_split_instance(6, 3, bits=True, seed=5)
    with pytest.raises(PlanError, match="`problem_fingerprint` does not match"):
        load_plan(path, other)


def test_split_instance_from_presets_uses_flops() -> None:
    p = split_instance(random_profile(4, seed=0), ("jetson-nano", "edge-server-t4", "cloud-a100"), [20e6, 1e9])
    assert all(s.startswith("flops") for s in p.time_source) and p.n_tiers == 3
    assert (p.block_time_s[0] > p.block_time_s[2]).all()          # the Jetson Nano is slower than an A100


# -- exact methods against brute force -----------------------------------------------------------------------------
CASES = [(seed, minimize) for seed in range(48) for minimize in ("latency", "energy", "throughput")]


@pytest.mark.parametrize(("seed", "minimize"), CASES)
def test_exact_methods_equal_brute_force(seed: int, minimize: str) -> None:
    """144 random tiny instances: chains and DAGs, 2-3 tiers, with/without widths, memory and latency caps."""
    kind = ("chain", "residual", "dag")[seed % 3]
    tiers, bits = 2 + seed % 2, seed % 4 < 2
    p = random_split_instance(3 if tiers == 3 and bits else 4, tiers, kind=kind, minimize=minimize, bits=bits,
                              memory=seed % 5 < 2, max_latency=seed % 7 == 0, seed=seed)
    best = brute_force(p)
    methods = ["highs"]
    if kind == "chain":
        methods.append("split-enum")
    if minimize != "throughput" and not np.isfinite(p.memory_cap_bytes).any() and p.max_latency_s is None:
        methods.append("dads")
    for m in methods:
        r = ep.solve(p, m, options=TIGHT if m == "highs" else None)
        assert agree(best, r, 1e-5 if m == "highs" else 1e-9), (m, best, r)
        if m != "highs" and best is not None:
            assert r.status is Status.OPTIMAL and r.bound == pytest.approx(r.fun, rel=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.sampled_from(["latency", "energy"]), st.integers(2, 3))
def test_dads_equals_brute_force_on_dags(seed: int, minimize: str, tiers: int) -> None:
    p = random_split_instance(5 if tiers == 2 else 4, tiers, kind="dag", minimize=minimize, bits=tiers == 2,
                              seed=seed)
    assert agree(brute_force(p), ep.solve(p, "dads"), 1e-9)


def test_cp_sat_takes_the_integral_milp() -> None:
    """Times in whole milliseconds, rates in round numbers: the scaled model is exact for CP-SAT."""
    p = hand_split(minimize="throughput")
    milp, decode = p.to_milp(time_quantum_s=1e-3)
    assert milp.integrality.all()
    r = ep.solve(milp, "cp-sat", options={"scale_digits": 9})
    assert r.status is Status.OPTIMAL
    assert p.objective(decode(r.plan)) == pytest.approx(ep.solve(p, "split-enum").fun)


def test_dads_scales_to_a_residual_dag() -> None:
    prof = random_profile(120, kind="residual", seed=3)
    p = SplitInference(prof, [device("a"), device("b"), device("c")],
                       [WiredLink("x", 5e7, 1e-3), WiredLink("y", 1e9, 1e-3)], minimize="energy")
    r = ep.solve(p, "dads")
    h = ep.solve(p, "highs", options=TIGHT)
    assert r.status is Status.OPTIMAL and r.fun == pytest.approx(h.fun, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 160))
def test_exact_methods_equal_brute_force_larger(seed: int) -> None:
    """Five blocks, three tiers, widths and caps: the slow sweep (``make test-all``)."""
    kind = ("chain", "residual", "dag")[seed % 3]
    for minimize in ("latency", "energy", "throughput"):
        p = random_split_instance(5, 3, kind=kind, minimize=minimize, bits=seed % 2 == 0, memory=seed % 3 == 0,
                                  max_latency=seed % 4 == 0, seed=seed)
        best = brute_force(p)
        assert agree(best, ep.solve(p, "highs", options=TIGHT), 1e-5)
        if kind == "chain":
            assert agree(best, ep.solve(p, "split-enum"), 1e-9)
