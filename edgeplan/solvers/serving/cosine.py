r"""``cosine``: CoSine's scheduling step: score-based routing, LP-based batch selection, speculation shortened to the
verification cap.

Gao et al., "Collaborative Speculative Inference for Efficient LLM Inference Serving", arXiv 2503.10325.

* **Routing.** A request's score for drafter :math:`j` is the harmonic mean of the drafter's confidence and the
  similarity of its drafts to the accepted tokens. The request goes to its ``max_drafters`` best-scored drafters
  that still have room, heaviest requests first. By default the score is the acceptance profile
  :math:`\alpha_{j d_r}`, which both signals estimate; option ``scores`` (an ``(R, J)`` array) replaces it with
  scores learned while serving. The paper's exploration, when a request's recent accepted length drops, is
  :class:`~edgeplan.experiments.serving_router.CoSineRouter`, which passes such scores step by step.
* **Batch selection.** The LP relaxation of choosing the batch with the routes and the controller's length
  :math:`K` fixed: maximise :math:`\sum_r x_r (\theta w_r E_r - \omega (v_1 + v_2 (1 + K|S_r|) + v_3 n_r))`
  subject to the drafter capacities, the verifier memory and the step bound, urgent requests at
  :math:`x_r = 1` (HiGHS via :func:`scipy.optimize.linprog`). Requests at :math:`x_r = 1` are taken; the
  fractional ones follow by LP value while they fit.
* **Speculation control.** While the draft tokens exceed the verification cap, the request with the most
  candidate tokens (:math:`k_r |S_r|`) loses one (and if the batch alone exceeds it, the last selected
  requests that are not urgent leave); the adaptive length and drafters per request across steps (negative
  feedback on verifier idle time and queue) is the simulator's
  :class:`~edgeplan.experiments.serving_sim.CoSineController`.

Left open by the public description, our choices: the LP's objective weights (the step's own cost), and the
order in which fractional requests are rounded.
"""

from __future__ import annotations

import heapq
import time

import numpy as np

from edgeplan._checks import as_array
from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.serving.step import ServingPlan, SpeculativeServing, tree_tokens
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result
from edgeplan.solvers.serving.batching import BatchBuilder


def route(problem: SpeculativeServing, scores: np.ndarray | None = None) -> list[tuple[int, ...]]:
    """Each request's best-scored drafters with room (heaviest requests first); ``scores``: ``(R, J)``, by default
    each request's row of the acceptance profile."""
    out: list[tuple[int, ...]] = [()] * problem.n_requests
    if problem.max_speculation == 0:
        return out
    order = np.lexsort((-problem.weight, ~problem.urgent))
    if scores is None:
        by_domain = np.argsort(-problem.acceptance, axis=0, kind="stable").T.tolist()  # per domain, best first
        ranked = [by_domain[d] for d in problem.domain.tolist()]
    else:
        ranked = np.argsort(-scores, axis=1, kind="stable").tolist()
    left = problem.draft_capacity.tolist()
    for r in order.tolist():
        best = []
        for j in ranked[r]:
            if left[j] >= 1:
                best.append(j)
                if len(best) == problem.max_drafters:
                    break
        for j in best:
            left[j] -= 1
        out[r] = tuple(sorted(best))
    return out


def _lp_argmax(value: np.ndarray, rows: np.ndarray, rhs: np.ndarray, lo: np.ndarray) -> np.ndarray | None:
    """:math:`\\arg\\max\\, v^\\top x` subject to ``rows`` :math:`x \\le` ``rhs``, ``lo`` :math:`\\le x \\le 1`, by
    HiGHS (highspy directly: a step's LP is small, and SciPy's wrapper costs more than the solve); None unless
    optimal."""
    import highspy
    import scipy.sparse as sp

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    A = sp.csc_matrix(rows.reshape(-1, value.size))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = value.size, A.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = -value, lo, np.ones(value.size)
    lp.row_lower_, lp.row_upper_ = np.full(A.shape[0], -np.inf), rhs
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.asarray(h.getSolution().col_value)


