r"""Wired links, wireless channels and the rate primitives of edge-network models.

Channel
-------
The large-scale gain of a link at distance :math:`d` is :math:`g = 10^{-(PL(d) + X)/10}\,|h|^2` with

* path loss :math:`PL(d)` in dB: the 3GPP macro model :math:`128.1 + 37.6\log_{10}(d/\mathrm{km})`
  (TR 36.814 Table A.2.1.1-2, 2 GHz), or 3GPP TR 38.901 Table 7.4.1-1 UMa / UMi-Street-Canyon, LOS or NLOS;
* log-normal shadowing :math:`X \sim \mathcal N(0, \sigma_{SF}^2)` dB;
* Rayleigh small-scale fading :math:`|h|^2 \sim \mathrm{Exp}(1)` (unit mean power).

The noise PSD is :math:`N_0 = -174\ \mathrm{dBm/Hz} + NF` (thermal noise at 290 K plus a noise figure).

Rates (vectorized, broadcasting)
--------------------------------
* PSD-based (SLIDE): spectral efficiency :math:`R = \log_2(1 + P g/N_0)` bit/s/Hz for a transmit PSD
  :math:`P` (W/Hz); rate :math:`b R` is linear in the bandwidth :math:`b`.
* Power-based (FL papers, CollaPipe): :math:`r(b) = b\log_2\!\big(1 + \tfrac{p g}{N_0 b}\big)` for a total
  power :math:`p` (W); increasing and concave in :math:`b`, with :math:`r(b) \to p g/(N_0\ln 2)` as
  :math:`b\to\infty`.

Inverses: the minimum bandwidth that carries :math:`Z` bits within :math:`T` seconds is
:math:`Z/(T R)` for the PSD model, and for the power model (closed form through the lower branch of
Lambert's W, :math:`a = p g/N_0`, :math:`c = (Z/T)\ln 2 / a`)

.. math::  b^\star = \frac{a}{u - 1},\qquad u = -\frac{W_{-1}(-c\,e^{-c})}{c},

finite only for :math:`c < 1`, i.e. :math:`Z/T < p g/(N_0 \ln 2)`; unreachable deadlines give ``inf``.
The minimum power for a given bandwidth is :math:`p^\star = (2^{Z/(T b)} - 1) N_0 b / g`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgeplan._checks import as_scalar, one_of
from edgeplan.errors import ProfileError
from edgeplan.profiles import _toml
from edgeplan.profiles._util import Seed, floats, rng_from

LN2 = float(np.log(2.0))
SPEED_OF_LIGHT_M_PER_S = 299_792_458.0
THERMAL_NOISE_DBM_PER_HZ = -174.0
"""Thermal noise PSD at 290 K, :math:`10\\log_{10}(k_B T / 1\\,\\mathrm{mW}) \\approx -174` dBm/Hz."""

PATH_LOSS_MODELS = ("macro", "uma", "umi")
_ROUND_UP = 1e-12   # inverses round up by this relative amount so that the returned resource is feasible

# --------------------------------------------------------------------------------------------------------------
# unit conversions


def db_to_linear(db: Any) -> np.ndarray:
    """:math:`10^{x/10}`."""
    return 10.0 ** (np.asarray(db, dtype=float) / 10.0)


def linear_to_db(x: Any) -> np.ndarray:
    """:math:`10\\log_{10} x` (``-inf`` at 0)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(x, dtype=float))


def dbm_to_watts(dbm: Any) -> np.ndarray:
    """:math:`10^{(x-30)/10}` W."""
    return 10.0 ** ((np.asarray(dbm, dtype=float) - 30.0) / 10.0)


def watts_to_dbm(watts: Any) -> np.ndarray:
    """:math:`10\\log_{10}(p) + 30` dBm."""
    return linear_to_db(watts) + 30.0


def noise_psd_w_per_hz(noise_psd_dbm_per_hz: float = THERMAL_NOISE_DBM_PER_HZ,
                       noise_figure_db: float = 0.0) -> float:
    """Noise PSD :math:`N_0` in W/Hz: thermal PSD (dBm/Hz) plus the receiver noise figure (dB)."""
    as_scalar("noise_psd_dbm_per_hz", noise_psd_dbm_per_hz, error=ProfileError)
    as_scalar("noise_figure_db", noise_figure_db, min_value=0.0, error=ProfileError)
    return float(dbm_to_watts(noise_psd_dbm_per_hz + noise_figure_db))


