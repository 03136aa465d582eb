"""FL energy round: the time split (against Clarabel and scipy), the formulation, exact methods against brute force,
DO-SNM, coverage constraints, errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from contract.registry_cases import check_heuristics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgeplan as ep
from edgeplan import PlanError, ProblemDataError, Status, UnsupportedProblemError
from edgeplan.formulations.fl.fl_energy import FLEnergySchedule, FLRoundEnergy, time_split
from edgeplan.formulations.fl.instances import fl_energy_instance
from edgeplan.profiles.data import DataOwnership
from edgeplan.solvers.fl.do_snm import coverage_gains, split_by_marginal_energy
from edgeplan.solvers.fl.fl_energy import polish_bandwidth
from edgeplan.solvers.fl.fl_energy_cvxpy import time_split_cvxpy
from fl.helpers import brute_force_energy, point_energy, tiny_energy


def hand_energy(**changes) -> FLRoundEnergy:
    """Two users, one BS of 1 MHz; h = g/N0 = 1e7 Hz/W (a = 1e6 Hz at 0.1 W); C = 1e7 cycles; deadline 1 s."""
    data = dict(gain=[[1e-13], [1e-13]], window_s=[[np.inf], [np.inf]], samples=[1000.0, 1000.0], cpu_min_hz=1e6,
                cpu_max_hz=1e9, max_power_w=0.1, kappa=1e-27, deadline_s=1.0, payload_bits=1e5, bs_bandwidth_hz=1e6,
                n_select=1, cycles_per_sample=1e4, local_epochs=1.0, noise_psd_w_per_hz=1e-20)
    data.update(changes)
    return FLRoundEnergy(**data)


# -- the time split -------------------------------------------------------------------------------------------------
def test_energy_of_a_plan_by_hand() -> None:
    p = hand_energy()
    plan = FLEnergySchedule([0, -1], [5e5, 0.0], [0.05, 0.0], [2e7, 0.0])
    m = p.evaluate(plan)
    rate = 5e5 * np.log2(1 + 0.05 * 1e7 / 5e5)              # log2(2) = 1: 5e5 bit/s
    assert rate == pytest.approx(5e5)
    assert m.compute_energy_j[0] == pytest.approx(1e-27 * 1e7 * 4e14)
    assert m.upload_energy_j[0] == pytest.approx(0.05 * 1e5 / 5e5)
    assert m.latency_s[0] == pytest.approx(0.5 + 0.2) and m.objective == pytest.approx(m.energy_j[0])
    assert p.check(plan) == [] and np.isnan(m.energy_j[1])


def test_time_split_matches_scipy_and_clarabel() -> None:
    rng = np.random.default_rng(0)
    p = fl_energy_instance(12, 3, 3, seed=4, deadline_s=0.9)
    ok = np.flatnonzero(np.isfinite(p.min_bandwidth_hz()).ravel())
    pick = rng.choice(ok, size=25)
    u, m = np.unravel_index(pick, p.gain.shape)
    b = p.min_bandwidth_hz()[u, m] + rng.uniform(0, 1, 25) * (p.bs_bandwidth_hz[m] - p.min_bandwidth_hz()[u, m])
    ours = p.split(u, m, b)["energy_j"]
    ref = np.array([point_energy(p, int(i), int(j), float(bb)) for i, j, bb in zip(u, m, b, strict=True)])
    assert np.all(ours <= ref * (1 + 1e-9)) and np.all(ours >= ref * (1 - 1e-7))
    conic = time_split_cvxpy(p, u[:8], m[:8], b[:8])
    np.testing.assert_allclose(conic, ours[:8], rtol=1e-6)


def test_time_split_end_points_slope_and_infeasibility() -> None:
    sol = time_split(cycles=[1e7, 1e7, 1e7], kappa=1e-27, f_min=1e6, f_max=1e9, deadline=[1.0, 1.0, 0.005],
                     Z=1e5, bandwidth=[1e6, 1e3, 1e6], h=1e7, p_max=0.1)
    assert sol["feasible"].tolist() == [True, False, False]     # 1 kHz cannot carry 1e5 bits; 5 ms < C/f_max
    assert np.isinf(sol["energy_j"][1:]).all()
    # slope of the minimum energy against central differences, including points where the power cap binds
    from edgeplan.formulations.fl.common import min_bandwidth_hz

    b = np.geomspace(min_bandwidth_hz(1e5 / (1.0 - 0.01), 1e6) * 1.01, 1e6, 9)
    e = lambda bb: time_split(1e7, 1e-27, 1e6, 1e9, 1.0, 1e5, bb, 1e7, 0.1)  # noqa: E731
    fd = (e(b * (1 + 1e-6))["energy_j"] - e(b * (1 - 1e-6))["energy_j"]) / (2e-6 * b)
    np.testing.assert_allclose(e(b)["slope"], fd, rtol=1e-4)
    assert np.all(np.diff(e(b)["energy_j"]) < 0) and np.all(np.diff(e(b)["slope"]) > 0)   # convex, decreasing
    assert e(b)["power_w"][0] == pytest.approx(0.1)                                       # the cap binds first


def test_polish_equalizes_marginal_energy() -> None:
    p = fl_energy_instance(8, 1, 3, seed=2, deadline_s=0.6)
    users = np.flatnonzero(np.isfinite(p.min_bandwidth_hz()[:, 0]))[:3]
    b = polish_bandwidth(p, users, np.zeros(3, int), np.full(3, 1e5))
    assert b.sum() == pytest.approx(p.bs_bandwidth_hz[0], rel=1e-12)
    s = p.split(users, np.zeros(3, int), b)["slope"]
    np.testing.assert_allclose(s, s.mean(), rtol=1e-4)
    shifted = b + np.array([1e3, -1e3, 0.0])
    assert p.split(users, np.zeros(3, int), shifted)["energy_j"].sum() >= p.split(users, np.zeros(3, int), b)[
        "energy_j"].sum() * (1 - 1e-12)


# -- the formulation -----------------------------------------------------------------------------------------------
def test_check_lists_every_broken_constraint() -> None:
    own = DataOwnership.from_membership([[1, 1, 0], [0, 1, 1]])
    p = hand_energy(data=own, edcr_min=0.9, rdcr_max=0.5, bs_channels=1, n_select=2, quota="exact",
                    window_s=[[0.3], [np.inf]])
    bad = p.check(FLEnergySchedule([0, -1], [2e6, 0.0], [0.5, 0.1], [2e9, 5.0]))
    names = {v.name for v in bad}
    assert {"bandwidth_used_hz[bs 0]", "n_selected", "cpu_hz[0]", "power_w[0]", "power_w[1] (user not selected)",
            "edcr[community 0]"} <= names, names
    late = {v.name for v in p.check(FLEnergySchedule([0, -1], [1e6, 0.0], [0.1, 0.0], [1e7, 0.0]))}
    assert "latency_s[0] (window of bs 0)" in late                   # 1 s of compute > window 0.3 s
    both = {v.name for v in p.check(FLEnergySchedule([0, 0], [5e5, 5e5], [0.1, 0.1], [1e9, 1e9]))}
    assert "rdcr[community 0]" in both and "users[bs 0]" in both
    slow = {v.name for v in hand_energy().check(FLEnergySchedule([0, -1], [1e6, 0.0], [0.1, 0.0], [1e5, 0.0]))}
    assert "cpu_hz[0]" in slow


def test_plan_round_trips_and_scenario(tmp_path) -> None:
    from edgeplan.io.plans import load_plan, save_plan
    from edgeplan.registry import generator_for as generator

    p = generator("fl-energy")(n_users=10, n_bs=2, n_select=3, seed=1, deadline_s=0.8)
    r = ep.solve(p, "do-snm")
    back = FLEnergySchedule.from_dict(json.loads(json.dumps(r.plan.to_dict())))
    assert all(np.array_equal(getattr(back, k), getattr(r.plan, k)) for k in ("bs", "bandwidth_hz", "power_w",
                                                                              "cpu_hz"))
    loaded = load_plan(save_plan(tmp_path / "fle.json", p, r), p)
    assert p.objective(loaded.plan) == r.fun
    with pytest.raises(PlanError, match=r"FL energy schedule mapping lacks keys \['cpu_hz', 'power_w'\]"):
        FLEnergySchedule.from_dict({"bs": [0], "bandwidth_hz": [1.0]})
    d = fl_energy_instance(10, 2, 3, seed=1, device="phone-midrange", shared_fraction=0.5, edcr_min=0.5)
    assert d.cpu_max_hz[0] == 550e6 and d.kappa[0] == pytest.approx(1.5e-26) and d.data is not None
    assert np.array_equal(d.samples, d.data.sample_counts())


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"cpu_min_hz": 2e9}, r"`cpu_min_hz`\[0\] = 2000000000.0 > `cpu_max_hz`\[0\] = 1000000000.0; expected min"),
        ({"cpu_max_hz": 0.0}, r"`cpu_max_hz`\[0\] = 0.0; expected values > 0"),
        ({"max_power_w": -1.0}, r"`max_power_w`\[0\] = -1.0; expected values >= 0"),
        ({"kappa": [1.0]}, r"`kappa` has shape \(1,\); expected shape \(2\)"),
        ({"deadline_s": 0.0}, r"`deadline_s` = 0.0; expected a value > 0"),
        ({"edcr_min": 1.5}, r"`edcr_min` = 1.5; expected a value <= 1.0"),
        ({"edcr_min": 0.5}, r"`edcr_min`/`rdcr_max` constrain coverage but `data` is None"),
        ({"data": "x"}, r"`data` is a str; expected a DataOwnership or None"),
        ({"data": DataOwnership.from_membership([[1, 0], [0, 1], [1, 1]])},
         r"`data` describes 3 users; expected 2"),
        ({"n_select": 5}, r"`n_select` = 5; expected at most the number of users 2"),
    ],
)
def test_problem_data_errors(changes: dict, match: str) -> None:
    with pytest.raises(ProblemDataError, match=match):
        hand_energy(**changes)


def test_plan_type_errors() -> None:
    with pytest.raises(PlanError, match=r"`plan` is a str; expected an FLEnergySchedule"):
        hand_energy().check("nope")
    with pytest.raises(PlanError, match=r"`power_w` has shape \(1,\); expected \(2,\)"):
        FLEnergySchedule([0, -1], [1.0, 0.0], [1.0], [1.0, 0.0])


# -- exact methods against brute force -------------------------------------------------------------------------------
def _agrees(p: FLRoundEnergy, method: str, best: float, rtol: float) -> None:
    r = ep.solve(p, method)
    if np.isinf(best):
        assert r.status is Status.INFEASIBLE and r.message, (method, r)
        return
    assert r.status is Status.OPTIMAL, (method, r)
    assert r.fun == pytest.approx(best, rel=rtol), (method, r.fun, best)
    assert r.bound <= best * (1 + 1e-7) and p.check(r.plan) == []


def test_exact_resource_blocks_equal_brute_force() -> None:
    for seed in range(30):
        p = tiny_energy(seed, blocks=True)
        best = brute_force_energy(p)
        for method in ("fl-energy", "highs"):
            _agrees(p, method, best, rtol=1e-7)


def test_exact_continuous_equals_brute_force() -> None:
    decided = 0
    for seed in range(100, 125):
        p = tiny_energy(seed, n_max=3, k_max=2)
        try:
            best = brute_force_energy(p)
        except ValueError:                     # a selection puts 3 users on one BS: beyond the brute force
            continue
        _agrees(p, "fl-energy", best, rtol=1e-5)
        decided += 1
    assert decided >= 20


def test_cvxpy_cross_check_agrees() -> None:
    for seed in (1, 2, 3):
        p = tiny_energy(seed, blocks=True, n_max=3, m_max=1)
        a, b = ep.solve(p, "fl-energy"), ep.solve(p, "fl-energy-cvxpy")
        assert a.status is b.status
        if a.has_plan:
            assert b.fun == pytest.approx(a.fun, rel=1e-6)
    q = tiny_energy(7, n_max=3, m_max=1, coverage=False)
    exact, grid = ep.solve(q, "fl-energy"), ep.solve(q, "fl-energy-cvxpy", options={"grid": 8})
    assert grid.status is Status.FEASIBLE and grid.fun >= exact.fun * (1 - 1e-9) and q.check(grid.plan) == []


def test_energy_falls_as_the_deadline_grows() -> None:
    energies = [ep.solve(fl_energy_instance(12, 2, 4, seed=3, deadline_s=d), "fl-energy").fun
                for d in (0.5, 0.7, 1.0, 1.5)]
    assert all(a >= b * (1 - 1e-7) for a, b in itertools.pairwise(energies)), energies


def test_coverage_constraints_bind() -> None:
    free = fl_energy_instance(14, 2, 3, seed=5, deadline_s=0.8, shared_fraction=0.5, n_communities=2)
    floor = fl_energy_instance(14, 2, 3, seed=5, deadline_s=0.8, shared_fraction=0.5, n_communities=2, edcr_min=0.7)
    a, b = ep.solve(free, "fl-energy"), ep.solve(floor, "fl-energy")
    assert b.fun > a.fun and np.all(floor.evaluate(b.plan).edcr >= 0.7 - 1e-9)
    assert np.any(free.evaluate(a.plan).edcr < 0.7)
    blocks = fl_energy_instance(14, 2, 3, seed=5, deadline_s=0.8, shared_fraction=0.5, edcr_min=0.7, rdcr_max=0.4,
                                resource_block_hz=1e5)
    r = ep.solve(blocks, "fl-energy")
    assert r.status is Status.OPTIMAL and blocks.evaluate(r.plan).rdcr[0] <= 0.4 + 1e-9


# -- DO-SNM and infeasibility ----------------------------------------------------------------------------------------
ENERGY_HEURISTICS = ("do-snm", "random", "best-channel", "fastest-compute")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), blocks=st.booleans())
def test_energy_heuristics_are_feasible_and_never_beat_the_optimum(seed: int, blocks: bool) -> None:
    p = tiny_energy(seed, blocks=blocks)
    exact = ep.solve(p, "fl-energy")
    optimum = None if exact.status is Status.INFEASIBLE else exact.fun
    check_heuristics(p, ENERGY_HEURISTICS, optimum, seed=seed, rtol=1e-9, bound=exact.bound)


def test_do_snm_kernels() -> None:
    own = DataOwnership.from_membership([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]])
    p = hand_energy(gain=np.full((3, 1), 1e-13), window_s=np.full((3, 1), np.inf), samples=[2000.0, 2000, 1000],
                    data=own, edcr_min=0.5)
    d_ef, d_re = coverage_gains(p, np.array([True, False, False]))
    np.testing.assert_allclose(d_ef, [0.0, 1 / 4, 1 / 4])        # user 1 adds sample 2 of 4; user 2 adds sample 3
    np.testing.assert_allclose(d_re, [0.0, 1.0, 0.0])            # the only overlap (sample 1) is (0, 1)
    band = split_by_marginal_energy(p, np.array([0, 2]), 0)
    assert band.sum() == pytest.approx(1e6) and band[0] > band[1]   # user 0 computes more: it gets more band
    assert ep.solve(p, "do-snm").status is Status.FEASIBLE


def test_infeasible_is_a_status_with_the_reason() -> None:
    p = hand_energy(deadline_s=0.005, n_select=1)            # 1e7 cycles need 10 ms at 1 GHz
    for method in ("fl-energy", "fl-energy-cvxpy", *ENERGY_HEURISTICS):
        r = ep.solve(p, method)
        assert r.status is Status.INFEASIBLE and "only 0 of 2 users can meet the deadline" in r.message, r
    own = DataOwnership.from_membership([[1, 0], [0, 1]])
    q = hand_energy(data=own, edcr_min=1.0, window_s=[[np.inf], [0.0]])   # user 1's data is out of reach
    r = ep.solve(q, "fl-energy")
    assert r.status is Status.INFEASIBLE and "no selection meets" in r.message
    assert ep.solve(q, "do-snm").status is Status.NO_SOLUTION
    with pytest.raises(UnsupportedProblemError, match=r"has no exact MILP; solve it with 'fl-energy'"):
        ep.solve(hand_energy(), "highs")


def test_coverage_cuts_agree_with_cover_columns() -> None:
    for seed in range(200, 215):
        p = tiny_energy(seed, blocks=seed % 2 == 0)
        if p.data is None or p.edcr_min <= 0:
            continue
        a = ep.solve(p, "fl-energy", options={"coverage": "groups"})
        b = ep.solve(p, "fl-energy", options={"coverage": "cuts"})
        assert a.status is b.status, (seed, a, b)
        if a.has_plan:
            assert b.fun == pytest.approx(a.fun, rel=1e-6) and p.check(b.plan) == []
    q = fl_energy_instance(14, 2, 3, seed=5, deadline_s=0.8, shared_fraction=0.5, n_communities=2, edcr_min=0.7)
    a = ep.solve(q, "fl-energy", options={"coverage": "groups"})
    b = ep.solve(q, "fl-energy", options={"coverage": "cuts"})
    assert b.fun == pytest.approx(a.fun, rel=2e-6) and b.stats["coverage_cuts"] >= 2
    with pytest.raises(ProblemDataError, match=r"`options\['coverage'\]` = 'lazy'; expected one of auto, groups"):
        ep.solve(q, "fl-energy", options={"coverage": "lazy"})


def test_no_user_can_be_covered_is_a_status_not_a_crash() -> None:
    """Continuous bandwidth, no gain at all (no pair can work): with a coverage floor the round is infeasible, without
    one and K = 0 the empty round is optimal. The outer approximation's MILP of zero pairs raised TypeError."""
    import dataclasses

    from fl.helpers import tiny_energy

    p = tiny_energy(46, blocks=False)
    assert p.data is not None
    covered = dataclasses.replace(p, gain=np.zeros_like(p.gain), n_select=0, edcr_min=1.0)
    r = ep.solve(covered, "fl-energy")
    assert r.status is Status.INFEASIBLE and "coverage" in r.message, r
    free = dataclasses.replace(covered, edcr_min=0.0)
    r = ep.solve(free, "fl-energy")
    assert r.status is Status.OPTIMAL and r.fun == 0.0, r


