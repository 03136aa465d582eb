"""Plan files: round trip, fingerprints, and named errors for malformed or mismatched files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeplan as ep
from edgeplan import PlanError
from edgeplan.formulations.instances import knapsack
from edgeplan.io.plans import exporters_for, fingerprint, plan_document
from edgeplan.registry import exporter


def test_round_trip_with_source(tmp_path: Path) -> None:
    p = knapsack(8, 2, seed=1)
    r = ep.solve(p, "highs")
    f = ep.save_plan(tmp_path / "plan.json", p, r, {"family": "knapsack", "params": {"n_items": 8, "n_rows": 2},
                                                    "seed": 1})
    pf = ep.load_plan(f, p)
    assert np.array_equal(pf.plan, r.plan) and pf.result["fun"] == r.fun and pf.result["status"] == "optimal"
    rebuilt = pf.rebuild_problem()
    assert fingerprint(rebuilt) == fingerprint(p) and rebuilt.objective(pf.plan) == r.fun


def test_fingerprint_tracks_the_data() -> None:
    assert fingerprint(knapsack(8, 2, seed=1)) == fingerprint(knapsack(8, 2, seed=1))
    assert fingerprint(knapsack(8, 2, seed=1)) != fingerprint(knapsack(8, 2, seed=2))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("plan"), r"missing key `plan`"),
        (lambda d: d.update(schema_version=9), r"`schema_version` = 9; this edgeplan reads versions 1, 2"),
        (lambda d: d.update(schema="other"), r"`schema` = 'other'; expected 'edgeplan.plan'"),
        (lambda d: d.update(plan_type="os:system"), r"`plan_type` = .os:system. names no class"),
        (lambda d: d.update(plan_type="edgeplan.nope:X"), r"names no class of this edgeplan version"),
        (lambda d: d.update(schema_version=1, plan_type="os:system"), r"expected 'ndarray' or 'module:Class' inside"),
        (lambda d: d.update(schema_version=1, plan_type="edgeplan.x:Unknown"), r"names no class of this edgeplan"),
        (lambda d: d.update(plan=["a"]), r"`plan` is not a numeric vector"),
        (lambda d: d.update(result=3), r"`result` = 3; expected dict"),
        (lambda d: d.update(problem_fingerprint="md5:x"), r"`problem_fingerprint` = 'md5:x'"),
        (lambda d: d.update(source={"family": 1}), r"`source` = .*expected an object with family"),
    ],
)
def test_malformed_files_are_rejected_by_name(tmp_path: Path, edit, match: str) -> None:
    p = knapsack(6, 2)
    doc = plan_document(p, ep.solve(p, "highs"))
    edit(doc)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(PlanError, match=match):
        ep.load_plan(f)


def test_mismatched_and_unreadable_files(tmp_path: Path) -> None:
    p = knapsack(6, 2)
    f = ep.save_plan(tmp_path / "p.json", p, ep.solve(p, "highs"))
    with pytest.raises(PlanError, match="`problem_fingerprint` does not match the given problem"):
        ep.load_plan(f, knapsack(6, 2, seed=5))
    assert fingerprint(ep.load_plan(f).rebuild_problem()) == fingerprint(p)  # the stored problem data
    doc = json.loads(f.read_text())
    del doc["problem"]
    f.write_text(json.dumps(doc))
    with pytest.raises(PlanError, match="neither `source` nor `problem`"):
        ep.load_plan(f).rebuild_problem()
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(PlanError, match=r"t.json is not valid JSON"):
        ep.load_plan(tmp_path / "t.json")
    with pytest.raises(PlanError, match="no such plan file"):
        ep.load_plan(tmp_path / "none.json")


def test_exporter_registry(tmp_path: Path) -> None:
    class Marker(np.ndarray):
        pass

    @exporter("test-txt", plan=Marker)
    def to_txt(problem, plan, out: Path) -> list[Path]:
        f = out / "x.txt"
        f.write_text(" ".join(map(str, plan.tolist())))
        return [f]

    plan = np.array([1.0, 0.0]).view(Marker)
    assert "test-txt" in exporters_for(plan)
    (f,) = ep.export_plan(None, plan, "test-txt", tmp_path / "out")
    assert f.read_text() == "1.0 0.0"
    with pytest.raises(PlanError, match=r"`to` = 'onnx': a plan \(a solution vector\) has no export formats"):
        ep.export_plan(None, np.zeros(2), "onnx", tmp_path)
