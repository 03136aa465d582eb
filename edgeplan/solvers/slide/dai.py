r"""Conventional DAI (download all, then infer): SLIDE's baseline with the sequential latency model.

Qu et al., SLIDE, arXiv 2512.20946, Sec. 6 ("conventional DAI"): the same admission (Alg. 2), but each user's
minimum share comes from the download-then-infer latency

.. math:: t^{\rm DAI} = D_L + T^0 + \sum_l \Big(V_l + \frac{\Gamma_l}{z_l}\Big),\qquad
          D_L = \frac{\sum_l S_l}{y B R}.

Given the budget :math:`\sum_l \Gamma_l z_l^2 \le Q'`, the compute time :math:`\sum_l \Gamma_l / z_l` is
smallest with one clock for all layers, :math:`z = \min(1, \sqrt{Q'/\sum_l \Gamma_l})` (KKT; equal marginal
cost), so the minimum share has the closed form :math:`y = S_{\rm tot} / (B R\,(\bar T - T^0 - \sum_l C_l))`.
Each user takes its cheapest admissible model. Choice: the instantiation :math:`T^0` waits for the whole model
(it overlaps nothing). The plan is checked under SLIDE's streamed recursion, whose latency never exceeds
:math:`t^{\rm DAI}` for the same allocation, so a DAI plan is feasible for P1.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.slide.provisioning import SlideProvisioning
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result
from edgeplan.solvers.slide.slide import admissible_pairs, baseline_result, plan_from_shares


def dai_clock(pd: dict[str, np.ndarray]) -> np.ndarray:
    """``(P,)`` the uniform clock scaling :math:`\\min(1, \\sqrt{Q'/\\sum_l\\Gamma_l})` (0 when :math:`Q' < 0`)."""
    total = pd["work_s"].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.minimum(1.0, np.sqrt(np.maximum(pd["budget_s"], 0.0) / total))
    return np.where(pd["budget_s"] < 0, 0.0, np.where(total > 0, z, 1.0))


def dai_shares(problem: SlideProvisioning) -> tuple[np.ndarray, np.ndarray]:
    """``(K, I)`` minimum shares under download-then-infer, and ``(K, I)`` the uniform clocks."""
    users, models = admissible_pairs(problem)
    pd = problem.pair_data(users, models)
    z = dai_clock(pd)
    with np.errstate(divide="ignore", invalid="ignore"):
        compute = np.sum(pd["copy_s"] + np.where(pd["work_s"] > 0, pd["work_s"] / z[:, None], 0.0), axis=1)
        slack = pd["deadline_s"] - pd["setup_s"] - compute
        share = np.where(slack > 0, pd["cum_bits"][:, -1] / (slack * pd["full_rate_bps"]), np.inf)
    share = np.where((share <= 1.0) & (z > 0), share, np.inf)
    table = np.full((problem.n_users, problem.n_models), np.inf)
    clocks = np.zeros_like(table)
    table[users, models] = share
    clocks[users, models] = z
    return table, clocks


@register("dai", problem=SlideProvisioning, kind="heuristic", options={})
def solve_dai(problem: SlideProvisioning, ctx: SolveContext) -> Result:
    """Conventional DAI: minimum shares from the download-then-infer latency, then SLIDE's admission."""
    t0 = time.perf_counter()
    table, clocks = dai_shares(problem)
    n_layers = problem.n_layers

    def clocks_for(users: np.ndarray, models: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
        return [np.full(n_layers[m], clocks[u, m]) for u, m in zip(users, models, strict=True)]

    plan, share = plan_from_shares(problem, table, clocks_for)
    return baseline_result(problem, plan, share, "dai", t0)
