"""The speculative-serving step: validation, a hand-computed evaluation, and the heuristics' behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import edgeplan
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.serving import ServingPlan, SpeculativeServing
from edgeplan.formulations.serving.instances import speculative_step_instance
from edgeplan.formulations.serving.step import expected_tokens


def _step(**kw) -> SpeculativeServing:
    base = dict(domain=[0, 1], context_tokens=[10.0, 20.0], acceptance=[[0.5, 0.0], [0.0, 0.8]],
                draft_capacity=[1, 2], draft_base_s=[0.01, 0.02], draft_per_request_s=[0.001, 0.002],
                verify_s=[0.1, 0.01, 0.001, 0.0001], hop_s=0.005, token_value_s=0.2, latency_weight=2.0)
    return SpeculativeServing(**{**base, **kw})


def test_evaluate_by_hand() -> None:
    p = _step()
    plan = ServingPlan([(0,), (0, 1)], [2, 1])
    m = p.evaluate(plan)
    # round 1: drafter 0 drafts 2 requests (0.01 + 2*0.001), drafter 1 one (0.02 + 0.002): max 0.022 + hop
    # round 2: drafter 0 drafts request 0 only: 0.011 + hop
    assert m.round_s == pytest.approx([0.027, 0.016])
    tokens = (1 + 2) + (1 + 1 * 2)
    assert m.tokens == tokens
    verify = 0.1 + 0.01 * 2 + 0.001 * tokens + 0.0001 * 30
    assert m.step_s == pytest.approx(0.043 + verify)
    a1 = 1 - (1 - 0.0) * (1 - 0.8)  # request 1, domain 1, drafters {0, 1}
    assert m.acceptance == pytest.approx([0.5, a1])
    assert m.expected_tokens == pytest.approx([1 + 0.5 + 0.25, 1 + a1])  # k = 1: the tree's first position
    # a tree of drafters {0, 1} for request 1 (domain 1, acceptance 0.4 and 0.8), k = 3: drafter 1 is tried first
    # and lands with 0.8, drafter 0 with 0.4 * 0.2; the walk then follows the chain that landed
    q = _step(acceptance=[[0.5, 0.4], [0.0, 0.8]], max_drafters=2)
    assert q.try_order(1, (0, 1)) == (1, 0)
    tree = 1 + 0.8 * (1 + 0.8 + 0.64) + 0.08 * (1 + 0.4 + 0.16)
    assert q.evaluate(ServingPlan([None, (0, 1)], [0, 3])).expected_tokens[1] == pytest.approx(tree)
    assert tree < float(expected_tokens(1 - 0.2 * 0.6, 3))  # below the fused rate at every position
    assert m.cost == pytest.approx(2.0 * m.step_s - 0.2 * m.expected_tokens.sum())
    assert [v.name for v in p.check(plan)] == ["drafter_load[0]", "drafters_per_request[1]"]


def test_expected_tokens_at_the_edges() -> None:
    assert expected_tokens([0.0, 1.0, 0.5], [3, 3, 0]).tolist() == [1.0, 4.0, 1.0]


@pytest.mark.parametrize(("kw", "match"), [
    ({"acceptance": [[1.5, 0.0], [0.0, 0.8]]}, "`acceptance`"),
    ({"domain": [0, 2]}, "`domain`"),
    ({"draft_capacity": [1.5, 2]}, "`draft_capacity`"),
    ({"verify_s": [0.1, 0.01]}, "`verify_s` has shape"),
    ({"max_speculation": -1}, "`max_speculation` = -1"),
    ({"max_drafters": 0}, "`max_drafters` = 0"),
    ({"urgent": [1, 0]}, "`urgent`"),
    ({"hop_s": -1.0}, "`hop_s`"),
])
def test_bad_data_is_named(kw: dict, match: str) -> None:
    with pytest.raises(ProblemDataError, match=match):
        _step(**kw)


@pytest.mark.parametrize(("routes", "lengths", "match"), [
    ([(0,), None], [0, 0], r"`routes\[0\]` = \[0\] with `lengths\[0\]` = 0"),
    ([(), None], [2, 0], r"`lengths\[0\]` = 2 but request 0 has no drafter"),
    ([(0, 0), None], [1, 0], "distinct"),
    ([(), None], [0.5, 0], "whole numbers"),
])
def test_bad_plans_are_named(routes, lengths, match) -> None:
    with pytest.raises(PlanError, match=match):
        ServingPlan(routes, lengths)
    p = _step()
    with pytest.raises(PlanError, match=r"expected drafters in 0\.\.1"):
        p.evaluate(ServingPlan([(5,), None], [1, 0]))


def test_plans_round_trip_through_json() -> None:
    plan = ServingPlan([(1,), None, ()], [3, 0, 0])
    back = ServingPlan.from_dict(plan.to_dict())
    assert back.routes == plan.routes and back.lengths.tolist() == [3, 0, 0]


def test_heuristics_keep_every_cap_and_never_beat_the_exact_step() -> None:
    for seed in range(4):
        p = speculative_step_instance(24, 4, 3, seed=seed, max_speculation=4, max_verify_tokens=60,
                                      urgent_fraction=0.1)
        exact = edgeplan.solve(p, "step-milp", time_limit=60)
        assert exact.status == "optimal"
        for m in ("cosine", "autoregressive", "single-drafter", "random-routing", "fcfs-fixed"):
            r = edgeplan.solve(p, m, seed=seed)
            assert r.has_plan and not p.check(r.plan), (m, r)
            assert r.fun >= exact.fun - 1e-9 * abs(exact.fun), (m, r.fun, exact.fun)


def test_cosine_routes_to_the_specialists_and_shortens_to_the_token_cap() -> None:
    p = speculative_step_instance(16, 4, 4, seed=3, max_speculation=6, max_verify_tokens=40, urgent_fraction=0.0)
    r = edgeplan.solve(p, "cosine")
    m = p.evaluate(r.plan)
    assert m.tokens <= 40
    for rq, s in enumerate(r.plan.routes):
        if s:  # its drafter is the specialist of its domain unless the specialist is full
            best = int(np.argmax(p.acceptance[:, p.domain[rq]]))
            assert s == (best,) or m.load[best] >= p.draft_capacity[best]
    ar = edgeplan.solve(p, "autoregressive")
    assert r.fun < ar.fun  # speculation pays on this step


def test_plans_export_as_json_a_hub_reads(tmp_path) -> None:
    import json

    from edgeplan.io.plans import export_plan

    p = speculative_step_instance(12, 3, 3, seed=2, max_speculation=4)
    r = edgeplan.solve(p, "cosine")
    (path,) = export_plan(p, r.plan, "serving-step", tmp_path)
    out = json.loads(path.read_text())
    m = p.evaluate(r.plan)
    assert [q["batched"] for q in out["requests"]] == [s is not None for s in r.plan.routes]
    assert [q["speculation"] for q in out["requests"]] == r.plan.lengths.tolist()
    assert out["step_s"] == pytest.approx(m.step_s) and out["verify_tokens"] == m.tokens
    for d in out["drafters"]:
        assert len(d["requests"]) == m.load[d["drafter"]]


def test_cp_sat_cross_checks_the_exact_step_on_grid_data() -> None:
    """CP-SAT needs integer coefficients: on steps whose times, acceptance, weights and caps sit on decimal grids it
    solves the same MILP (round times on a 1e-4 s grid) and reaches step-milp's optimum on every one."""
    import dataclasses

    for seed in range(12):
        p = speculative_step_instance(3, 2, 2, seed=seed, max_speculation=2, urgent_fraction=0.3)
        q = dataclasses.replace(
            p, acceptance=np.round(p.acceptance * 20) / 20, draft_base_s=np.round(p.draft_base_s, 4),
            draft_per_request_s=np.round(p.draft_per_request_s, 4), verify_s=np.round(p.verify_s, 4),
            weight=np.round(p.weight * 2) / 2, token_value_s=round(p.token_value_s, 2), hop_s=0.001,
            context_tokens=np.round(p.context_tokens / 100) * 100, verifier_memory_bytes=float("inf"),
            max_verify_tokens=float([4, 5, 8, np.inf][seed % 4]))
        exact = edgeplan.solve(q, "step-milp")
        cp = edgeplan.solve(q, "cp-sat", options={"continuous_quantum": 1e-4, "scale_digits": 9})
        assert exact.status == "optimal" and cp.has_plan and not q.check(cp.plan)
        assert cp.fun == pytest.approx(exact.fun, rel=1e-9, abs=1e-12), (seed, cp, exact)


