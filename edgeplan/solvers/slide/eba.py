r"""EBA (equal bandwidth allocation): SLIDE's bandwidth ablation.

Qu et al., SLIDE, arXiv 2512.20946, Sec. 6 (ablations): every user gets the share :math:`1/K` of the band
(:math:`B/K` Hz). With that share fixed, each user runs SLIDE's per-user steps: a model is feasible when its
minimum energy at the deadline fits the budget, and among feasible models the one of least latency is chosen
(Prop. 4) with its P2 clocks. Users with no feasible model are not served. Choice: the plan keeps :math:`1/K`
for served users and records 0 for the others (their share is wasted either way).
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.slide.provisioning import SlidePlan, SlideProvisioning
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result
from edgeplan.solvers.slide.slide import admissible_pairs, baseline_result, feasible_at, min_latency_clocks


@register("eba", problem=SlideProvisioning, kind="heuristic", options={})
def solve_eba(problem: SlideProvisioning, ctx: SolveContext) -> Result:
    """EBA: share 1/K for everyone, SLIDE's model choice and clocks at that share."""
    t0 = time.perf_counter()
    k = problem.n_users
    users, models = admissible_pairs(problem)
    pd = problem.pair_data(users, models)
    share = np.full(users.size, 1.0 / k)
    ok = feasible_at(pd, share)
    latency, z = min_latency_clocks(pd, share)
    latency = np.where(ok, latency, np.inf)
    model = np.full(k, -1)
    clocks = [np.zeros(0) for _ in range(k)]
    best = np.full(k, np.inf)
    for r in np.flatnonzero(ok):
        u = users[r]
        if latency[r] < best[u]:
            best[u] = latency[r]
            model[u] = models[r]
            clocks[u] = z[r, : pd["n_layers"][r]].copy()
    plan = SlidePlan(model, np.where(model >= 0, 1.0 / k, 0.0), tuple(clocks))
    return baseline_result(problem, plan, np.where(model >= 0, 1.0 / k, np.inf), "eba", t0)
