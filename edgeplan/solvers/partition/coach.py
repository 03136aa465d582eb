r"""COACH: end-cloud pipelined inference with partition and transmission quantization, offline and online.

Gao, Liu, Xu, Sun Xu, Ma, Huang, "Accelerating End-Cloud Collaborative Inference via Near Bubble-free Pipeline
Optimization", INFOCOM 2025 (arXiv 2501.12388). The model in our words:
``docs/models/partition.md`` (the paper's body is not public; the algorithm below is a reconstruction).

Offline (method ``"coach"``)
----------------------------
1. Decompose the DAG into a chain of segments between articulation blocks (:meth:`ModelProfile.segments`);
   a cut at a segment boundary sends one tensor.
2. Evaluate the cut at every segment boundary (every pair of boundaries with three tiers). With
   ``options={"bisection": True}`` (two tiers, throughput) only the boundaries around the point where the
   device stage overtakes the cloud stage are evaluated (bisection on the cumulative-time curve, then
   ``window`` boundaries each side), COACH's presumable pruning.
3. Divide and conquer inside multi-branch segments: the branches are the connected components of the segment
   without its join block; holding the other branches fixed, each branch's cut point is chosen in turn among
   the prefixes of its topological order (coordinate descent, started from "none on the device" and from
   "all on the device", until no branch moves).
4. Every crossing tensor is sent at its minimal admissible width :math:`w^{\min}_u` (rounded up to an offered
   width), COACH's accuracy-constrained quantization; candidates breaking a constraint are skipped.

Candidates are ranked by the problem's objective; for the throughput objective ties (within ``1e-9``) go to
fewer bubbles, then lower latency (COACH: "the fewest bubbles and the smallest maximum stage latency").

Online (:func:`coach_online`)
-----------------------------
Given a bandwidth trace, per period: with the current rates, each link's crossing tensors are sent at the
largest offered width :math:`w \ge w^{\min}` whose transfer time stays within the slowest compute stage
(precision is free while the link is not the bottleneck); when even :math:`w^{\min}` makes the link the
bottleneck by more than ``slack``, the offline algorithm re-partitions for the current rates. The report
gives per-period stage times, period, bubbles, widths and re-partitions, and the same figures for the static
offline plan. The semantic cache of the paper (early exits on label centers) is not modelled.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan.errors import ProblemDataError
from edgeplan.formulations.partition.split import SplitInference, SplitPlan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result


def min_widths(problem: SplitInference, tier: np.ndarray) -> np.ndarray:
    """``(T-1, L)`` bits: each crossing tensor at its smallest admissible offered width (0 = native)."""
    raw, _ = problem.crossing(tier)
    allowed = problem.data()["allowed"]                                   # (L, W), widths ascending
    first = problem.widths[np.argmax(allowed, axis=1)]
    w = np.where(first < problem.native_bits, first, 0)
    return np.where(raw > 0, w[None, :], 0)


class _Scorer:
    """Evaluates device-set masks as COACH plans and keeps the best feasible one."""

    def __init__(self, problem: SplitInference) -> None:
        self.p = problem
        self.best: tuple[tuple[float, ...], SplitPlan] | None = None
        self.evaluations = 0

    def plan(self, masks: Sequence[np.ndarray]) -> SplitPlan | None:
        for a, b in itertools.pairwise(masks):
            if (a & ~b).any():                                            # nesting D_l within D_{l+1}
                return None
        tier = np.sum([~m for m in masks], axis=0).astype(np.int64)
        src, dst = self.p.data()["src"], self.p.data()["dst"]
        if (tier[src] > tier[dst]).any():                                 # not ancestor-closed
            return None
        return SplitPlan(tier, min_widths(self.p, tier))

    def score(self, masks: Sequence[np.ndarray]) -> tuple[float, ...]:
        plan = self.plan(masks)
        if plan is None:
            return (np.inf,)
        self.evaluations += 1
        if self.p.check(plan):
            return (np.inf,)
        m = self.p.evaluate(plan)
        key = (round(m.objective, 12), m.bubble_s, m.latency_s) if self.p.minimize == "throughput" \
            else (m.objective,)
        if self.best is None or key < self.best[0]:
            self.best = (key, self.p.canonical(plan))
        return key


def _branches(problem: SplitInference, start: int, stop: int) -> list[np.ndarray]:
    """Connected components of blocks ``[start, stop - 1)`` (the segment without its join block)."""
    import networkx as nx

    nodes = range(start, stop - 1)
    if len(nodes) == 0:
        return []
    g = nx.Graph()
    g.add_nodes_from(nodes)
    d = problem.data()
    inside = (d["src"] >= start) & (d["dst"] < stop - 1)
    g.add_edges_from(zip(d["src"][inside].tolist(), d["dst"][inside].tolist(), strict=True))
    return [np.array(sorted(c)) for c in nx.connected_components(g)]


def _refine(sc: _Scorer, masks: list[np.ndarray], link: int, start: int, stop: int, rounds: int) -> None:
    """Coordinate descent over the branches of segment ``[start, stop)`` for link ``link``'s device set."""
    L = sc.p.n_blocks
    branches = _branches(sc.p, start, stop)
    if not branches:
        return
    base = np.arange(L) < start
    for init in (0, 1):
        cut = [0 if init == 0 else b.size for b in branches]

        def build(cuts: list[int]) -> list[np.ndarray]:
            m = base.copy()
            for b, j in zip(branches, cuts, strict=True):
                m[b[:j]] = True
            trial = [x.copy() for x in masks]
            trial[link] = m
            return trial

        current = sc.score(build(cut))
        for _ in range(rounds):
            moved = False
            for i, b in enumerate(branches):
                for j in range(b.size + 1):
                    if j == cut[i]:
                        continue
                    trial_cut = cut.copy()
                    trial_cut[i] = j
                    val = sc.score(build(trial_cut))
                    if val < current:
                        current, cut, moved = val, trial_cut, True
            if not moved:
                break


