"""Ctrl-C stops a solve promptly and raises KeyboardInterrupt; ``compare`` keeps the rows finished before it.

Each case runs in a child process that solves a hard instance with a long time limit; the test sends SIGINT
once the solve is under way and times how long the child takes to stop.
"""

from __future__ import annotations

import csv
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeplan.solvers.registry import get_method

#: Seconds from SIGINT to the child's exit.
PROMPT_S = 5.0

CHILD = """
import json, sys
from edgeplan.registry import GENERATORS, generator_for
from edgeplan.solvers.api import solve
gen, params, method = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
solve(generator_for(gen)(**(GENERATORS.get(gen).tiny or ({},))[0], seed=0), method, time_limit=2)  # warm-up
problem = generator_for(gen)(**params, seed=0)
print("solving", flush=True)
try:
    r = solve(problem, method, time_limit=120)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(130)
print("returned", r.status, r.limit, flush=True)
"""

HARD_PIPELINE = {"n_blocks": 60, "n_devices": 8, "order": "free", "memory": True}
CASES = [
    ("partition-pipeline", HARD_PIPELINE, "highs"),
    ("partition-pipeline", HARD_PIPELINE, "scipy"),
    ("partition-pipeline", HARD_PIPELINE, "pyomo"),
    ("knapsack", {"n_items": 2000, "n_rows": 20}, "cp-sat"),
    ("fl-round", {"n_users": 200, "n_bs": 8, "n_select": 40, "bs_bandwidth_hz": 1e7, "resource_block_hz": 1e6},
     "fl-rb-milp"),
    ("slide-paper", {}, "slide-scip"),
]


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _wait_for_line(child: subprocess.Popen, line: str, timeout: float = 60.0) -> None:
    """Block until the child prints ``line`` (fails after ``timeout`` s or when the child ends first)."""
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    assert ready, f"the child printed nothing in {timeout:g} s"
    got = child.stdout.readline().strip()
    assert got == line, (got, child.stderr.read() if child.poll() is not None else "")


def _interrupt(child: subprocess.Popen, ready: Callable[[], None]) -> tuple[str, str, float]:
    """Wait until ``ready()`` returns, 1.5 s more, send SIGINT; return the child's output and its time to stop."""
    try:
        ready()
        time.sleep(1.5)
        assert child.poll() is None, "the run ended before the interrupt: the instance is too easy for this test"
        child.send_signal(signal.SIGINT)
        t0 = time.perf_counter()
        out, err = child.communicate(timeout=60)
        return out, err, time.perf_counter() - t0
    finally:
        child.kill()


@pytest.mark.parametrize(("gen", "params", "method"), CASES, ids=[c[2] for c in CASES])
def test_ctrl_c_stops_a_solve_and_raises_keyboard_interrupt(gen: str, params: dict, method: str) -> None:
    if not get_method(method).available:
        pytest.fail(f"{method} is not installed; the test extras install it")
    child = subprocess.Popen([sys.executable, "-c", CHILD, gen, json.dumps(params), method], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env())
    out, err, took = _interrupt(child, lambda: _wait_for_line(child, "solving"))
    assert "KeyboardInterrupt" in out, (out, err)
    assert child.returncode == 130, (out, err)
    assert took < PROMPT_S, f"{method} took {took:.1f} s to stop after Ctrl-C"


def test_ctrl_c_stops_compare_keeping_finished_rows(tmp_path: Path) -> None:
    """The CLI exits 130 at once; the heuristic's row is kept, the interrupted exact run leaves no row."""
    scen = tmp_path / "hard.toml"
    scen.write_text('name = "hard"\nfamily = "partition-pipeline"\nseeds = [0]\n[params]\nn_blocks = 60\n'
                    'n_devices = 8\norder = "free"\nmemory = true\n[solve]\nmethods = ["uniform", "highs"]\n'
                    "time_limit = 120\n")
    out = tmp_path / "rows.csv"
    child = subprocess.Popen([sys.executable, "-m", "edgeplan.cli.main", "compare", str(scen), "--out", str(out),
                              "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    def first_row() -> None:
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
            assert child.poll() is None, child.communicate()
            time.sleep(0.1)

    _, err, took = _interrupt(child, first_row)          # then highs is on the hard instance
    assert child.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert took < PROMPT_S, f"compare took {took:.1f} s to stop after Ctrl-C"
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["method"] for r in rows] == ["uniform"], rows
