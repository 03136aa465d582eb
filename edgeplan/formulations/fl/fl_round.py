r"""One federated-learning round under mobility: who trains, through which base station, with what bandwidth.

DAGSA's problem (Fan et al., "Mobility-Aware Joint User Scheduling and Resource Allocation for Low-Latency
Federated Learning", arXiv 2307.09263) as reconstructed in ``docs/models/fl.md``, with the
channel, compute and mobility models of the first author's public code (Part B).

Model
-----
Users :math:`n = 1..N` train locally for :math:`t^{\rm cmp}_n = E_n\gamma_n D_n / f_n` seconds (epochs, cycles
per sample, samples, CPU clock) and then upload :math:`Z` bits to one base station :math:`m = 1..M` over
bandwidth :math:`b_n` at power :math:`p_n`:

.. math::

    t_n = t^{\rm cmp}_n + \frac{Z}{r_{nm}(b_n)},\qquad
    r_{nm}(b) = b\log_2\Big(1 + \frac{p_n g_{nm}}{N_0 b}\Big).

User :math:`n` may use BS :math:`m` only if it finishes before leaving its coverage, :math:`t_n \le
w_{nm}` (the coverage window, 0 when not covered; :mod:`.fl_common`). With :math:`a_{nm} \in \{0, 1\}` the
assignment and :math:`s_n = \sum_m a_{nm}` the selection, the round-latency problem is

.. math::

    \min_{a, b}\ T = \max_{n: s_n = 1} t_n \quad\text{s.t.}\quad
    & \textstyle\sum_m a_{nm} \le 1,\quad \sum_n s_n = K\ \ (\text{or} \ge K),\\
    & \textstyle\sum_{n: a_{nm}=1} b_n \le B_m,\quad \sum_n a_{nm} \le C_m,\quad b_n \ge 0,\\
    & a_{nm} = 1 \Rightarrow t_n \le w_{nm},

with :math:`T = 0` when :math:`K = 0`. With ``resource_block_hz`` :math:`\beta` set, bandwidth comes in whole
resource blocks (:math:`b_n \in \beta\mathbb Z`, :math:`R_m = \lfloor B_m/\beta\rfloor` blocks per BS).

For "at least K" the optimum still selects exactly K users: dropping a user frees bandwidth and a channel and
cannot raise the maximum.

MILPs built here (the solvers in :mod:`edgeplan.solvers.fl.fl_bisect` and ``fl_rb`` use them)
---------------------------------------------------------------------------------------------------------
* :meth:`FLRound.feasibility_milp`: is a round time :math:`T` reachable? Each pair needs at least
  :math:`\check b_{nm}(T)`, the bandwidth that finishes by :math:`\min(T, w_{nm})`; the question becomes a
  multiple-knapsack assignment (maximise the number of users, capped at K).
* :meth:`FLRound.rb_milp` / :meth:`FLRound.to_milp`: the resource-block model as a multiple-choice MILP
  over (user, BS, block count) triples (exact when the problem has ``resource_block_hz``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from edgeplan._checks import as_array, as_scalar, one_of
from edgeplan.errors import PlanError, ProblemDataError, UnsupportedProblemError
from edgeplan.formulations.base import FEAS_TOL, Violation, violations_ge, violations_le
from edgeplan.formulations.fl.common import (
    AUTHOR_CODE_PAYLOAD_BITS,
    QUOTA_MODES,
    FLGeometry,
    channel_counts,
    count,
    geometry_from,
    int_indices,
    min_bandwidth_hz,
    per_bs,
    per_user,
    plan_vector,
    rate_bps,
)
from edgeplan.formulations.milp import MILP, time_unit

#: Relative slack of the resource-block integrality test in ``check``.
RB_TOL = 1e-6


@dataclass(frozen=True, slots=True)
class FLSchedule:
    """A round's schedule: the BS of every user (``-1``: not selected) and its uplink bandwidth in hertz.

    Attributes
    ----------
    bs
        ``(N,)`` base station of each user, ``-1`` when not selected.
    bandwidth_hz
        ``(N,)`` uplink bandwidth of each user (0 when not selected).
    """

    bs: np.ndarray
    bandwidth_hz: np.ndarray

    def __post_init__(self) -> None:
        bs = int_indices("bs", self.bs, len(np.atleast_1d(np.asarray(self.bs))))
        object.__setattr__(self, "bs", bs)
        object.__setattr__(self, "bandwidth_hz", plan_vector("bandwidth_hz", self.bandwidth_hz, bs.shape[0]))

    @property
    def selected(self) -> np.ndarray:
        """``(N,)`` bool: users that train this round."""
        return self.bs >= 0

    def to_dict(self) -> dict[str, Any]:
        return {"family": "fl-round", "bs": self.bs.tolist(), "bandwidth_hz": self.bandwidth_hz.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FLSchedule:
        missing = {"bs", "bandwidth_hz"} - set(data)
        if missing:
            raise PlanError(f"FL schedule mapping lacks keys {sorted(missing)}; expected bs, bandwidth_hz")
        return cls(np.asarray(data["bs"]), np.asarray(data["bandwidth_hz"], dtype=float))

    @classmethod
    def empty(cls, n_users: int) -> FLSchedule:
        return cls(np.full(n_users, -1), np.zeros(n_users))


@dataclass(frozen=True, slots=True)
class FLRoundMetrics:
    """``FLRound.evaluate(plan)``; per-user arrays are ``(N,)`` with ``nan`` for users not selected.

    Attributes
    ----------
    objective
        The round latency: the slowest selected user's training plus upload.
    latency_s, compute_s, upload_s
        Each user's total, local training and upload time.
    rate_bps
        Each user's uplink rate at its bandwidth.
    window_s
        How long each selected user stays in its base station's coverage.
    bandwidth_used_hz, users_per_bs
        Per base station: bandwidth allocated and users served.
    n_selected
        Users selected.
    """

    objective: float
    latency_s: np.ndarray
    compute_s: np.ndarray
    upload_s: np.ndarray
    rate_bps: np.ndarray
    window_s: np.ndarray
    bandwidth_used_hz: np.ndarray
    users_per_bs: np.ndarray
    n_selected: int


def common_fields(self: Any) -> dict[str, Any]:
    """Validate the fields both FL round families share; returns the normalized values."""
    gain = as_array("gain", self.gain, shape=(None, None), min_value=0.0)
    n, m = gain.shape
    if n == 0 or m == 0:
        raise ProblemDataError(f"`gain` has shape {gain.shape}; expected at least one user and one base station")
    out: dict[str, Any] = {
        "gain": gain,
        "window_s": as_array("window_s", self.window_s, shape=(n, m), min_value=0.0, allow_inf=True),
        "samples": per_user("samples", self.samples, n, min_value=0.0),
        "cycles_per_sample": per_user("cycles_per_sample", self.cycles_per_sample, n, min_value=0.0),
        "local_epochs": per_user("local_epochs", self.local_epochs, n, min_value=0.0),
        "payload_bits": as_scalar("payload_bits", self.payload_bits, min_value=0.0, strict_min=True),
        "bs_bandwidth_hz": per_bs("bs_bandwidth_hz", self.bs_bandwidth_hz, m, min_value=0.0),
        "bs_channels": channel_counts(self.bs_channels, m, n),
        "n_select": count("n_select", self.n_select),
        "quota": one_of("quota", self.quota, QUOTA_MODES),
        "noise_psd_w_per_hz": as_scalar("noise_psd_w_per_hz", self.noise_psd_w_per_hz, min_value=0.0,
                                        strict_min=True),
        "resource_block_hz": as_scalar("resource_block_hz", self.resource_block_hz, min_value=0.0, strict_min=True,
                                       allow_none=True),
        "geometry": geometry_from(self.geometry),
    }
    if out["n_select"] > n:
        raise ProblemDataError(f"`n_select` = {out['n_select']}; expected at most the number of users {n}")
    geo = out["geometry"]
    if geo is not None and (geo.user_position_m.shape[0] != n or geo.bs_position_m.shape[0] != m):
        raise ProblemDataError(f"`geometry` has {geo.user_position_m.shape[0]} users and {geo.bs_position_m.shape[0]} "
                               f"base stations; expected {n} and {m} to match `gain`")
    return out


def check_assignment(problem: Any, plan: Any) -> tuple[np.ndarray, np.ndarray]:
    """Shape and index checks of a plan's ``bs`` (raise :class:`PlanError`); returns ``(users, bs)``."""
    n, m = problem.gain.shape
    if plan.bs.shape != (n,):
        raise PlanError(f"`plan.bs` has {plan.bs.shape[0]} users; expected {n}")
    bad = (plan.bs < -1) | (plan.bs >= m)
    if bad.any():
        u = int(np.flatnonzero(bad)[0])
        raise PlanError(f"`plan.bs`[{u}] = {int(plan.bs[u])}; expected -1 (not selected) or a BS index below {m}")
    users = np.flatnonzero(plan.bs >= 0)
    return users, plan.bs[users]


