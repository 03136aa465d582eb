"""The ``edgeplan`` command line.

``solve``, ``compare``, ``profile``, ``validate``, ``export``, ``methods``, ``scenarios`` and ``demo``; ``--help``
on each. Errors (bad input, and the operating system's: a missing file, a directory given for a
file, no permission) are one line on stderr (``edgeplan: error: ...``) with exit code 2; a solve or
a validation that finds no plan or a broken one exits with 1; Ctrl-C prints ``edgeplan: interrupted``
and exits with 130.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from typing import Any

from edgeplan.errors import EdgeplanError, ProblemDataError


def _value(token: str) -> Any:
    """A TOML literal (``3``, ``0.5``, ``true``, ``"x"``), else the bare string."""
    try:
        return tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return token


def _sweep(items: Sequence[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for item in items:
        key, eq, values = item.partition("=")
        if not eq or not key or not values:
            raise ProblemDataError(f"`--sweep` = {item!r}; expected key=v1,v2,...")
        out[key.strip()] = [_value(v.strip()) for v in values.split(",")]
    return out


def _options(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        opts = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProblemDataError(f"`--options` = {text!r} is not JSON ({exc.msg}); expected an object") from exc
    if not isinstance(opts, dict):
        raise ProblemDataError(f"`--options` = {text!r}; expected a JSON object")
    return opts


# -- commands ------------------------------------------------------------------------------------------
def _solve(args: argparse.Namespace) -> int:
    from edgeplan.io.plans import save_plan
    from edgeplan.io.scenarios import load_scenario
    from edgeplan.solvers.api import solve

    scen = load_scenario(args.scenario)
    instances = scen.instances()
    if not 0 <= args.instance < len(instances):
        raise ProblemDataError(f"`--instance` = {args.instance}; the scenario has instances 0..{len(instances) - 1}")
    inst = instances[args.instance]
    problem = inst.build()
    time_limit = args.time_limit if args.time_limit is not None else scen.solve.get("time_limit")
    method = args.method or (scen.solve.get("methods") or [None])[0]  # default: the scenario's first method
    r = solve(problem, method, time_limit=time_limit, seed=args.seed, options=_options(args.options),
              verbose=args.verbose >= 2)
    print(f"instance  {inst.key}")
    print(f"method    {r.method}\nstatus    {r.status.value}" + (f" (limit: {r.limit.value})" if r.limit else ""))
    print(f"objective {r.fun}\nbound     {r.bound}\ngap       {r.gap}")
    print(f"time      build {r.build_time:.4f} s, solve {r.solve_time:.4f} s")
    if r.message:
        print(f"message   {r.message}")
    if args.out and r.has_plan:
        source = {"scenario": scen.name, "family": inst.family, "params": dict(inst.params), "seed": inst.seed}
        print(f"plan      {save_plan(args.out, problem, r, source)}")
    return 0 if r.has_plan else 1


def _summary(df: Any) -> Any:
    solved = df["status"].isin(["optimal", "feasible"])
    g = df.assign(solved=solved, optimal=df["status"] == "optimal").groupby("method", sort=False)
    return g.agg(runs=("status", "size"), solved=("solved", "sum"), optimal=("optimal", "sum"),
                 mean_gap_to_best=("gap_to_best", "mean"), mean_solve_s=("solve_time", "mean"),
                 max_solve_s=("solve_time", "max"))


def _compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from edgeplan.experiments import plot
    from edgeplan.experiments.compare import compare
    from edgeplan.io.scenarios import load_scenario

    scen = load_scenario(args.scenario)
    sweep = _sweep(args.sweep or [])
    methods = args.methods.split(",") if args.methods else None
    seeds = list(range(args.seeds)) if args.seeds else None
    df = compare(scen, methods, seeds=seeds, time_limit=args.time_limit, sweep=sweep or None,
                 executor=args.executor, max_workers=args.workers, address=args.address, out=args.out,
                 progress=not args.no_progress)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(f"{len(df)} runs ({df.attrs['computed']} computed now) of {scen.name}")
        print(_summary(df).to_string(float_format=lambda v: f"{v:.4g}"))
    if args.out:
        print(f"rows: {args.out}")
    if args.plot:
        swept = list({**scen.with_sweep(sweep).sweep} if sweep else scen.sweep)
        if swept:
            plot.objective_vs_param(df, swept[0], path=args.plot, title=scen.name)
        else:
            plot.gap_distribution(df, path=args.plot, title=scen.name)
        print(f"figure: {args.plot}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from edgeplan.profiles.profiler import profile_model
    from edgeplan.validation.zoo import build_model

    zm = build_model(args.model, size=args.size, batch_size=args.batch_size, seed=args.seed)
    granularity: Any = int(args.granularity) if args.granularity.isdigit() else args.granularity
    prof = profile_model(zm.module, zm.example_inputs, name=f"{zm.name}-{zm.size}", granularity=granularity,
                         device=args.device, repeats=args.repeats, progress=not args.no_progress)
    print(prof.summary())
    if args.out:
        print(f"profile: {prof.save(args.out)}")
    return 0


def _load_for(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from edgeplan.io.plans import load_plan

    pf = load_plan(args.plan)
    problem = pf.rebuild_problem()
    return pf, problem, load_plan(args.plan, problem).plan


def _validate(args: argparse.Namespace) -> int:
    from edgeplan.registry import unavailable, validators_for

    pf, problem, plan = _load_for(args)
    violations = problem.check(plan)
    objective = problem.objective(plan)
    print(f"plan      {args.plan} ({pf.result.get('method', '?')}, {pf.result.get('status', '?')})")
    print(f"objective {objective} (recorded {pf.result.get('fun')})")
    print(f"check     {'ok' if not violations else f'{len(violations)} violation(s)'}")
    for v in violations[:20]:
        print(f"  {v}")
    executors = validators_for(problem)
    if not executors and unavailable(problem):
        libs = sorted(set(unavailable(problem).values()))
        print(f"execute   skipped: the executors need {', '.join(libs)} (pip install 'edgeplan[torch]')")
    if violations:
        if executors:
            print("execute   skipped: the plan is infeasible")
        return 1
    for name, run in executors:
        print(f"execute   {name}")
        print(run(problem, plan, device=args.device))
    return 0


def _export(args: argparse.Namespace) -> int:
    from edgeplan.io.plans import export_plan

    _, problem, plan = _load_for(args)
    for path in export_plan(problem, plan, args.to, args.out):
        print(path)
    return 0


def _methods(args: argparse.Namespace) -> int:
    from edgeplan.solvers.registry import all_methods

    known = sorted({t.__name__ for m in all_methods() for t in m.problems})
    if args.problem and args.problem not in known:
        raise ProblemDataError(f"`--problem` = {args.problem!r}; expected one of {', '.join(known)}")
    for m in all_methods():
        types = ", ".join(t.__name__ for t in m.problems)
        if args.problem and args.problem not in (t.__name__ for t in m.problems):
            continue
        state = "" if m.available else f"  [missing: pip install {m.install}]"
        print(f"{m.name:<16} {m.kind:<9} {types:<22} {m.summary}{state}")
        if args.verbose:  # the capabilities the method declares (as data, at registration)
            print(f"{'':<16} module {m.func.__module__}")
            if m.options:
                print(f"{'':<16} options " + ", ".join(f"{k}={d!r}" for k, (_, d) in m.options.items()))
            if m.cannot:
                print(f"{'':<16} cannot take " + "; ".join(sorted(m.cannot)))
            if not m.keeps_time_limit:
                print(f"{'':<16} does not keep the time limit (reports its overrun)")
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from edgeplan.io.scenarios import load_scenario, shipped_scenarios

    shipped = shipped_scenarios()
    if args.copy:
        out = Path(args.copy)
        out.mkdir(parents=True, exist_ok=True)
        for path in shipped.values():
            print(shutil.copy(path, out / path.name))
        return 0
    for name, path in shipped.items():
        scen = load_scenario(path)
        first = path.read_text().splitlines()[0].lstrip("# ").strip()
        print(f"{name:<16} {scen.family:<18} {len(scen):>4} instances  {first}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from edgeplan.cli.demo import add_demo

    parser = argparse.ArgumentParser(prog="edgeplan", description="Plan how AI models run and learn across edge "
                                     "networks: formulate, solve exactly and heuristically, validate, export.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log progress to stderr (-v: steps; -vv: also every solve and the solver's own log)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("solve", help="solve one instance of a scenario file")
    p.add_argument("scenario", help="scenario TOML file, or the name of a shipped one (`edgeplan scenarios`)")
    p.add_argument("--method", "-m", help="method name (default: the first of the scenario's [solve] methods, else "
                   "the first installed exact method that takes the instance)")
    p.add_argument("--instance", type=int, default=0, help="which instance of the scenario (default 0)")
    p.add_argument("--time-limit", type=float, help="seconds")
    p.add_argument("--seed", type=int)
    p.add_argument("--options", help='method options as JSON, e.g. \'{"mip_rel_gap": 1e-6}\'')
    p.add_argument("--out", "-o", help="write the plan as JSON")
    p.set_defaults(func=_solve)

    p = sub.add_parser("compare", help="every method on every instance of a scenario (with sweeps)")
    p.add_argument("scenario", help="scenario TOML file, or the name of a shipped one (`edgeplan scenarios`)")
    p.add_argument("--methods", help="comma-separated method names (default: the scenario's or all installed)")
    p.add_argument("--sweep", action="append", metavar="KEY=V1,V2", help="sweep a generator parameter (repeatable)")
    p.add_argument("--seeds", type=int, help="number of instance seeds (overrides the file)")
    p.add_argument("--time-limit", type=float, help="seconds per solve")
    p.add_argument("--executor", choices=("inprocess", "process", "dask"), default="inprocess")
    p.add_argument("--workers", type=int, help="process pool size")
    p.add_argument("--address", help="Dask scheduler address (with --executor dask)")
    p.add_argument("--out", "-o", help="CSV file the rows are appended to; an existing file is resumed")
    p.add_argument("--plot", help="figure file (.png/.svg): objective vs the first swept parameter")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_compare)

    p = sub.add_parser("profile", help="profile a zoo model: per-block FLOPs, bytes and latency")
    p.add_argument("model", help="zoo model name (resnet18, resnet50, mobilenet_v2, deit_s, bert_base, gpt2, "
                   "llama_small)")
    p.add_argument("--size", default="small", choices=("full", "small", "tiny"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--granularity", default="auto", help="'auto', 'leaf' or a module depth")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", "-o", help="write the profile as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_profile)

    p = sub.add_parser("validate", help="re-check a plan file and execute it where its family has a validator")
    p.add_argument("plan", help="plan JSON file written by `edgeplan solve --out`")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_validate)

    p = sub.add_parser("export", help="export a plan file for a runtime")
    p.add_argument("plan", help="plan JSON file written by `edgeplan solve --out`")
    p.add_argument("--to", required=True, help="format (split-spec, onnx, flower, ... as the family offers)")
    p.add_argument("--out", "-o", default="export", help="output folder (default ./export)")
    p.set_defaults(func=_export)

    p = sub.add_parser("methods", help="list the registered methods")
    p.add_argument("--problem", help="only methods taking this problem type (e.g. MILP)")
    p.add_argument("-v", "--verbose", action="store_true", help="also each method's module, options and capabilities")
    p.set_defaults(func=_methods)

    p = sub.add_parser("scenarios", help="list the scenarios shipped with edgeplan (usable by name)")
    p.add_argument("--copy", metavar="DIR", help="copy their TOML files into DIR, to edit")
    p.set_defaults(func=_scenarios)

    add_demo(sub)
    return parser


def _logging(verbosity: int) -> None:
    """``-v``: INFO from the ``edgeplan`` loggers on stderr; ``-vv``: DEBUG (every solve, captured native output)."""
    import logging

    logger = logging.getLogger("edgeplan")
    ours = [h for h in logger.handlers if getattr(h, "edgeplan_cli", False)]
    for old in ours:
        logger.removeHandler(old)  # main() called again in one process: one handler, the new level
    if ours:
        logger.setLevel(logging.NOTSET)  # the level an earlier -v set (a caller's own level is left alone)
    if verbosity <= 0:
        return
    if logging.root.manager.disable:  # a library's logging.disable() left behind
        logging.disable(logging.NOTSET)
    for name, each in list(logging.Logger.manager.loggerDict.items()):
        if name.startswith("edgeplan") and isinstance(each, logging.Logger):
            each.disabled = False  # a logging.config call elsewhere may have disabled the existing loggers
            each.setLevel(logging.NOTSET)
    handler = logging.StreamHandler(sys.stderr)
    handler.edgeplan_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _logging(args.verbose)
    try:
        return int(args.func(args))
    except (EdgeplanError, OSError) as exc:
        print(f"edgeplan: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        from edgeplan.registry import missing_message, missing_optional

        missing = missing_optional(exc)
        if missing is None:
            raise
        print(f"edgeplan: error: {missing_message(f'`{args.command}`', missing)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeplan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
