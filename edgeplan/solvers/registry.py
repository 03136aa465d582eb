"""The method registry: ``@register(name, problem=..., kind=..., requires=...)``.

A method is a function ``f(problem, ctx: SolveContext) -> Result``. It declares the problem
types it accepts, whether it is ``"exact"`` or a ``"heuristic"``, and the Python modules it needs
(probed lazily with :func:`importlib.util.find_spec`, so registering imports nothing heavy).

Reductions: a problem that offers ``to_milp()`` is accepted by every method
registered for :class:`~edgeplan.formulations.milp.MILP`; ``solve()`` reduces, solves and
decodes. Registration order within a kind is the order of preference (``priority`` breaks ties).

Acceptance by type can overpromise: an ``FLRound`` with continuous bandwidth has a ``to_milp()``
that refuses, and CP-SAT refuses MILPs with continuous columns. :meth:`Method.refusal` probes an
instance: it runs the reduction (families refuse before building anything, and the largest
benchmark MILPs build in under 0.1 s) and then the method's own ``refuses`` hook on the reduced
problem. :func:`capable_methods` applies it with one reduction per call shared by every method.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError, SolverUnavailableError, UnsupportedProblemError
from edgeplan.formulations.milp import MILP
from edgeplan.registry import Registry
from edgeplan.solvers.result import Deadline, Result

KINDS = ("exact", "heuristic")

#: Reductions that ``solve()`` applies on its own: (target type, name of the problem's method).
REDUCTIONS: tuple[tuple[type, str], ...] = ((MILP, "to_milp"),)



@dataclass(frozen=True, slots=True)
class SolveContext:
    """The common arguments of every method, validated once by ``solve()``.

    Attributes
    ----------
    time_limit
        Seconds, or ``None`` for no limit.
    seed
        The seed for randomised methods and solvers.
    options
        Every option the method declares (:func:`register`), converted to its kind, with the defaults filled in.
    verbose
        Whether the solver's own log is wanted.
    deadline
        Started when ``solve()`` was called (the time limit covers the reduction): ``remaining()``,
        ``passed()``, ``elapsed``.
    """

    time_limit: float | None = None
    seed: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    verbose: bool = False
    deadline: Deadline = None  # type: ignore[assignment]  # set from time_limit when not given

    def __post_init__(self) -> None:
        if self.deadline is None:
            object.__setattr__(self, "deadline", Deadline(self.time_limit))


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)


#: Option kinds given as builtins are checked, not coerced (``int(0.5)`` is 0, ``bool("no")`` is True,
#: ``float("nan")`` is a number): ``kind -> (what is expected, test)``. Numeric options are non-negative.
STRICT_KINDS: dict[type, tuple[str, Callable[[Any], bool]]] = {
    float: ("a finite number >= 0",
            lambda v: _number(v) and math.isfinite(float(v)) and float(v) >= 0),
    int: ("a whole number >= 0",
          lambda v: _number(v) and math.isfinite(float(v)) and float(v) == int(v) and v >= 0),
    bool: ("true or false", lambda v: isinstance(v, bool | np.bool_)),
    str: ("a string", lambda v: isinstance(v, str)),
    dict: ("a mapping", lambda v: isinstance(v, Mapping)),
}


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
        if value is None:  # None asks for the default
            return default
        if kind is None:
            return value
        strict = STRICT_KINDS.get(kind)
        if strict is not None:
            expected, accepts = strict
            if not accepts(value):
                raise ProblemDataError(f"`options[{key!r}]` = {value!r} for method {self._method!r}; expected "
                                       f"{expected}")
            return kind(value)
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
    refuses: Callable[[Any], str | None] | None = None
    cannot: frozenset[str] = frozenset()
    hint: str = ""
    keeps_time_limit: bool = True
    options: Mapping[str, tuple[Callable[[Any], Any] | None, Any]] = field(default_factory=dict)
    lifted_by: Mapping[str, str] = field(default_factory=dict)
    imports: tuple[str, ...] = ()

    def load(self) -> None:
        """Import the method's libraries (``imports``, default ``requires``), so that a solve's clock does not
        count the once-per-process import (0.3-1.3 s for OR-Tools, Pyomo, cvxpy)."""
        for module in self.imports or self.requires:
            importlib.import_module(module)

    def bind(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Every declared option, converted to its kind, defaults filled; unknown keys raise naming them."""
        opts = Options(options, self.name)
        bound = {key: opts.get(key, default, kind) for key, (kind, default) in self.options.items()}
        opts.done()
        return bound

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

    def refusal(self, problem: Any, reduced: dict[str, Any] | None = None) -> str | None:
        """Why the method, with default options, cannot solve the instance ``problem``; ``None`` when it can.

        A probe, not a solve: the type, then the reduction (a family's ``to_milp()`` that raises
        :class:`UnsupportedProblemError` refuses), then the method's ``refuses`` hook on the problem it
        would receive. ``reduced`` (name -> reduced problem or the refusal) shares reductions between methods.
        """
        target = problem
        if not self.direct(problem):
            attr = self.reduction(problem)
            if attr is None:
                return f"method {self.name!r} cannot solve a {type(problem).__name__}"
            memo = {} if reduced is None else reduced
            if attr not in memo:
                try:
                    memo[attr] = getattr(problem, attr)()[0]
                except UnsupportedProblemError as exc:
                    memo[attr] = exc
            target = memo[attr]
            if isinstance(target, UnsupportedProblemError):
                return str(target)
        return self.feature_refusal(target) or (None if self.refuses is None else self.refuses(target))

    def feature_refusal(self, problem: Any, options: Mapping[str, Any] | None = None) -> str | None:
        """The refusal that the method's declared capabilities imply: the problem has features it ``cannot`` take
        (unless ``options`` sets the option that lifts one, ``lifted_by``)."""
        given = options or {}
        have = sorted(f for f in self.cannot & getattr(problem, "features", frozenset())
                      if not (f in self.lifted_by and given.get(self.lifted_by[f])))
        if not have:
            return None
        listed = have[0] if len(have) == 1 else ", ".join(have[:-1]) + " and " + have[-1]
        return (f"method {self.name!r} cannot take a {type(problem).__name__} with {listed}"
                + (f"; {self.hint}" if self.hint else ""))


