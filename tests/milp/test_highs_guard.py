"""HiGHS 1.14 pitfalls the ``highs`` backend guards against, each with its reproducer (see highs.py's docstring)."""

from __future__ import annotations

import numpy as np
import pytest

import edgeplan as ep
from edgeplan import MILP, Status
from edgeplan.formulations.fl.instances import fl_energy_instance
from edgeplan.formulations.partition.instances import random_split_instance
from edgeplan.solvers.backends.highs import BROKEN_PRESOLVE, PRESOLVE_AGGREGATOR, guard_options, highs_version

INF = np.inf
#: No guard: HiGHS' own defaults for the guarded options.
UNGUARDED = {"highs_options": {"presolve_rule_off": 0, "mip_abs_gap": 1e-6}}


def aggregator_reproducer() -> MILP:
    """Shrunk from a split-inference MILP with memory caps; columns b0..b4 binary, y >= 0, z in [0, 1].

    min 0.2 b1 + 0.06 z  s.t.  b1 = b0,  b3 <= b1,  b2 + y >= 1,  b4 >= b2,  b0 + z >= 1,  b4 <= 0.8 b0 + b3,
    0.02 (b0 + b1 + z) + 0.07 y <= 0.1.  By hand: b = 0, y = z = 1 costs 0.06 (budget 0.09); b0 = 1 forces
    b1 = 1 and costs at least 0.2. HiGHS 1.14 with its aggregator claims 0.2 optimal.
    """
    A = [[-1, 1, 0, 0, 0, 0, 0], [0, -1, 0, 1, 0, 0, 0], [0, 0, 1, 0, 0, 1, 0], [0, 0, -1, 0, 1, 0, 0],
         [1, 0, 0, 0, 0, 0, 1], [-0.8, 0, 0, -1, 1, 0, 0], [0.02, 0.02, 0, 0, 0, 0.07, 0.02]]
    return MILP(c=[0, 0.2, 0, 0, 0, 0, 0.06], A=A, row_lower=[0, -INF, 1, 0, 1, -INF, -INF],
                row_upper=[0, 0, INF, INF, INF, 0, 0.1], col_upper=[1, 1, 1, 1, 1, INF, 1],
                integrality=[1, 1, 1, 1, 1, 0, 0])


@pytest.mark.parametrize("method", ["highs", "pyomo"])
def test_aggregator_reproducer_is_solved_right(method: str) -> None:
    r = ep.solve(aggregator_reproducer(), method)
    assert r.status is Status.OPTIMAL and r.fun == pytest.approx(0.06, abs=1e-9), r
    assert r.plan[:5].tolist() == [0, 0, 0, 0, 0]


def test_guard_is_applied_and_highs_options_override_it() -> None:
    milp = aggregator_reproducer()
    guard = guard_options()
    r = ep.solve(milp, "highs")
    assert r.stats["guard"] == guard and guard["presolve_rule_off"] == PRESOLVE_AGGREGATOR
    assert ("presolve" in guard) == (BROKEN_PRESOLVE[0] <= highs_version() < BROKEN_PRESOLVE[1])
    r = ep.solve(milp, "highs", options={"highs_options": {"mip_abs_gap": 1e-3}})
    assert r.stats["guard"] == {**guard, "mip_abs_gap": 1e-3} and r.fun == pytest.approx(0.06)
    raw = ep.solve(milp, "highs", options=UNGUARDED)
    assert raw.stats["guard"]["presolve_rule_off"] == 0
    # the plan HiGHS returns unguarded is feasible: only the guard, not the front door's check, catches it
    assert raw.status is Status.OPTIMAL and not milp.check(raw.plan)
    if raw.stats["highs_version"] == "1.14.0":   # the reproducer is live on the version it was found with
        assert raw.fun == pytest.approx(0.2)


def stuffing_reproducer() -> MILP:
    """Shrunk (by deleting rows and fixing columns while HiGHS stayed wrong) from a 19-column split MILP: a DAG
    with zero-byte activations, a memory cap of 0 on the edge tier and a 3e-8 s link latency, where HiGHS 1.14
    claimed 3.0e-8 s optimal and the optimum is 0. What is left: min 1.078 b + 0.00073 y, b + y >= 1, b binary,
    y >= 0; the optimum is b = 0, y = 1 (0.00073). HiGHS 1.14's MIP presolve (column stuffing, which no option
    switches off) answers b = 1."""
    return MILP(c=[1.0780178474808289, 7.2930989008230553e-04], A=[[1.0, 1.0]], row_lower=[1.0], row_upper=[INF],
                col_upper=[1.0, INF], integrality=[1, 0])


