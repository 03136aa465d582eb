"""``compare()``: every method on every instance of a list of problems or a scenario sweep.

One task is (instance, seed, method). Tasks run in-process, in a local process pool, or on a
Dask cluster (``executor="dask"`` with a scheduler ``address`` or a ``client``), with the same
call and the same table. With ``out=path.csv`` each finished row is appended (flushed and
fsynced) as it finishes; rerunning the same call skips the rows already in the file, so an
interrupted sweep resumes without recomputing or losing rows.

The results file is ours alone while a sweep runs: it holds an advisory lock (``flock``; a second
``compare`` on the same file is refused at once, naming it), and a file that is not an edgeplan
results file is refused and left untouched. Each row records its run configuration (``config``: the
time limit, the method's options, the edgeplan version and the versions of the method's libraries);
a rerun counts as done only the rows made with the same configuration, and the last such row of a
task wins. Ctrl-C stops the sweep: the rows finished before it are kept, the interrupted task leaves
none.

Peak memory (``peak_mem_mb``) is the task's resident-memory high-water mark above the
resident memory at its start, native solver memory included: on Linux the process's mark is
reset before each task (``/proc/self/clear_refs``) and read after it (``VmHWM``). With the
thread-based Dask workers, tasks that run concurrently in one process share that mark.
Elsewhere it falls back to ``tracemalloc`` (Python-side allocations only, and much slower).
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeplan._version import __version__
from edgeplan.errors import ExecutionError, ProblemDataError, SolverUnavailableError, UnsupportedProblemError
from edgeplan.io.scenarios import Instance, Scenario, load_scenario
from edgeplan.profiles.memory import MemoryProbe
from edgeplan.solvers.api import _context, available_methods, solve
from edgeplan.solvers.registry import get_method
from edgeplan.solvers.result import relative_gap

if TYPE_CHECKING:
    import pandas as pd

_log = logging.getLogger(__name__)

EXECUTORS = ("inprocess", "process", "dask")
#: Seconds ``compare`` waits for a Dask scheduler to answer.
DASK_CONNECT_S = 10.0
#: Columns of the incremental results file (params as JSON).
RAW_COLUMNS = ["instance", "seed", "method", "kind", "status", "limit", "objective", "bound", "gap", "sense",
               "build_time", "solve_time", "peak_mem_mb", "message", "params", "config"]
TABLE_COLUMNS = ["instance", "seed", "method", "kind", "status", "limit", "objective", "bound", "gap",
                 "best_bound", "gap_to_best", "build_time", "solve_time", "peak_mem_mb", "message"]


@dataclass(frozen=True)
class Task:
    """One run: ``method`` on an instance (built from ``source`` in the worker) with a solver seed."""

    instance: str
    seed: int | None
    method: str
    params: Mapping[str, Any]
    source: Any  # an Instance (built where it runs) or a problem object
    time_limit: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    config: str = ""  # the run configuration (:func:`run_config`), stored with the row
    instance_seed: int | None = None  # a scenario instance's generator seed

    @property
    def row_seed(self) -> int | None:
        """The ``seed`` column: the solver seed of a built problem, the generator seed of a scenario instance."""
        return self.seed if self.seed is not None else self.instance_seed

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.instance, "" if self.row_seed is None else str(self.row_seed), self.method)


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    """Top-level module -> distributions (a scan of every installed package, 0.2 s: done once per process)."""
    from importlib.metadata import packages_distributions

    return packages_distributions()


@functools.cache
def _library_versions(method: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    dists = _distributions()
    out = {}
    for module in get_method(method).requires:
        for dist in dists.get(module.split(".")[0], [module]):
            try:
                out[dist] = version(dist)
            except PackageNotFoundError:
                out[dist] = "missing"
    return out


def run_config(method: str, time_limit: float | None, options: Mapping[str, Any]) -> str:
    """The run configuration a results row is valid for, as canonical JSON: the time limit, the method's
    options, the edgeplan version and the versions of the method's libraries."""
    return json.dumps({"time_limit": time_limit, "options": dict(options), "edgeplan": __version__,
                       "libraries": _library_versions(method)}, sort_keys=True, default=str)


_BUILT: dict[str, Any] = {}


