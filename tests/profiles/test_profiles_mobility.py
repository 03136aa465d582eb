"""Mobility models, association and coverage windows."""

from __future__ import annotations

import numpy as np
import pytest

from edgeplan.errors import ProfileError
from edgeplan.profiles.mobility import (
    Area,
    Trajectory,
    cell_exit_time_s,
    coverage_window_s,
    distances_m,
    gauss_markov,
    grid_layout,
    hexagonal_layout,
    nearest_bs,
    quadrant_layout,
    random_direction,
    random_waypoint,
    users_per_cell,
)


def test_reflection_folds_positions_and_mirrors_velocity() -> None:
    area = Area.square(1000.0)
    pts, flip = area.reflect(np.array([[550.0, 0.0], [1550.0, -600.0], [100.0, 20.0]]))
    np.testing.assert_allclose(pts, [[450.0, 0.0], [-450.0, -400.0], [100.0, 20.0]])
    np.testing.assert_array_equal(flip, [[-1, 1], [1, -1], [1, 1]])


def test_random_direction_dagsa_setup() -> None:
    area, bs = quadrant_layout(500.0)
    start = users_per_cell(area, bs, 10, seed=0)
    assert start.shape == (40, 2)
    np.testing.assert_array_equal(np.bincount(nearest_bs(start, bs)), [10, 10, 10, 10])
    tr = random_direction(40, 30, area=area, speed_mps=20.0, round_s=1.0, initial_m=start, seed=1)
    assert tr.positions_m.shape == (31, 40, 2) and tr.velocities_mps.shape == (30, 40, 2)
    assert area.contains(tr.positions_m).all()
    np.testing.assert_allclose(tr.speeds_mps, 20.0)
    step = np.linalg.norm(np.diff(tr.positions_m, axis=0), axis=-1)
    assert (step <= 20.0 + 1e-9).all()
    interior = (np.abs(tr.positions_m[:-1]) < 480).all(axis=-1) & (np.abs(tr.positions_m[1:]) < 480).all(axis=-1)
    np.testing.assert_allclose(step[interior], 20.0)          # no wall in between: a full 20 m step
    again = random_direction(40, 30, area=area, speed_mps=20.0, initial_m=start, seed=1)
    np.testing.assert_array_equal(tr.positions_m, again.positions_m)
    assert not np.array_equal(tr.positions_m, random_direction(40, 30, area=area, initial_m=start,
                                                               seed=2).positions_m)


def test_random_direction_keeps_heading_between_redraws() -> None:
    area = Area.square(1e6)
    tr = random_direction(5, 6, area=area, speed_mps=(1.0, 3.0), redraw_every=3, seed=0,
                          initial_m=np.zeros((5, 2)))
    v = tr.velocities_mps
    np.testing.assert_allclose(v[0], v[1])
    np.testing.assert_allclose(v[1], v[2])
    assert not np.allclose(v[2], v[3])
    assert (tr.speeds_mps >= 1.0).all() and (tr.speeds_mps <= 3.0).all()


def test_random_waypoint_stays_inside_and_respects_speeds() -> None:
    area = Area(0.0, 200.0, 0.0, 100.0)
    tr = random_waypoint(50, 40, area=area, speed_range_mps=(2.0, 5.0), pause_s=0.5, round_s=2.0, seed=3)
    assert area.contains(tr.positions_m).all()
    step = np.linalg.norm(np.diff(tr.positions_m, axis=0), axis=-1)
    assert (step <= 5.0 * 2.0 + 1e-9).all()
    moving = tr.speeds_mps > 0
    assert moving.mean() > 0.5
    assert (tr.speeds_mps[moving] >= 2.0 - 1e-9).all() and (tr.speeds_mps <= 5.0 + 1e-9).all()
    with pytest.raises(ProfileError, match=r"`speed_range_mps` = \(0.0, 5.0\); expected \(low, high\) with 0 < low"):
        random_waypoint(2, 2, area=area, speed_range_mps=(0.0, 5.0))


def test_gauss_markov_limits() -> None:
    area = Area.square(1e7)
    tr = gauss_markov(10, 20, area=area, alpha=1.0, mean_speed_mps=7.0, seed=0, initial_m=np.zeros((10, 2)))
    np.testing.assert_allclose(np.diff(tr.positions_m, axis=0), 7.0 * np.broadcast_to(
        tr.velocities_mps[:1] / 7.0, (20, 10, 2)))                       # alpha = 1: constant velocity
    small = Area.square(300.0)
    tr = gauss_markov(30, 200, area=small, alpha=0.5, mean_speed_mps=15.0, speed_std_mps=3.0, seed=1)
    assert small.contains(tr.positions_m).all()
    assert tr.speeds_mps.mean() == pytest.approx(15.0, rel=0.1)
    with pytest.raises(ProfileError, match=r"`alpha` = 1.5; expected a value <= 1.0"):
        gauss_markov(2, 2, area=small, alpha=1.5)


