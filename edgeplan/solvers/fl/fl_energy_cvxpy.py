r"""``fl-energy-cvxpy``: a cross-check of ``fl-energy`` whose operating-point energies come from Clarabel.

Each operating point (user :math:`n`, BS :math:`m`, bandwidth :math:`b`) has the least energy of its time split
(:func:`edgeplan.formulations.fl.fl_energy.time_split`), here solved as the conic program

.. math::

    \min_{t,\,s}\ \kappa C^3 (d - t)^{-2} + \tfrac{b}{h}(s - t)
    \quad\text{s.t.}\quad (\tfrac{Z\ln 2}{b},\, t,\, s) \in K_{\exp},\ t_{lo} \le t \le t_{hi}

(compute energy at clock :math:`C/(d - t)` plus the transmit energy :math:`p t` with
:math:`p = \tfrac{b}{h}(2^{Z/(bt)} - 1)`, whose epigraph :math:`s \ge t\,e^{Z\ln 2/(bt)}` is the
exponential cone). Clarabel sees it in normalized units (:math:`t = t_{hi}\tau`, energies over the least of nine
exact evaluations) at its default tolerances; the point's energy is then evaluated exactly at Clarabel's :math:`t`.
The operating-point MILP of ``fl-energy`` then chooses the points. A point where Clarabel fails makes the whole
solve an ``error``, never a plan built without it.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import numpy as np

from edgeplan.formulations.fl.fl_energy import FLRoundEnergy
from edgeplan.solvers.backends.cvxpy import SOLVED, library, solve_program
from edgeplan.solvers.fl.fl_energy import energy_infeasibility, result, solve_points
from edgeplan.solvers.registry import SolveContext, register
from edgeplan.solvers.result import Deadline, Limit, Result, Status

#: Clarabel's own default tolerances (1e-8): tightening them to 1e-10/1e-12 made it fail on a quarter of the
#: points of degenerate rounds; the energies are recomputed exactly from the solution instead (below).
CLARABEL_TOL: dict[str, Any] = {"max_iter": 500}


@cache
def _split_program() -> tuple[Any, dict[str, Any], Any]:
    """The time split in normalized units: :math:`t = T\tau` with :math:`T = t_{hi}`, energies in units of
    :math:`E_0` (the least of a few exact evaluations), so that every value the solver sees is of order 1."""
    cp = library()

    tau = cp.Variable(pos=True)
    sig = cp.Variable()
    k3 = cp.Parameter(nonneg=True)        # kappa C^3 / (E0 T^2)
    d = cp.Parameter(nonneg=True)         # deadline / T
    c = cp.Parameter(nonneg=True)         # Z ln2 / (b T)
    bh = cp.Parameter(nonneg=True)        # b T / (h E0)
    lo = cp.Parameter(nonneg=True)
    cons = [cp.constraints.ExpCone(cp.reshape(c, (1,), order="F"), cp.reshape(tau, (1,), order="F"),
                                    cp.reshape(sig, (1,), order="F")), tau >= lo, tau <= 1.0]
    obj = k3 * cp.power(d - tau, -2) + bh * (sig - tau)
    return cp.Problem(cp.Minimize(obj), cons), {"k3": k3, "d": d, "c": c, "bh": bh, "lo": lo}, tau


def _energy(problem: FLRoundEnergy, u: int, m: int, b: float, t: float) -> float:
    """The least energy at upload time ``t``: the clock that finishes by the deadline, the power that uploads in
    ``t`` (both clipped to their ranges), evaluated exactly."""
    from edgeplan.formulations.fl.common import rate_bps

    h = problem.gain[u, m] / problem.noise_psd_w_per_hz
    C, d, Z = problem.cycles[u], problem.pair_deadline_s[u, m], problem.payload_bits
    f = min(max(C / (d - t), problem.cpu_min_hz[u]), problem.cpu_max_hz[u]) if C > 0 else problem.cpu_min_hz[u]
    p = min(np.expm1(Z * np.log(2.0) / (b * t)) * b / h, problem.max_power_w[u])
    return float(problem.kappa[u] * C * f**2 + (p * Z / rate_bps(b, p * h) if p > 0 else 0.0))


def time_split_cvxpy(problem: FLRoundEnergy, users: Any, bs: Any, bandwidth_hz: Any,
                     deadline: Deadline | None = None) -> np.ndarray:
    """Least energy of each point ``(user, BS, bandwidth)`` by Clarabel (``inf`` where infeasible, ``nan`` where
    Clarabel failed or the ``deadline`` passed first)."""
    from edgeplan.formulations.fl.common import rate_bps

    users, bs, band = (np.atleast_1d(np.asarray(x)) for x in (users, bs, bandwidth_hz))
    prog, par, tau = _split_program()
    out = np.full(users.size, np.inf)
    Z = problem.payload_bits
    for i, (u, m, b) in enumerate(zip(users, bs, band, strict=True)):
        if deadline is not None and deadline.passed():
            out[i:] = np.nan
            break
        h = problem.gain[u, m] / problem.noise_psd_w_per_hz
        C, d = problem.cycles[u], problem.pair_deadline_s[u, m]
        with np.errstate(divide="ignore"):
            t_lo = max(Z / rate_bps(b, problem.max_power_w[u] * h), d - C / problem.cpu_min_hz[u], 0.0)
        t_hi = d - C / problem.cpu_max_hz[u]
        if not (b > 0 and t_hi > 0 and t_lo <= t_hi * (1 + 1e-12)):
            continue
        if Z == 0 or t_lo >= t_hi * (1 - 1e-12):   # nothing to choose: the upload takes its only feasible time
            out[i] = _energy(problem, u, m, b, min(t_hi, max(t_lo, 1e-300)))
            continue
        # the unit of energy: the least of a few exact evaluations, within a small factor of the optimum (the
        # energy at t_hi, at full clock, can be orders above it, and Clarabel's gap is relative to the unit)
        probe = [_energy(problem, u, m, b, t) for t in np.geomspace(max(t_lo, t_hi * 1e-12), t_hi, 9)]
        e0 = min(probe)
        if not e0 > 0:                             # a free point (no compute energy, no upload power)
            out[i] = 0.0
            continue
        par["k3"].value = problem.kappa[u] * C**3 / (e0 * t_hi**2)
        par["d"].value = d / t_hi
        par["c"].value = Z * np.log(2.0) / (b * t_hi)
        par["bh"].value = b * t_hi / (h * e0)
        par["lo"].value = t_lo / t_hi
        if solve_program(prog, **CLARABEL_TOL) not in SOLVED or tau.value is None:
            out[i] = np.nan  # Clarabel failed at this point: the caller reports an error, not a plan
            continue
        out[i] = min(_energy(problem, u, m, b, min(max(float(tau.value), t_lo / t_hi), 1.0) * t_hi), e0)
    return out


def _failed(energy: np.ndarray, t0: float, deadline: Deadline) -> Result:
    bad = int(np.isnan(energy).sum())
    if deadline.passed():
        return result(None, None, Status.NO_SOLUTION, None, t0, f"time limit with {bad} of {energy.size} operating "
                      "points left to solve", "fl-energy-cvxpy", Limit.TIME)
    return result(None, None, Status.ERROR, None, t0, f"Clarabel failed on {bad} of {energy.size} operating points",
                  "fl-energy-cvxpy")


@register("fl-energy-cvxpy", problem=FLRoundEnergy, kind="exact", requires=("cvxpy", "clarabel", "highspy"),
          install="cvxpy clarabel 'highspy>=1.11,<1.12'", priority=60, options={"grid": (int, 16)})
def solve_fl_energy_cvxpy(problem: FLRoundEnergy, ctx: SolveContext) -> Result:
    """Cross-check: operating-point energies by Clarabel (exponential cone), then the operating-point MILP.

    Options: ``grid`` (bandwidths per pair for continuous problems, default 16).
    """
    n_grid = ctx.options["grid"]
    t0 = time.perf_counter()
    deadline = ctx.deadline
    reason = energy_infeasibility(problem)
    if reason is not None:
        return result(None, None, Status.INFEASIBLE, None, t0, reason, "fl-energy-cvxpy")
    if problem.resource_block_hz is not None:
        pts = problem.block_points()
        u, m, k = pts["user"], pts["bs"], pts["blocks"]
        band = k * problem.resource_block_hz
        energy = time_split_cvxpy(problem, u, m, band, deadline)
        if np.isnan(energy).any():
            return _failed(energy, t0, deadline)
        return solve_points(problem, u, m, band, energy, k.astype(float), problem.n_blocks.astype(float), ctx,
                             "fl-energy-cvxpy", t0, True, points=int(u.size))
    bmin = problem.min_bandwidth_hz()
    uu, mm = np.nonzero(np.isfinite(bmin))
    frac = np.linspace(0.0, 1.0, n_grid)
    band = bmin[uu, mm][:, None] + (problem.bs_bandwidth_hz[mm] - bmin[uu, mm])[:, None] * frac[None, :]
    band[:, 0] *= 1 + 1e-9
    u, m, b = np.repeat(uu, n_grid), np.repeat(mm, n_grid), band.ravel()
    energy = time_split_cvxpy(problem, u, m, b, deadline)
    if np.isnan(energy).any():
        return _failed(energy, t0, deadline)
    fin = np.isfinite(energy)
    return solve_points(problem, u[fin], m[fin], b[fin], energy[fin], None, None, ctx, "fl-energy-cvxpy", t0,
                         False, points=int(fin.sum()))


__all__ = ["CLARABEL_TOL", "solve_fl_energy_cvxpy", "time_split_cvxpy"]