def select(problem: SpeculativeServing, routes: list[tuple[int, ...]], k: int) -> list[int]:
    """Requests in the order the LP relaxation of the batch selection ranks them (urgent first)."""
    R = problem.n_requests
    width = np.array([len(s) for s in routes], dtype=float)
    kr = np.where(width > 0, k, 0)
    v0, v1, v2, v3 = problem.verify_s.tolist()
    tokens = 1.0 + kr * width
    value = problem.token_value_s * problem.weight * tree_tokens(problem.chain_acceptance(routes), kr) \
        - problem.latency_weight * (v1 + v2 * tokens + v3 * problem.context_tokens)
    load = np.zeros((problem.n_drafters, R))
    for r, S in enumerate(routes):
        load[list(S), r] = 1.0
    rows, rhs = [load], [problem.draft_capacity]
    if np.isfinite(problem.verifier_memory_bytes):
        rows.append(problem.kv_bytes_per_token * (problem.context_tokens + tokens)[None])
        rhs.append([problem.verifier_memory_bytes])
    if np.isfinite(problem.step_bound_s):
        rows.append((v1 + v2 * tokens + v3 * problem.context_tokens)[None])
        rhs.append([problem.step_bound_s - v0])
    lo = problem.urgent.astype(float)
    x = _lp_argmax(value, np.concatenate(rows), np.concatenate(rhs).astype(float), lo)
    x = lo if x is None else x
    return np.lexsort((-value, -x, ~problem.urgent)).tolist()


def _level(k: np.ndarray, excess: int) -> int:
    """The highest length :math:`L` with :math:`\\sum_r \\max(k_r - L, 0) \\ge` ``excess`` (0 if none)."""
    for level in range(int(k.max(initial=0)) - 1, -1, -1):
        if int(np.maximum(k - level, 0).sum()) >= excess:
            return level
    return 0


def shorten(problem: SpeculativeServing, plan: ServingPlan, order: list[int]) -> ServingPlan:
    """Drop draft tokens, most candidates first, until the verifiable-token cap holds; if the batch's own tokens
    still exceed it, drop the last selected requests that are not urgent (``order``: the selection order)."""
    width = np.array([len(s) if s else 0 for s in plan.routes])
    k = plan.lengths.copy()
    routes = list(plan.routes)
    tokens = float(sum(1 + k[r] * width[r] for r, s in enumerate(routes) if s is not None))
    cap = problem.max_verify_tokens
    room = cap + float(slack_tol(np.asarray(cap), FEAS_TOL)) if np.isfinite(cap) else np.inf  # check's test
    if tokens > room and width.max(initial=0) == 1:  # one drafter each: level the longest drafts at once
        excess = int(np.ceil(tokens - room - 1e-9))
        level = _level(k, excess)
        over = np.maximum(k - level, 0)
        k = np.minimum(k, level)
        back = int(over.sum()) - excess  # removed one too many from that many requests at the level
        if back > 0:
            k[np.flatnonzero(over > 0)[:back]] += 1
        tokens -= float(over.sum() - max(back, 0))
    heap = [(-int(k[r] * width[r]), r) for r in range(k.size) if k[r] * width[r] > 0]
    heapq.heapify(heap)
    while heap and tokens > room:
        _, r = heapq.heappop(heap)  # the most candidate tokens (the lowest index among equals)
        k[r] -= 1
        tokens -= width[r]
        if k[r] > 0:
            heapq.heappush(heap, (-int(k[r] * width[r]), r))
    for r in reversed(order):
        if tokens <= room:
            break
        if routes[r] is not None and not problem.urgent[r]:
            routes[r] = None
            tokens -= 1
    return ServingPlan([s if s is None or k[r] > 0 else () for r, s in enumerate(routes)],
                       np.where([s is None for s in routes], 0, k))


def cosine_plan(problem: SpeculativeServing, length: int | None = None,
                scores: np.ndarray | None = None) -> ServingPlan:
    """The step CoSine schedules with the controller's speculation length (default ``max_speculation``) and the
    routing ``scores`` of :func:`route`."""
    k = problem.max_speculation if length is None else min(length, problem.max_speculation)
    routes = route(problem, scores)
    b = BatchBuilder(problem, token_cap=False)
    order = select(problem, routes, k)
    least = float(problem.context_tokens.min(initial=0.0))
    for r in order:
        if b.closed(least):
            break
        if not b.add(r, routes[r], k):
            b.add(r, (), 0)
    return shorten(problem, b.plan(), order)


@register("cosine", problem=SpeculativeServing, kind="heuristic", priority=50, options={"scores": (None, None)})
def solve_cosine(problem: SpeculativeServing, ctx: SolveContext) -> Result:
    """CoSine: score-based routing, LP batch selection, speculation shortened to the verification cap."""
    t0 = time.perf_counter()
    scores = ctx.options["scores"]
    if scores is not None:
        scores = as_array("options['scores']", scores, shape=(problem.n_requests, problem.n_drafters))
    return heuristic_result(problem, cosine_plan(problem, scores=scores), "cosine", t0)


__all__ = ["cosine_plan", "route", "select", "shorten", "solve_cosine"]