def test_layouts_and_nearest_bs() -> None:
    hexes = hexagonal_layout(2, 500.0)
    assert hexes.shape == (19, 2)
    d = distances_m(hexes, hexes)
    nearest_other = np.sort(d, axis=1)[:, 1]
    np.testing.assert_allclose(nearest_other, 500.0)
    grid = grid_layout(Area.square(1000.0), 2, 2)
    np.testing.assert_allclose(np.sort(grid, axis=0), np.sort(quadrant_layout(500.0)[1], axis=0))
    pts = np.random.default_rng(0).uniform(-600, 600, size=(7, 11, 2))
    brute = np.argmin(((pts[..., None, :] - hexes) ** 2).sum(-1), axis=-1)
    np.testing.assert_array_equal(nearest_bs(pts, hexes), brute)


def _brute_exit(p: np.ndarray, v: np.ndarray, bs: np.ndarray, own: int, horizon: float, dt: float) -> float:
    ts = np.arange(0.0, horizon, dt)
    cell = nearest_bs(p + ts[:, None] * v, bs)
    out = np.flatnonzero(cell != own)
    return float(ts[out[0]]) if out.size else np.inf


def test_exit_time_matches_simulation() -> None:
    rng = np.random.default_rng(5)
    bs = hexagonal_layout(1, 400.0)
    p = rng.uniform(-300, 300, size=(60, 2))
    v = rng.normal(size=(60, 2)) * 15
    own = nearest_bs(p, bs)
    t = cell_exit_time_s(p, v, bs)
    dt = 0.01
    for i in range(60):
        brute = _brute_exit(p[i], v[i], bs, own[i], 200.0, dt)
        if np.isinf(brute):
            assert t[i] >= 200.0 - dt
        else:
            assert brute - dt <= t[i] <= brute + 1e-9


def test_quadrant_windows_equal_the_author_code_crossing_time() -> None:
    _area, bs = quadrant_layout(500.0)
    p = np.array([[100.0, 100.0], [100.0, 100.0], [-10.0, 300.0], [200.0, -5.0]])
    v = np.array([[-20.0, 0.0], [-20.0, -40.0], [0.0, 20.0], [0.0, 20.0]])
    # sign change of x or y by linear interpolation, as in DAGSA's code
    expected = [5.0, 2.5, np.inf, 0.25]
    np.testing.assert_allclose(cell_exit_time_s(p, v, bs), expected)
    np.testing.assert_allclose(coverage_window_s(p, v, bs, round_s=1.0), [1.0, 1.0, 1.0, 0.25])
    tr = Trajectory(np.stack([p, p + v]), v[None], 1.0)
    np.testing.assert_allclose(tr.coverage_windows_s(bs), [[1.0, 1.0, 1.0, 0.25]])
    assert tr.association(bs).shape == (2, 4)


def test_cell_radius_and_association_override() -> None:
    bs = np.array([[0.0, 0.0], [1000.0, 0.0]])
    p = np.array([[0.0, 0.0], [300.0, 0.0], [900.0, 0.0]])
    v = np.array([[10.0, 0.0], [10.0, 0.0], [0.0, 0.0]])
    t = cell_exit_time_s(p, v, bs, cell_radius_m=200.0)
    np.testing.assert_allclose(t, [20.0, 0.0, np.inf])   # leaves the disc; already outside; not moving
    forced = cell_exit_time_s(p, v, bs, association=np.array([1, 1, 0]))
    np.testing.assert_allclose(forced, [0.0, 0.0, 0.0])   # users outside the cell they are forced into
    with pytest.raises(ProfileError, match=r"`association` has shape \(2,\); expected \(3,\)"):
        cell_exit_time_s(p, v, bs, association=np.array([0, 1]))
    with pytest.raises(ProfileError, match=r"`association` has an index outside \[0, 1\]"):
        cell_exit_time_s(p, v, bs, association=np.array([0, 1, 2]))


def test_input_validation() -> None:
    area = Area.square(100.0)
    with pytest.raises(ProfileError, match=r"`Area` = \(1.0, 0.0, 0.0, 1.0\); expected x_min < x_max"):
        Area(1.0, 0.0, 0.0, 1.0)
    with pytest.raises(ProfileError, match=r"`n_users` = 0; expected a positive integer"):
        random_direction(0, 3, area=area)
    with pytest.raises(ProfileError, match=r"`speed_mps` = \(5.0, 1.0\); expected 0 <= low <= high in m/s"):
        random_direction(3, 3, area=area, speed_mps=(5.0, 1.0))
    with pytest.raises(ProfileError, match=r"`initial_m` has points outside the area"):
        random_direction(1, 3, area=area, initial_m=[[500.0, 0.0]])
    with pytest.raises(ProfileError, match=r"`positions_m` has shape \(3, 2\); expected shape \(any, any, 2\)"):
        Trajectory(np.zeros((3, 2)), np.zeros((2, 2)), 1.0)