def noise_power_w(bandwidth_hz: Any, noise_psd_dbm_per_hz: float = THERMAL_NOISE_DBM_PER_HZ,
                  noise_figure_db: float = 0.0) -> np.ndarray:
    """Noise power :math:`N_0 b` in watts over ``bandwidth_hz``."""
    b = floats("bandwidth_hz", bandwidth_hz, min_value=0.0)
    return noise_psd_w_per_hz(noise_psd_dbm_per_hz, noise_figure_db) * b


# --------------------------------------------------------------------------------------------------------------
# path loss


def path_loss_macro_db(distance_m: Any, *, min_distance_m: float = 10.0) -> np.ndarray:
    """3GPP macro path loss :math:`128.1 + 37.6\\log_{10}(d/1000)` dB (TR 36.814 Table A.2.1.1-2, 2 GHz).

    Distances below ``min_distance_m`` are clamped to it (the formula is not meant for the near field).
    """
    d = floats("distance_m", distance_m, min_value=0.0)
    return 128.1 + 37.6 * np.log10(np.maximum(d, min_distance_m) / 1000.0)


def los_probability(distance_2d_m: Any, scenario: Literal["uma", "umi"] = "uma", *,
                    h_ut_m: float = 1.5) -> np.ndarray:
    r"""LOS probability of 3GPP TR 38.901 Table 7.4.2-1.

    UMi-Street Canyon: :math:`1` for :math:`d \le 18` m, else :math:`18/d + e^{-d/36}(1 - 18/d)`.
    UMa: :math:`1` for :math:`d \le 18` m, else
    :math:`[18/d + e^{-d/63}(1 - 18/d)]\,[1 + C'(h_{UT})\tfrac54 (d/100)^3 e^{-d/150}]` with
    :math:`C' = 0` for :math:`h_{UT} \le 13` m and :math:`((h_{UT}-13)/10)^{1.5}` up to 23 m.
    """
    one_of("scenario", scenario, ("uma", "umi"), error=ProfileError)
    d = floats("distance_2d_m", distance_2d_m, min_value=0.0)
    dd = np.maximum(d, 18.0)
    if scenario == "umi":
        p = 18.0 / dd + np.exp(-dd / 36.0) * (1.0 - 18.0 / dd)
    else:
        as_scalar("h_ut_m", h_ut_m, min_value=1.0, max_value=23.0, error=ProfileError)
        c = 0.0 if h_ut_m <= 13.0 else ((h_ut_m - 13.0) / 10.0) ** 1.5
        p = (18.0 / dd + np.exp(-dd / 63.0) * (1.0 - 18.0 / dd)) * (
            1.0 + c * 1.25 * (dd / 100.0) ** 3 * np.exp(-dd / 150.0))
    return np.where(d <= 18.0, 1.0, np.minimum(p, 1.0))


_SCENARIO = {
    # scenario: (default h_BS, LOS intercept, LOS far slope correction, sigma LOS, sigma NLOS)
    "uma": (25.0, 28.0, 9.0, 4.0, 6.0),
    "umi": (10.0, 32.4, 9.5, 4.0, 7.82),
}


