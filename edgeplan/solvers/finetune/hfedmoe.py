"""HFedMoE's expert selection and the plain-routing baseline.

``hfedmoe``
    Eq. 15's rule: the routed experts by information-bottleneck importance :math:`I(e)`, highest first, taken
    while they fit the budget and the count cap (top-:math:`C_{budget}`; the first that does not fit ends the
    list; experts of non-positive importance are never taken).
``router-topk``
    The same rule ranked by the router's cumulative score :math:`s^{cum}(e)` (what plain top-k routing
    favours), without the importance proxy.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.finetune.experts import ExpertPlan, ExpertSelection
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def top_c(problem: ExpertSelection, score: np.ndarray) -> ExpertPlan:
    """Routed experts by ``score`` (descending, positive importance), while budget and count allow."""
    order = [int(e) for e in np.argsort(-score, kind="stable") if problem.routed[e] and problem.importance[e] > 0]
    cap = problem.n_experts if problem.max_experts is None else problem.max_experts
    chosen, spent = [], 0.0
    for e in order:
        if len(chosen) >= cap or spent + problem.cost[e] > problem.budget:
            break
        chosen.append(e)
        spent += problem.cost[e]
    return ExpertPlan(chosen)


@register("hfedmoe", problem=ExpertSelection, kind="heuristic", priority=20)
def solve_hfedmoe(problem: ExpertSelection, ctx: SolveContext) -> Result:
    """HFedMoE: top experts by information-bottleneck importance within the budget."""
    t0 = time.perf_counter()
    return heuristic_result(problem, top_c(problem, problem.importance), "hfedmoe", t0)


@register("router-topk", problem=ExpertSelection, kind="heuristic", priority=30)
def solve_router_topk(problem: ExpertSelection, ctx: SolveContext) -> Result:
    """Baseline: top experts by the router's cumulative score within the budget."""
    t0 = time.perf_counter()
    return heuristic_result(problem, top_c(problem, problem.router_score), "router-topk", t0)


__all__ = ["solve_hfedmoe", "solve_router_topk", "top_c"]
