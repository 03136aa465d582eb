"""``edgeplan demo``: the known-answer catalog on every exact MILP method, and a time-limited hard instance."""

from __future__ import annotations

import argparse
from typing import Any


def _demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from edgeplan.catalog import CATALOG, hard_knapsack
    from edgeplan.errors import UnsupportedProblemError
    from edgeplan.solvers.api import available_methods, solve
    from edgeplan.solvers.result import Status

    methods = available_methods(CATALOG[0].milp, kind="exact")
    rows, agree, runs = [], 0, 0
    for case in CATALOG:
        row = {"problem": case.name, "expected": case.status.value + (f" {case.fun:g}" if case.fun is not None else "")}
        for m in methods:
            try:
                r = solve(case.milp, m)
            except UnsupportedProblemError:
                row[m] = "refused (continuous)"
                agree += m in case.refuse
                runs += 1
                continue
            runs += 1
            ok = r.status is case.status and (
                case.fun is None or abs(r.fun - case.fun) <= 1e-6 * max(1, abs(case.fun)))
            agree += ok
            value = f" {r.fun:g}" if r.fun is not None else ""
            row[m] = f"{r.status.value}{value} {1e3 * r.time:.0f}ms" + ("" if ok else " MISMATCH")
        rows.append(row)
    width = pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 30)
    with width:
        print(f"Known-answer catalog: {len(CATALOG)} problems x {len(methods)} exact MILP methods")
        print(pd.DataFrame(rows).to_string(index=False))
        print(f"\n{agree}/{runs} runs agree with the hand-derived answers "
              "(CP-SAT refuses continuous columns by design).\n")
        hard = hard_knapsack()
        print(f"Time-limited hard instance: {hard.name} (60 binary items, 10 knapsack rows), "
              f"limit {args.time_limit:g} s")
        out = []
        for m in ("highs", "cp-sat"):
            r = solve(hard, m, time_limit=args.time_limit)
            out.append({"method": m, "status": r.status.value, "limit": r.limit.value if r.limit else "",
                        "objective": r.fun, "bound": r.bound, "gap": r.gap, "build_s": r.build_time,
                        "solve_s": r.solve_time})
        print(pd.DataFrame(out).to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    return 0 if agree == runs and all(o["status"] in (Status.FEASIBLE, Status.OPTIMAL) for o in out) else 1


def add_demo(sub: Any) -> None:
    demo = sub.add_parser("demo", help="solve the known-answer catalog with every exact MILP method")
    demo.add_argument("--time-limit", type=float, default=1.0, help="seconds for the hard instance (default 1)")
    demo.set_defaults(func=_demo)
