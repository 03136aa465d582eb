r"""User mobility, base-station layouts, association and coverage windows.

Models (all seeded, vectorized over users; positions in meters, time in seconds)
-------------------------------------------------------------------------------
* **Random direction** (DAGSA author code, HFL-SNM): at the start of every ``redraw_every`` rounds each
  user draws a heading :math:`\theta \sim U[0, 2\pi)` and moves :math:`x \mathrel{+}= v\cos\theta\,\Delta t`,
  :math:`y \mathrel{+}= v\sin\theta\,\Delta t`; the walls of the area reflect it (position and heading are
  mirrored).
* **Random waypoint** (Johnson & Maltz 1996): move straight at a speed :math:`v \sim U[v_{\min}, v_{\max}]`
  to a uniform waypoint, pause, repeat. :math:`v_{\min} > 0` avoids the well-known speed decay.
* **Gauss-Markov** (Liang & Haas 1999): per round
  :math:`s_n = \alpha s_{n-1} + (1-\alpha)\bar s + \sqrt{1-\alpha^2}\,\sigma_s w`,
  :math:`d_n = \alpha d_{n-1} + (1-\alpha)\bar d + \sqrt{1-\alpha^2}\,\sigma_d w'`, with reflecting walls
  (heading and mean heading mirrored; speeds clipped at 0).

Association and coverage
------------------------
Users associate with the nearest BS (Voronoi cells). The **coverage window** of a user in a round is the
time until it leaves its cell moving straight along its round-start velocity, capped at the round length:
for cell :math:`m` and every other BS :math:`j` the cell is the half-plane
:math:`(b_j - b_m)\cdot x \le (\|b_j\|^2 - \|b_m\|^2)/2`, so the exit time is
:math:`\min_{j:(b_j-b_m)\cdot v > 0} \big[(\|b_j\|^2-\|b_m\|^2)/2 - (b_j-b_m)\cdot p\big] / (b_j-b_m)\cdot v`
(optionally also the exit from a disc of radius :math:`R` around :math:`b_m`). With the four quadrant BSs
of :func:`quadrant_layout` this is the DAGSA author code's quadrant-crossing time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeplan._checks import as_array, as_scalar
from edgeplan.errors import ProfileError
from edgeplan.profiles._util import Seed, floats, rng_from


@dataclass(frozen=True, slots=True)
class Area:
    """An axis-aligned rectangle :math:`[x_{\\min}, x_{\\max}] \\times [y_{\\min}, y_{\\max}]` in meters."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def __post_init__(self) -> None:
        for f in ("x_min", "x_max", "y_min", "y_max"):
            as_scalar(f, getattr(self, f), error=ProfileError)
        if not (self.x_max > self.x_min and self.y_max > self.y_min):
            raise ProfileError(f"`Area` = ({self.x_min}, {self.x_max}, {self.y_min}, {self.y_max}); expected "
                               "x_min < x_max and y_min < y_max")

    @classmethod
    def square(cls, side_m: float, *, centered: bool = True) -> Area:
        """A square of side ``side_m``, centered at the origin (or with its corner there)."""
        s = as_scalar("side_m", side_m, min_value=0.0, strict_min=True, error=ProfileError)
        return cls(-s / 2, s / 2, -s / 2, s / 2) if centered else cls(0.0, s, 0.0, s)

    @property
    def lo(self) -> np.ndarray:
        return np.array([self.x_min, self.y_min])

    @property
    def hi(self) -> np.ndarray:
        return np.array([self.x_max, self.y_max])

    def contains(self, points: Any) -> np.ndarray:
        """Whether points (..., 2) lie in the closed rectangle."""
        p = floats("points", points)
        return np.all((p >= self.lo - 1e-9) & (p <= self.hi + 1e-9), axis=-1)

    def uniform(self, n: int, *, seed: Seed = None) -> np.ndarray:
        """``n`` points drawn uniformly in the area, shape (n, 2)."""
        return self.lo + rng_from(seed).random((int(n), 2)) * (self.hi - self.lo)

    def reflect(self, points: Any) -> tuple[np.ndarray, np.ndarray]:
        """Fold unbounded points back into the area by mirror reflections.

        Returns the folded points and the sign (+1/-1 per axis) by which a velocity is mirrored.
        """
        p = np.asarray(points, dtype=float)
        width = self.hi - self.lo
        u = (p - self.lo) / width
        k = np.floor(u)
        frac = u - k
        odd = np.mod(k, 2.0) == 1.0
        folded = np.where(odd, 1.0 - frac, frac)
        return self.lo + folded * width, np.where(odd, -1.0, 1.0)


