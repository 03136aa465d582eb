"""Input validation at the boundary (scipy's ``_*_iv`` habit).

Each helper takes the field's name so that the message names it, its value and what was
expected. ``error`` picks the exception class (``ProblemDataError`` for problems,
``ProfileError`` for profiles).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgeplan.errors import PlanError, ProblemDataError


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_array(
    name: str,
    value: Any,
    *,
    shape: Sequence[int | None] | None = None,
    dtype: Any = float,
    finite: bool = True,
    allow_inf: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
    strict_min: bool = False,
    error: type[Exception] = ProblemDataError,
) -> np.ndarray:
    """Convert ``value`` to a read-only numpy array and validate it.

    Parameters
    ----------
    name
        Field name used in messages.
    shape
        Expected shape; ``None`` entries match any length.
    finite, allow_inf
        Reject NaN always (when ``finite``); reject infinities unless ``allow_inf``.
    min_value, max_value, strict_min
        Inclusive bounds (``strict_min`` makes the lower bound exclusive).
    """
    try:
        arr = np.array(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise error(f"`{name}` = {_preview(value)} is not numeric; expected an array of {np.dtype(dtype)}") from exc
    if shape is not None:
        ok = arr.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, arr.shape, strict=False))
        if not ok:
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise error(f"`{name}` has shape {arr.shape}; expected shape {want}")
    if arr.dtype.kind == "f" and finite:
        nan = np.isnan(arr)
        if nan.any():
            first = np.argwhere(nan)[0]
            raise error(f"`{name}` has {int(nan.sum())} NaN entries (first at index {tuple(first.tolist())}); "
                        "expected numbers")
        if not allow_inf:
            inf = np.isinf(arr)
            if inf.any():
                first = np.argwhere(inf)[0]
                raise error(f"`{name}` has {int(inf.sum())} infinite entries (first at index "
                            f"{tuple(first.tolist())}); expected finite numbers")
    if min_value is not None and arr.size:
        bad = arr <= min_value if strict_min else arr < min_value
        if bad.any():
            i = tuple(np.argwhere(bad)[0].tolist())
            op = ">" if strict_min else ">="
            raise error(f"`{name}`[{', '.join(map(str, i))}] = {arr[i].item()!r}; expected values {op} {min_value}")
    if max_value is not None and arr.size:
        bad = arr > max_value
        if bad.any():
            i = tuple(np.argwhere(bad)[0].tolist())
            raise error(f"`{name}`[{', '.join(map(str, i))}] = {arr[i].item()!r}; expected values <= {max_value}")
    arr.setflags(write=False)
    return arr


def as_scalar(
    name: str,
    value: Any,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    strict_min: bool = False,
    allow_none: bool = False,
    error: type[Exception] = ProblemDataError,
) -> float | None:
    """Validate a finite real scalar (or ``None`` when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise error(f"`{name}` = {_preview(value)}; expected a real number")
    v = float(value)
    if not np.isfinite(v):
        raise error(f"`{name}` = {v}; expected a finite number")
    if min_value is not None and (v <= min_value if strict_min else v < min_value):
        raise error(f"`{name}` = {v}; expected a value {'>' if strict_min else '>='} {min_value}")
    if max_value is not None and v > max_value:
        raise error(f"`{name}` = {v}; expected a value <= {max_value}")
    return v


def one_of(name: str, value: Any, choices: Sequence[Any], *, error: type[Exception] = ProblemDataError) -> Any:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise error(f"`{name}` = {_preview(value)}; expected one of {', '.join(map(repr, choices))}")
    return value


def int_vector(name: str, value: Any, size: int | None = None, *, error: type[Exception] = PlanError,
               per: str = "", expected: str = "integers") -> np.ndarray:
    """A read-only int64 vector (of length ``size`` when given) from a plan's field.

    Anything else raises ``error`` naming ``name``: a wrong shape (``per`` says what one entry is, e.g.
    ``"one entry per user"``) or values that are not whole numbers (``expected`` says what they should be).
    """
    arr = np.asarray(value)
    if arr.ndim != 1 or (size is not None and arr.shape != (size,)):
        want = f"({size},)" if size is not None else "a vector"
        raise error(f"`{name}` has shape {arr.shape}; expected {want}" + (f", {per}" if per else ""))
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        try:
            f = arr.astype(float)
        except (TypeError, ValueError):
            f = np.array([np.nan])
        if not np.all(np.isfinite(f)) or np.any(f != np.round(f)):
            raise error(f"`{name}` = {_preview(arr.tolist())}; expected {expected}")
    out = arr.astype(np.int64)
    out.setflags(write=False)
    return out
