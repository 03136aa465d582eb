"""The front door: method choice, argument errors, the re-check of every plan, reductions, compare."""

from __future__ import annotations

import numpy as np
import pytest
from families import Knapsack

import edgeplan as ep
from edgeplan import MILP, ProblemDataError, Result, SolverUnavailableError, Status, UnsupportedProblemError
from edgeplan.formulations.fl.fl_round import FLRound
from edgeplan.formulations.fl.instances import fl_round_instance
from edgeplan.solvers.registry import METHODS, get_method, register

KNAP = MILP(c=[10, 13, 7, 8], A=[[3, 4, 2, 3]], row_upper=7, col_upper=1, integrality=[1] * 4, sense="max")


@pytest.fixture
def scratch_method():
    """Register test-only methods and remove them afterwards."""
    added: list[str] = []

    def add(name: str, func, **kwargs):
        register(name, **kwargs)(func)
        added.append(name)

    yield add
    for name in added:
        METHODS.remove(name)


def test_default_method_is_first_installed_exact() -> None:
    r = ep.solve(KNAP)
    assert r.method == "highs" and r.status is Status.OPTIMAL and r.fun == 23.0
    assert r.stats["wall_time"] >= r.solve_time >= 0 and r.build_time >= 0


def test_available_methods_filters() -> None:
    assert ep.available_methods(KNAP, kind="exact")[:4] == ["highs", "cp-sat", "scipy", "pyomo"]
    assert ep.available_methods(KNAP, kind="heuristic") == []
    assert "highs" in ep.available_methods(MILP) and "highs" in ep.available_methods(Knapsack)
    with pytest.raises(ProblemDataError, match="`kind` = 'fast'; expected one of"):
        ep.available_methods(KNAP, kind="fast")


def test_available_methods_lists_only_methods_that_take_the_instance() -> None:
    """A to_milp() that refuses, or a MILP CP-SAT cannot represent, is not offered to the MILP backends."""
    continuous = fl_round_instance(8, 2, 3, seed=0)
    names = ep.available_methods(continuous)
    assert "fl-bisect" in names and not {"highs", "cp-sat", "scipy", "pyomo"} & set(names)
    assert "highs" in ep.available_methods(FLRound)                      # by type: no probe
    blocks = fl_round_instance(8, 2, 3, seed=0, resource_block_hz=1e5)
    names = ep.available_methods(blocks, kind="exact")
    assert {"fl-bisect", "highs", "scipy", "pyomo"} <= set(names)
    assert "cp-sat" not in names                          # the round-time column T is continuous
    mixed = MILP(c=[1.0, 1.0], A=[[1.0, 1.0]], row_lower=1.5, integrality=[1, 0])
    assert ep.available_methods(mixed, kind="exact")[:3] == ["highs", "scipy", "pyomo"]
    # the probe only filters the list: an explicit request still raises the method's own error
    with pytest.raises(UnsupportedProblemError, match=r"FLRound with continuous bandwidth .* 'fl-bisect'"):
        ep.solve(continuous, "highs")
    with pytest.raises(UnsupportedProblemError, match=r"'cp-sat' cannot take a MILP with continuous columns; it needs "
                                                      r"integer variables: pass options=\{'continuous_quantum': q\}"):
        ep.solve(mixed, "cp-sat")
    r = ep.solve(mixed, "cp-sat", options={"continuous_quantum": 0.5})  # the option lifts the declared refusal
    assert r.status is Status.FEASIBLE and r.fun == 1.5
    with pytest.raises(ep.ProblemDataError,
                       match=r"`options\['continuous_quantum'\]` = -1 for method 'cp-sat'; expected a finite"):
        ep.solve(mixed, "cp-sat", options={"continuous_quantum": -1})
    assert get_method("highs").refusal(continuous).startswith("an FLRound with continuous bandwidth")
    assert get_method("cp-sat").refusal(KNAP) is None