@dataclass(frozen=True, slots=True)
class Trajectory:
    """Positions of users over rounds.

    Attributes
    ----------
    positions_m
        (R + 1, N, 2) positions at the round boundaries (index 0 is the start of round 0).
    velocities_mps
        (R, N, 2) velocity of each user at the start of each round (m/s).
    round_s
        Round length in seconds.
    """

    positions_m: np.ndarray
    velocities_mps: np.ndarray
    round_s: float

    def __post_init__(self) -> None:
        pos = as_array("positions_m", self.positions_m, shape=(None, None, 2), error=ProfileError)
        vel = as_array("velocities_mps", self.velocities_mps, shape=(pos.shape[0] - 1, pos.shape[1], 2),
                       error=ProfileError)
        object.__setattr__(self, "positions_m", pos)
        object.__setattr__(self, "velocities_mps", vel)
        as_scalar("round_s", self.round_s, min_value=0.0, strict_min=True, error=ProfileError)

    @property
    def n_rounds(self) -> int:
        return int(self.velocities_mps.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.positions_m.shape[1])

    @property
    def speeds_mps(self) -> np.ndarray:
        """(R, N) speeds at the start of each round."""
        return np.linalg.norm(self.velocities_mps, axis=-1)

    def association(self, bs_positions_m: Any) -> np.ndarray:
        """(R + 1, N) index of the nearest BS at each round boundary."""
        return nearest_bs(self.positions_m, bs_positions_m)

    def coverage_windows_s(self, bs_positions_m: Any, *, cell_radius_m: float | None = None) -> np.ndarray:
        """(R, N) time each user stays in its round-start cell during each round, capped at ``round_s``."""
        return coverage_window_s(self.positions_m[:-1], self.velocities_mps, bs_positions_m,
                                 round_s=self.round_s, cell_radius_m=cell_radius_m)


def _speeds(name: str, value: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ProfileError(f"`{name}` = {value!r}; expected a number, an array of n_users numbers or a "
                               "(low, high) tuple")
        lo, hi = (float(v) for v in value)
        if not 0.0 <= lo <= hi:
            raise ProfileError(f"`{name}` = {value!r}; expected 0 <= low <= high in m/s")
        return rng.uniform(lo, hi, size=n)
    v = floats(name, value, min_value=0.0)
    try:
        return np.broadcast_to(v, (n,)).astype(float)
    except ValueError as exc:
        raise ProfileError(f"`{name}` has shape {v.shape}; expected a scalar or shape ({n},)") from exc


def _initial(area: Area, n_users: int, initial: Any, rng: np.random.Generator) -> np.ndarray:
    if initial is None:
        return area.uniform(n_users, seed=rng)
    p = as_array("initial_m", initial, shape=(n_users, 2), error=ProfileError)
    if not area.contains(p).all():
        raise ProfileError("`initial_m` has points outside the area; expected positions inside it")
    return np.array(p, dtype=float)


def _check_counts(n_users: int, n_rounds: int) -> None:
    if isinstance(n_users, bool) or not isinstance(n_users, int | np.integer) or n_users < 1:
        raise ProfileError(f"`n_users` = {n_users!r}; expected a positive integer")
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, int | np.integer) or n_rounds < 0:
        raise ProfileError(f"`n_rounds` = {n_rounds!r}; expected a non-negative integer")


