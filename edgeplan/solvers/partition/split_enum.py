r"""Exact split of a **chain** by complete enumeration of cut positions and transmission widths (``split-enum``).

For a chain, every monotone placement over :math:`T` tiers is a vector of cut positions
:math:`0 \le c_1 \le \dots \le c_{T-1} \le L` (tier :math:`t` runs blocks :math:`[c_t, c_{t+1})`), and link
:math:`l` carries the single tensor crossing position :math:`c_{l+1}` (the input when it is 0, nothing when it is
:math:`L`) at a width :math:`w_l \in \mathcal W`. The method evaluates every
:math:`(c, w) \in \binom{L+T-1}{T-1} \times |\mathcal W|^{T-1}` candidate with prefix sums (stage times,
weights) and a range-maximum table (activation peaks), vectorized in chunks, discards those that break a
memory cap, the latency cap or a minimum width, and keeps the best: :math:`O(L^{T-1}|\mathcal W|^{T-1})`
work, :math:`O(L)` per cut of the first link in memory. The result is optimal by exhaustion (``bound`` = its
objective), for every objective of :class:`~edgeplan.formulations.partition.split.SplitInference`. It is
Neurosurgeon's search (every partition point) extended to widths, three tiers and constraints.
"""

from __future__ import annotations

import time

import numpy as np

from edgeplan.formulations.base import within
from edgeplan.formulations.partition.split import DAG_MODEL, SplitInference, SplitPlan
from edgeplan.profiles.devices import DTYPE_BYTES
from edgeplan.solvers.partition.common import plan_result
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Deadline, Limit, Result, Status


def chain_tables(problem: SplitInference, *, prefixes: bool = False) -> dict[str, np.ndarray]:
    """Prefix sums and per-position data of the cut positions: ``Pt`` (T, L+1) times, ``Pw`` weights, ``beta``
    (L+1,) bytes crossing each position, ``quant_ok`` (L+1, W) widths allowed there, ``peak`` (L+1, L+1) range
    maximum of activation peaks (only with memory caps).

    A chain's positions carry one tensor each. With ``prefixes`` the blocks of any model are taken in their
    topological order and position ``k`` carries every tensor crossing the prefix cut (at native width), the
    search space of Neurosurgeon on a DAG.
    """
    d = problem.data()
    L = problem.n_blocks
    Pt = np.concatenate([np.zeros((problem.n_tiers, 1)), np.cumsum(d["time"], axis=1)], axis=1)
    Pw = np.concatenate([[0.0], np.cumsum(d["weights"])])
    W = problem.widths.size
    ok = np.zeros((L + 1, W), dtype=bool)
    ok[:, -1] = True                                  # native always
    if prefixes:
        m = problem.model
        scale = DTYPE_BYTES[problem.dtype] / DTYPE_BYTES[m.act_dtype] * problem.batch_size
        needs = np.zeros(L + 1, dtype=bool)               # the input still has a reader beyond position k
        if m.input_consumers.size:
            needs[: int(m.input_consumers.max()) + 1] = True
        raw_input = m.input_bytes * needs
        beta = scale * (m.cut_bytes_after() - raw_input) + problem.batch_size * raw_input
    else:
        beta = np.zeros(L + 1)
        beta[0] = d["input_bytes"]
        if L > 1:
            beta[d["src"] + 1] = d["edge_bytes"]      # a chain: edge (k-1, k) crosses position k
        ok[1:L] = d["allowed"][: L - 1]
    out = {"Pt": Pt, "Pw": Pw, "beta": beta, "quant_ok": ok}
    if np.isfinite(problem.memory_cap_bytes).any():
        act = d["act_peak"]
        peak = np.zeros((L + 1, L + 1))
        for i in range(L):                                 # peak[i, j] = max act[i:j]  (row by row cumulative max)
            peak[i, i + 1:] = np.maximum.accumulate(act[i:])
        out["peak"] = peak
    return out


