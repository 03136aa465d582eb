"""Adding a family is its own folders plus one line: a toy family (``new_family/``: formulations, one method,
its plan enumerator) is mounted as ``edgeplan.formulations.offload`` and ``edgeplan.solvers.offload``, its name is
added to ``FAMILIES``, and with nothing else changed it is found everywhere and passes the contract tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import edgeplan as ep
from edgeplan import registry
from edgeplan.io.scenarios import Instance
from edgeplan.solvers.registry import METHODS

HERE = Path(__file__).parent / "new_family"


@pytest.fixture
def offload_family(monkeypatch):
    import edgeplan.formulations
    import edgeplan.solvers

    for package, floor in ((edgeplan.formulations, "formulations"), (edgeplan.solvers, "solvers")):
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(HERE / floor)])
    monkeypatch.syspath_prepend(str(HERE / "tests"))
    monkeypatch.setattr(registry, "FAMILIES", (*registry.FAMILIES, "offload"))  # the one line
    for cached in (registry.load, registry._public):
        cached.cache_clear()
    yield
    registry.REDUCTIONS.remove(registry.type_of("Offload"))
    METHODS.remove("greedy-offload")
    registry.GENERATORS.remove("offload")
    for cached in (registry.load, registry._public):
        cached.cache_clear()
    toy = ("edgeplan.formulations.offload", "edgeplan.solvers.offload", "offload")
    for name in [m for m in sys.modules if m == "offload" or m.startswith(tuple(t + "." for t in toy)) or m in toy]:
        del sys.modules[name]


def test_a_new_family_is_its_folders_plus_one_line(offload_family, tmp_path) -> None:
    from contract.registry_cases import brute_force, not_better, same

    offload = ep.Offload  # the package face finds it through the family's __all__
    assert ep.formulations.Offload is offload and registry.type_of("OffloadPlan") is ep.OffloadPlan
    p = Instance("demo", "offload", {"n_tasks": 6}, 1).build()  # scenario files reach its generator
    assert isinstance(p, offload)
    methods = ep.available_methods(p)
    assert {"greedy-offload", "highs", "cp-sat", "scipy", "pyomo"} <= set(methods)
    g = registry.GENERATORS.get("offload")
    assert g.family == "offload" and len(g.tiny) == 2
    for params in g.tiny:
        for seed in range(3):
            q = g.func(**params, seed=seed)
            best = brute_force(q)
            for m in ("highs", "cp-sat", "scipy", "pyomo"):  # every MILP backend, through its reduction
                r = ep.solve(q, m)
                assert r.status is ep.Status.OPTIMAL and same(r.fun, best), (m, r, best)
            h = ep.solve(q, "greedy-offload")
            assert h.has_plan and not q.check(h.plan) and not_better(h.fun, best, "min")
    r = ep.solve(p, "highs")
    pf = ep.load_plan(ep.save_plan(tmp_path / "plan.json", p, r), p)  # plan files name it by registry key
    assert pf.problem_type == "Offload" and (pf.plan.remote == r.plan.remote).all()


def test_the_toy_family_is_gone_after_the_test() -> None:
    assert "offload" not in registry.FAMILIES and "greedy-offload" not in METHODS
    with pytest.raises(AttributeError):
        _ = ep.Offload