def random_direction(n_users: int, n_rounds: int, *, area: Area, speed_mps: Any = 20.0, round_s: float = 1.0,
                     redraw_every: int = 1, initial_m: Any = None, seed: Seed = None) -> Trajectory:
    """Random-direction mobility with reflecting walls (DAGSA author code: v = 20 m/s, Δt = 1 s).

    ``speed_mps`` is a number, an array of ``n_users`` speeds or a ``(low, high)`` tuple drawn once per user.
    A heading is drawn uniformly every ``redraw_every`` rounds; between draws it persists (mirrored at walls).
    """
    _check_counts(n_users, n_rounds)
    as_scalar("round_s", round_s, min_value=0.0, strict_min=True, error=ProfileError)
    if isinstance(redraw_every, bool) or not isinstance(redraw_every, int) or redraw_every < 1:
        raise ProfileError(f"`redraw_every` = {redraw_every!r}; expected a positive integer")
    rng = rng_from(seed)
    pos = np.empty((n_rounds + 1, n_users, 2))
    vel = np.empty((n_rounds, n_users, 2))
    pos[0] = _initial(area, n_users, initial_m, rng)
    speed = _speeds("speed_mps", speed_mps, n_users, rng)
    v = np.zeros((n_users, 2))
    for r in range(n_rounds):
        if r % redraw_every == 0:
            theta = rng.uniform(0.0, 2.0 * np.pi, size=n_users)
            v = speed[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
        vel[r] = v
        pos[r + 1], flip = area.reflect(pos[r] + v * round_s)
        v = v * flip
    return Trajectory(pos, vel, float(round_s))


def random_waypoint(n_users: int, n_rounds: int, *, area: Area, speed_range_mps: tuple[float, float] = (1.0, 5.0),
                    pause_s: float = 0.0, round_s: float = 1.0, initial_m: Any = None, seed: Seed = None,
                    max_events_per_round: int = 10_000) -> Trajectory:
    """Random-waypoint mobility: straight legs to uniform waypoints at :math:`v \\sim U[v_{\\min}, v_{\\max}]`.

    Each arrival starts a pause of ``pause_s`` seconds, then a new leg. Velocities are recorded at round
    starts (zero while pausing).
    """
    _check_counts(n_users, n_rounds)
    as_scalar("round_s", round_s, min_value=0.0, strict_min=True, error=ProfileError)
    as_scalar("pause_s", pause_s, min_value=0.0, error=ProfileError)
    if len(speed_range_mps) != 2 or not 0.0 < float(speed_range_mps[0]) <= float(speed_range_mps[1]):
        raise ProfileError(f"`speed_range_mps` = {speed_range_mps!r}; expected (low, high) with 0 < low <= high "
                           "in m/s (low = 0 makes the mean speed decay to 0)")
    rng = rng_from(seed)
    lo, hi = float(speed_range_mps[0]), float(speed_range_mps[1])
    pos = np.empty((n_rounds + 1, n_users, 2))
    vel = np.zeros((n_rounds, n_users, 2))
    x = _initial(area, n_users, initial_m, rng)
    pos[0] = x
    target = area.uniform(n_users, seed=rng)
    speed = rng.uniform(lo, hi, size=n_users)
    pause = np.zeros(n_users)
    for r in range(n_rounds):
        d = target - x
        dist = np.linalg.norm(d, axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            unit = np.where(dist[:, None] > 0, d / np.where(dist > 0, dist, 1.0)[:, None], 0.0)
        vel[r] = np.where((pause > 0)[:, None], 0.0, unit * speed[:, None])
        left = np.full(n_users, float(round_s))
        for _ in range(max_events_per_round):
            if not (left > 1e-12).any():
                break
            # pauses consume time first
            used = np.minimum(pause, left)
            pause = pause - used
            left = left - used
            moving = (left > 1e-12) & (pause <= 0)
            d = target - x
            dist = np.linalg.norm(d, axis=-1)
            t_need = dist / speed
            arrive = moving & (t_need <= left)
            partial = moving & ~arrive
            with np.errstate(invalid="ignore", divide="ignore"):
                step = np.where(dist[:, None] > 0, d / np.where(dist > 0, dist, 1.0)[:, None], 0.0)
            x = np.where(arrive[:, None], target, x)
            x = np.where(partial[:, None], x + step * (speed * left)[:, None], x)
            left = np.where(arrive, left - t_need, np.where(partial, 0.0, left))
            n_new = int(arrive.sum())
            if n_new:
                target[arrive] = area.uniform(n_new, seed=rng)
                speed[arrive] = rng.uniform(lo, hi, size=n_new)
                pause[arrive] = pause_s
        else:  # pragma: no cover - only for pathological tiny areas
            raise ProfileError(f"`max_events_per_round` = {max_events_per_round} exceeded; expected fewer legs per "
                               "round (area too small for the speed?)")
        pos[r + 1] = x
    return Trajectory(pos, vel, float(round_s))


def gauss_markov(n_users: int, n_rounds: int, *, area: Area, mean_speed_mps: float = 10.0, alpha: float = 0.75,
                 speed_std_mps: float = 2.0, heading_std_rad: float = np.pi / 4, round_s: float = 1.0,
                 initial_m: Any = None, seed: Seed = None) -> Trajectory:
    """Gauss-Markov mobility (memory ``alpha`` in [0, 1]; 0 = memoryless, 1 = constant velocity).

    Each user's mean heading :math:`\\bar d` is drawn uniformly once and mirrored at the walls with the heading.
    """
    _check_counts(n_users, n_rounds)
    as_scalar("round_s", round_s, min_value=0.0, strict_min=True, error=ProfileError)
    a = as_scalar("alpha", alpha, min_value=0.0, max_value=1.0, error=ProfileError)
    as_scalar("mean_speed_mps", mean_speed_mps, min_value=0.0, error=ProfileError)
    as_scalar("speed_std_mps", speed_std_mps, min_value=0.0, error=ProfileError)
    as_scalar("heading_std_rad", heading_std_rad, min_value=0.0, error=ProfileError)
    rng = rng_from(seed)
    pos = np.empty((n_rounds + 1, n_users, 2))
    vel = np.empty((n_rounds, n_users, 2))
    pos[0] = _initial(area, n_users, initial_m, rng)
    mean_dir = rng.uniform(0.0, 2.0 * np.pi, size=n_users)
    speed = np.full(n_users, float(mean_speed_mps))
    heading = mean_dir.copy()
    noise = np.sqrt(1.0 - a * a)
    for r in range(n_rounds):
        v = speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        vel[r] = v
        pos[r + 1], flip = area.reflect(pos[r] + v * round_s)
        # mirror heading and mean heading on reflection: flipping x negates cos, flipping y negates sin
        fx, fy = flip[:, 0], flip[:, 1]
        heading = np.arctan2(fy * np.sin(heading), fx * np.cos(heading))
        mean_dir = np.arctan2(fy * np.sin(mean_dir), fx * np.cos(mean_dir))
        # keep the heading within pi of its mean so that the AR(1) update does not wrap around
        heading = mean_dir + np.angle(np.exp(1j * (heading - mean_dir)))
        speed = np.maximum(a * speed + (1 - a) * mean_speed_mps + noise * speed_std_mps
                           * rng.standard_normal(n_users), 0.0)
        heading = a * heading + (1 - a) * mean_dir + noise * heading_std_rad * rng.standard_normal(n_users)
    return Trajectory(pos, vel, float(round_s))


# ----------------------------------------------------------------------------------------------------------
# layouts, association, coverage


def quadrant_layout(half_side_m: float = 500.0) -> tuple[Area, np.ndarray]:
    """DAGSA author-code geometry: area :math:`[-L, L]^2` and 4 BSs at :math:`(\\pm L/2, \\pm L/2)`."""
    L = as_scalar("half_side_m", half_side_m, min_value=0.0, strict_min=True, error=ProfileError)
    bs = np.array([[L / 2, L / 2], [-L / 2, L / 2], [-L / 2, -L / 2], [L / 2, -L / 2]])
    return Area(-L, L, -L, L), bs


def grid_layout(area: Area, nx: int, ny: int) -> np.ndarray:
    """(nx * ny, 2) BS positions at the centers of an ``nx`` by ``ny`` grid of the area."""
    xs = area.x_min + (np.arange(nx) + 0.5) * (area.x_max - area.x_min) / nx
    ys = area.y_min + (np.arange(ny) + 0.5) * (area.y_max - area.y_min) / ny
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=-1)


def hexagonal_layout(n_rings: int, inter_site_distance_m: float) -> np.ndarray:
    """BS positions of a hexagonal grid: 1 center site plus ``n_rings`` rings (1 ring: 7 sites, 2: 19)."""
    if isinstance(n_rings, bool) or not isinstance(n_rings, int) or n_rings < 0:
        raise ProfileError(f"`n_rings` = {n_rings!r}; expected a non-negative integer")
    isd = as_scalar("inter_site_distance_m", inter_site_distance_m, min_value=0.0, strict_min=True,
                    error=ProfileError)
    pts = []
    for q in range(-n_rings, n_rings + 1):
        for r in range(max(-n_rings, -q - n_rings), min(n_rings, -q + n_rings) + 1):
            pts.append((isd * (q + r / 2.0), isd * r * np.sqrt(3.0) / 2.0))
    return np.array(sorted(pts, key=lambda p: (round(np.hypot(*p), 6), np.arctan2(p[1], p[0]))))


def users_per_cell(area: Area, bs_positions_m: Any, per_cell: int, *, seed: Seed = None) -> np.ndarray:
    """(M * per_cell, 2) points uniform in the area with exactly ``per_cell`` in each BS's Voronoi cell.

    Users are ordered by cell (DAGSA author code: 10 users per BS, uniform in its quadrant).
    """
    bs = as_array("bs_positions_m", bs_positions_m, shape=(None, 2), error=ProfileError)
    rng = rng_from(seed)
    m = bs.shape[0]
    chosen: list[list[np.ndarray]] = [[] for _ in range(m)]
    counts = np.zeros(m, dtype=int)
    for _ in range(10_000):
        if (counts >= per_cell).all():
            break
        pts = area.uniform(max(64, 4 * m * per_cell), seed=rng)
        cell = nearest_bs(pts, bs)
        for j in range(m):
            need = per_cell - counts[j]
            if need > 0:
                got = pts[cell == j][:need]
                chosen[j].append(got)
                counts[j] += len(got)
    else:  # pragma: no cover
        raise ProfileError("`bs_positions_m` has a cell with (almost) no area inside `area`; expected BSs in it")
    return np.concatenate([np.concatenate(c) for c in chosen], axis=0)


def distances_m(positions_m: Any, bs_positions_m: Any) -> np.ndarray:
    """Euclidean distances (..., M) between positions (..., 2) and BSs (M, 2)."""
    p = floats("positions_m", positions_m)
    bs = as_array("bs_positions_m", bs_positions_m, shape=(None, 2), error=ProfileError)
    return np.linalg.norm(p[..., None, :] - bs, axis=-1)


def nearest_bs(positions_m: Any, bs_positions_m: Any) -> np.ndarray:
    """Index of the nearest BS for positions (..., 2), shape (...)."""
    return np.argmin(distances_m(positions_m, bs_positions_m), axis=-1)


def cell_exit_time_s(positions_m: Any, velocities_mps: Any, bs_positions_m: Any, association: Any = None, *,
                     cell_radius_m: float | None = None) -> np.ndarray:
    """Time until each user leaves the Voronoi cell of its BS moving straight (``inf`` if never).

    ``association`` defaults to the nearest BS. With ``cell_radius_m`` the user also leaves when it exits the
    disc of that radius around its BS. Users already outside their cell get 0. Shapes broadcast over (...).
    """
    p = floats("positions_m", positions_m)
    v = floats("velocities_mps", velocities_mps)
    bs = as_array("bs_positions_m", bs_positions_m, shape=(None, 2), error=ProfileError)
    p, v = np.broadcast_arrays(p, v)
    a = nearest_bs(p, bs) if association is None else np.asarray(association, dtype=int)
    if a.shape != p.shape[:-1]:
        raise ProfileError(f"`association` has shape {a.shape}; expected {p.shape[:-1]}")
    if (a < 0).any() or (a >= bs.shape[0]).any():
        raise ProfileError(f"`association` has an index outside [0, {bs.shape[0] - 1}]; expected BS indices")
    own = bs[a]                                              # (..., 2)
    normal = bs - own[..., None, :]                          # (..., M, 2): b_j - b_m
    rhs = 0.5 * ((bs**2).sum(-1) - (own**2).sum(-1)[..., None])
    raw = rhs - (normal * p[..., None, :]).sum(-1)
    margin = np.maximum(raw, 0.0)
    closing = (normal * v[..., None, :]).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(closing > 1e-12, margin / np.where(closing > 1e-12, closing, 1.0), np.inf)
    own_col = np.arange(bs.shape[0]) == a[..., None]
    t[own_col] = np.inf
    outside = ((raw < -1e-9) & ~own_col).any(axis=-1)
    exit_t = np.where(outside, 0.0, t.min(axis=-1))
    if cell_radius_m is not None:
        radius = as_scalar("cell_radius_m", cell_radius_m, min_value=0.0, strict_min=True, error=ProfileError)
        rel = p - own
        aa = (v**2).sum(-1)
        bb = 2.0 * (v * rel).sum(-1)
        cc = (rel**2).sum(-1) - radius**2
        disc = np.maximum(bb * bb - 4 * aa * cc, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_disc = np.where(aa > 0, (-bb + np.sqrt(disc)) / (2 * np.where(aa > 0, aa, 1.0)), np.inf)
        t_disc = np.where(cc > 0, 0.0, np.maximum(t_disc, 0.0))
        exit_t = np.minimum(exit_t, t_disc)
    return exit_t


def coverage_window_s(positions_m: Any, velocities_mps: Any, bs_positions_m: Any, association: Any = None, *,
                      round_s: float, cell_radius_m: float | None = None) -> np.ndarray:
    """:math:`\\min(\\text{exit time}, \\Delta t)`: how long a user stays reachable in a round of ``round_s``."""
    as_scalar("round_s", round_s, min_value=0.0, strict_min=True, error=ProfileError)
    return np.minimum(cell_exit_time_s(positions_m, velocities_mps, bs_positions_m, association,
                                       cell_radius_m=cell_radius_m), round_s)


__all__ = [
    "Area",
    "Trajectory",
    "cell_exit_time_s",
    "coverage_window_s",
    "distances_m",
    "gauss_markov",
    "grid_layout",
    "hexagonal_layout",
    "nearest_bs",
    "quadrant_layout",
    "random_direction",
    "random_waypoint",
    "users_per_cell",
]
