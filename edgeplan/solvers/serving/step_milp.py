r"""``step-milp``: one speculative-serving step exactly, by HiGHS on the step's MILP, warm-started.

The MILP is :func:`~edgeplan.formulations.serving.milp.step_milp` (patterns of drafters and speculation
length, lock-step rounds, caps). First the Lagrangian relaxation of :mod:`~edgeplan.solvers.serving.step_bound`
gives a bound (in at most :data:`BOUND_SHARE` of a time limit) and a plan repaired from it. That plan and the
better of the ``cosine`` plan and the autoregressive batch are improved by draft-token exchanges
(:mod:`~edgeplan.solvers.serving.exchange`, in at most :data:`EXCHANGE_SHARE` of the limit), and HiGHS gets the
best as its first incumbent (on models up to
:data:`START_MAX_VARS` columns; larger ones keep it as a fallback), a relative gap of :data:`GAP` and an
integrality and row tolerance of :data:`FEASIBILITY`. The returned plan is the better of HiGHS' and the
incumbent, re-evaluated, with the tighter of HiGHS' bound and the Lagrangian one. When a time limit is too short
for HiGHS to stop on time (its setup and root LP cannot be interrupted), HiGHS is not run and the incumbent comes
back with the Lagrangian bound.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.serving.milp import step_milp, step_start
from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result
from edgeplan.solvers.serving.baselines import by_weight
from edgeplan.solvers.serving.batching import add_in_order
from edgeplan.solvers.serving.cosine import cosine_plan
from edgeplan.solvers.serving.exchange import exchange_tokens
from edgeplan.solvers.serving.step_bound import lagrangian_plan, step_bound
from edgeplan.solvers.warm_milp import solve_warm_milp

#: Largest model HiGHS gets the warm start for (on an earlier formulation with a row per draft token, HiGHS
#: 1.11 processed the start of a 74,000-column step for 26 s past its limit; the pattern formulation takes it at
#: once).  Larger models keep the start as a fallback incumbent.
START_MAX_VARS = 200_000
#: The share of a time limit that the Lagrangian bound (:func:`step_bound`) may take.
BOUND_SHARE = 0.3
#: The share of a time limit that the draft-token exchange (:func:`exchange_tokens`) may take.
EXCHANGE_SHARE = 0.3
#: Relative gap at which HiGHS stops and the result is called optimal.
GAP = 1e-7
#: HiGHS' integrality and row tolerance here: a round's fixed time multiplies a binary, and at the default 1e-6 a
#: binary at 1 - 1e-6 let a step past its bound by more than check's slack.
FEASIBILITY = 1e-9


def warm_start(problem: SpeculativeServing) -> ServingPlan | None:
    """The best feasible of ``cosine``'s plan and the autoregressive batch (None: neither is feasible)."""
    cands = [cosine_plan(problem), add_in_order(problem, by_weight(problem), {}, 0)]
    ok = [p for p in cands if not problem.check(p)]
    return min(ok, key=problem.objective) if ok else None


@register("step-milp", problem=SpeculativeServing, kind="exact", priority=10)
def solve_step_milp(problem: SpeculativeServing, ctx: SolveContext) -> Result:
    """Exact: the step's MILP by HiGHS, warm-started with the best heuristic plan."""
    t0 = time.perf_counter()
    milp, decode = step_milp(problem)
    start = warm_start(problem)
    empty = ServingPlan([None] * problem.n_requests, [0] * problem.n_requests)
    left = ctx.deadline.remaining()
    costs: list = []
    bound = step_bound(problem, None if start is None else problem.objective(start), costs=costs,
                       until=None if left is None else time.perf_counter() + BOUND_SHARE * left)
    starts = [] if start is None else [start]
    if costs and costs[0] is not None and np.isfinite(bound):
        repaired = lagrangian_plan(problem, costs[0])
        if not problem.check(repaired):
            starts.append(repaired)
    until = None if left is None else time.perf_counter() + EXCHANGE_SHARE * left
    starts = [exchange_tokens(problem, s, until) for s in starts]
    start = min(starts, key=problem.objective) if starts else None
    columns = step_start(problem, start) if start is not None and milp.n_vars <= START_MAX_VARS else None
    return solve_warm_milp(problem, milp, decode, ctx, "step-milp", start=start, start_columns=columns,
                           others=(empty,), gap=GAP, feasibility=FEASIBILITY, t0=t0, bound=bound)


__all__ = ["GAP", "START_MAX_VARS", "solve_step_milp", "warm_start"]
