"""Pieces every MILP backend shares: the watchdog, trivial models, and the final Result."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from edgeplan.formulations.milp import MILP
from edgeplan.solvers.result import Limit, Result, Status

#: The watchdog fires at ``WATCHDOG_FACTOR * time_limit + WATCHDOG_SLACK`` seconds.
WATCHDOG_FACTOR = 1.05
WATCHDOG_SLACK = 0.1
#: How often the main thread looks for Ctrl-C while a native solver runs (:func:`interruptible`).
INTERRUPT_POLL_S = 0.05

T = TypeVar("T")


@dataclass
class Watchdog:
    """Records whether the watchdog had to stop the solver."""

    fired: bool = False


@contextmanager
def watchdog(time_limit: float | None, cancel: Callable[[], None]) -> Iterator[Watchdog]:
    """Call ``cancel()`` from a timer thread if the block overruns ``time_limit`` (ours to keep).

    Solvers have overrun their own limits; this stops them and keeps their incumbent.
    """
    state = Watchdog()
    if time_limit is None:
        yield state
        return

    def fire() -> None:
        state.fired = True
        cancel()

    timer = threading.Timer(WATCHDOG_FACTOR * time_limit + WATCHDOG_SLACK, fire)
    timer.daemon = True
    timer.start()
    try:
        yield state
    finally:
        timer.cancel()


def interruptible(run: Callable[[], T], stop: Callable[[], None] | None) -> T:
    """``run()`` in a helper thread, so that Ctrl-C reaches the main thread while a native solver works.

    On Ctrl-C (``KeyboardInterrupt`` in the main thread) ``stop()`` asks the solver to stop, we wait for it
    (a second Ctrl-C stops waiting) and re-raise ``KeyboardInterrupt``: an interrupt is never turned into a
    time-limited result. ``stop=None`` is for a solver that cannot be stopped (``scipy.optimize.milp``, the
    translation of a Pyomo model): the interrupt is raised at once and the abandoned work ends in the background
    (a solve at its own time limit). Off the main thread (a Dask or pool worker), where no ``KeyboardInterrupt``
    arrives, ``run()`` is called directly. ``run`` must release the GIL while it works (the solvers used here do).
    """
    if threading.current_thread() is not threading.main_thread():
        return run()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # Ctrl-C is the main thread's (and this
            box["value"] = run()                                         # thread's children's mask blocks it too)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    def wait() -> None:  # not Thread.join: a join cut by Ctrl-C can take a running thread for finished
        while not done.is_set():
            time.sleep(INTERRUPT_POLL_S)

    threading.Thread(target=target, name="edgeplan-solve", daemon=True).start()
    try:
        wait()
    except KeyboardInterrupt:
        if stop is not None:
            stop()
            try:
                wait()
            except KeyboardInterrupt:
                pass
        raise
    if "error" in box:
        raise box["error"]
    return box["value"]


#: Seconds of HiGHS presolve per nonzero that a time limit must leave room for (see :func:`presolve_fits`).
PRESOLVE_S_PER_NNZ = 1e-5


def presolve_fits(milp: MILP, time_left: float | None) -> bool:
    """Whether HiGHS' presolve fits in ``time_left``: ``time_left >= PRESOLVE_S_PER_NNZ * nnz``.

    HiGHS' MIP presolve cannot be interrupted: on the 297k-nonzero PipeEdge MILP it ran 1.7 s past a 1 s
    limit in highspy 1.11, and about 7 s in SciPy's HiGHS. When the limit leaves less than this estimate,
    a backend left to choose (``presolve="choose"`` / ``None``) runs without presolve, which HiGHS can stop
    on time, and says so in ``stats["presolve"]``.
    """
    return time_left is None or time_left >= PRESOLVE_S_PER_NNZ * milp.nnz


#: Seconds per nonzero of HiGHS' feasibility jump, which cannot be interrupted either: 2.8 s on the 854k-nonzero
#: 512 x 16 serving step (highspy 1.11).
JUMP_S_PER_NNZ = 3.3e-6


def jump_fits(milp: MILP, time_left: float | None) -> bool:
    """Whether HiGHS' feasibility jump fits in ``time_left``: ``time_left >= JUMP_S_PER_NNZ * nnz`` (else the
    ``highs`` backend turns it off, unless the caller's ``highs_options`` set it)."""
    return time_left is None or time_left >= JUMP_S_PER_NNZ * milp.nnz