def _problem(task: Task) -> Any:
    if not isinstance(task.source, Instance):
        return task.source
    if task.instance not in _BUILT:
        _BUILT.clear()  # tasks arrive grouped by instance: keep one
        _BUILT[task.instance] = task.source.build()
    return _BUILT[task.instance]


def run_task(task: Task, measure_memory: bool = True) -> dict[str, Any]:
    """Run one task and return its raw row (never raises for a method's failure)."""
    row: dict[str, Any] = {"instance": task.instance, "seed": task.row_seed, "method": task.method,
                           "kind": get_method(task.method).kind, "params": json.dumps(dict(task.params), default=str),
                           "config": task.config}
    problem = _problem(task)
    row["sense"] = getattr(problem, "sense", "min")
    probe = MemoryProbe() if measure_memory else None
    if probe is not None:
        probe.__enter__()
    try:
        r = solve(problem, task.method, time_limit=task.time_limit, seed=task.seed, options=task.options)
        row |= {"status": r.status.value, "limit": r.limit.value if r.limit else None, "objective": r.fun,
                "bound": r.bound, "gap": r.gap, "build_time": r.build_time, "solve_time": r.solve_time,
                "message": r.message}
    except (UnsupportedProblemError, SolverUnavailableError) as exc:
        row |= {"status": "skipped", "message": str(exc)}
    except Exception as exc:  # a crash in one method must not lose a long sweep: record it
        row |= {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    finally:
        if probe is not None:
            probe.__exit__(None, None, None)
            row["peak_mem_mb"] = probe.peak_mb
    return row


# -- the results file ----------------------------------------------------------------------------------
def _read_done(path: Path, repair: bool = True) -> list[dict[str, Any]]:
    """Rows already in ``path``, an edgeplan results file; a torn tail (a run killed mid-write: a last line
    without its newline, or a record cut inside a quoted multi-line message) is cut off the file (with
    ``repair``; otherwise only left out of the rows).

    A file whose first line is not our header is not ours: it is refused, and left exactly as it was.
    """
    if not path.exists() or path.stat().st_size == 0:
        return []
    data = path.read_bytes()
    head = data.split(b"\n", 1)[0].rstrip(b"\r")
    if head == ",".join(RAW_COLUMNS[:-1]).encode():
        raise ProblemDataError(f"`out` = {str(path)!r} was written by an older edgeplan (its rows do not record their "
                               "run configuration); it was left untouched: use another path")
    if head != ",".join(RAW_COLUMNS).encode():
        shown = head[:80].decode(errors="replace")
        raise ProblemDataError(f"`out` = {str(path)!r} is not an edgeplan results file (its first line is {shown!r}; "
                               f"expected the header {','.join(RAW_COLUMNS)!r}); it was left untouched: use "
                               "another path")
    lines = data.decode(errors="replace").splitlines(keepends=True)
    reader = csv.reader(lines, strict=True)
    rows, kept = [], 1                                           # lines held by the header and complete rows
    try:
        for record in reader:
            if reader.line_num == 1:
                continue
            if len(record) != len(RAW_COLUMNS) or not lines[reader.line_num - 1].endswith("\n"):
                break                                            # torn: too few fields, or no final newline
            rows.append(dict(zip(RAW_COLUMNS, record, strict=True)))
            kept = reader.line_num
    except csv.Error:                                            # ended inside a quoted field
        pass
    size = len("".join(lines[:kept]).encode())
    if repair and size != len(data):
        with path.open("r+b") as fh:
            fh.truncate(size)
    return rows


def _lock(fh: Any, path: Path) -> None:
    """An exclusive advisory lock on the results file, or a clear refusal when another run holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no advisory locks
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        fh.close()
        raise ProblemDataError(f"`out` = {str(path)!r} is being written by another compare run (it holds the file's "
                               "lock); wait for it to finish or use another path") from exc


class _Writer:
    """The locked results file: :meth:`open` locks it, then reads the rows already done; rows are appended."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fh = None

    def open(self) -> list[dict[str, Any]]:
        path = self.path
        if path is None:
            return []
        if path.exists() and not path.is_file():
            raise ProblemDataError(f"`out` = {str(path)!r} is not a regular file; expected a CSV file path")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("a", newline="")
        _lock(self.fh, path)
        try:
            done = _read_done(path)
        except BaseException:
            self.close()
            raise
        self.writer = csv.DictWriter(self.fh, RAW_COLUMNS, extrasaction="ignore")
        if path.stat().st_size == 0:
            self.writer.writeheader()
            self._sync()
        return done

    def _sync(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def write(self, row: dict[str, Any]) -> None:
        if self.fh is not None:
            self.writer.writerow(row)
            self._sync()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()  # releases the lock
            self.fh = None


# -- executors -------------------------------------------------------------------------------------
def _inprocess(tasks: Sequence[Task], emit: Callable[[dict], None], memory: bool, **_: Any) -> None:
    for t in tasks:
        emit(run_task(t, memory))


def _process(tasks: Sequence[Task], emit: Callable[[dict], None], memory: bool, max_workers: int | None = None,
             **_: Any) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: solver libraries start threads, and fork after threads can deadlock.
    with ProcessPoolExecutor(max_workers=max_workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_task, t, memory) for t in tasks]
        for f in as_completed(futures):
            emit(f.result())


def _dask(tasks: Sequence[Task], emit: Callable[[dict], None], memory: bool, address: str | None = None,
          client: Any = None, **_: Any) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise SolverUnavailableError("executor 'dask' needs dask.distributed; install it with "
                                     "`pip install 'edgeplan[cluster]'`") from exc
    if client is None and address is None:
        raise ProblemDataError("executor 'dask' needs `address` (a scheduler address such as 'tcp://host:8786') "
                               "or `client` (a distributed.Client)")
    own = client is None
    if own:
        try:
            client = Client(address, timeout=DASK_CONNECT_S)
        except (OSError, ValueError, TimeoutError) as exc:
            raise ExecutionError(f"`address` = {address!r}: no Dask scheduler answered there within "
                                 f"{DASK_CONNECT_S:g} s ({type(exc).__name__}: {exc})") from exc
    try:
        futures = [client.submit(run_task, t, memory, pure=False) for t in tasks]
        for f in as_completed(futures):
            emit(f.result())
    finally:
        if own:
            client.close()


_EXECUTORS = {"inprocess": _inprocess, "process": _process, "dask": _dask}


# -- compare ---------------------------------------------------------------------------------------------
def _seed_list(seeds: Any) -> list[int] | None:
    """``seeds``: a count ``n`` (seeds ``0..n-1``, as the CLI's ``--seeds n``) or a list of integers >= 0."""
    if seeds is None:
        return None
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ProblemDataError(f"`seeds` = {seeds!r}; expected a count >= 1 or a list of integers >= 0")
        return list(range(seeds))
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise ProblemDataError(f"`seeds` = {seeds!r}; expected a count >= 1 or a list of integers >= 0")
    out = list(seeds)
    bad = [s for s in out if isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0]
    if not out or bad:
        raise ProblemDataError(f"`seeds` = {seeds!r}; expected a count >= 1 or a non-empty list of integers >= 0 "
                               f"(bad: {bad[:3]})")
    return [int(s) for s in out]


def _sources(problems: Any, sweep: Mapping[str, Sequence[Any]] | None,
             seeds: Sequence[int] | None) -> tuple[list[tuple[str, Mapping, Any]], list[int | None], Scenario | None]:
    """(instance id, params, source) triples, the solver seeds, and the scenario if any."""
    seeds = _seed_list(seeds)
    if isinstance(problems, str | Path):
        problems = load_scenario(problems)
    if isinstance(problems, Scenario):
        scen = problems.with_sweep(sweep) if sweep else problems
        if seeds is not None:
            scen = Scenario(scen.name, scen.family, scen.params, scen.sweep, tuple(seeds), scen.solve)
        return [(i.key, dict(i.params), i) for i in scen.instances()], [None], scen
    if sweep:
        raise ProblemDataError("`sweep` needs a scenario (a Scenario or a scenario file); built problems cannot be "
                               "swept")
    if isinstance(problems, Mapping):
        named = [(str(k), {}, p) for k, p in problems.items()]
    elif isinstance(problems, list | tuple):
        named = [(getattr(p, "name", None) or f"problem-{i}", {}, p) for i, p in enumerate(problems)]
        if len({n for n, _, _ in named}) < len(named):
            named = [(f"{n}#{i}", q, p) for i, (n, q, p) in enumerate(named)]
    else:
        named = [(getattr(problems, "name", None) or "problem-0", {}, problems)]
    return named, list(seeds) if seeds is not None else [None], None


def compare(
    problems: Any,
    methods: Iterable[str] | None = None,
    *,
    seeds: Sequence[int] | None = None,
    time_limit: float | None = None,
    sweep: Mapping[str, Sequence[Any]] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    executor: str = "inprocess",
    max_workers: int | None = None,
    address: str | None = None,
    client: Any = None,
    out: str | Path | None = None,
    progress: bool = False,
    measure_memory: bool = True,
) -> pd.DataFrame:
    """Solve every instance with every method; one tidy row per (instance, seed, method).

    Parameters
    ----------
    problems
        A problem, a list or ``{name: problem}`` mapping of problems, a :class:`~edgeplan.io.scenarios.Scenario`,
        or the path of a scenario TOML file.
    methods
        Method names; default the scenario's ``[solve] methods``, else every installed method that
        accepts the first problem.
    seeds
        A count ``n`` (seeds ``0..n-1``) or a list of seeds. For a scenario: the instance seeds
        (overriding the file's). For built problems: solver seeds, each a separate run. The table's
        ``seed`` column holds the one that applies.
    time_limit, options
        Per-solve time limit (seconds) and per-method options ``{"cp-sat": {"num_workers": 1}}``.
    sweep
        ``{"param": [values, ...]}`` added to a scenario's sweep (every combination x every seed).
    executor, max_workers, address, client
        ``"inprocess"``, ``"process"`` (a local spawn pool of ``max_workers``), or ``"dask"`` (with a
        scheduler ``address`` or a ``distributed.Client``).
    out
        A CSV file rows are appended to as they finish; an existing file is resumed.
    progress
        Show a progress bar (tqdm).
    measure_memory
        Record each run's peak resident memory (``peak_mem_mb``; see the module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns ``instance, seed, <swept and fixed parameters>, method, kind, status, limit,
        objective, bound, gap, best_bound, gap_to_best, build_time, solve_time, peak_mem_mb,
        message``. ``best_bound`` is the tightest valid bound any method proved on the instance
        (a proven optimum counts); ``gap_to_best`` is ``|objective - best_bound| / |best_bound|``, the
        distance from the optimum when one method proved it. Methods
        that cannot take a problem give ``status="skipped"`` with the reason.
    """

    if not isinstance(executor, str) or executor not in _EXECUTORS:
        raise ProblemDataError(f"`executor` = {executor!r}; expected one of {', '.join(EXECUTORS)}")
    if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                    or max_workers < 1):
        raise ProblemDataError(f"`max_workers` = {max_workers!r}; expected a whole number >= 1 (the pool size)")
    named, solver_seeds, scen = _sources(problems, sweep, seeds)
    if not named:
        raise ProblemDataError("`problems` is empty; expected at least one problem or scenario instance")
    if methods is None and scen is not None and scen.solve.get("methods"):
        methods = scen.solve["methods"]
    if time_limit is None and scen is not None:
        time_limit = scen.solve.get("time_limit")
    if methods is None:
        first = named[0][2].build() if isinstance(named[0][2], Instance) else named[0][2]
        methods = available_methods(first)
    if isinstance(methods, str):
        raise ProblemDataError(f"`methods` = {methods!r}; expected a list of method names")
    method_list = list(dict.fromkeys(get_method(m).name for m in methods))
    if not method_list:
        raise ProblemDataError("`methods` is empty; expected at least one method name")
    time_limit = _context(time_limit, None, None, False).time_limit  # a bad limit is refused before any run
    if options is not None and not isinstance(options, Mapping):
        raise ProblemDataError(f"`options` = {options!r}; expected {{method: {{option: value}}}}")
    options = dict(options or {})
    unknown = sorted(set(options) - set(method_list))
    if unknown:
        raise ProblemDataError(f"`options` names methods {unknown} that are not compared; expected keys among "
                               f"{method_list}")
    for m in method_list:  # unknown or ill-typed options are refused before any run
        get_method(m).bind(options.get(m) or {})
    configs = {m: run_config(m, time_limit, options.get(m) or {}) for m in method_list}
    tasks = [Task(name, s, m, params, src, time_limit, options.get(m) or {}, configs[m],
                  src.seed if isinstance(src, Instance) else None)
             for name, params, src in named for s in solver_seeds for m in method_list]
    writer = _Writer(Path(out) if out is not None else None)
    done_rows = writer.open()
    config_of = {t.key: t.config for t in tasks}
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in done_rows:  # rows of this run's configuration; the last one of a task wins
        key = (r["instance"], r["seed"] or "", r["method"])
        if config_of.get(key) == r["config"]:
            latest[key] = r
    todo = [t for t in tasks if t.key not in latest]
    rows: list[dict[str, Any]] = [dict(r) for r in latest.values()]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="run", desc="compare")

    def emit(row: dict[str, Any]) -> None:
        writer.write(row)
        rows.append(row)
        _log.info("%s %s seed=%s: %s, objective %s, %.4g s", row["instance"], row["method"], row["seed"],
                  row["status"], row.get("objective"), row.get("solve_time") or 0.0)
        if bar is not None:
            bar.update(1)

    t0 = time.perf_counter()
    try:
        _EXECUTORS[executor](todo, emit, measure_memory, max_workers=max_workers, address=address, client=client)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    table = _table(rows, [t.key for t in tasks])
    table.attrs["computed"] = len(todo)
    table.attrs["wall_time"] = time.perf_counter() - t0
    return table


