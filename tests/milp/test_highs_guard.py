"""HiGHS 1.14 pitfalls the ``highs`` backend guards against, each with its reproducer (see highs.py's docstring)."""

from __future__ import annotations

import numpy as np
import pytest

import edgeplan as ep
from edgeplan import MILP, Status
from edgeplan.formulations.fl.instances import fl_energy_instance
from edgeplan.formulations.partition.instances import random_split_instance
from edgeplan.solvers.backends.highs import GUARD_OPTIONS, PRESOLVE_AGGREGATOR

INF = np.inf
#: No guard: HiGHS' own defaults for the three guarded options.
UNGUARDED = {"highs_options": {"presolve_rule_off": 0, "mip_abs_gap": 1e-6, "mip_feasibility_tolerance": 1e-6}}


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
    r = ep.solve(milp, "highs")
    assert r.stats["guard"] == GUARD_OPTIONS and GUARD_OPTIONS["presolve_rule_off"] == PRESOLVE_AGGREGATOR
    r = ep.solve(milp, "highs", options={"highs_options": {"mip_abs_gap": 1e-3}})
    assert r.stats["guard"] == {**GUARD_OPTIONS, "mip_abs_gap": 1e-3} and r.fun == pytest.approx(0.06)
    raw = ep.solve(milp, "highs", options=UNGUARDED)
    assert raw.stats["guard"] == UNGUARDED["highs_options"]
    # the plan HiGHS returns unguarded is feasible: only the guard, not the front door's check, catches it
    assert raw.status is Status.OPTIMAL and not milp.check(raw.plan)
    if raw.stats["highs_version"] == "1.14.0":   # the reproducer is live on the version it was found with
        assert raw.fun == pytest.approx(0.2)


def test_split_inference_with_memory_caps_matches_enumeration() -> None:
    """One of the 300-instance scan's two failures of the current split MILP (HiGHS 1.14 said 0.593)."""
    p = random_split_instance(4, 3, kind="chain", minimize="energy", bits=False, memory=True, max_latency=True,
                              seed=1110)
    best = ep.solve(p, "split-enum")
    r = ep.solve(p, "highs")
    assert r.status is Status.OPTIMAL and r.fun == pytest.approx(best.fun, rel=1e-6), (r.fun, best.fun)


def test_feasibility_tolerance_does_not_stop_at_a_wrong_bound() -> None:
    """A resource-block energy round: at 1e-6, HiGHS proved a bound 1.7e-4 above the optimum of 'fl-energy'."""
    p = fl_energy_instance(60, 4, 15, seed=0, resource_block_hz=1e5)
    exact = ep.solve(p, "fl-energy")
    r = ep.solve(p, "highs")
    assert exact.status is Status.OPTIMAL and r.status is Status.OPTIMAL
    assert r.fun == pytest.approx(exact.fun, rel=1e-6) and r.bound <= exact.fun * (1 + 1e-6)