#: Seconds per nonzero that HiGHS may run past a time limit before it first checks it, presolve and feasibility
#: jump off: its MIP setup and root LP (4-6 s on the 854k-nonzero 512 x 16 serving step, highspy 1.11, against
#: limits of 0.5 s and 2 s).
HIGHS_START_S_PER_NNZ = 6e-6


def highs_start_fits(milp: MILP, time_left: float | None) -> bool:
    """Whether HiGHS can stop on time: ``time_left >= HIGHS_START_S_PER_NNZ * nnz``. An exact method with a
    warm start that fails this returns the start (and its own bound) rather than overrun the limit."""
    return time_left is None or time_left >= HIGHS_START_S_PER_NNZ * milp.nnz


class Stopwatch:
    """``with sw.lap("build"): ...`` accumulates wall seconds per label."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def lap(self, label: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[label] = self.times.get(label, 0.0) + time.perf_counter() - t0


def objective_scale(c: np.ndarray) -> float:
    """A power of two ``s >= 1`` with ``max |s c|`` in ``[1, 2)`` when the costs are below 1 (else 1).

    Multiplying the objective by a power of two is exact in floating point, and it lifts costs above the
    solver's absolute tolerances (HiGHS: dual feasibility 1e-7, ``mip_abs_gap`` 1e-6): with every cost under
    1e-6 s, HiGHS took a 2.5e-9 s link latency for zero and called the wrong plan optimal. It never scales
    down: shrinking 77 s costs to 1 pushed the 3e-8 s ones beside them under the same tolerances.
    """
    top = float(np.max(np.abs(c))) if np.size(c) else 0.0
    if not np.isfinite(top) or top == 0.0 or top >= 1.0:
        return 1.0
    return float(np.ldexp(1.0, -int(np.floor(np.log2(top)))))


#: A MILP solver's objective and bound are trusted to this, relative to the largest objective term: HiGHS'
#: default integrality and feasibility tolerances (1e-6) let a column with cost :math:`c_j` move the objective
#: by about :math:`10^{-6}|c_j|` before any rounding.
BOUND_RTOL = 1e-6


def objective_atol(milp: MILP, x: np.ndarray | None) -> float:
    r"""The absolute precision of a floating-point MILP solver's objective and bound at plan ``x``.

    :math:`\varepsilon = 10^{-6} \max(\max_j |c_j|, \sum_j |c_j x_j|)`. Solvers work to tolerances relative
    to the model's scale: a 3e-8 s link latency beside a 77 s block is below their resolution, and HiGHS may
    pick either side of it. The front door clamps a bound this close to the plan's objective and accepts
    "optimal" within it; ``stats["objective_atol"]`` states it, so a user sees what "optimal" was proven to.
    """
    c = np.abs(milp.c)
    top = float(c.max(initial=0.0))
    if x is not None:
        top = max(top, float(c @ np.abs(x)))
    return BOUND_RTOL * top


def clean_solution(milp: MILP, x: Any) -> np.ndarray:
    """Round integer columns to the nearest integer and clip every column into its bounds."""
    x = np.asarray(x, dtype=float).copy()
    x[milp.integrality] = np.round(x[milp.integrality])
    return np.clip(x, milp.col_lower, milp.col_upper)


def trivial_result(milp: MILP, method: str) -> Result | None:
    """The answer for a model with no variables (rows must contain 0), else ``None``."""
    if milp.n_vars:
        return None
    ok = bool(np.all(milp.row_lower <= 0.0) and np.all(milp.row_upper >= 0.0))
    if ok:
        return Result(plan=np.zeros(0), fun=milp.constant, bound=milp.constant, status=Status.OPTIMAL,
                      message="empty model", method=method, sense=milp.sense)
    return Result(plan=None, fun=None, status=Status.INFEASIBLE, message="empty model with a row excluding 0",
                  method=method, sense=milp.sense)


def make_result(
    milp: MILP,
    method: str,
    status: Status,
    x: Any = None,
    *,
    bound: float | None = None,
    limit: Limit | None = None,
    message: str = "",
    build_time: float = 0.0,
    solve_time: float = 0.0,
    stats: Mapping[str, Any] | None = None,
) -> Result:
    """A backend's Result: cleans ``x``, recomputes ``fun`` from the model, drops a plan without a status."""
    plan = None
    fun = None
    if status in (Status.OPTIMAL, Status.FEASIBLE) and x is not None:
        plan = clean_solution(milp, x)
        fun = milp.objective(plan)
    elif status in (Status.OPTIMAL, Status.FEASIBLE):
        status = Status.NO_SOLUTION if limit else Status.ERROR
        message = (message + "; " if message else "") + "the solver reported a solution but returned none"
    bound = None if bound is None or not np.isfinite(bound) else float(bound)
    if status is Status.OPTIMAL and bound is None:
        bound = fun
    if limit is not None and status not in (Status.FEASIBLE, Status.NO_SOLUTION):
        limit = None
    stats = {"objective_atol": objective_atol(milp, plan), **(stats or {})}
    return Result(plan=plan, fun=fun, status=status, bound=bound, limit=limit, message=message, method=method,
                  build_time=build_time, solve_time=solve_time, stats=stats, sense=milp.sense)


