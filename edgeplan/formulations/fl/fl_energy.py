r"""One FL round at least energy: selection, BS, bandwidth, transmit power and CPU clock under a deadline.

The energy variant of the round problem (``docs/models/fl.md``: the DAGSA author code's time-split
subproblem and HFL-SNM's data-coverage metrics, arXiv 2509.14938).

Model
-----
A selected user :math:`n` on BS :math:`m` computes :math:`C_n = E_n\gamma_n D_n` cycles at clock
:math:`f_n \in [f^{\min}_n, f^{\max}_n]` and uploads :math:`Z` bits over bandwidth :math:`b_n` at power
:math:`p_n \in [0, p^{\max}_n]`:

.. math::

    t_n = \frac{C_n}{f_n} + \frac{Z}{b_n\log_2(1 + p_n g_{nm}/(N_0 b_n))} \le d_{nm} := \min(T^{\max}, w_{nm}),
    \qquad \mathcal E_n = \kappa_n C_n f_n^2 + p_n\,\frac{Z}{r_{nm}(b_n, p_n)},

with the coefficient in the ``"kappa"`` convention (:math:`E = \kappa C f^2`; see
:mod:`edgeplan.profiles.devices`). The problem is

.. math::

    \min\ \sum_{n \text{ selected}} \mathcal E_n\quad\text{s.t.}\quad
    & \text{each selected user on one BS, } \textstyle\sum_n s_n = K \ (\ge K),\
      \sum_{n\to m} b_n \le B_m,\ |\{n \to m\}| \le C_m,\ t_n \le d_{nm},\\
    & \mathrm{EDCR}_c(S) \ge r^{\min}_{\rm ef},\quad \mathrm{RDCR}_c(S) \le r^{\max}_{\rm re}
      \quad\text{for every community } c,

where :math:`\mathrm{EDCR}_c(S) = |\bigcup_{n\in S\cap U_c} D_n| / |\bigcup_{n\in U_c} D_n|` and
:math:`\mathrm{RDCR}_c(S) = \sum_{i<j\in S\cap U_c}|D_i\cap D_j| / \sum_{i<j\in U_c}|D_i\cap D_j|`
(:class:`~edgeplan.profiles.data.DataOwnership`; a single community by default).

The time split (B.4)
--------------------
For one user at bandwidth :math:`b` and deadline :math:`d`, let :math:`t` be the upload time. Compute gets the
rest, :math:`f = C/(d - t)`, and the power is the least that carries :math:`Z` bits in :math:`t`,
:math:`p = (2^{Z/(bt)} - 1)\,b/h` with :math:`h = g/N_0`, so

.. math::

    \mathcal E(t) = \frac{\kappa C^3}{(d - t)^2} + \frac{b}{h}\,t\,(2^{Z/(bt)} - 1),\qquad
    t \in \Big[\max\Big(\frac{Z}{r(b, p^{\max})},\ d - \frac{C}{f^{\min}}\Big),\ d - \frac{C}{f^{\max}}\Big].

:math:`\mathcal E` is convex; :math:`\mathcal E'(t) = 2\kappa C^3/(d-t)^3 - (b/h)\varphi(y)` with
:math:`y = Z\ln 2/(bt)` and :math:`\varphi(y) = 1 + e^y(y - 1) \ge 0`, increasing in :math:`t`, so
:func:`time_split` takes an end point when the derivative keeps one sign and bisects on it otherwise. The
minimum :math:`\mathcal E^\star(b)` is convex and decreasing in :math:`b` (:math:`\mathcal E(b, t)` is jointly
convex: its communication part is :math:`(1/h)\,\psi(bt)` with :math:`\psi(u) = u(2^{Z/u} - 1)` and
:math:`\psi' + 2u\psi'' > 0`; the feasible set :math:`t \ge Z/r(b, p^{\max})` is convex), and its slope
(envelope theorem) is :math:`-(t/h)\varphi(y)`, plus :math:`\mathcal E'(t)\,dt/db` when the power cap binds.

MILPs (:mod:`.fl_energy_milp`; the solvers in :mod:`edgeplan.solvers.fl.fl_energy` use them)
------------------------------------------------------------------------------------------------
* ``point_milp``: choose at most one *operating point* (user, BS, bandwidth) per user, with its minimum
  energy :math:`\mathcal E^\star`; with resource blocks every block count is a point and the MILP is the
  exact problem (:meth:`FLRoundEnergy.to_milp`).
* ``tangent_milp``: continuous bandwidth with :math:`\mathcal E^\star` replaced by the maximum of tangent
  lines (an outer approximation: its optimum is a lower bound).

Both share the linearized coverage rows: :math:`\text{cover}_g \le \sum_{n \in P_g} s_n`,
:math:`\sum_g |g|\,\text{cover}_g \ge r^{\min}_{\rm ef} D^{\rm ef}_{U_c}`; :math:`w_{ij} \ge s_i + s_j - 1`,
:math:`\sum_{i<j} |D_i \cap D_j|\, w_{ij} \le r^{\max}_{\rm re} D^{\rm re}_{U_c}`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgeplan._checks import as_scalar
from edgeplan.errors import PlanError, ProblemDataError, UnsupportedProblemError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le
from edgeplan.formulations.fl.common import (
    AUTHOR_CODE_PAYLOAD_BITS,
    LN2,
    FLGeometry,
    min_bandwidth_hz,
    per_user,
    plan_vector,
    rate_bps,
    rate_slope,
)
from edgeplan.formulations.fl.fl_round import assignment_violations, check_assignment, common_fields
from edgeplan.formulations.milp import MILP
from edgeplan.profiles.data import DataOwnership

#: Bisection steps of :func:`time_split` (the bracket reaches adjacent floats well before).
SPLIT_ITER = 200
#: Relative slack with which a time-split interval counts as non-empty (rounding at the power cap).
SPLIT_SLACK = 1e-12


def time_split(cycles: Any, kappa: Any, f_min: Any, f_max: Any, deadline: Any, Z: float, bandwidth: Any,
               h: Any, p_max: Any) -> dict[str, np.ndarray]:
    """The minimum-energy time split of the module docstring, vectorized over points (broadcast).

    Parameters
    ----------
    cycles, kappa, f_min, f_max
        :math:`C`, :math:`\\kappa`, clock range.
    deadline
        :math:`d` (seconds).
    Z
        Payload bits.
    bandwidth
        :math:`b` (Hz).
    h
        :math:`g/N_0` in Hz/W (the rate is :math:`b\\log_2(1 + p h / b)`).
    p_max
        Power cap (W).

    Returns
    -------
    dict
        ``upload_s`` :math:`t^\\star`, ``cpu_hz``, ``power_w``, ``energy_j`` (``inf`` when infeasible),
        ``slope`` :math:`d\\mathcal E^\\star/db` (J/Hz), ``feasible``.
    """
    C, kap, fmin, fmax, d, b, hh, pmax = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (
        cycles, kappa, f_min, f_max, deadline, bandwidth, h, p_max)))
    a_max = pmax * hh
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_pow = Z / rate_bps(b, a_max)
        t_fmin = d - C / fmin
        t_hi = d - C / fmax
        t_lo = np.maximum(t_pow, t_fmin)
        ok = (b > 0) & (t_hi > 0) & np.isfinite(t_pow) & (t_lo <= t_hi * (1 + SPLIT_SLACK))
        t_lo = np.where(ok, np.minimum(t_lo, t_hi), 1.0)
        t_hi = np.where(ok, t_hi, 1.0)
        k3 = kap * C**3
        bh = np.where(ok, b / hh, 1.0)
        c_up = Z * LN2 / np.where(ok, b, 1.0)

        def deriv(t: np.ndarray) -> np.ndarray:
            y = c_up / t
            phi = 1.0 + np.exp(y) * (y - 1.0)
            return np.where(k3 > 0, 2.0 * k3 / (d - t) ** 3, 0.0) - bh * phi   # no compute: no compute term

        lo, hi = t_lo.copy(), t_hi.copy()
        at_lo = deriv(lo) >= 0
        at_hi = deriv(hi) <= 0
        active = ok & ~at_lo & ~at_hi
        for _ in range(SPLIT_ITER):
            if not active.any():
                break
            mid = 0.5 * (lo + hi)
            up = deriv(mid) > 0
            hi = np.where(active & up, mid, hi)
            lo = np.where(active & ~up, mid, lo)
            active &= (mid > lo) | (mid < hi)
            active &= hi - lo > 4e-16 * hi
        t = np.where(at_lo, t_lo, np.where(at_hi, t_hi, 0.5 * (lo + hi)))
        comp = d - t
        f = np.where(C > 0, np.clip(C / comp, fmin, fmax), fmin)
        p = np.minimum(np.expm1(c_up / t) * bh, pmax)
        r = rate_bps(b, p * hh)
        energy = kap * C * f**2 + p * Z / r
        # slope of the minimum energy in b (envelope theorem; the power cap adds dE/dt * dt_pow/db)
        y = c_up / t
        phi = 1.0 + np.exp(y) * (y - 1.0)
        slope = -(t / hh) * phi
        cap_binds = at_lo & (t_pow >= t_fmin)
        dt_pow = -Z * rate_slope(b, a_max) / rate_bps(b, a_max) ** 2
        slope = np.where(cap_binds, slope + np.maximum(deriv(t), 0.0) * dt_pow, slope)
    inf = np.full(C.shape, np.inf)
    return {"upload_s": np.where(ok, t, inf), "cpu_hz": np.where(ok, f, 0.0), "power_w": np.where(ok, p, 0.0),
            "energy_j": np.where(ok, energy, inf), "slope": np.where(ok, slope, 0.0), "feasible": ok}


@dataclass(frozen=True, slots=True)
class FLEnergySchedule:
    """A round's schedule with its operating point: BS (``-1``: not selected), bandwidth (Hz), power (W) and
    CPU clock (Hz) of every user (0 for users not selected).

    Attributes
    ----------
    bs
        ``(N,)`` base station of each user, ``-1`` when not selected.
    bandwidth_hz, power_w, cpu_hz
        ``(N,)`` uplink bandwidth, transmit power and CPU clock of each user (0 when not selected).
    """

    bs: np.ndarray
    bandwidth_hz: np.ndarray
    power_w: np.ndarray
    cpu_hz: np.ndarray

    def __post_init__(self) -> None:
        from edgeplan.formulations.fl.common import int_indices

        bs = int_indices("bs", self.bs, len(np.atleast_1d(np.asarray(self.bs))))
        n = bs.shape[0]
        object.__setattr__(self, "bs", bs)
        for name in ("bandwidth_hz", "power_w", "cpu_hz"):
            object.__setattr__(self, name, plan_vector(name, getattr(self, name), n))

    @property
    def selected(self) -> np.ndarray:
        return self.bs >= 0

    def to_dict(self) -> dict[str, Any]:
        return {"family": "fl-energy", "bs": self.bs.tolist(), "bandwidth_hz": self.bandwidth_hz.tolist(),
                "power_w": self.power_w.tolist(), "cpu_hz": self.cpu_hz.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FLEnergySchedule:
        missing = {"bs", "bandwidth_hz", "power_w", "cpu_hz"} - set(data)
        if missing:
            raise PlanError(f"FL energy schedule mapping lacks keys {sorted(missing)}; expected bs, bandwidth_hz, "
                            "power_w, cpu_hz")
        return cls(np.asarray(data["bs"]), *(np.asarray(data[k], dtype=float) for k in
                                             ("bandwidth_hz", "power_w", "cpu_hz")))


@dataclass(frozen=True, slots=True)
class FLEnergyMetrics:
    """``FLRoundEnergy.evaluate(plan)``; per-user arrays ``(N,)`` (``nan`` for users not selected).

    Attributes
    ----------
    objective
        The round's energy (J).
    energy_j, compute_energy_j, upload_energy_j
        Each user's energy, and its training and upload parts.
    latency_s, deadline_s
        Each user's training plus upload time, and the deadline it must meet.
    edcr, rdcr
        The coverage metrics of the selection (effective and redundant data coverage ratios).
    n_selected
        Users selected.
    """

    objective: float
    energy_j: np.ndarray
    compute_energy_j: np.ndarray
    upload_energy_j: np.ndarray
    latency_s: np.ndarray
    deadline_s: np.ndarray
    edcr: np.ndarray
    rdcr: np.ndarray
    n_selected: int


@dataclass(frozen=True, slots=True, eq=False)
class FLRoundEnergy:
    """The least-energy round (see the module docstring for the math). Units are SI.

    Parameters
    ----------
    gain, window_s, samples, cycles_per_sample, local_epochs, payload_bits, bs_bandwidth_hz, bs_channels,
    n_select, quota, noise_psd_w_per_hz, resource_block_hz, geometry, name
        As in :class:`~edgeplan.formulations.fl.fl_round.FLRound`.
    cpu_min_hz, cpu_max_hz
        ``(N,)`` CPU clock range :math:`[f^{\\min}_n, f^{\\max}_n]` (> 0).
    max_power_w
        ``(N,)`` transmit power caps :math:`p^{\\max}_n`.
    kappa
        ``(N,)`` switched-capacitance coefficients in the ``"kappa"`` convention (:math:`E = \\kappa C f^2`;
        the DAGSA author code's :math:`\\alpha = 10^{-27}`).
    deadline_s
        The round deadline :math:`T^{\\max}`.
    data
        Optional :class:`~edgeplan.profiles.data.DataOwnership` of the users (shared samples, communities).
    edcr_min, rdcr_max
        Coverage floor and redundancy cap per community (0 and 1 leave them out; need ``data``).
    """

    gain: Any
    window_s: Any
    samples: Any
    cpu_min_hz: Any
    cpu_max_hz: Any
    max_power_w: Any
    kappa: Any = 1e-27
    deadline_s: float = 1.0
    data: DataOwnership | None = None
    edcr_min: float = 0.0
    rdcr_max: float = 1.0
    payload_bits: float = AUTHOR_CODE_PAYLOAD_BITS
    bs_bandwidth_hz: Any = 1e6
    bs_channels: Any = None
    n_select: int = 1
    quota: str = "at_least"
    cycles_per_sample: Any = 1e4
    local_epochs: Any = 5.0
    noise_psd_w_per_hz: float = 10 ** (-174 / 10) * 1e-3
    resource_block_hz: float | None = None
    geometry: FLGeometry | None = None
    name: str = "fl-energy"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        values = common_fields(self)
        n = values["gain"].shape[0]
        values["cpu_min_hz"] = per_user("cpu_min_hz", self.cpu_min_hz, n, min_value=0.0, strict_min=True)
        values["cpu_max_hz"] = per_user("cpu_max_hz", self.cpu_max_hz, n, min_value=0.0, strict_min=True)
        bad = values["cpu_min_hz"] > values["cpu_max_hz"]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ProblemDataError(f"`cpu_min_hz`[{i}] = {float(values['cpu_min_hz'][i])!r} > `cpu_max_hz`[{i}] = "
                                   f"{float(values['cpu_max_hz'][i])!r}; expected min <= max")
        values["max_power_w"] = per_user("max_power_w", self.max_power_w, n, min_value=0.0)
        values["kappa"] = per_user("kappa", self.kappa, n, min_value=0.0)
        values["deadline_s"] = as_scalar("deadline_s", self.deadline_s, min_value=0.0, strict_min=True)
        values["edcr_min"] = as_scalar("edcr_min", self.edcr_min, min_value=0.0, max_value=1.0)
        values["rdcr_max"] = as_scalar("rdcr_max", self.rdcr_max, min_value=0.0, max_value=1.0)
        if self.data is not None:
            if not isinstance(self.data, DataOwnership):
                raise ProblemDataError(f"`data` is a {type(self.data).__name__}; expected a DataOwnership or None")
            if self.data.n_users != n:
                raise ProblemDataError(f"`data` describes {self.data.n_users} users; expected {n}")
        elif values["edcr_min"] > 0 or values["rdcr_max"] < 1:
            raise ProblemDataError("`edcr_min`/`rdcr_max` constrain coverage but `data` is None; expected a "
                                   "DataOwnership of the users")
        for key, value in values.items():
            object.__setattr__(self, key, value)

    # -- sizes and derived data -------------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(self.gain.shape[0])

    @property
    def n_bs(self) -> int:
        return int(self.gain.shape[1])

    @property
    def cycles(self) -> np.ndarray:
        """``(N,)`` :math:`C_n = E_n\\gamma_n D_n`."""
        return self.local_epochs * self.cycles_per_sample * self.samples

    @property
    def n_blocks(self) -> np.ndarray:
        if self.resource_block_hz is None:
            raise UnsupportedProblemError("`resource_block_hz` is None: this round has continuous bandwidth")
        return np.floor(self.bs_bandwidth_hz / self.resource_block_hz * (1 + 1e-12)).astype(np.int64)

    @property
    def pair_deadline_s(self) -> np.ndarray:
        """``(N, M)`` :math:`d_{nm} = \\min(T^{\\max}, w_{nm})`."""
        return np.minimum(self.deadline_s, self.window_s)

    def split(self, users: Any, bs: Any, bandwidth_hz: Any) -> dict[str, np.ndarray]:
        """:func:`time_split` for the pairs ``zip(users, bs)`` at ``bandwidth_hz`` (broadcast)."""
        u = np.asarray(users, dtype=np.int64)
        m = np.asarray(bs, dtype=np.int64)
        return time_split(self.cycles[u], self.kappa[u], self.cpu_min_hz[u], self.cpu_max_hz[u],
                          self.pair_deadline_s[u, m], self.payload_bits, bandwidth_hz,
                          self.gain[u, m] / self.noise_psd_w_per_hz, self.max_power_w[u])

    def min_bandwidth_hz(self) -> np.ndarray:
        """``(N, M)`` least bandwidth meeting :math:`d_{nm}` at full power and full clock (``inf``: none)."""
        if "b_min" not in self._cache:
            upload = self.pair_deadline_s - self.cycles[:, None] / self.cpu_max_hz[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where(upload > 0, self.payload_bits / np.where(upload > 0, upload, 1.0), np.inf)
            b = min_bandwidth_hz(rate, self.max_power_w[:, None] * self.gain / self.noise_psd_w_per_hz)
            band = self.bs_bandwidth_hz[None, :]
            # a deadline met exactly at the whole band comes back from the inverse rate a few ulps above it
            b = np.where((b > band) & (b <= band * (1 + 1e-9)), band, b)
            self._cache["b_min"] = np.where(b <= band, b, np.inf)
        return self._cache["b_min"]

    # -- the formulation protocol -------------------------------------------------------------------------------------
    def evaluate(self, plan: FLEnergySchedule) -> FLEnergyMetrics:
        """Per-user energy (compute and upload), latency and deadline, and the coverage rates per community."""
        if not isinstance(plan, FLEnergySchedule):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected an FLEnergySchedule")
        users, bs = check_assignment(self, plan)
        n = self.n_users
        out = {k: np.full(n, np.nan) for k in ("energy_j", "compute_energy_j", "upload_energy_j", "latency_s",
                                               "deadline_s")}
        if users.size:
            f, p, b = plan.cpu_hz[users], plan.power_w[users], plan.bandwidth_hz[users]
            r = rate_bps(b, p * self.gain[users, bs] / self.noise_psd_w_per_hz)
            with np.errstate(divide="ignore", invalid="ignore"):
                up = self.payload_bits / r
                comp = self.cycles[users] / f
            e_cmp = self.kappa[users] * self.cycles[users] * f**2
            e_up = np.where(p > 0, p * up, 0.0)
            out["compute_energy_j"][users] = e_cmp
            out["upload_energy_j"][users] = e_up
            out["energy_j"][users] = e_cmp + e_up
            out["latency_s"][users] = comp + up
            out["deadline_s"][users] = self.pair_deadline_s[users, bs]
        edcr, rdcr = self.coverage(plan.selected)
        return FLEnergyMetrics(objective=float(np.sum(out["energy_j"][users])), edcr=edcr, rdcr=rdcr,
                               n_selected=int(users.size), **out)

    def coverage(self, selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(EDCR, RDCR)`` per community of a selection mask (empty arrays without ``data``)."""
        if self.data is None:
            return np.zeros(0), np.zeros(0)
        comms = np.unique(self.data.community)
        edcr = np.array([self.data.edcr(selected, self.data.community_mask(c)) for c in comms], dtype=float)
        rdcr = np.array([self.data.rdcr(selected, self.data.community_mask(c)) for c in comms], dtype=float)
        return edcr, rdcr

    def objective(self, plan: FLEnergySchedule) -> float:
        """Total energy of the selected users (J)."""
        return self.evaluate(plan).objective

    def check(self, plan: FLEnergySchedule, tol: float = FEAS_TOL) -> list[Violation]:
        """Every broken constraint: those of :class:`FLRound` (with :math:`d_{nm}` for the window), clock and
        power ranges, zero power for idle users, and the coverage floor and redundancy cap."""
        m = self.evaluate(plan)
        users, _ = check_assignment(self, plan)
        # FLRound's tests, with the window replaced by the deadline d_nm = min(T_max, w_nm)
        out = assignment_violations(_DeadlineView(self), plan, m.latency_s, tol)
        f, p = plan.cpu_hz[users], plan.power_w[users]
        out += violations_ge([f"cpu_hz[{u}]" for u in users], f, self.cpu_min_hz[users], tol)
        out += violations_le([f"cpu_hz[{u}]" for u in users], f, self.cpu_max_hz[users], tol)
        out += violations_ge([f"power_w[{u}]" for u in users], p, 0.0, tol)
        out += violations_le([f"power_w[{u}]" for u in users], p, self.max_power_w[users], tol)
        idle = np.flatnonzero(~plan.selected & (plan.power_w != 0))
        out += [Violation(f"power_w[{u}] (user not selected)", float(plan.power_w[u]), 0.0, "==") for u in idle]
        if self.data is not None:
            out += violations_ge("edcr[community {i}]", m.edcr, self.edcr_min, tol)
            out += violations_le("rdcr[community {i}]", m.rdcr, self.rdcr_max, tol)
        return out

    # -- MILPs (built in :mod:`.fl_energy_milp`) -----------------------------------------------------------------
    def block_points(self) -> dict[str, np.ndarray]:
        """Every operating point of a resource-block round: pairs x block counts with finite energy (cached)."""
        if "block_points" not in self._cache:
            blocks = self.n_blocks
            k = np.arange(1, max(int(blocks.max()), 1) + 1)
            uu, mm, kk = np.meshgrid(np.arange(self.n_users), np.arange(self.n_bs), k, indexing="ij")
            ok = (kk <= blocks[mm]) & (self.window_s[uu, mm] > 0)
            uu, mm, kk = uu[ok], mm[ok], kk[ok]
            sol = self.split(uu, mm, kk * self.resource_block_hz)
            fin = sol["feasible"]
            self._cache["block_points"] = {"user": uu[fin], "bs": mm[fin], "blocks": kk[fin],
                                           **{key: v[fin] for key, v in sol.items() if key != "feasible"}}
        return self._cache["block_points"]

    def schedule_from_points(self, users: np.ndarray, bs: np.ndarray, bandwidth_hz: np.ndarray) -> FLEnergySchedule:
        """The schedule running each chosen (user, BS, bandwidth) at its minimum-energy time split."""
        n = self.n_users
        sol = self.split(users, bs, bandwidth_hz)
        out = {k: np.zeros(n) for k in ("bandwidth_hz", "power_w", "cpu_hz")}
        bs_of = np.full(n, -1, dtype=np.int64)
        bs_of[users] = bs
        out["bandwidth_hz"][users] = bandwidth_hz
        out["power_w"][users] = sol["power_w"]
        out["cpu_hz"][users] = sol["cpu_hz"]
        return FLEnergySchedule(bs_of, **out)

    def to_milp(self) -> tuple[MILP, Callable[[np.ndarray], FLEnergySchedule]]:
        """The exact MILP of a resource-block round (:meth:`point_milp` over :meth:`block_points`); continuous
        bandwidth raises :class:`~edgeplan.errors.UnsupportedProblemError` (use ``"fl-energy"``)."""
        if self.resource_block_hz is None:
            raise UnsupportedProblemError(
                "an FLRoundEnergy with continuous bandwidth (`resource_block_hz` = None) has no exact MILP; solve it "
                "with 'fl-energy' (outer approximation, exact to a tolerance), or set `resource_block_hz`")
        from edgeplan.registry import reduce_to_milp

        return reduce_to_milp(self)

    def __repr__(self) -> str:
        rb = "" if self.resource_block_hz is None else f", resource_block_hz={self.resource_block_hz:.4g}"
        return (f"FLRoundEnergy(name={self.name!r}, n_users={self.n_users}, n_bs={self.n_bs}, "
                f"n_select={self.n_select}, deadline_s={self.deadline_s:.4g}{rb})")


class _DeadlineView:
    """The attributes :func:`assignment_violations` reads, with windows replaced by :math:`d_{nm}`."""

    def __init__(self, problem: FLRoundEnergy) -> None:
        self.gain = problem.gain
        self.window_s = problem.pair_deadline_s
        self.bs_bandwidth_hz = problem.bs_bandwidth_hz
        self.bs_channels = problem.bs_channels
        self.n_select = problem.n_select
        self.quota = problem.quota
        self.resource_block_hz = problem.resource_block_hz


__all__ = ["FLEnergyMetrics", "FLEnergySchedule", "FLRoundEnergy", "time_split"]
