"""Every registered MILP method on every catalog case (parametrized from the registry)."""

from __future__ import annotations

import numpy as np
import pytest

import edgeplan as ep
from edgeplan.errors import UnsupportedProblemError
from edgeplan.formulations.milp import MILP
from edgeplan.solvers.catalog import CATALOG, Case
from edgeplan.solvers.registry import methods_for

MILP_METHODS = [m.name for m in methods_for(MILP(c=[1.0], integrality=[1])) if m.available]


def test_catalog_is_large_enough() -> None:
    assert len(CATALOG) >= 12
    assert {"highs", "scipy", "cp-sat", "pyomo"} <= set(MILP_METHODS)


@pytest.mark.parametrize("method", MILP_METHODS)
@pytest.mark.parametrize("case", CATALOG, ids=lambda c: c.name)
def test_catalog(case: Case, method: str) -> None:
    if method in case.refuse:
        with pytest.raises(UnsupportedProblemError, match="continuous"):
            ep.solve(case.milp, method)
        return
    result = ep.solve(case.milp, method)
    assert result.status is case.status, result
    if case.status is ep.Status.OPTIMAL:
        assert result.fun == pytest.approx(case.fun, rel=1e-6, abs=1e-9)
        assert result.plan is not None and not case.milp.check(result.plan)
        assert result.bound is not None
        assert result.gap <= 1e-4 + 1e-12
    else:
        assert result.plan is None and result.fun is None


def test_an_empty_row_that_excludes_zero_is_infeasible_for_every_method() -> None:
    # Found by hypothesis: Pyomo drops rows without terms, so -4 <= 0 <= -4 must be caught before it.
    p = MILP(c=[0.0], A=np.zeros((1, 1)), row_lower=-4, row_upper=-4, col_upper=0, integrality=[1])
    for method in MILP_METHODS:
        r = ep.solve(p, method)
        assert r.status is ep.Status.INFEASIBLE, (method, r)