#: Published HiGHS 1.14 presolve reproducers (issue numbers of ERGO-Code/HiGHS; linopy 648): model and optimum.
PUBLISHED = {
    "3043": (MILP(c=[2, 3], A=[[1, 1]], row_lower=[4.5], row_upper=[INF], col_upper=[10, 10],
                  integrality=[0, 1]), 9.0),
    "3073": (MILP(c=[100, 0.01, 0], A=[[1, 0, 1], [0, -1, 1], [0, -1, -1], [0, 0, 1], [0, 0, -1]],
                  row_lower=[3, -INF, -INF, -INF, -INF], row_upper=[3, 0, 0, 3, -0.45], col_lower=[0, -INF, 0],
                  integrality=[0, 0, 1]), 0.03),
    "3094": (MILP(c=[0, 0, 0, 0, 10, 8], A=[[-1000, 0, 1, 0, 0, 0], [0, -1000, 0, 1, 0, 0], [0, 0, 1, 0, 1, 0],
                                          [0, 0, 0, 1, 0, 1], [1, 1, 0, 0, 0, 0]],
                  row_lower=[-INF, -INF, 1000, 1000, -INF], row_upper=[0, 0, 1000, 1000, 1],
                  col_upper=[1, 1, 1000, 1000, 1000, 1000], integrality=[1, 1, 0, 0, 0, 0]), 8000.0),
    "linopy-648": (MILP(c=[2, 1], A=[[2, 1]], row_lower=[10], row_upper=[INF], col_lower=[0, 9], col_upper=[1, INF],
                        integrality=[1, 0]), 10.0),
}


@pytest.mark.parametrize("method", ["highs", "pyomo", "scipy"])
@pytest.mark.parametrize("name", ["stuffing", *PUBLISHED])
def test_presolve_reproducers_are_solved_right(method: str, name: str) -> None:
    milp, best = (stuffing_reproducer(), 0.00072930989008230553) if name == "stuffing" else PUBLISHED[name]
    r = ep.solve(milp, method)
    assert r.status is Status.OPTIMAL and r.fun == pytest.approx(best, rel=1e-9), r


def test_the_split_milp_of_the_stuffing_reproducer_is_solved_within_its_precision() -> None:
    """The instance the reproducer came from (a nasty split instance of the sweep), kept whole. Its block costs
    span 3e-8..77 s: the MILP backends may pick either side of a 3e-8 s link latency (1e-6 of 77 s is their
    resolution, stated in ``stats["objective_atol"]``); the brute force finds 0."""
    from contract.registry_cases import brute_force
    from partition.nasty import split

    p = split(86)
    for method in ("highs", "scipy", "pyomo"):
        r = ep.solve(p, method)
        assert r.status is Status.OPTIMAL and 0.0 <= r.fun <= r.stats["objective_atol"], (method, r)
        assert r.stats["objective_atol"] < 1e-4
    assert brute_force(p) == 0.0


def test_split_inference_with_memory_caps_matches_enumeration() -> None:
    """One of the 300-instance scan's two failures of the current split MILP (HiGHS 1.14 said 0.593)."""
    p = random_split_instance(4, 3, kind="chain", minimize="energy", bits=False, memory=True, max_latency=True,
                              seed=1110)
    best = ep.solve(p, "split-enum")
    r = ep.solve(p, "highs")
    assert r.status is Status.OPTIMAL and r.fun == pytest.approx(best.fun, rel=1e-6), (r.fun, best.fun)


def test_feasibility_tolerance_does_not_stop_at_a_wrong_bound() -> None:
    """A resource-block energy round: HiGHS 1.14 at its default 1e-6 proved a bound 1.7e-4 above the optimum of
    'fl-energy' (the old guard tightened the tolerance to 1e-9, which gave wrong pipeline optima instead); on the
    pinned HiGHS, at its default tolerance, the bound is valid."""
    p = fl_energy_instance(60, 4, 15, seed=0, resource_block_hz=1e5)
    exact = ep.solve(p, "fl-energy")
    r = ep.solve(p, "highs")
    assert exact.status is Status.OPTIMAL and r.status is Status.OPTIMAL
    assert r.fun == pytest.approx(exact.fun, rel=1e-6) and r.bound <= exact.fun * (1 + 1e-6)
