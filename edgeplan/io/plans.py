"""Plan I/O: versioned JSON with a schema, a validator, and the exporters families register.

A plan file is one JSON object::

    {
      "schema": "edgeplan.plan",            # identifies the format
      "schema_version": 2,
      "edgeplan_version": "0.1.0",
      "problem_type": "SplitInference",     # the registry key of the problem type (its exported name)
      "problem_fingerprint": "sha256:...",  # of the problem's data: a plan is tied to its instance
      "plan_type": "ndarray" | "SplitPlan", # the registry key of the plan type
      "plan": {...} | [...],
      "result": {"method", "status", "fun", "bound", "gap", "limit", "build_time", "solve_time", "message"},
      "source": {"family", "params", "seed", "scenario"},  # how to rebuild the instance: a scenario's
      "problem": {"__dataclass__": ..., "fields": {...}}   # or the problem's data (a plan saved from Python)
    }

A plan saved without ``source`` stores its problem's data (:mod:`edgeplan.io.problem_data`), so that
``edgeplan validate`` and ``edgeplan export`` rebuild any plan's instance, however it was made.

:func:`load_plan` rejects malformed files, unknown versions, plan types that no family exports
(nothing is ever imported from a file), and, when given the problem, a fingerprint that
does not match, each with a :class:`~edgeplan.errors.PlanError` naming the file and key.

Version 1 (edgeplan before the families had one shape) named types by ``module:QualName`` and fed those
names into the fingerprint; version 2 names them by registry key, so moving a module no longer changes a
file. Version-1 files still load and validate: their type names resolve by class name, and their fingerprint
is recomputed with the module paths of that layout (:data:`V1_MODULES`).

Exporters turn a plan into what a runtime reads (split points, ONNX sub-models, per-round
client configurations); a family registers them with :func:`edgeplan.registry.exporter`.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan._checks import parse_json, read_text
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.registry import EXPORTERS, needs_extras, type_key, type_of

SCHEMA = "edgeplan.plan"
SCHEMA_VERSION = 2
#: Versions this edgeplan reads.
READABLE_VERSIONS = (1, 2)
#: Where version 1 (the layout before the reorganisation into family folders) had the modules that moved; the
#: version-1 fingerprint fed ``module:QualName`` of every dataclass, so it is recomputed with these names.
V1_MODULES = {
    "edgeplan.formulations.fl.fl_round": "edgeplan.formulations.fl_round",
    "edgeplan.formulations.fl.fl_energy": "edgeplan.formulations.fl_energy",
    "edgeplan.formulations.fl.common": "edgeplan.formulations.fl_common",
    "edgeplan.formulations.slide.provisioning": "edgeplan.formulations.slide",
    "edgeplan.formulations.cache.placement": "edgeplan.formulations.cache",
    "edgeplan.formulations.cache.replay": "edgeplan.formulations.cache_replay",
    "edgeplan.formulations.cache.plan": "edgeplan.formulations.cache_plan",
    "edgeplan.formulations.partition.common": "edgeplan.formulations.partition._base",
}
_REQUIRED = {"schema": str, "schema_version": int, "problem_type": str, "problem_fingerprint": str,
             "plan_type": str, "plan": (dict, list), "result": dict}


def type_name(obj_or_type: Any, version: int = SCHEMA_VERSION) -> str:
    """How a file of ``version`` names a type: the registry key (2), ``module:QualName`` of that layout (1)."""
    cls = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
    if version >= 2:
        try:
            return type_key(cls)
        except ProblemDataError as exc:
            raise PlanError(f"a {cls.__name__} is not a type any family exports: it has no plan file") from exc
    return f"{V1_MODULES.get(cls.__module__, cls.__module__)}:{cls.__qualname__}"


# -- fingerprints ------------------------------------------------------------------------------
def _feed(h: Any, value: Any, version: int) -> None:
    import scipy.sparse as sp

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)  # version 2: the class name alone (module moves leave files valid)
        h.update((cls.__qualname__ if version >= 2 else type_name(cls, 1)).encode())
        for f in dataclasses.fields(value):
            if not f.name.startswith("_"):
                h.update(f.name.encode())
                _feed(h, getattr(value, f.name), version)
    elif sp.issparse(value):
        csc = value.tocsc()
        for part in (csc.data, csc.indices, csc.indptr, np.asarray(csc.shape)):
            _feed(h, part, version)
    elif isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
    elif isinstance(value, dict):
        for k in sorted(value, key=repr):
            h.update(repr(k).encode())
            _feed(h, value[k], version)
    elif isinstance(value, list | tuple):
        h.update(f"seq{len(value)}".encode())
        for v in value:
            _feed(h, v, version)
    else:
        h.update(repr(value).encode())


def fingerprint(problem: Any, version: int = SCHEMA_VERSION) -> str:
    """``sha256:<hex>`` of a problem's data (dataclass fields, arrays by bytes): equal data, equal print.

    Parameters
    ----------
    problem
        Any problem (or any value made of dataclasses, arrays, sparse matrices and plain values).
    version
        The plan-file schema whose fingerprint to compute: 1 reproduces the fingerprints of version-1 files
        (the type names of that layout in the hash).

    Returns
    -------
    str
    """
    h = hashlib.sha256()
    _feed(h, problem, version)
    return "sha256:" + h.hexdigest()


# -- plan <-> JSON ---------------------------------------------------------------------------------
def to_jsonable(value: Any) -> Any:
    """Plain JSON values: arrays -> lists, numpy scalars -> Python, dataclasses -> dicts, enums -> values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _plan_class(name: str, where: str, version: int = SCHEMA_VERSION) -> type | None:
    """The plan class a file names: a registry key (version 2) or ``edgeplan.module:Class`` (version 1, resolved
    by its class name among the types the families export). Nothing is imported by name from a file."""
    if name == "ndarray":
        return None
    key = name
    if version < 2:
        module, _, key = name.partition(":")
        if not module.startswith("edgeplan.") or not key:
            raise PlanError(f"{where}: `plan_type` = {name!r}; expected 'ndarray' or 'module:Class' inside edgeplan")
    cls = type_of(key)
    if cls is None:
        raise PlanError(f"{where}: `plan_type` = {name!r} names no class of this edgeplan version")
    if not dataclasses.is_dataclass(cls):
        raise PlanError(f"{where}: `plan_type` = {name!r} is not a plan dataclass")
    return cls


