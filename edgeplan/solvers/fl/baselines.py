r"""Baselines of the FL round problem (``docs/models/fl.md``, baselines): ``random``,
``best-channel``, ``fastest-compute``.

Each ranks the users, gives each its BS, and splits every BS's band equally among its users:

* ``random``: a uniformly random order (seeded by ``solve(..., seed=)``, default 0), nearest BS;
* ``best-channel``: strongest channel first (max-SNR), to the BS of that channel;
* ``fastest-compute``: smallest :math:`t^{\rm cmp}_n` first, nearest BS.

"Nearest BS" is the closest BS by the round's geometry among those that cover the user (the strongest channel
when the problem has no geometry). Our choice where the note is silent: users are taken in order and a user is
skipped when adding it would push anyone of its BS past their window with the equal split (or the BS has no
free channel), so every plan is feasible; the baseline stops at K users. With resource blocks the split gives
:math:`\lfloor R_m/S\rfloor` blocks each and the remainder one each to the users that joined the BS first.

The same three accept the least-energy round (:class:`~edgeplan.formulations.fl.fl_energy.FLRoundEnergy`): same
order and BS, equal split, and each user at the minimum-energy clock and power for its share (the time split);
they keep adding users in order until the quota and every coverage floor are met, skipping a user whose share
cannot meet its deadline or who would break a redundancy cap. ``fastest-compute`` ranks by
:math:`C_n / f^{\max}_n` there.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgeplan.formulations.fl.fl_energy import FLEnergySchedule, FLRoundEnergy
from edgeplan.formulations.fl.fl_round import FLRound, FLSchedule
from edgeplan.solvers.fl.dagsa import fl_heuristic_result
from edgeplan.solvers.fl.do_snm import coverage_met, energy_result, rdcr_ok
from edgeplan.solvers.fl.fl_energy import energy_infeasibility
from edgeplan.solvers.fl.kernels import quick_infeasibility, reachable
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Result


def _reachable(problem: FLRound | FLRoundEnergy) -> np.ndarray:
    if isinstance(problem, FLRoundEnergy):
        return np.isfinite(problem.min_bandwidth_hz())
    return reachable(problem)


def equal_split(problem: FLRound | FLRoundEnergy, m: int, users: np.ndarray) -> np.ndarray:
    """Bandwidths of ``users`` sharing BS ``m`` equally (whole blocks with resource blocks)."""
    s = users.size
    if problem.resource_block_hz is None:
        return np.full(s, problem.bs_bandwidth_hz[m] / s)
    blocks = int(problem.n_blocks[m])
    k = np.full(s, blocks // s) + (np.arange(s) < blocks % s)
    return k * problem.resource_block_hz


def nearest_bs(problem: FLRound | FLRoundEnergy) -> np.ndarray:
    """``(N,)`` the nearest covering BS of each user (``-1``: none covers it)."""
    ok = _reachable(problem)
    if problem.geometry is not None:
        score = np.where(ok, -problem.geometry.distance_m, -np.inf)
    else:
        score = np.where(ok, problem.gain, -np.inf)
    best = np.argmax(score, axis=1)
    return np.where(ok.any(axis=1), best, -1)


def best_channel_bs(problem: FLRound | FLRoundEnergy) -> np.ndarray:
    """``(N,)`` the covering BS with the strongest channel (``-1``: none)."""
    ok = _reachable(problem)
    best = np.argmax(np.where(ok, problem.gain, -np.inf), axis=1)
    return np.where(ok.any(axis=1), best, -1)


def _greedy_equal_split(problem: FLRound | FLRoundEnergy, order: np.ndarray, bs_choice: np.ndarray,
                        enough: Callable[[np.ndarray], bool],
                        fits: Callable[[np.ndarray, int, np.ndarray, np.ndarray], bool],
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Take users in ``order`` to ``bs_choice`` until ``enough(bs_of)``; a user joins when its BS has a free channel,
    everyone's equal share is positive and ``fits(users, m, share, trial_selected)``. Returns ``(bs_of, band)``;
    each BS's users are kept in join order, which the block remainder of :func:`equal_split` follows."""
    n = problem.n_users
    bs_of = np.full(n, -1, dtype=np.int64)
    band = np.zeros(n)
    chans = problem.bs_channels.copy()
    members: dict[int, list[int]] = {}
    for u in order:
        if enough(bs_of):
            break
        m = int(bs_choice[u])
        if m < 0 or chans[m] == 0:
            continue
        users = np.array([*members.get(m, []), u], dtype=np.int64)
        share = equal_split(problem, m, users)
        trial = bs_of >= 0
        trial[u] = True
        if np.any(share <= 0) or not fits(users, m, share, trial):
            continue
        bs_of[u] = m
        members.setdefault(m, []).append(int(u))
        band[users] = share
        chans[m] -= 1
    return bs_of, band


