r"""Exact CollaPipe slot: enumeration of the micro-batch count, a scan of the bottleneck, two DPs.

For a micro-batch count :math:`M` and a bottleneck :math:`z` (every stage and link time per micro-batch at most
:math:`z`), the slot objective splits into what the segments cost and what the links cost, because the bytes
crossing a cut are the same at every cut:

.. math::

    \Phi(M) = \min_z\; V\tau (M-1) z + F_M(z) + G_M(z) + V T^{\rm up},

:math:`F_M(z)` the least :math:`\sum_k (V\tau c_k + w_k \tau E^{\rm comp}_k)` over contiguous segments of at least
one block with :math:`c_k \le z` and memory within the caps (a DP over devices and cut positions), and
:math:`G_M(z)` the least :math:`\sum_k (V\tau x_k + (w_k + w_{k+1})\tau E^{\rm tx}_k)` over bandwidth units and
power levels with :math:`x_k \le z` and :math:`\sum_k u_k \le U` (a knapsack DP over links and units, the best
level per link and unit count). Both are non-increasing step functions of :math:`z` that change only at a stage
or link time, so the minimum over :math:`z` is at one of those candidates. The scan starts at the smallest
feasible candidate and stops when :math:`V\tau(M-1)z + F_M(\infty) + G_M(\infty)` reaches the incumbent (a valid
lower bound for every larger :math:`z`), which also bounds the objective when a time limit cuts the scan.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from edgeplan.formulations.base import FEAS_TOL, slack_tol
from edgeplan.formulations.partition.collapipe import CollaPipePlan, CollaPipeSlot, link_rate
from edgeplan.solvers.partition.common import plan_result
from edgeplan.solvers.partition.equal_pipeline import best_equal_plan
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Limit, Result, Status

#: Relative slack when a time is compared with the bottleneck (times computed two ways round differently).
Z_RTOL = 1e-12
#: Bottleneck candidates evaluated together.
CHUNK = 128


def segment_sums(v: np.ndarray) -> np.ndarray:
    """``S[i, j] = v[i] + ... + v[j-1]`` summed from ``i`` on, as the formulation's ``np.add.reduceat`` does (a
    difference of prefix sums would cancel a 1e-9 block beside a 1e3 one), 0 for ``j <= i``."""
    L = v.size
    upper = np.where(np.arange(L)[None, :] >= np.arange(L + 1)[:, None], v[None, :], 0.0)
    return np.concatenate([np.zeros((L + 1, 1)), np.cumsum(upper, axis=1)], axis=1) * (
        np.arange(L + 1)[None, :] > np.arange(L + 1)[:, None])


@dataclass
class SlotTables:
    """Per micro-batch count: stage times and costs ``(K, L+1, L+1)``, link times and costs ``(K-1, U, P)``."""

    M: int
    comp: np.ndarray
    scost: np.ndarray
    ok: np.ndarray
    x: np.ndarray
    lcost: np.ndarray
    lok: np.ndarray

    @classmethod
    def build(cls, p: CollaPipeSlot, M: int) -> SlotTables:
        K, L, B, tau, V = p.n_devices, p.n_blocks, p.batch_size, p.local_iters, p.latency_weight
        b = B / M
        pos = np.arange(L + 1)
        i, j = pos[:, None], pos[None, :]
        work = (1.0 + p.backward_ratio) * segment_sums(p.block_flops)
        n, a = segment_sums(p.block_params), segment_sums(p.block_act_bytes)
        comp = b * work[None] / p.device_flops[:, None, None]
        phi = np.full(K, M) if p.schedule == "gpipe" else np.minimum(M, K - np.arange(K))
        mem = p.state_bytes_per_param * n[None] + phi[:, None, None] * b * a[None]
        cap = p.device_memory + np.nan_to_num(slack_tol(p.device_memory, FEAS_TOL), posinf=0.0)
        ok = (j > i)[None] & (mem <= cap[:, None, None])  # the slack of ``check``
        scost = V * tau * comp + (p.energy_weights * tau * p.energy_per_flop * B)[:, None, None] * work[None]
        U, lv = p.n_units, p.power_levels_w
        units = np.arange(1, U + 1)
        rate = link_rate(units[None, :, None], lv[None, None, :], p.gains[:, None, None], p.bandwidth_hz, U,
                         p.noise_w_per_hz)
        bits = 8.0 * p.hidden_bytes
        with np.errstate(divide="ignore"):
            per_bit = np.where(bits > 0, 1.0 / rate, 0.0) if bits > 0 else np.zeros_like(rate)
        x = 2.0 * b * bits * per_bit
        w_link = p.energy_weights[:-1] + p.energy_weights[1:]
        lcost = V * tau * x + (w_link * tau)[:, None, None] * lv[None, None, :] * B * bits * per_bit
        lok = np.broadcast_to(p.link_power_ok()[:, None, :], x.shape) & np.isfinite(x)
        return cls(M, comp, scost, ok, x, np.where(lok, lcost, np.inf), lok)

    def candidates(self) -> np.ndarray:
        return np.unique(np.concatenate([self.comp[self.ok], self.x[self.lok], [0.0]]))

    def segments_cost(self, zs: np.ndarray) -> np.ndarray:
        """:math:`F_M(z)` for each ``z`` in ``zs``."""
        K, L1 = self.comp.shape[0], self.comp.shape[1]
        V = np.full((zs.size, L1), np.inf)
        V[:, 0] = 0.0
        lim = zs[:, None, None] * (1 + Z_RTOL)
        for k in range(K):
            allowed = self.ok[k][None] & (self.comp[k][None] <= lim)
            V = np.where(allowed, V[:, :, None] + self.scost[k][None], np.inf).min(axis=1)
        return V[:, L1 - 1]

    def link_choice(self, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best cost and level per link and unit count, ``(Z, K-1, U)``, with every link time at most ``z``."""
        allowed = self.lok[None] & (self.x[None] <= zs[:, None, None, None] * (1 + Z_RTOL))
        c = np.where(allowed, self.lcost[None], np.inf)
        return c.min(axis=3), c.argmin(axis=3)

    def links_cost(self, zs: np.ndarray, keep: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        """:math:`G_M(z)` for each ``z`` (knapsack over links and units); with ``keep`` the DP rows."""
        c, _ = self.link_choice(zs)
        n_links, U = c.shape[1], c.shape[2]
        E = np.full((zs.size, U + 1), np.inf)
        E[:, 0] = 0.0
        rows = [E]
        for k in range(n_links):
            new = np.full_like(E, np.inf)
            for u in range(1, U + 1):
                new[:, u:] = np.minimum(new[:, u:], E[:, :-u] + c[:, k, u - 1, None])
            E = new
            rows.append(E) if keep else None
        return E.min(axis=1), rows

    def first_feasible(self, cands: np.ndarray) -> np.ndarray:
        """The candidates from the smallest :math:`z` with both :math:`F_M` and :math:`G_M` finite (bisection:
        both are finite from some :math:`z` on)."""
        lo, hi = 0, cands.size - 1
        while lo < hi:
            mid = (lo + hi) // 2
            z = cands[mid:mid + 1]
            if np.isfinite(self.segments_cost(z)[0]) and np.isfinite(self.links_cost(z)[0][0]):
                hi = mid
            else:
                lo = mid + 1
        return cands[lo:]

    def plan(self, z: float) -> CollaPipePlan:
        """The plan that attains :math:`F_M(z) + G_M(z)`."""
        K, L1 = self.comp.shape[0], self.comp.shape[1]
        V = np.full(L1, np.inf)
        V[0] = 0.0
        arg = []
        for k in range(K):
            allowed = self.ok[k] & (self.comp[k] <= z * (1 + Z_RTOL))
            tot = np.where(allowed, V[:, None] + self.scost[k], np.inf)
            arg.append(tot.argmin(axis=0))
            V = tot.min(axis=0)
        cuts = [L1 - 1]
        for k in range(K - 1, -1, -1):
            cuts.append(int(arg[k][cuts[-1]]))
        segs = tuple(int(v) for v in np.diff(cuts[::-1]))
        zs = np.array([z])
        c, lvl = self.link_choice(zs)
        _, rows = self.links_cost(zs, keep=True)
        s = int(np.argmin(rows[-1][0]))
        units, power = [], []
        for k in range(len(rows) - 2, -1, -1):
            prev = rows[k][0]
            u = next(u for u in range(1, s + 1) if prev[s - u] + c[0, k, u - 1] == rows[k + 1][0][s])
            units.append(u)
            power.append(int(lvl[0, k, u - 1]))
            s -= u
        return CollaPipePlan(segs, self.M, tuple(units[::-1]), tuple(power[::-1]))


def solve_slot(p: CollaPipeSlot, deadline: object | None = None) -> tuple[CollaPipePlan | None, float, dict]:
    r"""``(best plan, lower bound, stats)``; the bound equals the plan's value unless ``deadline`` cut the scan.

    Micro-batch counts are scanned in the order of their lower bounds
    :math:`V\tau(M-1)z_{\min} + F_M(\infty) + G_M(\infty) + V T^{\rm up}` (:math:`z_{\min}` the smallest
    feasible bottleneck), so that a good incumbent prunes the rest early; the first incumbent is the best
    equal split (``equal-pipeline``).
    """
    lower, evals, cut = [], 0, False
    best = best_equal_plan(p)  # warm start: the equal split, so that a time limit still returns a plan
    best_val = p.objective(best) if best is not None else math.inf
    Vt = p.latency_weight * p.local_iters
    up = p.latency_weight * p.upload_s
    inf = np.array([np.inf])
    todo = []
    for M in p.micro_batches:
        t = SlotTables.build(p, M)
        f_inf, g_inf = float(t.segments_cost(inf)[0]), float(t.links_cost(inf)[0][0])
        if not (math.isfinite(f_inf) and math.isfinite(g_inf)):
            continue
        e, y = p.edge_stage_s(M)
        slope, base = Vt * (M - 1), f_inf + g_inf + up + Vt * (e + y)
        floor = max(e, y)  # the bottleneck is at least the edge stage and its hop
        cands = inf if slope == 0.0 else np.unique(np.maximum(t.first_feasible(t.candidates()), floor))
        todo.append(((slope * cands[0] if slope else 0.0) + base, t, slope, base, cands, up + Vt * (e + y)))
    todo.sort(key=lambda item: item[0])
    for lb, t, slope, base, cands, const in todo:
        if lb >= best_val:
            continue
        if cut:  # the time limit passed at an earlier M: this one is only bounded
            lower.append(lb)
            continue
        for start in range(0, cands.size, CHUNK):
            zs = cands[start:start + CHUNK]
            if (slope * zs[0] if slope else 0.0) + base >= best_val:
                break
            if deadline is not None and deadline.passed():  # type: ignore[attr-defined]
                cut = True
                lower.append(slope * float(zs[0]) + base)  # every candidate left is >= zs[0]
                break
            vals = slope * np.where(np.isinf(zs), 0.0, zs) + t.segments_cost(zs) + t.links_cost(zs)[0] + const
            evals += zs.size
            i = int(np.argmin(vals))
            if vals[i] < best_val:
                best, best_val = t.plan(float(zs[i])), float(vals[i])
    bound = min([best_val, *lower]) if best is not None or lower else math.inf
    return best, bound, {"bottleneck_candidates": evals, "limit": cut}


@register("collapipe-exact", problem=CollaPipeSlot, kind="exact", priority=150, options={})
def solve_collapipe_exact(problem: CollaPipeSlot, ctx: SolveContext) -> Result:
    """Exact slot: micro-batch enumeration, bottleneck scan, segment DP and link knapsack (module docstring)."""
    t0 = time.perf_counter()
    plan, bound, stats = solve_slot(problem, ctx.deadline)
    limit = Limit.TIME if stats.pop("limit") else None
    if plan is None:
        status = Status.NO_SOLUTION if limit else Status.INFEASIBLE
        return plan_result(problem, None, "collapipe-exact", t0, status=status, limit=limit,
                           message="" if limit else "no segments fit the memory caps or no link has an allowed power",
                           **stats)
    atol = 1e-9 * abs(problem.objective(plan))
    return plan_result(problem, plan, "collapipe-exact", t0, bound=bound, limit=limit, atol=atol, **stats)


__all__ = ["SlotTables", "solve_collapipe_exact", "solve_slot"]
