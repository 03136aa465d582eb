"""Solver options are checked, not coerced; a huge time limit means none (issue 20 regressions)."""

from __future__ import annotations

import math

import pytest

import edgeplan as ep
from edgeplan.formulations.instances import knapsack
from edgeplan.solvers.result import Status

KNAP = knapsack(8, 2, seed=0)


@pytest.mark.parametrize(("method", "options", "match"), [
    ("scipy", {"mip_rel_gap": -1}, r"`options\['mip_rel_gap'\]` = -1 for method 'scipy'; expected a finite number"),
    ("scipy", {"mip_rel_gap": math.nan}, r"`options\['mip_rel_gap'\]` = nan .* expected a finite number"),
    ("scipy", {"presolve": "no"}, r"`options\['presolve'\]` = 'no' for method 'scipy'; expected true or false"),
    ("cp-sat", {"num_workers": -1}, r"`options\['num_workers'\]` = -1 .* expected a whole number >= 0"),
    ("cp-sat", {"num_workers": 0.5}, r"`options\['num_workers'\]` = 0.5 .* expected a whole number"),
    ("cp-sat", {"num_workers": True}, r"`options\['num_workers'\]` = True .* expected a whole number"),
    ("highs", {"presolve": "bogus"}, r"`options\['presolve'\]` = 'bogus' for method 'highs'; expected one of "
                                     r"'choose', 'on', 'off'"),
    ("highs", {"mip_rel_gap": "1e-3"}, r"`options\['mip_rel_gap'\]` = '1e-3' .* expected a finite number"),
    ("highs", {"threads": 2.5}, r"`options\['threads'\]` = 2.5 .* expected a whole number"),
    ("highs", {"threads": 10**6}, r"`options\['threads'\]` = 1000000 for method 'highs'; expected at most 256"),
    ("highs", {"highs_options": {"bogus_option": 1}}, r"`options\['highs_options'\]\['bogus_option'\]` = 1 was "
                                                      r"refused by HiGHS"),
    ("highs", {"highs_options": {"mip_rel_gap": "abc"}}, r"\['mip_rel_gap'\]` = 'abc' was refused by HiGHS"),
    ("highs", {"highs_options": {"mip_rel_gap": -1.0}}, r"\['mip_rel_gap'\]` = -1.0 was refused by HiGHS"),
    ("highs", {"highs_options": {"time_limit": math.nan}}, r"\['time_limit'\]` = nan; expected a number"),
    ("highs", {"highs_options": [("presolve", "off")]}, r"`options\['highs_options'\]` = .* expected a mapping"),
    ("pyomo", {"mip_rel_gap": math.inf}, r"`options\['mip_rel_gap'\]` = inf .* expected a finite number"),
])
def test_bad_option_values_are_named_errors(method: str, options: dict, match: str) -> None:
    """These were coerced (int(0.5) = 0), passed on (HiGHS ignored them silently) or failed inside the solver."""
    with pytest.raises(ep.ProblemDataError, match=match):
        ep.solve(KNAP, method, options=options)


@pytest.mark.parametrize("limit", [1e300, 1e10, math.inf])
def test_a_huge_time_limit_means_none(limit: float) -> None:
    """1e300 killed the HiGHS watchdog thread (OverflowError in threading.Timer)."""
    for method in ("highs", "cp-sat", "scipy"):
        r = ep.solve(KNAP, method, time_limit=limit)
        assert r.status is Status.OPTIMAL and r.limit is None, (method, r)


def test_valid_options_still_pass() -> None:
    r = ep.solve(KNAP, "highs", options={"presolve": "off", "threads": 1, "mip_rel_gap": 0,
                                         "highs_options": {"presolve_rule_off": 0}})
    assert r.status is Status.OPTIMAL and r.stats["presolve"] == "off"
    assert ep.solve(KNAP, "cp-sat", options={"num_workers": 1.0}).status is Status.OPTIMAL   # a whole float is fine
