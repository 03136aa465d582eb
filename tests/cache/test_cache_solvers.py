"""Cache methods: exact ones equal brute force, heuristics and baselines give plans that pass ``check``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from contract.registry_cases import check_heuristics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgeplan as ep
from edgeplan import ProblemDataError, Status
from edgeplan.formulations.cache.instances import random_cache_problem, random_replay_problem
from edgeplan.formulations.cache.placement import TIGHT_HIGHS, CachePlacement
from edgeplan.formulations.cache.replay import CacheReplay
from edgeplan.solvers.cache.cache_dp import SEARCH_TOL, pareto_mask

HEURISTICS = ("aca", "no-cache", "all-layers", "static-topk", "multi-exit")


def brute_force(p) -> float | None:
    """The optimum by enumerating every (k, layer subset) of every client (clients are independent)."""
    n, L, C = p.n_clients, p.n_layers, p.n_classes
    cap = p.layer_cap()
    best = []
    for i in range(n):
        cands = [(k, A) for k in range(C + 1) for m in range(cap + 1) for A in itertools.combinations(range(L), m)]
        top = None
        for k, A in cands:
            counts, layers = [0] * n, [()] * n
            counts[i], layers[i] = k, A
            m = p.evaluate(p.plan(counts, layers))
            fl, slo = p.accuracy_floor[i], p.latency_slo_s[i]
            ok = (m.accuracy[i] >= fl - SEARCH_TOL * max(1, abs(fl))
                  and (m.latency_s[i] <= slo * (1 + SEARCH_TOL) if np.isfinite(slo) else True)
                  and m.entries[i] <= p.max_entries[i] and m.memory_bytes[i] <= p.max_memory_bytes[i] * (1 + 1e-12))
            if not ok:
                continue
            v = m.latency_s[i] if p.goal == "latency" else m.accuracy[i]
            if top is None or (v < top[0] if p.goal == "latency" else v > top[0]):
                top = (v, k, A)
        if top is None:
            return None
        best.append(top)
    return p.objective(p.plan([b[1] for b in best], [b[2] for b in best]))


def _placement(seed: int) -> CachePlacement:
    rng = np.random.default_rng(seed)
    return random_cache_problem(
        2, 5, 4, seed=seed, goal=str(rng.choice(["latency", "accuracy"])),
        accuracy_drop=float(rng.choice([0.0, 0.01, 0.05, 1.0])), entry_budget=float(rng.choice([4, 8, 100])),
        memory_budget_bytes=float(rng.choice([np.inf, 3000.0])), max_layers=[None, 1, 2][seed % 3],
        latency_slo_fraction=float(rng.choice([np.inf, 0.9, 0.97])))


def _replay(seed: int) -> CacheReplay:
    rng = np.random.default_rng(seed)
    rule = ["coca", "exit"][seed % 2]
    kw = {"threshold": float(rng.choice([0.3, 0.5])), "temperature": 0.1} if rule == "exit" else \
        {"threshold": float(rng.choice([0.02, 0.1]))}
    goal = str(rng.choice(["latency", "accuracy"]))
    extra = {"latency_slo_s": float(rng.uniform(0.003, 0.01))} if goal == "accuracy" else {}
    return random_replay_problem(2, 5, 4, requests=40, seed=seed, rule=rule, noise=float(rng.choice([0.5, 1.5])),
                                 accuracy_drop=float(rng.choice([0.0, 0.05, 0.2])), goal=goal,
                                 max_layers=[None, 2][seed % 2 if seed % 3 else 1], **kw, **extra)


def _assert_exact(r, bf) -> None:
    if bf is None:
        assert r.status is Status.INFEASIBLE, r
    else:
        assert r.status is Status.OPTIMAL and r.fun == pytest.approx(bf, rel=1e-9, abs=1e-12), (r, bf)
        assert r.bound == r.fun


@pytest.mark.parametrize("seed", range(12))
def test_cache_dp_equals_brute_force(seed: int) -> None:
    p = _placement(seed)
    _assert_exact(ep.solve(p, "cache-dp"), brute_force(p))


@pytest.mark.parametrize("seed", [0, 3, 5, 8])
def test_milp_reduction_equals_brute_force(seed: int) -> None:
    p = _placement(seed)
    r = ep.solve(p, "highs")
    bf = brute_force(p)
    if bf is None:
        assert r.status is Status.INFEASIBLE
    else:
        assert r.status is Status.OPTIMAL and r.fun == pytest.approx(bf, rel=1e-3)  # HiGHS' mip_rel_gap
        assert r.stats["reduction"] == "to_milp"


@pytest.mark.parametrize("seed", range(10))
def test_cache_replay_equals_brute_force(seed: int) -> None:
    q = _replay(seed)
    _assert_exact(ep.solve(q, "cache-replay"), brute_force(q))


@pytest.mark.parametrize(("size", "seed", "kw"), [((2, 7, 6), 11, {"max_layers": 3, "memory_budget_bytes": 20_000}),
                                                  ((2, 8, 8), 2, {})])
def test_dp_and_milp_agree_on_a_larger_instance(size, seed, kw) -> None:
    p = random_cache_problem(*size, seed=seed, **kw)
    a, b = ep.solve(p, "cache-dp"), ep.solve(p, "highs", options=TIGHT_HIGHS)
    assert a.status is b.status is Status.OPTIMAL and a.fun == pytest.approx(b.fun, rel=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_heuristic_plans_are_checked_and_not_better_than_exact(seed: int) -> None:
    for p, exact in ((random_cache_problem(3, 6, 8, seed=seed), "cache-dp"),
                     (random_replay_problem(2, 5, 6, requests=50, seed=seed, noise=1.2), "cache-replay")):
        opt = ep.solve(p, exact)
        check_heuristics(p, HEURISTICS, opt.fun if opt.has_plan else None, rtol=1e-9)
        r = ep.solve(p, "aca")
        assert r.status is Status.FEASIBLE and p.check(r.plan) == [], r  # greedy ACA keeps the floor
        for m in HEURISTICS:  # a baseline that breaks the floor: no_solution, its plan kept aside
            r = ep.solve(p, m)
            if "rejected_plan" in r.stats:
                assert r.status is Status.NO_SOLUTION and "plan breaks" in r.message
                assert p.check(r.stats["rejected_plan"])


def planned(r):
    """A heuristic's configuration, kept aside in the stats when it breaks the accuracy floor."""
    return r.plan if r.plan is not None else r.stats["rejected_plan"]


