r"""Exact pipeline partitioning by bisection on the bottleneck with a reachability DP (``pipeline-dp``).

**Bottleneck** (:math:`\min\Theta`, PipeEdge's objective). For a candidate :math:`\theta`, a stage on device
:math:`d` may cover :math:`[j, p)` iff its time :math:`P_d(j,p) \le \theta` and it fits in memory, and a link
:math:`d \to e` may carry boundary :math:`j` iff :math:`8b\beta_j / r_{de} \le \theta`. Feasibility is
reachability of position :math:`L`:

* fixed order: :math:`R_0 = \{0\}`, :math:`R_{k+1} = \mathrm{ends}_k(R_k \cap \mathrm{comm}_{k-1,k})`;
* free order: states (devices used per class, class of the last stage) hold the set of positions reached;
  a transition adds one stage on a class with devices left. Devices with equal times, caps and links form
  a class (:meth:`PipelinePartition.device_classes`), so 16 devices of 8 types give
  :math:`3^8 \cdot 8` states instead of PipeEdge's :math:`2^{16}\cdot 16`.

Position sets are boolean vectors; :math:`\mathrm{ends}` of a start set is a running maximum of the farthest
reachable end (stage times grow with the end) or, with memory caps (which need not be monotone because of
the send/receive buffers), a boolean matrix product. The optimum is found by binary search: over the sorted
candidate values (every stage and link time) for a free order, which proves it exactly (the next smaller
candidate is infeasible); by bisection on reals with each feasible probe lowering the upper end to its
witness plan's bottleneck for a fixed order (the bound is the largest infeasible probe; the gap is at most
``rtol``, default :math:`10^{-10}`).

**Iteration time** (fixed order, inference or 1F1B: :math:`\sum_s c_s + (M-1)\max_s p_s`). For a cap
:math:`\theta` on the stage values let :math:`f(\theta)` be the least sum (a min-sum DP over
:math:`(L+1)^2` segment matrices). Candidates :math:`\theta` are taken in increasing order from the best
bottleneck :math:`\theta^*`; each solved cap gives a plan, and the search stops once
:math:`f(\infty) + (M-1)\theta \ge` the best iteration time found, which proves optimality. GPipe training
(two max terms) and free-order iteration times are left to the MILP (``highs``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edgeplan.errors import UnsupportedProblemError
from edgeplan.formulations.partition.common import TIME_RTOL
from edgeplan.formulations.partition.pipeline import (
    ITERATION_FREE_ORDER,
    ITERATION_GPIPE_TRAINING,
    PipelinePartition,
    PipelinePlan,
)
from edgeplan.solvers.partition.common import plan_result
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Deadline, Limit, Result, Status

#: Refuse free-order state spaces larger than this many (state, class, position) cells.
MAX_CELLS = 4e8


class Tables:
    """Per-device prefix sums of stage values, boundary link times and memory masks of a problem."""

    def __init__(self, problem: PipelinePartition) -> None:
        d = problem.data()
        self.problem = problem
        self.L, self.K = problem.n_blocks, problem.n_devices
        self.P = d["Pf"] + (d["Pb"] if problem.training else 0.0)          # (L+1, K) max-value stage prefix
        self.Ssum = self.P.copy()                                           # sum-term stage prefix
        self.link_w = 2.0 if problem.training else 1.0
        self.beta = d["boundary"]
        self.caps = problem.memory_cap_bytes
        self.has_caps = bool(np.isfinite(self.caps).any())
        self.pos = np.arange(self.L + 1)

    def link(self, dev_from: int, dev_to: int) -> np.ndarray:
        """(L+1,) link time of each boundary between two devices (inf at 0 and L: not a boundary)."""
        t = 8.0 * self.beta / self.problem.rates_bps[dev_from, dev_to]
        t[0] = t[-1] = np.inf
        return t

    def mem_bounds(self, dev: int, position: int, n_stages: int) -> tuple[np.ndarray, np.ndarray] | None:
        """A stage's memory is separable, ``mem(j, p) = A[p] + C[j]`` (weights, buffers and kept activations are
        prefix differences; the receive buffer depends on the start, the send buffer on the end). Returns
        ``(A, B)`` with ``B = cap - C``, so that ``[j, p)`` fits on ``dev`` iff ``A[p] <= B[j]``; None without a cap.
        """
        if not np.isfinite(self.caps[dev]):
            return None
        pos = self.pos
        kw = {"position": position, "n_stages": n_stages}
        A = self.problem.stage_memory(np.zeros_like(pos), pos, dev, **kw) - self.beta[0]
        C = self.problem.stage_memory(pos, pos, dev, **kw) - A
        return A, self.caps[dev] * (1 + 1e-12) - C

    def ends(self, starts: np.ndarray, dev: int, theta: float,
             mem: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """Positions reachable by one stage on ``dev`` from any of ``starts`` ((n, L+1) bool)."""
        P = self.P[:, dev]
        lim = theta * (1 + TIME_RTOL)
        if mem is None:
            far = np.searchsorted(P, P + lim, side="right") - 1                 # farthest end from each start
            arr = np.where(starts, far[None, :], -1)
            reach = np.maximum.accumulate(arr, axis=1)
            out = np.zeros_like(starts)
            out[:, 1:] = reach[:, :-1] >= self.pos[None, 1:]
            return out
        A, B = mem
        # p is reachable iff some start j in [g(p), p) has B[j] >= A[p], g(p) the first j with P[j] >= P[p] - lim
        g = np.searchsorted(P, P - lim, side="left")
        return _window_max(np.where(starts, B[None, :], -np.inf), g, self.pos) >= A[None, :]

    def valid_starts(self, cand: np.ndarray, p: int, dev: int, theta: float,
                     mem: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """Starts ``j < p`` among ``cand`` from which one stage on ``dev`` ends exactly at ``p``."""
        P = self.P[:, dev]
        lim = theta * (1 + TIME_RTOL)
        # the same float expressions as `ends` (a difference P[p] - P[j] rounds differently from P[j] + lim
        # when tiny stage times sit beside huge ones; the backtrack then found no start that `ends` had used)
        if mem is None:
            return np.flatnonzero(cand[:p] & (P[p] <= P[:p] + lim))
        return np.flatnonzero(cand[:p] & (P[:p] >= P[p] - lim) & (mem[1][:p] >= mem[0][p]))


def _window_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Row-wise ``max(values[:, lo[p]:hi[p]])`` for every ``p`` (-inf for empty windows), by a sparse table."""
    n, m = values.shape
    length = hi - lo
    ok = length > 0
    k = np.full(m, -1, dtype=np.int64)
    k[ok] = np.floor(np.log2(length[ok])).astype(np.int64)
    out = np.full((n, m), -np.inf)
    level, width = values, 1
    for kk in range(int(k.max(initial=-1)) + 1):
        if kk > 0:                                   # level kk: max over windows of 2^kk starting at each column
            nxt = level.copy()
            nxt[:, : m - width] = np.maximum(level[:, : m - width], level[:, width:])
            level, width = nxt, 2 * width
        cols = np.flatnonzero(k == kk)
        if cols.size:
            out[:, cols] = np.maximum(level[:, lo[cols]], level[:, hi[cols] - width])
    return out


