"""CP-SAT's integer scaling: exact quanta reported, inexact models refused, continuous columns gridded."""

from __future__ import annotations

import numpy as np
import pytest

import edgeplan as ep
from edgeplan import MILP, Status, UnsupportedProblemError
from edgeplan.solvers.backends.cpsat import CLAMP, row_scales


def test_row_scales_pick_the_smallest_exact_power_of_ten() -> None:
    import scipy.sparse as sp

    A = sp.csr_array(np.array([[1.0, 2.0], [0.5, 0.25], [0.001, 3.0]]))
    d, change = row_scales(A, 6)
    assert d.tolist() == [0, 2, 3] and change.max() == 0.0


def test_quanta_are_reported() -> None:
    p = MILP(c=[-1, -1], A=[[0.1, 0.25]], row_upper=1, col_upper=[5, np.inf], integrality=[1, 1])
    r = ep.solve(p, "cp-sat")
    assert r.status is Status.OPTIMAL and r.fun == -7
    assert r.stats["row_quantum_min"] == pytest.approx(0.01) and r.stats["objective_quantum"] == 1.0
    assert r.stats["max_coef_rel_change"] == 0.0 and r.stats["clamped_columns"] == 1


def test_a_model_that_scaling_would_change_is_refused() -> None:
    p = MILP(c=[-1, -1], A=[[1 / 3, 1]], row_upper=2, col_upper=5, integrality=[1, 1], row_names=["third"])
    with pytest.raises(UnsupportedProblemError, match=r"scaling row\[0\] 'third' to integers at quantum 1e-6 "
                                                      r"changes a coefficient by 1e-06 \(relative\) > `scale_tol`"):
        ep.solve(p, "cp-sat")
    # Accepting that change on purpose: the answer agrees with HiGHS here.
    r = ep.solve(p, "cp-sat", options={"scale_tol": 1e-5})
    assert r.status is Status.OPTIMAL and r.fun == ep.solve(p, "highs").fun


def test_continuous_columns_on_a_grid_are_feasible_not_optimal() -> None:
    p = MILP(c=[-1, -1], A=[[1, 2], [1, 0]], row_upper=[3.5, 2.5], integrality=[1, 0])
    r = ep.solve(p, "cp-sat", options={"continuous_quantum": 0.25})
    assert r.status is Status.FEASIBLE and r.bound is None and r.fun == pytest.approx(-2.75)
    assert "grid q=0.25" in r.message


def test_artificial_box_is_never_reported_as_an_optimum() -> None:
    # min -x with x a free integer and x <= 3e9 by a row: the optimum lies beyond the box 2**30.
    p = MILP(c=[-1], A=[[1]], row_upper=3e9, col_lower=-np.inf, integrality=[1])
    r = ep.solve(p, "cp-sat")
    assert r.status is Status.FEASIBLE and r.bound is None and r.fun == -CLAMP
    assert "artificial box" in r.message
    assert ep.solve(p, "highs").fun == -3e9


def test_row_without_integer_activity_is_infeasible() -> None:
    # -1.5 <= x <= -1.25 with x integer: the rounded row bounds [-1, -2] are empty.
    p = MILP(c=[1.0], A=[[1.0]], row_lower=-1.5, row_upper=-1.25, col_lower=-5, integrality=[1])
    r = ep.solve(p, "cp-sat")
    assert r.status is Status.INFEASIBLE and "row[0]" in r.message
    assert ep.solve(p, "highs").status is Status.INFEASIBLE


def test_time_quantum_models_have_finite_boxes_and_cpsat_agrees_with_highs() -> None:
    """On ``to_milp(time_quantum_s=q)`` every column has a finite box derived from the data (bytes <= the output,
    the period <= the largest stage sum): CP-SAT then proves infeasible instances infeasible (it said no_solution
    inside its artificial box) and optimal ones optimal, as HiGHS does on the same integral model."""
    from edgeplan.formulations.partition.instances import random_pipeline_instance

    seen = set()
    for seed in range(40):
        p = random_pipeline_instance(5, 3, memory=True, seed=seed)
        milp, _ = p.to_milp(time_quantum_s=1e-4)
        assert np.isfinite(milp.col_upper).all()
        # the stage times are not on a decimal grid: CP-SAT scales the rows to 9 digits (1e-3 relative)
        a = ep.solve(milp, "cp-sat", time_limit=20, options={"scale_tol": 1e-3, "scale_digits": 9})
        b = ep.solve(milp, "highs", time_limit=20)
        assert a.status is b.status and a.status in (Status.OPTIMAL, Status.INFEASIBLE), (seed, a, b)
        if a.has_plan:
            assert a.fun == pytest.approx(b.fun, rel=1e-6), (seed, a, b)
        seen.add(a.status)
    assert seen == {Status.OPTIMAL, Status.INFEASIBLE}
