"""A problem's data as JSON, so that a plan file saved from Python can rebuild its instance.

A plan made by a scenario records how to regenerate its instance (``source``); a plan saved from Python,
for a problem built by hand, records the problem itself (``problem`` in the plan file) in this tagged form:

* a dataclass: ``{"__dataclass__": "ClassName", "fields": {name: value, ...}}`` (its init fields);
* an array: ``{"__ndarray__": dtype, "shape": [...], "base64": ...}`` (the raw bytes: exact);
* a sparse matrix: ``{"__sparse__": "csc", "shape": [...], "data": <array>, "indices": ..., "indptr": ...}``;
* a non-finite float: ``{"__float__": "inf" | "-inf" | "nan"}``; a tuple: ``{"__tuple__": [...]}``;
* everything else is plain JSON.

Reading it back constructs only edgeplan's own dataclasses, by class name, from the problem and profile types
the families define (:func:`known_dataclasses`); nothing is imported by a name from a file. The rebuilt problem
is constructed through its own checks, and :meth:`edgeplan.io.plans.PlanFile.rebuild_problem` compares its
fingerprint with the one the file recorded, so a file whose data was edited is refused.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import sys
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

from edgeplan.errors import EdgeplanError, PlanError

#: Array dtypes a file may name (no object arrays: they could hold anything).
DTYPES = ("<f8", "<f4", "<i8", "<i4", "<i2", "|i1", "|b1", "<u8", "<u4", "|u1")
#: Packages whose dataclasses a problem file may construct.
PACKAGES = ("edgeplan.formulations", "edgeplan.profiles")


def encode(value: Any) -> Any:
    """The tagged JSON form of a problem's data (see the module docstring)."""
    import scipy.sparse as sp

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)
                  if f.init and not f.name.startswith("_")}
        return {"__dataclass__": type(value).__name__, "fields": fields}
    if sp.issparse(value):
        csc = value.tocsc()
        return {"__sparse__": "csc", "shape": list(csc.shape), "data": encode(csc.data),
                "indices": encode(csc.indices), "indptr": encode(csc.indptr)}
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        if arr.dtype.str not in DTYPES:
            raise PlanError(f"an array of dtype {arr.dtype} cannot be stored in a plan file; expected one of "
                            f"{', '.join(DTYPES)}")
        return {"__ndarray__": arr.dtype.str, "shape": list(arr.shape),
                "base64": base64.b64encode(arr.tobytes()).decode("ascii")}
    if isinstance(value, np.generic):
        return encode(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise PlanError(f"a mapping with keys {list(value)[:3]} cannot be stored in a plan file; expected text "
                            "keys")
        return {"__dict__": {k: encode(v) for k, v in value.items()}}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise PlanError(f"a {type(value).__name__} cannot be stored in a plan file")


@cache
def known_dataclasses() -> dict[str, type]:
    """The dataclasses a problem file may construct: those of :data:`PACKAGES`, by class name."""
    from edgeplan.registry import public_names

    public_names()  # imports every family's formulations (and the profiles they use)
    found: dict[str, type] = {}
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or not mod_name.startswith(PACKAGES):
            continue
        for obj in vars(mod).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == mod_name:
                found.setdefault(obj.__name__, obj)
    return found


def _array(data: Any, where: str) -> np.ndarray:
    dtype, shape, b64 = data.get("__ndarray__"), data.get("shape"), data.get("base64")
    if dtype not in DTYPES:
        raise PlanError(f"{where}: array dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                              for n in shape):
        raise PlanError(f"{where}: array shape {shape!r}; expected a list of sizes")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{where}: array data is not base64") from exc
    size = math.prod(shape) * np.dtype(dtype).itemsize
    if len(raw) != size:
        raise PlanError(f"{where}: array data has {len(raw)} bytes; shape {shape} of {dtype} needs {size}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def decode(data: Any, where: str = "problem") -> Any:
    """Rebuild a value from :func:`encode`'s form; anything malformed is a :class:`PlanError` naming ``where``."""
    if isinstance(data, list):
        return [decode(v, f"{where}[{i}]") for i, v in enumerate(data)]
    if not isinstance(data, dict):
        return data
    if "__ndarray__" in data:
        return _array(data, where)
    if "__float__" in data:
        text = data["__float__"]
        if text not in ("inf", "-inf", "nan"):
            raise PlanError(f"{where}: `__float__` = {text!r}; expected 'inf', '-inf' or 'nan'")
        return float(text)
    if "__tuple__" in data and isinstance(data["__tuple__"], list):
        return tuple(decode(v, f"{where}[{i}]") for i, v in enumerate(data["__tuple__"]))
    if "__dict__" in data and isinstance(data["__dict__"], dict):
        return {k: decode(v, f"{where}.{k}") for k, v in data["__dict__"].items()}
    if data.get("__sparse__") == "csc":
        import scipy.sparse as sp

        parts = [decode(data.get(k), f"{where}.{k}") for k in ("data", "indices", "indptr")]
        try:
            return sp.csc_matrix(tuple(parts), shape=tuple(data.get("shape") or ()))
        except (TypeError, ValueError) as exc:
            raise PlanError(f"{where}: not a sparse matrix: {exc}") from exc
    if "__dataclass__" in data:
        return _dataclass(data, where)
    raise PlanError(f"{where}: an object with keys {sorted(data)[:4]}; expected a tagged value (see "
                    "edgeplan.io.problem_data)")


def _dataclass(data: dict[str, Any], where: str) -> Any:
    name, fields = data["__dataclass__"], data.get("fields")
    cls = known_dataclasses().get(name) if isinstance(name, str) else None
    if cls is None:
        raise PlanError(f"{where}: `__dataclass__` = {name!r} is not an edgeplan problem or profile type")
    if not isinstance(fields, dict):
        raise PlanError(f"{where}: `fields` of {name} is a {type(fields).__name__}; expected an object")
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise PlanError(f"{where}: {name} has no fields {unknown}; expected some of {sorted(known)}")
    kwargs = {k: decode(v, f"{where}.{k}") for k, v in fields.items()}
    try:
        return cls(**kwargs)
    except (EdgeplanError, TypeError, ValueError) as exc:
        raise PlanError(f"{where}: the stored data do not make a {name}: {exc}") from exc


__all__ = ["DTYPES", "decode", "encode", "known_dataclasses"]
