"""At least 300 seeded tiny instances per family with degenerate data, every exact method against the brute force.

Each family's ``tests/<family>/nasty.py`` builds the instances (zero bytes and costs, caps that bind exactly,
costs spanning 1e-9..1e3, nothing feasible; its docstring says which) and names them in ``INSTANCES``; the
seeds are split evenly among them and into chunks (for pytest-xdist). For every instance:

* every exact method that takes it returns a status, never an exception; a plan passes ``check``;
* no feasible plan: the status is ``infeasible``; else ``optimal`` at the brute-force optimum, to
  ``RTOL`` relative or the absolute precision the method states (``stats["objective_atol"]``);
* the methods in the family's ``MAY_FAIL`` may instead return ``error`` (their solver gave up), never a plan;
* no heuristic beats the optimum or says optimal away from it.
"""

from __future__ import annotations

import importlib

import pytest

from contract.registry_cases import RTOL, brute_force, check_heuristics
from edgeplan import Status, registry, solve
from edgeplan.solvers.registry import capable_methods

#: Instances per family.
PER_FAMILY = 300
#: Seeds per test case.
CHUNK = 25


def _cases() -> list[tuple[str, int]]:
    return [(family, start) for family in registry.FAMILIES for start in range(0, PER_FAMILY, CHUNK)]


def _instances(family: str, start: int):
    module = importlib.import_module(f"{family}.nasty")
    builders = module.INSTANCES
    for seed in range(start, start + CHUNK):
        build = builders[seed % len(builders)]
        yield f"{build.__name__}({seed})", build(seed), module.MAY_FAIL


def test_every_family_has_nasty_instances() -> None:
    for family in registry.FAMILIES:
        module = importlib.import_module(f"{family}.nasty")
        assert module.INSTANCES, family


@pytest.mark.parametrize(("family", "start"), _cases(), ids=lambda v: str(v))
def test_exact_methods_meet_the_brute_force_on_degenerate_data(family: str, start: int) -> None:
    for label, p, may_fail in _instances(family, start):
        best = brute_force(p)
        for m in (m.name for m in capable_methods(p, "exact", installed_only=True)):
            r = solve(p, m, time_limit=60)
            where = f"{label}, {m}: {r}; brute force {best}"
            if r.status is Status.ERROR and m in may_fail:
                assert not r.has_plan, where
                continue
            assert r.status is not Status.ERROR, where
            if r.has_plan:
                assert not p.check(r.plan), where
            if best is None:
                assert r.status is Status.INFEASIBLE, where
                continue
            assert r.status is Status.OPTIMAL, where
            precision = RTOL * abs(best) + 1e-9 + float(r.stats.get("objective_atol", 0.0))
            assert abs(r.fun - best) <= precision, where
        check_heuristics(p, [m.name for m in capable_methods(p, "heuristic", installed_only=True)], best)
