"""compare(): tidy table, scenarios and sweeps, incremental results that resume, executors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import edgeplan as ep
from edgeplan import ProblemDataError
from edgeplan.io.scenarios import Scenario
from edgeplan.solvers.catalog import CATALOG

EXAMPLE = Path(__file__).parent.parent / "edgeplan" / "examples" / "knapsack-sweep.toml"
STABLE = ["instance", "seed", "method", "status", "objective", "bound", "best_bound", "gap_to_best"]


def test_compare_table_of_built_problems() -> None:
    probs = {c.name: c.milp for c in CATALOG if c.name in ("knapsack", "fractional-lp", "infeasible")}
    df = ep.compare(probs, ["highs", "cp-sat", "scipy"])
    assert list(df.columns[:4]) == ["instance", "seed", "method", "kind"] and len(df) == 9
    by = df.set_index(["instance", "method"])
    assert by.loc[("knapsack", "cp-sat"), "objective"] == 23.0
    assert by.loc[("knapsack", "highs"), "best_bound"] == 23.0
    assert by.loc[("knapsack", "scipy"), "gap_to_best"] == 0.0
    assert by.loc[("fractional-lp", "cp-sat"), "status"] == "skipped"
    assert "continuous" in by.loc[("fractional-lp", "cp-sat"), "message"]
    assert set(by.xs("infeasible", level="instance")["status"]) == {"infeasible"}
    assert (df["peak_mem_mb"] >= 0).all()


def test_memory_probe_sees_a_large_allocation() -> None:
    import numpy as np

    from edgeplan.experiments.compare import MemoryProbe

    with MemoryProbe() as probe:
        a = np.ones(20_000_000)  # 160 MB
        a[::4096] = 2.0
        del a
    assert 140 < probe.peak_mb < 400


def test_gap_to_best_bound_of_a_time_limited_run() -> None:
    from edgeplan.formulations.instances import hard_knapsack

    df = ep.compare([hard_knapsack()], ["highs", "cp-sat"], time_limit=0.3)
    best = df["best_bound"].iloc[0]
    assert best == min(df["bound"])  # maximisation: the tightest valid bound is the smallest
    assert ((df["gap_to_best"] > 0) & (df["gap_to_best"] < 0.1)).all()


def test_scenario_file_and_sweep() -> None:
    scen = ep.load_scenario(EXAMPLE)
    assert len(scen) == 15 and scen.solve["methods"] == ["highs", "cp-sat", "scipy"]
    df = ep.compare(scen, ["highs"], sweep={"n_items": [8, 12]}, seeds=[0, 1])
    assert len(df) == 4 and sorted(set(df["n_items"])) == [8, 12] and set(df["n_rows"]) == {5}
    assert (df["status"] == "optimal").all()
    assert df["instance"].str.contains("n_items=8").sum() == 2
    with pytest.raises(ProblemDataError, match="`sweep` needs a scenario"):
        ep.compare([CATALOG[0].milp], ["highs"], sweep={"n": [1]})


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name = 'x'\n", r"missing key `family`; expected one of .*knapsack"),
        ("family = 'nope'\n", r"`family` = 'nope'; expected one of"),
        ("family = 'knapsack'\nseeds = -1\n", r"`seeds` = -1; expected a positive count"),
        ("family = 'knapsack'\ncolour = 1\n", r"unknown keys \['colour'\]"),
        ("family = 'knapsack'\n[sweep]\nn_items = 3\n", r"`sweep.n_items` = 3; expected a non-empty list"),
        ("family = \n", r"not valid TOML"),
    ],
)
def test_bad_scenario_files(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "s.toml"
    f.write_text(text)
    with pytest.raises(ProblemDataError, match=match):
        ep.load_scenario(f)
    with pytest.raises(ProblemDataError, match="no such scenario file"):
        ep.load_scenario(tmp_path / "missing.toml")


def test_bad_compare_arguments() -> None:
    with pytest.raises(ProblemDataError, match="`executor` = 'mpi'; expected one of inprocess, process, dask"):
        ep.compare([CATALOG[0].milp], ["highs"], executor="mpi")
    with pytest.raises(ProblemDataError, match=r"`options` names methods \['cp-sat'\] that are not compared"):
        ep.compare([CATALOG[0].milp], ["highs"], options={"cp-sat": {}})
    with pytest.raises(ProblemDataError, match="executor 'dask' needs `address`"):
        ep.compare([CATALOG[0].milp], ["highs"], executor="dask")


SWEEP_SCRIPT = textwrap.dedent("""
    import sys
    import edgeplan as ep
    from edgeplan.io.scenarios import Scenario
    if __name__ == "__main__":
        scen = Scenario("big", "knapsack", {"n_rows": 2, "correlated": False}, {"n_items": [4, 5, 6, 7]},
                        tuple(range(50)))
        df = ep.compare(scen, ["highs", "cp-sat", "scipy", "pyomo"], out=sys.argv[1], progress=True)
        print("computed", df.attrs["computed"], "rows", len(df))
