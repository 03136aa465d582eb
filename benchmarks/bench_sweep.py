"""The issue-8 sweep: 200 instances x 4 methods with a progress bar and an incremental CSV, killed
mid-way and resumed, then the same sweep on a Dask LocalCluster; prints times and whether the tables agree.

Run: ``python benchmarks/bench_sweep.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import edgeplan as ep
from edgeplan.io.scenarios import Scenario

METHODS = ["highs", "cp-sat", "scipy", "pyomo"]
STABLE = ["instance", "method", "status", "objective", "best_bound"]
SCRIPT = """
import sys
import edgeplan as ep
from edgeplan.io.scenarios import Scenario
if __name__ == "__main__":
    scen = Scenario("bench", "knapsack", {"n_rows": 3}, {"n_items": [6, 8, 10, 12]}, tuple(range(50)))
    ep.compare(scen, METHODS, out=sys.argv[1], progress=True)
""".replace("METHODS", repr(METHODS))


def scenario() -> Scenario:
    return Scenario("bench", "knapsack", {"n_rows": 3}, {"n_items": [6, 8, 10, 12]}, tuple(range(50)))


def main(argv: list[str] | None = None) -> dict:
    from distributed import LocalCluster

    tmp = Path(tempfile.mkdtemp())
    out = tmp / "rows.csv"
    (tmp / "sweep.py").write_text(SCRIPT)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(tmp / "sweep.py"), str(out)], stderr=subprocess.DEVNULL)
    while not (out.exists() and out.read_text().count("\n") > 300):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_after = time.perf_counter() - t0
    rows_before = len(pd.read_csv(out))
    t1 = time.perf_counter()
    df = ep.compare(scenario(), METHODS, out=out, progress=True)
    resume = time.perf_counter() - t1
    print(f"killed after {killed_after:.1f} s with {rows_before} rows on disk; the resumed call computed "
          f"{df.attrs['computed']} rows in {resume:.1f} s; total {len(df)} rows, "
          f"{df.duplicated(['instance', 'method']).sum()} duplicates, statuses {sorted(set(df['status']))}")
    t2 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        dk = ep.compare(scenario(), METHODS, executor="dask", address=cluster.scheduler_address, progress=True)
    dask_s = time.perf_counter() - t2
    same = df[STABLE].reset_index(drop=True).equals(dk[STABLE].reset_index(drop=True))
    print(f"Dask LocalCluster (2 workers): {len(dk)} rows in {dask_s:.1f} s; same table as in-process: {same}")
    return {"rows_before_kill": rows_before, "resumed": df.attrs["computed"], "dask_same": same}


if __name__ == "__main__":
    main()
