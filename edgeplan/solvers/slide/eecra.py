r"""EECRA (equal-energy compute resource allocation): SLIDE's compute ablation.

Qu et al., SLIDE, arXiv 2512.20946, Sec. 6 (ablations): "the whole energy budget split equally over the
layers". Layer ``l`` of the model gets :math:`(Q - e^0)/L'` joules of dynamic energy, :math:`L'` the number of
layers with work, so :math:`\Psi f^3 \Gamma_l z_l^2 = (Q - e^0)/L'` and

.. math:: z_l = \min\Big(1, \sqrt{Q' / (L' \Gamma_l)}\Big).

With the clocks fixed, the streamed recursion gives the minimum share in closed form,
:math:`y = \max_j S_{\le j} / (B R (\bar T - \sum_{l \ge j} C_l))`; each user takes its cheapest admissible
model and SLIDE's admission (Alg. 2) follows. Choice: energy left over by layers capped at full clock is not
redistributed (the paper's description does not redistribute it).
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.slide.provisioning import SlideProvisioning
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result
from edgeplan.solvers.slide.slide import (
    admissible_pairs,
    baseline_result,
    plan_from_shares,
    share_for_fixed_compute,
)


def equal_energy_clocks(pd: dict[str, np.ndarray]) -> np.ndarray:
    """``(P, L)`` clocks that give every layer with work the same share of the dynamic energy budget."""
    work = pd["work_s"]
    layers = np.maximum((work > 0).sum(axis=1), 1)
    per_layer = np.maximum(pd["budget_s"], 0.0) / layers
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.minimum(1.0, np.sqrt(per_layer[:, None] / work))
    z = np.where(work > 0, z, 1.0)
    return np.where((pd["budget_s"] < 0)[:, None], 0.0, z)


@register("eecra", problem=SlideProvisioning, kind="heuristic", options={})
def solve_eecra(problem: SlideProvisioning, ctx: SolveContext) -> Result:
    """EECRA: equal energy per layer, closed-form minimum shares, SLIDE's admission."""
    t0 = time.perf_counter()
    users, models = admissible_pairs(problem)
    pd = problem.pair_data(users, models)
    z = equal_energy_clocks(pd)
    with np.errstate(divide="ignore", invalid="ignore"):
        compute = pd["copy_s"] + np.where(pd["work_s"] > 0, pd["work_s"] / z, 0.0)
    share = share_for_fixed_compute(pd, compute)
    table = np.full((problem.n_users, problem.n_models), np.inf)
    table[users, models] = np.where(share <= 1.0, share, np.inf)
    row = {(int(u), int(m)): r for r, (u, m) in enumerate(zip(users, models, strict=True))}
    n_layers = problem.n_layers

    def clocks_for(us: np.ndarray, ms: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
        return [z[row[int(u), int(m)], : n_layers[m]].copy() for u, m in zip(us, ms, strict=True)]

    plan, share_k = plan_from_shares(problem, table, clocks_for)
    return baseline_result(problem, plan, share_k, "eecra", t0)
