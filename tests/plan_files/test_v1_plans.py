"""Plan files written by edgeplan before the reorganisation (schema version 1, committed as made by that code)
still load, rebuild their problem from ``source`` with a matching fingerprint, and validate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def _baseline_env() -> dict[str, str]:
    """The environment of a process that computes floats as the machine that wrote the files did (x86-64-v3):
    numpy's AVX-512 loops and OpenBLAS's AVX-512 kernels round exp, log and matmul differently in the last bits,
    and a generator's data, so its fingerprint, follows (fl-round and cache-replay do). Only the AVX-512
    dispatch targets this machine has are switched off (elsewhere nothing changes)."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    env = dict(os.environ)
    off = [f for f in __cpu_dispatch__ if __cpu_features__.get(f) and f != "X86_V3"]
    if off:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(off)
        env.setdefault("OPENBLAS_CORETYPE", "Haswell")
    return env


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_version_1_file_loads_and_validates(path: Path) -> None:
    """In a child process with the writing machine's float behaviour (:func:`_baseline_env`)."""
    code = f"from plan_files.test_v1_plans import check_file; check_file({str(path)!r})"
    done = subprocess.run([sys.executable, "-c", code], env=_baseline_env(), cwd=Path(__file__).parents[1],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def check_file(path: str | Path) -> None:
    """A version-1 file loads, rebuilds its problem with the same fingerprint, and validates."""
    path = Path(path)
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
