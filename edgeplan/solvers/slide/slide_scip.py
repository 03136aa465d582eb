r"""SLIDE's whole problem P1 solved globally by SCIP (PySCIPOpt): the paper's branch-and-bound baseline.

An independent cross-check of ``slide`` that uses none of its propositions: the mixed-integer nonlinear
program is handed to SCIP's spatial branch-and-bound as is. Variables: :math:`x_{k,i} \in \{0,1\}`,
:math:`y_k \in [0,1]`, :math:`q_k \in [1, \bar q_k]` (:math:`q_k = 1/y_k` when served) and the compute times
:math:`w_{k,i,l} = \Gamma_{k,l}/z_{k,i,l} \in [\Gamma_{k,l}, \bar T_k]`. With
:math:`\hat S_j = S_{\le j}/(BR_k)`:

.. math::

    \max\ & \sum_{k,i} x_{k,i} \\
    \text{s.t.}\ & \textstyle\sum_i x_{k,i} \le 1, \quad \sum_k y_k \le 1, \quad y_k q_k \ge \sum_i x_{k,i}
        &&\text{(bilinear)}\\
    & \hat S_j q_k + \textstyle\sum_{l \ge j} (V_l + w_l) \le \bar T_k + M_j (1 - x_{k,i}) \quad \forall j
        &&\text{(the recursion as suffix constraints)}\\
    & T^0 + \textstyle\sum_l (V_l + w_l) \le \bar T_k + M_0 (1 - x_{k,i}) \\
    & \textstyle\sum_l \Gamma_l^3 w_l^{-2} \le Q' + (\sum_l \Gamma_l)(1 - x_{k,i})
        &&\text{(energy, convex in } w)

The big-M constants are the largest left-hand sides over the variable bounds, so they cut nothing off;
:math:`\bar q_k = B R_k \bar T_k / \min_i S_i` holds for any served user (its smallest model must arrive in
time). Times are scaled by :math:`\bar T_k` per user. Feasibility tolerance ``1e-9`` (``feastol``); the plan is
decoded as the model with :math:`x = 1`, :math:`y_k`, and :math:`z = \Gamma/w`, and re-checked by ``solve``.
SCIP proves optimality within its tolerances; the dual bound is floored to an integer (the objective counts
users). Meant for tiny instances (K, I <= ~6), as in the paper's runtime comparison.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edgeplan.formulations.slide.provisioning import SlidePlan, SlideProvisioning
from edgeplan.solvers.backends.scip import library, optimize
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, Status
from edgeplan.solvers.slide.slide import admissible_pairs, cross_check_refusal, suffix_sum

#: SCIP's feasibility tolerance used here (its default is 1e-6).
DEFAULT_FEASTOL = 1e-9


def build_scip(problem: SlideProvisioning, *, feastol: float = DEFAULT_FEASTOL) -> tuple[Any, dict[str, Any]]:
    """The PySCIPOpt model of P1 and its variables (``x``: {(k, i): var}, ``y``, ``q``, ``w``: {(k, i): list})."""
    scip = library()
    Model, quicksum = scip.Model, scip.quicksum

    m = Model("slide")
    m.setParam("numerics/feastol", feastol)
    k_n = problem.n_users
    users, models = admissible_pairs(problem)
    pd = problem.pair_data(users, models)
    deadline = problem.deadline_s
    min_bits = np.full(k_n, np.inf)
    np.minimum.at(min_bits, users, pd["cum_bits"][:, -1])
    q_max = np.where(np.isfinite(min_bits), problem.full_rate_bps * deadline / min_bits, 1.0)
    q_max = np.maximum(q_max, 1.0)
    y = [m.addVar(f"y[{k}]", lb=0.0, ub=1.0) for k in range(k_n)]
    q = [m.addVar(f"q[{k}]", lb=1.0, ub=float(q_max[k])) for k in range(k_n)]
    x: dict[tuple[int, int], Any] = {}
    w: dict[tuple[int, int], list[Any]] = {}
    for r, (k, i) in enumerate(zip(users.tolist(), models.tolist(), strict=True)):
        T = float(deadline[k])
        n = int(pd["n_layers"][r])
        work = pd["work_s"][r, :n] / T
        copy_s = pd["copy_s"][r, :n] / T
        budget = float(pd["budget_s"][r]) / T
        xv = m.addVar(f"x[{k},{i}]", vtype="B")
        x[k, i] = xv
        if budget < 0 or (budget == 0 and work.sum() > 0) or work.sum() + copy_s.sum() > 1.0:
            # no clocks fit the budget, or the work alone outlasts the deadline at full clock (the bounds
            # w in [work, 1] would then be empty, and SCIP called the whole problem infeasible)
            m.fixVar(xv, 0.0)
            w[k, i] = []
            continue
        ws = [m.addVar(f"w[{k},{i},{l}]", lb=float(work[l]), ub=1.0) if work[l] > 0 else None for l in range(n)]
        w[k, i] = ws
        comp = [copy_s[l] + (ws[l] if ws[l] is not None else 0.0) for l in range(n)]
        has_work = (work > 0).astype(float)
        max_suffix = suffix_sum(copy_s + has_work)
        setup = float(pd["setup_s"][r]) / T
        m.addCons(setup + quicksum(comp) <= 1.0 + (setup + max_suffix[0] - 1.0) * (1 - xv), f"setup[{k},{i}]")
        s_hat = pd["cum_bits"][r, :n] / pd["full_rate_bps"][r] / T
        for j in range(n):
            big_m = max(s_hat[j] * q_max[k] + max_suffix[j] - 1.0, 0.0)
            m.addCons(s_hat[j] * q[k] + quicksum(comp[j:]) <= 1.0 + big_m * (1 - xv), f"deadline[{k},{i},{j}]")
        if math.isfinite(budget) and work.sum() > 0:
            terms = [float(work[l]) ** 3 * ws[l] ** -2 for l in range(n) if ws[l] is not None]
            m.addCons(quicksum(terms) <= budget + float(work.sum()) * (1 - xv), f"energy[{k},{i}]")
    for k in range(k_n):
        xs = [v for (kk, _), v in x.items() if kk == k]
        if xs:
            m.addCons(quicksum(xs) <= 1, f"one_model[{k}]")
            m.addCons(y[k] * q[k] >= quicksum(xs), f"share[{k}]")
    m.addCons(quicksum(y) <= 1, "band")
    m.setObjective(quicksum(x.values()), "maximize")
    return m, {"x": x, "y": y, "q": q, "w": w, "work": pd["work_s"], "pairs": (users, models)}


def _decode(problem: SlideProvisioning, m: Any, v: dict[str, Any]) -> SlidePlan:
    k_n = problem.n_users
    model = np.full(k_n, -1)
    share = np.zeros(k_n)
    clocks = [np.zeros(0) for _ in range(k_n)]
    users, models = v["pairs"]
    for r, (k, i) in enumerate(zip(users.tolist(), models.tolist(), strict=True)):
        if m.getVal(v["x"][k, i]) > 0.5:
            model[k] = i
            share[k] = min(max(m.getVal(v["y"][k]), 0.0), 1.0)
            T = float(problem.deadline_s[k])
            n = int(problem.n_layers[i])
            work = v["work"][r, :n]
            z = np.ones(n)
            for l, var in enumerate(v["w"][k, i]):
                if var is not None:
                    z[l] = min(1.0, work[l] / (T * m.getVal(var)))
            clocks[k] = z
    return SlidePlan(model, share, tuple(clocks))


@register("slide-scip", problem=SlideProvisioning, kind="exact", refuses=cross_check_refusal,
          requires=("pyscipopt",), install="edgeplan[minlp]", priority=80,
          options={"feastol": (float, DEFAULT_FEASTOL), "gap": (float, 0.0)})
def solve_slide_scip(problem: SlideProvisioning, ctx: SolveContext) -> Result:
    """SCIP's global MINLP solve of P1 (PySCIPOpt): the paper's branch-and-bound baseline, for tiny instances.

    Options: ``feastol`` (default 1e-9), ``gap`` (relative, default 0).
    """
    feastol = ctx.options["feastol"]
    gap = ctx.options["gap"]
    t0 = time.perf_counter()
    m, v = build_scip(problem, feastol=feastol)
    build_time = time.perf_counter() - t0
    t1 = time.perf_counter()
    status, limit, native, fired = optimize(m, time_limit=ctx.deadline.remaining(), seed=ctx.seed, gap=gap,
                                            verbose=ctx.verbose)
    solve_time = time.perf_counter() - t1
    has_sol = m.getNSols() > 0
    plan = _decode(problem, m, v) if has_sol else None
    dual = m.getDualbound()
    bound = float(math.floor(dual + 1e-6)) if math.isfinite(dual) else None
    if status is Status.OPTIMAL and plan is None:
        status = Status.ERROR
    fun = float(plan.served.sum()) if plan is not None else None
    if status is Status.OPTIMAL:
        bound = fun
    stats = {"nodes": int(m.getNNodes()), "feastol": feastol, "scip_status": native, "watchdog_fired": fired,
             "n_vars": m.getNVars(), "n_conss": m.getNConss()}
    return Result(plan=plan if status in (Status.OPTIMAL, Status.FEASIBLE) else None,
                  fun=fun if status in (Status.OPTIMAL, Status.FEASIBLE) else None, status=status, bound=bound,
                  limit=limit, message=f"SCIP status {native}", method="slide-scip", build_time=build_time,
                  solve_time=solve_time, stats=stats, sense="max")


__all__ = ["DEFAULT_FEASTOL", "build_scip", "solve_slide_scip"]
