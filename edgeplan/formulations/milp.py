r"""The generic mixed-integer linear program that other families reduce to.

.. math::

    \min_x \ (\text{or } \max_x)\quad & c^\top x + c_0 \\
    \text{s.t.}\quad & \ell^{\text{row}} \le A x \le u^{\text{row}}, \\
    & \ell^{\text{col}} \le x \le u^{\text{col}}, \\
    & x_j \in \mathbb{Z} \quad \text{for } j \text{ with } \text{integrality}_j = 1,

with :math:`A` a sparse CSC matrix of shape ``(m, n)``. Infinite row and column bounds are
allowed (``-inf``/``inf``); costs and matrix entries must be finite.

A :class:`MILP` is a formulation like any other: its plan is the solution vector ``x`` (a
numpy array of length ``n``), ``objective(x)`` is :math:`c^\top x + c_0`, and ``check(x)``
lists broken rows, bounds and integrality. Families that offer ``to_milp()`` return a
``MILP`` and a decoder ``x -> plan``; every MILP backend then solves them by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from edgeplan._checks import as_array, as_scalar, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.formulations.base import FEAS_TOL, INT_TOL, Violation, slack_tol

#: The feature of a MILP with continuous columns (CP-SAT takes them only on a grid).
CONTINUOUS_COLUMNS = "continuous columns"


def time_unit(*times: np.ndarray) -> float:
    """The power of two nearest the geometric mean of the smallest and largest positive finite time.

    A reduction measures its continuous time columns (a period, a bottleneck, a round time) in this unit and
    divides their rows by it, so that the solver's absolute tolerances (1e-6) act on values near 1: in seconds,
    pipeline stage times of 1e-7 s were all within tolerance of each other, and HiGHS called a 1.8e-6 s plan
    optimal where 0 s was possible. A power of two keeps the scaling exact.
    """
    v = np.concatenate([np.abs(np.asarray(t, dtype=float)).reshape(-1) for t in times])
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return 1.0
    return float(np.ldexp(1.0, round(0.5 * (np.log2(v.min()) + np.log2(v.max())))))



@dataclass(frozen=True, slots=True)
class MILPMetrics:
    """``MILP.evaluate(x)``: the objective, the row activities and the largest violations."""

    objective: float
    activity: np.ndarray
    max_row_violation: float
    max_bound_violation: float
    max_integrality_violation: float


def _bounds(name_lo: str, name_hi: str, lo: Any, hi: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    lo_arr, hi_arr = (as_array(label, value, allow_inf=True) for label, value in ((name_lo, lo), (name_hi, hi)))
    for label, arr in ((name_lo, lo_arr), (name_hi, hi_arr)):
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != size):
            raise ProblemDataError(f"`{label}` has shape {arr.shape}; expected a number or a vector of length {size}")
    lo_arr, hi_arr = (np.broadcast_to(a, (size,)).copy() for a in (lo_arr, hi_arr))
    for a in (lo_arr, hi_arr):
        a.setflags(write=False)
    if np.isposinf(lo_arr).any():
        i = int(np.flatnonzero(np.isposinf(lo_arr))[0])
        raise ProblemDataError(f"`{name_lo}`[{i}] = inf; expected a finite value or -inf")
    if np.isneginf(hi_arr).any():
        i = int(np.flatnonzero(np.isneginf(hi_arr))[0])
        raise ProblemDataError(f"`{name_hi}`[{i}] = -inf; expected a finite value or inf")
    bad = lo_arr > hi_arr
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ProblemDataError(f"`{name_lo}`[{i}] = {lo_arr[i].item()!r} > `{name_hi}`[{i}] = {hi_arr[i].item()!r}; "
                               "expected lower <= upper")
    return lo_arr, hi_arr


@dataclass(frozen=True, slots=True, eq=False)
class MILP:
    """A mixed-integer linear program (see the module docstring for the math).

    Parameters
    ----------
    c
        Cost vector, length ``n``; finite.
    A
        Constraint matrix ``(m, n)``: any scipy sparse matrix/array or dense array-like; stored
        as ``scipy.sparse.csc_array`` (float64, duplicates summed). ``None`` means no rows.
    row_lower, row_upper
        Row bounds (length ``m`` or scalars broadcast); ``-inf``/``inf`` for a free side.
    col_lower, col_upper
        Column bounds (length ``n`` or scalars); default ``0 <= x < inf`` as in ``scipy.optimize.milp``.
    integrality
        Length-``n`` 0/1 (or bool) flags; 1 marks an integer variable. Default all continuous.
    constant
        Objective offset :math:`c_0`.
    sense
        ``"min"`` or ``"max"``.
    col_names, row_names
        Optional names (used in violation reports and by the Pyomo backend).
    name
        A label for tables.
    """

    c: np.ndarray
    A: Any = None
    row_lower: Any = -np.inf
    row_upper: Any = np.inf
    col_lower: Any = 0.0
    col_upper: Any = np.inf
    integrality: Any = None
    constant: float = 0.0
    sense: str = "min"
    col_names: Sequence[str] | None = None
    row_names: Sequence[str] | None = None
    name: str = "milp"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = as_array("c", self.c, shape=(None,))
        n = c.shape[0]
        A = self.A
        if A is None:
            A = sp.csc_array((0, n))
        elif sp.issparse(A):
            A = sp.csc_array(A, dtype=float)
        else:
            dense = as_array("A", A, shape=(None, None))
            A = sp.csc_array(dense)
        if A.shape[1] != n:
            raise ProblemDataError(f"`A` has shape {A.shape}; expected {n} columns to match `c` of length {n}")
        A.sum_duplicates()
        A.sort_indices()
        if not np.isfinite(A.data).all():
            bad = int((~np.isfinite(A.data)).sum())
            raise ProblemDataError(f"`A` has {bad} non-finite entries (NaN or inf); expected finite coefficients")
        m = A.shape[0]
        rl, ru = _bounds("row_lower", "row_upper", self.row_lower, self.row_upper, m)
        cl, cu = _bounds("col_lower", "col_upper", self.col_lower, self.col_upper, n)
        if self.integrality is None:
            integ = np.zeros(n, dtype=bool)
        else:
            raw = as_array("integrality", self.integrality, shape=(n,), dtype=float)
            if not np.isin(raw, (0.0, 1.0)).all():
                i = int(np.flatnonzero(~np.isin(raw, (0.0, 1.0)))[0])
                raise ProblemDataError(
                    f"`integrality`[{i}] = {raw[i].item()!r}; expected 0 (continuous) or 1 (integer)")
            integ = raw.astype(bool)
        integ.setflags(write=False)
        constant = as_scalar("constant", self.constant)
        one_of("sense", self.sense, ("min", "max"))
        for label, names, size in (("col_names", self.col_names, n), ("row_names", self.row_names, m)):
            if names is None:
                continue
            if isinstance(names, str) or not isinstance(names, Sequence | np.ndarray) \
                    or not all(isinstance(x, str) for x in names):
                raise ProblemDataError(f"`{label}` = {names!r:.60}; expected a list of {size} strings")
            if len(names) != size:
                raise ProblemDataError(f"`{label}` has {len(names)} names; expected {size}")
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "row_lower", rl)
        object.__setattr__(self, "row_upper", ru)
        object.__setattr__(self, "col_lower", cl)
        object.__setattr__(self, "col_upper", cu)
        object.__setattr__(self, "integrality", integ)
        object.__setattr__(self, "constant", constant)
        if self.col_names is not None:
            object.__setattr__(self, "col_names", tuple(self.col_names))
        if self.row_names is not None:
            object.__setattr__(self, "row_names", tuple(self.row_names))

    # -- sizes ----------------------------------------------------------------------------
    @property
    def n_vars(self) -> int:
        return int(self.c.shape[0])

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.A.nnz)

    @property
    def n_integer(self) -> int:
        return int(self.integrality.sum())

    @property
    def features(self) -> frozenset[str]:
        """What methods may be unable to take: :data:`CONTINUOUS_COLUMNS` when a column is not integer."""
        return frozenset({CONTINUOUS_COLUMNS}) if self.n_vars and not self.integrality.all() else frozenset()

    @property
    def is_lp(self) -> bool:
        return self.n_integer == 0

    def col_label(self, j: int) -> str:
        return f"x[{j}]" + (f" '{self.col_names[j]}'" if self.col_names else "")

    def row_label(self, i: int) -> str:
        return f"row[{i}]" + (f" '{self.row_names[i]}'" if self.row_names else "")

    def relaxation(self) -> MILP:
        """The LP relaxation (all integrality dropped)."""
        return MILP(self.c, self.A, self.row_lower, self.row_upper, self.col_lower, self.col_upper, None,
                    self.constant, self.sense, self.col_names, self.row_names, self.name + "-lp")

    def csr(self) -> sp.csr_array:
        """The matrix in CSR form (cached: the row-wise backends need it)."""
        if "csr" not in self._cache:
            self._cache["csr"] = sp.csr_array(self.A)
        return self._cache["csr"]

    # -- the formulation protocol -----------------------------------------------------------
    def _vector(self, x: Any) -> np.ndarray:
        try:
            arr = np.asarray(x, dtype=float)
        except (TypeError, ValueError) as exc:
            raise PlanError(f"`x` = {x!r:.60}; expected a vector of {self.n_vars} numbers for MILP {self.name!r}") \
                from exc
        if arr.shape != (self.n_vars,):
            raise PlanError(f"`x` has shape {arr.shape}; expected ({self.n_vars},) for MILP {self.name!r}")
        return arr

    def objective(self, x: Any) -> float:
        """:math:`c^\\top x + c_0`."""
        return float(self.c @ self._vector(x) + self.constant)

    def evaluate(self, x: Any) -> MILPMetrics:
        """Objective, row activity ``A x`` and the largest absolute violations."""
        x = self._vector(x)
        act = self.A @ x
        with np.errstate(invalid="ignore"):
            row_v = np.maximum(self.row_lower - act, act - self.row_upper)
            bnd_v = np.maximum(self.col_lower - x, x - self.col_upper)
        int_v = np.abs(x - np.round(x))[self.integrality]
        return MILPMetrics(
            objective=self.objective(x),
            activity=act,
            max_row_violation=float(np.max(row_v, initial=0.0)),
            max_bound_violation=float(np.max(bnd_v, initial=0.0)),
            max_integrality_violation=float(np.max(int_v, initial=0.0)),
        )

    def check(self, x: Any, tol: float = FEAS_TOL) -> list[Violation]:
        """Every broken row bound, column bound and integrality (tolerances relative to the limit)."""
        x = self._vector(x)
        if not np.isfinite(x).all():
            j = int(np.flatnonzero(~np.isfinite(x))[0])
            return [Violation(self.col_label(j), float(x[j]), 0.0, "finite")]
        out: list[Violation] = []
        act = self.A @ x
        for val, lo, hi, label in ((act, self.row_lower, self.row_upper, self.row_label),
                                   (x, self.col_lower, self.col_upper, self.col_label)):
            for i in np.flatnonzero(lo - val > slack_tol(lo, tol, floor=1.0)):
                out.append(Violation(label(int(i)), float(val[i]), float(lo[i]), ">="))
            for i in np.flatnonzero(val - hi > slack_tol(hi, tol, floor=1.0)):
                out.append(Violation(label(int(i)), float(val[i]), float(hi[i]), "<="))
        frac = np.abs(x - np.round(x))
        for j in np.flatnonzero(self.integrality & (frac > INT_TOL)):
            out.append(Violation(self.col_label(int(j)), float(x[j]), float(np.round(x[j])), "integer"))
        return out

    def __repr__(self) -> str:
        return (f"MILP(name={self.name!r}, sense={self.sense!r}, n_vars={self.n_vars}, "
                f"n_integer={self.n_integer}, n_rows={self.n_rows}, nnz={self.nnz})")


class SparseRows:
    """A family's MILP rows collected block by block as triplets and stacked into one sparse matrix at the end.

    ``add(r, c, v, lo, hi, rows)`` appends a block: entries ``v`` at block-local rows ``r`` and columns ``c``
    (``v`` broadcast to the shape of ``r``), bounds ``lo``/``hi`` (broadcast), and ``rows``, either the block's
    row names or its number of rows (unnamed).
    """

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.names: list[str] = []

    def add(self, r: Any, c: Any, v: Any, lo: Any, hi: Any, rows: list[str] | int) -> None:
        n = rows if isinstance(rows, int) else len(rows)
        self.r.append((len(self.names) + np.asarray(r, dtype=np.int64)).ravel())
        self.c.append(np.asarray(c, dtype=np.int64).ravel())
        self.v.append(np.broadcast_to(np.asarray(v, dtype=float), np.shape(r)).ravel())
        self.lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)))
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)))
        self.names += [""] * n if isinstance(rows, int) else list(rows)

    def matrix(self, n: int) -> sp.csc_array:
        """The ``(rows, n)`` matrix (duplicates summed)."""
        return sp.csc_array((np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))),
                            shape=(len(self.names), n))

    def assemble(self, n: int) -> tuple[sp.csc_array, np.ndarray, np.ndarray]:
        """The matrix with ``n`` columns and the row bounds."""
        return self.matrix(n), np.concatenate(self.lo), np.concatenate(self.hi)


__all__ = ["CONTINUOUS_COLUMNS", "MILP", "MILPMetrics", "SparseRows", "time_unit"]
