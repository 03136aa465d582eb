"""Multi-round FL simulation and the Flower-style exporter."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgeplan as ep
from edgeplan import PlanError, ProblemDataError
from edgeplan.experiments.fl_rounds import (
    FLOWER_FORMAT,
    compare_simulations,
    flower_round_config,
    plot_wall_clock,
    simulate_fl,
)
from edgeplan.formulations.fl.instances import fl_energy_instance, fl_round_instance


def test_simulation_accumulates_round_latencies_and_selections() -> None:
    sims = compare_simulations(["dagsa", "random"], n_rounds=6, n_users=24, n_bs=4, n_select=5, seed=3)
    for name, sim in sims.items():
        assert sim.n_rounds == 6 and all(s in ("optimal", "feasible") for s in sim.status), name
        np.testing.assert_allclose(sim.wall_clock_s, np.cumsum(sim.latency_s))
        assert (sim.selected.sum(axis=1) == 5).all() and sim.participation.sum() == 30
        assert 1 / 24 <= sim.jain_fairness <= 1.0
        assert ((sim.bs >= 0) == sim.selected).all()
        summary = sim.summary()
        assert summary["wall_clock_s"] == pytest.approx(sim.latency_s.sum()) and summary["planned_rounds"] == 6
        json.dumps(sim.to_dict())
    # DAGSA plans shorter rounds than random selection with equal bandwidth, round by round on average
    assert sims["dagsa"].wall_clock_s[-1] < sims["random"].wall_clock_s[-1]


def test_rounds_without_a_plan_stall_and_same_seed_is_reproducible() -> None:
    sim = simulate_fl(3, 8, 4, 8, "dagsa", seed=1, coverage="disc", cell_radius_m=60.0, stall_s=2.5)
    assert set(sim.status) <= {"infeasible", "no_solution"} and sim.wall_clock_s[-1] == pytest.approx(7.5)
    assert not sim.selected.any() and np.isnan(sim.latency_s).all()
    a = simulate_fl(3, 12, 2, 3, "fastest-compute", seed=9)
    b = simulate_fl(3, 12, 2, 3, "fastest-compute", seed=9)
    np.testing.assert_array_equal(a.wall_clock_s, b.wall_clock_s)


def test_energy_family_simulation_records_energy() -> None:
    sim = simulate_fl(3, 16, 2, 3, "do-snm", family="fl-energy", seed=2, deadline_s=0.9, keep_flower=True)
    assert sim.family == "fl-energy" and np.all(sim.energy_j > 0)
    assert sim.summary()["total_energy_j"] == pytest.approx(sim.energy_j.sum())
    assert len(sim.flower) == 3 and sim.flower[0]["round_energy_j"] == pytest.approx(sim.energy_j[0])
    with pytest.raises(ProblemDataError, match=r"`family` = 'fl-x'; expected one of 'fl-round', 'fl-energy'"):
        simulate_fl(1, 4, 1, 1, family="fl-x")
    with pytest.raises(ProblemDataError, match=r"`n_rounds` = -1; expected an integer >= 0"):
        simulate_fl(-1)


def test_flower_export_of_a_plan(tmp_path) -> None:
    p = fl_round_instance(15, 3, 4, seed=2)
    r = ep.solve(p, "dagsa")
    assert "flower" in ep.io.plans.exporters_for(r.plan)
    (path,) = ep.export_plan(p, r.plan, "flower", tmp_path, server_round=7)
    doc = json.loads(path.read_text())
    assert doc["format"] == FLOWER_FORMAT and doc["server_round"] == 7 and doc["num_clients"] == 4
    assert doc["round_latency_s"] == pytest.approx(r.fun)
    for client in doc["fit_clients"]:
        u = int(client["cid"])
        cfg = client["config"]
        assert all(isinstance(v, bool | int | float | str) for v in cfg.values())   # Flower's Scalar types
        assert cfg["base_station"] == r.plan.bs[u] and cfg["bandwidth_hz"] == r.plan.bandwidth_hz[u]
        assert cfg["planned_latency_s"] <= r.fun * (1 + 1e-12) and cfg["local_epochs"] == 5
    q = fl_energy_instance(10, 2, 3, seed=1, deadline_s=0.8)
    e = ep.solve(q, "fl-energy")
    cfg = flower_round_config(q, e.plan, 2, client_ids=[f"c{i}" for i in range(10)])
    assert cfg["family"] == "fl-energy" and {c["cid"][0] for c in cfg["fit_clients"]} == {"c"}
    assert all(c["config"]["planned_latency_s"] <= 0.8 * (1 + 1e-9) for c in cfg["fit_clients"])
    with pytest.raises(ProblemDataError, match=r"`client_ids` has 2 names; expected 10, one per user"):
        flower_round_config(q, e.plan, client_ids=["a", "b"])
    with pytest.raises(PlanError, match=r"`to` = 'onnx' is not an export format for a FLRound plan \(FLSchedule\)"):
        ep.export_plan(p, r.plan, "onnx", tmp_path)


def test_wall_clock_plot(tmp_path) -> None:
    sims = compare_simulations(["dagsa", "fastest-compute"], n_rounds=3, n_users=12, n_select=3, seed=0)
    fig = plot_wall_clock(sims, tmp_path / "wall.png")
    assert (tmp_path / "wall.png").stat().st_size > 0 and len(fig.axes[0].lines) == 2
    paths = simulate_fl(2, 10, 2, 2, "dagsa", seed=0, keep_flower=True).export_flower(tmp_path / "rounds")
    assert [p.name for p in paths] == ["flower_round_0001.json", "flower_round_0002.json"]
    with pytest.raises(ProblemDataError, match=r"`path` = '.*wall.txt'; expected a file ending in .png"):
        plot_wall_clock(sims, tmp_path / "wall.txt")


def test_compare_runs_an_fl_scenario_and_block_models_need_a_width() -> None:
    from edgeplan import UnsupportedProblemError
    from edgeplan.io.scenarios import Scenario

    sc = Scenario("fl", "fl-round", params={"n_users": 12, "n_bs": 2, "n_select": 3}, sweep={"speed_mps": [0.0, 30.0]},
                  seeds=(0, 1))
    df = ep.compare(sc, ["fl-bisect", "dagsa", "random"], measure_memory=False)
    assert len(df) == 12 and set(df["status"]) <= {"optimal", "feasible"}
    exact = df[df.method == "fl-bisect"].set_index(["speed_mps", "seed"])["objective"]
    for m in ("dagsa", "random"):
        heur = df[df.method == m].set_index(["speed_mps", "seed"])["objective"]
        assert (heur >= exact * (1 - 1e-9)).all()
    p = fl_round_instance(6, 2, 2, seed=0)
    with pytest.raises(UnsupportedProblemError, match=r"the resource-block MILP needs a block width"):
        p.rb_milp()
    with pytest.raises(UnsupportedProblemError, match=r"`resource_block_hz` is None: this round has continuous"):
        _ = fl_energy_instance(4, 1, 1, seed=0).n_blocks


def test_simulation_trains_for_real_and_plots_accuracy_against_wall_clock(tmp_path) -> None:
    from edgeplan.experiments.fl_rounds import plot_accuracy
    from edgeplan.validation.fltask import fl_task

    kw = {"n_rounds": 6, "n_users": 16, "n_select": 4, "samples": (60, 100), "local_epochs": 2, "seed": 2,
          "train": fl_task(noise=1.0, seed=5), "train_options": {"test_samples": 200}}
    sims = compare_simulations(["dagsa", "random"], **kw)
    for sim in sims.values():
        assert sim.accuracy.shape == (6,) and ((sim.accuracy >= 0) & (sim.accuracy <= 1)).all()
        assert sim.accuracy[-1] > 0.3  # chance is 0.1: the FedAvg rounds really trained the CNN
        assert sim.summary()["final_accuracy"] == sim.accuracy[-1]
        hit = sim.time_to_accuracy(0.3)
        assert hit == sim.wall_clock_s[np.argmax(sim.accuracy >= 0.3)]
        assert sim.time_to_accuracy(1.01) == np.inf
    again = simulate_fl(method="dagsa", **kw)
    np.testing.assert_array_equal(again.accuracy, sims["dagsa"].accuracy)
    assert np.isnan(simulate_fl(2, 8, 4, 2, "random", seed=1).time_to_accuracy(0.5))
    fig = tmp_path / "acc.png"
    plot_accuracy(sims, fig)
    assert fig.stat().st_size > 5000
    with pytest.raises(ProblemDataError, match="have no accuracy"):
        plot_accuracy({"plain": simulate_fl(2, 8, 4, 2, "random", seed=1)})
    with pytest.raises(ProblemDataError, match="`train` = 3"):
        simulate_fl(1, 8, 4, 2, "random", train=3)
