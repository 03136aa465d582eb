r"""Federated learning over many rounds with mobile users, and Flower-style per-round client configurations.

Multi-round simulation
----------------------
:func:`simulate_fl` plays ``n_rounds`` synchronous FedAvg rounds. The users' data sizes, CPU clocks and speeds
are drawn once; every round

1. the round is built from the users' current positions and headings (:func:`~edgeplan.formulations.fl.fl_round.
   fl_round_instance` or :func:`~edgeplan.formulations.fl.fl_energy.fl_energy_instance` with the positions fixed:
   coverage windows from the headings, fresh Rayleigh fading: block fading per round);
2. it is planned by the chosen method (:func:`edgeplan.solvers.api.solve`, which re-checks every plan);
3. the round lasts the plan's round latency (its slowest selected user); a round without a plan (infeasible, or
   the method found none) costs ``stall_s`` seconds and selects nobody;
4. everybody moves straight for the round's duration (random-direction mobility with reflecting walls, the
   DAGSA author code's model; a new heading every ``redraw_every`` rounds).

The result (:class:`FLSimulation`) holds per-round latency, cumulative wall-clock, energy (energy family),
selections and BSs, the scheduler's solve time, and summary statistics: participation counts, Jain's fairness
index of participation :math:`(\sum_n c_n)^2 / (N \sum_n c_n^2)`, the share of users ever selected.
:func:`plot_wall_clock` draws cumulative wall-clock against rounds, one line per method.

With ``train`` set, every planned round is also trained for real
(:class:`~edgeplan.validation.fltask.FLTrainer`): the selected users run their :math:`E_n` local epochs of the
model over their :math:`D_n` synthetic non-IID samples (the same ``samples`` and ``local_epochs`` the round
was planned with), the server FedAvg-aggregates the uploads, and the test accuracy after each round is
recorded, so :func:`plot_accuracy` can draw accuracy against the cumulative (planned) wall-clock per method:
a scheduler that always picks the same fast users shortens rounds but, on non-IID data, learns from a
biased slice of the classes. Every method starts from the same initial model (``task``'s seed).

Flower export
-------------
Format ``"flower"`` (registered for :class:`~edgeplan.formulations.fl.fl_round.FLSchedule` and
:class:`~edgeplan.formulations.fl.fl_energy.FLEnergySchedule`) writes ``flower_round_<r>.json``: the round number,
the planned round latency, and one entry per selected client with its ``cid`` and a flat ``config`` of scalars,
the shape of Flower's ``FitIns.config`` (``dict[str, bool | bytes | float | int | str]``). A strategy's
``configure_fit(server_round, parameters, client_manager)`` can read the file of its round and return
``FitIns(parameters, entry["config"])`` for the clients listed, and skip the others. Keys: ``server_round``,
``local_epochs``, ``base_station``, ``bandwidth_hz``, ``tx_power_w``, ``cpu_hz``, ``deadline_s`` (the client's
coverage window, or the round deadline), ``planned_latency_s``, ``planned_upload_s``, ``payload_bits``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeplan._checks import as_scalar, one_of
from edgeplan._progress import progress_bar
from edgeplan.errors import ProblemDataError
from edgeplan.formulations.fl.common import bs_layout, count
from edgeplan.formulations.fl.instances import fl_energy_instance, fl_round_instance
from edgeplan.io.export.flower import FLOWER_FORMAT, flower_round_config

log = logging.getLogger(__name__)

FAMILIES = ("fl-round", "fl-energy")
# -- the simulation ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class FLSimulation:
    """What :func:`simulate_fl` returns; per-round arrays have ``n_rounds`` rows."""

    method: str
    family: str
    latency_s: np.ndarray
    wall_clock_s: np.ndarray
    energy_j: np.ndarray
    solve_time_s: np.ndarray
    status: tuple[str, ...]
    selected: np.ndarray
    bs: np.ndarray
    speed_mps: np.ndarray
    flower: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    accuracy: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_rounds(self) -> int:
        return int(self.latency_s.shape[0])

    @property
    def participation(self) -> np.ndarray:
        """``(N,)`` rounds each user trained in."""
        return self.selected.sum(axis=0)

    @property
    def jain_fairness(self) -> float:
        """Jain's index of the participation counts (1: everyone equally often; 1/N: one user only)."""
        c = self.participation.astype(float)
        return float(c.sum() ** 2 / (c.size * (c**2).sum())) if (c > 0).any() else 0.0

    def time_to_accuracy(self, target: float) -> float:
        """Wall-clock at the end of the first round whose test accuracy reaches ``target`` (``inf``: never;
        ``nan`` without training)."""
        if self.accuracy.size == 0:
            return float("nan")
        hit = np.flatnonzero(self.accuracy >= target)
        return float(self.wall_clock_s[hit[0]]) if hit.size else float("inf")

    def summary(self) -> dict[str, Any]:
        """Totals and means (JSON-ready)."""
        ok = np.isfinite(self.latency_s)
        acc = {"final_accuracy": float(self.accuracy[-1]), "best_accuracy": float(np.nanmax(self.accuracy))} if (
            self.accuracy.size) else {}
        return acc | {"method": self.method, "family": self.family, "rounds": self.n_rounds,
                "planned_rounds": int(ok.sum()), "wall_clock_s": float(self.wall_clock_s[-1]) if self.n_rounds else 0.0,
                "mean_round_latency_s": float(self.latency_s[ok].mean()) if ok.any() else None,
                "total_energy_j": float(np.nansum(self.energy_j)) if self.family == "fl-energy" else None,
                "scheduler_time_s": float(self.solve_time_s.sum()), "jain_fairness": self.jain_fairness,
                "users_ever_selected": float((self.participation > 0).mean())}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "latency_s": self.latency_s.tolist(), "wall_clock_s": self.wall_clock_s.tolist(),
                "energy_j": self.energy_j.tolist(), "solve_time_s": self.solve_time_s.tolist(),
                "status": list(self.status), "participation": self.participation.tolist(),
                "accuracy": self.accuracy.tolist()}

    def export_flower(self, out_dir: str | Path) -> list[Path]:
        """One ``flower_round_<r>.json`` per planned round (see the module docstring)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for cfg in self.flower:
            path = out / f"flower_round_{cfg['server_round']:04d}.json"
            path.write_text(json.dumps(cfg, indent=2) + "\n")
            paths.append(path)
        return paths


def simulate_fl(n_rounds: int = 50, n_users: int = 100, n_bs: int = 4, n_select: int = 20, method: str = "dagsa", *,
                family: str = "fl-round", seed: int = 0, speed_mps: Any = 20.0, redraw_every: int = 1,
                side_m: float = 1000.0, stall_s: float = 1.0, time_limit: float | None = None,
                options: Mapping[str, Any] | None = None, cpu_hz: tuple[float, float] = (1e8, 1e9),
                samples: tuple[int, int] = (300, 900), keep_flower: bool = False, train: Any = None,
                train_options: Mapping[str, Any] | None = None, progress: bool | None = None,
                **round_params: Any) -> FLSimulation:
    """Play ``n_rounds`` rounds of ``family`` planned by ``method`` (see the module docstring).

    The same ``seed`` gives every method the same users, trajectory draws and fading sequence, so methods are
    compared on common random numbers (positions differ once round lengths differ).

    Parameters
    ----------
    n_rounds, n_users, n_bs, n_select
        Rounds to play, mobile users, base stations, users selected per round :math:`K`.
    method
        The planner (any method that solves the family's problem).
    family
        ``"fl-round"`` (least round latency) or ``"fl-energy"`` (least energy under a deadline).
    seed
        Seeds users, trajectories, fading and the solver.
    speed_mps
        Every user's speed (m/s), a per-user array, or ``(low, high)`` to draw uniformly.
    redraw_every
        Rounds between new random headings.
    side_m
        Side of the square area (m); users reflect at its walls.
    stall_s
        Wall-clock charged for a round without a plan.
    time_limit, options
        Per-round solve limit and method options.
    cpu_hz, samples
        Ranges the users' CPU clocks and sample counts are drawn from.
    keep_flower
        Keep each round's Flower configuration (``FLSimulation.flower``; :func:`run_flower` replays them).
    train, train_options
        ``True`` (the FMNIST CNN), a model name or an :class:`~edgeplan.validation.fltask.FLTask` trains every
        round for real; ``train_options`` go to :class:`~edgeplan.validation.fltask.FLTrainer` (``batch_size``,
        ``lr``, ``dtype``, ``test_samples``, ``threads``).
    progress
        A bar over the rounds (``None``: on a terminal); each round is logged at INFO level to
        ``edgeplan.experiments.fl_rounds``.
    **round_params
        The family generator's parameters (``bs_bandwidth_hz``, ``payload_bits``, ``local_epochs``, ``coverage``,
        ``deadline_s`` ...).

    Returns
    -------
    FLSimulation
        Per round: latency, cumulative wall-clock, energy, solve time, status, selection, base stations, and
        test accuracy when trained.
    """
    r_total = count("n_rounds", n_rounds)
    n = count("n_users", n_users, minimum=1)
    one_of("family", family, FAMILIES)
    as_scalar("stall_s", stall_s, min_value=0.0)
    redraw = count("redraw_every", redraw_every, minimum=1)
    from edgeplan.solvers.api import solve

    rng = np.random.default_rng(seed)
    area, _ = bs_layout(n_bs, side_m)
    pos = area.uniform(n, seed=rng)
    speed = (rng.uniform(float(speed_mps[0]), float(speed_mps[1]), size=n) if isinstance(speed_mps, tuple)
             else np.broadcast_to(np.asarray(speed_mps, dtype=float), (n,)).copy())
    d = rng.integers(samples[0], samples[1] + 1, size=n).astype(float)
    f = rng.uniform(cpu_hz[0], cpu_hz[1], size=n)
    make = fl_round_instance if family == "fl-round" else fl_energy_instance
    extra = {"cpu_hz": f} if family == "fl-round" else {"cpu_hz": cpu_hz}
    lat, wall, energy, solve_t = (np.full(r_total, np.nan) for _ in range(4))
    status: list[str] = []
    sel = np.zeros((r_total, n), dtype=bool)
    bs = np.full((r_total, n), -1, dtype=np.int64)
    flower: list[dict[str, Any]] = []
    clock = 0.0
    trainer = _trainer(train, train_options)
    acc = np.full(r_total if trainer is not None else 0, np.nan)
    heading = rng.uniform(0.0, 2.0 * np.pi, size=n)
    round_seeds = rng.integers(0, 2**31, size=r_total)
    bar = progress_bar(r_total, f"simulate_fl {method}", progress, unit="round")
    for r in range(r_total):
        if r % redraw == 0 and r > 0:
            heading = rng.uniform(0.0, 2.0 * np.pi, size=n)
        vel = speed[:, None] * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
        problem = make(n, n_bs, n_select, seed=int(round_seeds[r]), side_m=side_m, samples=d, positions_m=pos,
                       velocities_mps=vel, **extra, **round_params)
        t0 = time.perf_counter()
        res = solve(problem, method, time_limit=time_limit, seed=int(round_seeds[r]), options=options)
        solve_t[r] = time.perf_counter() - t0
        status.append(res.status.value)
        if res.has_plan:
            m = problem.evaluate(res.plan)
            elapsed = float(np.nanmax(m.latency_s)) if res.plan.selected.any() else 0.0
            lat[r] = elapsed
            energy[r] = m.objective if family == "fl-energy" else np.nan
            sel[r] = res.plan.selected
            bs[r] = res.plan.bs
            if keep_flower:
                flower.append(flower_round_config(problem, res.plan, r + 1))
            if trainer is not None:
                acc[r] = trainer.round(np.flatnonzero(res.plan.selected), problem.samples, problem.local_epochs)
        else:
            elapsed = float(stall_s)
            if trainer is not None:
                acc[r] = acc[r - 1] if r else trainer.accuracy()
        clock += elapsed
        wall[r] = clock
        log.info("%s round %d/%d: %s, round %.4g s, wall-clock %.4g s%s", method, r + 1, r_total, status[-1],
                 elapsed, clock, f", accuracy {acc[r]:.4f}" if trainer is not None else "")
        bar.update(1)
        moved, flip = area.reflect(pos + vel * elapsed)
        pos = moved
        heading = np.arctan2(flip[:, 1] * np.sin(heading), flip[:, 0] * np.cos(heading))
    bar.close()
    return FLSimulation(method=method, family=family, latency_s=lat, wall_clock_s=wall, energy_j=energy,
                        solve_time_s=solve_t, status=tuple(status), selected=sel, bs=bs, speed_mps=speed,
                        flower=tuple(flower), accuracy=acc)


def _trainer(train: Any, options: Mapping[str, Any] | None) -> Any:
    if train is None or train is False:
        return None
    from edgeplan.validation.fltask import FLTask, FLTrainer, fl_task

    if train is True:
        task = fl_task()
    elif isinstance(train, str):
        task = fl_task(train)
    elif isinstance(train, FLTask):
        task = train
    else:
        raise ProblemDataError(f"`train` = {train!r}; expected True, a model name or an FLTask")
    return FLTrainer(task, **dict(options or {}))


def compare_simulations(methods: Iterable[str], **kwargs: Any) -> dict[str, FLSimulation]:
    """:func:`simulate_fl` for each method with the same arguments (common random numbers).

    Parameters
    ----------
    methods
        The planners to compare.
    **kwargs
        :func:`simulate_fl`'s arguments, the same for every method.

    Returns
    -------
    dict of str to FLSimulation
        One simulation per method, in the order given.
    """
    return {m: simulate_fl(method=m, **kwargs) for m in methods}


def _per_method(sims: Mapping[str, FLSimulation], xy: Any, xlabel: str, ylabel: str, title: str,
                path: str | Path | None, **style: Any) -> Any:
    from edgeplan.experiments.plot import new_figure, save_figure, series_style

    fig, ax = new_figure()
    for i, (name, sim) in enumerate(sims.items()):
        ax.plot(*xy(sim), label=name, **{**series_style(i), "markevery": max(1, sim.n_rounds // 10), **style})
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_wall_clock(sims: Mapping[str, FLSimulation], path: str | Path | None = None, *,
                    title: str | None = None) -> Any:
    """Cumulative wall-clock against rounds, one line per method.

    Parameters
    ----------
    sims
        ``{method: FLSimulation}`` (:func:`compare_simulations`).
    path
        Save the figure there (.png, .svg or .pdf).
    title
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _per_method(sims, lambda sim: (np.arange(1, sim.n_rounds + 1), sim.wall_clock_s), "round",
                       "cumulative wall-clock (s)", title or "FL rounds under mobility", path)


def plot_accuracy(sims: Mapping[str, FLSimulation], path: str | Path | None = None, *,
                  title: str | None = None) -> Any:
    """Test accuracy against cumulative wall-clock, one line per method (simulations run with ``train``).

    Parameters
    ----------
    sims
        ``{method: FLSimulation}`` made with ``train=...``.
    path
        Save the figure there (.png, .svg or .pdf).
    title
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    missing = [name for name, sim in sims.items() if sim.accuracy.size == 0]
    if missing:
        raise ProblemDataError(f"simulations {missing} have no accuracy; expected simulate_fl(..., train=True)")
    return _per_method(sims, lambda sim: (sim.wall_clock_s, sim.accuracy), "cumulative wall-clock (s)",
                       "test accuracy", title or "FedAvg accuracy against wall-clock", path, markersize=4)


__all__ = ["FLOWER_FORMAT", "FLSimulation", "compare_simulations",
           "flower_round_config", "plot_accuracy", "plot_wall_clock", "simulate_fl"]