def path_loss_3gpp_db(distance_2d_m: Any, *, scenario: Literal["uma", "umi"] = "uma", los: Any = False,
                      carrier_hz: float = 3.5e9, h_bs_m: float | None = None, h_ut_m: float = 1.5) -> np.ndarray:
    r"""3GPP TR 38.901 (V17) Table 7.4.1-1 path loss in dB, UMa or UMi-Street Canyon.

    With :math:`f_c` in GHz, :math:`d_{3D} = \sqrt{d_{2D}^2 + (h_{BS}-h_{UT})^2}` and breakpoint
    :math:`d'_{BP} = 4 h'_{BS} h'_{UT} f_c/c` (:math:`h' = h - 1` m, effective environment height 1 m):

    * UMa LOS: :math:`PL_1 = 28 + 22\log_{10} d_{3D} + 20\log_{10} f_c` up to :math:`d'_{BP}`, then
      :math:`PL_2 = 28 + 40\log_{10} d_{3D} + 20\log_{10} f_c - 9\log_{10}(d'^2_{BP} + (h_{BS}-h_{UT})^2)`;
      NLOS: :math:`\max(PL_{LOS},\ 13.54 + 39.08\log_{10} d_{3D} + 20\log_{10} f_c - 0.6(h_{UT}-1.5))`.
    * UMi LOS: :math:`PL_1 = 32.4 + 21\log_{10} d_{3D} + 20\log_{10} f_c`, then
      :math:`PL_2 = 32.4 + 40\log_{10} d_{3D} + 20\log_{10} f_c - 9.5\log_{10}(d'^2_{BP} + (h_{BS}-h_{UT})^2)`;
      NLOS: :math:`\max(PL_{LOS},\ 22.4 + 35.3\log_{10} d_{3D} + 21.3\log_{10} f_c - 0.3(h_{UT}-1.5))`.

    Defaults :math:`h_{BS}` = 25 m (UMa) / 10 m (UMi). ``los`` is a bool or a boolean array broadcast with
    the distances (draw it with :func:`draw_los`). 2-D distances below 10 m are clamped to 10 m; beyond 5 km
    the formulas are extrapolated.
    """
    one_of("scenario", scenario, ("uma", "umi"), error=ProfileError)
    h_bs_default, a, bp_corr, _, _ = _SCENARIO[scenario]
    h_bs = h_bs_default if h_bs_m is None else as_scalar("h_bs_m", h_bs_m, min_value=1.0, strict_min=True,
                                                         error=ProfileError)
    as_scalar("h_ut_m", h_ut_m, min_value=1.0, strict_min=True, max_value=22.5, error=ProfileError)
    fc_hz = as_scalar("carrier_hz", carrier_hz, min_value=0.5e9, max_value=100e9, error=ProfileError)
    d2 = np.maximum(floats("distance_2d_m", distance_2d_m, min_value=0.0), 10.0)
    los_arr = np.asarray(los, dtype=bool)
    fc = fc_hz / 1e9
    d3 = np.sqrt(d2**2 + (h_bs - h_ut_m) ** 2)
    d_bp = 4.0 * (h_bs - 1.0) * (h_ut_m - 1.0) * fc_hz / SPEED_OF_LIGHT_M_PER_S
    if scenario == "uma":
        pl1 = a + 22.0 * np.log10(d3) + 20.0 * np.log10(fc)
    else:
        pl1 = a + 21.0 * np.log10(d3) + 20.0 * np.log10(fc)
    pl2 = a + 40.0 * np.log10(d3) + 20.0 * np.log10(fc) - bp_corr * np.log10(d_bp**2 + (h_bs - h_ut_m) ** 2)
    pl_los = np.where(d2 <= d_bp, pl1, pl2)
    if scenario == "uma":
        pl_nlos = 13.54 + 39.08 * np.log10(d3) + 20.0 * np.log10(fc) - 0.6 * (h_ut_m - 1.5)
    else:
        pl_nlos = 22.4 + 35.3 * np.log10(d3) + 21.3 * np.log10(fc) - 0.3 * (h_ut_m - 1.5)
    return np.where(los_arr, pl_los, np.maximum(pl_los, pl_nlos))


def shadowing_std_db(model: str, los: Any = False) -> np.ndarray:
    """Shadow-fading std in dB: macro 8; TR 38.901 UMa 4 (LOS) / 6 (NLOS); UMi 4 / 7.82."""
    one_of("model", model, PATH_LOSS_MODELS, error=ProfileError)
    los_arr = np.asarray(los, dtype=bool)
    if model == "macro":
        return np.full(los_arr.shape, 8.0)
    _, _, _, s_los, s_nlos = _SCENARIO[model]
    return np.where(los_arr, s_los, s_nlos)


def draw_los(distance_2d_m: Any, scenario: Literal["uma", "umi"] = "uma", *, h_ut_m: float = 1.5,
             seed: Seed = None) -> np.ndarray:
    """Bernoulli LOS states with the probabilities of :func:`los_probability` (seeded)."""
    p = los_probability(distance_2d_m, scenario, h_ut_m=h_ut_m)
    return rng_from(seed).random(p.shape) < p


