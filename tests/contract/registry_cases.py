"""The cases of the contract tests, generated from the registry: nothing here names a family or a method."""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator
from typing import Any

from edgeplan import registry
from edgeplan.registry import GENERATORS, Generator

#: Seeds of every tiny parameter set.
SEEDS = (0, 1, 2)
#: Relative agreement of two optima (methods exact to a tolerance, e.g. ``fl-energy``'s 1e-6, agree within it).
RTOL = 1e-5


def generators() -> list[Generator]:
    """Every registered generator that needs no real model, by name."""
    return [g for _, g in sorted(GENERATORS.items()) if not g.real_model]


def tiny_cases() -> list[tuple[str, int]]:
    """``(generator name, index of its tiny parameter set)`` pairs."""
    return [(g.name, i) for g in generators() for i in range(len(g.tiny))]


def tiny_instances(name: str, index: int) -> Iterator[tuple[int, Any]]:
    g = GENERATORS.get(name)
    for seed in SEEDS:
        yield seed, g.func(**g.tiny[index], seed=seed)


def _enumerators() -> dict[type, Any]:
    out = {}
    for family in (*registry.FAMILIES, "milp"):
        module = importlib.import_module(f"{family}.brute")  # tests/<family>/brute.py
        for t in module.TYPES:
            out[t] = module.plans
    return out


def brute_force(problem: Any, plans: Any = None) -> float | None:
    """The best objective over every plan the family's enumerator yields that passes ``check`` (None: none does).

    The one generic brute force of the tests: each family contributes only its plan enumerator
    (``tests/<family>/brute.py``); ``plans`` replaces it with an explicit iterable.
    """
    best = None
    for plan in (_enumerators()[type(problem)](problem) if plans is None else plans):
        if problem.check(plan):
            continue
        v = float(problem.objective(plan))
        if best is None or (v < best if problem.sense == "min" else v > best):
            best = v
    return best


def same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-9)


def not_better(value: float, optimum: float, sense: str) -> bool:
    """``value`` is no better than ``optimum`` (up to :data:`RTOL`)."""
    slack = RTOL * max(1.0, abs(optimum))
    return value >= optimum - slack if sense == "min" else value <= optimum + slack


def check_heuristics(problem: Any, methods: Any, optimum: float | None, *, seed: int = 0, rtol: float = RTOL,
                     bound: float | None = None) -> None:
    """The one written form of "heuristics are feasible and never beat the optimum".

    ``optimum`` is the proven optimum (None: the instance is infeasible), ``bound`` a valid bound on it when
    the optimum itself is only known to a tolerance. Every heuristic's result is a status, never an error; a
    plan passes ``check`` and carries the problem's own objective; no plan beats the optimum (or the bound) by
    more than ``rtol``; a bound a heuristic claims lies on the right side of the optimum; ``optimal`` only at
    the optimum; nothing is returned for an infeasible instance.
    """
    from edgeplan import Status, solve

    ref = optimum if bound is None else bound
    for m in methods:
        r = solve(problem, m, seed=seed)
        where = f"{m}: {r}; optimum {optimum}"
        assert r.status is not Status.ERROR, where
        if optimum is None:
            assert not r.has_plan and r.status in (Status.INFEASIBLE, Status.NO_SOLUTION), where
            continue
        if r.has_plan:
            assert not problem.check(r.plan), where
            assert r.fun == problem.objective(r.plan), where
            slack = rtol * max(1.0, abs(ref))
            assert (r.fun >= ref - slack) if problem.sense == "min" else (r.fun <= ref + slack), where
            if r.bound is not None:
                assert (r.bound <= optimum + slack) if problem.sense == "min" else (r.bound >= optimum - slack), where
            if r.status is Status.OPTIMAL:
                assert math.isclose(r.fun, optimum, rel_tol=max(rtol, RTOL), abs_tol=1e-9), where

