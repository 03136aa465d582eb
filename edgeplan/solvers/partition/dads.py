r"""Exact latency or energy split of a DAG by one minimum s-t cut per tier count (``dads``).

DADS (Hu, Bao, Wang, Liu, "Dynamic Adaptive DNN Surgery for Inference Acceleration on the Edge", INFOCOM
2019) reduces the two-tier latency split of a DNN DAG to a minimum s-t cut. We build that graph on
:mod:`networkx` and extend it to the :class:`~edgeplan.formulations.partition.split.SplitInference` model:

* **Tiers.** With :math:`x_{v,l} = [\tau_v \le l]` (Ishikawa's layered construction), a block's cost
  :math:`\sum_t c_{v,t} y_{v,t} = c_{v,T-1} + \sum_l (c_{v,l} - c_{v,l+1}) x_{v,l}` is a sum of unary terms
  (an edge to the sink for a positive coefficient, from the source for a negative one), and the nesting
  :math:`x_{v,l} \le x_{v,l+1}` and precedence :math:`x_{w,l} \le x_{u,l}` are infinite edges.
* **Transfers.** Block :math:`u`'s output crossing link :math:`l` costs :math:`\gamma_{u,l}\min(a_u,
  \sum_{w\ {\rm beyond}} e'_{uw})`: DADS' auxiliary node :math:`u'` with :math:`u \to u'` of capacity
  :math:`\gamma a_u` and :math:`u' \to w` of capacity :math:`\gamma e'_{uw}` charges exactly that (cutting
  :math:`u \to u'` pays the cap, leaving :math:`u'` with :math:`u` pays the consumers beyond). The input,
  fixed on tier 0, is a source-side node of capacity :math:`\gamma\,a_{\rm in}` with infinite edges to its readers.
* **Widths.** Every cost of a crossing (serialization, quantize, dequantize) is proportional to the native
  bytes, so the best width of a tensor on a link is the one with the smallest cost per byte,
  :math:`\gamma_{u,l} = \min_{w \in \mathcal W_u}(\tfrac{w}{w_0}\tfrac{8}{r_l}\omega_l + q_{l,w}\omega_l +
  d_{l+1,w}\omega_{l+1})` with the objective's weights :math:`\omega` (1 for latency; power for energy).
* **Link latency.** :math:`\lambda_l` is paid once when anything runs beyond link :math:`l`, which is not a
  cut function. Let :math:`P` be the minimum cut's plan and :math:`V` its cut value: every plan that reaches
  at least :math:`P`'s last tier costs at least :math:`V` plus :math:`P`'s latency terms, so only plans with
  fewer tiers can do better; we re-solve with those tiers forced off (at most :math:`T` cuts).

Capacities are scaled to integers (:math:`2^{50}` over their sum) so that the max-flow is exact; the bound
subtracts the rounding (half a unit per finite edge), so the plan is proven optimal when the bound meets its
objective to :data:`EXACT_RTOL` of the magnitude of the costs (not of the objective, which may be 0). Applies
to ``minimize="latency"`` or ``"energy"`` without memory or latency caps (those need the MILP). Proven optimal:
the max-flow value is a lower bound (weak duality) met by the cut's plan, evaluated by the problem itself.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edgeplan.formulations.partition.split import (
    LATENCY_CAP,
    MEMORY_CAPS,
    THROUGHPUT_OBJECTIVE,
    SplitInference,
    SplitPlan,
)
from edgeplan.solvers.partition.common import plan_result
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result

#: Integer capacities sum to about this (exact max-flow in Python integers).
CAPACITY_SCALE = 2.0**50
#: The bound meets the plan when they agree to this, relative to the magnitude of the graph's costs.
EXACT_RTOL = 1e-10


def cost_weights(problem: SplitInference) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-tier weights of compute seconds, per-link weights of transmit seconds, weight of link latency."""
    T = problem.n_tiers
    if problem.minimize == "latency":
        return np.ones(T), np.ones(T - 1), 1.0
    idle, dyn, tx = problem.data()["power"]
    tier_w = np.full(T, idle)
    tier_w[0] += dyn
    link_w = np.full(T - 1, idle)
    link_w[0] += tx
    return tier_w, link_w, idle