def test_exact_method_is_warm_started_and_never_worse_than_the_heuristic() -> None:
    """``do-snm``'s plan warm-starts the point MILP: at a 50 ms limit on 600 operating points the result has a plan
    no worse than the heuristic's, and says it was warm-started."""
    p = fl_energy_instance(60, 4, 15, seed=3, edcr_min=0.5, resource_block_hz=1e5)
    h = ep.solve(p, "do-snm")
    r = ep.solve(p, "fl-energy", time_limit=0.05)
    assert h.has_plan and r.has_plan and r.stats["warm_start"], r
    assert r.fun <= h.fun * (1 + 1e-9) and not p.check(r.plan)


def test_conic_time_split_solves_the_points_it_failed_on() -> None:
    """A degenerate resource-block round where Clarabel failed on 8 of its 16 operating points (1e-10 tolerances,
    unscaled program): normalized and at Clarabel's own tolerances it solves all 16, within 1e-6 of the bisection."""
    from edgeplan.solvers.fl.fl_energy_cvxpy import time_split_cvxpy
    from fl.nasty import fl_energy

    p = fl_energy(4)
    pts = p.block_points()
    e = time_split_cvxpy(p, pts["user"], pts["bs"], pts["blocks"] * p.resource_block_hz)
    assert e.size == 16 and np.all(np.isfinite(e))
    assert np.allclose(e, pts["energy_j"], rtol=1e-6, atol=0.0)
