"""Known-answer catalog: small LPs/MILPs whose optima are derived by hand in the comments.

Every registered MILP method runs every case (``tests/milp/test_catalog.py``); ``edgeplan demo``
prints the table. A user adding a backend can run it against the same catalog (cvxpy's
``solver_test_helpers`` habit). ``status`` is the proven
answer, which every method must return (backends tell infeasible from unbounded themselves), and
``refuse`` the methods whose capabilities refuse the model (probed, not listed: CP-SAT takes no
continuous columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeplan.formulations.milp import MILP
from edgeplan.solvers.registry import methods_for
from edgeplan.solvers.result import Status

INF = np.inf


@dataclass(frozen=True)
class Case:
    name: str
    milp: MILP
    status: Status
    fun: float | None = None
    refuse: frozenset[str] = frozenset()
    doc: str = ""


def _case(name: str, milp: MILP, status: Status, fun: float | None = None, doc: str = "") -> Case:
    refuse = frozenset(m.name for m in methods_for(milp) if m.refusal(milp) is not None)  # from the capabilities
    return Case(name, milp, status, fun, refuse, doc)


def _build() -> list[Case]:
    cases = []
    # max 10a + 13b + 7c + 8d, 3a + 4b + 2c + 3d <= 7, binary. Weight-7 pairs: {a,b}=23, {b,d}=21;
    # triples need weight >= 8 except {a,c} + nothing; so 23.
    cases.append(_case("knapsack", MILP(c=[10, 13, 7, 8], A=[[3, 4, 2, 3]], row_upper=7, col_upper=1,
                                        integrality=[1] * 4, sense="max"), Status.OPTIMAL, 23.0))
    # 3x3 assignment, costs [[4,1,3],[2,0,5],[3,2,2]]: the six permutations cost 6, 11, 5, 9, 7, 6 -> 5.
    cost = np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]], dtype=float)
    rows = np.zeros((6, 9))
    for i in range(3):
        rows[i, 3 * i:3 * i + 3] = 1  # each worker one task
        rows[3 + i, i::3] = 1  # each task one worker
    cases.append(_case("assignment", MILP(c=cost.ravel(), A=rows, row_lower=1, row_upper=1, col_upper=1,
                                          integrality=[1] * 9), Status.OPTIMAL, 5.0))
    # min x + 2y + 3z, x + y + z = 6, y - z = 1, integers >= 0: y = 1 + z, x = 5 - 2z, cost 7 + 3z -> 7.
    cases.append(_case("equality-rows", MILP(c=[1, 2, 3], A=[[1, 1, 1], [0, 1, -1]], row_lower=[6, 1],
                                             row_upper=[6, 1], integrality=[1, 1, 1]), Status.OPTIMAL, 7.0))
    # min x, x + y >= -2, y <= 1, x and y free (LP): x >= -2 - y >= -3 -> -3.
    cases.append(_case("free-variables-lp", MILP(c=[1, 0], A=[[1, 1], [0, 1]], row_lower=[-2, -INF],
                                                 row_upper=[INF, 1], col_lower=-INF), Status.OPTIMAL, -3.0))
    # The same with free integers (CP-SAT's artificial box must not bind): -3.
    cases.append(_case("free-integers", MILP(c=[1, 0], A=[[1, 1], [0, 1]], row_lower=[-2, -INF],
                                             row_upper=[INF, 1], col_lower=-INF, integrality=[1, 1]),
                       Status.OPTIMAL, -3.0))
    # max x + y, 2x + 2y <= 3: LP relaxation 1.5, integer optimum 1.
    cases.append(_case("fractional-relaxation", MILP(c=[1, 1], A=[[2, 2]], row_upper=3, integrality=[1, 1],
                                                     sense="max"), Status.OPTIMAL, 1.0))
    cases.append(_case("fractional-lp", MILP(c=[1, 1], A=[[2, 2]], row_upper=3, sense="max"),
                       Status.OPTIMAL, 1.5))
    # x + y >= 3 and x + y <= 2 with 0 <= x, y <= 10 integers: infeasible.
    infeasible = dict(c=[1, 1], A=[[1, 1], [1, 1]], row_lower=[3, -INF], row_upper=[INF, 2], col_upper=10)
    cases.append(_case("infeasible", MILP(**infeasible, integrality=[1, 1]), Status.INFEASIBLE))
    cases.append(_case("infeasible-lp", MILP(**infeasible), Status.INFEASIBLE))
    # max x + y, x - y <= 1, x, y >= 0: the ray (t, t) improves forever.
    unbounded = dict(c=[1, 1], A=[[1, -1]], row_upper=1, sense="max")
    cases.append(_case("unbounded", MILP(**unbounded, integrality=[1, 1]), Status.UNBOUNDED))
    cases.append(_case("unbounded-lp", MILP(**unbounded), Status.UNBOUNDED))
    # No variables, no rows: the objective is the constant.
    cases.append(_case("empty", MILP(c=np.zeros(0), constant=2.5), Status.OPTIMAL, 2.5))
    # Bounds only: min -x - 2y, 0 <= x <= 3, -1 <= y <= 4 integers -> -3 - 8 = -11.
    cases.append(_case("bounds-only", MILP(c=[-1, -2], col_lower=[0, -1], col_upper=[3, 4], integrality=[1, 1]),
                       Status.OPTIMAL, -11.0))
    # Fractional bounds on an integer: min x with 0.5 <= x <= 3.7 -> 1.
    cases.append(_case("fractional-bounds", MILP(c=[1.0], col_lower=0.5, col_upper=3.7, integrality=[1]),
                       Status.OPTIMAL, 1.0))
    # No integer in [0.2, 0.8]: infeasible.
    cases.append(_case("integrality-infeasible", MILP(c=[1.0], col_lower=0.2, col_upper=0.8, integrality=[1]),
                       Status.INFEASIBLE))
    # Mixed: min -x - y, x + 2y <= 3.5, x <= 2.5 (x integer, y >= 0 continuous): objective
    # -x - (3.5 - x)/2 = -1.75 - x/2 -> x = 2, y = 0.75, -2.75.
    cases.append(_case("mixed-integer", MILP(c=[-1, -1], A=[[1, 2], [1, 0]], row_upper=[3.5, 2.5],
                                             integrality=[1, 0]), Status.OPTIMAL, -2.75))
    # Set cover of {1,2,3,4} by S1={1,2}, S2={2,3}, S3={3,4}, S4={1,4}: no set covers 3 elements -> 2.
    cover = np.array([[1, 0, 0, 1], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]])
    cases.append(_case("set-cover", MILP(c=np.ones(4), A=cover, row_lower=1, col_upper=1, integrality=[1] * 4),
                       Status.OPTIMAL, 2.0))
    # max 3x + 2y + 10, x + y <= 4, x + 3y <= 6, integers >= 0: (4, 0) gives 22, (3, 1) gives 21 -> 22.
    cases.append(_case("max-with-constant", MILP(c=[3, 2], A=[[1, 1], [1, 3]], row_upper=[4, 6],
                                                 integrality=[1, 1], sense="max", constant=10), Status.OPTIMAL, 22.0))
    # Decimal coefficients (CP-SAT scales rows by 100): max x + y, 0.1x + 0.25y <= 1, x <= 5:
    # y <= 4 - 0.4x; x = 5 -> y = 2, total 7 (x = 0 gives 4).
    cases.append(_case("decimal-coefficients", MILP(c=[-1, -1], A=[[0.1, 0.25]], row_upper=1, col_upper=[5, INF],
                                                    integrality=[1, 1]), Status.OPTIMAL, -7.0))
    # Degenerate: zero objective on a feasible polytope: every point is optimal, value = constant 1.
    cases.append(_case("zero-objective", MILP(c=[0, 0], A=[[1, 1]], row_lower=1, row_upper=1, constant=1.0,
                                              integrality=[1, 1]), Status.OPTIMAL, 1.0))
    return cases


CATALOG: list[Case] = _build()

__all__ = ["CATALOG", "Case"]
