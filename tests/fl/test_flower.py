"""FL plans applied by a Flower strategy inside Flower's server loop, with clients that train for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flwr.server import SimpleClientManager

import edgeplan as ep
from edgeplan.experiments.fl_rounds import simulate_fl
from edgeplan.experiments.flower_run import run_flower
from edgeplan.io.flower_strategy import PlannedFedAvg, load_round_configs


@pytest.fixture(scope="module")
def planned():
    return simulate_fl(n_rounds=3, n_users=12, n_bs=2, n_select=4, method="dagsa", keep_flower=True,
                       samples=(30, 60), local_epochs=2, progress=False)


def test_flower_executes_the_planned_rounds(planned) -> None:
    run = run_flower(planned.flower)
    for r, cfg in enumerate(planned.flower, start=1):
        want = sorted(c["cid"] for c in cfg["fit_clients"])
        assert run.clients(r) == want == sorted(run.asked[r])            # selected by the plan, trained by Flower
        for c in cfg["fit_clients"]:
            got = run.asked[r][c["cid"]]
            assert got["local_epochs"] == c["config"]["local_epochs"] == 2
            assert got["bandwidth_hz"] == c["config"]["bandwidth_hz"] and got["server_round"] == r
    assert [r for r, _ in run.history.metrics_centralized["accuracy"]] == [0, 1, 2, 3]
    assert run.accuracy[-1] > run.history.metrics_centralized["accuracy"][0][1]   # FedAvg learned something


def test_flower_round_files_drive_the_strategy_and_missing_clients_are_named(planned, tmp_path: Path) -> None:
    paths = []
    for r, cfg in enumerate(planned.flower, start=1):
        p = tmp_path / f"flower_round_{r:04d}.json"
        p.write_text(json.dumps(cfg))
        paths.append(p)
    rounds = load_round_configs(paths[::-1])
    assert [c["server_round"] for c in rounds] == [1, 2, 3]
    strategy = PlannedFedAvg(rounds, client_map={str(u): f"node-{u}" for u in range(12)})
    with pytest.raises(ep.PlanError, match=r"round 1: planned clients \['node-"):
        strategy.configure_fit(1, None, SimpleClientManager())
    skip = PlannedFedAvg(rounds, missing="skip")
    assert skip.configure_fit(2, None, SimpleClientManager()) == [] and len(skip.missing[2]) == 4
    with pytest.raises(ep.PlanError, match=r"server round 4 has no plan; the plan covers rounds 1\.\.3"):
        skip.configure_fit(4, None, SimpleClientManager())