def test_default_method_skips_methods_that_refuse_the_instance(scratch_method) -> None:
    scratch_method("test-picky", lambda p, c: None, problem=MILP, kind="exact", priority=1,
                   refuses=lambda milp: "never takes a MILP")
    assert ep.available_methods(KNAP)[0] == "highs" and "test-picky" in ep.available_methods(MILP)
    assert ep.solve(KNAP).method == "highs"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "gurobi"}, ProblemDataError, r"`method` = 'gurobi' is not a registered method; expected one of "
                                                 r".*cp-sat.*highs"),
        ({"time_limit": -1}, ProblemDataError, r"`time_limit` = -1; expected a positive number of seconds or None"),
        ({"time_limit": 0}, ProblemDataError, r"`time_limit` = 0; expected a positive"),
        ({"time_limit": "1s"}, ProblemDataError, r"`time_limit` = '1s'"),
        ({"seed": -3}, ProblemDataError, r"`seed` = -3; expected a non-negative integer or None"),
        ({"options": [1]}, ProblemDataError, r"`options` = \[1\]; expected a mapping"),
        ({"method": "highs", "options": {"gapp": 1}}, ProblemDataError,
         r"`options` has unknown keys \['gapp'\] for method 'highs'; accepted: .*mip_rel_gap"),
        ({"method": "highs", "options": {"mip_rel_gap": "tight"}}, ProblemDataError,
         r"`options\['mip_rel_gap'\]` = 'tight' for method 'highs'; expected a finite number >= 0"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ep.solve(KNAP, **kwargs)


def test_unsupported_problem_lists_capable_methods(scratch_method) -> None:
    def only_knapsack(problem, ctx):
        raise AssertionError("never called")

    scratch_method("test-knap-only", only_knapsack, problem=Knapsack, kind="heuristic")
    with pytest.raises(UnsupportedProblemError, match=r"'test-knap-only' cannot solve a MILP; methods that can: "
                                                      r"highs, cp-sat, scipy, pyomo"):
        ep.solve(KNAP, "test-knap-only")
    with pytest.raises(UnsupportedProblemError, match="no registered method solves a str"):
        ep.solve("not a problem")


def test_missing_library_names_what_to_install(scratch_method) -> None:
    scratch_method("test-missing", lambda p, c: None, problem=MILP, kind="exact",
                   requires=("edgeplan_no_such_module",), install="edgeplan-no-such-package")
    with pytest.raises(SolverUnavailableError, match=r"needs edgeplan_no_such_module, which is not installed; "
                                                     r"install it with `pip install edgeplan-no-such-package`"):
        ep.solve(KNAP, "test-missing")
    assert "test-missing" not in ep.available_methods(KNAP)
    assert "test-missing" in ep.available_methods(KNAP, installed_only=False)


def test_a_plan_that_breaks_a_constraint_is_downgraded(scratch_method) -> None:
    def greedy_liar(problem, ctx):
        x = np.ones(problem.n_vars)  # takes every item: weight 12 > 7
        return Result(plan=x, fun=float(problem.c @ x), bound=None, status=Status.OPTIMAL)

    scratch_method("test-liar", greedy_liar, problem=MILP, kind="heuristic")
    r = ep.solve(KNAP, "test-liar")
    assert r.status is Status.ERROR and r.method == "test-liar"
    assert "plan breaks 1 constraint(s): row[0]: 12 (needs <= 7)" in r.message


def test_wrong_objective_or_bound_claims_are_downgraded(scratch_method) -> None:
    x = np.array([1.0, 1.0, 0.0, 0.0])  # the optimum, value 23

    scratch_method("test-boast", lambda p, c: Result(plan=x, fun=30.0, status=Status.FEASIBLE),
                   problem=MILP, kind="heuristic")
    scratch_method("test-bad-bound", lambda p, c: Result(plan=x, fun=23.0, bound=20.0, status=Status.FEASIBLE,
                                                         limit="time"), problem=MILP, kind="heuristic")
    r = ep.solve(KNAP, "test-boast")
    assert r.status is Status.ERROR and "claimed objective 30 but the plan evaluates to 23" in r.message
    r = ep.solve(KNAP, "test-bad-bound")      # the plan is fine; the bound is not a bound: dropped
    assert r.status is Status.FEASIBLE and r.bound is None and r.fun == 23.0
    assert "claimed bound 20 is on the wrong side of the plan's objective 23: dropped" in r.message
    assert r.stats["claimed"]["bound"] == 20.0


def test_optimal_must_be_earned_by_the_bound(scratch_method) -> None:
    """An "optimal" whose bound does not meet the plan's own objective within the stated gap is "feasible"; a
    claim worse than the plan achieves is harmless (a MILP's epigraph column may sit above its plan's value)."""
    worse = np.array([1.0, 0.0, 1.0, 0.0])  # value 17, the optimum is 23
    scratch_method("test-proud", lambda p, c: Result(plan=worse, fun=17.0, bound=23.0, status=Status.OPTIMAL,
                                                     stats={"mip_rel_gap": 1e-4}), problem=MILP, kind="exact")
    scratch_method("test-modest", lambda p, c: Result(plan=worse, fun=16.0, bound=17.0, status=Status.OPTIMAL),
                   problem=MILP, kind="exact")
    r = ep.solve(KNAP, "test-proud")
    assert r.status is Status.FEASIBLE and r.bound == 23.0 and r.stats["claimed"]["status"] == "optimal"
    assert "does not meet the plan's objective 17 within the stated gap 0.0001" in r.message
    r = ep.solve(KNAP, "test-modest")
    assert r.status is Status.OPTIMAL and r.fun == 17.0 and r.bound == 17.0


def test_reduction_solves_a_family_by_every_milp_backend() -> None:
    fam = Knapsack(values=(10, 13, 7, 8), weights=(3, 4, 2, 3), capacity=7)
    for method in ("highs", "cp-sat", "scipy", "pyomo"):
        r = ep.solve(fam, method)
        assert r.status is Status.OPTIMAL and r.plan == (0, 1) and r.fun == 23.0, method
        assert r.stats["reduction"] == "to_milp" and r.build_time >= r.stats["reduction_time"]


def test_partition_methods_declare_what_they_refuse() -> None:
    from edgeplan.formulations.partition.instances import random_pipeline_instance, random_split_instance

    chain = random_split_instance(6, 3, kind="chain", seed=1)
    assert {"split-enum", "dads"} <= set(ep.available_methods(chain))
    dag = random_split_instance(6, 2, kind="residual", seed=1)
    listed = ep.available_methods(dag)
    assert "dads" in listed and "split-enum" not in listed
    capped = random_split_instance(6, 2, kind="chain", memory=True, seed=1)
    listed = ep.available_methods(capped, kind="exact")
    assert "split-enum" in listed and "dads" not in listed and "highs" in listed
    with pytest.raises(ep.UnsupportedProblemError, match="memory caps"):
        ep.solve(capped, "dads")
    free = random_pipeline_instance(6, 3, order="free", minimize="iteration", seed=2)
    assert "pipeline-dp" not in ep.available_methods(free)
    assert "pipeline-dp" in ep.available_methods(random_pipeline_instance(6, 3, seed=2))
    assert ep.solve(free).method != "pipeline-dp"
