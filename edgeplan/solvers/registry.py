"""The method registry: ``@register(name, problem=..., kind=..., requires=...)``.

A method is a function ``f(problem, ctx: SolveContext) -> Result``. It declares the problem
types it accepts, whether it is ``"exact"`` or a ``"heuristic"``, and the Python modules it needs
(probed lazily with :func:`importlib.util.find_spec`, so registering imports nothing heavy).

Reductions (DESIGN.md): a problem that offers ``to_milp()`` is accepted by every method
registered for :class:`~edgeplan.formulations.milp.MILP`; ``solve()`` reduces, solves and
decodes. Registration order within a kind is the order of preference (``priority`` breaks ties).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from edgeplan.errors import ProblemDataError, SolverUnavailableError, UnsupportedProblemError
from edgeplan.formulations.milp import MILP
from edgeplan.solvers.result import Result

KINDS = ("exact", "heuristic")

#: Reductions that ``solve()`` applies on its own: (target type, name of the problem's method).
REDUCTIONS: tuple[tuple[type, str], ...] = ((MILP, "to_milp"),)

#: Modules whose import registers the built-in methods.
_METHOD_PACKAGES = ("edgeplan.solvers.backends", "edgeplan.solvers.exact", "edgeplan.solvers.heuristics")


@dataclass(frozen=True, slots=True)
class SolveContext:
    """The common arguments of every method, validated once by ``solve()``."""

    time_limit: float | None = None
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    verbose: bool = False


class Options:
    """Typed access to ``ctx.options`` that rejects unknown keys.

    Use ``opts.get(key, default, kind)`` for each accepted option, then ``opts.done()``: any key
    not read raises :class:`ProblemDataError` naming it and the accepted ones.
    """

    def __init__(self, options: Mapping[str, Any], method: str) -> None:
        self._options = dict(options)
        self._method = method
        self._read: list[str] = []

    def get(self, key: str, default: Any, kind: Callable[[Any], Any] | None = None) -> Any:
        self._read.append(key)
        if key not in self._options:
            return default
        value = self._options[key]
        if kind is None or value is None:
            return value
        try:
            return kind(value)
        except (TypeError, ValueError) as exc:
            raise ProblemDataError(f"`options[{key!r}]` = {value!r} for method {self._method!r}; "
                                   f"expected {getattr(kind, '__name__', kind)}") from exc

    def done(self) -> None:
        unknown = sorted(set(self._options) - set(self._read))
        if unknown:
            raise ProblemDataError(f"`options` has unknown keys {unknown} for method {self._method!r}; "
                                   f"accepted: {sorted(set(self._read))}")


@dataclass(frozen=True, slots=True)
class Method:
    """A registered method (see :func:`register`)."""

    name: str
    problems: tuple[type, ...]
    kind: str
    func: Callable[[Any, SolveContext], Result]
    requires: tuple[str, ...]
    install: str
    priority: int
    summary: str

    @property
    def available(self) -> bool:
        return not self.missing

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(m for m in self.requires if not _module_available(m))

    def ensure_available(self) -> None:
        if self.missing:
            raise SolverUnavailableError(
                f"method {self.name!r} needs {', '.join(self.missing)}, which is not installed; "
                f"install it with `pip install {self.install}`")

    def direct(self, problem: Any) -> bool:
        """True when the method takes ``problem`` (an instance or a type) as is, with no reduction."""
        if isinstance(problem, type):
            return issubclass(problem, self.problems)
        return isinstance(problem, self.problems)

    def reduction(self, problem: Any) -> str | None:
        """Name of the problem's method that reduces it to a type this method takes, if any."""
        for target, attr in REDUCTIONS:
            if target in self.problems and callable(getattr(problem, attr, None)):
                return attr
        return None

    def accepts(self, problem: Any) -> bool:
        return self.direct(problem) or self.reduction(problem) is not None


_REGISTRY: dict[str, Method] = {}


@cache
def _module_available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def register(
    name: str,
    *,
    problem: type | tuple[type, ...],
    kind: str,
    requires: Iterable[str] = (),
    install: str | None = None,
    priority: int = 100,
) -> Callable[[Callable[[Any, SolveContext], Result]], Callable[[Any, SolveContext], Result]]:
    """Register ``func(problem, ctx) -> Result`` under ``name``.

    Parameters
    ----------
    name
        The method's public name (``solve(p, method=name)``).
    problem
        The problem type(s) it accepts. Register for ``MILP`` to accept every family with
        ``to_milp()`` too.
    kind
        ``"exact"`` (claims optimality only with a proof) or ``"heuristic"``.
    requires
        Importable module names it needs; probed lazily.
    install
        What the user should ``pip install`` when a requirement is missing (default: the modules).
    priority
        Lower is preferred when ``solve()`` picks a method.
    """
    if kind not in KINDS:
        raise ProblemDataError(f"`kind` = {kind!r}; expected one of {KINDS}")
    problems = problem if isinstance(problem, tuple) else (problem,)
    requires = tuple(requires)

    def decorator(func: Callable[[Any, SolveContext], Result]) -> Callable[[Any, SolveContext], Result]:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ProblemDataError(f"method name {name!r} is already registered")
        doc = (func.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Method(name, problems, kind, func, requires, install or " ".join(requires),
                                 priority, doc[0] if doc else "")
        return func

    return decorator


@cache
def _load_builtin_methods() -> None:
    for package in _METHOD_PACKAGES:
        importlib.import_module(package)


def all_methods() -> list[Method]:
    """Every registered method, exact first, then by priority and name."""
    _load_builtin_methods()
    return sorted(_REGISTRY.values(), key=lambda m: (KINDS.index(m.kind), m.priority, m.name))


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name raises with the valid ones listed."""
    _load_builtin_methods()
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ProblemDataError(f"`method` = {name!r} is not a registered method; "
                               f"expected one of {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def methods_for(problem: Any = None, kind: str | None = None) -> list[Method]:
    """Methods that accept ``problem`` (all when ``None``), optionally of one ``kind``."""
    if kind is not None and kind not in KINDS:
        raise ProblemDataError(f"`kind` = {kind!r}; expected one of {KINDS} or None")
    return [m for m in all_methods()
            if (problem is None or m.accepts(problem)) and (kind is None or m.kind == kind)]


def require_accepts(method: Method, problem: Any) -> None:
    if not method.accepts(problem):
        able = [m.name for m in methods_for(problem)]
        raise UnsupportedProblemError(
            f"method {method.name!r} cannot solve a {type(problem).__name__}; "
            f"methods that can: {', '.join(able) if able else 'none registered'}")


__all__ = ["KINDS", "REDUCTIONS", "Method", "Options", "SolveContext", "all_methods", "get_method",
           "methods_for", "register", "require_accepts"]
