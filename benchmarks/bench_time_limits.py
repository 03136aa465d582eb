"""Every exact method keeps its time limit, model build and reduction included (issue 20).

For each exact method, the largest instance of its family's generator that we ship settings for is
solved at ``time_limit`` 1 s and 0.1 s. The wall time of the whole ``solve()`` call (reduction, model
build, solve, decode, check) must be within ``1.5 * limit + 0.3`` s; the table gives the status and
whether a plan, a bound and a gap came back.

Each run is a fresh spawned process (so one method's threads or memory cannot slow the next) with a
hard kill after ``HARD_KILL_S``. Before the clock starts, the instance is built and the method solves the
generator's first tiny instance once: importing a solver library (0.3-1.5 s for ortools, pyomo, cvxpy) is
paid once per process, not per solve.

Run: ``python benchmarks/bench_time_limits.py [--out benchmarks/results/time_limits.md] [--only METHOD]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

#: An FL round on resource blocks: 10 blocks of 1 MHz per BS.
FL_BLOCKS = {"n_users": 200, "n_bs": 8, "n_select": 40, "bs_bandwidth_hz": 1e7, "resource_block_hz": 1e6}
#: (method, generator, params): the largest instance we ship settings for, per exact method.
CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("highs", "partition-pipeline", {"n_blocks": 60, "n_devices": 8, "order": "free", "memory": True}),
    ("scipy", "partition-pipeline", {"n_blocks": 60, "n_devices": 8, "order": "free", "memory": True}),
    ("pyomo", "partition-pipeline", {"n_blocks": 60, "n_devices": 8, "order": "free", "memory": True}),
    ("highs", "partition-pipeedge", {}),
    ("scipy", "partition-pipeedge", {}),
    ("pyomo", "partition-pipeedge", {}),
    ("cp-sat", "knapsack", {"n_items": 2000, "n_rows": 20}),
    ("pipeline-dp", "partition-pipeline", {"n_blocks": 400, "n_devices": 16, "memory": True}),
    ("split-enum", "partition-split", {"n_blocks": 400, "n_tiers": 3, "kind": "chain"}),
    ("dads", "partition-split", {"n_blocks": 200, "n_tiers": 3, "kind": "dag"}),
    ("fl-bisect", "fl-round", {"n_users": 400, "n_bs": 8, "n_select": 80}),
    ("fl-rb-milp", "fl-round", FL_BLOCKS),
    ("fl-cpsat", "fl-round", FL_BLOCKS),
    ("fl-energy", "fl-energy", {"n_users": 200, "n_bs": 8, "n_select": 40}),
    ("fl-energy-cvxpy", "fl-energy", {"n_users": 200, "n_bs": 8, "n_select": 40}),
    ("slide", "slide-paper", {}),
    ("slide-cvxpy", "slide-paper", {}),
    ("slide-scip", "slide-paper", {}),
    ("cache-dp", "cache", {"n_clients": 40, "n_layers": 24, "n_classes": 100}),
    ("cache-replay", "cache-replay", {"n_clients": 4, "n_layers": 12, "n_classes": 20, "requests": 400}),
    ("step-milp", "speculative-step", {"n_requests": 512, "n_drafters": 16, "n_domains": 8}),
    ("cluster-milp", "split-fl-clusters", {"n_workers": 80, "divergence": "l1", "min_bottoms": 3, "max_bottoms": 6}),
    ("cluster-dp", "split-fl-clusters", {"n_workers": 12, "max_bottoms": 5}),
    ("frequency-sweep", "update-frequency", {"n_clusters": 10_000}),
    ("group-dp", "graph-clients", {"n_clients": 12, "n_clusters": 3, "min_size": 3, "max_size": 5}),
    ("compression-milp", "caesar-round", {"n_devices": 100}),
    ("upload-waterfill", "upload-ratios", {"n_devices": 10_000}),
    ("upload-cvxpy", "upload-ratios", {"n_devices": 100}),
    ("batch-sweep", "batch-sizing", {"n_devices": 10_000}),
    ("finetune-sweep", "finetune", {"n_devices": 1000, "n_layers": 48}),
    ("finetune-milp", "finetune", {"n_devices": 200, "n_layers": 24}),
    ("expert-dp", "experts", {"n_experts": 32, "batch": 8}),
    ("collapipe-exact", "collapipe-slot", {"n_devices": 12, "n_blocks": 48, "energy": True}),
    ("kv-sync-dp", "kv-sync", {"n_blocks": 128, "n_participants": 64}),
    ("fragment-dp", "fragment-sync", {"n_fragments": 1000, "n_slots": 100}),
    ("fragment-milp", "fragment-sync", {"n_fragments": 1000, "n_slots": 100, "max_staleness": 10}),
)
LIMITS = (1.0, 0.1)
HARD_KILL_S = 120.0


def target(limit: float) -> float:
    """The wall-time target for a time limit: ``1.5 * limit + 0.3`` s."""
    return 1.5 * limit + 0.3


def _run(method: str, gen: str, params: dict[str, Any], limit: float, queue: Any) -> None:
    from edgeplan.registry import GENERATORS, generator_for
    from edgeplan.solvers.api import solve

    tiny = (GENERATORS.get(gen).tiny or ({},))[0]
    try:  # warm-up: the library imports are paid once per process, not per solve
        solve(generator_for(gen)(**tiny, seed=0), method, time_limit=limit)
    except Exception:
        pass
    problem = generator_for(gen)(**params, seed=0)
    t0 = time.perf_counter()
    try:
        r = solve(problem, method, time_limit=limit)
        wall = time.perf_counter() - t0
        queue.put({"wall": wall, "status": str(r.status), "limit": str(r.limit or ""), "plan": r.plan is not None,
                   "bound": r.bound is not None, "gap": r.gap, "message": r.message[:80]})
    except Exception as exc:  # a raise is a row too
        queue.put({"wall": time.perf_counter() - t0, "status": f"raised {type(exc).__name__}", "limit": "",
                   "plan": False, "bound": False, "gap": None, "message": str(exc)[:80]})


def measure(method: str, gen: str, params: dict[str, Any], limit: float) -> dict[str, Any]:
    """One case in a fresh spawned process (killed after :data:`HARD_KILL_S`)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(method, gen, params, limit, queue))
    proc.start()
    try:
        row = queue.get(timeout=HARD_KILL_S)
    except Exception:
        row = {"wall": HARD_KILL_S, "status": "killed", "limit": "", "plan": False, "bound": False, "gap": None,
               "message": f"no answer in {HARD_KILL_S:g} s"}
    proc.join(5)
    if proc.is_alive():
        proc.kill()
    row["ok"] = row["wall"] <= target(limit)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    ap.add_argument("--only", action="append", default=[], help="run only this method (repeatable)")
    args = ap.parse_args(argv)
    lines = ["| method | instance | limit (s) | wall (s) | target (s) | status | plan | bound | gap | within |",
             "|---|---|---:|---:|---:|---|---|---|---:|---|"]
    print(lines[0], flush=True)
    bad = 0
    for method, gen, params in CASES:
        if args.only and method not in args.only:
            continue
        inst = gen + "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"
        for limit in LIMITS:
            r = measure(method, gen, params, limit)
            status = r["status"] + (f" ({r['limit']})" if r["limit"] else "")
            gap = "" if r["gap"] is None else f"{r['gap']:.3g}"
            line = (f"| {method} | {inst} | {limit:g} | {r['wall']:.2f} | {target(limit):.2f} | {status} | "
                    f"{'yes' if r['plan'] else 'no'} | {'yes' if r['bound'] else 'no'} | {gap} | "
                    f"{'yes' if r['ok'] else '**NO**'} |")
            bad += not r["ok"]
            lines.append(line)
            print(line, flush=True)
    print(f"\n{bad} run(s) over the target 1.5 x limit + 0.3 s")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("# Time limits kept (benchmarks/bench_time_limits.py)\n\n" + "\n".join(lines) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