# -- bottleneck, fixed order --------------------------------------------------------------------------------
def fixed_feasible(tab: Tables, theta: float, *, plan: bool = True) -> PipelinePlan | bool | None:
    """A fixed-order plan whose stage and link values are all <= theta (None if there is none); with
    ``plan=False`` only whether one exists."""
    L, K = tab.L, tab.K
    R = np.zeros((K + 1, L + 1), dtype=bool)
    R[0, 0] = True
    mems = [tab.mem_bounds(k, k, K) for k in range(K)]
    lim = theta * (1 + TIME_RTOL)
    comm = [None] + [tab.link(k - 1, k) <= lim for k in range(1, K)]
    for k in range(K):
        starts = R[k] if k == 0 else R[k] & comm[k]
        if not starts.any():
            return None if plan else False
        R[k + 1] = tab.ends(starts[None, :], k, theta, mems[k])[0]
    if not R[K, L]:
        return None if plan else False
    if not plan:
        return True
    bounds = [L]
    for k in range(K - 1, -1, -1):             # backtrack: a start of stage k from which it ends at the known end
        cand = R[k] if k == 0 else R[k] & comm[k]
        bounds.append(int(tab.valid_starts(cand, bounds[-1], k, theta, mems[k])[-1]))
    return PipelinePlan(np.array(bounds[::-1]), np.arange(K))


