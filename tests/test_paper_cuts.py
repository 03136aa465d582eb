"""The everyday paper cuts found by trying the README as a new user: each test failed before its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import edgeplan as ep
from edgeplan.cli.main import _logging as main_logging
from edgeplan.cli.main import main


def test_compare_takes_a_seed_count_and_fills_the_seed_column(tmp_path: Path) -> None:
    df = ep.compare("knapsack-sweep", ["highs"], seeds=2, sweep={"n_items": [10]})  # TypeError before
    assert sorted(df["seed"]) == [0, 1]                                                # None before
    assert all(inst.endswith(f"/seed={s}") for inst, s in zip(df["instance"], df["seed"], strict=True))
    with pytest.raises(ep.ProblemDataError, match="`seeds` = 0; expected a count >= 1"):
        ep.compare("knapsack-sweep", ["highs"], seeds=0)
    with pytest.raises(ep.ProblemDataError, match="`seeds` = 'ab'"):
        ep.compare("knapsack-sweep", ["highs"], seeds="ab")


def test_a_results_file_reads_back_into_the_same_table_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    df = ep.compare("knapsack-sweep", ["highs", "cp-sat"], seeds=[3, 4], sweep={"n_items": [10, 20]}, out=out)
    back = ep.read_results(out)
    pd.testing.assert_frame_equal(df, back)
    ep.plot.objective_vs_param(back, "n_items", path=tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 1000
    with out.open("a") as fh:                         # a torn row: left out of the table, the file untouched
        fh.write("knapsack-sweep/x,0,highs,exact")
    size = out.stat().st_size
    pd.testing.assert_frame_equal(ep.read_results(out), df)
    assert out.stat().st_size == size


def test_export_of_a_milp_plan_says_which_plans_have_formats(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    assert main(["solve", "knapsack-sweep", "-m", "highs", "--out", str(plan)]) == 0
    capsys.readouterr()
    assert main(["export", str(plan), "--to", "split-spec", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "(none registered)" not in err
    assert "MILP plan (a solution vector) has no export formats" in err and "PipelinePlan (onnx, pipeedge" in err


def test_shipped_scenarios_load_by_name_from_anywhere(tmp_path: Path) -> None:
    from edgeplan.io.scenarios import shipped_scenarios

    assert {"knapsack-sweep", "fl-round-sweep", "gpt2-pipeline"} <= set(shipped_scenarios())
    run = subprocess.run([sys.executable, "-m", "edgeplan", "solve", "knapsack-sweep", "-m", "highs"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "status    optimal" in run.stdout, run.stderr
    with pytest.raises(ep.ProblemDataError, match="no shipped scenario of that name; expected a TOML file path or "
                       "one of cache-sweep"):
        ep.load_scenario("knapsack-swep")


def test_zoo_model_names_are_accepted_wherever_a_profile_is() -> None:
    from edgeplan.formulations.partition.instances import pipeline_instance, split_instance

    p = pipeline_instance("gpt2", ["jetson-nano", "jetson-orin-nx-16gb"], bandwidth_bps=100e6)  # rejected before
    assert p.model.name == "gpt2" and p.model.n_blocks > 10
    q = ep.PipelinePartition("gpt2", ["jetson-nano", "jetson-orin-nx-16gb"], rates_bps=p.rates_bps)
    assert ep.solve(q, "pipeline-dp").fun == pytest.approx(ep.solve(p, "pipeline-dp").fun)
    s = ep.SplitInference("resnet18-small", ["phone-midrange", "edge-server-t4"], ["ethernet-1g"])
    assert split_instance("resnet18-small", ["phone-midrange", "edge-server-t4"], 1e9).model == s.model
    with pytest.raises(ep.ProblemDataError, match="`model` = 'jetson-nano' is a DeviceProfile preset"):
        ep.SplitInference("jetson-nano", ["phone-midrange", "edge-server-t4"], ["ethernet-1g"])


def test_a_pipeline_scenario_names_model_device_and_link_presets() -> None:
    scen = ep.load_scenario("gpt2-pipeline")
    problems = list(scen)
    assert [p.devices[0].name for p in problems][:1] and all(p.model.name == "gpt2" for p in problems)
    rates = [float(np.min(p.rates_bps)) for p in problems]
    assert rates == sorted(rates) and rates[0] < rates[-1]


def test_a_plan_saved_from_python_validates_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    p = ep.MILP(c=[10, 13, 7, 8], A=[[3, 4, 2, 3]], row_upper=7, col_upper=1, integrality=[1, 1, 1, 1], sense="max")
    path = ep.save_plan(tmp_path / "plan.json", p, ep.solve(p, "highs"))
    assert main(["validate", str(path)]) == 0                                 # "no source" before
    out = capsys.readouterr().out
    assert "objective 23.0" in out and "check     ok" in out
    doc = json.loads(path.read_text())
    doc["problem"]["fields"]["c"]["base64"] = doc["problem"]["fields"]["c"]["base64"][::-1]  # edited data
    path.write_text(json.dumps(doc))
    assert main(["validate", str(path)]) == 2
    assert "problem" in capsys.readouterr().err
    doc["problem"] = {"__dataclass__": "Popen", "fields": {"args": ["true"]}}  # nothing is constructed by a name
    path.write_text(json.dumps(doc))
    assert main(["validate", str(path)]) == 2
    assert "'Popen' is not an edgeplan problem or profile type" in capsys.readouterr().err


def test_every_family_plan_saved_from_python_rebuilds_its_problem(tmp_path: Path) -> None:
    from edgeplan.io.plans import load_plan
    from edgeplan.registry import GENERATORS

    rebuilt = set()
    for name, g in GENERATORS.items():
        if g.real_model:
            continue
        p = g.func(**(g.tiny[0] if g.tiny else {}), seed=2)
        r = ep.solve(p)
        if r.has_plan:
            q = load_plan(ep.save_plan(tmp_path / f"{name}.json", p, r)).rebuild_problem()
            assert type(q) is type(p) and q.objective(r.plan) == p.objective(r.plan), name
            rebuilt.add(type(p).__name__)
    assert {"MILP", "SplitInference", "PipelinePartition", "FLRound", "SlideProvisioning", "CachePlacement"} <= rebuilt


def test_native_solver_output_is_captured_not_printed(capfd: pytest.CaptureFixture[str]) -> None:
    import ctypes

    from edgeplan.solvers.registry import METHODS, register

    knap = ep.MILP(c=[10, 13, 7, 8], A=[[3, 4, 2, 3]], row_upper=7, col_upper=1, integrality=[1] * 4, sense="max")

    def chatty(problem: ep.MILP, ctx: object) -> ep.Result:
        libc = ctypes.CDLL(None)
        libc.printf(b"native debug line from C\n")        # C stdio, buffered on a pipe: as HiGHS' debug print
        libc.dprintf(2, b"native line on fd 2\n")
        r = ep.solve(problem, "highs")                     # a solve inside a solve shares the capture
        return r.replace(stats={})

    register("test-chatty", problem=ep.MILP, kind="heuristic", requires=("ctypes",))(chatty)
    try:
        capfd.readouterr()
        r = ep.solve(knap, "test-chatty")
        out, err = capfd.readouterr()
        assert "native debug line" not in out and "native line on fd 2" not in err   # printed before the fix
        assert "native debug line from C" in r.stats["log"] and "native line on fd 2" in r.stats["log"]
        loud = ep.solve(knap, "highs", verbose=True)
        assert "Running HiGHS" in loud.stats["log"] and "Running HiGHS" in capfd.readouterr().err   # echoed live
    finally:
        METHODS.remove("test-chatty")


def test_long_runs_log_their_steps_and_the_cli_shows_them(caplog: pytest.LogCaptureFixture,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from edgeplan.experiments.fl_rounds import simulate_fl

    # an earlier test in this worker may have left an edgeplan logger disabled or with its own level (a
    # library's logging.config call, a CLI run): start from the state a fresh process has
    for name, each in list(logging.Logger.manager.loggerDict.items()):
        if name.startswith("edgeplan") and isinstance(each, logging.Logger):
            each.disabled = False
            each.setLevel(logging.NOTSET)
    with caplog.at_level(logging.INFO, logger="edgeplan"):
        simulate_fl(n_rounds=3, n_users=12, n_bs=2, n_select=4, method="dagsa", progress=False)
    rounds = [r.getMessage() for r in caplog.records if r.name == "edgeplan.experiments.fl_rounds"]
    assert len(rounds) == 3 and rounds[-1].startswith("dagsa round 3/3: ")
    try:
        assert main(["-v", "compare", "knapsack-sweep", "--methods", "highs", "--sweep", "n_items=10",
                     "--seeds", "2", "--no-progress"]) == 0
        err = capsys.readouterr().err
        assert err.count("edgeplan.experiments.compare: knapsack-sweep/") == 2
    finally:
        main_logging(0)


def test_plots_tell_tied_methods_apart_and_fit_only_finished_runs() -> None:
    rows = []
    for n in (10, 20, 40, 80):
        for method in ("exact-a", "exact-b"):   # identical curves
            limited = method == "exact-b" and n == 80
            rows.append({"instance": f"i{n}", "seed": 0, "n_items": n, "method": method, "status": "optimal",
                         "objective": float(n), "limit": "time" if limited else None,
                         "solve_time": 100.0 if limited else 1e-3 * n})
    df = pd.DataFrame(rows)
    fig = ep.plot.objective_vs_param(df, "n_items")
    lines = fig.axes[0].get_lines()
    assert len({(ln.get_marker(), ln.get_linestyle()) for ln in lines}) == 2          # both "o", "-" before
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "band: min to max over seeds" in labels
    fig = ep.plot.solve_time_vs_size(df, "n_items")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "exact-a (slope 1.00)" in labels                                          # slope 1.68 for b before
    assert "exact-b (slope 1.00; 1 limited runs excluded)" in labels
    assert "stopped by a limit (not fitted)" in labels and fig.axes[0].get_ylabel() == "solve_time (s)"


BLOCK_TORCH = '''
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "onnx", "onnxruntime", "peft", "flwr"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
'''


def test_a_solver_only_install_solves_compares_and_says_what_validation_needs(tmp_path: Path) -> None:
    script = BLOCK_TORCH + '''
import edgeplan as ep
from edgeplan.cli.main import main
p = ep.PipelinePartition("gpt2", ["jetson-nano", "jetson-orin-nx-16gb"], rates_bps=[[1e9, 1e8], [1e8, 1e9]])
r = ep.solve(p)
assert r.status.value == "optimal", r
ep.save_plan("plan.json", p, r)
assert ep.compare("knapsack-sweep", ["highs", "cp-sat"], seeds=1).shape[0] == 6
assert main(["solve", "fl-round-sweep", "-m", "dagsa"]) == 0
assert main(["export", "plan.json", "--to", "onnx"]) == 2
assert main(["profile", "resnet18"]) == 2
assert "torch" not in sys.modules
'''
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "export_onnx_pipeline needs onnx, which is not installed; install it with `pip install 'edgeplan[torch]'`" \
        in run.stderr
    assert "`profile` needs torch" in run.stderr


def test_the_package_declares_its_license_and_torch_is_an_extra() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    meta = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "Apache-2.0" and (root / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert not any(d.startswith(("torch", "transformers")) for d in meta["dependencies"])
    assert any(d.startswith("torch") for d in meta["optional-dependencies"]["torch"])


def test_the_readme_figures_come_from_gallery_scripts_that_match_their_snippets() -> None:
    import re

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    for figure in re.findall(r"!\[[^\]]*\]\(docs/([\w-]+\.png)\)", readme):
        script = root / "docs" / "gallery" / f"{figure[:-4].replace('-', '_')}.py"
        assert script.exists() and figure in script.read_text(), figure        # one command per figure
    snippet = re.search(r"methods = (\[.*?\])\nsims = compare_simulations", readme).group(1)
    script = (root / "docs" / "gallery" / "fl_accuracy.py").read_text()
    assert f"METHODS = {snippet}" in script                                   # three methods shown, six drawn before