""")


def test_interrupted_sweep_resumes_without_recomputing(tmp_path: Path) -> None:
    """200 instances x 4 methods, killed mid-way, then finished by the same call."""
    out = tmp_path / "results.csv"
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if out.exists() and out.read_text().count("\n") > 150:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = pd.read_csv(out)
    assert 150 <= len(before) < 800
    scen = Scenario("big", "knapsack", {"n_rows": 2, "correlated": False}, {"n_items": [4, 5, 6, 7]},
                    tuple(range(50)))
    df = ep.compare(scen, ["highs", "cp-sat", "scipy", "pyomo"], out=out)
    assert len(df) == 800 and df.attrs["computed"] == 800 - len(before)
    assert not df.duplicated(["instance", "method"]).any()
    assert set(df["status"]) == {"optimal"}
    after = pd.read_csv(out)
    assert len(after) == 800  # nothing lost, nothing written twice
    assert ep.compare(scen, ["highs", "cp-sat", "scipy", "pyomo"], out=out).attrs["computed"] == 0


def _small() -> Scenario:
    return Scenario("small", "knapsack", {"n_rows": 3}, {"n_items": [6, 9]}, (0, 1, 2))


def test_process_pool_gives_the_same_table() -> None:
    a = ep.compare(_small(), ["highs", "cp-sat"])
    b = ep.compare(_small(), ["highs", "cp-sat"], executor="process", max_workers=2)
    pd.testing.assert_frame_equal(a[STABLE], b[STABLE])


def test_dask_local_cluster_gives_the_same_table() -> None:
    distributed = pytest.importorskip("distributed")
    a = ep.compare(_small(), ["highs", "cp-sat"])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        b = ep.compare(_small(), ["highs", "cp-sat"], executor="dask", address=lc.scheduler_address)
    pd.testing.assert_frame_equal(a[STABLE], b[STABLE])


def test_a_file_that_is_not_ours_is_refused_and_left_untouched(tmp_path: Path) -> None:
    """`compare --out keep.json` on a file that is not a results CSV truncated it to nothing: it is refused, named,
    and its bytes stay as they were (no trailing newline included, which the torn-tail repair used to cut)."""
    keep = tmp_path / "keep.json"
    keep.write_bytes(b'{"precious": [1, 2, 3]}\n{"no newline at the end": true}')
    before = keep.read_bytes()
    with pytest.raises(ProblemDataError, match=r"keep\.json' is not an edgeplan results file .* left untouched"):
        ep.compare(_small(), ["highs"], out=keep)
    assert keep.read_bytes() == before


def test_a_row_torn_inside_a_quoted_message_is_cut(tmp_path: Path) -> None:
    """A run killed while writing a multi-line quoted message leaves an open quote: that row counts as torn."""
    from edgeplan.experiments.compare import RAW_COLUMNS, _read_done

    out = tmp_path / "results.csv"
    ep.compare(_small(), ["highs"], out=out)
    whole = out.read_bytes()
    n = len(pd.read_csv(out))
    torn = ",".join(["x"] * (len(RAW_COLUMNS) - 1)) + ',"first line of a message\nsecond line, and then the kill'
    out.write_bytes(whole + torn.encode())
    assert len(_read_done(out)) == n and out.read_bytes() == whole
    out.write_bytes(whole + b"a,b,c")                       # too few fields, no newline
    assert len(_read_done(out)) == n and out.read_bytes() == whole


def test_a_results_file_in_use_by_another_run_is_refused(tmp_path: Path) -> None:
    """Two runs on one CSV each wrote every row (no lock): the file's advisory lock refuses the second at once."""
    import fcntl

    out = tmp_path / "results.csv"
    ep.compare(_small(), ["highs"], out=out)
    before = out.read_bytes()
    with out.open("a") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)   # another compare run holds it
        with pytest.raises(ProblemDataError, match=r"results\.csv' is being written by another compare run"):
            ep.compare(_small(), ["highs", "cp-sat"], out=out)
    assert out.read_bytes() == before
    assert ep.compare(_small(), ["highs", "cp-sat"], out=out).attrs["computed"] == 6   # free again: resumes


def test_resume_dedupes_and_keeps_only_rows_of_the_same_configuration(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    first = ep.compare(_small(), ["highs", "cp-sat"], out=out, time_limit=5)
    text = out.read_text()
    header, *rows = text.splitlines(keepends=True)
    out.write_text(header + "".join(rows) + "".join(rows))          # every row twice (two unlocked runs did this)
    again = ep.compare(_small(), ["highs", "cp-sat"], out=out, time_limit=5)
    assert again.attrs["computed"] == 0 and len(again) == len(first) == 12
    assert not again.duplicated(["instance", "method"]).any()
    other = ep.compare(_small(), ["highs", "cp-sat"], out=out, time_limit=10)      # another limit: recomputed
    assert other.attrs["computed"] == 12 and len(other) == 12
    opts = ep.compare(_small(), ["highs", "cp-sat"], out=out, time_limit=10, options={"highs": {"mip_rel_gap": 0.0}})
    assert opts.attrs["computed"] == 6                                               # only highs' options changed
    config = json.loads(pd.read_csv(out)["config"].iloc[-1])
    assert config["time_limit"] == 10 and config["edgeplan"] == ep.__version__ and "highspy" in str(config)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"time_limit": 0}, r"`time_limit` = 0; expected a positive number"),
    ({"options": {"highs": {"bogus": 1}}}, r"unknown keys \['bogus'\] for method 'highs'"),
    ({"options": {"highs": {"mip_rel_gap": "tight"}}}, r"`options\['mip_rel_gap'\]` = 'tight'"),
])
def test_bad_run_arguments_are_refused_before_any_row(tmp_path: Path, kwargs: dict, match: str) -> None:
    """A sweep with `--time-limit 0` stored an `error` row per task, which a rerun then took as done."""
    out = tmp_path / "results.csv"
    with pytest.raises(ProblemDataError, match=match):
        ep.compare(_small(), ["highs"], out=out, **kwargs)
    assert not out.exists()
