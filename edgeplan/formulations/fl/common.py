r"""Pieces shared by the federated-learning round families (:mod:`.fl_round`, :mod:`.fl_energy`).

Rate kernels
------------
With :math:`a = p g / N_0` (hertz: received power over noise density) the power-based uplink rate is
:math:`r(b) = b \log_2(1 + a/b)`, increasing and concave in the bandwidth :math:`b`, with supremum
:math:`a/\ln 2`. Its inverse, the smallest bandwidth carrying rate :math:`R`, is found from
:math:`c = R\ln 2 / a < 1`: with :math:`s = \ln(1 + a/b)` the equation is :math:`c(e^s - 1) = s`, convex in
:math:`s`, solved by Newton's method from :math:`s_0 = \min(L + \ln(2(L+1)),\ 2(1-c)/c)`, :math:`L = -\ln c`:
both are right of the root (the second because :math:`e^s - 1 \ge s + s^2/2`), so the iterates decrease
monotonically to it, in about 6 steps; then :math:`b = a/(e^s - 1)`.
:func:`min_bandwidth_hz` is the same quantity as :func:`edgeplan.profiles.links.min_bandwidth_power_hz`
(Lambert-W closed form), without its input validation: it costs a few microseconds on small arrays, which
matters inside the bisections of the FL solvers (the tests cross-check the two).

Geometry
--------
:class:`FLGeometry` keeps the positions and velocities a round was built from (for exporters and the
multi-round simulation); the problems themselves use only the per-(user, BS) channel gains and coverage
windows derived from it by :func:`coverage_windows_s`:

* ``"cell"`` (DAGSA author code): a user may use only the BS of its Voronoi cell (nearest BS), until it
  leaves the cell moving straight (:func:`edgeplan.profiles.mobility.cell_exit_time_s`);
* ``"disc"``: a user may use every BS within ``cell_radius_m``, each until it leaves that disc
  (:func:`disc_exit_time_s`), so cells overlap and the BS assignment is a real choice.

A window of 0 means "not covered"; ``inf`` means "never leaves" (speed 0). ``window_cap_s`` caps every
window (the author code caps it at the round length of 1 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar, int_vector, one_of
from edgeplan.errors import PlanError, ProblemDataError
from edgeplan.profiles.links import WirelessChannel
from edgeplan.profiles.loading import load_profile
from edgeplan.profiles.mobility import cell_exit_time_s, distances_m, grid_layout, quadrant_layout
from edgeplan.profiles.model import ModelProfile

LN2 = float(np.log(2.0))
#: Newton iterations of :func:`min_bandwidth_hz` (it converges to machine precision in about 6).
MAX_NEWTON = 40
#: Relative step at which :func:`min_bandwidth_hz` stops (rounding noise is about 5e-15).
NEWTON_RTOL = 1e-14
#: FMNIST CNN of the DAGSA author code: 21,840 parameters x 16 bit.
AUTHOR_CODE_PAYLOAD_BITS = 349_440.0
COVERAGE_MODES = ("cell", "disc")
QUOTA_MODES = ("exact", "at_least")


# -- rate kernels -----------------------------------------------------------------------------------------------
def rate_bps(bandwidth_hz: Any, a_hz: Any) -> np.ndarray:
    """:math:`b\\log_2(1 + a/b)` in bit/s (0 at :math:`b = 0`, :math:`a/\\ln 2` at :math:`b = \\infty`)."""
    b, a = np.broadcast_arrays(np.asarray(bandwidth_hz, dtype=float), np.asarray(a_hz, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = b * np.log1p(a / b) / LN2
    r = np.where(np.isinf(b), a / LN2, r)
    return np.where(b > 0, r, 0.0)


def min_bandwidth_hz(rate_needed_bps: Any, a_hz: Any) -> np.ndarray:
    """Smallest :math:`b` with :math:`b\\log_2(1 + a/b) \\ge R` (vectorized; see the module docstring).

    Returns 0 where :math:`R \\le 0` and ``inf`` where :math:`R \\ge a/\\ln 2` (unreachable) or :math:`a = 0`.
    """
    R, a = np.broadcast_arrays(np.asarray(rate_needed_bps, dtype=float), np.asarray(a_hz, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        c = np.where(a > 0, R * LN2 / np.where(a > 0, a, 1.0), np.inf)
    ok = (c > 0) & (c < 1)
    out = np.where(R <= 0, 0.0, np.inf)
    if ok.any():
        cc = c[ok]
        L = -np.log(cc)
        # two points right of the root: L + ln(2(L + 1)) (tight for small c) and 2(1 - c)/c (for c near 1)
        s = np.minimum(L + np.log(2.0 * (L + 1.0)), 2.0 * (1.0 - cc) / cc)
        em1 = np.expm1(s)
        for _ in range(MAX_NEWTON):
            step = (cc * em1 - s) / (cc * em1 + (cc - 1.0))
            s -= step
            em1 = np.expm1(s)
            if (step <= NEWTON_RTOL * s).all():  # exact steps are positive: a negative one is rounding noise
                break
        out[ok] = a[ok] / em1
    return out


def rate_slope(bandwidth_hz: Any, a_hz: Any) -> np.ndarray:
    """:math:`dr/db = \\log_2(1 + x) - x/((1 + x)\\ln 2)` with :math:`x = a/b` (positive, decreasing in b)."""
    b, a = np.broadcast_arrays(np.asarray(bandwidth_hz, dtype=float), np.asarray(a_hz, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = a / b
        return (np.log1p(x) - x / (1.0 + x)) / LN2


# -- validation helpers ------------------------------------------------------------------------------------------
def per_user(name: str, value: Any, n: int, **kw: Any) -> np.ndarray:
    """A ``(n,)`` float array from a scalar or an array (validated by :func:`as_array`)."""
    if np.ndim(value) == 0 and isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool):
        value = np.full(n, float(value))
    return as_array(name, value, shape=(n,), **kw)


def is_range(value: Any, n: int) -> bool:
    """Whether ``value`` is a ``(low, high)`` range to draw from: a tuple, or a 2-element list when it cannot be a
    per-user array (``n != 2``; scenario files have no tuples)."""
    return isinstance(value, tuple) or (isinstance(value, list) and len(value) == 2 and n != 2)


def draw_per_user(rng: np.random.Generator, name: str, value: Any, n: int, *, integer: bool = False) -> np.ndarray:
    """``(n,)`` values: uniform draws in a ``(low, high)`` range (:func:`is_range`; integers inclusive), else a
    scalar or an ``(n,)`` array."""
    if is_range(value, n):
        if len(value) != 2:
            raise ProblemDataError(f"`{name}` = {value!r}; expected a (low, high) range")
        lo, hi = (float(v) for v in value)
        if not lo <= hi:
            raise ProblemDataError(f"`{name}` = {value!r}; expected low <= high")
        return (rng.integers(int(lo), int(hi) + 1, size=n).astype(float) if integer
                else rng.uniform(lo, hi, size=n))
    arr = np.asarray(value, dtype=float)
    if arr.ndim not in (0, 1) or (arr.ndim == 1 and arr.shape[0] != n):
        raise ProblemDataError(f"`{name}` has shape {arr.shape}; expected a number, ({n},) values or a (low, high) "
                               "range")
    return np.broadcast_to(arr, (n,)).copy()


def per_bs(name: str, value: Any, m: int, **kw: Any) -> np.ndarray:
    """A ``(m,)`` float array from a scalar or an array."""
    return per_user(name, value, m, **kw)


def channel_counts(value: Any, m: int, n: int) -> np.ndarray:
    """``bs_channels`` as ``(m,)`` int64 (``None``: unlimited, stored as ``n``)."""
    if value is None:
        out = np.full(m, n, dtype=np.int64)
    else:
        arr = per_bs("bs_channels", value, m, min_value=0.0)
        if np.any(arr != np.round(arr)):
            i = int(np.flatnonzero(arr != np.round(arr))[0])
            raise ProblemDataError(f"`bs_channels`[{i}] = {float(arr[i])!r}; expected a whole number of channels")
        out = np.minimum(arr, n).astype(np.int64)
    out.setflags(write=False)
    return out


def count(name: str, value: Any, *, minimum: int = 0) -> int:
    """A non-negative integer argument."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ProblemDataError(f"`{name}` = {value!r}; expected an integer >= {minimum}")
    return int(value)