def byte_costs(problem: SplitInference) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``gamma`` (L, T-1) cost per native byte of each output on each link, the best width index (L, T-1), and
    the input's cost per byte (T-1,)."""
    d = problem.data()
    T = problem.n_tiers
    tier_w, link_w, _ = cost_weights(problem)
    frac = problem.widths / problem.native_bits
    links = np.arange(T - 1)
    per = (frac[None, :] * 8.0 / d["rate"][:, None] * link_w[:, None]
           + d["q_per_byte"][links] * tier_w[links, None] + d["dq_per_byte"][links + 1] * tier_w[links + 1, None])
    per_block = np.where(d["allowed"][:, None, :], per[None, :, :], np.inf)                 # (L, T-1, W)
    best = np.argmin(per_block, axis=2)
    gamma = np.take_along_axis(per_block, best[..., None], axis=2)[..., 0]
    return gamma, best, 8.0 / d["rate"] * link_w


def min_cut_placement(problem: SplitInference, max_tier: int) -> tuple[np.ndarray, float, float, int]:
    """Minimum-cut placement with every block on tiers ``<= max_tier``.

    Returns ``(tier (L,), lower bound on the cut cost of that class, the magnitude of the costs in the graph
    (the sum of the finite capacities and of the offset, the scale the bound's rounding is relative to),
    number of graph nodes)``.
    """
    import networkx as nx
    from networkx.algorithms.flow import boykov_kolmogorov

    d = problem.data()
    T, L = problem.n_tiers, problem.n_blocks
    nl = T - 1
    tier_w, _, _ = cost_weights(problem)
    cost = d["time"] * tier_w[:, None]                                             # (T, L) c[v,t]
    offset = float(cost[T - 1].sum())
    alpha = cost[:-1] - cost[1:]                                                   # (T-1, L)
    gamma, _, gamma_in = byte_costs(problem)
    src, dst, eb, out = d["src"], d["dst"], d["edge_bytes"], d["out_bytes"]
    fin: list[tuple[Any, Any, float]] = []
    inf: list[tuple[Any, Any]] = []
    for l in range(nl):
        for v in range(L):
            a = float(alpha[l, v])
            if a > 0:
                fin.append(((v, l), "t", a))
            elif a < 0:
                fin.append(("s", (v, l), -a))
                offset += a
            if l + 1 < nl:
                inf.append(((v, l), (v, l + 1)))
            if l >= max_tier:
                inf.append(("s", (v, l)))
        for u, w in zip(src.tolist(), dst.tolist(), strict=True):
            inf.append(((w, l), (u, l)))
        for u in np.unique(src).tolist():
            mine = src == u
            g = float(gamma[u, l])
            if mine.sum() == 1:
                fin.append(((u, l), (int(dst[mine][0]), l), g * float(eb[mine][0])))
            else:
                fin.append(((u, l), ("aux", u, l), g * float(out[u])))
                fin += [(("aux", u, l), (int(w), l), g * float(e)) for w, e in zip(dst[mine], eb[mine], strict=True)]
        if d["input_bytes"] > 0 and d["input_consumers"].size:
            fin.append(("s", ("in", l), float(gamma_in[l] * d["input_bytes"])))
            inf += [(("in", l), (int(w), l)) for w in d["input_consumers"]]
    total = sum(c for _, _, c in fin if c > 0)
    scale = CAPACITY_SCALE / total if total > 0 else 1.0
    G = nx.DiGraph()
    G.add_nodes_from(["s", "t"])
    for a, b, c in fin:
        q = round(c * scale)
        if q > 0:
            if G.has_edge(a, b) and "capacity" in G[a][b]:
                G[a][b]["capacity"] += q
            elif not G.has_edge(a, b):
                G.add_edge(a, b, capacity=q)
    for a, b in inf:
        if G.has_edge(a, b):
            G[a][b].pop("capacity", None)           # infinite wins
        else:
            G.add_edge(a, b)
    value, (side_s, _) = nx.minimum_cut(G, "s", "t", flow_func=boykov_kolmogorov)
    x = np.zeros((L, nl), dtype=bool)
    for node in side_s:
        if isinstance(node, tuple) and len(node) == 2 and isinstance(node[0], int):
            x[node] = True
    tier = (~x).sum(axis=1)
    n_fin = sum(1 for _ in fin)
    lower = (value - 0.5 * n_fin) / scale + offset
    return tier, lower, total + abs(offset), G.number_of_nodes()