def test_the_simulator_progresses_when_a_step_is_worth_nothing() -> None:
    """With a token worth nothing, every step costs time and the exact step batches nobody; the simulator then
    makes the oldest request urgent instead of stopping its clock."""
    import dataclasses

    from edgeplan.experiments.serving_sim import Stream, simulate

    tpl = dataclasses.replace(speculative_step_instance(1, 2, 2, seed=0, max_speculation=2, urgent_fraction=0.0),
                              token_value_s=0.0)
    s = Stream.poisson(5, 2.0, 2, prompt=16, output=3, seed=0)
    r = simulate(tpl, s, "step-milp")
    assert r.tokens == 15 and np.all(np.isfinite(r.latency_s)) and np.all(r.latency_s > 0)
    sim = simulate(speculative_step_instance(1, 2, 2, seed=0, urgent_fraction=0.0), s, "cosine")
    assert sim.tokens == 15 and sim.steps == len(sim.step_s) == len(sim.tokens_per_step)


def test_the_simulators_draws_follow_the_tree_model() -> None:
    """Mean accepted drafts over 40,000 draws equal E_S(k) - 1 within 4 standard errors, for trees of 1-3 chains."""
    import dataclasses

    from edgeplan.experiments.serving_sim import _accepted_drafts

    p = _step(domain=[1, 1, 1, 1], context_tokens=[10.0] * 4, acceptance=[[0.5, 0.4], [0.0, 0.8], [0.3, 0.3]],
              draft_capacity=[9, 9, 9], draft_base_s=[0.01] * 3, draft_per_request_s=[0.001] * 3, max_drafters=3)
    plan = ServingPlan([(1,), (0, 1), (0, 1, 2), ()], [4, 3, 5, 0])
    n = 40_000
    u = np.random.default_rng(0).random((n * 4, 5))
    tiled = ServingPlan(list(plan.routes) * n, np.tile(plan.lengths, n))
    big = dataclasses.replace(p, domain=[1] * (4 * n), context_tokens=[10.0] * (4 * n), weight=None, urgent=None)
    got = _accepted_drafts(big, tiled, u).reshape(n, 4)
    want = p.evaluate(plan).expected_tokens - 1.0
    se = got.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(got.mean(axis=0) - want) <= 4 * se + 1e-12)
    assert got[:, 3].max() == 0 and np.all(got <= plan.lengths)
