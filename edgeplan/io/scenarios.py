"""Scenarios as files: a TOML file names a family's generator, its parameters, sweeps and seeds.

.. code-block:: toml

    name = "knapsack-sweep"
    family = "knapsack"          # a registered generator (edgeplan families)
    seeds = 5                    # 0..4, or an explicit list [0, 7, 9]

    [params]                     # fixed generator keyword arguments (profile names allowed
    n_rows = 5                   # where the family's generator takes them)

    [sweep]                      # every combination x every seed is one instance
    n_items = [10, 20, 40]

    [solve]                      # optional defaults for `edgeplan solve/compare`
    methods = ["highs", "cp-sat"]
    time_limit = 10

Scenarios shipped with the package (``edgeplan/examples/*.toml``: :func:`shipped_scenarios`) load by name:
``load_scenario("knapsack-sweep")`` and ``edgeplan solve knapsack-sweep``; a path that exists is always read
as a file first.

Every family's generator is reachable by name; a generator is a function
``f(**params, seed=int) -> problem`` registered with :func:`edgeplan.registry.generator` in the family's
``instances.py`` (a generator that needs a real torch model lives in the family's validation folder and is
loaded only when its name is asked for).
"""

from __future__ import annotations

import itertools
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeplan._checks import read_text
from edgeplan.errors import ProblemDataError
from edgeplan.registry import GENERATORS, generator_for


@dataclass(frozen=True, slots=True)
class Instance:
    """One generated instance: ``family(**params, seed=seed)``."""

    scenario: str
    family: str
    params: Mapping[str, Any]
    seed: int

    @property
    def key(self) -> str:
        """A unique, stable id: ``scenario/k=v,.../seed=s``."""
        body = ",".join(f"{k}={self.params[k]}" for k in sorted(self.params))
        return f"{self.scenario}/{body}/seed={self.seed}"

    def build(self) -> Any:
        try:
            return generator_for(self.family)(**self.params, seed=self.seed)
        except TypeError as exc:
            raise ProblemDataError(f"scenario {self.scenario!r}: generator {self.family!r} rejected the "
                                   f"parameters {dict(self.params)}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Scenario:
    """A family, fixed parameters, a sweep and seeds; iterating yields the problems.

    Attributes
    ----------
    name
        The scenario's name (instance ids start with it).
    family
        A registered generator (``edgeplan.registry.GENERATORS``).
    params
        Fixed generator arguments.
    sweep
        ``{argument: [values]}``: every combination is an instance, for every seed.
    seeds
        The generator seeds.
    solve
        Defaults for ``edgeplan solve`` / ``compare``: ``methods`` and ``time_limit``.
    """

    name: str
    family: str
    params: Mapping[str, Any] = field(default_factory=dict)
    sweep: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    seeds: Sequence[int] = (0,)
    solve: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        generator_for(self.family)  # validates the name
        for k, values in self.sweep.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ProblemDataError(f"scenario {self.name!r}: `sweep.{k}` = {values!r}; expected a non-empty list")
        both = sorted(set(self.params) & set(self.sweep))
        if both:
            raise ProblemDataError(f"scenario {self.name!r}: {both} appear in both `params` and `sweep`")

    def with_sweep(self, sweep: Mapping[str, Sequence[Any]]) -> Scenario:
        """A copy whose sweep adds (or overrides) ``sweep``; swept keys leave ``params``."""
        params = {k: v for k, v in self.params.items() if k not in sweep}
        return Scenario(self.name, self.family, params, {**self.sweep, **sweep}, self.seeds, self.solve)

    def instances(self) -> list[Instance]:
        keys = list(self.sweep)
        combos = itertools.product(*(self.sweep[k] for k in keys)) if keys else [()]
        return [Instance(self.name, self.family, {**self.params, **dict(zip(keys, combo, strict=True))}, s)
                for combo in combos for s in self.seeds]

    def __iter__(self) -> Iterator[Any]:
        return (inst.build() for inst in self.instances())

    def __len__(self) -> int:
        return len(self.instances())


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return tuple(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and s >= 0 for s in value):
        return tuple(value)
    raise ProblemDataError(f"{where}: `seeds` = {value!r}; expected a positive count or a list of non-negative "
                           "integers")


#: The keys of a scenario's ``[solve]`` table.
SOLVE_KEYS = ("methods", "time_limit")


def _check_solve(table: dict[str, Any], where: str) -> None:
    """``[solve]``: only :data:`SOLVE_KEYS`; ``methods`` a non-empty list of names, ``time_limit`` seconds > 0."""
    unknown = sorted(set(table) - set(SOLVE_KEYS))
    if unknown:
        raise ProblemDataError(f"{where}: unknown keys {unknown} in [solve]; expected {list(SOLVE_KEYS)}")
    methods = table.get("methods", ["-"])
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) and m for m in methods):
        raise ProblemDataError(f"{where}: `solve.methods` = {methods!r}; expected a non-empty list of method names")
    limit = table.get("time_limit", 1.0)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
        raise ProblemDataError(f"{where}: `solve.time_limit` = {limit!r}; expected a positive number of seconds")