def draw_shadowing_db(shape: Any, std_db: Any = 8.0, *, seed: Seed = None) -> np.ndarray:
    """Log-normal shadowing :math:`X \\sim \\mathcal N(0, \\sigma^2)` in dB, ``std_db`` broadcast to ``shape``."""
    std = floats("std_db", std_db, min_value=0.0)
    return rng_from(seed).standard_normal(shape) * std


def draw_rayleigh_power(shape: Any, *, mean_power: float = 1.0, seed: Seed = None) -> np.ndarray:
    """Rayleigh fading power :math:`|h|^2 \\sim \\mathrm{Exp}(\\text{mean})` (seeded).

    ``mean_power=1`` is the usual normalization. DAGSA's author code draws ``|h| ~ numpy rayleigh(scale=1)``,
    i.e. ``mean_power=2``.
    """
    as_scalar("mean_power", mean_power, min_value=0.0, strict_min=True, error=ProfileError)
    return rng_from(seed).exponential(mean_power, size=shape)


def path_loss_db(distance_m: Any, model: str = "macro", *, los: Any = False, carrier_hz: float = 3.5e9,
                 h_bs_m: float | None = None, h_ut_m: float = 1.5) -> np.ndarray:
    """Path loss in dB of ``model`` (``"macro"``, ``"uma"``, ``"umi"``); see the specific functions."""
    one_of("model", model, PATH_LOSS_MODELS, error=ProfileError)
    if model == "macro":
        return path_loss_macro_db(distance_m)
    return path_loss_3gpp_db(distance_m, scenario=model, los=los, carrier_hz=carrier_hz, h_bs_m=h_bs_m,
                             h_ut_m=h_ut_m)  # type: ignore[arg-type]


def channel_gain(distance_m: Any, model: str = "macro", *, los: Any = None, shadowing: bool = True,
                 fading: bool = True, carrier_hz: float = 3.5e9, h_bs_m: float | None = None,
                 h_ut_m: float = 1.5, fading_mean_power: float = 1.0, seed: Seed = None) -> np.ndarray:
    """Linear channel gain :math:`10^{-(PL + X)/10}|h|^2` at ``distance_m`` (seeded, vectorized).

    For UMa/UMi, ``los=None`` draws LOS states from the TR 38.901 LOS probability; pass booleans to fix them.
    Shadowing uses :func:`shadowing_std_db`; fading is Rayleigh with ``fading_mean_power``.
    """
    rng = rng_from(seed)
    d = floats("distance_m", distance_m, min_value=0.0)
    if model != "macro" and los is None:
        los = draw_los(d, model, h_ut_m=h_ut_m, seed=rng)  # type: ignore[arg-type]
    los = np.broadcast_to(np.asarray(False if los is None else los, dtype=bool), d.shape)
    pl = path_loss_db(d, model, los=los, carrier_hz=carrier_hz, h_bs_m=h_bs_m, h_ut_m=h_ut_m)
    if shadowing:
        pl = pl + draw_shadowing_db(d.shape, shadowing_std_db(model, los), seed=rng)
    g = db_to_linear(-pl)
    if fading:
        g = g * draw_rayleigh_power(d.shape, mean_power=fading_mean_power, seed=rng)
    return g


# --------------------------------------------------------------------------------------------------------------
# rate primitives


def spectral_efficiency(psd_w_per_hz: Any, gain: Any, noise_psd: Any) -> np.ndarray:
    """PSD-based spectral efficiency :math:`\\log_2(1 + P g / N_0)` in bit/s/Hz."""
    p = floats("psd_w_per_hz", psd_w_per_hz, min_value=0.0)
    g = floats("gain", gain, min_value=0.0)
    n0 = floats("noise_psd", noise_psd, min_value=0.0, strict_min=True)
    return np.log1p(p * g / n0) / LN2


def rate_psd_bps(bandwidth_hz: Any, psd_w_per_hz: Any, gain: Any, noise_psd: Any) -> np.ndarray:
    """PSD-based rate :math:`b \\log_2(1 + P g/N_0)` in bit/s (linear in the bandwidth)."""
    b = floats("bandwidth_hz", bandwidth_hz, min_value=0.0)
    return b * spectral_efficiency(psd_w_per_hz, gain, noise_psd)


