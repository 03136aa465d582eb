"""Plan files written by edgeplan before the reorganisation (schema version 1, committed as made by that code)
still load, rebuild their problem from ``source`` with a matching fingerprint, and validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgeplan as ep
from edgeplan.io.plans import SCHEMA_VERSION, fingerprint, plan_document

FILES = sorted((Path(__file__).parent / "v1_plans").glob("*.json"))


def test_every_family_has_a_version_1_file() -> None:
    from edgeplan.registry import type_of

    names = {json.loads(f.read_text())["plan_type"].rpartition(":")[2] for f in FILES}
    assert {"ndarray", "SplitPlan", "PipelinePlan", "FLSchedule", "FLEnergySchedule", "SlidePlan", "CachePlan"} \
        <= names
    assert all(type_of(n) is not None for n in names - {"ndarray"})


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_version_1_file_loads_and_validates(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1 and doc["problem_type"].startswith("edgeplan.")
    pf = ep.load_plan(path)
    problem = pf.rebuild_problem()  # checks the version-1 fingerprint of the rebuilt instance
    assert ep.load_plan(path, problem).plan is not None  # type and fingerprint checks against the problem
    assert problem.check(pf.plan) == []
    assert problem.objective(pf.plan) == pytest.approx(pf.result["fun"], rel=1e-12)
    # written again, it is a version-2 file naming registry keys, and it loads the same plan
    new = plan_document(problem, pf.plan)
    assert new["schema_version"] == SCHEMA_VERSION == 2 and ":" not in new["problem_type"] + new["plan_type"]
    assert new["problem_fingerprint"] == fingerprint(problem) != pf.problem_fingerprint


def test_a_version_1_file_for_other_data_is_refused(tmp_path: Path) -> None:
    path = next(f for f in FILES if f.stem == "knapsack")
    other = ep.load_plan(path).rebuild_problem()
    from edgeplan.formulations.instances import knapsack

    with pytest.raises(ep.PlanError, match="`problem_fingerprint` does not match the given problem"):
        ep.load_plan(path, knapsack(8, 2, seed=4))
    assert ep.load_plan(path, other).plan is not None