#: Every registered method by name (the methods of ``solvers/backends`` and ``solvers/<family>/``, loaded by
#: :func:`edgeplan.registry.load` on first lookup).
METHODS: Registry[Method] = Registry("method", "solvers")


def _where(func: Callable[..., Any]) -> tuple[str, str]:
    return func.__module__, func.__qualname__


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
    refuses: Callable[[Any], str | None] | None = None,
    cannot: Iterable[str] = (),
    hint: str = "",
    keeps_time_limit: bool = True,
    options: Mapping[str, tuple[Callable[[Any], Any] | None, Any]] | None = None,
    lifted_by: Mapping[str, str] | None = None,
    imports: Iterable[str] = (),
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
    refuses
        Optional cheap probe ``refuses(problem) -> reason | None`` on a problem of an accepted type (after
        any reduction), for what capabilities cannot say (CP-SAT's exact integer scaling): the reason the method
        would refuse it with default options (see :meth:`Method.refusal`). ``solve()`` still runs an explicitly
        named method, which raises its own error.
    cannot
        Capabilities as data: the problem features (a problem's ``features``, e.g. "a DAG model", "memory caps")
        the method cannot take. The registry refuses such problems for the method, listed or requested by name,
        with ``hint`` (where to go instead) in the message; the method body never checks them. ``lifted_by``
        names, per feature, an option that makes the method take it (CP-SAT: continuous columns with
        ``continuous_quantum``); listings probe with default options.
    options
        The options the method takes, as data: ``{name: (kind, default)}`` (``kind`` converts a given value, e.g.
        ``float``; ``None`` keeps it as given). ``solve()`` binds them before the method runs: unknown keys and
        values of the wrong kind raise :class:`ProblemDataError` naming them, and the method reads
        ``ctx.options[name]`` with the default filled in.
    imports
        Modules ``solve()`` imports before its clock starts (default ``requires``; e.g. the submodule that is
        slow to import).
    keeps_time_limit
        False for methods that cannot be stopped at the limit (``scipy.optimize.milp`` runs HiGHS in one
        uninterruptible call; Pyomo builds its model first): they report their ``overrun`` in ``stats``.
    """
    if kind not in KINDS:
        raise ProblemDataError(f"`kind` = {kind!r}; expected one of {KINDS}")
    problems = problem if isinstance(problem, tuple) else (problem,)
    requires = tuple(requires)

    def decorator(func: Callable[[Any, SolveContext], Result]) -> Callable[[Any, SolveContext], Result]:
        doc = (func.__doc__ or "").strip().splitlines()
        METHODS.add(name, Method(name, problems, kind, func, requires, install or " ".join(requires),
                                 priority, doc[0] if doc else "", refuses, frozenset(cannot), hint,
                                 keeps_time_limit, dict(options or {}), dict(lifted_by or {}), tuple(imports)),
                    same=lambda a, b: _where(a.func) == _where(b.func))
        return func

    return decorator


def all_methods() -> list[Method]:
    """Every registered method, exact first, then by priority and name."""
    return sorted((m for _, m in METHODS.items()), key=lambda m: (KINDS.index(m.kind), m.priority, m.name))


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name raises with the valid ones listed.

    Parameters
    ----------
    name
        A registered method name (``edgeplan methods`` lists them).

    Returns
    -------
    Method
        Its function, kind, problem types, requirements, options and declared capabilities.
    """
    if not isinstance(name, str) or name not in METHODS:
        raise ProblemDataError(f"`method` = {name!r} is not a registered method; "
                               f"expected one of {', '.join(sorted(METHODS))}")
    return METHODS.get(name)


def methods_for(problem: Any = None, kind: str | None = None) -> list[Method]:
    """Methods that accept ``problem`` (all when ``None``), optionally of one ``kind``.

    Parameters
    ----------
    problem
        A problem instance or type, or ``None``.
    kind
        ``"exact"`` or ``"heuristic"``.

    Returns
    -------
    list of Method
        In order of preference (exact before heuristic, then by priority).
    """
    if kind is not None and kind not in KINDS:
        raise ProblemDataError(f"`kind` = {kind!r}; expected one of {KINDS} or None")
    return [m for m in all_methods()
            if (problem is None or m.accepts(problem)) and (kind is None or m.kind == kind)]


def capable_methods(problem: Any = None, kind: str | None = None, *, installed_only: bool = False) -> list[Method]:
    """:func:`methods_for`, and for a problem instance only the methods whose :meth:`Method.refusal` is None.

    The reduction runs at most once per call, whichever methods need it; with ``installed_only`` methods whose
    libraries are missing are dropped before any probe. ``None`` or a type: no probe.
    """
    methods = [m for m in methods_for(problem, kind) if m.available or not installed_only]
    if problem is None or isinstance(problem, type):
        return methods
    reduced: dict[str, Any] = {}
    return [m for m in methods if m.refusal(problem, reduced) is None]


def require_accepts(method: Method, problem: Any, options: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`UnsupportedProblemError` (listing the methods that can) unless ``method`` takes ``problem``."""
    if not method.accepts(problem):
        able = [m.name for m in capable_methods(problem)]
        raise UnsupportedProblemError(
            f"method {method.name!r} cannot solve a {type(problem).__name__}; "
            f"methods that can: {', '.join(able) if able else 'none registered'}")
    why = method.feature_refusal(problem, options) if method.direct(problem) else None
    if why:
        raise UnsupportedProblemError(why)


__all__ = ["KINDS", "METHODS", "REDUCTIONS", "Method", "Options", "SolveContext", "all_methods", "capable_methods",
           "get_method", "methods_for", "register", "require_accepts"]
