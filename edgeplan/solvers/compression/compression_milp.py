r"""``compression-milp``: a Caesar round exactly, by HiGHS on the round's MILP, warm-started with ``caesar``.

The MILP is :func:`~edgeplan.formulations.compression.milp.compression_milp` (a multiple-choice knapsack per
device for the two ratio levels, integer batch sizes, the barrier as a column). HiGHS gets the better feasible
plan of ``caesar`` and ``no-compression`` as its start, a relative gap of :data:`GAP` and a row and integrality
tolerance of :data:`FEASIBILITY`; the returned plan is the better of HiGHS' and the start, re-evaluated.
"""

from __future__ import annotations

import time

from edgeplan.formulations.compression.milp import compression_milp, compression_start
from edgeplan.formulations.compression.round import CompressionRound
from edgeplan.solvers.compression.caesar import caesar_plan, fixed_plan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result
from edgeplan.solvers.warm_milp import solve_warm_milp

#: Relative gap at which HiGHS stops and the result is called optimal.
GAP = 1e-7
#: HiGHS' integrality and row tolerance here.
FEASIBILITY = 1e-9


@register("compression-milp", problem=CompressionRound, kind="exact", priority=10)
def solve_compression_milp(problem: CompressionRound, ctx: SolveContext) -> Result:
    """Exact: the round's MILP by HiGHS, warm-started with caesar."""
    t0 = time.perf_counter()
    milp, decode = compression_milp(problem)
    starts = [p for p in (caesar_plan(problem), fixed_plan(problem, 0)) if not problem.check(p)]
    start = min(starts, key=problem.objective) if starts else None
    return solve_warm_milp(problem, milp, decode, ctx, "compression-milp", start=start,
                           start_columns=None if start is None else compression_start(problem, start), gap=GAP,
                           feasibility=FEASIBILITY, t0=t0)


__all__ = ["GAP", "solve_compression_milp"]