def cut_plan(problem: SplitInference, tier: np.ndarray) -> SplitPlan:
    """The placement with each crossing tensor at its cheapest admissible width."""
    _, best, _ = byte_costs(problem)
    w = problem.widths[best].T                                                    # (T-1, L)
    bits = np.where(w < problem.native_bits, w, 0)
    return problem.canonical(SplitPlan(tier, bits))


@register("dads", problem=SplitInference, kind="exact", priority=160,
          cannot=(THROUGHPUT_OBJECTIVE, MEMORY_CAPS, LATENCY_CAP),
          hint="it solves unconstrained latency/energy splits (use 'highs' on the MILP, or 'split-enum' for chains)",
          options={})
def solve_dads(problem: SplitInference, ctx: SolveContext) -> Result:
    """Exact min s-t cut (DADS, INFOCOM 2019) for latency or energy, on DAGs, 2-3 tiers, with widths.

    The deadline is looked at between cuts (one per highest tier used, at most ``n_tiers``); one cut is not
    interruptible (0.4 s on a 400-block DAG with 3 tiers).
    """
    t0 = time.perf_counter()
    d = problem.data()
    _, _, lat_w = cost_weights(problem)
    fixed = np.concatenate([[0.0], np.cumsum(d["latency"] * lat_w)])        # fixed cost of reaching tier t
    best_plan, best_val = None, math.inf
    bound = math.inf
    max_tier, cuts, nodes, magnitude = problem.n_tiers - 1, 0, 0, float(fixed[-1])
    while True:
        tier, lower, size, n_nodes = min_cut_placement(problem, max_tier)
        magnitude = max(magnitude, size)
        cuts += 1
        nodes = max(nodes, n_nodes)
        plan = cut_plan(problem, tier)
        val = problem.objective(plan)
        if val < best_val:
            best_plan, best_val = plan, val
        top = int(tier.max(initial=0))
        bound = min(bound, lower + fixed[top])          # covers every plan of this class reaching tier >= top
        if top == 0 or fixed[top] == fixed[0]:
            if top > 0:
                bound = min(bound, lower)               # no latency terms below: the cut bound covers the class
            break
        if ctx.deadline.passed():                       # the classes below top are not covered: no bound
            return plan_result(problem, best_plan, "dads", t0, limit=Limit.TIME, cuts=cuts, graph_nodes=nodes,
                               message=f"time limit after {cuts} minimum cut(s); the placements that stop below "
                                       f"tier {top} were not searched")
        max_tier = top - 1
    bound = min(bound, best_val)
    # the cut is exact; its bound carries the rounding of costs to integers and of float sums: a tolerance
    # relative to the costs' magnitude (not to the objective, which may be 0 or 1e-9 of the largest cost)
    return plan_result(problem, best_plan, "dads", t0, bound=bound, atol=EXACT_RTOL * magnitude, cuts=cuts,
                       graph_nodes=nodes,
                       message=f"{cuts} minimum cut(s) on graphs of up to {nodes} nodes")


__all__ = ["byte_costs", "cost_weights", "cut_plan", "min_cut_placement", "solve_dads"]