def int_indices(name: str, value: Any, n: int) -> np.ndarray:
    """A plan's ``(n,)`` integer index array (BS per user, -1 for none)."""
    return int_vector(name, value, n, per="one entry per user", expected="integers (-1: not selected)")


def plan_vector(name: str, value: Any, n: int) -> np.ndarray:
    """A plan's ``(n,)`` float array (read-only)."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise PlanError(f"`{name}` = {value!r:.60} is not numeric; expected ({n},) numbers") from exc
    if arr.shape != (n,):
        raise PlanError(f"`{name}` has shape {arr.shape}; expected ({n},), one entry per user")
    arr.setflags(write=False)
    return arr


# -- geometry ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class FLGeometry:
    """Where the users and base stations of a round are (metres) and how the users move (m/s)."""

    user_position_m: np.ndarray
    user_velocity_mps: np.ndarray
    bs_position_m: np.ndarray

    def __post_init__(self) -> None:
        p = as_array("user_position_m", self.user_position_m, shape=(None, 2))
        v = as_array("user_velocity_mps", self.user_velocity_mps, shape=(p.shape[0], 2))
        b = as_array("bs_position_m", self.bs_position_m, shape=(None, 2))
        object.__setattr__(self, "user_position_m", p)
        object.__setattr__(self, "user_velocity_mps", v)
        object.__setattr__(self, "bs_position_m", b)

    @property
    def distance_m(self) -> np.ndarray:
        """``(N, M)`` user-BS distances at the start of the round."""
        return distances_m(self.user_position_m, self.bs_position_m)

    def nearest_bs(self) -> np.ndarray:
        """``(N,)`` index of each user's nearest BS."""
        return np.argmin(self.distance_m, axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"user_position_m": self.user_position_m.tolist(), "user_velocity_mps": self.user_velocity_mps.tolist(),
                "bs_position_m": self.bs_position_m.tolist()}