def equal_split_schedule(problem: FLRound, order: np.ndarray, bs_choice: np.ndarray) -> FLSchedule | None:
    """Take users in ``order`` to ``bs_choice``, skipping one that would break a window; ``None`` if fewer than K."""
    def fits(users: np.ndarray, m: int, share: np.ndarray, _: np.ndarray) -> bool:
        return bool(np.all(problem.latency_s(users, np.full(users.size, m), share) <= problem.window_s[users, m]))

    bs_of, band = _greedy_equal_split(problem, order, bs_choice, lambda b: (b >= 0).sum() == problem.n_select, fits)
    return FLSchedule(bs_of, band) if (bs_of >= 0).sum() == problem.n_select else None


def equal_split_energy(problem: FLRoundEnergy, order: np.ndarray, bs_choice: np.ndarray) -> FLEnergySchedule | None:
    """The energy variant of :func:`equal_split_schedule` (see the module docstring)."""
    def enough(bs_of: np.ndarray) -> bool:
        return (bs_of >= 0).sum() >= problem.n_select and coverage_met(problem, bs_of >= 0)

    def fits(users: np.ndarray, m: int, share: np.ndarray, trial: np.ndarray) -> bool:
        energy = problem.split(users, np.full(users.size, m), share)["energy_j"]
        return bool(np.isfinite(energy).all()) and rdcr_ok(problem, trial)

    bs_of, band = _greedy_equal_split(problem, order, bs_choice, enough, fits)
    if not enough(bs_of):
        return None
    users_all = np.flatnonzero(bs_of >= 0)
    return problem.schedule_from_points(users_all, bs_of[users_all], band[users_all])


def _run(problem: FLRound | FLRoundEnergy, ctx: SolveContext, method: str, order: np.ndarray, bs_choice: np.ndarray,
         t0: float) -> Result:
    if isinstance(problem, FLRoundEnergy):
        plan_e = equal_split_energy(problem, order, bs_choice) if energy_infeasibility(problem) is None else None
        return energy_result(problem, plan_e, method, t0, f"{method} ran out of users whose equal share meets their "
                             "deadline before meeting the quota and the coverage floor")
    plan = None
    if quick_infeasibility(problem) is None:
        plan = equal_split_schedule(problem, order, bs_choice)
    return fl_heuristic_result(problem, plan, method, t0, dead_end=f"{method} ran out of users that fit (channels or "
                               "coverage windows with an equal bandwidth split) before selecting K users")


@register("random", problem=(FLRound, FLRoundEnergy), kind="heuristic", priority=50, options={})
def solve_random(problem: FLRound | FLRoundEnergy, ctx: SolveContext) -> Result:
    """Random users, nearest BS, equal bandwidth (seeded by ``seed``; default 0)."""
    t0 = time.perf_counter()
    order = np.random.default_rng(0 if ctx.seed is None else ctx.seed).permutation(problem.n_users)
    return _run(problem, ctx, "random", order, nearest_bs(problem), t0)


@register("best-channel", problem=(FLRound, FLRoundEnergy), kind="heuristic", priority=40, options={})
def solve_best_channel(problem: FLRound | FLRoundEnergy, ctx: SolveContext) -> Result:
    """Strongest-channel users first, each on that channel's BS, equal bandwidth."""
    t0 = time.perf_counter()
    bs = best_channel_bs(problem)
    strength = np.where(bs >= 0, problem.gain[np.arange(problem.n_users), np.maximum(bs, 0)], -np.inf)
    return _run(problem, ctx, "best-channel", np.argsort(-strength, kind="stable"), bs, t0)


@register("fastest-compute", problem=(FLRound, FLRoundEnergy), kind="heuristic", priority=45, options={})
def solve_fastest_compute(problem: FLRound | FLRoundEnergy, ctx: SolveContext) -> Result:
    """Users with the shortest local training first, nearest BS, equal bandwidth."""
    t0 = time.perf_counter()
    compute = (problem.cycles / problem.cpu_max_hz if isinstance(problem, FLRoundEnergy) else problem.compute_s)
    return _run(problem, ctx, "fastest-compute", np.argsort(compute, kind="stable"), nearest_bs(problem), t0)


__all__ = ["best_channel_bs", "equal_split", "equal_split_energy", "equal_split_schedule", "nearest_bs",
           "solve_best_channel", "solve_fastest_compute", "solve_random"]