def plan_from_jsonable(plan_type: str, data: Any, where: str = "plan", version: int = SCHEMA_VERSION) -> Any:
    """Rebuild a plan from its JSON form (the class's ``from_dict`` when it has one, else its fields)."""
    cls = _plan_class(plan_type, where, version)
    if cls is None:
        try:
            return np.asarray(data, dtype=float)
        except (TypeError, ValueError) as exc:
            raise PlanError(f"{where}: `plan` is not a numeric vector; expected a list of numbers") from exc
    if hasattr(cls, "from_dict"):
        return cls.from_dict(data)
    if not isinstance(data, dict):
        raise PlanError(f"{where}: `plan` is a {type(data).__name__}; expected an object with the fields of "
                        f"{cls.__name__}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise PlanError(f"{where}: `plan` has unknown keys {unknown}; {cls.__name__} has {sorted(names)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{where}: `plan` does not make a {cls.__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PlanFile:
    """A loaded plan file: the plan and what was recorded beside it.

    Attributes
    ----------
    plan
        The plan (a family's plan dataclass, or a MILP's solution vector).
    problem_type, problem_fingerprint
        The registry key of the problem's type and the fingerprint of its data.
    result
        The method, status, objective, bound, gap, limit, times and message recorded with it.
    schema_version
        The file's schema version.
    source
        How a scenario generator rebuilds the instance, when the plan came from one.
    problem_data
        The problem's own data (:mod:`edgeplan.io.problem_data`), when saved without ``source``.
    """

    plan: Any
    problem_type: str
    problem_fingerprint: str
    result: dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    source: dict[str, Any] | None = None
    problem_data: dict[str, Any] | None = None

    def rebuild_problem(self) -> Any:
        """Rebuild the instance from the stored problem data when there are some, else from ``source`` (a scenario
        generator call), and check its fingerprint."""
        from edgeplan.io.problem_data import decode
        from edgeplan.io.scenarios import Instance

        if self.source is not None and self.problem_data is None:
            src = self.source
            problem = Instance(src.get("scenario", "plan"), src["family"], src["params"], src["seed"]).build()
            why = f"generator {src['family']!r} changed since the plan was made?"
        elif self.problem_data is not None:
            problem = decode(self.problem_data)
            why = "the stored problem data were edited?"
        else:
            raise PlanError("the plan file has neither `source` nor `problem`: it cannot rebuild its problem; pass "
                            "the problem instead (load_plan(path, problem))")
        if type_name(problem, self.schema_version) != self.problem_type:
            raise PlanError(f"the rebuilt problem is a {type_name(problem, self.schema_version)!r}; the file's "
                            f"`problem_type` is {self.problem_type!r}")
        if fingerprint(problem, self.schema_version) != self.problem_fingerprint:
            raise PlanError(f"the rebuilt problem's fingerprint differs from `problem_fingerprint` ({why})")
        return problem


def plan_document(problem: Any, result_or_plan: Any, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of a plan (from a :class:`~edgeplan.solvers.result.Result` or a bare plan).

    ``source`` (``{"family", "params", "seed"[, "scenario"]}``) records how to rebuild the instance; without
    it, the problem's own data are stored (``problem``), when its types allow (every family's do). A generator
    that measures a real model on the host (``real_model``) does not rebuild the same instance twice, so its
    plans store the problem's data next to their ``source``.
    """
    from edgeplan._version import __version__
    from edgeplan.solvers.result import Result

    if isinstance(result_or_plan, Result):
        r = result_or_plan
        plan = r.require_plan()
        meta = {"method": r.method, "status": r.status.value, "fun": r.fun, "bound": r.bound, "gap": r.gap,
                "limit": r.limit.value if r.limit else None, "build_time": r.build_time,
                "solve_time": r.solve_time, "message": r.message}
    else:
        plan, meta = result_or_plan, {}
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "edgeplan_version": __version__,
            "problem_type": type_name(problem), "problem_fingerprint": fingerprint(problem),
            "plan_type": "ndarray" if isinstance(plan, np.ndarray) else type_name(plan),
            "plan": to_jsonable(plan), "result": to_jsonable(meta)} | (
                {"source": to_jsonable(source)} if source is not None else {}) | (
                _problem_data(problem) if source is None or _measured(source) else {})


def _measured(source: dict[str, Any]) -> bool:
    """The source's generator measures a real model (it cannot rebuild the same instance)."""
    from edgeplan.registry import GENERATORS

    entry = GENERATORS.find(source.get("family"))
    return bool(entry is not None and entry.real_model)


def _problem_data(problem: Any) -> dict[str, Any]:
    from edgeplan.io.problem_data import encode

    try:
        return {"problem": encode(problem)}
    except PlanError:  # a user's own problem type holding something we do not store: no data, as before
        return {}


def save_plan(path: str | Path, problem: Any, result_or_plan: Any, source: dict[str, Any] | None = None) -> Path:
    """Write the plan (and its result's figures) as versioned JSON; returns the path.

    Parameters
    ----------
    path
        The file to write.
    problem
        The instance the plan is for (its fingerprint, and its data when there is no ``source``).
    result_or_plan
        A :class:`~edgeplan.solvers.result.Result` (its method, status, objective, bound and gap are kept) or
        a bare plan.
    source
        ``{"family", "params", "seed"[, "scenario"]}``: how a scenario generator rebuilds the instance;
        without it the problem's own data are stored.
    """
    path = Path(path)
    doc = plan_document(problem, result_or_plan, source)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def validate_document(doc: Any, where: str = "plan") -> None:
    """Raise :class:`PlanError` naming the key when ``doc`` is not a plan document of a known version."""
    if not isinstance(doc, dict):
        raise PlanError(f"{where}: the file holds a {type(doc).__name__}; expected a JSON object")
    for key, kind in _REQUIRED.items():
        if key not in doc:
            raise PlanError(f"{where}: missing key `{key}`")
        if not isinstance(doc[key], kind) or isinstance(doc[key], bool):
            want = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise PlanError(f"{where}: `{key}` = {doc[key]!r:.60}; expected {want}")
    if doc["schema"] != SCHEMA:
        raise PlanError(f"{where}: `schema` = {doc['schema']!r}; expected {SCHEMA!r}")
    if doc["schema_version"] not in READABLE_VERSIONS:
        raise PlanError(f"{where}: `schema_version` = {doc['schema_version']}; this edgeplan reads versions "
                        f"{', '.join(map(str, READABLE_VERSIONS))}")
    if not doc["problem_fingerprint"].startswith("sha256:"):
        raise PlanError(f"{where}: `problem_fingerprint` = {doc['problem_fingerprint']!r:.40}; expected 'sha256:...'")
    src = doc.get("source")
    if src is not None:
        ok = (isinstance(src, dict) and isinstance(src.get("family"), str) and isinstance(src.get("params"), dict)
              and isinstance(src.get("seed"), int))
        if not ok:
            raise PlanError(f"{where}: `source` = {src!r:.80}; expected an object with family (string), params "
                            "(object) and seed (integer)")
    if doc.get("problem") is not None and not isinstance(doc["problem"], dict):
        raise PlanError(f"{where}: `problem` = {doc['problem']!r:.60}; expected an object (the problem's data)")


def load_plan(path: str | Path, problem: Any = None) -> PlanFile:
    """Read and validate a plan file; with ``problem``, also check that the plan was made for it.

    Parameters
    ----------
    path
        A plan file written by :func:`save_plan` or ``edgeplan solve --out``.
    problem
        The instance the plan should be for; its type and fingerprint must match the file's.

    Returns
    -------
    PlanFile
        The plan and what was recorded beside it; :meth:`PlanFile.rebuild_problem` rebuilds the instance.
    """
    path = Path(path)
    where = str(path)
    doc = parse_json(read_text(path, "plan file", PlanError), where, PlanError)
    validate_document(doc, where)
    version = doc["schema_version"]
    if problem is not None:
        if doc["problem_type"] != type_name(problem, version):
            raise PlanError(f"{where}: `problem_type` = {doc['problem_type']!r}; the given problem is a "
                            f"{type_name(problem, version)!r}")
        if doc["problem_fingerprint"] != fingerprint(problem, version):
            raise PlanError(f"{where}: `problem_fingerprint` does not match the given problem (the plan was made "
                            "for other data)")
    plan = plan_from_jsonable(doc["plan_type"], doc["plan"], where, version)
    return PlanFile(plan, doc["problem_type"], doc["problem_fingerprint"], doc["result"], doc["schema_version"],
                    doc.get("source"), doc.get("problem"))


# -- exporters (registered in ``edgeplan.io.export``: :func:`edgeplan.registry.exporter`) -----------------------
def exporters_for(plan: Any) -> list[str]:
    """Names of the formats a plan can be exported to.

    Parameters
    ----------
    plan
        Any plan.

    Returns
    -------
    list of str
        The formats registered for its type, sorted (empty for a MILP's solution vector).
    """
    return sorted(e.name for (_, t), e in EXPORTERS.items() if isinstance(plan, t))


def export_plan(problem: Any, plan: Any, to: str, out_dir: str | Path, **kwargs: Any) -> list[Path]:
    """Export ``plan`` in format ``to`` into ``out_dir``; returns the files written.

    Parameters
    ----------
    problem, plan
        The instance and its plan.
    to
        The format: one of :func:`exporters_for` ``(plan)`` (``split-spec``, ``onnx``, ``pipeedge``,
        ``flower``).
    out_dir
        The folder to write into (created).
    **kwargs
        Passed to the exporter (``module=`` and ``inputs=`` for ``onnx`` and ``split-spec``; ``hosts=`` for
        ``pipeedge``; ``server_round=``, ``client_ids=`` for ``flower``).
    """
    for (name, t), e in EXPORTERS.items():
        if name == to and isinstance(plan, t):
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            return needs_extras(e.func)(problem, plan, out, **kwargs)
    able = exporters_for(plan)
    kind = "a solution vector" if isinstance(plan, np.ndarray) else type(plan).__name__
    what = f"{type(problem).__name__ + ' ' if problem is not None else ''}plan ({kind})"
    if able:
        raise PlanError(f"`to` = {to!r} is not an export format for a {what}; expected one of {', '.join(able)}")
    raise PlanError(f"`to` = {to!r}: a {what} has no export formats; {export_formats_text()}")


def export_formats_text() -> str:
    """Which plan types have which export formats, in one line (for messages and ``--help``)."""
    by_type: dict[str, list[str]] = {}
    for (name, t), _ in EXPORTERS.items():
        by_type.setdefault(t.__name__, []).append(name)
    listed = ", ".join(f"{t} ({', '.join(sorted(names))})" for t, names in sorted(by_type.items()))
    return f"the families' exporters take these plans: {listed}; a MILP's solution vector has none"


__all__ = ["SCHEMA_VERSION", "PlanFile", "export_formats_text", "export_plan", "exporters_for", "fingerprint",
           "load_plan", "plan_document", "plan_from_jsonable", "save_plan", "to_jsonable", "validate_document"]
