"""Same plans before and after a refactor: solve seeded instances of every family with every method.

``python benchmarks/same_plans.py OUT.json [--per-family N]`` writes ``{instance: {method: [status, fun, limit]}}``
(for a heuristic whose plan breaks a constraint, ``fun`` is that plan's objective: the plan is compared even when
no plan is returned); ``python benchmarks/same_plans.py --compare A.json B.json`` counts the runs whose status or
objective differ (relative 1e-9), and apart from them the runs whose only change is the status of a plan that
breaks a constraint (``error`` before the reorganisation, ``no_solution`` after: one rule for every family).
Runs that stopped at the time limit are listed apart, since where they stop depends on the host's speed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

# family -> [(generator, fixed params, {param: choices drawn per seed})]
PLAN = {
    "milp": [("knapsack", {"n_items": 8, "n_rows": 2}, {})],
    "partition": [
        ("partition-split", {"n_blocks": 5}, {"kind": ["chain", "residual", "dag"], "n_tiers": [2, 3],
                                              "minimize": ["latency", "energy"], "bits": [False, True],
                                              "memory": [False, True], "max_latency": [False, True]}),
        ("partition-pipeline", {"n_blocks": 6, "n_devices": 3},
         {"order": ["fixed", "free"], "minimize": ["bottleneck", "iteration"], "memory": [False, True],
          "mode": ["inference", "training"]}),
    ],
    "fl": [("fl-round", {"n_users": 10, "n_bs": 3, "n_select": 3}, {}),
           ("fl-energy", {"n_users": 8, "n_bs": 2, "n_select": 3}, {})],
    "slide": [("slide", {}, {})],
    "cache": [("cache", {"n_clients": 2, "n_layers": 5, "n_classes": 6}, {"goal": ["latency", "accuracy"]}),
              ("cache-replay", {"requests": 30}, {})],
}


def _generator(name: str):
    import importlib

    try:  # before the reorganisation (the module name is built at run time: nothing rewrites it)
        return importlib.import_module("edgeplan." + "scenarios").generator(name)
    except ImportError:  # after it: the registry
        from edgeplan.registry import generator_for

        return generator_for(name)


def _instances(per_family: int):
    import numpy as np

    for family, gens in PLAN.items():
        per_gen = per_family // len(gens)
        for name, fixed, choices in gens:
            for seed in range(per_gen):
                rng = np.random.default_rng(10_000 + seed)
                params = {**fixed, **{k: v[int(rng.integers(len(v)))] for k, v in choices.items()}}
                key = f"{family}/{name}/{','.join(f'{k}={params[k]}' for k in sorted(params))}/seed={seed}"
                try:
                    yield key, _generator(name)(**params, seed=seed)
                except ValueError as exc:  # a drawn combination the generator rejects: recorded as such
                    yield key, exc


def snapshot(out: str, per_family: int, time_limit: float) -> None:
    from edgeplan import available_methods, solve

    rows: dict[str, dict[str, list]] = {}
    t0 = time.perf_counter()
    for key, problem in _instances(per_family):
        if isinstance(problem, Exception):
            rows[key] = {"__generator__": ["rejected", str(problem)]}
            continue
        rows[key] = {}
        for m in available_methods(problem):
            try:
                r = solve(problem, m, time_limit=time_limit, seed=0)
            except Exception as exc:  # a crash is recorded (and must be the same crash after the refactor)
                rows[key][m] = [f"raised {type(exc).__name__}", None, None]
                continue
            rejected = r.stats.get("rejected_plan")  # a heuristic's plan that breaks a constraint, kept aside
            fun = r.fun if rejected is None else float(problem.objective(rejected))
            rows[key][m] = [r.status.value, fun, r.limit.value if r.limit else None]
    with open(out, "w") as f:
        json.dump(rows, f, indent=0, sort_keys=True)
    print(f"{len(rows)} instances, {sum(map(len, rows.values()))} runs in {time.perf_counter() - t0:.0f} s -> {out}")


def compare(a: str, b: str) -> int:
    A, B = (json.load(open(p)) for p in (a, b))
    differ, limited, unified, total = [], [], [], 0
    for key in sorted(set(A) | set(B)):
        ra, rb = A.get(key, {}), B.get(key, {})
        for m in sorted(set(ra) | set(rb)):
            total += 1
            x, y = ra.get(m), rb.get(m)
            if x is not None and y is not None and "time" in (x[2], y[2]):
                limited.append((key, m, x, y))
                continue
            same_fun = x is not None and y is not None and (x[1] == y[1] or (
                x[1] is not None and y[1] is not None and math.isclose(x[1], y[1], rel_tol=1e-9, abs_tol=1e-12)))
            if same_fun and x[0] == y[0]:
                continue
            if same_fun and (x[0], y[0]) == ("error", "no_solution"):
                unified.append((key, m, x, y))
            else:
                differ.append((key, m, x, y))
    for d in differ[:30]:
        print("DIFFERS", *d)
    print(f"{total} runs compared: {len(differ)} differ; {len(unified)} the same plan whose status went from error "
          f"to no_solution (it breaks a constraint); {len(limited)} stopped at the time limit in either run")
    return 1 if differ else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?")
    ap.add_argument("--per-family", type=int, default=200)
    ap.add_argument("--time-limit", type=float, default=20.0)
    ap.add_argument("--compare", nargs=2)
    args = ap.parse_args()
    sys.exit(compare(*args.compare) if args.compare else snapshot(args.out, args.per_family, args.time_limit))
