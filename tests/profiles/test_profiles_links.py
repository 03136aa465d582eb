"""Channels and rate primitives: formulas against direct evaluation, inverses by hypothesis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeplan.errors import ProfileError
from edgeplan.profiles import WiredLink, WirelessChannel, load_profile
from edgeplan.profiles.links import (
    LN2,
    bisect_increasing,
    channel_gain,
    db_to_linear,
    dbm_to_watts,
    draw_los,
    draw_rayleigh_power,
    draw_shadowing_db,
    los_probability,
    min_bandwidth_power_hz,
    min_bandwidth_psd_hz,
    min_power_w,
    min_psd_w_per_hz,
    noise_power_w,
    noise_psd_w_per_hz,
    path_loss_3gpp_db,
    path_loss_macro_db,
    rate_power_bps,
    rate_power_limit_bps,
    rate_psd_bps,
    spectral_efficiency,
    transmit_energy_j,
    transmit_time_s,
    watts_to_dbm,
)

N0 = noise_psd_w_per_hz()


def test_units_and_noise() -> None:
    assert dbm_to_watts(23.0) == pytest.approx(0.19953, rel=1e-4)
    assert watts_to_dbm(0.2) == pytest.approx(23.0103, rel=1e-5)
    assert N0 == pytest.approx(10 ** (-17.4) / 1000)                 # -174 dBm/Hz in W/Hz
    assert noise_psd_w_per_hz(noise_figure_db=9.0) == pytest.approx(N0 * 10 ** 0.9)
    assert noise_power_w(1e6) == pytest.approx(10 ** (-11.4) / 1000)  # -114 dBm per MHz (DAGSA code)
    with pytest.raises(ProfileError, match=r"`noise_figure_db` = -1.0; expected a value >= 0.0"):
        noise_psd_w_per_hz(noise_figure_db=-1.0)


def test_macro_path_loss() -> None:
    np.testing.assert_allclose(path_loss_macro_db([1000.0, 500.0, 2000.0]),
                               [128.1, 128.1 + 37.6 * math.log10(0.5), 128.1 + 37.6 * math.log10(2.0)])
    assert path_loss_macro_db(0.0) == path_loss_macro_db(10.0) == pytest.approx(128.1 - 75.2)
    # the DAGSA author code writes the same gain as 1.549e-13 * (1000/d)^3.76
    d = np.array([50.0, 300.0, 900.0])
    np.testing.assert_allclose(db_to_linear(-path_loss_macro_db(d)), 1.549e-13 * (1000 / d) ** 3.76, rtol=1e-3)
    with pytest.raises(ProfileError, match=r"`distance_m` has value -1.0; expected values >= 0.0"):
        path_loss_macro_db(-1.0)


def _uma_los(d2: float, fc: float = 3.5, hbs: float = 25.0, hut: float = 1.5) -> float:
    d3 = math.hypot(d2, hbs - hut)
    dbp = 4 * (hbs - 1) * (hut - 1) * fc * 1e9 / 299_792_458.0
    if d2 <= dbp:
        return 28.0 + 22 * math.log10(d3) + 20 * math.log10(fc)
    return 28.0 + 40 * math.log10(d3) + 20 * math.log10(fc) - 9 * math.log10(dbp**2 + (hbs - hut) ** 2)


def _umi_los(d2: float, fc: float = 3.5, hbs: float = 10.0, hut: float = 1.5) -> float:
    d3 = math.hypot(d2, hbs - hut)
    dbp = 4 * (hbs - 1) * (hut - 1) * fc * 1e9 / 299_792_458.0
    if d2 <= dbp:
        return 32.4 + 21 * math.log10(d3) + 20 * math.log10(fc)
    return 32.4 + 40 * math.log10(d3) + 20 * math.log10(fc) - 9.5 * math.log10(dbp**2 + (hbs - hut) ** 2)


@pytest.mark.parametrize("d2", [20.0, 100.0, 400.0, 1000.0, 3000.0])
def test_3gpp_uma_umi_match_tr38901_table(d2: float) -> None:
    d3_uma, d3_umi = math.hypot(d2, 23.5), math.hypot(d2, 8.5)
    uma_nlos = max(_uma_los(d2), 13.54 + 39.08 * math.log10(d3_uma) + 20 * math.log10(3.5))
    umi_nlos = max(_umi_los(d2), 22.4 + 35.3 * math.log10(d3_umi) + 21.3 * math.log10(3.5))
    assert path_loss_3gpp_db(d2, scenario="uma", los=True) == pytest.approx(_uma_los(d2), abs=1e-9)
    assert path_loss_3gpp_db(d2, scenario="uma", los=False) == pytest.approx(uma_nlos, abs=1e-9)
    assert path_loss_3gpp_db(d2, scenario="umi", los=True) == pytest.approx(_umi_los(d2), abs=1e-9)
    assert path_loss_3gpp_db(d2, scenario="umi", los=False) == pytest.approx(umi_nlos, abs=1e-9)


def test_3gpp_vectorized_los_mask_and_errors() -> None:
    d = np.array([50.0, 600.0, 2000.0])
    los = np.array([True, False, True])
    out = path_loss_3gpp_db(d, scenario="uma", los=los)
    assert out[0] == pytest.approx(_uma_los(50.0)) and out[2] == pytest.approx(_uma_los(2000.0))
    assert out[1] > _uma_los(600.0)
    with pytest.raises(ProfileError, match=r"`scenario` = 'rma'; expected one of 'uma', 'umi'"):
        path_loss_3gpp_db(100.0, scenario="rma")  # type: ignore[arg-type]
    with pytest.raises(ProfileError, match=r"`carrier_hz` = 100000000.0; expected a value >= 500000000.0"):
        path_loss_3gpp_db(100.0, carrier_hz=1e8)


def test_los_probability_table_7_4_2_1() -> None:
    assert los_probability(10.0, "umi") == 1.0
    assert los_probability(100.0, "umi") == pytest.approx(0.18 + math.exp(-100 / 36) * 0.82)
    assert los_probability(100.0, "uma") == pytest.approx(0.18 + math.exp(-100 / 63) * 0.82)
    hut = 18.0
    c = ((hut - 13) / 10) ** 1.5
    p = (0.18 + math.exp(-100 / 63) * 0.82) * (1 + c * 1.25 * 1.0 * math.exp(-100 / 150))
    assert los_probability(100.0, "uma", h_ut_m=hut) == pytest.approx(min(p, 1.0))
    draws = draw_los(np.full(20000, 100.0), "umi", seed=1)
    assert draws.mean() == pytest.approx(0.18 + math.exp(-100 / 36) * 0.82, abs=0.01)


def test_seeded_fading_and_shadowing_statistics() -> None:
    a = draw_rayleigh_power(100_000, seed=7)
    np.testing.assert_array_equal(a, draw_rayleigh_power(100_000, seed=7))
    assert a.mean() == pytest.approx(1.0, rel=0.02)
    assert draw_rayleigh_power(100_000, mean_power=2.0, seed=3).mean() == pytest.approx(2.0, rel=0.02)
    # |h| ~ Rayleigh(scale=1) as in DAGSA's code has E|h|^2 = 2
    h = np.random.default_rng(0).rayleigh(1.0, 100_000)
    assert (h**2).mean() == pytest.approx(2.0, rel=0.02)
    s = draw_shadowing_db(100_000, 8.0, seed=2)
    assert s.std() == pytest.approx(8.0, rel=0.02) and abs(s.mean()) < 0.1
    g1 = channel_gain(np.full(5, 200.0), "uma", seed=11)
    np.testing.assert_array_equal(g1, channel_gain(np.full(5, 200.0), "uma", seed=11))
    plain = channel_gain(200.0, "macro", shadowing=False, fading=False)
    assert plain == pytest.approx(db_to_linear(-path_loss_macro_db(200.0)))


def test_channel_presets_and_dataclass() -> None:
    ch = load_profile("channel-macro-dagsa")
    assert isinstance(ch, WirelessChannel)
    assert ch.fading_mean_power == 2.0 and ch.shadowing_std_db == 0.0
    g = ch.gain(np.full(50_000, 300.0), seed=0)
    assert g.mean() == pytest.approx(2 * db_to_linear(-path_loss_macro_db(300.0)), rel=0.03)
    uma = load_profile("channel-uma-3p5ghz")
    assert isinstance(uma, WirelessChannel)
    assert uma.noise_psd_w_per_hz == pytest.approx(N0 * 10 ** 0.5)
    assert uma.gain([100.0, 200.0], seed=1).shape == (2,)
    b = uma.min_bandwidth_hz(1e6, 0.1, 0.2, 1e-10)
    assert uma.rate_bps(b, 0.2, 1e-10) * 0.1 == pytest.approx(1e6, rel=1e-9)
    assert WirelessChannel.from_dict(uma.to_dict()) == uma
    with pytest.raises(ProfileError, match=r"`path_loss` = 'free'; expected one of 'macro', 'uma', 'umi'"):
        WirelessChannel(name="x", bandwidth_hz=1e6, path_loss="free")
    with pytest.raises(ProfileError, match=r"`bandwidth_hz` = 0.0; expected a value > 0.0"):
        WirelessChannel(name="x", bandwidth_hz=0.0)


def test_wired_link() -> None:
    link = load_profile("ethernet-1g")
    assert isinstance(link, WiredLink)
    t = link.transfer_time_s([0.0, 1e6])
    assert t[0] == 0.0
    assert t[1] == pytest.approx(link.latency_s + 8e6 / link.rate_bps)
    with pytest.raises(ProfileError, match=r"`rate_bps` = 0.0; expected a value > 0.0"):
        WiredLink("x", 0.0)


# -- rate primitives ----------------------------------------------------------------------------------------

positive = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(b=st.floats(1.0, 1e9), p=st.floats(1e-4, 10.0), g=st.floats(1e-16, 1e-6), nf=st.floats(0.0, 10.0))
def test_rates_agree_with_direct_evaluation(b: float, p: float, g: float, nf: float) -> None:
    n0 = noise_psd_w_per_hz(noise_figure_db=nf)
    direct = b * math.log1p(p * g / (n0 * b)) / math.log(2)
    assert float(rate_power_bps(b, p, g, n0)) == pytest.approx(direct, rel=1e-9)
    psd = p / b
    assert float(spectral_efficiency(psd, g, n0)) == pytest.approx(math.log1p(psd * g / n0) / math.log(2), rel=1e-9)
    assert float(rate_psd_bps(b, psd, g, n0)) == pytest.approx(direct, rel=1e-9)
    assert float(rate_power_bps(b, p, g, n0)) < float(rate_power_limit_bps(p, g, n0))


@settings(max_examples=300, deadline=None)
@given(c=st.floats(1e-4, 0.999), a=st.floats(1e2, 1e12), t=st.floats(1e-3, 10.0))
def test_min_bandwidth_power_inverts_the_rate(c: float, a: float, t: float) -> None:
    # a = p g / N0 with p = 1, N0 = 1; the required rate is c times the asymptotic limit a / ln 2
    rate = c * a / LN2
    b = float(min_bandwidth_power_hz(rate * t, t, 1.0, a, 1.0))
    assert np.isfinite(b) and b > 0
    assert float(rate_power_bps(b, 1.0, a, 1.0)) == pytest.approx(rate, rel=1e-8)
    assert float(rate_power_bps(b, 1.0, a, 1.0)) >= rate              # feasible in floating point
    assert float(rate_power_bps(b * (1 - 1e-5), 1.0, a, 1.0)) < rate


@settings(max_examples=100, deadline=None)
@given(c=st.floats(1.0 + 1e-9, 50.0), a=st.floats(1e2, 1e12))
def test_min_bandwidth_power_is_inf_when_unreachable(c: float, a: float) -> None:
    assert float(min_bandwidth_power_hz(c * a / LN2, 1.0, 1.0, a, 1.0)) == math.inf


@settings(max_examples=100, deadline=None)
@given(gap=st.floats(1e-12, 1e-3), a=st.floats(1e2, 1e12))
def test_min_bandwidth_power_near_the_asymptote(gap: float, a: float) -> None:
    rate = (1 - gap) * a / LN2
    b = float(min_bandwidth_power_hz(rate, 1.0, 1.0, a, 1.0))
    assert np.isfinite(b) and b > a            # far beyond the "knee" but finite
    assert float(rate_power_bps(b, 1.0, a, 1.0)) == pytest.approx(rate, rel=1e-7)


def test_min_bandwidth_power_vectorized_edges() -> None:
    a = 1e7
    bits = np.array([0.0, 0.5 * a / LN2, 2 * a / LN2, 1e5, 1e5])
    dead = np.array([1.0, 1.0, 1.0, 0.0, -1.0])
    out = min_bandwidth_power_hz(bits, dead, 1.0, a, 1.0)
    assert out[0] == 0.0 and np.isfinite(out[1]) and np.isinf(out[2:]).all()
    # matches the generic bisection
    ref = bisect_increasing(lambda x: rate_power_bps(x, 1.0, a, 1.0), 0.5 * a / LN2, 0.0, 1e9, rtol=1e-13)
    assert out[1] == pytest.approx(float(ref), rel=1e-9)
    grid = min_bandwidth_power_hz(np.array([[1e6], [2e6]]), np.array([0.1, 0.2, 0.4]), 0.2, 1e-10, N0)
    assert grid.shape == (2, 3) and (np.diff(grid, axis=1) < 0).all() and (np.diff(grid, axis=0) > 0).all()


@settings(max_examples=200, deadline=None)
@given(bits=st.floats(1e3, 1e9), t=st.floats(1e-3, 10.0), b=st.floats(1e3, 1e9), g=st.floats(1e-14, 1e-8))
def test_min_power_and_min_psd_invert_the_rate(bits: float, t: float, b: float, g: float) -> None:
    p = float(min_power_w(bits, t, b, g, N0))
    if bits / (t * b) > 60:                # > 60 bit/s/Hz: astronomically large (or overflowing) powers
        assert p > 1e5 * N0 * b / g
        return
    assert float(rate_power_bps(b, p, g, N0)) * t == pytest.approx(bits, rel=1e-8)
    assert float(rate_power_bps(b, p, g, N0)) >= bits / t
    assert float(rate_power_bps(b, p * (1 - 1e-6), g, N0)) * t < bits
    psd = float(min_psd_w_per_hz(bits, t, b, g, N0))
    assert psd == pytest.approx(p / b, rel=1e-12)
    assert float(rate_psd_bps(b, psd, g, N0)) == pytest.approx(bits / t, rel=1e-8)
    se = float(spectral_efficiency(psd, g, N0))
    assert float(min_bandwidth_psd_hz(bits, t, se)) == pytest.approx(b, rel=1e-8)


def test_min_bandwidth_psd_closed_form_and_edges() -> None:
    np.testing.assert_allclose(min_bandwidth_psd_hz([8e6, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 1.0], [4.0, 4.0, 4.0, 0.0]),
                               [2e6, 0.0, np.inf, np.inf])
    assert transmit_time_s(8e6, 4e6) == 2.0
    assert transmit_time_s(0.0, 0.0) == 0.0 and transmit_time_s(1.0, 0.0) == math.inf
    assert transmit_energy_j(0.2, 8e6, 4e6) == pytest.approx(0.4)


@settings(max_examples=100, deadline=None)
@given(target=st.floats(0.0, 100.0), slope=st.floats(0.1, 10.0))
def test_bisect_increasing_finds_the_smallest_feasible_point(target: float, slope: float) -> None:
    x = float(bisect_increasing(lambda v: slope * v, target, 0.0, 1000.0, xtol=1e-12, rtol=1e-12))
    assert slope * x >= target
    assert x == pytest.approx(target / slope, rel=1e-9, abs=1e-9)


def test_bisect_increasing_infeasible_and_errors() -> None:
    out = bisect_increasing(lambda v: v, np.array([5.0, 50.0]), 0.0, 10.0)
    assert out[0] == pytest.approx(5.0) and out[1] == math.inf
    with pytest.raises(ProfileError, match=r"`lo` = 3.0 exceeds `hi`; expected lo <= hi"):
        bisect_increasing(lambda v: v, 1.0, 3.0, 2.0)
