"""FedAttn's and CoCoDC's schedules: the models by hand, the exact methods' claims, where the heuristics fall
short, bad input."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from contract.registry_cases import brute_force

import edgeplan as ep
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.sync import FragmentPlan, FragmentSync, KVSyncSchedule, SyncPlan
from edgeplan.formulations.sync.instances import fragment_sync_instance, kv_sync_instance


def hand_kv(**kw) -> KVSyncSchedule:
    """Two participants (2 and 1 tokens), three blocks, K/V 10 bytes per token."""
    base = dict(tokens=[2, 1], kv_bytes_per_token=[10.0, 10.0, 10.0],
                local_time_s=[[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]], global_time_s=[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]],
                uplink_bps=[10.0, 10.0], downlink_bps=[20.0, 20.0],
                error=[[1.0, 2.0, 3.0], [0.1, 0.2, 0.3], [0.01, 0.02, 0.03]], sync_latency_s=0.5)
    return KVSyncSchedule(**{**base, **kw})


def test_kv_latency_error_and_bytes_by_hand() -> None:
    p = hand_kv()
    # causal: participant 0 uploads 2 tokens (20 B at 10 B/s = 2 s), participant 1 downloads 2 (20 B at 20 = 1 s)
    np.testing.assert_allclose(p.comm_s(), [0.5 + 2.0 + 1.0] * 3)
    m = p.evaluate(SyncPlan([1]))
    # segment (-1, 1): max(1, 0.5) + 3.5; segment (1, end): max(g0 + l0, g1 + l1) = max(2, 2.5)
    assert m.latency_s == pytest.approx(1.0 + 3.5 + 2.5)
    assert m.error == pytest.approx(1.0 + 0.01)  # block 0 at gap 1, block 2 at gap 1 after the sync
    assert (m.bytes_up, m.bytes_down, m.n_syncs) == (20.0, 20.0, 1)
    none = p.evaluate(SyncPlan([]))
    assert none.latency_s == pytest.approx(3.0) and none.error == pytest.approx(1.0 + 0.2 + 0.03)
    enc = dataclasses.replace(p, causal=False).evaluate(SyncPlan([1]))
    assert (enc.bytes_up, enc.bytes_down) == (30.0, 30.0)


def test_segment_tables_sum_to_evaluate_on_random_plans() -> None:
    p = kv_sync_instance(9, 5, seed=3)
    w, e = p.segment_tables()
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = np.flatnonzero(rng.random(9) < 0.4)
        rows, cols = np.concatenate([[0], s + 1]), np.append(s, 9)
        m = p.evaluate(SyncPlan(s))
        assert w[rows, cols].sum() == pytest.approx(m.latency_s, rel=1e-12)
        assert e[rows, cols].sum() == pytest.approx(m.error, rel=1e-12, abs=1e-15)


def test_kv_dp_beats_fedattn_rules_where_they_fall_short() -> None:
    gaps = []
    for seed in range(6):
        p = kv_sync_instance(8, 3, seed=seed, budget_fraction=0.2)
        r = ep.solve(p, "kv-sync-dp")
        assert r.status is ep.Status.OPTIMAL and r.fun == pytest.approx(brute_force(p), rel=1e-9)
        for m in ("fedattn-uniform", "fedattn-deep"):
            h = ep.solve(p, m)
            assert h.fun >= r.fun * (1 - 1e-12)
            gaps.append(h.fun / r.fun - 1)
    assert max(gaps) > 0.01  # the rules are not optimal in general


def test_kv_dp_time_limit_returns_the_incumbent_with_a_valid_bound() -> None:
    p = kv_sync_instance(160, 32, seed=1, budget_fraction=0.05)
    t0 = time.perf_counter()
    r = ep.solve(p, "kv-sync-dp", time_limit=0.02)
    assert time.perf_counter() - t0 < 3.0
    assert r.has_plan and not p.check(r.plan)
    assert r.bound is not None and r.bound <= r.fun


def test_fragment_value_bytes_and_windows_by_hand() -> None:
    p = FragmentSync(sizes_bytes=[4.0, 6.0], value=[[1.0, 2.0], [3.0, 0.5], [0.2, 0.1]], wan_bps=[2.0, 2.0, 4.0],
                     window_s=[5.0, 3.0, 2.5], max_staleness=2)
    np.testing.assert_allclose(p.capacity_bytes, [10.0, 6.0, 10.0])
    plan = FragmentPlan([[0, 1], [], [1]])
    m = p.evaluate(plan)
    assert m.value == pytest.approx(3.1)
    np.testing.assert_allclose(m.bytes_per_slot, [10.0, 0.0, 6.0])
    np.testing.assert_allclose(m.transfer_s, [5.0, 0.0, 1.5])
    np.testing.assert_allclose(m.worst_window, [0.0, 1.0])  # fragment 0 is not sent in slots 1-2
    assert [v.name for v in p.check(plan)] == ["sends_per_window[0]"]
    assert ep.solve(p, "highs").fun == pytest.approx(brute_force(p))


def test_fragment_exact_methods_agree_and_cocodc_is_myopic() -> None:
    p = fragment_sync_instance(12, 8, seed=0)
    dp, milp = ep.solve(p, "fragment-dp"), ep.solve(p, "highs", options={"mip_rel_gap": 1e-9})
    assert dp.status is ep.Status.OPTIMAL and milp.fun == pytest.approx(dp.fun, rel=1e-7)
    assert ep.solve(p, "cocodc").fun <= dp.fun * (1 + 1e-12)
    misses = 0
    for seed in range(8):
        q = fragment_sync_instance(5, 6, seed=seed, max_staleness=3, capacity_fraction=0.4)
        exact, greedy = ep.solve(q, "highs"), ep.solve(q, "cocodc")
        misses += exact.has_plan and not greedy.has_plan
    assert misses >= 1  # greedy per slot ends without a plan where a staleness-feasible schedule exists


def test_fragment_dp_refuses_what_it_cannot_solve() -> None:
    p = fragment_sync_instance(4, 3, seed=0, max_staleness=2)
    assert "fragment-dp" not in ep.available_methods(p)
    q = dataclasses.replace(fragment_sync_instance(4, 3, seed=0), sizes_bytes=[1.5, 2.0, 3.0, 4.0])
    assert "fragment-dp" not in ep.available_methods(q)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("tokens", [1.5, 2], r"`tokens` = \[1.5, 2.0\]; expected whole token counts"),
    ("uplink_bps", [0.0, 1.0], r"`uplink_bps`\[0\] = 0.0; expected values > 0"),
    ("error", np.ones((2, 2)), r"`error` has shape \(2, 2\); expected shape \(3, 3\)"),
    ("error_budget", -1.0, r"`error_budget` = -1.0; expected a value >= 0"),
    ("causal", "yes", r"`causal` = 'yes'; expected true or false"),
])
def test_kv_bad_input_names_the_field(field: str, value: object, match: str) -> None:
    with pytest.raises(ProblemDataError, match=match):
        hand_kv(**{field: value})


def test_bad_plans_name_what_is_wrong() -> None:
    with pytest.raises(PlanError, match=r"expected blocks in 0..2"):
        hand_kv().evaluate(SyncPlan([3]))
    with pytest.raises(PlanError, match=r"has duplicates"):
        SyncPlan([1, 1])
    p = fragment_sync_instance(3, 2, seed=0)
    with pytest.raises(PlanError, match=r"`plan.slots` has 1 slots; expected 2"):
        p.evaluate(FragmentPlan([[0]]))
    with pytest.raises(PlanError, match=r"expected fragments in 0..2"):
        p.evaluate(FragmentPlan([[0], [5]]))
    with pytest.raises(ProblemDataError, match=r"`max_staleness` = 0; expected a whole number of slots >= 1"):
        dataclasses.replace(p, max_staleness=0)


def test_a_participant_without_tokens_exchanges_nothing() -> None:
    p = hand_kv(tokens=[2, 0, 1], local_time_s=np.ones((3, 3)), global_time_s=np.ones((3, 3)),
                uplink_bps=[10.0] * 3, downlink_bps=[20.0] * 3)
    up, down = p.exchanged_tokens()
    assert up.tolist() == [2.0, 0.0, 0.0] and down.tolist() == [0.0, 0.0, 2.0]


def test_plans_export_as_json_a_runtime_reads(tmp_path) -> None:
    import json

    from edgeplan.io.plans import export_plan

    p = hand_kv()
    (path,) = export_plan(p, SyncPlan([0, 2]), "sync-schedule", tmp_path)
    out = json.loads(path.read_text())
    assert out["blocks"] == [0, 2] and out["error_budget"] is None
    assert [q["tokens"] for q in out["participants"]] == [[0, 2], [2, 3]]
    assert out["participants"][1]["downloads"] == [0, 2] and not out["participants"][1]["uploads"]
    assert out["bytes_up"] == p.evaluate(SyncPlan([0, 2])).bytes_up
    f = fragment_sync_instance(4, 3, seed=0)
    r = ep.solve(f, "fragment-dp")
    (path,) = export_plan(f, r.plan, "sync-schedule", tmp_path)
    out = json.loads(path.read_text())
    assert [s["fragments"] for s in out["slots"]] == [list(s) for s in r.plan.slots]
    assert all(s["bytes"] <= s["capacity_bytes"] for s in out["slots"])


def test_generators_refuse_a_fractional_staleness() -> None:
    with pytest.raises(ProblemDataError, match=r"`max_staleness` = 2.5; expected a whole number"):
        fragment_sync_instance(3, 3, seed=0, max_staleness=2.5)


def test_dantzigs_bound_is_never_below_the_knapsack_optimum() -> None:
    from edgeplan.solvers.sync.fragment_dp import dantzig, knapsack

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 8))
        size = rng.integers(0, 6, n)
        value = np.where(rng.random(n) < 0.2, 0.0, rng.uniform(-1, 3, n))
        cap = int(rng.integers(0, 12))
        best = value[knapsack(value, size, cap)].sum()
        assert dantzig(value, size, cap) >= best - 1e-12, (value, size, cap)


def test_fragment_dp_at_its_time_limit_returns_the_slots_it_solved_and_a_bound() -> None:
    p = fragment_sync_instance(40, 12, seed=3)
    full = ep.solve(p, "fragment-dp")
    cut = ep.solve(p, "fragment-dp", time_limit=1e-9)
    assert cut.status == "feasible" and cut.limit == "time" and not p.check(cut.plan), cut
    assert cut.fun <= full.fun <= cut.bound, (cut, full)
