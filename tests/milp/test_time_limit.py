"""A time limit returns the incumbent with its bound and gap; the watchdog stops overruns."""

from __future__ import annotations

import pytest

import edgeplan as ep
from edgeplan import Limit, Status
from edgeplan.formulations.instances import hard_knapsack


@pytest.mark.parametrize("method", ["highs", "cp-sat"])
def test_time_limited_hard_instance(method: str) -> None:
    p = hard_knapsack()
    r = ep.solve(p, method, time_limit=1.0, options={"num_workers": 2} if method == "cp-sat" else None)
    assert r.status is Status.FEASIBLE and r.limit is Limit.TIME, r
    assert r.plan is not None and not p.check(r.plan)
    assert r.bound is not None and r.bound > r.fun  # maximisation: the bound is above
    assert 0 < r.gap < 1
    assert r.solve_time <= 1.5  # the contract: within 1.5x the limit


def test_watchdog_stops_a_solver_that_ignores_its_limit() -> None:
    p = hard_knapsack()
    # HiGHS is told a 100 s limit directly; only our 0.5 s watchdog can stop it.
    r = ep.solve(p, "highs", time_limit=0.5, options={"highs_options": {"time_limit": 100.0}})
    assert r.stats["watchdog_fired"] is True
    assert r.status is Status.FEASIBLE and r.limit is Limit.TIME and r.bound is not None
    assert "watchdog" in r.message
    assert r.solve_time < 1.5
