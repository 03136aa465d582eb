"""One registry for every family: the family list, and the decorators that fill it.

A family is a folder of the same name on every floor (``formulations/<family>/``, ``solvers/<family>/``,
``validation/<family>/``); adding one is its folders plus its name in :data:`FAMILIES`. Nothing is listed
by hand anywhere else: each floor's modules register what they define with a decorator keyed by types,

======================================  ==========================================================
decorator                               registers
======================================  ==========================================================
``@generator(name)``                    an instance generator ``f(**params, seed) -> problem``
``@reduction(ProblemType)``             ``f(problem, **kw) -> (MILP, decode)``: ``problem.to_milp()``
``@register(name, problem=..., ...)``   a method (:func:`edgeplan.solvers.registry.register`)
``@validator(ProblemType, label)``      an executor ``f(problem, plan, *, device) -> report``
``@exporter(format, plan=PlanType)``    ``f(problem, plan, out_dir, **kw) -> [paths]``
======================================  ==========================================================

and :func:`load` imports every module of a floor's family folders (and of the floor's shared folders,
:data:`SHARED`) the first time an entry of that floor is asked for. Registering imports nothing heavy;
loading the formulations imports numpy and scipy only, loading validators imports torch.

The public names of a family are its ``formulations/<family>/__init__.__all__``: ``edgeplan.SplitInference``
and ``edgeplan.formulations.SplitInference`` come from there (:func:`public_name`), and the plan files name
problem and plan types by the same keys (:func:`type_key`, :func:`type_of`).

This module imports no floor: every floor imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

from edgeplan.errors import ProblemDataError, SolverUnavailableError, UnsupportedProblemError

#: The families, in the order they are listed to users. A new family adds its name here.
FAMILIES: tuple[str, ...] = ("partition", "fl", "slide", "cache", "finetune", "sync", "serving", "clustering",
                             "compression")

#: Floors whose family folders register entries, in import order (lower floors first).
FLOORS: tuple[str, ...] = ("formulations", "solvers", "validation", "io.export")

#: Modules of a floor that are not a family's but register entries too (the generic MILP's generator and
#: backends, the export formats that every family shares).
SHARED: dict[str, tuple[str, ...]] = {
    "formulations": ("edgeplan.formulations.instances",),
    "solvers": ("edgeplan.solvers.backends",),
    "validation": (),
    "io.export": ("edgeplan.io.export",),
}

E = TypeVar("E")


def _summary(func: Callable[..., Any]) -> str:
    doc = (func.__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def _walk(package: str) -> Iterator[str]:
    """``package`` and every module below it (no import of a module twice)."""
    yield package
    mod = importlib.import_module(package)
    for info in pkgutil.walk_packages(getattr(mod, "__path__", []), prefix=package + "."):
        yield info.name


def family_packages(floor: str) -> list[str]:
    """The packages ``edgeplan.<floor>.<family>`` that exist, in :data:`FAMILIES` order."""
    if floor not in FLOORS:
        raise ProblemDataError(f"`floor` = {floor!r}; expected one of {', '.join(FLOORS)}")
    out = []
    for family in FAMILIES:
        name = f"edgeplan.{floor}.{family}"
        if importlib.util.find_spec(name) is not None:
            out.append(name)
    return out


#: Libraries of the ``torch`` extra (``pip install 'edgeplan[torch]'``): without them the solver floors work,
#: and the validation and export modules that need them are left unloaded (:func:`unavailable`).
OPTIONAL_LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime", "flwr", "peft", "torch_geometric")
_UNAVAILABLE: dict[str, str] = {}


@cache
def load(floor: str) -> tuple[str, ...]:
    """Import every module of ``floor``'s family folders and shared modules (once); returns their names.

    On the validation and export floors, a module that needs a missing optional library
    (:data:`OPTIONAL_LIBRARIES`) is left out and recorded (:func:`unavailable`): a solver-only install lists,
    solves and compares everything, and says what to install to execute or export.
    """
    loaded = []
    for package in (*SHARED[floor], *family_packages(floor)):
        try:
            names = list(_walk(package))
        except ModuleNotFoundError as exc:
            names = _skip(floor, package, exc)
        for name in names:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                _skip(floor, name, exc)
                continue
            loaded.append(name)
    return tuple(loaded)


def missing_optional(exc: ModuleNotFoundError) -> str | None:
    """The optional library (:data:`OPTIONAL_LIBRARIES`) whose absence raised ``exc``, else ``None``."""
    missing = (exc.name or "").split(".")[0]
    return missing if missing in OPTIONAL_LIBRARIES else None


def missing_message(what: str, library: str) -> str:
    """What to say when ``what`` needs an optional ``library`` that is not installed."""
    return f"{what} needs {library}, which is not installed; install it with `pip install 'edgeplan[torch]'`"


def _skip(floor: str, module: str, exc: ModuleNotFoundError) -> list[str]:
    missing = missing_optional(exc)
    if floor not in ("validation", "io.export") or missing is None:
        raise exc
    _UNAVAILABLE[module] = missing
    return []


def unavailable(problem: Any = None) -> dict[str, str]:
    """Modules left unloaded because an optional library is missing: ``{module: library}``; with ``problem``,
    only those of its family's folders."""
    if problem is None:
        return dict(_UNAVAILABLE)
    family = _family_of(type(problem).__module__)
    return {m: lib for m, lib in _UNAVAILABLE.items() if f".{family}." in f"{m}."}


