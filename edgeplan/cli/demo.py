"""``edgeplan demo``: what edgeplan does, end to end, in a couple of minutes on a laptop CPU.

1. The known-answer catalog on every exact MILP method, and a time-limited hard instance.
2. A family tour: on seeded instances of every family, each exact method against the published heuristics
   and baselines (`compare`: solved count, mean distance from the optimum, time).
3. Real models (skipped with ``--quick``): ResNet-18 and GPT-2 are profiled here, split over a device ->
   edge -> cloud path by every method, and the best plan is executed with emulated links (measured against
   predicted latency); a planned FL round runs for real; a FedQuad fine-tuning round is measured on GPT-2 and
   its plan's LoRA steps executed; a ParallelSFL clustering runs in real time and Caesar rounds are trained with
   the real codecs.
"""

from __future__ import annotations

import argparse
from typing import Any


def _demo(args: argparse.Namespace) -> int:
    import pandas as pd

    from edgeplan.errors import UnsupportedProblemError
    from edgeplan.formulations.instances import hard_knapsack
    from edgeplan.solvers.api import available_methods, solve
    from edgeplan.solvers.catalog import CATALOG
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
    ok = agree == runs and all(o["status"] in (Status.FEASIBLE, Status.OPTIMAL) for o in out)
    ok &= _tour(args.seeds)
    from edgeplan.cli.demo_collapipe import collapipe_demo

    print("\nCollaPipe online: segments, micro-batches, bandwidth and power per slot under energy budgets")
    ok &= collapipe_demo() == 0
    if not args.quick and not _have_torch():
        print("\nReal models: skipped (torch is not installed: `pip install 'edgeplan[torch]'`)")
    elif not args.quick:
        from edgeplan.cli.demo_partition import partition_demo

        print("\nReal models: profile here, split device -> edge -> cloud, execute the best plan")
        ok &= partition_demo(time_limit=10.0, repeats=3) == 0
        from edgeplan.cli.demo_fl import fl_demo

        print("\nA planned FL round executed for real: local epochs, then paced state_dict uploads")
        ok &= fl_demo() == 0
        from edgeplan.cli.demo_serving import serving_demo

        print("\nSpeculative serving on models trained here: drafters, a target, a stream served live")
        ok &= serving_demo() == 0
        from edgeplan.cli.demo_finetune import finetune_demo

        print("\nFederated fine-tuning on a real model: configurations measured here, the plan's steps executed")
        ok &= finetune_demo() == 0
        from edgeplan.cli.demo_clustering import clustering_demo

        print("\nHeterogeneous FL for real: split-FL clusters executed in real time, Caesar's codecs on the wire")
        ok &= clustering_demo() == 0
    return 0 if ok else 1


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _tour(seeds: int) -> bool:
    from edgeplan.errors import EdgeplanError
    from edgeplan.experiments.compare import compare
    from edgeplan.io.scenarios import Scenario
    from edgeplan.registry import FAMILIES, GENERATORS
    from edgeplan.solvers.registry import get_method

    print("\nFamily tour: exact methods against the published heuristics on seeded instances")
    ok = True
    tour = sorted(((g.family, g.name, g.demo) for _, g in GENERATORS.items() if g.demo),
                  key=lambda t: FAMILIES.index(t[0]) if t[0] in FAMILIES else -1)  # stable: declaration order
    for _, family, (title, params, methods) in tour:
        methods = [m for m in methods if get_method(m).available]  # the family's demo list (its @generator)
        try:
            df = compare(Scenario(family, family, params, seeds=tuple(range(seeds))), methods, time_limit=30)
        except EdgeplanError as exc:  # a family whose generator changed: say so, keep touring
            print(f"\n{title}: {exc}")
            ok = False
            continue
        solved = df["status"].isin(["optimal", "feasible"])
        g = df.assign(solved=solved, optimal=df["status"] == "optimal",
                      objective=df["objective"].where(solved)).groupby("method", sort=False)
        table = g.agg(kind=("kind", "first"), solved=("solved", "sum"), optimal=("optimal", "sum"),
                      mean_objective=("objective", "mean"), gap_to_opt=("gap_to_best", "mean"),
                      mean_time_s=("solve_time", "mean"))
        table["gap_to_opt"] = [f"{100 * v:.1f}%" if v == v else "-" for v in table["gap_to_opt"]]
        print(f"\n{title} ({seeds} instances; a method that breaks a constraint counts as not solved)")
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))
        exact = df[df["kind"] == "exact"]
        ok &= bool((exact["status"] == "optimal").all())
    return ok


def add_demo(sub: Any) -> None:
    demo = sub.add_parser("demo", help="the catalog, a tour of every family, and real models split and executed")
    demo.add_argument("--time-limit", type=float, default=1.0, help="seconds for the hard instance (default 1)")
    demo.add_argument("--seeds", type=int, default=5, help="instances per family in the tour (default 5)")
    demo.add_argument("--quick", action="store_true", help="skip the real-model part")
    demo.set_defaults(func=_demo)
