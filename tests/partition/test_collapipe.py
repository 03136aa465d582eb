"""CollaPipe: the slot model by hand, the exact slot solver against enumeration, the controller and its bounds."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from contract.registry_cases import brute_force

from edgeplan import PlanError, ProblemDataError, Status, solve
from edgeplan.formulations.partition.collapipe import CollaPipeHorizon, CollaPipePlan, CollaPipeSlot
from edgeplan.formulations.partition.collapipe_instances import (
    collapipe_horizon,
    collapipe_slot,
    read_trace,
    write_trace,
)
from edgeplan.solvers.lyapunov import drift_plus_penalty
from edgeplan.solvers.partition.collapipe_offline import master_lp, offline_bound, schedule_milp
from edgeplan.solvers.partition.dssra import plans_to_json, run_policy
from partition.helpers import collapipe_plans

N0 = 1e-3


def hand_slot(**kw) -> CollaPipeSlot:
    """Two devices, two blocks of 1 GFLOP per sample; 1000 B crossing the cut; 2 units of 1 Hz each, gain 3."""
    args = dict(block_flops=[1e9, 1e9], block_params=[10.0, 20.0], block_act_bytes=[100.0, 200.0],
                hidden_bytes=1000.0, batch_size=4, device_flops=[1e9, 2e9], device_memory=[1e9, 1e9],
                energy_per_flop=[1e-9, 2e-9], gains=[3.0], power_cap_w=[1.0, 1.0], bandwidth_hz=2.0, n_units=2,
                power_levels_w=[0.001, 0.002], noise_w_per_hz=N0, micro_batches=(1, 2))
    args.update(kw)
    return CollaPipeSlot(**args)


def test_a_plan_by_hand() -> None:
    p = hand_slot(latency_weight=2.0, energy_weights=[1.0, 0.5], local_iters=3, upload_s=0.25)
    plan = CollaPipePlan((1, 1), 2, (2,), (0,))
    e = p.evaluate(plan)
    b = 2  # samples per micro-batch
    comp = np.array([3e9 * b / 1e9, 3e9 * b / 2e9])  # (1 + rho) W b / f
    rate = 2.0 * math.log2(1 + 0.001 * 3.0 / (N0 * 2.0))  # 2 Hz, SNR 1.5
    link = 2 * b * 8000 / rate
    it = comp.sum() + link + (2 - 1) * max(comp.max(), link)
    assert np.allclose(e.compute_s, comp) and math.isclose(e.link_s[0], link)
    assert math.isclose(e.iteration_s, it) and math.isclose(e.round_s, 3 * it + 0.25)
    tx = 0.001 * 4 * 8000 / rate
    energy = 3 * (np.array([1e-9, 2e-9]) * 4 * 3e9 + tx)
    assert np.allclose(e.energy_j, energy)
    assert np.allclose(e.memory_bytes, [16 * 10 + 2 * b * 100, 16 * 20 + 1 * b * 200])  # 1F1B: min(M, K - k)
    assert math.isclose(e.objective, 2.0 * e.round_s + energy @ [1.0, 0.5])
    gp = hand_slot(schedule="gpipe").evaluate(plan)
    assert np.allclose(gp.memory_bytes, [16 * 10 + 2 * b * 100, 16 * 20 + 2 * b * 200])


def test_caps_power_and_malformed_plans() -> None:
    p = hand_slot(device_memory=[16 * 10 + 400, 1e9], power_cap_w=[0.0015, 1.0])
    assert not p.check(CollaPipePlan((1, 1), 2, (2,), (0,)))  # memory binds exactly
    assert [v.name for v in p.check(CollaPipePlan((1, 1), 2, (2,), (1,)))] == ["power[0]"]
    assert [v.name for v in p.check(CollaPipePlan((1, 1), 1, (3,), (0,)))] == ["bandwidth units"]
    for bad, field in [(CollaPipePlan((2, 0), 1, (1,), (0,)), "segments"), (CollaPipePlan((1, 1), 4, (1,), (0,)),
                       "micro_batches"), (CollaPipePlan((1, 1), 1, (0,), (0,)), "units"),
                       (CollaPipePlan((1, 1), 1, (1,), (2,)), "power")]:
        with pytest.raises(PlanError, match=field):
            p.evaluate(bad)


def test_bad_data_names_the_field() -> None:
    with pytest.raises(ProblemDataError, match="device_flops"):
        hand_slot(device_flops=[1e9, 0.0])
    with pytest.raises(ProblemDataError, match="micro_batches"):
        hand_slot(micro_batches=(3,))
    with pytest.raises(ProblemDataError, match="power_levels_w"):
        hand_slot(power_levels_w=[0.2, 0.1])
    with pytest.raises(ProblemDataError, match="device_flops"):
        hand_slot(device_flops=[1e9, 1e9, 1e9])  # 3 devices, 2 blocks


TINY = ({"n_devices": 2, "n_blocks": 3, "batch_size": 4, "n_units": 3, "levels": 2},
        {"n_devices": 3, "n_blocks": 4, "batch_size": 4, "n_units": 4, "levels": 2, "schedule": "gpipe"},
        {"n_devices": 3, "n_blocks": 4, "batch_size": 2, "n_units": 3, "levels": 2, "energy": True},
        {"n_devices": 2, "n_blocks": 4, "batch_size": 4, "n_units": 2, "levels": 3, "energy": True,
         "local_iters": 2})


@pytest.mark.parametrize("start", range(0, 200, 50))
def test_the_exact_slot_equals_enumeration_on_200_tiny_slots(start: int) -> None:
    for seed in range(start, start + 50):
        p = collapipe_slot(**TINY[seed % len(TINY)], seed=seed)
        best = brute_force(p)
        r = solve(p, "collapipe-exact")
        assert r.status is Status.OPTIMAL and math.isclose(r.fun, best, rel_tol=1e-9), (seed, r, best)
        h = solve(p, "equal-pipeline")
        assert h.fun >= best * (1 - 1e-12)


def test_a_time_limit_returns_the_best_plan_with_a_bound() -> None:
    p = collapipe_slot(12, 48, energy=True, seed=3)
    r = solve(p, "collapipe-exact", time_limit=0.05)
    assert r.status in (Status.OPTIMAL, Status.FEASIBLE) and r.bound <= r.fun * (1 + 1e-12)
    full = solve(p, "collapipe-exact")
    assert full.status is Status.OPTIMAL and r.bound <= full.fun * (1 + 1e-9) and r.fun >= full.fun * (1 - 1e-9)


def test_drift_plus_penalty_keeps_a_budget_on_a_toy() -> None:
    # two actions: fast (penalty 1, cost 2) and slow (penalty 3, cost 0); budget 1 => half the time each
    def decide(_, V, Q):
        fast, slow = V * 1 + Q[0] * 2, V * 3
        return ("fast", 1.0, [2.0]) if fast <= slow else ("slow", 3.0, [0.0])

    for V in (1.0, 10.0, 100.0):
        run = drift_plus_penalty(range(2000), decide, [1.0], V)
        assert run.average_costs[0] <= 1.0 + run.backlog[-1, 0] / 2000 + 1e-12
        assert abs(run.average_penalty - 2.0) < 0.01 + 2 * V / 2000
    with pytest.raises(ProblemDataError, match="tighten"):
        drift_plus_penalty(range(3), decide, [1.0], 1.0, tighten=1.5)


@pytest.fixture(scope="module")
def horizon() -> CollaPipeHorizon:
    return collapipe_horizon(500, 3, 6, n_units=8, batch_size=8, seed=1)


def test_dssra_keeps_every_budget_over_500_slots_and_trades_latency_for_backlog(horizon) -> None:
    low, high = run_policy(horizon, "dssra", 10.0), run_policy(horizon, "dssra", 1000.0)
    assert np.all(low.excess <= 0), low.excess
    myopic = run_policy(horizon, "myopic")
    assert np.any(myopic.excess > 0)  # the budgets bind
    assert high.average_penalty < low.average_penalty
    assert high.average_backlog.sum() > 10 * low.average_backlog.sum()
    assert myopic.average_penalty <= high.average_penalty * (1 + 1e-9)  # latency-optimal per slot
    doc = plans_to_json(horizon, low)
    assert len(doc["slots"]) == 500 and doc["slots"][0]["segments"][0][0] == 0
    assert doc["slots"][0]["segments"][-1][1] == horizon.slot.n_blocks
    json.dumps(doc)


def test_offline_milp_over_every_plan_is_the_brute_force_optimum() -> None:
    slot = collapipe_slot(**TINY[0], seed=1)
    rng = np.random.default_rng(0)
    gains = slot.gains[None, :] * rng.uniform(0.3, 3.0, size=(2, 1))
    free = CollaPipeHorizon(slot, gains, np.full(2, np.inf))
    every = [[q for q in collapipe_plans(free.at(t)) if not free.at(t).check(q)] for t in range(2)]
    use = np.array([[free.at(t).evaluate(q).energy_j for q in every[t]] for t in range(2)], dtype=object)
    budget = 0.5 * (np.min([e for e in use[0]], axis=0) + np.max([e for e in use[0]], axis=0))
    h = CollaPipeHorizon(slot, gains, budget)
    best = math.inf
    for a, b in itertools.product(range(len(every[0])), range(len(every[1]))):
        e0, e1 = h.at(0).evaluate(every[0][a]), h.at(1).evaluate(every[1][b])
        if np.all((e0.energy_j + e1.energy_j) / 2 <= budget * (1 + 1e-9)):
            best = min(best, (e0.round_s + e1.round_s) / 2)
    value, _ = schedule_milp(h, every)
    assert math.isclose(value, best, rel_tol=1e-9)
    ob = offline_bound(h, iterations=15)
    assert ob.lower <= best * (1 + 1e-9) and (ob.upper is None or ob.upper >= best * (1 - 1e-9))
    # column generation reaches the LP relaxation over every plan (the best bound of its kind)
    full = [{q: (h.at(t).evaluate(q).round_s, h.at(t).evaluate(q).energy_j) for q in every[t]} for t in range(2)]
    relaxed, _, _ = master_lp(h, full, penalty=1e6)
    assert math.isclose(ob.lower, relaxed, rel_tol=1e-7)
    if ob.upper is not None:
        assert ob.upper == pytest.approx(np.mean([h.at(t).evaluate(q).round_s for t, q in enumerate(ob.plans)]))


def test_offline_budgets_no_schedule_meets_have_a_bound_and_no_schedule() -> None:
    slot = collapipe_slot(**TINY[0], seed=2)
    free = CollaPipeHorizon(slot, np.vstack([slot.gains, slot.gains * 2]), np.full(2, np.inf))
    least = np.min([free.at(0).evaluate(q).energy_j for q in collapipe_plans(free.at(0))
                    if not free.at(0).check(q)], axis=0)
    h = CollaPipeHorizon(slot, free.gains, 0.5 * least)  # below what any plan spends on device 0 and 1
    ob = offline_bound(h, iterations=10)
    assert ob.upper is None and ob.plans is None and math.isinf(ob.gap)
    assert math.isfinite(ob.lower) and ob.lower > 0


def test_a_channel_trace_round_trips_and_bad_traces_are_named(tmp_path) -> None:
    g = np.array([[1e-9, 2e-9], [3e-9, 4e-10]])
    path = tmp_path / "trace.csv"
    write_trace(path, g)
    assert np.array_equal(read_trace(path, 2), g)
    h = collapipe_horizon(n_devices=3, n_blocks=6, trace=str(path))
    assert h.n_slots == 2 and np.array_equal(h.gains, g)
    path.write_text("slot,g0\n0,1e-9\n")
    with pytest.raises(ProblemDataError, match="header"):
        read_trace(path, 2)
    path.write_text("slot,g0\n0,-1\n")
    with pytest.raises(ProblemDataError, match="row 1"):
        read_trace(path, 1)


def test_the_1f1b_replay_by_hand() -> None:
    from edgeplan.validation.partition.collapipe import one_f_one_b, replay

    assert one_f_one_b(0, 3, 4) == [("F", 0), ("F", 1), ("F", 2), ("B", 0), ("F", 3), ("B", 1), ("B", 2), ("B", 3)]
    assert one_f_one_b(2, 3, 2) == [("F", 0), ("B", 0), ("F", 1), ("B", 1)]
    unit = {(op, m): 1.0 for op in "FB" for m in range(2)}
    assert replay([unit], [], 2) == 4.0
    # two stages, F = B = 1: stage 1 runs F0 B0 F1 B1 from t = 1; stage 0's B1 ends at 6
    assert replay([unit, unit], [0.0], 2) == 6.0
    # a 0.5 s half-duplex link: stage 1 runs F0 1.5-2.5, B0 2.5-3.5 (gradient at stage 0 at 4.0), F1 3.5-4.5,
    # B1 4.5-5.5 (gradient at 6.0); stage 0 runs B0 4-5 and B1 6-7
    assert replay([unit, unit], [0.5], 2) == 7.0


@pytest.mark.slow  # four processes that import torch and transformers: ~20 s of CPU (`make test-all`)
def test_a_slot_plan_runs_on_a_real_encoder_decoder() -> None:
    from edgeplan.validation.partition.collapipe import ModelSpec, execute_slot_plan

    p = collapipe_slot(2, 2, batch_size=4, seed=0)
    plan = CollaPipePlan((1, 1), 2, (8,), (1,))
    run = execute_slot_plan(p, plan, ModelSpec(2, d_model=32, heads=2, seq_len=8, vocab=64), iterations=2,
                            timeout_s=120)
    assert [r["stage"] for r in run.rows] == ["device 0", "device 1", "edge"]
    for r in run.rows:
        assert r["bytes_sent"] == r["bytes_planned"] == 8 * 32 * 4 * 2  # seq x d x fp32 x 2 samples
        assert r["compute_meas_s"] > 0 and r["memory_meas_bytes"] >= 0
    assert run.measured_s > 0 and run.predicted_s > 0 and run.replayed_s > 0 and run.fresh_predicted_s > 0
    assert run.wall_s > 0 and all(r["compute_pred_s"] > 0 for r in run.rows)
    assert run.replay_error == pytest.approx(run.measured_s / run.replayed_s - 1)


def test_the_executor_names_a_bad_remeasure_count() -> None:
    from edgeplan.validation.partition.collapipe import ModelSpec, execute_slot_plan

    p = collapipe_slot(2, 2, batch_size=4, seed=0)
    with pytest.raises(ProblemDataError, match="`remeasure` = -1"):
        execute_slot_plan(p, CollaPipePlan((1, 1), 2, (8,), (1,)), ModelSpec(2), remeasure=-1)


def test_split_learning_takes_the_fastest_cut_that_fits_by_hand() -> None:
    p = collapipe_slot(2, 3, batch_size=4, seed=3, memory=False)
    f_edge, rate = 2e12, 5e7
    B, rho = p.batch_size, p.backward_ratio

    def by_hand(c: int) -> tuple[float, float, float]:
        dev = (1 + rho) * B * float(p.block_flops[:c].sum())
        edge = (1 + rho) * B * float(p.block_flops[c:].sum())
        hop = 8 * B * p.hidden_bytes / rate
        mem = 16 * float(p.block_params[:c].sum()) + B * float(p.block_act_bytes[:c].sum())
        energy = p.energy_per_flop[0] * dev + p.power_cap_w[0] * hop
        return dev / p.device_flops[0] + 2 * hop + edge / f_edge, energy, mem

    rows = [by_hand(c) for c in (1, 2, 3)]
    sl = p.split_learning(0, f_edge, rate)
    best = min(range(3), key=lambda i: rows[i][0])
    assert sl["cut"] == best + 1 and sl["fits"] == 1.0
    assert sl["round_s"] == pytest.approx(rows[best][0]) and sl["energy_j"] == pytest.approx(rows[best][1])
    # a memory cap that admits only the first block: the cut is 1 whatever its latency
    capped = dataclasses.replace(p, device_memory=np.array([rows[0][2], np.inf]))
    one = capped.split_learning(0, f_edge, rate)
    assert one["cut"] == 1 and one["memory_bytes"] == pytest.approx(rows[0][2])
    none = dataclasses.replace(p, device_memory=np.array([rows[0][2] * 0.5, np.inf])).split_learning(0, f_edge, rate)
    assert none["fits"] == 0.0
    with pytest.raises(ProblemDataError, match="edge_flops"):
        p.split_learning(0, 0.0, rate)
