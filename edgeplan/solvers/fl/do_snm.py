r"""DO-SNM-like coverage-aware greedy for the least-energy FL round (``"do-snm"``).

Chen et al., "Hierarchical Federated Learning for Social Network with Mobility" (HFL-SNM, DO-SNM), arXiv
2509.14938. DO-SNM's steps are not public; this is the reconstructed skeleton of ``docs/models/fl.md`` on
:class:`~edgeplan.formulations.fl.fl_energy.FLRoundEnergy`:

.. code-block:: text

    E_ref(n, m) <- least energy of n on m at a fair share max(b_min, B_m / ceil(K / M))   (time split, B.4)
    S <- {}
    while |S| < K or some community's EDCR < floor:
        among users with a BS that still has a channel and b_min(n, m) of free bandwidth, and whose addition
        keeps its community's RDCR under the cap:
            score(n, m) = dEDCR(n | S) - beta * dRDCR(n | S) - omega * E_ref(n, m) / median(E_ref)
        add the best pair; reserve b_min(n, m) on its BS
    per BS: split the band by marginal energy (units of 1/64 of the spare band, or whole blocks)
    every user: its minimum-energy time split (clock and power) at its bandwidth

Choices where the paper is silent: the gains are the coverage-rate increments of the user's own community;
``beta = omega = 1`` (options); the fair share uses the quota spread over the BSs; the final split is the
greedy on marginal energy decrease, which is optimal for the discretized split because the least energy is
convex in the bandwidth. A reachable user count below K is ``infeasible``; a greedy dead end (coverage floor or
bandwidth) is ``no_solution``. The bound reported is the sum of the K smallest per-user energies at a whole band.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from edgeplan.formulations.fl.fl_energy import FLEnergySchedule, FLRoundEnergy
from edgeplan.solvers.fl.fl_energy import energy_infeasibility
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result, heuristic_result

#: Units the spare band of a BS is split into by the marginal-energy greedy (continuous bandwidth).
SPLIT_UNITS = 64


def coverage_gains(problem: FLRoundEnergy, selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` increments of each user's community EDCR and RDCR if it joined ``selected`` (0 without data and for
    users already selected)."""
    n = problem.n_users
    d_ef, d_re = np.zeros(n), np.zeros(n)
    if problem.data is None:
        return d_ef, d_re
    own = problem.data.patterns
    sizes = problem.data.group_sizes.astype(float)
    for c in np.unique(problem.data.community):
        inside = problem.data.community == c
        users = np.flatnonzero(inside)
        k = (own[:, users] & selected[users][None, :]).sum(axis=1)           # selected owners per group
        total_ef = float(problem.data.distinct(inside))
        total_re = float(problem.data.redundant(inside))
        mine = own[:, users].astype(float)                                     # (G, |users|)
        if total_ef > 0:
            d_ef[users] = mine.T @ (sizes * (k == 0)) / total_ef
        if total_re > 0:
            d_re[users] = mine.T @ (sizes * k) / total_re
    d_ef[selected], d_re[selected] = 0.0, 0.0
    return d_ef, d_re


def energy_lower_bound(problem: FLRoundEnergy) -> float:
    """Sum of the K smallest per-user energies holding a whole band (valid: energy decreases with bandwidth)."""
    k = problem.n_select
    if k == 0:
        return 0.0
    n, m = problem.gain.shape
    uu, mm = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    band = (problem.n_blocks * problem.resource_block_hz if problem.resource_block_hz is not None
            else problem.bs_bandwidth_hz)
    e = problem.split(uu.ravel(), mm.ravel(), band[mm.ravel()])["energy_j"].reshape(n, m)
    e = np.where(problem.window_s > 0, e, np.inf)
    best = np.sort(e.min(axis=1))
    return float(best[:k].sum()) if np.isfinite(best[k - 1]) else math.inf


def split_by_marginal_energy(problem: FLRoundEnergy, users: np.ndarray, m: int) -> np.ndarray | None:
    """Bandwidths of ``users`` on BS ``m`` from their least bandwidths, the spare band given unit by unit to the
    largest energy decrease (whole blocks with resource blocks). ``None`` when the least bandwidths do not fit."""
    s = users.size
    rb = problem.resource_block_hz
    if rb is not None:
        blocks = int(problem.n_blocks[m])
        levels = np.arange(1, blocks + 1) * rb
        table = problem.split(np.repeat(users, blocks), np.full(s * blocks, m), np.tile(levels, s))["energy_j"]
        table = table.reshape(s, blocks)
        first = np.argmax(np.isfinite(table), axis=1)
        if not np.isfinite(table).any(axis=1).all() or (first + 1).sum() > blocks:
            return None
        base, step, spare = (first + 1) * rb, rb, blocks - int((first + 1).sum())
        cols = first[:, None] + np.arange(spare + 1)[None, :]
        energy = np.take_along_axis(table, np.minimum(cols, blocks - 1), axis=1)
        energy = np.where(cols < blocks, energy, np.inf)
    else:
        bmin = problem.min_bandwidth_hz()[users, m] * (1 + 1e-9)
        spare_hz = problem.bs_bandwidth_hz[m] - bmin.sum()
        if not np.isfinite(bmin).all() or spare_hz < 0:
            return None
        step, spare = spare_hz / SPLIT_UNITS, SPLIT_UNITS
        grid = bmin[:, None] + step * np.arange(spare + 1)[None, :]
        energy = problem.split(np.repeat(users, spare + 1), np.full(grid.size, m), grid.ravel())["energy_j"]
        energy = energy.reshape(grid.shape)
        base = bmin
    # marginal decreases are non-increasing (convexity): take the `spare` largest over all users at once
    dec = energy[:, :-1] - energy[:, 1:]
    dec = np.where(np.isfinite(dec), dec, -np.inf)
    order = np.argsort(-dec, axis=None, kind="stable")[:spare]
    units = np.bincount(np.unravel_index(order, dec.shape)[0], minlength=s)
    return base + units * step


