r"""HiGHS through highspy: the whole model passed in one ``passModel`` call.

Status map (``HighsModelStatus`` -> :class:`Status`): ``kOptimal`` -> optimal (HiGHS' MIP
optimality means within ``mip_rel_gap``, default 1e-4, reported in ``stats`` and visible in
``bound``); ``kInfeasible``/``kUnbounded`` -> infeasible/unbounded; ``kUnboundedOrInfeasible``
is told apart by :func:`~edgeplan.solvers.backends._common.disambiguate`; ``kTimeLimit`` and
our watchdog's ``kInterrupt`` -> limit ``time`` with the incumbent (feasible) or none
(no_solution).

Guard options
-------------
Every solve sets :func:`guard_options` before the caller's ``highs_options``, which override
them key by key (``highs_options={"presolve_rule_off": 0}`` restores HiGHS' own presolve).
Each answers a wrong "optimal" that HiGHS returned with its defaults on our models; the plans
were feasible, so the front door's check could not see them.

* ``mip_abs_gap`` = 0. HiGHS stops when the incumbent :math:`z_P` and bound :math:`z_D` satisfy
  :math:`z_P - z_D \le \max(\text{mip\_abs\_gap},\ \text{mip\_rel\_gap}\,|z_P|)`; with the
  default 1e-6 and objectives of 1e-4 (seconds, joules) that is a relative gap of 1e-2. With 0
  the gap is ``mip_rel_gap`` whatever the objective's unit.
* ``presolve_rule_off`` = :data:`PRESOLVE_AGGREGATOR` (bit 12, "Aggregator" in HiGHS' rule
  table): on HiGHS 1.13-1.14 the aggregator returned plans 3-170 % above the optimum on
  split-inference MILPs with memory caps (7-column reproducer in ``tests/milp/test_highs_guard.py``).
* ``presolve`` = ``"off"`` on HiGHS 1.13.0-1.14.x only (:data:`BROKEN_PRESOLVE`). Their MIP presolve
  has a column-stuffing reduction that no option switches off and that proves wrong optima on
  two-column models: ``min 1.078 b + 0.00073 y`` s.t. ``b + y >= 1``, ``b`` binary, gives 1.078
  (HiGHS issues 3043, 3073; fixed upstream in 1.15, which cannot share a process with ortools 9.15).
  We shrank it from a split MILP whose optimum HiGHS 1.14 overstated by 3e-8 s on 0 s; 1.14 also
  fails the aggregator reproducer and the published ones of HiGHS issues 3043, 3073, 3094 and
  linopy 648 (all kept in the tests), which 1.11 and 1.12 solve right. The package requires
  ``highspy<1.12``: 1.12 cannot interrupt its presolve (11 s past a 1 s limit on the PipeEdge
  MILP, where 1.11 stops at 2 s). This guard keeps an installation with 1.13-1.14 right, at the
  price of presolve.

HiGHS' feasibility tolerances are left at their defaults: tightening ``mip_feasibility_tolerance``
to 1e-9 made HiGHS return "optimal" pipeline plans worse than ``pipeline-dp``'s. The plans are
repaired instead (integer columns rounded, every plan re-evaluated by the problem), and the front
door accepts "optimal" only when the bound meets the plan's own objective
(:func:`edgeplan.solvers.api.verify`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.milp import MILP
from edgeplan.solvers.backends._common import (
    INTERRUPT_POLL_S,
    Stopwatch,
    disambiguate,
    jump_fits,
    make_result,
    objective_scale,
    presolve_fits,
    trivial_result,
    watchdog,
)
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: The most ``threads`` passed to HiGHS (10^6 aborted the process).
MAX_THREADS = 256
#: The values of HiGHS' ``presolve`` option.
PRESOLVE_CHOICES = ("choose", "on", "off")
#: HiGHS' own default relative MIP gap.
DEFAULT_MIP_REL_GAP = 1e-4
#: ``presolve_rule_off`` bit of HiGHS' aggregator presolve rule (rule 12 in HiGHS 1.14's table).
PRESOLVE_AGGREGATOR = 1 << 12
#: Options set on every solve before ``highs_options`` (module docstring: why each one).
GUARD_OPTIONS: dict[str, Any] = {"presolve_rule_off": PRESOLVE_AGGREGATOR, "mip_abs_gap": 0.0}
#: HiGHS versions ``[from, to)`` whose MIP presolve proves wrong optima with no option to avoid it but "off".
BROKEN_PRESOLVE = ((1, 13, 0), (1, 15, 0))


def highs_version() -> tuple[int, ...]:
    """The installed HiGHS version as a tuple of ints."""
    import highspy

    h = highspy.Highs()
    return tuple(int(p) for p in (h.versionMajor(), h.versionMinor(), h.versionPatch()))


def guard_options() -> dict[str, Any]:
    """:data:`GUARD_OPTIONS`, plus ``presolve="off"`` on a HiGHS with a broken MIP presolve."""
    lo, hi = BROKEN_PRESOLVE
    return {**GUARD_OPTIONS, "presolve": "off"} if lo <= highs_version() < hi else dict(GUARD_OPTIONS)


def build_highs(milp: MILP, *, verbose: bool = False, objective: bool = True, relax: bool = False,
                scale: float = 1.0) -> Any:
    """A ``highspy.Highs`` holding ``milp``, passed in one call (CSC arrays, no per-row work).

    ``scale`` multiplies the objective (a power of two keeps it exact; HiGHS then reports in scaled units).
    """
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(verbose))
    lp = highspy.HighsLp()
    lp.num_col_ = milp.n_vars
    lp.num_row_ = milp.n_rows
    lp.col_cost_ = milp.c * scale if objective else np.zeros(milp.n_vars)
    lp.offset_ = milp.constant * scale if objective else 0.0
    lp.sense_ = highspy.ObjSense.kMaximize if milp.sense == "max" else highspy.ObjSense.kMinimize
    lp.col_lower_ = milp.col_lower
    lp.col_upper_ = milp.col_upper
    lp.row_lower_ = milp.row_lower
    lp.row_upper_ = milp.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = milp.n_vars
    lp.a_matrix_.num_row_ = milp.n_rows
    lp.a_matrix_.start_ = milp.A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = milp.A.indices.astype(np.int32)
    lp.a_matrix_.value_ = milp.A.data
    if milp.n_integer and not relax:
        kinds = np.where(milp.integrality, highspy.HighsVarType.kInteger, highspy.HighsVarType.kContinuous)
        lp.integrality_ = kinds.tolist()
    status = h.passModel(lp)
    if status == highspy.HighsStatus.kError:
        from edgeplan.errors import SolverError

        raise SolverError(f"HiGHS rejected the model {milp!r} in passModel")
    return h


def _wait(h: Any) -> None:
    while not h.wait(INTERRUPT_POLL_S)[0]:
        pass


def _run(h: Any, time_limit: float | None) -> bool:
    """Run ``h`` under our watchdog; returns True if the watchdog had to interrupt it.

    highspy's own ``joinSolve`` turns Ctrl-C into a solve "interrupted" like a time limit; here Ctrl-C stops
    HiGHS, waits for it, and raises ``KeyboardInterrupt``.
    """
    h.HandleUserInterrupt = True
    h.startSolve()
    with watchdog(time_limit, h.cancelSolve) as dog:
        try:
            _wait(h)
        except KeyboardInterrupt:
            h.cancelSolve()
            _wait(h)
            raise
    return dog.fired


def set_raw_options(h: Any, raw: Mapping[str, Any], label: str = "options['highs_options']") -> None:
    """Pass options to HiGHS one by one; a key or value HiGHS refuses is a :class:`ProblemDataError`.

    ``setOptionValue`` reports an unknown option, a value of the wrong type or one out of range by its status
    (it does not raise); NaN is checked here, since HiGHS takes it. Our watchdog keeps ``solve()``'s time limit
    even when ``highs_options`` sets HiGHS' own ``time_limit``.
    """
    import highspy

    for key, value in raw.items():
        where = f"`{label}[{key!r}]` = {value!r}"
        if isinstance(value, float) and math.isnan(value):
            raise ProblemDataError(f"{where}; expected a number")
        try:
            refused = not isinstance(key, str) or h.setOptionValue(key, value) == highspy.HighsStatus.kError
        except TypeError:  # a value of no HiGHS option type (a list, None)
            refused = True
        if refused:
            raise ProblemDataError(f"{where} was refused by HiGHS (an unknown option, or a value of the wrong type "
                                   "or out of range; see https://ergo-code.github.io/HiGHS/stable/options/definitions/)")


def _column_values(value: Any) -> np.ndarray:
    """A warm start as a float vector (NaN where unknown)."""
    return np.asarray(value, dtype=float).reshape(-1)


@register("highs", problem=MILP, kind="exact", requires=("highspy",), install="'highspy>=1.11,<1.12'",
          priority=10,
          options={"mip_rel_gap": (float, DEFAULT_MIP_REL_GAP), "presolve": (str, "choose"), "threads": (int, None),
                   "highs_options": (dict, {}), "start": (_column_values, None)})
def solve_highs(milp: MILP, ctx: SolveContext) -> Result:
    """HiGHS (highspy) branch-and-cut / simplex, model passed in one call, under a watchdog.

    Options: ``mip_rel_gap`` (default 1e-4), ``presolve`` ("choose"/"on"/"off"; "choose" is "off" when the
    time limit leaves no room for HiGHS' uninterruptible presolve, :func:`presolve_fits`; its uninterruptible
    feasibility jump is turned off the same way, :func:`jump_fits`), ``threads``,
    ``highs_options`` (a dict passed to ``setOptionValue`` as is, after :data:`GUARD_OPTIONS`, which
    its keys override; ``stats["guard"]`` holds the guard options as applied), ``start`` (a warm start: an
    array of ``n_vars`` column values, NaN where unknown, passed to ``setSolution``; HiGHS completes a partial
    one and keeps it as its first incumbent when it is feasible).
    """
    gap = ctx.options["mip_rel_gap"]
    presolve = ctx.options["presolve"]
    if presolve not in PRESOLVE_CHOICES:
        raise ProblemDataError(f"`options['presolve']` = {presolve!r} for method 'highs'; expected one of "
                               f"{', '.join(map(repr, PRESOLVE_CHOICES))}")
    threads = ctx.options["threads"]
    raw = ctx.options["highs_options"]
    trivial = trivial_result(milp, "highs")
    if trivial is not None:
        return trivial

    import highspy

    sw = Stopwatch()
    scale = objective_scale(milp.c)  # exact; lifts sub-tolerance costs above HiGHS' absolute tolerances
    with sw.lap("build"):
        h = build_highs(milp, verbose=ctx.verbose, scale=scale)
    set_raw_options(h, {"mip_rel_gap": gap}, "options")
    left = ctx.deadline.remaining()
    chosen = presolve
    if presolve == "choose" and not presolve_fits(milp, left):
        chosen = "off"  # HiGHS cannot interrupt its presolve: the time limit comes first
    h.setOptionValue("presolve", chosen)
    if threads is not None:
        if threads > MAX_THREADS:  # HiGHS aborts the process when it cannot start that many threads
            raise ProblemDataError(f"`options['threads']` = {threads!r} for method 'highs'; expected at most "
                                   f"{MAX_THREADS}")
        set_raw_options(h, {"threads": threads}, "options")
    if ctx.seed is not None:
        h.setOptionValue("random_seed", int(ctx.seed) % 2147483647)
    if left is not None:
        h.setOptionValue("time_limit", ctx.deadline.remaining())
    start = ctx.options["start"]
    if start is not None:
        x0 = start
        if x0.size != milp.n_vars:
            raise ProblemDataError(f"`options['start']` has {x0.size} values; expected {milp.n_vars} (one per column, "
                                   "NaN where unknown)")
        known = np.flatnonzero(np.isfinite(x0)).astype(np.int32)
        h.setSolution(int(known.size), known, x0[known])
    guards = guard_options()
    if chosen != "choose":            # the caller's own presolve choice (or the deadline's) wins over the guard's
        guards.pop("presolve", None)
    if not jump_fits(milp, left):  # HiGHS cannot interrupt its feasibility jump either
        guards["mip_heuristic_run_feasibility_jump"] = False
    guard = {key: raw.get(key, value) for key, value in guards.items()}
    for key, value in guards.items():
        h.setOptionValue(key, value)
    set_raw_options(h, raw)
    with sw.lap("solve"):
        fired = _run(h, ctx.deadline.remaining())
    ms = highspy.HighsModelStatus
    model_status = h.getModelStatus()
    retried = False
    if model_status == ms.kSolveError and h.getOptionValue("presolve") != "off" and not fired:
        # HiGHS' MIP presolve answers "Solve error" on some tiny infeasible integer models (found by hypothesis);
        # without presolve it proves them infeasible (the scipy backend does the same)
        h.setOptionValue("presolve", "off")
        h.clearSolver()
        with sw.lap("solve"):
            fired = _run(h, ctx.deadline.remaining())
        model_status, retried = h.getModelStatus(), True
    info = h.getInfo()
    has_x = info.primal_solution_status == 2  # kSolutionStatusFeasible
    x = np.asarray(h.getSolution().col_value) if has_x else None
    bound = info.mip_dual_bound / scale if milp.n_integer else None
    limit = None
    if model_status == ms.kOptimal:
        status = Status.OPTIMAL
        if milp.is_lp:
            bound = info.objective_function_value / scale
    elif model_status == ms.kInfeasible:
        status = Status.INFEASIBLE
    elif model_status == ms.kUnbounded:
        status = Status.UNBOUNDED
    elif model_status == ms.kUnboundedOrInfeasible:
        with sw.lap("solve"):
            status = disambiguate(milp, ctx.deadline.remaining())
    elif model_status in (ms.kTimeLimit, ms.kInterrupt, ms.kIterationLimit, ms.kSolutionLimit,
                          ms.kObjectiveBound, ms.kObjectiveTarget):
        status = Status.FEASIBLE if has_x else Status.NO_SOLUTION
        limit = {ms.kTimeLimit: Limit.TIME, ms.kInterrupt: Limit.TIME, ms.kIterationLimit: Limit.ITERATION,
                 ms.kSolutionLimit: Limit.SOLUTION}.get(model_status, Limit.OTHER)
    else:
        status = Status.ERROR
    message = h.modelStatusToString(model_status) + (" (stopped by the watchdog)" if fired else "")
    stats = {"mip_rel_gap": gap, "nodes": int(info.mip_node_count), "simplex_iterations":
             int(info.simplex_iteration_count), "watchdog_fired": fired, "highs_version": h.version(),
             "guard": guard, "presolve": chosen, "retried_without_presolve": retried,
             "objective_scale": scale, "warm_start": start is not None}
    return make_result(milp, "highs", status, x, bound=bound, limit=limit, message=message,
                       build_time=sw.times["build"], solve_time=sw.times["solve"], stats=stats)
