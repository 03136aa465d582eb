"""Schema-checked reading and minimal writing of profile TOML files.

Every key of a profile file is read through :func:`take`, so that a malformed file raises
:class:`~edgeplan.errors.ProfileError` naming the file, the key (dotted for tables), the value, the
expected type and the unit.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeplan._checks import read_text
from edgeplan.errors import ProfileError

_MISSING = object()


def read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path`` as TOML; syntax errors become :class:`ProfileError` naming the file."""
    text = read_text(path, "profile file", ProfileError)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile file `{path}` is not valid TOML: {exc}") from exc


def _kind(value: Any) -> str:
    return type(value).__name__


def take(
    table: Mapping[str, Any],
    key: str,
    kind: str,
    unit: str,
    *,
    source: str,
    prefix: str = "",
    default: Any = _MISSING,
    min_value: float | None = None,
    strict_min: bool = False,
    max_value: float | None = None,
) -> Any:
    """Read ``table[key]`` and check its type (``"number"``, ``"string"``, ``"table"``, ``"bool"``).

    ``unit`` is named in the message (e.g. ``"hertz"``); ``source`` is the file (or ``"<dict>"``).
    Numbers are returned as ``float``; a key that is absent returns ``default`` or raises.
    """
    dotted = f"{prefix}{key}"
    where = f"profile file `{source}`: key `{dotted}`"
    unit_text = f" in {unit}" if unit else ""
    if key not in table:
        if default is not _MISSING:
            return default
        raise ProfileError(f"{where} is missing; expected a {kind}{unit_text}")
    value = table[key]
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProfileError(f"{where} = {value!r} has type {_kind(value)}; expected a number{unit_text}")
        value = float(value)
        if not math.isfinite(value):
            raise ProfileError(f"{where} = {value!r}; expected a finite number{unit_text}")
        if min_value is not None and (value <= min_value if strict_min else value < min_value):
            op = ">" if strict_min else ">="
            raise ProfileError(f"{where} = {value!r}; expected a number{unit_text} {op} {min_value}")
        if max_value is not None and value > max_value:
            raise ProfileError(f"{where} = {value!r}; expected a number{unit_text} <= {max_value}")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise ProfileError(f"{where} = {value!r} has type {_kind(value)}; expected a string{unit_text}")
        return value
    if kind == "table":
        if not isinstance(value, dict):
            raise ProfileError(f"{where} = {value!r} has type {_kind(value)}; expected a table{unit_text}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ProfileError(f"{where} = {value!r} has type {_kind(value)}; expected true or false")
        return value
    raise ValueError(f"unknown kind {kind!r}")  # pragma: no cover - programming error


def reject_unknown(table: Mapping[str, Any], known: set[str], *, source: str, prefix: str = "") -> None:
    """Raise on keys that the schema does not know (catches typos such as ``clock_max_Hz``)."""
    unknown = sorted(set(table) - known)
    if unknown:
        raise ProfileError(
            f"profile file `{source}`: unknown key `{prefix}{unknown[0]}`; expected one of "
            + ", ".join(f"`{prefix}{k}`" for k in sorted(known))
        )


def _format_value(value: Any) -> str:
    if hasattr(value, "item") and not isinstance(value, str):      # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps(data: Mapping[str, Any], *, header: str = "") -> str:
    """Write a mapping of scalars and (nested) tables as TOML. ``None`` values are skipped."""
    lines: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]

    def emit(table: Mapping[str, Any], path: str) -> None:
        scalars = [(k, v) for k, v in table.items() if v is not None and not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        if path and (scalars or not tables):
            lines.append("")
            lines.append(f"[{path}]")
        for k, v in scalars:
            lines.append(f"{k} = {_format_value(v)}")
        for k, v in tables:
            emit(v, f"{path}.{k}" if path else k)

    emit(data, "")
    return "\n".join(lines).lstrip("\n") + "\n"
