import math

import pytest

from edgeplan import ProblemDataError, Result, SolverError, Status
from edgeplan.solvers.result import relative_gap


def test_gap_conventions() -> None:
    assert relative_gap(10.0, 9.0) == pytest.approx(0.1)
    assert relative_gap(-10.0, -11.0) == pytest.approx(0.1)
    assert relative_gap(0.0, 0.0) == 0.0
    assert relative_gap(0.0, -1.0) == math.inf
    assert relative_gap(None, 1.0) is None
    assert relative_gap(8.0, 10.0, relative_to="bound") == pytest.approx(0.2)  # 20% short of the optimum
    assert relative_gap(0.0, 10.0, relative_to="bound") == pytest.approx(1.0)
    r = Result(plan=[1], fun=4.0, bound=2.0, status="feasible", limit="time")
    assert r.gap == pytest.approx(0.5) and r.status is Status.FEASIBLE and not r.success and r.has_plan


def test_success_and_require_plan() -> None:
    ok = Result(plan=[1], fun=1.0, bound=1.0, status=Status.OPTIMAL, method="m")
    assert ok.success and ok.require_plan() == [1]
    none = Result(plan=None, fun=None, status=Status.INFEASIBLE, method="m", message="native text")
    with pytest.raises(SolverError, match="'m' returned no plan: status infeasible \\(native text\\)"):
        none.require_plan()


def test_result_rejects_inconsistent_fields() -> None:
    with pytest.raises(ProblemDataError, match="`limit` = 'time' with `status` = 'optimal'"):
        Result(plan=[1], fun=1.0, status=Status.OPTIMAL, limit="time")
    with pytest.raises(ProblemDataError, match="`plan` is None with `status` = 'feasible'"):
        Result(plan=None, fun=None, status=Status.FEASIBLE)
    with pytest.raises(ValueError, match="'done' is not a valid Status"):
        Result(plan=None, fun=None, status="done")
    with pytest.raises(ProblemDataError, match="`sense` = 'up'"):
        Result(plan=None, fun=None, status=Status.ERROR, sense="up")


def test_result_is_frozen() -> None:
    r = Result(plan=None, fun=None, status=Status.ERROR)
    with pytest.raises(AttributeError):
        r.fun = 3.0  # type: ignore[misc]
    assert r.replace(message="x").message == "x" and r.message == ""