def test_baseline_configurations() -> None:
    p = random_cache_problem(2, 8, 10, seed=1, entry_budget=30)
    r = ep.solve(p, "all-layers")
    assert [len(a) for a in planned(r).layers] == [8, 8] and planned(r).class_counts.tolist() == [3, 3]
    r = ep.solve(p, "multi-exit", options={"n_exits": 2})
    assert planned(r).layers == ((3, 7), (3, 7)) and planned(r).class_counts.tolist() == [10, 10]
    r = ep.solve(p, "static-topk", options={"k": 8, "layers": [1, 3, 5, 7]})
    assert planned(r).layers == ((3, 5, 7),) * 2 and planned(r).class_counts.tolist() == [8, 8]  # 8 x 3 <= 30
    tight = random_cache_problem(2, 8, 10, seed=1, entry_budget=10)
    r = ep.solve(tight, "all-layers")
    assert r.status is Status.NO_SOLUTION and "fewer than 2 classes at 8 layers" in r.message


def test_aca_follows_the_cumulative_share_and_the_budget() -> None:
    p = random_cache_problem(3, 6, 10, seed=2, entry_budget=12)
    r = ep.solve(p, "aca", options={"share": 0.5, "k_min": 1, "greedy": False})
    p_sorted = np.take_along_axis(p.request_prob, p.class_rank, axis=1)
    k = (np.cumsum(p_sorted, axis=1) < 0.5).sum(axis=1) + 1
    assert planned(r).class_counts.tolist() == k.tolist()
    assert all(len(a) * kk <= 12 for a, kk in zip(planned(r).layers, k, strict=True))
    assert all(len(a) == min(6, 12 // kk) for a, kk in zip(planned(r).layers, k, strict=True))
    r2 = ep.solve(p, "aca", options={"priority": [5, 4, 3, 2, 1, 0], "greedy": False, "k_min": 6, "share": 0.01})
    assert planned(r2).layers == ((4, 5),) * 3  # deepest first, two layers of 6 classes fit 12 entries


@pytest.mark.parametrize(
    ("method", "options", "match"),
    [
        ("aca", {"share": 1.5}, r"`options\['share'\]` = 1.5 for method 'aca'; expected a value in \(0, 1\]"),
        ("aca", {"k_min": -1}, r"`options\['k_min'\]` = -1 for method 'aca'; expected a whole number >= 0"),
        ("aca", {"priority": [9]}, r"`options\['priority'\]` = \[9\] for method 'aca'; expected layer indices"),
        ("aca", {"shares": 0.9}, r"`options` has unknown keys \['shares'\] for method 'aca'"),
        ("static-topk", {"k": 99}, r"`options\['k'\]` = 99 for method 'static-topk'; expected 0..4"),
        ("static-topk", {"layers": [7]}, r"`options\['layers'\]` = \[7\] for method 'static-topk'; expected layer"),
        ("multi-exit", {"n_exits": 0}, r"`options\['n_exits'\]` = 0 for method 'multi-exit'; expected a positive"),
        ("cache-dp", {"cap": 2}, r"`options` has unknown keys \['cap'\] for method 'cache-dp'"),
    ],
)
def test_option_errors(method: str, options: dict, match: str) -> None:
    with pytest.raises(ProblemDataError, match=match):
        ep.solve(random_cache_problem(1, 5, 4, seed=0), method, options=options)


def test_replay_option_errors_and_restricted_search() -> None:
    q = random_replay_problem(2, 5, 4, requests=30, seed=1)
    with pytest.raises(ProblemDataError, match=r"`options\['max_active'\]` = -1 for method 'cache-replay'"):
        ep.solve(q, "cache-replay", options={"max_active": -1})
    r = ep.solve(q, "cache-replay", options={"max_active": 1})
    assert r.status is Status.FEASIBLE and r.limit == "other" and all(len(a) <= 1 for a in r.plan.layers)
    assert r.fun >= ep.solve(q, "cache-replay").fun - 1e-15


def test_infeasible_and_time_limited_statuses() -> None:
    p = random_cache_problem(2, 4, 3, seed=0, accuracy_drop=-0.5)  # floor 1.5: nothing reaches it
    assert ep.solve(p, "cache-dp").status is Status.INFEASIBLE
    assert ep.solve(p, "highs").status is Status.INFEASIBLE
    assert ep.solve(p, "aca").status is Status.NO_SOLUTION
    q = random_replay_problem(2, 4, 3, requests=20, seed=0, accuracy_drop=-0.5)
    assert ep.solve(q, "cache-replay").status is Status.INFEASIBLE
    big = random_replay_problem(1, 14, 12, requests=400, seed=0, noise=3.0, accuracy_drop=0.5)
    r = ep.solve(big, "cache-replay", time_limit=0.05)
    assert r.status in (Status.FEASIBLE, Status.NO_SOLUTION) and r.limit == "time"
    big_p = random_cache_problem(3, 30, 60, seed=0, accuracy_drop=0.2, memory_budget_bytes=1e6, max_layers=6)
    r = ep.solve(big_p, "cache-dp", time_limit=0.01)
    assert r.limit == "time" and r.status in (Status.FEASIBLE, Status.NO_SOLUTION)


def test_compare_lists_every_cache_method() -> None:
    p = random_cache_problem(2, 5, 5, seed=3)
    assert {"cache-dp", "highs", "aca", "no-cache", "multi-exit"} <= set(ep.available_methods(p))
    assert "cache-replay" not in ep.available_methods(p)
    q = random_replay_problem(2, 4, 4, requests=20, seed=3)
    assert ep.available_methods(q, kind="exact") == ["cache-replay"]
    df = ep.compare({"p": p}, ["cache-dp", "aca", "no-cache"])
    assert df.loc[df.method == "cache-dp", "gap_to_best"].item() == 0.0


def test_pareto_mask() -> None:
    X = np.array([[1, 5, 0], [2, 4, 0], [2, 6, 0], [1, 5, 0], [3, 1, 1], [3, 1, 0]], dtype=float)
    assert pareto_mask(X).tolist() == [True, True, False, False, False, True]
    assert pareto_mask(X[:, :2]).tolist() == [True, True, False, False, True, False]
    assert pareto_mask(X[:, :1]).sum() == 1 and pareto_mask(np.zeros((0, 2))).size == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_layers=st.integers(1, 5), n_classes=st.integers(1, 4),
       goal=st.sampled_from(["latency", "accuracy"]), drop=st.sampled_from([0.0, 0.02, 0.1]),
       budget=st.sampled_from([2.0, 6.0, 100.0]), cap=st.sampled_from([None, 0, 1, 3]),
       slo=st.sampled_from([np.inf, 0.85, 0.95]))
def test_exact_methods_equal_brute_force_hypothesis(seed, n_layers, n_classes, goal, drop, budget, cap, slo) -> None:
    p = random_cache_problem(1, n_layers, n_classes, seed=seed, goal=goal, accuracy_drop=drop, entry_budget=budget,
                             max_layers=cap, latency_slo_fraction=slo)
    _assert_exact(ep.solve(p, "cache-dp"), brute_force(p))
    r = ep.solve(p, "aca")
    if r.has_plan:
        assert p.check(r.plan) == []