class Registry(Generic[E]):
    """Entries of one kind, keyed by name or type, filled by decorators and loaded from one floor.

    ``get`` and iteration load the floor first (:func:`load`), so a lookup always sees every family.
    """

    def __init__(self, what: str, *floors: str) -> None:
        self.what = what
        self.floors = floors
        self._entries: dict[Any, E] = {}

    def add(self, key: Any, entry: E, *, same: Callable[[E, E], bool] | None = None) -> None:
        """Register ``entry`` under ``key``; a second, different entry under the same key raises."""
        old = self._entries.get(key)
        if old is not None and old is not entry and not (same is not None and same(old, entry)):
            raise ProblemDataError(f"{self.what} {_label(key)} is already registered")
        self._entries[key] = entry

    def remove(self, key: Any) -> None:
        """Unregister ``key`` (for tests that register scratch entries); a missing key is ignored."""
        self._entries.pop(key, None)

    def _loaded(self, until: Any = None) -> dict[Any, E]:
        """Load the floors in order, stopping early once ``until`` (a key) is registered."""
        for floor in self.floors:
            if until is not None and until in self._entries:
                break
            load(floor)
        return self._entries

    def get(self, key: Any) -> E:
        entries = self._loaded(key)
        if key not in entries:
            entries = self._loaded()
            known = ", ".join(sorted(map(_label, entries))) or "(none registered)"
            raise ProblemDataError(f"`{self.what}` = {_label(key)!r} is not registered; expected one of {known}")
        return entries[key]

    def find(self, key: Any) -> E | None:
        return self._loaded(key).get(key)

    def items(self) -> list[tuple[Any, E]]:
        return list(self._loaded().items())

    def __contains__(self, key: Any) -> bool:
        return key in self._loaded(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._loaded()))

    def __len__(self) -> int:
        return len(self._loaded())


def _label(key: Any) -> str:
    if isinstance(key, type):
        return key.__name__
    if isinstance(key, tuple):
        return "/".join(map(_label, key))
    return str(key)


# -- generators -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Generator:
    """A registered instance generator ``func(**params, seed=int) -> problem``."""

    name: str
    func: Callable[..., Any]
    family: str
    summary: str
    tiny: tuple[dict[str, Any], ...] = ()
    real_model: bool = False
    demo: tuple[str, dict[str, Any], tuple[str, ...]] | None = None


#: Generators live with their family's formulations; a few need a real model and live in validation (loaded
#: only when such a name is asked for, or all are listed).
GENERATORS: Registry[Generator] = Registry("family", "formulations", "validation")


def _family_of(module: str) -> str:
    parts = module.split(".")
    return next((p for p in parts if p in FAMILIES), "milp")