#: The folder of the scenarios shipped with the package.
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def shipped_scenarios() -> dict[str, Path]:
    """The scenarios shipped with the package: ``{name: path}`` (names are the file stems)."""
    return {p.stem: p for p in sorted(EXAMPLES.glob("*.toml"))}


def scenario_path(name_or_path: str | Path) -> Path:
    """The file of a scenario given as a path or as the name of a shipped scenario (see :func:`shipped_scenarios`).

    An existing path wins; a bare name (no folder, with or without ``.toml``) that names no file here is looked up
    among the shipped scenarios; anything else is returned as given (reading it then names the missing file).

    Parameters
    ----------
    name_or_path
        A path, or a shipped scenario's name.

    Returns
    -------
    Path
    """
    path = Path(name_or_path)
    if path.exists() or len(path.parts) != 1:
        return path
    shipped = shipped_scenarios()
    stem = path.stem if path.suffix == ".toml" else path.name
    if stem in shipped:
        return shipped[stem]
    if path.suffix != ".toml":
        raise ProblemDataError(f"scenario {str(name_or_path)!r}: no such file, and no shipped scenario of that name; "
                               f"expected a TOML file path or one of {', '.join(shipped)}")
    return path


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file, or a shipped scenario by name (see the module docstring).

    Parameters
    ----------
    path
        A TOML file, or the name of a shipped scenario (:func:`shipped_scenarios`).

    Returns
    -------
    Scenario
        Its instances (:meth:`Scenario.instances`) build the problems; errors name the file and key.
    """
    path = scenario_path(path)
    where = str(path)
    try:
        doc = tomllib.loads(read_text(path, "scenario file"))
    except tomllib.TOMLDecodeError as exc:
        raise ProblemDataError(f"{where}: not valid TOML ({exc})") from exc
    if "family" not in doc:
        raise ProblemDataError(f"{where}: missing key `family`; expected one of {', '.join(sorted(GENERATORS))}")
    allowed = {"name", "family", "seeds", "params", "sweep", "solve"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ProblemDataError(f"{where}: unknown keys {unknown}; expected {sorted(allowed)}")
    for key in ("params", "sweep", "solve"):
        if not isinstance(doc.get(key, {}), dict):
            raise ProblemDataError(f"{where}: `{key}` must be a table")
    _check_solve(doc.get("solve", {}), where)
    try:
        return Scenario(name=str(doc.get("name", path.stem)), family=doc["family"], params=doc.get("params", {}),
                        sweep=doc.get("sweep", {}), seeds=_seeds(doc.get("seeds", 1), where),
                        solve=doc.get("solve", {}))
    except ProblemDataError as exc:
        raise ProblemDataError(f"{where}: {exc}") from exc


__all__ = ["EXAMPLES", "Instance", "Scenario", "load_scenario", "scenario_path", "shipped_scenarios"]
