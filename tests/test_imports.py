"""highspy 1.15 and ortools 9.15 ship one HiGHS library under the same name; we pin highspy <1.15.
Every backend (and torch) must import in one process, in both orders."""

import subprocess
import sys

import pytest

MODULES = ["highspy", "ortools.sat.python.cp_model", "cvxpy", "pyomo.environ", "torch", "pyscipopt"]


@pytest.mark.parametrize("order", [MODULES, MODULES[::-1]], ids=["forward", "reverse"])
def test_all_backends_in_one_process(order: list[str]) -> None:
    code = "; ".join(f"import {m}" for m in order) + "; print('ok')"
    code += "; import highspy; h = highspy.Highs(); h.setOptionValue('output_flag', False)"
    code += "; from ortools.sat.python import cp_model; m = cp_model.CpModel(); x = m.new_int_var(0, 3, 'x')"
    code += "; m.maximize(x); s = cp_model.CpSolver(); assert s.solve(m) == cp_model.OPTIMAL"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok" in out.stdout


def test_import_edgeplan_is_light() -> None:
    code = ("import sys, edgeplan; heavy = {'torch', 'highspy', 'ortools', 'pyomo', 'cvxpy', 'pandas', "
            "'matplotlib', 'transformers'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
