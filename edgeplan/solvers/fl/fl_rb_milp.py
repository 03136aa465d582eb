r"""``fl-rb-milp``: the FL round on resource blocks as a HiGHS MILP (``fl-cpsat``, in :mod:`.fl_cpsat`, solves
the same model in CP-SAT).

Both solve the resource-block model of :meth:`~edgeplan.formulations.fl.fl_round.FLRound.rb_triples`: triples
:math:`(n, m, k)` (user, BS, blocks) with latency :math:`t_{nmk} \le w_{nm}`, at most one per user, K of them,
block and channel capacities per BS, minimising the largest latency.

* ``"fl-rb-milp"``: the MILP of :meth:`~edgeplan.formulations.fl.fl_round.FLRound.rb_milp` (epigraph variable
  :math:`T`) in HiGHS with ``mip_rel_gap`` 1e-9 and no absolute gap. The optimum is one of the latencies
  :math:`t_{nmk}`, so HiGHS's dual bound is rounded up to the smallest latency at or above it (valid, and usually
  equal to the objective: exact).
* ``"fl-cpsat"``: the same model in CP-SAT with each latency replaced by its **rank** among the distinct
  latencies (an order-preserving integer code): the ranks' maximum is the rank of the latencies' maximum, so
  the integer model has exactly the same optimal assignments and needs no time quantum or scaling. Its bound
  (a rank) maps back to a latency.

On a problem with ``resource_block_hz`` both are exact (status ``optimal`` with ``bound = fun``). On a
continuous problem they solve the model with ``options={"resource_block_hz": beta}`` (default: the smallest
band over 32): the plan is feasible, and a second solve of the **relaxed** block model (block :math:`k` costs
:math:`k - 1` blocks; it covers every bandwidth in :math:`((k-1)\beta, k\beta]`) gives a valid lower bound on
the continuous optimum, so the status is ``feasible`` with that bound (a discretization gap of order
:math:`\beta`). The time limit is split equally between the two solves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan.formulations.fl.fl_round import FLRound, FLSchedule
from edgeplan.solvers.fl.kernels import highs_options, quick_infeasibility
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Deadline, Limit, Result, Status

#: HiGHS relative gap used by ``fl-rb-milp`` (the bound is then rounded up to a latency of the table).
RB_MIP_GAP = 1e-9
#: Blocks per band of the smallest BS when a continuous problem is discretized by default.
DEFAULT_BLOCKS = 32


def _snap_up(values: np.ndarray, bound: float | None) -> float | None:
    """The smallest value of the sorted ``values`` at or above ``bound`` (rounding slack 1e-12 relative)."""
    if bound is None or not np.isfinite(bound):
        return None
    i = int(np.searchsorted(values, bound * (1 - 1e-12) - 1e-300, side="left"))
    return float(values[i]) if i < values.size else None


@dataclass(frozen=True, slots=True)
class BlockRun:
    """One solve of the block model: the plan (not for the relaxed model), a latency bound, how it ended."""

    plan: FLSchedule | None
    bound: float | None
    status: Status
    message: str
    stats: dict[str, Any]


def _highs(problem: FLRound, rb: float | None, relaxed: bool, time_limit: float | None, seed: int | None,
           verbose: bool) -> BlockRun:
    from edgeplan.solvers.api import solve

    clock = Deadline(time_limit)
    milp, decode = problem.rb_milp(resource_block_hz=rb, relaxed=relaxed)
    res = solve(milp, "highs", time_limit=clock.remaining(), seed=seed, options=highs_options(RB_MIP_GAP),
                verbose=verbose)
    tri = problem.rb_triples(resource_block_hz=rb, relaxed=relaxed)
    values = np.unique(tri["latency_s"])
    bound = _snap_up(values, res.bound) if res.has_plan else None
    plan = None if relaxed or not res.has_plan else decode(res.plan)
    return BlockRun(plan, bound, res.status, res.message, {"nodes": res.stats.get("nodes"), "milp_vars": milp.n_vars})


def solve_block_model(problem: FLRound, ctx: SolveContext, method: str, runner: Any) -> Result:
    """The resource-block model of ``problem`` solved by ``runner`` (HiGHS or CP-SAT), with the quick
    infeasibility test first and the plan decoded."""
    t0 = time.perf_counter()
    reason = quick_infeasibility(problem)
    if reason is not None:
        return Result(plan=None, fun=None, status=Status.INFEASIBLE, message=reason, method=method)
    exact = problem.resource_block_hz is not None
    opts_rb = ctx.options.get("resource_block_hz")
    rb = None if exact else float(opts_rb or problem.bs_bandwidth_hz.min() / DEFAULT_BLOCKS)
    left = ctx.deadline.remaining()
    budget = left if exact or left is None else left / 2
    res = runner(problem, rb, False, budget)
    plan, bound = res.plan, res.bound
    stats: dict[str, Any] = {"resource_block_hz": rb or problem.resource_block_hz, **res.stats}
    if plan is None:
        status = Status.INFEASIBLE if res.status is Status.INFEASIBLE else Status.NO_SOLUTION
        limit = Limit.TIME if status is Status.NO_SOLUTION and ctx.time_limit is not None else None
        why = ("no K users fit the resource blocks, channels and windows" if status is Status.INFEASIBLE
               else f"no plan ({res.message})")
        if status is Status.INFEASIBLE and not exact:
            status, limit, why = Status.NO_SOLUTION, Limit.OTHER, why + f" at block width {rb:g} Hz"
        return Result(plan=None, fun=None, status=status, limit=limit, message=why, method=method,
                      solve_time=time.perf_counter() - t0, stats=stats)
    fun = problem.objective(plan)
    if exact:
        # latencies are >= 0, so a round time of 0 (no user selected, or none with work) is its own proof
        proven = res.status is Status.OPTIMAL and ((bound is not None and bound >= fun) or fun <= 0.0)
        limit = None if proven else (Limit.TIME if res.status is not Status.OPTIMAL else Limit.OTHER)
        return Result(plan=plan, fun=fun, status=Status.OPTIMAL if proven else Status.FEASIBLE,
                      bound=fun if proven else bound, limit=limit, method=method,
                      message=f"{'optimal' if proven else 'stopped'} on the resource-block model ({res.message})",
                      solve_time=time.perf_counter() - t0, stats=stats)
    res_low = runner(problem, rb, True, ctx.deadline.remaining())
    bound = res_low.bound if res_low.status is Status.OPTIMAL else None
    stats["relaxed_status"] = res_low.status.value
    return Result(plan=plan, fun=fun, status=Status.FEASIBLE, bound=None if bound is None else min(bound, fun),
                  limit=Limit.OTHER, method=method, solve_time=time.perf_counter() - t0, stats=stats,
                  message=f"continuous bandwidth solved on {rb:g} Hz blocks: feasible; the relaxed block model "
                          "bounds the continuous optimum")


@register("fl-rb-milp", problem=FLRound, kind="exact", requires=("highspy",), install="'highspy>=1.11,<1.12'",
          priority=30, options={"resource_block_hz": (float, None)})
def solve_fl_rb_milp(problem: FLRound, ctx: SolveContext) -> Result:
    """FL round on resource blocks as a MILP (HiGHS); exact for block problems, bounded for continuous ones.

    Options: ``resource_block_hz`` (block width for continuous problems; default: smallest band / 32).
    """
    return solve_block_model(problem, ctx, "fl-rb-milp",
                  lambda p, rb, rel, tl: _highs(p, rb, rel, tl, ctx.seed, ctx.verbose))


__all__ = ["RB_MIP_GAP", "BlockRun", "solve_block_model", "solve_fl_rb_milp"]