def coach_offline(problem: SplitInference, *, bisection: bool = False, window: int = 2,
                  rounds: int = 4) -> tuple[SplitPlan | None, dict[str, Any]]:
    """The offline algorithm of the module docstring; returns ``(plan or None, stats)``."""
    L, T = problem.n_blocks, problem.n_tiers
    sc = _Scorer(problem)
    segs = problem.model.segments()
    bounds = np.array(sorted({0, L, *(s for s, _ in segs)}))
    prefix = [np.arange(L) < k for k in range(L + 1)]
    if T == 2:
        idx = np.arange(bounds.size)
        if bisection and problem.minimize == "throughput":
            d = problem.data()
            Pe = np.concatenate([[0.0], np.cumsum(d["time"][0])])[bounds]
            Pc = (d["time"][1].sum() - np.concatenate([[0.0], np.cumsum(d["time"][1])]))[bounds]
            lo, hi = 0, bounds.size - 1                        # first boundary where the device stage >= cloud
            while lo < hi:
                mid = (lo + hi) // 2
                if Pe[mid] >= Pc[mid]:
                    hi = mid
                else:
                    lo = mid + 1
            idx = np.arange(max(0, lo - window), min(bounds.size, lo + window + 1))
        for i in idx:
            sc.score([prefix[bounds[i]]])
        cand_pairs = [(int(bounds[i]),) for i in idx]
    else:
        cand_pairs = [(int(a), int(b)) for a in bounds for b in bounds if a <= b]
        for a, b in cand_pairs:
            sc.score([prefix[a], prefix[b]])
    # divide and conquer inside multi-branch segments, around the best boundary cut(s) found so far
    if sc.best is not None:
        tier = sc.best[1].tier
        masks = [tier <= l for l in range(T - 1)]
        near = {int(b) for pair in cand_pairs for b in pair}
        for link in range(T - 1):
            for s, e in segs:
                if e - s >= 2 and (s in near or e in near):
                    _refine(sc, masks, link, s, e, rounds)
                    if sc.best is not None:
                        tier = sc.best[1].tier
                        masks = [tier <= l for l in range(T - 1)]
    stats = {"evaluations": sc.evaluations, "segments": len(segs)}
    return (None if sc.best is None else sc.best[1]), stats


@register("coach", problem=SplitInference, kind="heuristic",
          options={"bisection": (bool, False), "window": (int, 2), "rounds": (int, 4)})
def solve_coach(problem: SplitInference, ctx: SolveContext) -> Result:
    """COACH (INFOCOM 2025) offline: segment-boundary cuts, divide and conquer in branches, minimal widths."""
    bisection = ctx.options["bisection"]
    window = ctx.options["window"]
    rounds = ctx.options["rounds"]
    t0 = time.perf_counter()
    plan, stats = coach_offline(problem, bisection=bisection, window=window, rounds=rounds)
    return heuristic_result(problem, plan, "coach", t0, message=f"{stats['evaluations']} candidate cuts evaluated",
                            **stats)


