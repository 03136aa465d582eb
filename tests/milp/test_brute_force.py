"""Every exact MILP method equals brute-force enumeration on random tiny integer programs."""

from __future__ import annotations

import numpy as np
import pytest
from contract.registry_cases import brute_force
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgeplan as ep
from edgeplan import MILP, Status


@st.composite
def tiny_milps(draw) -> MILP:
    n = draw(st.integers(1, 3))
    m = draw(st.integers(0, 3))
    coef = st.integers(-6, 6).map(lambda v: v / 2)  # halves: CP-SAT scales these rows by 10
    c = draw(st.lists(coef, min_size=n, max_size=n))
    A = np.array(draw(st.lists(st.lists(coef, min_size=n, max_size=n), min_size=m, max_size=m)),
                 dtype=float).reshape(m, n)
    lo = draw(st.lists(st.integers(-3, 1), min_size=n, max_size=n))
    width = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    rlo = draw(st.lists(st.sampled_from([-np.inf, -4.0, -1.5, 0.0, 2.0]), min_size=m, max_size=m))
    span = draw(st.lists(st.sampled_from([0.0, 1.0, 3.5, np.inf]), min_size=m, max_size=m))
    rhi = [a + b if np.isfinite(a) else (b if np.isfinite(b) else 5.0) for a, b in zip(rlo, span, strict=True)]
    return MILP(c=c, A=A, row_lower=rlo, row_upper=rhi, col_lower=lo,
                col_upper=np.add(lo, width), integrality=np.ones(n), sense=draw(st.sampled_from(["min", "max"])),
                constant=draw(coef))


@pytest.mark.parametrize("method", ["highs", "cp-sat", "scipy", "pyomo"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=tiny_milps())
def test_exact_methods_equal_brute_force(method: str, p: MILP) -> None:
    expected = brute_force(p)  # the generic brute force over tests/milp/brute.py's integer points
    r = ep.solve(p, method)
    if expected is None:
        assert r.status is Status.INFEASIBLE, r
    else:
        assert r.status is Status.OPTIMAL, r
        assert r.fun == pytest.approx(expected, abs=1e-6)
        assert not p.check(r.plan)


def test_highs_repairs_a_presolve_solve_error() -> None:
    """The same model through highspy: "Solve error" from presolve, then infeasible without it."""
    p = MILP(c=[0.0, 0.0, 0.0], A=[[1.0, -1.0, 0.5]], row_lower=[0.0], row_upper=[0.0], col_lower=[0, -1, 1],
             col_upper=[0, 1, 1], integrality=[1, 1, 1])
    r = ep.solve(p, "highs")
    assert r.status is Status.INFEASIBLE and r.stats["retried_without_presolve"] is True, r


def test_pyomo_repairs_a_presolve_solve_error() -> None:
    """appsi's HiGHS answered "Solve error" (MIP claims optimality with an infeasible point) on this infeasible
    integer model (x0 must be 1/2; found by hypothesis): solved once more without presolve, it is infeasible."""
    p = MILP(c=[0.0, 0.0, 0.0], A=[[-1.0, 0.5, 3.0]], row_lower=[-4.0], row_upper=[-4.0], col_lower=[0, -1, -1],
             col_upper=[1, -1, -1], integrality=[1, 1, 1])
    r = ep.solve(p, "pyomo")
    assert r.status is Status.INFEASIBLE and r.stats["retried_without_presolve"] is True, r
    assert brute_force(p) is None


def test_scipy_repairs_a_presolve_solve_error() -> None:
    """HiGHS' presolve inside scipy.optimize.milp answered "Solve error" on this infeasible integer model (x1 must
    be 1/2; found by hypothesis): the backend solves it once more without presolve and proves it infeasible."""
    p = MILP(c=[0.0, 0.0, 0.0], A=[[1.0, -1.0, 0.5]], row_lower=[0.0], row_upper=[0.0], col_lower=[0, -1, 1],
             col_upper=[0, 1, 1], integrality=[1, 1, 1])
    r = ep.solve(p, "scipy")
    assert r.status is Status.INFEASIBLE and r.stats["retried_without_presolve"] is True, r
    assert brute_force(p) is None