def rate_power_bps(bandwidth_hz: Any, power_w: Any, gain: Any, noise_psd: Any) -> np.ndarray:
    """Power-based rate :math:`b \\log_2(1 + p g/(N_0 b))` in bit/s; 0 at :math:`b = 0`."""
    b, p, g, n0 = np.broadcast_arrays(
        floats("bandwidth_hz", bandwidth_hz, min_value=0.0), floats("power_w", power_w, min_value=0.0),
        floats("gain", gain, min_value=0.0), floats("noise_psd", noise_psd, min_value=0.0, strict_min=True))
    a = p * g / n0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = b * np.log1p(a / b) / LN2
    return np.where(b > 0, r, 0.0)


def rate_power_limit_bps(power_w: Any, gain: Any, noise_psd: Any) -> np.ndarray:
    """Supremum over bandwidth of the power-based rate, :math:`p g/(N_0 \\ln 2)` (reached as b -> inf)."""
    p = floats("power_w", power_w, min_value=0.0)
    g = floats("gain", gain, min_value=0.0)
    n0 = floats("noise_psd", noise_psd, min_value=0.0, strict_min=True)
    return p * g / (n0 * LN2)


def _required_rate(bits: Any, deadline_s: Any) -> np.ndarray:
    z = floats("bits", bits, min_value=0.0)
    t = floats("deadline_s", deadline_s, allow_inf=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(z == 0, 0.0, np.where(t > 0, z / np.where(t > 0, t, 1.0), np.inf))
    return r


def min_bandwidth_psd_hz(bits: Any, deadline_s: Any, spectral_efficiency_bps_per_hz: Any) -> np.ndarray:
    """Smallest bandwidth carrying ``bits`` within ``deadline_s`` at a PSD-based rate: :math:`Z/(T R)`.

    ``inf`` where the deadline is not positive (with a positive payload) or the efficiency is 0.
    """
    r = _required_rate(bits, deadline_s)
    se = floats("spectral_efficiency_bps_per_hz", spectral_efficiency_bps_per_hz, min_value=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r == 0, 0.0, np.where(se > 0, r / np.where(se > 0, se, 1.0), np.inf))


def min_bandwidth_power_hz(bits: Any, deadline_s: Any, power_w: Any, gain: Any, noise_psd: Any,
                           *, newton_steps: int = 3) -> np.ndarray:
    r"""Smallest bandwidth with :math:`b\log_2(1 + p g/(N_0 b)) \ge Z/T` (closed form, vectorized).

    Uses the Lambert-W closed form of the module docstring, polished by ``newton_steps`` Newton steps on
    :math:`\ln(1+x) = c x` (:math:`x = a/b`; a series start near :math:`c = 1`), then rounded up by a relative
    1e-12 so that the deadline holds in floating point. Returns ``0`` for an empty payload and ``inf`` where
    the deadline is unreachable, i.e. :math:`Z/T \ge p g/(N_0 \ln 2)` or :math:`T \le 0`.
    """
    r, p, g, n0 = np.broadcast_arrays(
        _required_rate(bits, deadline_s), floats("power_w", power_w, min_value=0.0),
        floats("gain", gain, min_value=0.0), floats("noise_psd", noise_psd, min_value=0.0, strict_min=True))
    a = p * g / n0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        c = np.where(a > 0, r * LN2 / np.where(a > 0, a, 1.0), np.inf)
    ok = (c > 0) & (c < 1)
    out = np.where(r == 0, 0.0, np.inf)
    if ok.any():
        from scipy.special import lambertw

        cc = c[ok]
        with np.errstate(invalid="ignore"):
            w = lambertw(-cc * np.exp(-cc), k=-1).real
        x = -w / cc - 1.0
        # near c = 1 the two branches meet and W loses accuracy: invert ln(1+x)/x = 1 - x/2 + x^2/3 - ...
        e = 1.0 - cc
        near = ~np.isfinite(x) | (x <= 0) | (e < 1e-3)
        x = np.where(near, 2.0 * e + (8.0 / 3.0) * e * e, x)
        for _ in range(newton_steps + 3 * bool(near.any())):
            h = np.log1p(x) - cc * x
            dh = 1.0 / (1.0 + x) - cc
            step = np.where(dh < 0, h / np.where(dh < 0, dh, -1.0), 0.0)
            x_new = x - step
            x = np.where(np.isfinite(x_new) & (x_new > 0), x_new, x)
        out[ok] = a[ok] / x * (1.0 + _ROUND_UP)
    return out


def min_power_w(bits: Any, deadline_s: Any, bandwidth_hz: Any, gain: Any, noise_psd: Any) -> np.ndarray:
    """Smallest power with :math:`b\\log_2(1 + p g/(N_0 b)) \\ge Z/T`: :math:`(2^{Z/(T b)} - 1) N_0 b / g`.

    ``inf`` where the bandwidth or the gain is 0 (with a positive payload) or the power overflows.
    """
    r, b, g, n0 = np.broadcast_arrays(
        _required_rate(bits, deadline_s), floats("bandwidth_hz", bandwidth_hz, min_value=0.0),
        floats("gain", gain, min_value=0.0), floats("noise_psd", noise_psd, min_value=0.0, strict_min=True))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p = np.expm1(r / b * LN2) * n0 * b / g * (1.0 + _ROUND_UP)
    p = np.where((b > 0) & (g > 0), p, np.inf)
    return np.where(r == 0, 0.0, np.where(np.isnan(p), np.inf, p))


def min_psd_w_per_hz(bits: Any, deadline_s: Any, bandwidth_hz: Any, gain: Any, noise_psd: Any) -> np.ndarray:
    """Smallest transmit PSD with :math:`b\\log_2(1 + P g/N_0) \\ge Z/T`: :math:`(2^{Z/(T b)} - 1) N_0/g`."""
    b = floats("bandwidth_hz", bandwidth_hz, min_value=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return min_power_w(bits, deadline_s, b, gain, noise_psd) / np.where(b > 0, b, np.inf)


def transmit_time_s(bits: Any, rate_bps: Any) -> np.ndarray:
    """:math:`Z / r` in seconds (``inf`` at zero rate with a positive payload, 0 for an empty payload)."""
    z = floats("bits", bits, min_value=0.0)
    r = floats("rate_bps", rate_bps, min_value=0.0, allow_inf=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(z == 0, 0.0, z / r)


def transmit_energy_j(power_w: Any, bits: Any, rate_bps: Any) -> np.ndarray:
    """Radio energy :math:`p Z / r` in joules."""
    return floats("power_w", power_w, min_value=0.0) * transmit_time_s(bits, rate_bps)


def bisect_increasing(func: Callable[[np.ndarray], np.ndarray], target: Any, lo: Any, hi: Any, *,
                      xtol: float = 0.0, rtol: float = 1e-10, maxiter: int = 200) -> np.ndarray:
    r"""Smallest :math:`x \in [lo, hi]` with ``func(x) >= target`` for a nondecreasing ``func`` (vectorized).

    The shared "minimum resource for a deadline" primitive: each element is bisected independently until
    :math:`hi - lo \le \max(xtol, rtol \cdot hi)`; the returned value is the feasible end (``func(x) >=
    target`` holds). Elements with ``func(lo) >= target`` return ``lo``; elements with ``func(hi) < target``
    return ``inf``. ``func`` receives and returns arrays of the broadcast shape.
    """
    t, a, b = np.broadcast_arrays(floats("target", target, allow_inf=True), floats("lo", lo),
                                  floats("hi", hi))
    if (a > b).any():
        raise ProfileError(f"`lo` = {float(a[a > b].ravel()[0])!r} exceeds `hi`; expected lo <= hi")
    lo_ = a.astype(float).copy()
    hi_ = b.astype(float).copy()
    at_lo = np.asarray(func(lo_)) >= t
    feasible = np.asarray(func(hi_)) >= t
    for _ in range(maxiter):
        active = feasible & ~at_lo & (hi_ - lo_ > np.maximum(xtol, rtol * np.abs(hi_)))
        if not active.any():
            break
        mid = np.where(active, 0.5 * (lo_ + hi_), hi_)
        ok = np.asarray(func(mid)) >= t
        hi_ = np.where(active & ok, mid, hi_)
        lo_ = np.where(active & ~ok, mid, lo_)
    return np.where(at_lo, a, np.where(feasible, hi_, np.inf))


# --------------------------------------------------------------------------------------------------------------
# link dataclasses


@dataclass(frozen=True, slots=True)
class WiredLink:
    """A wired (or fixed-rate) link: :math:`t = \\ell + 8 S / r` for a payload of :math:`S` bytes.

    Parameters
    ----------
    name
        Identifier.
    rate_bps
        Sustained rate in bit/s.
    latency_s
        One-way latency (propagation plus switching) in seconds.
    """

    name: str
    rate_bps: float
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProfileError(f"`name` = {self.name!r}; expected a non-empty string")
        as_scalar("rate_bps", self.rate_bps, min_value=0.0, strict_min=True, error=ProfileError)
        as_scalar("latency_s", self.latency_s, min_value=0.0, error=ProfileError)

    def transfer_time_s(self, nbytes: Any) -> np.ndarray:
        """:math:`\\ell + 8 S/r` seconds for ``nbytes`` (vectorized; 0 for an empty payload)."""
        s = floats("nbytes", nbytes, min_value=0.0)
        return np.where(s > 0, self.latency_s + 8.0 * s / self.rate_bps, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "wired_link", "name": self.name, "rate_bps": float(self.rate_bps),
                "latency_s": float(self.latency_s)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> WiredLink:
        _toml.reject_unknown(data, {"kind", "name", "rate_bps", "latency_s", "source"}, source=source)
        t = _toml.take
        return cls(name=t(data, "name", "string", "", source=source),
                   rate_bps=t(data, "rate_bps", "number", "bit/s", source=source, min_value=0.0, strict_min=True),
                   latency_s=t(data, "latency_s", "number", "seconds", source=source, default=0.0, min_value=0.0))


@dataclass(frozen=True, slots=True)
class WirelessChannel:
    r"""A wireless access link: bandwidth, noise, path-loss model, shadowing and fading.

    Parameters
    ----------
    name
        Identifier.
    bandwidth_hz
        Total bandwidth shared by the users of a cell, in hertz.
    path_loss
        ``"macro"`` (128.1 + 37.6 log10 d_km), ``"uma"`` or ``"umi"`` (TR 38.901).
    carrier_hz
        Carrier frequency (TR 38.901 models), in hertz.
    noise_psd_dbm_per_hz, noise_figure_db
        Thermal noise PSD and receiver noise figure: :math:`N_0 = -174 + NF` dBm/Hz by default.
    shadowing_std_db
        Shadowing std in dB, or ``None`` for the model's default (:func:`shadowing_std_db`); 0 disables it.
    fading
        ``"rayleigh"`` or ``"none"``.
    fading_mean_power
        :math:`E|h|^2` of the Rayleigh draws (1 normalizes; DAGSA's author code uses 2).
    h_bs_m, h_ut_m
        Antenna heights in meters (TR 38.901 defaults when ``h_bs_m`` is ``None``).
    """

    name: str
    bandwidth_hz: float
    path_loss: str = "macro"
    carrier_hz: float = 2.0e9
    noise_psd_dbm_per_hz: float = THERMAL_NOISE_DBM_PER_HZ
    noise_figure_db: float = 0.0
    shadowing_std_db: float | None = None
    fading: str = "rayleigh"
    fading_mean_power: float = 1.0
    h_bs_m: float | None = None
    h_ut_m: float = 1.5

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProfileError(f"`name` = {self.name!r}; expected a non-empty string")
        as_scalar("bandwidth_hz", self.bandwidth_hz, min_value=0.0, strict_min=True, error=ProfileError)
        one_of("path_loss", self.path_loss, PATH_LOSS_MODELS, error=ProfileError)
        as_scalar("carrier_hz", self.carrier_hz, min_value=0.0, strict_min=True, error=ProfileError)
        as_scalar("noise_psd_dbm_per_hz", self.noise_psd_dbm_per_hz, error=ProfileError)
        as_scalar("noise_figure_db", self.noise_figure_db, min_value=0.0, error=ProfileError)
        as_scalar("shadowing_std_db", self.shadowing_std_db, min_value=0.0, allow_none=True, error=ProfileError)
        one_of("fading", self.fading, ("rayleigh", "none"), error=ProfileError)
        as_scalar("fading_mean_power", self.fading_mean_power, min_value=0.0, strict_min=True, error=ProfileError)
        as_scalar("h_bs_m", self.h_bs_m, min_value=1.0, strict_min=True, allow_none=True, error=ProfileError)
        as_scalar("h_ut_m", self.h_ut_m, min_value=1.0, strict_min=True, error=ProfileError)

    @property
    def noise_psd_w_per_hz(self) -> float:
        """:math:`N_0` in W/Hz (noise figure included)."""
        return noise_psd_w_per_hz(self.noise_psd_dbm_per_hz, self.noise_figure_db)

    def path_loss_db(self, distance_m: Any, *, los: Any = False) -> np.ndarray:
        """Deterministic path loss in dB (no shadowing, no fading)."""
        return path_loss_db(distance_m, self.path_loss, los=los, carrier_hz=self.carrier_hz, h_bs_m=self.h_bs_m,
                            h_ut_m=self.h_ut_m)

    def gain(self, distance_m: Any, *, los: Any = None, seed: Seed = None) -> np.ndarray:
        """Draw linear gains at ``distance_m``: path loss, shadowing and fading (seeded, vectorized)."""
        rng = rng_from(seed)
        d = floats("distance_m", distance_m, min_value=0.0)
        if self.path_loss != "macro" and los is None:
            los = draw_los(d, self.path_loss, h_ut_m=self.h_ut_m, seed=rng)  # type: ignore[arg-type]
        los = np.broadcast_to(np.asarray(False if los is None else los, dtype=bool), d.shape)
        pl = self.path_loss_db(d, los=los)
        std = shadowing_std_db(self.path_loss, los) if self.shadowing_std_db is None else self.shadowing_std_db
        g = db_to_linear(-(pl + draw_shadowing_db(d.shape, std, seed=rng)))
        if self.fading == "rayleigh":
            g = g * draw_rayleigh_power(d.shape, mean_power=self.fading_mean_power, seed=rng)
        return g

    def rate_bps(self, bandwidth_hz: Any, power_w: Any, gain: Any) -> np.ndarray:
        """Power-based rate :math:`b\\log_2(1 + p g/(N_0 b))` with this channel's noise."""
        return rate_power_bps(bandwidth_hz, power_w, gain, self.noise_psd_w_per_hz)

    def min_bandwidth_hz(self, bits: Any, deadline_s: Any, power_w: Any, gain: Any) -> np.ndarray:
        """:func:`min_bandwidth_power_hz` with this channel's noise (``inf`` where unreachable)."""
        return min_bandwidth_power_hz(bits, deadline_s, power_w, gain, self.noise_psd_w_per_hz)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "channel"}
        for f in self.__dataclass_fields__:
            v = getattr(self, f)
            out[f] = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> WirelessChannel:
        data = {k: v for k, v in data.items() if v is not None}
        units = {"bandwidth_hz": "hertz", "carrier_hz": "hertz", "noise_psd_dbm_per_hz": "dBm/Hz",
                 "noise_figure_db": "dB", "shadowing_std_db": "dB", "fading_mean_power": "linear power",
                 "h_bs_m": "meters", "h_ut_m": "meters"}
        _toml.reject_unknown(data, {"kind", "source", "name", "path_loss", "fading", *units}, source=source)
        t = _toml.take
        kwargs: dict[str, Any] = {"name": t(data, "name", "string", "", source=source)}
        for key in ("path_loss", "fading"):
            if key in data:
                kwargs[key] = t(data, key, "string", "", source=source)
        for key, unit in units.items():
            if key in data:
                kwargs[key] = t(data, key, "number", unit, source=source)
        if "bandwidth_hz" not in kwargs:
            t(data, "bandwidth_hz", "number", "hertz", source=source)
        return cls(**kwargs)


__all__ = [
    "LN2",
    "PATH_LOSS_MODELS",
    "THERMAL_NOISE_DBM_PER_HZ",
    "WiredLink",
    "WirelessChannel",
    "bisect_increasing",
    "channel_gain",
    "db_to_linear",
    "dbm_to_watts",
    "draw_los",
    "draw_rayleigh_power",
    "draw_shadowing_db",
    "linear_to_db",
    "los_probability",
    "min_bandwidth_power_hz",
    "min_bandwidth_psd_hz",
    "min_power_w",
    "min_psd_w_per_hz",
    "noise_power_w",
    "noise_psd_w_per_hz",
    "path_loss_3gpp_db",
    "path_loss_db",
    "path_loss_macro_db",
    "rate_power_bps",
    "rate_power_limit_bps",
    "rate_psd_bps",
    "shadowing_std_db",
    "spectral_efficiency",
    "transmit_energy_j",
    "transmit_time_s",
    "watts_to_dbm",
]