def generator(name: str, *, tiny: tuple[dict[str, Any], ...] = (), real_model: bool = False,
              demo: tuple[str, dict[str, Any], tuple[str, ...]] | None = None,
              cells: Callable[..., float] | None = None,
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(**params, seed=int) -> problem`` as the scenario family ``name``.

    ``tiny`` lists parameter sets whose instances are small enough to enumerate every plan: the contract
    tests compare every exact method with the family's brute force on them. ``real_model`` marks generators
    that build and profile a torch model (the contract tests leave them to the family's own tests). ``demo`` is
    ``(title, params, methods)``: the family's part of the tour of ``edgeplan demo``. ``cells(**arguments)``
    estimates how many numbers the instance's arrays hold (the generator refuses instances over
    :data:`edgeplan._checks.GENERATOR_MEMORY_LIMIT_BYTES` at 8 bytes each).

    The registered function is wrapped (:func:`edgeplan._checks.checked_generator`): its arguments are
    checked against their defaults' kinds before it runs, and every failure is a ``ProblemDataError``.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        from edgeplan._checks import checked_generator

        checked = checked_generator(name, func, cells)
        entry = Generator(name, checked, _family_of(func.__module__), _summary(func), tuple(tiny), real_model, demo)
        GENERATORS.add(name, entry,
                       same=lambda a, b: a.func.__qualname__ == b.func.__qualname__)
        return checked

    return decorator


def generator_for(name: str) -> Callable[..., Any]:
    """The generator function registered as ``name``; unknown names list the known ones."""
    if not isinstance(name, str) or name not in GENERATORS:
        raise ProblemDataError(f"`family` = {name!r}; expected one of {', '.join(sorted(GENERATORS))}")
    return GENERATORS.get(name).func


# -- reductions -------------------------------------------------------------------------------------------
REDUCTIONS: Registry[Callable[..., Any]] = Registry("reduction", "formulations")


def reduction(problem: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(problem, **kw) -> (MILP, decode)`` as the MILP of ``problem``'s type."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        REDUCTIONS.add(problem, func, same=lambda a, b: a.__qualname__ == b.__qualname__)
        return func

    return decorator


def reduce_to_milp(problem: Any, **kwargs: Any) -> tuple[Any, Callable[[Any], Any]]:
    """``(MILP, decode)`` of ``problem`` from the family's registered reduction (``problem.to_milp()``)."""
    func = REDUCTIONS.find(type(problem))
    if func is None:
        raise UnsupportedProblemError(f"a {type(problem).__name__} has no registered MILP")
    return func(problem, **kwargs)


# -- validators ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Validator:
    """An executor of plans on real torch models: ``func(problem, plan, *, device="cpu") -> report``."""

    label: str
    func: Callable[..., Any]


VALIDATORS: Registry[list[Validator]] = Registry("validator", "validation")


def validator(problem: type | tuple[type, ...], label: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(problem, plan, *, device="cpu") -> report`` for plans of ``problem``'s type(s)."""
    types = problem if isinstance(problem, tuple) else (problem,)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        for t in types:
            entries = VALIDATORS._entries.setdefault(t, [])
            if all(e.func.__qualname__ != func.__qualname__ for e in entries):
                entries.append(Validator(label, func))
        return func

    return decorator


def validators_for(problem: Any) -> list[tuple[str, Callable[..., Any]]]:
    """``(label, function)`` pairs that execute plans of ``problem``'s type (loads the validators: torch).

    A function that needs a missing optional library raises :class:`SolverUnavailableError` naming the extra.
    """
    return [(v.label, needs_extras(v.func)) for v in VALIDATORS.find(type(problem)) or []]


def needs_extras(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func``, with a missing optional library (:data:`OPTIONAL_LIBRARIES`) reported as a
    :class:`SolverUnavailableError` that names the extra to install, instead of a ``ModuleNotFoundError``."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ModuleNotFoundError as exc:
            missing = missing_optional(exc)
            if missing is None:
                raise
            raise SolverUnavailableError(missing_message(func.__name__, missing)) from exc

    return wrapper


# -- exporters --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Exporter:
    """A registered export format for one plan type."""

    name: str
    plan_type: type
    func: Callable[..., Any]
    summary: str


EXPORTERS: Registry[Exporter] = Registry("exporter", "io.export")


def exporter(name: str, *, plan: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(problem, plan, out_dir, **kwargs) -> list[Path]`` as format ``name`` for ``plan``."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        EXPORTERS.add((name, plan), Exporter(name, plan, func, _summary(func)),
                      same=lambda a, b: a.func.__qualname__ == b.func.__qualname__)
        return func

    return decorator


# -- public names and type keys --------------------------------------------------------------------------------
@cache
def _public() -> dict[str, Any]:
    generic = importlib.import_module("edgeplan.formulations")  # the generic MILP: a type, not a family
    names: dict[str, Any] = {"MILP": generic.MILP}
    for package in family_packages("formulations"):
        mod = importlib.import_module(package)
        for n in getattr(mod, "__all__", ()):
            names[n] = getattr(mod, n)
    return names


def public_name(name: str) -> Any:
    """The object a family exports as ``name`` (its ``formulations/<family>/__init__.__all__``)."""
    if name == "MILP":
        raise AttributeError(name)  # edgeplan.MILP is the package face's own import
    try:
        return _public()[name]
    except KeyError:
        raise AttributeError(name) from None


def public_names() -> list[str]:
    """Every name the families export."""
    return sorted(_public())


def type_key(obj_or_type: Any) -> str:
    """The registry key of a problem or plan type: its class name, which the family exports."""
    cls = obj_or_type if isinstance(obj_or_type, type) else type(obj_or_type)
    key = cls.__name__
    if _public().get(key) is not cls:
        raise ProblemDataError(f"{cls.__module__}.{cls.__qualname__} is not a type any family exports")
    return key


def type_of(key: str) -> type | None:
    """The problem or plan type registered as ``key`` (``None`` when no family exports it)."""
    obj = _public().get(key)
    return obj if isinstance(obj, type) else None


__all__ = ["EXPORTERS", "FAMILIES", "FLOORS", "GENERATORS", "OPTIONAL_LIBRARIES", "REDUCTIONS", "SHARED",
           "VALIDATORS", "Exporter", "Generator", "Registry", "Validator", "exporter", "family_packages",
           "generator", "generator_for", "load", "missing_message", "missing_optional", "needs_extras",
           "public_name", "public_names", "reduce_to_milp", "reduction", "type_key", "type_of", "unavailable",
           "validator", "validators_for"]