def disc_exit_time_s(position_m: Any, velocity_mps: Any, bs_position_m: Any, radius_m: float) -> np.ndarray:
    """``(N, M)`` time until each user leaves the disc of ``radius_m`` around each BS moving straight.

    0 when the user starts outside the disc, ``inf`` when it does not move.
    """
    p = np.asarray(position_m, dtype=float)[:, None, :]
    v = np.asarray(velocity_mps, dtype=float)[:, None, :]
    rel = p - np.asarray(bs_position_m, dtype=float)[None, :, :]
    aa = np.broadcast_to((v**2).sum(-1), rel.shape[:2])
    bb = 2.0 * (v * rel).sum(-1)
    cc = (rel**2).sum(-1) - radius_m**2
    disc = np.maximum(bb * bb - 4.0 * aa * cc, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(aa > 0, (-bb + np.sqrt(disc)) / (2.0 * np.where(aa > 0, aa, 1.0)), np.inf)
    return np.where(cc > 0, 0.0, np.maximum(t, 0.0))


def coverage_windows_s(geometry: FLGeometry, coverage: str = "cell", *, cell_radius_m: float | None = None,
                       window_cap_s: float | None = None) -> np.ndarray:
    """``(N, M)`` coverage windows (see the module docstring); 0 where a user cannot use a BS."""
    one_of("coverage", coverage, COVERAGE_MODES)
    pos, vel, bs = geometry.user_position_m, geometry.user_velocity_mps, geometry.bs_position_m
    n, m = pos.shape[0], bs.shape[0]
    if coverage == "cell":
        near = geometry.nearest_bs()
        exit_t = cell_exit_time_s(pos, vel, bs, near, cell_radius_m=cell_radius_m)
        win = np.zeros((n, m))
        win[np.arange(n), near] = exit_t
    else:
        if cell_radius_m is None:
            raise ProblemDataError("`cell_radius_m` = None with `coverage` = 'disc'; expected a radius in metres")
        r = as_scalar("cell_radius_m", cell_radius_m, min_value=0.0, strict_min=True)
        win = disc_exit_time_s(pos, vel, bs, r)
    if window_cap_s is not None:
        cap = as_scalar("window_cap_s", window_cap_s, min_value=0.0, strict_min=True)
        win = np.minimum(win, cap)
    return win


def bs_layout(n_bs: int, side_m: float) -> tuple[Any, np.ndarray]:
    """The area and BS positions: DAGSA's 4 quadrant BSs for ``n_bs = 4``, else a near-square grid."""
    if n_bs == 4:
        return quadrant_layout(side_m / 2.0)
    area, _ = quadrant_layout(side_m / 2.0)
    nx = int(np.ceil(np.sqrt(n_bs)))
    ny = int(np.ceil(n_bs / nx))
    return area, grid_layout(area, nx, ny)[:n_bs]


def payload_bits_of(model: ModelProfile | str | Path, dtype: str = "fp16") -> float:
    """Upload size of a model's parameters in ``dtype``: :math:`8 \\sum_v n_v\\,\\mathrm{bytes}(d)` bits."""
    prof = model if isinstance(model, ModelProfile) else ModelProfile.load(model)
    return float(8.0 * prof.param_bytes(dtype).sum())


def draw_round(rng: np.random.Generator, n_users: int, n_bs: int, *, side_m: float, speed_mps: Any,
               coverage: str, cell_radius_m: float | None, window_cap_s: float | None,
               channel: WirelessChannel, gain_at: str = "start",
               positions_m: Any = None, velocities_mps: Any = None) -> tuple[FLGeometry, np.ndarray, np.ndarray]:
    """Geometry, ``(N, M)`` gains and ``(N, M)`` windows of one round (uniform users, random headings).

    ``gain_at`` = ``"start"`` uses the distance at the start of the round; ``"worst"`` the largest distance
    over the (finite) coverage window, the conservative choice of the DAGSA note (C.1). Fading is drawn once.
    """
    one_of("gain_at", gain_at, ("start", "worst"))
    area, bs = bs_layout(n_bs, side_m)
    pos = area.uniform(n_users, seed=rng) if positions_m is None else np.asarray(positions_m, dtype=float)
    if velocities_mps is None:
        speed = draw_per_user(rng, "speed_mps", speed_mps, n_users)
        theta = rng.uniform(0.0, 2.0 * np.pi, size=n_users)
        vel = speed[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    else:
        vel = np.asarray(velocities_mps, dtype=float)
    geo = FLGeometry(pos, vel, bs)
    win = coverage_windows_s(geo, coverage, cell_radius_m=cell_radius_m, window_cap_s=window_cap_s)
    dist = geo.distance_m
    if gain_at == "worst":
        horizon = np.where(np.isfinite(win), win, 0.0)
        end = pos[:, None, :] + vel[:, None, :] * horizon[..., None]
        dist = np.maximum(dist, np.linalg.norm(end - bs[None, :, :], axis=-1))
    gain = channel.gain(dist, seed=rng)
    return geo, np.maximum(gain, 1e-300), win


def geometry_from(value: Any) -> FLGeometry | None:
    """``None``, an :class:`FLGeometry`, or its mapping form."""
    if value is None or isinstance(value, FLGeometry):
        return value
    if isinstance(value, Mapping):
        return FLGeometry(value["user_position_m"], value["user_velocity_mps"], value["bs_position_m"])
    raise ProblemDataError(f"`geometry` is a {type(value).__name__}; expected an FLGeometry or None")


# -- instance pieces ------------------------------------------------------------------------------------------------
def channel_profile(channel: str | WirelessChannel) -> WirelessChannel:
    """A :class:`~edgeplan.profiles.links.WirelessChannel` from a preset name, a file, or itself."""
    prof = channel if isinstance(channel, WirelessChannel) else load_profile(channel)
    if not isinstance(prof, WirelessChannel):
        raise ProblemDataError(f"`channel` = {channel!r} names a {type(prof).__name__}; expected a channel profile")
    return prof


def user_compute(rng: np.random.Generator, n: int, *, samples: Any, cycles_per_sample: float, model: Any,
                 device: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(samples, cycles per sample)``: ``samples`` is an int, an ``(N,)`` array or a ``(low, high)`` range;
    with a model and a device preset, cycles per sample are the device's cycles for the model's forward and
    backward FLOPs per sample."""
    d = draw_per_user(rng, "samples", samples, n, integer=True)
    gamma = np.full(n, float(cycles_per_sample))
    if model is not None and device is not None:
        from edgeplan.profiles.loading import load_device
        from edgeplan.profiles.model import ModelProfile

        prof = model if isinstance(model, ModelProfile) else ModelProfile.load(model)
        dev = device if not isinstance(device, str) else load_device(device)
        gamma[:] = float(dev.cycles(prof.fwd_flops.sum() + prof.bwd_flops.sum()))
    return d, gamma


__all__ = ["AUTHOR_CODE_PAYLOAD_BITS", "COVERAGE_MODES", "LN2", "QUOTA_MODES", "FLGeometry", "bs_layout",
           "channel_counts", "channel_profile", "count", "coverage_windows_s", "disc_exit_time_s", "draw_per_user",
           "draw_round", "geometry_from", "int_indices", "is_range", "min_bandwidth_hz", "payload_bits_of", "per_bs",
           "per_user", "plan_vector", "rate_bps", "rate_slope", "user_compute"]
