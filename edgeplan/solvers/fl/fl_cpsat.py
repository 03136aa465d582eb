r"""``fl-cpsat``: the FL round on resource blocks in CP-SAT, latencies coded by rank (exact, no time quantum).

The model of :mod:`.fl_rb_milp` (triples :math:`(n, m, k)` of user, BS and blocks, at most one per user, K of
them, block and channel capacities per BS, minimise the largest latency) with each latency replaced by its
**rank** among the distinct latencies: an order-preserving integer code, so the ranks' maximum is the rank of
the latencies' maximum and the integer model has exactly the same optimal assignments, with no scaling. Its
bound (a rank) maps back to a latency. Continuous problems are discretized and bounded as in ``fl-rb-milp``.
"""

from __future__ import annotations

import numpy as np

from edgeplan.formulations.fl.fl_round import FLRound, FLSchedule
from edgeplan.solvers.backends.cpsat import library, run
from edgeplan.solvers.fl.fl_rb_milp import BlockRun, solve_block_model
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Deadline, Result, Status


def _cpsat(problem: FLRound, rb: float | None, relaxed: bool, time_limit: float | None, seed: int | None,
           verbose: bool, workers: int | None) -> BlockRun:
    cp_model = library()
    clock = Deadline(time_limit)
    tri = problem.rb_triples(resource_block_hz=rb, relaxed=relaxed)
    values, rank = np.unique(tri["latency_s"], return_inverse=True)
    u, b, usage = tri["user"], tri["bs"], tri["usage"]
    n, m = problem.gain.shape
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{i}") for i in range(u.size)]
    top = model.new_int_var(0, max(values.size - 1, 0), "T_rank")
    by_user = np.argsort(u, kind="stable")
    cuts = np.searchsorted(u[by_user], np.arange(n + 1))
    for j in range(n):
        idx = by_user[cuts[j]:cuts[j + 1]]
        if idx.size:
            model.add_at_most_one(x[i] for i in idx)
            model.add(cp_model.LinearExpr.weighted_sum([x[i] for i in idx], rank[idx].tolist()) <= top)
    total = cp_model.LinearExpr.sum(x)
    model.add(total == problem.n_select if problem.quota == "exact" else total >= problem.n_select)
    for j in range(m):
        idx = np.flatnonzero(b == j)
        if idx.size:
            model.add(cp_model.LinearExpr.weighted_sum([x[i] for i in idx], usage[idx].tolist())
                      <= int(tri["capacity"][j]))
            if problem.bs_channels[j] < idx.size:
                model.add(cp_model.LinearExpr.sum([x[i] for i in idx]) <= int(problem.bs_channels[j]))
    model.minimize(top)
    code, solver, _ = run(model, time_limit=clock.remaining(), seed=seed, workers=workers, verbose=verbose)
    status = {cp_model.OPTIMAL: Status.OPTIMAL, cp_model.FEASIBLE: Status.FEASIBLE,
              cp_model.INFEASIBLE: Status.INFEASIBLE}.get(code, Status.NO_SOLUTION)
    plan, bound = None, None
    if status in (Status.OPTIMAL, Status.FEASIBLE):
        r = int(np.ceil(solver.best_objective_bound - 1e-9))
        # a rank is a latency only when someone is selected: with K = 0 (or no admissible triple at all, a user
        # with no option is simply not selectable) the empty round is optimal at T = 0
        bound = 0.0 if problem.n_select == 0 or not values.size else float(values[min(max(r, 0), values.size - 1)])
        if not relaxed:
            on = np.array([solver.boolean_value(v) for v in x], dtype=bool)
            bs_of = np.full(n, -1, dtype=np.int64)
            band = np.zeros(n)
            bs_of[u[on]] = b[on]
            band[u[on]] = tri["blocks"][on] * float(tri["rb_hz"])
            plan = FLSchedule(bs_of, band)
    stats = {"branches": int(solver.num_branches), "conflicts": int(solver.num_conflicts),
             "distinct_latencies": int(values.size)}
    return BlockRun(plan, bound, status, solver.status_name(code), stats)


@register("fl-cpsat", problem=FLRound, kind="exact", requires=("ortools",), install="ortools", priority=40,
          imports=("ortools.sat.python.cp_model",),
          options={"resource_block_hz": (float, None), "num_workers": (int, None)})
def solve_fl_cpsat(problem: FLRound, ctx: SolveContext) -> Result:
    """FL round on resource blocks in CP-SAT with latencies coded by rank (exact, no time quantum).

    Options: ``resource_block_hz`` (as for ``fl-rb-milp``), ``num_workers``.
    """
    workers = ctx.options["num_workers"]
    return solve_block_model(problem, ctx, "fl-cpsat",
                  lambda p, rb, rel, tl: _cpsat(p, rb, rel, tl, ctx.seed, ctx.verbose, workers))


__all__ = ["solve_fl_cpsat"]
