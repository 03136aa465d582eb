"""Input validation at the boundary (scipy's ``_*_iv`` habit).

Each helper takes the field's name so that the message names it, its value and what was
expected. ``error`` picks the exception class (``ProblemDataError`` for problems,
``ProfileError`` for profiles).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgeplan.errors import EdgeplanError, PlanError, ProblemDataError


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_real(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool | np.bool_)


def _plain_values(name: str, value: Any, dtype: Any, error: type[Exception]) -> None:
    """Refuse, before any conversion, what a cast would turn into nonsense silently.

    Text (``"1.5"`` and ``"abc"``), complex numbers (a cast drops the imaginary part), ``None`` or other objects,
    ragged nesting; fractions where whole numbers are meant (0.5 would become 0); anything but true/false (or
    0/1) where flags are meant (``bool("no")`` is True). Booleans count as 0/1 numbers, as in numpy.
    """
    if isinstance(value, str | bytes):
        raise error(f"`{name}` = {_preview(value)} is text; expected numbers")
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise error(f"`{name}` = {_preview(value)} is not a regular array (ragged or mixed nesting); expected an "
                    f"array of {np.dtype(dtype)}") from exc
    want, kind = np.dtype(dtype).kind, raw.dtype.kind
    if raw.size == 0 or want not in "biuf":
        return
    if kind == "O":
        odd = next((x for x in raw.ravel() if not (_is_real(x) or isinstance(x, bool | np.bool_))), None)
        if odd is not None:
            raise error(f"`{name}` holds {_preview(odd)} ({type(odd).__name__}); expected numbers")
        raw = np.array(raw.tolist())
        kind = raw.dtype.kind
    if kind in "USV":
        raise error(f"`{name}` = {_preview(value)} holds text; expected numbers")
    if kind == "c":
        raise error(f"`{name}` = {_preview(value)} holds complex numbers; expected real numbers")
    if want == "b":
        if kind != "b" and not np.isin(raw, (0, 1)).all():
            raise error(f"`{name}` = {_preview(value)}; expected true/false flags (or 0/1)")
        return
    if want in "iu" and kind == "f":
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(raw) & (raw == np.round(raw))
        if not whole.all():
            i = tuple(np.argwhere(~whole)[0].tolist())
            raise error(f"`{name}`[{', '.join(map(str, i))}] = {raw[i].item()!r}; expected whole numbers")


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
    _plain_values(name, value, dtype, error)
    try:
        arr = np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
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
    if not _is_real(value):
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
    """Check that ``value`` is one of ``choices`` (a string or number, never an array)."""
    if not isinstance(value, str | int | float) or value not in choices:
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


#: A generator refuses an instance whose largest arrays (its declared ``cells``, 8 bytes each) exceed this.
GENERATOR_MEMORY_LIMIT_BYTES = 512 * 2**20
#: What a generator's own code may raise on parameters its checks did not foresee; reported as a named error.
_RAW_ERRORS = (TypeError, ValueError, AttributeError, ZeroDivisionError, IndexError, KeyError, OverflowError,
               FloatingPointError, MemoryError, np.exceptions.AxisError)


def _check_by_default(gen: str, key: str, value: Any, default: Any) -> None:
    """A parameter's value against the kind of its default (parameters defaulting to ``None`` are the family's)."""
    where = f"generator {gen!r}: `{key}` = {_preview(value)}"
    if isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            raise ProblemDataError(f"{where}; expected true or false")
    elif isinstance(default, int) and key != "seed":
        if not isinstance(value, int | np.integer) or isinstance(value, bool | np.bool_) or value < 0:
            raise ProblemDataError(f"{where}; expected a whole number >= 0")
    elif isinstance(default, float):
        try:
            v = float(value) if _is_real(value) else math.nan
        except OverflowError:
            v = math.nan
        if math.isnan(v) or (math.isinf(v) and not math.isinf(default)):
            raise ProblemDataError(f"{where}; expected a " + ("real number (inf allowed)" if np.isinf(default)
                                                              else "finite real number"))
    elif isinstance(default, str) and not isinstance(value, str):
        raise ProblemDataError(f"{where}; expected a string")


def checked_generator(name: str, func: Callable[..., Any], cells: Callable[..., float] | None) -> Callable[..., Any]:
    """``func`` with its arguments checked before it runs (see :func:`edgeplan.registry.generator`).

    Each argument annotated with a plain ``int``, ``float``, ``bool`` or ``str`` must be of its default's kind
    (whole numbers >= 0 for counts, finite reals, booleans, strings); the instance's size estimate
    ``8 * cells(**arguments)`` bytes must fit in :data:`GENERATOR_MEMORY_LIMIT_BYTES`; an error the generator's
    own code raises on parameters its checks did not foresee becomes a :class:`ProblemDataError` naming the
    generator and the parameters.
    """
    sig = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise ProblemDataError(f"generator {name!r} rejected the parameters {kwargs}: {exc}") from exc
        for key, value in bound.arguments.items():
            par = sig.parameters[key]
            plain = par.annotation in ("int", "float", "bool", "str", int, float, bool, str)
            if par.kind is par.VAR_KEYWORD or par.default is par.empty or par.default is None or not plain:
                continue  # checked by the family (a union such as ``float | tuple``, ``Any``, or optional)
            _check_by_default(name, key, value, par.default)
        try:
            if cells is not None:
                bound.apply_defaults()
                size = 8.0 * float(cells(**bound.arguments))
                if not size <= GENERATOR_MEMORY_LIMIT_BYTES:
                    raise ProblemDataError(f"generator {name!r}: the parameters {kwargs} need about "
                                           f"{size / 2**30:.3g} GiB for the instance's arrays; the limit is "
                                           f"{GENERATOR_MEMORY_LIMIT_BYTES / 2**30:g} GiB: use smaller sizes")
            return func(*args, **kwargs)
        except EdgeplanError:
            raise
        except _RAW_ERRORS as exc:
            raise ProblemDataError(f"generator {name!r} rejected the parameters {kwargs}: "
                                   f"{type(exc).__name__}: {exc}") from exc

    return wrapper


#: Input files (plans, scenarios, profiles) larger than this are refused before they are read.
MAX_INPUT_BYTES = 256 * 2**20


def read_text(path: Any, what: str, error: type[Exception] = ProblemDataError) -> str:
    """The UTF-8 text of an input file (a byte-order mark is dropped); every failure is ``error`` naming the file.

    A missing file, a directory, no permission, a file over :data:`MAX_INPUT_BYTES`, or bytes that are not
    UTF-8 (a binary file) each get one clear message instead of an ``OSError`` or ``UnicodeDecodeError``.
    """
    where = f"{what} `{path}`"
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError as exc:
        raise error(f"{path}: no such {what}") from exc
    except IsADirectoryError as exc:
        raise error(f"{where} is a directory; expected a file") from exc
    except OSError as exc:
        raise error(f"{where} cannot be read: {exc.strerror or exc}") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise error(f"{where} is larger than {MAX_INPUT_BYTES // 2**20} MiB; expected a small text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{where} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x}): a binary file?") \
            from exc


def parse_json(text: str, where: str, error: type[Exception] = ProblemDataError) -> Any:
    """``json.loads(text)`` with every failure as ``error`` naming ``where``: bad syntax, nesting too deep for
    the parser, integers over Python's digit limit, and non-finite numbers (``1e999``, ``NaN``)."""
    def finite(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise ValueError(f"the number {token[:20]} is not finite")
        return value

    def no_constant(token: str) -> float:
        raise ValueError(f"{token} is not a JSON number")

    try:
        return json.loads(text, parse_float=finite, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise error(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError as exc:
        raise error(f"{where}: JSON nested too deeply") from exc
    except ValueError as exc:
        raise error(f"{where}: {exc}") from exc