def allocate(problem: FLRoundEnergy, bs_of: np.ndarray) -> FLEnergySchedule | None:
    """The schedule of an assignment: per-BS marginal-energy split, then each user's time split."""
    users_all, bs_all, band_all = [], [], []
    for m in np.unique(bs_of[bs_of >= 0]):
        users = np.flatnonzero(bs_of == m)
        band = split_by_marginal_energy(problem, users, int(m))
        if band is None:
            return None
        users_all.append(users)
        bs_all.append(np.full(users.size, m))
        band_all.append(band)
    if not users_all:
        return problem.schedule_from_points(np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    return problem.schedule_from_points(np.concatenate(users_all), np.concatenate(bs_all), np.concatenate(band_all))


def coverage_met(problem: FLRoundEnergy, selected: np.ndarray) -> bool:
    if problem.data is None or problem.edcr_min <= 0:
        return True
    edcr, _ = problem.coverage(selected)
    return bool(np.all(edcr >= problem.edcr_min * (1 - 1e-12)))


def rdcr_ok(problem: FLRoundEnergy, selected: np.ndarray) -> bool:
    if problem.data is None or problem.rdcr_max >= 1:
        return True
    _, rdcr = problem.coverage(selected)
    return bool(np.all(rdcr <= problem.rdcr_max * (1 + 1e-12)))


def energy_result(problem: FLRoundEnergy, plan: FLEnergySchedule | None, method: str, t0: float, dead_end: str,
                  **stats: Any) -> Result:
    """The Result of an energy heuristic (:func:`~edgeplan.solvers.result.heuristic_result`) with the cheap
    energy bound."""
    reason = energy_infeasibility(problem)
    message = "" if plan is None else f"{int(plan.selected.sum())} users selected"
    return heuristic_result(problem, plan, method, t0, message=message, infeasible=reason, dead_end=dead_end,
                            bound=None if reason is not None else energy_lower_bound(problem), **stats)


def do_snm_assignment(problem: FLRoundEnergy, beta: float = 1.0, omega: float = 1.0) -> np.ndarray | None:
    """The coverage-aware greedy of the module docstring; the ``(N,)`` BS of each user, ``None`` on a dead end."""
    n, m = problem.gain.shape
    bmin = problem.min_bandwidth_hz()
    pairs = np.isfinite(bmin)
    share = problem.bs_bandwidth_hz / max(1, math.ceil(problem.n_select / max(int(pairs.any(axis=0).sum()), 1)))
    uu, mm = np.nonzero(pairs)
    ref = np.full((n, m), np.inf)
    ref[uu, mm] = problem.split(uu, mm, np.maximum(bmin[uu, mm] * (1 + 1e-9), share[mm]))["energy_j"]
    pairs &= np.isfinite(ref)
    scale = float(np.median(ref[np.isfinite(ref)])) if np.isfinite(ref).any() else 1.0
    free = problem.bs_bandwidth_hz.astype(float).copy()
    if problem.resource_block_hz is not None:
        bmin = np.ceil(bmin / problem.resource_block_hz - 1e-9) * problem.resource_block_hz
        free = problem.n_blocks * problem.resource_block_hz
    chans = problem.bs_channels.copy()
    bs_of = np.full(n, -1, dtype=np.int64)
    while (bs_of >= 0).sum() < problem.n_select or not coverage_met(problem, bs_of >= 0):
        d_ef, d_re = coverage_gains(problem, bs_of >= 0)
        score = d_ef[:, None] - beta * d_re[:, None] - omega * ref / scale
        ok = pairs & (bs_of[:, None] < 0) & (chans[None, :] > 0) & (bmin <= free[None, :] * (1 + 1e-12))
        for u in np.flatnonzero(ok.any(axis=1)):            # the redundancy cap, user by user
            trial = bs_of >= 0
            trial[u] = True
            if not rdcr_ok(problem, trial):
                ok[u] = False
        ok &= np.isfinite(score)
        if not ok.any():
            return None
        flat = int(np.argmax(np.where(ok, score, -np.inf)))
        u, j = divmod(flat, m)
        bs_of[u] = j
        free[j] -= bmin[u, j]
        chans[j] -= 1
    return bs_of


@register("do-snm", problem=FLRoundEnergy, kind="heuristic", priority=10,
          options={"beta": (float, 1.0), "omega": (float, 1.0)})
def solve_do_snm(problem: FLRoundEnergy, ctx: SolveContext) -> Result:
    """DO-SNM-like greedy: coverage gain minus redundancy and energy, marginal-energy bandwidth split.

    Options: ``beta`` (weight of the redundancy increment, default 1), ``omega`` (of the energy, default 1).
    """
    beta = ctx.options["beta"]
    omega = ctx.options["omega"]
    t0 = time.perf_counter()
    plan = None
    if energy_infeasibility(problem) is None:
        bs_of = do_snm_assignment(problem, beta, omega)
        plan = None if bs_of is None else allocate(problem, bs_of)
    return energy_result(problem, plan, "do-snm", t0, "the greedy ran out of users that fit (bandwidth, channels, "
                         "redundancy cap) before meeting the quota and the coverage floor")


__all__ = ["allocate", "coverage_gains", "do_snm_assignment", "energy_lower_bound", "energy_result",
           "solve_do_snm", "split_by_marginal_energy"]
