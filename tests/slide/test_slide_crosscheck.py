"""SLIDE against independent solvers: Clarabel (cvxpy) for the per-user convex programs, SCIP for all of P1,
and exhaustive enumeration over subsets and models on top of the convex oracle."""

from __future__ import annotations

import numpy as np
import pytest

import edgeplan as ep
from edgeplan import Status
from edgeplan.formulations.slide.instances import random_instance
from edgeplan.solvers.slide.slide import (
    admissible_pairs,
    latency_for_clocks,
    min_energy_clocks,
    min_latency_clocks,
    pair_min_shares,
    release_times,
)
from edgeplan.solvers.slide.slide_cvxpy import p2_latency_cvxpy, pair_min_shares_cvxpy
from slide.brute import brute_force_served

cp = pytest.importorskip("cvxpy")


def _brute_force_vs_slide(seeds: range) -> int:
    """slide's count equals enumeration over Clarabel's minimum shares; returns how many instances were decided."""
    decided = 0
    for seed in seeds:
        p = random_instance(4, 2, seed=seed)
        convex = pair_min_shares_cvxpy(p)
        # skip instances where Clarabel's 1e-8 accuracy could flip a subset's fit (none expected)
        low, high = brute_force_served(convex * (1 - 1e-7)), brute_force_served(convex * (1 + 1e-7))
        if low != high:
            continue
        r = ep.solve(p, "slide")
        assert r.status is Status.OPTIMAL and r.fun == low, seed
        decided += 1
    return decided


def test_slide_equals_brute_force_over_convex_shares() -> None:
    assert _brute_force_vs_slide(range(1000, 1040)) >= 39


@pytest.mark.slow
def test_slide_equals_brute_force_over_convex_shares_200() -> None:
    assert _brute_force_vs_slide(range(2000, 2200)) >= 198


def test_min_shares_agree_with_one_convex_program() -> None:
    worst = 0.0
    for seed in range(12):
        p = random_instance(4, 2, seed=300 + seed)
        _, upper, _ = pair_min_shares(p)
        convex = pair_min_shares_cvxpy(p)
        fin = np.isfinite(upper)
        assert np.array_equal(fin, np.isfinite(convex)), seed
        if fin.any():
            worst = max(worst, float(np.max(np.abs(convex[fin] / upper[fin] - 1))))
    assert worst < 1e-6, worst


def test_p2_latency_agrees_with_clarabel_within_1e_6() -> None:
    worst, compared, binding = 0.0, 0, 0
    for seed in range(10):
        p = random_instance(5, 2, seed=500 + seed)
        users, models = admissible_pairs(p)
        pd = p.pair_data(users, models)
        share = np.random.default_rng(seed).uniform(0.1, 1.0, size=users.size)
        lat, z = min_latency_clocks(pd, share)
        t_full = latency_for_clocks(release_times(pd, share), pd["copy_s"], pd["work_s"], np.ones_like(z))
        for r in range(users.size):
            ref, _ = p2_latency_cvxpy(pd, r, float(share[r]))
            assert np.isfinite(ref) == np.isfinite(lat[r]), (seed, r)
            if np.isfinite(ref):
                worst = max(worst, abs(lat[r] / ref - 1))
                compared += 1
                binding += bool(lat[r] > t_full[r] * (1 + 1e-9))
    assert compared >= 50 and binding >= 10 and worst < 1e-6, (compared, binding, worst)


def test_min_energy_agrees_with_clarabel() -> None:
    """The critical-interval clocks against cvxpy's minimum of sum Gamma u^-2 under the suffix constraints."""
    p = random_instance(6, 2, seed=77)
    users, models = admissible_pairs(p)
    pd = p.pair_data(users, models)
    share = np.full(users.size, 0.4)
    rel = release_times(pd, share)
    t_full = latency_for_clocks(rel, pd["copy_s"], pd["work_s"], np.ones_like(pd["work_s"]))
    deadline = 1.2 * t_full
    _, energy, ok = min_energy_clocks(rel, pd["copy_s"], pd["work_s"], deadline)
    for r in np.flatnonzero(ok):
        n = int(pd["n_layers"][r])
        w = pd["work_s"][r, :n]
        u = cp.Variable(n)
        suffix = np.triu(np.ones((n, n)))
        cap = deadline[r] - rel[r, :n] - suffix @ pd["copy_s"][r, :n]
        prob = cp.Problem(cp.Minimize(w @ cp.power(u, -2)), [u >= 1, suffix @ cp.multiply(w, u) <= cap])
        prob.solve(solver=cp.CLARABEL)
        assert energy[r] == pytest.approx(prob.value, rel=1e-6)


def test_slide_cvxpy_method_agrees() -> None:
    for seed in range(3):
        p = random_instance(4, 2, seed=40 + seed)
        a, b = ep.solve(p, "slide"), ep.solve(p, "slide-cvxpy")
        assert b.status is Status.OPTIMAL and a.fun == b.fun, (seed, a, b)


pyscipopt = pytest.importorskip("pyscipopt")


@pytest.mark.parametrize("seed", range(4))
def test_scip_global_solve_agrees(seed: int) -> None:
    p = random_instance(3, 2, n_layers=(2, 3), seed=900 + seed)
    a = ep.solve(p, "slide")
    b = ep.solve(p, "slide-scip", time_limit=60)
    assert b.status is Status.OPTIMAL, b
    assert a.fun == b.fun and b.bound == b.fun


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(30))
def test_scip_global_solve_agrees_more(seed: int) -> None:
    p = random_instance(4, 3, n_layers=(2, 4), seed=1900 + seed)
    a = ep.solve(p, "slide")
    b = ep.solve(p, "slide-scip", time_limit=120)
    assert b.status is Status.OPTIMAL and a.fun == b.fun, b


def test_scip_time_limit_and_options() -> None:
    p = random_instance(6, 3, n_layers=4, seed=4)
    r = ep.solve(p, "slide-scip", time_limit=0.05)
    assert r.status in (Status.OPTIMAL, Status.FEASIBLE, Status.NO_SOLUTION)
    if r.status is not Status.OPTIMAL:
        assert r.limit == ep.Limit.TIME
    with pytest.raises(ep.ProblemDataError, match=r"`options\['feastol'\]` = 'x' for method 'slide-scip'"):
        ep.solve(p, "slide-scip", options={"feastol": "x"})