def assignment_violations(problem: Any, plan: Any, latency: np.ndarray, tol: float) -> list[Violation]:
    """The constraints the two families share: bandwidth, channels, quota, windows, resource blocks."""
    users, bs = check_assignment(problem, plan)
    b = plan.bandwidth_hz
    m = problem.gain.shape[1]
    out: list[Violation] = []
    if not np.isfinite(b).all():
        u = int(np.flatnonzero(~np.isfinite(b))[0])
        out.append(Violation(f"bandwidth_hz[{u}]", float(b[u]), 0.0, "finite"))
        return out
    out += violations_ge("bandwidth_hz[{i}]", b, 0.0, tol)
    idle = np.flatnonzero((plan.bs < 0) & (b != 0))
    out += [Violation(f"bandwidth_hz[{u}] (user not selected)", float(b[u]), 0.0, "==") for u in idle]
    used = np.bincount(bs, weights=b[users], minlength=m)
    out += violations_le("bandwidth_used_hz[bs {i}]", used, problem.bs_bandwidth_hz, tol)
    out += violations_le("users[bs {i}]", np.bincount(bs, minlength=m), problem.bs_channels, 0.0)
    k = users.size
    out += violations_ge(["n_selected"], [k], [problem.n_select], 0.0)
    if problem.quota == "exact":
        out += violations_le(["n_selected"], [k], [problem.n_select], 0.0)
    lat = latency[users]
    inf = np.flatnonzero(~np.isfinite(lat))
    out += [Violation(f"latency_s[{users[i]}]", float(lat[i]), 0.0, "finite") for i in inf]
    fin = np.isfinite(lat)
    out += violations_le([f"latency_s[{u}] (window of bs {j})" for u, j in zip(users[fin], bs[fin], strict=True)],
                         lat[fin], problem.window_s[users[fin], bs[fin]], tol)
    if problem.resource_block_hz is not None:
        blocks = b / problem.resource_block_hz
        off = np.abs(blocks - np.round(blocks))
        for u in np.flatnonzero(off > RB_TOL * np.maximum(1.0, blocks)):
            out.append(Violation(f"resource_blocks[{u}]", float(blocks[u]), float(np.round(blocks[u])), "integer"))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class FLRound:
    """DAGSA's round-latency problem (see the module docstring for the math). Units are SI.

    Parameters
    ----------
    gain
        ``(N, M)`` linear channel gains :math:`g_{nm}` (path loss, shadowing, fading), >= 0.
    window_s
        ``(N, M)`` coverage windows :math:`w_{nm}` in seconds (0: not covered; ``inf``: never leaves).
    samples, cycles_per_sample, local_epochs
        ``(N,)`` (scalars broadcast) :math:`D_n`, :math:`\\gamma_n` (CPU cycles per sample), :math:`E_n`.
    cpu_hz
        ``(N,)`` CPU clocks :math:`f_n` (> 0).
    tx_power_w
        ``(N,)`` transmit powers :math:`p_n` (>= 0).
    payload_bits
        Upload size :math:`Z` (see :func:`~edgeplan.formulations.fl.common.payload_bits_of`).
    bs_bandwidth_hz
        ``(M,)`` uplink bandwidths :math:`B_m`.
    bs_channels
        ``(M,)`` most users per BS :math:`C_m` (orthogonal channels), or ``None`` for no limit.
    n_select, quota
        :math:`K` and whether exactly (``"exact"``) or at least (``"at_least"``) K users are selected.
    noise_psd_w_per_hz
        :math:`N_0` (default -174 dBm/Hz).
    resource_block_hz
        Resource-block width :math:`\\beta` (bandwidths must be whole blocks), or ``None`` for continuous bandwidth.
    geometry
        Optional :class:`~edgeplan.formulations.fl.common.FLGeometry` the gains and windows came from.
    name
        A label for tables.
    """

    gain: Any
    window_s: Any
    samples: Any
    cpu_hz: Any
    tx_power_w: Any
    payload_bits: float = AUTHOR_CODE_PAYLOAD_BITS
    bs_bandwidth_hz: Any = 1e6
    bs_channels: Any = None
    n_select: int = 1
    quota: str = "exact"
    cycles_per_sample: Any = 1e4
    local_epochs: Any = 5.0
    noise_psd_w_per_hz: float = 10 ** (-174 / 10) * 1e-3
    resource_block_hz: float | None = None
    geometry: FLGeometry | None = None
    name: str = "fl-round"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    sense: ClassVar[str] = "min"

    def __post_init__(self) -> None:
        values = common_fields(self)
        n = values["gain"].shape[0]
        values["cpu_hz"] = per_user("cpu_hz", self.cpu_hz, n, min_value=0.0, strict_min=True)
        values["tx_power_w"] = per_user("tx_power_w", self.tx_power_w, n, min_value=0.0)
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
    def compute_s(self) -> np.ndarray:
        """``(N,)`` :math:`t^{\\rm cmp}_n = E_n\\gamma_n D_n / f_n`."""
        if "compute_s" not in self._cache:
            self._cache["compute_s"] = self.local_epochs * self.cycles_per_sample * self.samples / self.cpu_hz
        return self._cache["compute_s"]

    @property
    def a_hz(self) -> np.ndarray:
        """``(N, M)`` :math:`a_{nm} = p_n g_{nm} / N_0` (the rate is :math:`b\\log_2(1 + a/b)`)."""
        if "a_hz" not in self._cache:
            self._cache["a_hz"] = self.tx_power_w[:, None] * self.gain / self.noise_psd_w_per_hz
        return self._cache["a_hz"]

    @property
    def n_blocks(self) -> np.ndarray:
        """``(M,)`` resource blocks per BS, :math:`\\lfloor B_m/\\beta\\rfloor` (needs ``resource_block_hz``)."""
        if self.resource_block_hz is None:
            raise UnsupportedProblemError("`resource_block_hz` is None: this round has continuous bandwidth and no "
                                          "resource blocks")
        return np.floor(self.bs_bandwidth_hz / self.resource_block_hz * (1 + 1e-12)).astype(np.int64)

    def latency_s(self, users: Any, bs: Any, bandwidth_hz: Any) -> np.ndarray:
        """Latency :math:`t^{\\rm cmp}_n + Z/r_{nm}(b)` of the pairs ``zip(users, bs)`` (broadcast)."""
        users = np.asarray(users, dtype=np.int64)
        r = rate_bps(bandwidth_hz, self.a_hz[users, np.asarray(bs, dtype=np.int64)])
        with np.errstate(divide="ignore"):
            return self.compute_s[users] + self.payload_bits / r

    def alone_latency_s(self) -> np.ndarray:
        """``(N, M)`` latency of each user holding the whole band of each BS (``inf`` outside its window)."""
        if "alone" not in self._cache:
            if self.resource_block_hz is None:
                band = self.bs_bandwidth_hz
            else:
                band = self.n_blocks * self.resource_block_hz
            with np.errstate(divide="ignore"):
                t = self.compute_s[:, None] + self.payload_bits / rate_bps(band[None, :], self.a_hz)
            self._cache["alone"] = np.where(t <= self.window_s, t, np.inf)
        return self._cache["alone"]

    def min_bandwidth_hz(self, round_s: float) -> np.ndarray:
        """``(N, M)`` :math:`\\check b_{nm}(T)`: least bandwidth finishing by :math:`\\min(T, w_{nm})` (``inf``: never).

        With resource blocks, the least whole number of blocks (times :math:`\\beta`), from the forward latencies
        of :meth:`rb_latency_s`.
        """
        if self.resource_block_hz is not None:
            lat = self.rb_latency_s()
            deadline = np.minimum(round_s, self.window_s)[..., None]
            k = np.argmax(lat <= deadline, axis=2) + 1
            ok = (lat <= deadline).any(axis=2)
            return np.where(ok, k * self.resource_block_hz, np.inf)
        deadline = np.minimum(round_s, self.window_s)
        with np.errstate(invalid="ignore", divide="ignore"):
            upload = deadline - self.compute_s[:, None]
            need = np.where(upload > 0, self.payload_bits / np.where(upload > 0, upload, 1.0), np.inf)
        return min_bandwidth_hz(need, self.a_hz)

    def rb_latency_s(self) -> np.ndarray:
        """``(N, M, R)`` latency with :math:`k = 1..R` blocks (:math:`R = \\max_m R_m`); ``inf`` past
        :math:`R_m` and where the latency exceeds the window (cached)."""
        if "rb_latency" not in self._cache:
            blocks = self.n_blocks
            k = np.arange(1, max(int(blocks.max()), 1) + 1)
            with np.errstate(divide="ignore"):
                lat = self.compute_s[:, None, None] + self.payload_bits / rate_bps(
                    k[None, None, :] * self.resource_block_hz, self.a_hz[..., None])
            lat = np.where((k[None, None, :] <= blocks[None, :, None]) & (lat <= self.window_s[..., None]), lat,
                           np.inf)
            lat.setflags(write=False)
            self._cache["rb_latency"] = lat
        return self._cache["rb_latency"]

    # -- the formulation protocol -------------------------------------------------------------------------------------
    def _plan(self, plan: Any) -> FLSchedule:
        if not isinstance(plan, FLSchedule):
            raise PlanError(f"`plan` is a {type(plan).__name__}; expected an FLSchedule")
        check_assignment(self, plan)
        return plan

    def evaluate(self, plan: FLSchedule) -> FLRoundMetrics:
        """Per-user compute, upload and total latency, per-BS load, and the round latency."""
        plan = self._plan(plan)
        users, bs = check_assignment(self, plan)
        n, m = self.gain.shape
        out = {k: np.full(n, np.nan) for k in ("latency_s", "compute_s", "upload_s", "rate_bps", "window_s")}
        if users.size:
            r = rate_bps(plan.bandwidth_hz[users], self.a_hz[users, bs])
            with np.errstate(divide="ignore"):
                up = self.payload_bits / r
            out["rate_bps"][users] = r
            out["upload_s"][users] = up
            out["compute_s"][users] = self.compute_s[users]
            out["latency_s"][users] = self.compute_s[users] + up
            out["window_s"][users] = self.window_s[users, bs]
        fun = float(np.max(out["latency_s"][users])) if users.size else 0.0
        return FLRoundMetrics(objective=fun, bandwidth_used_hz=np.bincount(bs, weights=plan.bandwidth_hz[users],
                                                                           minlength=m),
                              users_per_bs=np.bincount(bs, minlength=m), n_selected=int(users.size), **out)

    def objective(self, plan: FLSchedule) -> float:
        """The round latency :math:`\\max_n t_n` over selected users (0 when nobody is selected)."""
        return self.evaluate(plan).objective

    def check(self, plan: FLSchedule, tol: float = FEAS_TOL) -> list[Violation]:
        """Every broken constraint: bandwidth (>= 0, per-BS sums, zero for idle users, whole blocks), channels,
        the quota, and each selected user's finite latency within its coverage window."""
        metrics = self.evaluate(plan)
        return assignment_violations(self, plan, metrics.latency_s, tol)

    # -- MILPs --------------------------------------------------------------------------------------------------------
    def feasibility_milp(self, round_s: float) -> tuple[MILP, Callable[[np.ndarray], np.ndarray]]:
        r"""Can the round finish by ``round_s``? A MILP whose optimum is the most users (capped at K) that can.

        .. math::

            \max_a \sum_{(n,m)\in P} a_{nm}\quad\text{s.t.}\quad
            \sum_m a_{nm} \le 1\ \forall n,\quad
            \sum_n \frac{\check b_{nm}(T)}{B_m} a_{nm} \le 1\ \forall m,\quad
            \sum_n a_{nm} \le C_m\ \forall m,\quad
            \sum_{nm} a_{nm} \le K,

        over the pairs :math:`P = \{(n, m): \check b_{nm}(T) \le B_m\}` (the window is inside
        :math:`\check b`). Knapsack rows are scaled by :math:`B_m` (with resource blocks: block counts against
        :math:`R_m`). The decoder maps ``x`` to the ``(N,)`` BS of each user (``-1``: none).
        """
        T = as_scalar("round_s", round_s, min_value=0.0, allow_none=False) if np.isfinite(round_s) else np.inf
        need = self.min_bandwidth_hz(T)
        if self.resource_block_hz is None:
            usage, cap = need / self.bs_bandwidth_hz, np.ones(self.n_bs)
        else:
            usage, cap = np.round(need / self.resource_block_hz), self.n_blocks.astype(float)
        users, bs = np.nonzero(usage <= cap[None, :])
        p = users.size
        n, m = self.gain.shape
        # rows: [users (N) | knapsacks (M) | channels (M) | quota (1)]; one column per allowed pair
        rows = np.concatenate([users, n + bs, n + m + bs, np.full(p, n + 2 * m)])
        cols = np.tile(np.arange(p), 4)
        vals = np.concatenate([np.ones(p), usage[users, bs], np.ones(2 * p)])
        A = sp.coo_array((vals, (rows, cols)), shape=(n + 2 * m + 1, p))
        upper = np.concatenate([np.ones(n), cap, self.bs_channels.astype(float), [float(self.n_select)]])
        milp = MILP(c=np.ones(p), A=A, row_upper=upper, col_upper=1.0, integrality=np.ones(p), sense="max",
                    name=f"{self.name}-feasible-T")

        def decode(x: np.ndarray) -> np.ndarray:
            out = np.full(n, -1, dtype=np.int64)
            on = np.asarray(x) > 0.5
            out[users[on]] = bs[on]
            return out

        return milp, decode

    def rb_triples(self, *, resource_block_hz: float | None = None,
                   relaxed: bool = False) -> dict[str, np.ndarray]:
        """The (user, BS, block count) triples of the resource-block model and their latencies and usage.

        ``resource_block_hz`` overrides the problem's width (for a continuous problem). With ``relaxed``, the
        triple :math:`k` costs :math:`k - 1` blocks: a block count that is one too high in latency and one too
        low in usage, so that any continuous bandwidth in :math:`((k-1)\\beta, k\\beta]` is covered and the
        model's optimum is a lower bound on the continuous optimum.
        """
        rb = self.resource_block_hz if resource_block_hz is None else resource_block_hz
        if rb is None:
            raise UnsupportedProblemError(
                "the resource-block MILP needs a block width: this FLRound has continuous bandwidth "
                "(`resource_block_hz` = None); pass options={'resource_block_hz': ...} to 'fl-rb-milp' or "
                "'fl-cpsat', or solve it exactly with 'fl-bisect'")
        rb = as_scalar("resource_block_hz", rb, min_value=0.0, strict_min=True)
        blocks = np.floor(self.bs_bandwidth_hz / rb * (1 + 1e-12)).astype(np.int64) + (1 if relaxed else 0)
        k = np.arange(1, max(int(blocks.max()), 1) + 1)
        with np.errstate(divide="ignore"):
            lat = self.compute_s[:, None, None] + self.payload_bits / rate_bps(k * rb, self.a_hz[..., None])
        ok = (k[None, None, :] <= blocks[None, :, None]) & np.isfinite(lat) & (lat <= self.window_s[..., None])
        users, bs, kk = np.nonzero(ok)
        return {"user": users, "bs": bs, "blocks": kk + 1, "usage": kk + (0 if relaxed else 1),
                "latency_s": lat[users, bs, kk], "capacity": blocks - (1 if relaxed else 0), "rb_hz": np.float64(rb)}

    def rb_milp(self, *, resource_block_hz: float | None = None, relaxed: bool = False,
                ) -> tuple[MILP, Callable[[np.ndarray], FLSchedule]]:
        r"""The resource-block model as a MILP over triples :math:`(n, m, k)` (:meth:`rb_triples`).

        .. math::

            \min_{x, T}\ T\quad\text{s.t.}\quad
            & \textstyle\sum_{m,k} x_{nmk} \le 1\ \forall n,\qquad \sum_{nmk} x_{nmk} = K\ (\ge K),\\
            & \textstyle\sum_{n,k} k\,x_{nmk} \le R_m,\qquad \sum_{n,k} x_{nmk} \le C_m\ \forall m,\\
            & \textstyle\sum_{m,k} t_{nmk}\,x_{nmk} - T \le 0\ \forall n,\qquad x \in \{0,1\},

        with triples whose latency :math:`t_{nmk}` exceeds the window :math:`w_{nm}` (or is infinite) left out.
        The last column is :math:`T / u`, in units of :math:`u` = :func:`~edgeplan.formulations.milp.time_unit`
        of the latencies (its cost is :math:`u`; the epigraph rows are divided by :math:`u`). The decoder gives the
        schedule with :math:`b_n = k\beta`.
        """
        tri = self.rb_triples(resource_block_hz=resource_block_hz, relaxed=relaxed)
        u, b, lat, usage = tri["user"], tri["bs"], tri["latency_s"], tri["usage"]
        p = u.size
        n, m = self.gain.shape
        t_col = p
        # rows: [one per user (N) | quota (1) | blocks (M) | channels (M) | epigraph (N)]
        rows = np.concatenate([u, np.full(p, n), n + 1 + b, n + 1 + m + b, n + 1 + 2 * m + u,
                               n + 1 + 2 * m + np.arange(n)])
        cols = np.concatenate([np.tile(np.arange(p), 5), np.full(n, t_col)])
        unit = time_unit(lat)           # T in units of a data-derived time (see time_unit), rows likewise
        vals = np.concatenate([np.ones(p), np.ones(p), usage.astype(float), np.ones(p), lat / unit, -np.ones(n)])
        A = sp.coo_array((vals, (rows, cols)), shape=(n + 1 + 2 * m + n, p + 1))
        k_lo = float(self.n_select)
        k_hi = k_lo if self.quota == "exact" else np.inf
        lower = np.concatenate([np.full(n, -np.inf), [k_lo], np.full(2 * m + n, -np.inf)])
        upper = np.concatenate([np.ones(n), [k_hi], tri["capacity"].astype(float), self.bs_channels.astype(float),
                                np.zeros(n)])
        c = np.zeros(p + 1)
        c[t_col] = unit
        milp = MILP(c=c, A=A, row_lower=lower, row_upper=upper, col_upper=np.append(np.ones(p), np.inf),
                    integrality=np.append(np.ones(p), 0.0), name=f"{self.name}-rb")
        rb = float(tri["rb_hz"])

        def decode(x: np.ndarray) -> FLSchedule:
            on = np.asarray(x)[:p] > 0.5
            bs_of = np.full(n, -1, dtype=np.int64)
            band = np.zeros(n)
            bs_of[u[on]] = b[on]
            band[u[on]] = tri["blocks"][on] * rb
            return FLSchedule(bs_of, band)

        return milp, decode

    def to_milp(self) -> tuple[MILP, Callable[[np.ndarray], FLSchedule]]:
        """The exact MILP of a resource-block round (:meth:`rb_milp`); continuous bandwidth has none and raises
        :class:`~edgeplan.errors.UnsupportedProblemError` (use ``"fl-bisect"``)."""
        if self.resource_block_hz is None:
            raise UnsupportedProblemError(
                "an FLRound with continuous bandwidth (`resource_block_hz` = None) has no exact MILP: the rate is "
                "nonlinear in the bandwidth; solve it with 'fl-bisect' (exact), or set `resource_block_hz`")
        return self.rb_milp()

    def __repr__(self) -> str:
        rb = "" if self.resource_block_hz is None else f", resource_block_hz={self.resource_block_hz:.4g}"
        return (f"FLRound(name={self.name!r}, n_users={self.n_users}, n_bs={self.n_bs}, n_select={self.n_select}, "
                f"quota={self.quota!r}{rb})")


__all__ = ["FLRound", "FLRoundMetrics", "FLSchedule", "assignment_violations", "check_assignment", "common_fields",
           ]