# -- online -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CoachOnlineReport:
    """:func:`coach_online`: per period (rows) figures of the adaptive and of the static offline plan."""

    rates_bps: np.ndarray
    period_s: np.ndarray
    bubble_s: np.ndarray
    latency_s: np.ndarray
    mean_bits: np.ndarray
    repartitioned: np.ndarray
    static_period_s: np.ndarray
    static_bubble_s: np.ndarray
    plans: tuple[SplitPlan, ...]

    def summary(self) -> str:
        n = self.period_s.size
        ms = 1e3
        return (f"{n} periods: mean period {ms * self.period_s.mean():.2f} ms (static "
                f"{ms * self.static_period_s.mean():.2f} ms), mean bubble {ms * self.bubble_s.mean():.2f} ms (static "
                f"{ms * self.static_bubble_s.mean():.2f} ms), mean width {self.mean_bits.mean():.1f} bits, "
                f"{int(self.repartitioned.sum())} re-partitions")


def adjust_widths(problem: SplitInference, plan: SplitPlan) -> SplitPlan:
    """Raise each link's widths to the largest offered width whose transfer stays within the slowest compute
    stage (never below each tensor's minimal admissible width)."""
    tier = plan.tier
    bits = min_widths(problem, tier)
    raw, _ = problem.crossing(tier)
    w0 = problem.native_bits
    for l in range(problem.n_tiers - 1):
        crossing = raw[l] > 0
        if not crossing.any():
            continue
        eff = np.where(bits[l] == 0, w0, bits[l])
        for w in sorted(problem.widths.tolist(), reverse=True):
            e = np.maximum(eff, w)
            trial = bits.copy()
            trial[l] = np.where(crossing & (e < w0), e, 0)
            cand = SplitPlan(tier, trial)
            m = problem.evaluate(cand)
            if m.link_time_s[l] <= m.tier_time_s.max() * (1 + 1e-12) and not problem.check(cand):
                bits = trial
                break
            if w <= eff[crossing].min():
                break
    return problem.canonical(SplitPlan(tier, bits))


def coach_online(problem: SplitInference, rates_bps: Any, *, plan: SplitPlan | None = None, slack: float = 0.0,
                 repartition: bool = True) -> CoachOnlineReport:
    """Run COACH's online adjustment over a bandwidth trace (``(n,)`` for two tiers or ``(n, T-1)``).

    ``plan`` is the starting (offline) plan; default: :func:`coach_offline` at the problem's own rates.
    """
    r = np.asarray(rates_bps, dtype=float)
    nl = problem.n_tiers - 1
    r = r.reshape(-1, 1) if r.ndim == 1 and nl == 1 else r
    if r.ndim != 2 or r.shape[1] != nl or r.shape[0] == 0:
        raise ProblemDataError(f"`rates_bps` has shape {np.shape(rates_bps)}; expected (n,) or (n, {nl})")
    if plan is None:
        plan, _ = coach_offline(problem)
        if plan is None:
            raise ProblemDataError("COACH's offline step found no feasible plan; expected a feasible problem")
    static = plan
    current = plan
    out: dict[str, list[Any]] = {k: [] for k in ("period", "bubble", "latency", "bits", "rep", "sp", "sb", "plans")}
    for rate in r:
        p = problem.with_link_rates(rate)
        ms = p.evaluate(static)
        out["sp"].append(ms.period_s)
        out["sb"].append(ms.bubble_s)
        base = SplitPlan(current.tier, min_widths(p, current.tier))
        mb = p.evaluate(base)
        rep = False
        if repartition and (mb.link_time_s.max() > mb.tier_time_s.max() * (1 + slack) or p.check(base)):
            fresh, _ = coach_offline(p)
            if fresh is not None and p.objective(fresh) < p.objective(base):
                current, rep = fresh, True
        adj = adjust_widths(p, current)
        m = p.evaluate(adj)
        raw = m.crossing_bytes
        b = np.where(adj.bits == 0, p.native_bits, adj.bits) if adj.bits is not None else \
            np.full(raw.shape, p.native_bits)
        out["bits"].append(float(np.average(b[raw > 0], weights=raw[raw > 0])) if (raw > 0).any()
                           else float(p.native_bits))
        out["period"].append(m.period_s)
        out["bubble"].append(m.bubble_s)
        out["latency"].append(m.latency_s)
        out["rep"].append(rep)
        out["plans"].append(adj)
    return CoachOnlineReport(rates_bps=r, period_s=np.array(out["period"]), bubble_s=np.array(out["bubble"]),
                             latency_s=np.array(out["latency"]), mean_bits=np.array(out["bits"]),
                             repartitioned=np.array(out["rep"]), static_period_s=np.array(out["sp"]),
                             static_bubble_s=np.array(out["sb"]), plans=tuple(out["plans"]))


__all__ = ["CoachOnlineReport", "adjust_widths", "coach_offline", "coach_online", "min_widths", "solve_coach"]
