"""Every CLI command through its entry point, bad arguments included."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeplan.cli.main import main

EXAMPLE = str(Path(__file__).parent.parent / "edgeplan" / "examples" / "knapsack-sweep.toml")


def test_methods_lists_every_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("highs", "cp-sat", "scipy", "pyomo"):
        assert f"\n{name} " in "\n" + out
    assert main(["methods", "--problem", "MILP"]) == 0
    capsys.readouterr()
    assert main(["methods", "-v", "--problem", "SplitInference"]) == 0
    out = capsys.readouterr().out
    assert "module edgeplan.solvers.partition.split_enum" in out and "cannot take a DAG model" in out
    assert "options bisection=False, window=2, rounds=4" in out


def test_demo_prints_the_catalog_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--time-limit", "0.3", "--seeds", "2", "--quick"]) == 0
    out = capsys.readouterr().out
    agree = re.search(r"(\d+)/(\d+) runs agree with the hand-derived answers", out)
    assert agree and agree.group(1) == agree.group(2) and int(agree.group(2)) >= 48
    assert "mdknap-60x10" in out and "feasible  time" in out
    assert "Family tour" in out and "SLIDE" in out and "pipeline-dp" in out


def test_solve_validate_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.json"
    assert main(["solve", EXAMPLE, "-m", "cp-sat", "--instance", "3", "--out", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "status    optimal" in out and plan.exists()
    assert main(["validate", str(plan)]) == 0
    assert "check     ok" in capsys.readouterr().out
    assert main(["export", str(plan), "--to", "onnx", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "a MILP plan (a solution vector) has no export formats" in err and "SplitPlan (onnx, split-spec)" in err


def test_an_fl_plan_is_executed_by_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "fl.json"
    example = str(Path(EXAMPLE).parent / "fl-round-sweep.toml")
    assert main(["solve", example, "-m", "dagsa", "--out", str(plan)]) == 0
    capsys.readouterr()
    assert main(["validate", str(plan)]) == 0
    out = capsys.readouterr().out
    assert "check     ok" in out and "execute   FL round" in out
    assert re.search(r"4 users, predicted [0-9.]+ s, measured [0-9.]+ s", out), out
    data = json.loads(plan.read_text())
    data["plan"]["bandwidth_hz"] = [b * 10 for b in data["plan"]["bandwidth_hz"]]  # every BS over its band
    plan.write_text(json.dumps(data))
    assert main(["validate", str(plan)]) == 1
    out = capsys.readouterr().out
    assert "violation(s)" in out and "execute   skipped: the plan is infeasible" in out and "predicted" not in out


def test_compare_writes_rows_and_a_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv, fig = tmp_path / "r.csv", tmp_path / "f.png"
    args = ["compare", EXAMPLE, "--methods", "highs,cp-sat", "--sweep", "n_items=6,9", "--seeds", "2",
            "--out", str(csv), "--plot", str(fig), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "8 runs (8 computed now)" in out and fig.stat().st_size > 5000
    assert main(args) == 0
    assert "8 runs (0 computed now)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve", "missing.toml"], "no such scenario file"),
        (["solve", EXAMPLE, "-m", "gurobi"], "`method` = 'gurobi' is not a registered method"),
        (["solve", EXAMPLE, "--instance", "99"], "`--instance` = 99; the scenario has instances 0..14"),
        (["solve", EXAMPLE, "--options", "{bad"], "`--options` = '{bad' is not JSON"),
        (["solve", EXAMPLE, "--time-limit", "-1"], "`time_limit` = -1.0; expected a positive number"),
        (["compare", EXAMPLE, "--sweep", "n_items"], "`--sweep` = 'n_items'; expected key=v1,v2"),
        (["compare", EXAMPLE, "--methods", "highs", "--executor", "dask", "--no-progress"],
         "executor 'dask' needs `address`"),
        (["validate", "missing.json"], "no such plan file"),
        (["profile", "alexnet"], "`name` = 'alexnet'; expected one of"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgeplan: error: ") and message in err and err.count("\n") == 1


def test_usage_errors_and_help_through_the_console_script() -> None:
    exe = Path(sys.executable).parent / "edgeplan"
    bad = subprocess.run([str(exe), "frobnicate"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    for cmd in ("solve", "compare", "profile", "validate", "export", "methods", "demo"):
        ok = subprocess.run([str(exe), cmd, "--help"], capture_output=True, text=True)
        assert ok.returncode == 0 and "usage: edgeplan" in ok.stdout, cmd


def test_profile_writes_a_model_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgeplan.profiles import ModelProfile

    out = tmp_path / "r18.json"
    assert main(["profile", "resnet18", "--size", "tiny", "--repeats", "2", "--no-progress", "--out", str(out)]) == 0
    assert "resnet18-tiny" in capsys.readouterr().out
    prof = ModelProfile.load(out)
    assert prof.n_blocks >= 5 and prof.is_chain and prof.fwd_flops.sum() > 0
