"""Contract tests generated from the registry: every generator x every method that accepts its instances.

A family gets these by registering its generators (with ``tiny`` parameter sets), methods and a plan enumerator
(``tests/<family>/brute.py``); nothing here names a family or a method.

* every exact method equals the generic brute force on tiny instances (or proves them infeasible);
* every plan passes ``check`` and ``solve()``'s objective is the problem's;
* no heuristic beats the proven optimum;
* a time limit returns on time, with an incumbent and a gap where the method has a bound;
* bad input (options, arguments, plans, generator parameters) is a named error.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from contract.registry_cases import (
    brute_force,
    check_heuristics,
    generators,
    not_better,
    same,
    tiny_cases,
    tiny_instances,
)
from edgeplan import EdgeplanError, ProblemDataError, Status, solve
from edgeplan.io.scenarios import Instance
from edgeplan.solvers.registry import capable_methods

TINY = tiny_cases()
IDS = [f"{name}[{i}]" for name, i in TINY]


def _methods(problem, kind):
    return [m.name for m in capable_methods(problem, kind, installed_only=True)]


def _checked(problem, r) -> None:
    """The result is a status, never an error; a plan passes check and carries the problem's own objective."""
    assert r.status is not Status.ERROR, r
    if r.has_plan:
        assert not problem.check(r.plan), r
        assert r.fun == pytest.approx(problem.objective(r.plan), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("name", "index"), TINY, ids=IDS)
def test_exact_methods_equal_the_brute_force(name: str, index: int) -> None:
    for seed, p in tiny_instances(name, index):
        best = brute_force(p)
        methods = _methods(p, "exact")
        assert methods, f"{name}: no exact method takes the instance"
        for m in methods:
            r = solve(p, m, time_limit=60)
            _checked(p, r)
            where = f"{name}[{index}] seed {seed}, {m}: {r}"
            if best is None:
                assert r.status is Status.INFEASIBLE, where
            else:
                assert r.status is Status.OPTIMAL and same(r.fun, best), f"{where}; brute force {best}"
                if r.bound is not None:
                    assert not_better(r.bound, best, "max" if p.sense == "min" else "min"), where


@pytest.mark.parametrize(("name", "index"), TINY, ids=IDS)
def test_heuristics_never_beat_the_optimum(name: str, index: int) -> None:
    for _, p in tiny_instances(name, index):
        check_heuristics(p, _methods(p, "heuristic"), brute_force(p))


def _default_instances():
    return [(g.name, m) for g in generators() for m in _methods(g.func(seed=0), None)]


@pytest.mark.parametrize(("name", "method"), _default_instances(), ids=lambda v: str(v))
def test_a_time_limit_is_kept(name: str, method: str) -> None:
    """On the generator's default instance with a 1 s limit: back within 1 s plus 3 s of slack (building and
    checking the model count too) unless the method declares ``keeps_time_limit=False``, and a limit leaves an
    incumbent with its gap or no plan."""
    from edgeplan.registry import generator_for
    from edgeplan.solvers.registry import get_method

    p = generator_for(name)(seed=0)
    t0 = time.perf_counter()
    r = solve(p, method, time_limit=1.0, seed=0)
    wall = time.perf_counter() - t0
    if get_method(method).keeps_time_limit:
        assert wall <= 4.0, f"{method} on {name} took {wall:.2f} s with a 1 s limit"
    else:  # declared: it cannot be stopped at the limit, and says by how much it overran
        assert "overrun" in r.stats, r
    _checked(p, r)
    if r.limit is not None:
        assert r.status in (Status.FEASIBLE, Status.NO_SOLUTION), r
        if r.has_plan and r.bound is not None:
            assert r.gap is not None and r.gap >= 0, r


BAD_PLANS = (None, "plan", 3.5, np.zeros(0), {"unknown": 1})


@pytest.mark.parametrize("name", [g.name for g in generators()])
def test_bad_input_is_a_named_error(name: str) -> None:
    from edgeplan.registry import GENERATORS

    g = GENERATORS.get(name)
    with pytest.raises(ProblemDataError, match=rf"generator '{name}' rejected the parameters"):
        Instance("bad", name, {"no_such_parameter": 1}, 0).build()
    p = g.func(**(g.tiny[0] if g.tiny else {}), seed=0)
    for bad in BAD_PLANS:
        for what in (p.check, p.objective, p.evaluate):
            with pytest.raises(EdgeplanError):
                what(bad)
    for m in _methods(p, None):
        with pytest.raises(ProblemDataError, match=r"`options` has unknown keys \['no_such_option'\]"):
            solve(p, m, options={"no_such_option": 1})
        with pytest.raises(ProblemDataError, match=r"`time_limit` = -1"):
            solve(p, m, time_limit=-1)


@pytest.mark.parametrize("name", [g.name for g in generators() if g.demo])
def test_every_demo_method_takes_its_generator_instances(name: str) -> None:
    """The tour of ``edgeplan demo`` compares the methods a generator lists: each must take the instances."""
    from edgeplan.registry import GENERATORS

    g = GENERATORS.get(name)
    title, params, methods = g.demo
    p = g.func(**params, seed=0)
    takes = {m.name for m in capable_methods(p, None)}
    assert [m for m in methods if m not in takes] == [], f"{name}: {title}"


def test_every_exact_method_has_a_time_limit_benchmark() -> None:
    """``benchmarks/bench_time_limits.py`` measures every registered exact method at its largest shipped size."""
    import importlib.util
    from pathlib import Path

    from edgeplan.solvers.registry import METHODS

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_time_limits.py"
    spec = importlib.util.spec_from_file_location("bench_time_limits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exact = {name for name, m in METHODS.items() if m.kind == "exact"}
    assert exact <= {case[0] for case in module.CASES}, sorted(exact - {case[0] for case in module.CASES})