def read_results(path: str | Path, config: str | None = None) -> pd.DataFrame:
    """The table :func:`compare` returned, read back from its results file (``out=``).

    Parameters
    ----------
    path
        A results CSV written by ``compare(..., out=path)`` or ``edgeplan compare --out``.
    config
        Keep only rows of this run configuration (the ``config`` column, see :func:`run_config`); by
        default every row counts.

    Returns
    -------
    pandas.DataFrame
        The same columns, parameter columns and ``best_bound`` / ``gap_to_best`` as :func:`compare`'s
        table, one row per (instance, seed, method) in the order the file first has them; when a task
        has several rows (a rerun), the last one wins, as in a resumed ``compare``. The file is only read
        (a torn last row, from a run killed mid-write, is left out but not cut off).
    """
    path = Path(path)
    if not path.is_file():
        raise ProblemDataError(f"`path` = {str(path)!r} is not a file; expected a results CSV written by compare")
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}  # first-seen order, last row wins
    for r in _read_done(path, repair=False):
        if config is None or r["config"] == config:
            latest[(r["instance"], r["seed"] or "", r["method"])] = r
    return _table([dict(r) for r in latest.values()], list(latest))


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _table(rows: list[dict[str, Any]], order: list[tuple[str, str, str]]) -> pd.DataFrame:
    import pandas as pd

    for r in rows:
        for k in ("objective", "bound", "gap", "build_time", "solve_time", "peak_mem_mb"):
            r[k] = _num(r.get(k))
        r["seed"] = None if r.get("seed") in (None, "") else int(r["seed"])
        r["limit"] = r.get("limit") or None
    by_instance: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_instance.setdefault(r["instance"], []).append(r)
    for group in by_instance.values():
        sense = group[0].get("sense") or "min"
        cands = [r["bound"] for r in group if r["bound"] is not None and r["status"] in ("optimal", "feasible")]
        cands += [r["objective"] for r in group if r["status"] == "optimal"]
        best = (max if sense == "min" else min)(cands) if cands else None
        for r in group:
            r["best_bound"] = best
            ok = r["objective"] is not None and r["status"] in ("optimal", "feasible")
            r["gap_to_best"] = relative_gap(r["objective"], best, relative_to="bound") if ok else None
    rank = {k: i for i, k in enumerate(order)}
    rows.sort(key=lambda r: rank.get((r["instance"], "" if r["seed"] is None else str(r["seed"]), r["method"]), 0))
    params = [json.loads(r.get("params") or "{}") for r in rows]
    keys = list(dict.fromkeys(k for p in params for k in p))
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    for i, k in enumerate(keys):
        df.insert(2 + i, k, [p.get(k) for p in params])
    return df


__all__ = ["EXECUTORS", "MemoryProbe", "Task", "compare", "read_results", "run_task"]
