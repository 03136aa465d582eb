r"""GBMP (greedy model provisioning): SLIDE's model-choice ablation.

Qu et al., SLIDE, arXiv 2512.20946, Sec. 6 (ablations): every user is provisioned the smallest model of its
admissible set :math:`I_k` (fewest bits; ties: fewest FLOPs, then the lowest index); the compute allocation,
the minimum share (Alg. 1) and the admission (Alg. 2) are SLIDE's. It differs from ``slide`` only where a
larger model needs less bandwidth, e.g. when the smallest one is compute-heavy or its first layer is large.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.slide.provisioning import SlideProvisioning
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result
from edgeplan.solvers.slide.slide import baseline_result, min_latency_clocks, min_shares, plan_from_shares


def smallest_models(problem: SlideProvisioning) -> np.ndarray:
    """``(K,)`` each user's smallest admissible model (by bits, then FLOPs, then index)."""
    flops = np.array([w.sum() for w in problem.layer_flops])
    order = np.lexsort((np.arange(problem.n_models), flops, problem.model_bits))
    rank = np.empty(problem.n_models, dtype=np.int64)
    rank[order] = np.arange(problem.n_models)
    masked = np.where(problem.admissible, rank[None, :], problem.n_models)
    return order[np.minimum(masked.min(axis=1), problem.n_models - 1)]


@register("gbmp", problem=SlideProvisioning, kind="heuristic", options={})
def solve_gbmp(problem: SlideProvisioning, ctx: SolveContext) -> Result:
    """GBMP: the smallest admissible model per user, then SLIDE's compute allocation and admission."""
    t0 = time.perf_counter()
    users = np.arange(problem.n_users)
    models = smallest_models(problem)
    _, upper, _ = min_shares(problem.pair_data(users, models))
    table = np.full((problem.n_users, problem.n_models), np.inf)
    table[users, models] = upper

    def clocks_for(us: np.ndarray, ms: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
        pd = problem.pair_data(us, ms)
        _, z = min_latency_clocks(pd, shares)
        return [z[r, : pd["n_layers"][r]].copy() for r in range(us.size)]

    plan, share = plan_from_shares(problem, table, clocks_for)
    return baseline_result(problem, plan, share, "gbmp", t0)