def _relaxation_status(milp: MILP, time_limit: float | None) -> int:
    """``scipy.optimize.linprog`` status of the LP relaxation without presolve (2 infeasible, 3 unbounded)."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    sign = -1.0 if milp.sense == "max" else 1.0
    hi, lo = np.isfinite(milp.row_upper), np.isfinite(milp.row_lower)
    A_ub = sp.vstack([milp.A[hi], -milp.A[lo]]).tocsr()
    b_ub = np.concatenate([milp.row_upper[hi], -milp.row_lower[lo]])
    bounds = [(None if np.isinf(a) else a, None if np.isinf(b) else b)
              for a, b in zip(milp.col_lower, milp.col_upper, strict=True)]
    options = {"presolve": False} | ({"time_limit": time_limit} if time_limit else {})
    res = linprog(sign * milp.c, A_ub=A_ub if A_ub.shape[0] else None, b_ub=b_ub if A_ub.shape[0] else None,
                  bounds=bounds, method="highs", options=options)
    return int(res.status)


def lp_relaxation_unbounded(milp: MILP, time_limit: float | None = None) -> bool:
    """True when the LP relaxation is proven unbounded."""
    return _relaxation_status(milp, time_limit) == 3


def disambiguate(milp: MILP, time_limit: float | None = None) -> Status:
    """Tell infeasible from unbounded after a solver's "infeasible or unbounded".

    The LP relaxation is solved without presolve: infeasible relaxation -> the MILP is
    infeasible. Unbounded relaxation -> by Meyer's theorem (rational data) the MILP is unbounded
    iff it is feasible, which a zero-objective ``scipy.optimize.milp`` solve decides.
    """
    code = _relaxation_status(milp, time_limit)
    if code == 2:
        return Status.INFEASIBLE
    if code != 3:
        return Status.INFEASIBLE_OR_UNBOUNDED
    if milp.is_lp:
        return Status.UNBOUNDED
    from scipy.optimize import Bounds, LinearConstraint
    from scipy.optimize import milp as scipy_milp

    cons = [LinearConstraint(milp.A, milp.row_lower, milp.row_upper)] if milp.n_rows else []
    res = scipy_milp(np.zeros(milp.n_vars), integrality=milp.integrality.astype(int),
                     bounds=Bounds(milp.col_lower, milp.col_upper), constraints=cons,
                     options={"time_limit": time_limit} if time_limit else {})
    return {0: Status.UNBOUNDED, 2: Status.INFEASIBLE}.get(int(res.status), Status.INFEASIBLE_OR_UNBOUNDED)
