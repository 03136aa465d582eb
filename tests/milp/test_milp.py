import numpy as np
import pytest
import scipy.sparse as sp

from edgeplan import MILP, PlanError, ProblemDataError


def test_defaults_and_sparse_storage() -> None:
    p = MILP(c=[1, 2], A=sp.coo_array(([1.0, 2.0, 3.0], ([0, 0, 0], [0, 1, 1])), shape=(1, 2)), row_upper=5)
    assert isinstance(p.A, sp.csc_array) and p.nnz == 2 and p.A[0, 1] == 5.0  # duplicates summed
    assert p.col_lower.tolist() == [0, 0] and np.isinf(p.col_upper).all() and p.is_lp
    assert p.relaxation().is_lp and MILP(c=[1], integrality=[1]).n_integer == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"c": [1, np.nan]}, r"`c` has 1 NaN entries \(first at index \(1,\)\)"),
        ({"c": [1, np.inf]}, r"`c` has 1 infinite entries"),
        ({"c": [[1, 2]]}, r"`c` has shape \(1, 2\); expected shape \(any\)"),
        ({"c": ["a"]}, r"`c` = \['a'\] holds text; expected numbers"),
        ({"c": [1, 2], "A": [[1, 2, 3]]}, r"`A` has shape \(1, 3\); expected 2 columns"),
        ({"c": [1], "A": [[np.nan]]}, r"`A` has 1 NaN entries"),
        ({"c": [1], "A": sp.csc_array(np.array([[np.inf]]))}, r"`A` has 1 non-finite entries"),
        ({"c": [1], "A": [[1]], "row_lower": [2], "row_upper": [1]},
         r"`row_lower`\[0\] = 2.0 > `row_upper`\[0\] = 1.0; expected lower <= upper"),
        ({"c": [1, 1], "col_lower": [0, 3], "col_upper": [1, 2]}, r"`col_lower`\[1\] = 3.0 > `col_upper`\[1\] = 2.0"),
        ({"c": [1], "A": [[1]], "row_upper": [1, 2]}, r"`row_upper` has shape|operands could not|broadcast"),
        ({"c": [1], "col_lower": np.inf}, r"`col_lower`\[0\] = inf; expected a finite value or -inf"),
        ({"c": [1], "col_upper": -np.inf}, r"`col_upper`\[0\] = -inf; expected a finite value or inf"),
        ({"c": [1], "col_lower": np.nan}, r"`col_lower` has 1 NaN entries"),
        ({"c": [1], "integrality": [2]}, r"`integrality`\[0\] = 2.0; expected 0 \(continuous\) or 1"),
        ({"c": [1], "integrality": [1, 1]}, r"`integrality` has shape \(2,\); expected shape \(1\)"),
        ({"c": [1], "sense": "maximize"}, r"`sense` = 'maximize'; expected one of 'min', 'max'"),
        ({"c": [1], "constant": np.nan}, r"`constant` = nan; expected a finite number"),
        ({"c": [1], "col_names": ["a", "b"]}, r"`col_names` has 2 names; expected 1"),
    ],
)
def test_bad_data_names_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises((ProblemDataError, ValueError), match=match):
        MILP(**kwargs)


def test_check_and_evaluate() -> None:
    p = MILP(c=[1, 1], A=[[1, 1]], row_lower=1, row_upper=2, col_upper=[1, 5], integrality=[1, 0],
             col_names=["a", "b"], row_names=["sum"])
    assert p.check([1, 0.5]) == []
    v = {(x.name, x.kind) for x in p.check([0.5, 3])}
    assert v == {("row[0] 'sum'", "<="), ("x[0] 'a'", "integer")}
    assert [x.kind for x in p.check([-1, 0])] == [">=", ">="]
    m = p.evaluate([1, 2])
    assert m.objective == 3 and m.max_row_violation == pytest.approx(1.0) and m.max_bound_violation == 0
    assert p.check([np.nan, 0])[0].kind == "finite"
    with pytest.raises(PlanError, match=r"`x` has shape \(3,\); expected \(2,\)"):
        p.objective([1, 2, 3])