# -- bottleneck, free order ---------------------------------------------------------------------------------
class FreeDP:
    """The free-order reachability DP over device classes (see the module docstring)."""

    def __init__(self, tab: Tables) -> None:
        self.tab = tab
        p = tab.problem
        label = p.device_classes()
        self.classes = [np.flatnonzero(label == c) for c in np.unique(label)]
        self.rep = np.array([m[0] for m in self.classes])
        self.count = np.array([m.size for m in self.classes])
        C = self.C = len(self.classes)
        self.radix = np.concatenate([[1], np.cumprod(self.count + 1)[:-1]])
        n_states = int(np.prod(self.count + 1))
        self.n_states = n_states
        if n_states * C * (tab.L + 1) > MAX_CELLS:
            raise UnsupportedProblemError(
                f"method 'pipeline-dp' would need {n_states} x {C} x {tab.L + 1} states for {tab.K} devices in "
                f"{C} classes; use 'highs' (the MILP) or group identical devices")
        digits = (np.arange(n_states)[:, None] // self.radix[None, :]) % (self.count + 1)[None, :]
        self.digits = digits
        self.level = digits.sum(axis=1)
        # class-level rates: between members of two classes (or two members of one class)
        self.rate_dev = np.zeros((C, C, 2), dtype=np.int64)
        for u in range(C):
            for v in range(C):
                a = self.classes[u][0]
                b = self.classes[v][1] if u == v and self.count[u] > 1 else self.classes[v][0]
                self.rate_dev[u, v] = (a, b)

    def solve(self, theta: float, n_stages: int | None = None) -> PipelinePlan | None:
        """A plan with every value <= theta (exactly ``n_stages`` stages when given), or None."""
        tab, C, L = self.tab, self.C, self.tab.L
        lim = theta * (1 + TIME_RTOL)
        comm = np.stack([np.stack([tab.link(*self.rate_dev[u, v]) <= lim for v in range(C)]) for u in range(C)])
        pos_dep = tab.problem.training and tab.problem.schedule == "1f1b" and tab.has_caps
        S = n_stages if n_stages is not None else tab.K
        mem_cache: dict[tuple[int, int], Any] = {}

        def mask(v: int, position: int) -> Any:
            key = (v, position if pos_dep else 0)
            if key not in mem_cache:
                mem_cache[key] = tab.mem_bounds(int(self.rep[v]), key[1], S)
            return mem_cache[key]

        R = np.zeros((self.n_states, C, L + 1), dtype=bool)
        max_level = min(S, int(self.count.sum()))
        for lev in range(max_level):
            here = np.flatnonzero(self.level == lev)
            if lev > 0:
                here = here[R[here].any(axis=(1, 2))]
                if here.size == 0:
                    return None
            for v in range(C):
                sel = here[self.digits[here, v] < self.count[v]]
                if sel.size == 0:
                    continue
                if lev == 0:
                    starts = np.zeros((sel.size, L + 1), dtype=bool)
                    starts[:, 0] = True
                else:
                    starts = np.any(R[sel] & comm[None, :, v, :], axis=1)
                ends = tab.ends(starts, int(self.rep[v]), theta, mask(v, lev))
                R[sel + self.radix[v], v] |= ends
            done = np.flatnonzero(self.level == lev + 1)
            if n_stages is None or lev + 1 == n_stages:
                hit = done[R[done, :, L].any(axis=1)]
                if hit.size:
                    return self._backtrack(R, int(hit[0]), theta, comm, mask)
        return None

    def _backtrack(self, R: np.ndarray, state: int, theta: float, comm: np.ndarray, mask: Any) -> PipelinePlan:
        tab, L = self.tab, self.tab.L
        v = int(np.flatnonzero(R[state, :, L])[0])
        p = L
        stages: list[tuple[int, int, int]] = []                    # (start, end, class), last first
        while True:
            prev = state - int(self.radix[v])
            lev = int(self.level[prev])
            if lev == 0:
                stages.append((0, p, v))
                break
            found = None
            for u in range(self.C):
                js = tab.valid_starts(R[prev, u] & comm[u, v], p, int(self.rep[v]), theta, mask(v, lev))
                if js.size:
                    found = (int(js[-1]), u)
                    break
            assert found is not None, "pipeline-dp backtrack lost its path"
            j, u = found
            stages.append((j, p, v))
            state, v, p = prev, u, j
        stages.reverse()
        used = np.zeros(self.C, dtype=np.int64)
        devices = []
        for _, _, c in stages:
            devices.append(int(self.classes[c][used[c]]))
            used[c] += 1
        return PipelinePlan(np.array([0] + [e for _, e, _ in stages]), np.array(devices))


# -- the bisection ------------------------------------------------------------------------------------------
def stage_candidates(tab: Tables, devices: Any, pairs: Any) -> np.ndarray:
    """Sorted distinct stage values on ``devices`` and link values over device ``pairs`` (every possible
    bottleneck)."""
    L = tab.L
    j, p = np.triu_indices(L + 1, 1)
    vals = [(tab.P[p, d] - tab.P[j, d]) for d in devices]
    vals += [tab.link(int(a), int(b))[1:L] for a, b in pairs]
    return np.unique(np.concatenate(vals))


def min_bottleneck(problem: PipelinePartition, deadline: Deadline, rtol: float = 1e-10,
                   ) -> tuple[PipelinePlan | None, float | None, dict[str, Any]]:
    """``(plan, lower bound, stats)`` of the bottleneck problem; plan None and bound inf when infeasible."""
    tab = Tables(problem)
    stats: dict[str, Any] = {"probes": 0}
    if problem.order == "fixed":
        def probe(theta: float) -> PipelinePlan | None:
            stats["probes"] += 1
            return fixed_feasible(tab, theta)

        def exists(theta: float) -> bool:
            stats["probes"] += 1
            return bool(fixed_feasible(tab, theta, plan=False))
    else:
        dp = FreeDP(tab)
        stats["classes"] = dp.C
        stats["states"] = dp.n_states
        by_count = problem.training and problem.schedule == "1f1b" and tab.has_caps

        def probe(theta: float) -> PipelinePlan | None:
            stats["probes"] += 1
            if not by_count:
                return dp.solve(theta)
            plans = [dp.solve(theta, n_stages=s) for s in range(1, tab.K + 1)]
            plans = [q for q in plans if q is not None]
            return min(plans, key=problem.objective) if plans else None
    best = probe(math.inf)
    if best is None:
        return None, math.inf, stats
    hi = problem.evaluate(best).bottleneck_s
    if problem.order == "free":
        pairs = [tuple(dp.rate_dev[u, v]) for u in range(dp.C) for v in range(dp.C) if u != v or dp.count[u] > 1]
        cand = stage_candidates(tab, dp.rep, pairs)
        cand = cand[cand <= hi * (1 + 1e-9)]
        lo_i, hi_i = -1, int(np.searchsorted(cand, hi * (1 + 1e-9), side="right")) - 1    # cand[hi_i] feasible
        while hi_i - lo_i > 1:
            if deadline.passed():
                return best, float(cand[lo_i]) if lo_i >= 0 else 0.0, {**stats, "limit": True}
            mid = (lo_i + hi_i) // 2
            plan = probe(float(cand[mid]))
            if plan is not None:
                best = plan
                value = problem.evaluate(plan).bottleneck_s * (1 + 1e-9)    # snap: sums may differ in the last bits
                hi_i = min(mid, int(np.searchsorted(cand, value, side="right")) - 1)
            else:
                lo_i = mid
        stats["candidates"] = int(cand.size)
        return best, min(float(cand[hi_i]), problem.evaluate(best).bottleneck_s), stats
    # a valid lower bound: every block runs somewhere, in a stage at least as long as the block
    t = problem.data()
    lo = min(float(np.max(np.min(t["fwd"] + (t["bwd"] if problem.training else 0.0), axis=0))), hi)
    while hi - lo > rtol * hi:                    # invariant: OPT >= lo; a plan with every value <= hi exists
        if deadline.passed():
            return best, lo, {**stats, "limit": True}
        mid = 0.5 * (lo + hi)
        if exists(mid):
            hi = mid
        else:
            lo = mid
    final = probe(hi)
    if final is not None and problem.evaluate(final).bottleneck_s < problem.evaluate(best).bottleneck_s:
        best = final
    return best, min(lo, problem.evaluate(best).bottleneck_s), stats


# -- iteration time, fixed order ----------------------------------------------------------------------------
def min_sum_fixed(tab: Tables, theta: float) -> tuple[PipelinePlan | None, float]:
    """Least sum of stage costs with every value <= theta, fixed order ((L+1)^2 DP per stage)."""
    L, K = tab.L, tab.K
    p = tab.problem
    lim = theta * (1 + TIME_RTOL)
    j, e = tab.pos[:, None], tab.pos[None, :]
    V = np.full(L + 1, np.inf)
    V[0] = 0.0
    arg = np.zeros((K, L + 1), dtype=np.int64)
    for k in range(K):
        seg = tab.P[e, k] - tab.P[j, k]
        ok = (e > j) & (seg <= lim)
        mem = tab.mem_bounds(k, k, K)
        if mem is not None:
            ok &= mem[0][None, :] <= mem[1][:, None]
        enter = V.copy()
        if k > 0:
            link = tab.link(k - 1, k)
            enter = np.where(link <= lim, V + tab.link_w * (link + p.latency_s[k - 1, k]), np.inf)
        tot = np.where(ok, enter[:, None] + seg, np.inf)
        arg[k] = np.argmin(tot, axis=0)
        V = tot[arg[k], np.arange(L + 1)]
    if not np.isfinite(V[L]):
        return None, math.inf
    bounds = [L]
    for k in range(K - 1, -1, -1):
        bounds.append(int(arg[k, bounds[-1]]))
    return PipelinePlan(np.array(bounds[::-1]), np.arange(K)), float(V[L])


def min_iteration_fixed(problem: PipelinePartition, deadline: Deadline,
                        ) -> tuple[PipelinePlan | None, float | None, dict[str, Any]]:
    """``(plan, lower bound, stats)`` of the single-max iteration objective with a fixed order."""
    tab = Tables(problem)
    M = problem.n_micro
    plan_inf, f_inf = min_sum_fixed(tab, math.inf)
    if plan_inf is None:
        return None, math.inf, {"dp_runs": 1}
    best, best_val = plan_inf, problem.objective(plan_inf)
    if M == 1:
        return best, best_val, {"dp_runs": 1}
    theta_star_plan, _, _ = min_bottleneck(problem, deadline)
    if theta_star_plan is not None and problem.objective(theta_star_plan) < best_val:
        best, best_val = theta_star_plan, problem.objective(theta_star_plan)
    theta0 = problem.evaluate(theta_star_plan).bottleneck_s if theta_star_plan is not None else 0.0
    K = problem.n_devices
    cand = stage_candidates(tab, np.arange(K), [(k, k + 1) for k in range(K - 1)])
    cand = cand[cand >= theta0 * (1 - 1e-12)]
    runs = 2
    bound = best_val
    for theta in cand:
        if f_inf + (M - 1) * theta >= best_val * (1 - 1e-12):
            bound = best_val
            break
        if deadline.passed():
            bound = min(best_val, f_inf + (M - 1) * theta)
            return best, bound, {"dp_runs": runs, "limit": True}
        plan, _ = min_sum_fixed(tab, float(theta))
        runs += 1
        if plan is not None:
            val = problem.objective(plan)
            if val < best_val:
                best, best_val = plan, val
    return best, min(bound, best_val), {"dp_runs": runs, "candidates": int(cand.size)}


@register("pipeline-dp", problem=PipelinePartition, kind="exact", priority=150,
          cannot=(ITERATION_FREE_ORDER, ITERATION_GPIPE_TRAINING),
          hint="it minimizes iteration time only with a fixed order and one max term (inference or 1F1B); use "
               "'highs' (the MILP)", options={"rtol": (float, 1e-10)})
def solve_pipeline_dp(problem: PipelinePartition, ctx: SolveContext) -> Result:
    """Exact bisection + reachability DP (bottleneck; fixed or free order) and iteration time (fixed order)."""
    rtol = ctx.options["rtol"]
    t0 = time.perf_counter()
    deadline = ctx.deadline
    if problem.minimize == "bottleneck":
        plan, bound, stats = min_bottleneck(problem, deadline, rtol)
    else:
        plan, bound, stats = min_iteration_fixed(problem, deadline)
    if plan is None:
        return plan_result(problem, None, "pipeline-dp", t0, status=Status.INFEASIBLE,
                           message="no stage assignment fits the memory caps", **stats)
    limit = Limit.TIME if stats.pop("limit", False) else None
    # precision: the bisection's bracket (rtol of the plan's value), and rounding in the prefix sums of stage
    # times, relative to their largest (a 3e-9 s stage beside a 70 s one is exact only to ~1e-14 s)
    d = problem.data()
    magnitude = float((d["fwd"] + (d["bwd"] if problem.training else 0.0)).sum(axis=1).max(initial=0.0))
    atol = 1e-12 * magnitude + (2.0 * rtol * float(problem.objective(plan)) if problem.minimize == "bottleneck" else 0)
    return plan_result(problem, plan, "pipeline-dp", t0, bound=bound, limit=limit, atol=atol, **stats)


__all__ = ["FreeDP", "Tables", "fixed_feasible", "min_bottleneck", "min_iteration_fixed", "min_sum_fixed",
           "solve_pipeline_dp", "stage_candidates"]