def _evaluate(problem: SplitInference, tab: dict[str, np.ndarray], cuts: np.ndarray,
              widx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objective and feasibility of candidates ``cuts`` (n, T-1) with width indices ``widx`` (n, T-1)."""
    d = problem.data()
    T, L = problem.n_tiers, problem.n_blocks
    n = cuts.shape[0]
    bounds = np.concatenate([np.zeros((n, 1), dtype=np.int64), cuts, np.full((n, 1), L)], axis=1)
    tiers = np.arange(T)
    compute = tab["Pt"][tiers, bounds[:, 1:]] - tab["Pt"][tiers, bounds[:, :-1]]        # (n, T)
    links = np.arange(T - 1)
    raw = tab["beta"][cuts]                                                            # (n, T-1)
    frac = problem.widths[widx] / problem.native_bits
    link_t = 8.0 * raw * frac / d["rate"]
    quant = np.zeros((n, T))
    quant[:, :-1] += raw * d["q_per_byte"][links, widx]
    quant[:, 1:] += raw * d["dq_per_byte"][links + 1, widx]
    tier_t = compute + quant
    used = cuts < L
    latency = tier_t.sum(axis=1) + link_t.sum(axis=1) + (used * d["latency"]).sum(axis=1)
    if problem.minimize == "latency":
        obj = latency
    elif problem.minimize == "energy":
        idle, dyn, tx = d["power"]
        obj = idle * latency + dyn * tier_t[:, 0] + tx * link_t[:, 0]
    else:
        obj = np.maximum(tier_t.max(axis=1), link_t.max(axis=1, initial=0.0))
    ok = tab["quant_ok"][cuts, widx].all(axis=1)
    if problem.max_latency_s is not None:
        ok &= within(latency, problem.max_latency_s)
    if "peak" in tab:
        mem = tab["Pw"][bounds[:, 1:]] - tab["Pw"][bounds[:, :-1]] + tab["peak"][bounds[:, :-1], bounds[:, 1:]]
        ok &= np.all(within(mem, problem.memory_cap_bytes), axis=1)
    return obj, ok


def enumerate_chain(problem: SplitInference, deadline: Deadline | None = None, *, prefixes: bool = False,
                    ) -> tuple[SplitPlan | None, float, int, bool]:
    """Best ``(plan, objective, candidates evaluated, complete)`` over every cut vector and width choice
    (``prefixes``: over the prefix cuts of the topological order, native widths; see :func:`chain_tables`)."""
    T, L = problem.n_tiers, problem.n_blocks
    W = problem.widths.size
    tab = chain_tables(problem, prefixes=prefixes)
    wgrid = np.stack(np.meshgrid(*[np.arange(W)] * (T - 1), indexing="ij"), axis=-1).reshape(-1, T - 1)
    best_val, best = np.inf, None
    count = 0
    firsts = range(L + 1)
    for c1 in firsts:                                  # chunk: all candidates whose first cut is c1
        if deadline is not None and deadline.passed():
            return _plan(problem, best), best_val, count, False
        rest = np.arange(c1, L + 1)[:, None] if T == 3 else np.zeros((1, 0), dtype=np.int64)
        cuts = np.concatenate([np.full((rest.shape[0], 1), c1), rest], axis=1)
        cuts = np.repeat(cuts, wgrid.shape[0], axis=0)
        widx = np.tile(wgrid, (rest.shape[0], 1))
        obj, ok = _evaluate(problem, tab, cuts, widx)
        count += obj.size
        if ok.any():
            i = int(np.argmin(np.where(ok, obj, np.inf)))
            if obj[i] < best_val:
                best_val, best = float(obj[i]), (cuts[i], widx[i])
    return _plan(problem, best), best_val, count, True


def _plan(problem: SplitInference, best: tuple[np.ndarray, np.ndarray] | None) -> SplitPlan | None:
    if best is None:
        return None
    cuts, widx = best
    L = problem.n_blocks
    bits = np.zeros((problem.n_tiers - 1, L), dtype=np.int64)
    for l, (c, w) in enumerate(zip(cuts, widx, strict=True)):
        width = int(problem.widths[w])
        if 0 < c < L and width < problem.native_bits:
            bits[l, c - 1] = width
    return problem.canonical(SplitPlan.from_cuts(cuts, L, bits))


@register("split-enum", problem=SplitInference, kind="exact", priority=10, cannot=(DAG_MODEL,),
          hint="use 'dads' for latency/energy, or 'highs' on its MILP", options={})
def solve_split_enum(problem: SplitInference, ctx: SolveContext) -> Result:
    """Exact for chains: every cut position and width, vectorized (Neurosurgeon's search, extended)."""
    t0 = time.perf_counter()
    deadline = ctx.deadline
    plan, val, count, complete = enumerate_chain(problem, deadline)
    stats = {"candidates": count}
    if not complete:
        return plan_result(problem, plan, "split-enum", t0, limit=Limit.TIME,
                           message=f"stopped at the time limit after {count} candidates", **stats)
    if plan is None:
        return plan_result(problem, None, "split-enum", t0, status=Status.INFEASIBLE,
                           message=f"none of the {count} cut/width candidates meets the constraints", **stats)
    return plan_result(problem, plan, "split-enum", t0, bound=val, message=f"best of {count} candidates", **stats)


__all__ = ["chain_tables", "enumerate_chain", "solve_split_enum"]
