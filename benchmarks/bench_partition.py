"""Model partitioning: exact solve times vs size, heuristic gaps on real zoo profiles, measured vs predicted.

1. Exact methods: ``pipeline-dp`` on fixed-order chains up to L=1000 on K=16 devices (target < 0.2 s) and on
   PipeEdge's setting (192 layers, 16 devices of 8 types, free order, memory caps; target < 5 s; PipeEdge's C++
   DP takes about 109 s there), cross-checked with HiGHS on a smaller free-order instance; the split MILP
   (HiGHS) and ``dads`` on residual DAGs of 100-600 blocks with 4 widths (target: 600 blocks proven optimal
   < 5 s); ``split-enum`` on a 3-tier chain of 1000 blocks.
2. Heuristic quality: every heuristic against the optimum over 100 split and 100 pipeline instances built from
   real zoo profiles (torch.export + FLOP counts; device presets; random links), mean and max gap.
3. Measured vs predicted: zoo models profiled on this host, split plans executed over paced loopback sockets,
   pipeline plans as gloo processes (dilated timing on this host: each stage computes alone, the schedule runs
   on a virtual clock); median and worst end-to-end error, share within +-10 %.
4. Pipeline fidelity (``--pipelines``): ResNet-18 and GPT-2 small pipelines of 2 and 3 stages, 4 and 8
   micro-batches, exact and uniform plans, each run with concurrent and with dilated timing.

``python benchmarks/bench_partition.py [--quick] [--skip-validation] [--pipelines]``.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any

import numpy as np

import edgeplan as ep
from edgeplan.formulations.partition import PipelinePartition, SplitInference, rate_matrix
from edgeplan.formulations.partition.instances import PIPELINE_DEVICES, pipeedge_instance, random_profile
from edgeplan.profiles import WiredLink, load_device

TIGHT = {"mip_rel_gap": 1e-9, "highs_options": {"mip_abs_gap": 0.0}}


def timed(problem: Any, method: str, **kw: Any) -> tuple[ep.Result, float]:
    t0 = time.perf_counter()
    r = ep.solve(problem, method, **kw)
    return r, time.perf_counter() - t0


def exact_times(quick: bool) -> None:
    print("\n## 1. Exact methods: solve time vs size (wall clock, including build and the front door's check)")
    rng = np.random.default_rng(0)
    devs = [load_device(str(d)) for d in rng.choice(PIPELINE_DEVICES, 16)]
    R = rate_matrix(10 ** rng.uniform(8, 9.5, 16))
    print(f"{'instance':<44} {'method':<12} {'status':<9} {'objective':>12} {'gap':>9} {'time s':>8}")
    for L in (100, 250, 500, 1000):
        p = PipelinePartition(random_profile(L, kind="chain", seed=L), devs, rates_bps=R, order="fixed")
        p.data()
        r, t = timed(p, "pipeline-dp")
        print(f"{f'chain L={L}, K=16, fixed order, bottleneck':<44} {'pipeline-dp':<12} {r.status.value:<9} "
              f"{r.fun:>12.6g} {r.gap:>9.1e} {t:>8.3f}")
    small = pipeedge_instance(48, 4, 2, seed=1)
    r1, t1 = timed(small, "pipeline-dp")
    r2, t2 = timed(small, "highs", options=TIGHT, time_limit=300)
    print(f"{'PipeEdge 48 layers, 8 devices (4 types)':<44} {'pipeline-dp':<12} {r1.status.value:<9} "
          f"{r1.fun:>12.6g} {r1.gap:>9.1e} {t1:>8.3f}")
    print(f"{'  same, MILP (cross-check)':<44} {'highs':<12} {r2.status.value:<9} {r2.fun:>12.6g} "
          f"{(r2.gap or 0):>9.1e} {t2:>8.3f}   agree: {abs(r1.fun - r2.fun) <= 1e-6 * r1.fun}")
    for seed in (0, 1, 2):
        q = pipeedge_instance(192, 8, 2, seed=seed)
        q.data()
        r, t = timed(q, "pipeline-dp")
        print(f"{f'PipeEdge 192 layers, 16 devices / 8 types #{seed}':<44} {'pipeline-dp':<12} {r.status.value:<9} "
              f"{r.fun:>12.6g} {r.gap:>9.1e} {t:>8.3f}   {r.stats.get('probes')} probes, "
              f"{r.stats.get('states')} states")
    tiers = [load_device(t) for t in ("jetson-orin-nano-8gb", "cloud-a100")]
    for n in ((100, 300) if quick else (100, 300, 600)):
        prof = random_profile(n, kind="residual", seed=n)
        widths = rng.choice([2, 4, 8, 32], size=n)
        for minimize in ("throughput", "latency"):
            p = SplitInference(prof, tiers, [WiredLink("uplink", 50e6, 2e-3)], minimize=minimize,
                               bit_widths=(2, 4, 8), min_bits=widths)
            milp, _ = p.to_milp()
            r, t = timed(p, "highs", time_limit=120)
            name = f"DAG {n} blocks, 4 widths, {minimize}"
            print(f"{name:<44} {'highs':<12} {r.status.value:<9} {r.fun:>12.6g} {(r.gap or 0):>9.1e} {t:>8.3f}"
                  f"   MILP {milp.n_vars} cols, {milp.n_rows} rows, build {r.build_time:.3f} s")
            if minimize == "latency":
                r2, t2 = timed(p, "dads")
                print(f"{'  same':<44} {'dads':<12} {r2.status.value:<9} {r2.fun:>12.6g} {r2.gap:>9.1e} "
                      f"{t2:>8.3f}   agree: {abs(r.fun - r2.fun) <= 1e-4 * r2.fun}")
    prof = random_profile(1000, kind="chain", seed=7)
    p = SplitInference(prof, [load_device(t) for t in ("jetson-nano", "edge-server-t4", "cloud-a100")],
                       [WiredLink("a", 30e6, 2e-3), WiredLink("b", 1e9, 5e-3)], minimize="throughput",
                       bit_widths=(4, 8), min_bits=4)
    r, t = timed(p, "split-enum")
    print(f"{'chain 1000 blocks, 3 tiers, 3 widths':<44} {'split-enum':<12} {r.status.value:<9} {r.fun:>12.6g} "
          f"{r.gap:>9.1e} {t:>8.3f}   {r.stats['candidates']} candidates")


def zoo_profiles(quick: bool) -> dict[str, Any]:
    from edgeplan.profiles import profile_model
    from edgeplan.validation.zoo import build_model

    out = {}
    models = ("resnet18", "mobilenet_v2", "gpt2") if quick else ("resnet18", "resnet50", "mobilenet_v2", "deit_s",
                                                                   "bert_base", "gpt2")
    for name in models:
        for gran in ("auto", "leaf"):
            z = build_model(name, size="full" if name != "gpt2" else "small")
            out[f"{name}/{gran}"] = profile_model(z.module, z.example_inputs, granularity=gran, timing=False,
                                                  backward=True, progress=False)
    return out


def heuristic_gaps(profiles: dict[str, Any], n: int) -> None:
    print(f"\n## 2. Heuristics against the optimum on real zoo profiles ({n} split + {n} pipeline instances)")
    rng = np.random.default_rng(1)
    keys = sorted(profiles)
    tier_sets = (("jetson-nano", "cloud-a100"), ("jetson-orin-nano-8gb", "edge-server-t4", "cloud-a100"),
                 ("raspberry-pi-5", "edge-server-t4"))
    gaps: dict[str, list[float]] = defaultdict(list)
    fails: dict[str, int] = defaultdict(int)
    for i in range(n):
        prof = profiles[keys[i % len(keys)]]
        tiers = [load_device(t) for t in tier_sets[i % len(tier_sets)]]
        links = [WiredLink(f"l{k}", float(10 ** rng.uniform(6.5, 9)), float(rng.uniform(0, 5e-3)))
                 for k in range(len(tiers) - 1)]
        minimize = ("latency", "energy", "throughput")[i % 3]
        bits = i % 2 == 0
        p = SplitInference(prof, tiers, links, minimize=minimize, bit_widths=(4, 8) if bits else (),
                           min_bits=rng.choice([4, 8, 32], size=prof.n_blocks) if bits else None)
        exact = ep.solve(p, "split-enum") if prof.is_chain else (
            ep.solve(p, "dads") if minimize != "throughput" else ep.solve(p, "highs", options=TIGHT, time_limit=60))
        for m in ("neurosurgeon", "coach", "device-only", "cloud-only"):
            r = ep.solve(p, m)
            if r.has_plan and exact.has_plan:
                gaps[f"split/{m}"].append(r.fun / exact.fun - 1)
            else:
                fails[f"split/{m}"] += 1
    for i in range(n):
        prof = profiles[keys[i % len(keys)]]
        K = int(rng.integers(2, 6))
        devs = [load_device(str(d)) for d in rng.choice(PIPELINE_DEVICES, K)]
        mode = ("inference", "training")[i % 2]
        minimize = ("bottleneck", "iteration")[(i // 2) % 2]
        p = PipelinePartition(prof, devs, rates_bps=rate_matrix(10 ** rng.uniform(8, 9.5, K)),
                              order="fixed" if i % 3 else "free", minimize=minimize, mode=mode,
                              schedule="1f1b" if mode == "training" else "gpipe", n_micro=int(rng.integers(1, 9)))
        if prof.n_blocks < K:
            continue
        try:
            exact = ep.solve(p, "pipeline-dp", time_limit=60)
        except ep.UnsupportedProblemError:
            exact = ep.solve(p, "highs", options=TIGHT, time_limit=60)
        for m in ("uniform", "param-balanced", "flop-balanced", "block-partition"):
            r = ep.solve(p, m)
            if r.has_plan and exact.has_plan:
                gaps[f"pipeline/{m}"].append(r.fun / exact.fun - 1)
            else:
                fails[f"pipeline/{m}"] += 1
    print(f"{'heuristic':<28} {'n':>4} {'mean gap':>9} {'median':>8} {'max gap':>9} {'optimal':>8} {'no plan':>8}")
    for k, g in gaps.items():
        a = np.array(g)
        print(f"{k:<28} {a.size:>4} {100 * a.mean():>8.1f}% {100 * np.median(a):>7.1f}% {100 * a.max():>8.1f}% "
              f"{np.mean(a < 1e-9):>8.0%} {fails[k]:>8}")


def measured_vs_predicted(quick: bool) -> None:
    from edgeplan.validation.partition import execute as vp
    from edgeplan.validation.zoo import build_model

    print("\n## 3. Measured vs predicted on this host (profiles measured here, 1 intra-op thread)")
    errors, shares = [], []
    cases = [("resnet18", "full", 2), ("resnet18", "full", 3), ("mobilenet_v2", "full", 2), ("gpt2", "small", 2),
             ("bert_base", "small", 3), ("deit_s", "full", 2)]
    if quick:
        cases = cases[:3]
    rng = np.random.default_rng(2)
    for name, size, T in cases:
        z = build_model(name, size=size)
        prof = vp.profile_on_host(z.module, z.example_inputs, repeats=7)
        rates = 10 ** rng.uniform(7.3, 8.5, T - 1)
        p = vp.host_split_problem(prof, n_tiers=T, rates_bps=rates, latencies_s=1e-3)
        L = prof.n_blocks
        # the exact plan is often "all on one tier" on identical tiers; validate a few interior cuts as well
        plans = [ep.solve(p, "split-enum").plan]
        for _ in range(2):
            c = np.sort(rng.integers(1, L, size=T - 1))
            from edgeplan.formulations.partition import SplitPlan

            plans.append(SplitPlan.from_cuts(c, L))
        for plan in plans:
            rep = vp.validate_split(p, plan, z.module, z.example_inputs, link="socket", repeats=7)
            errors.append(rep.error)
            shares.append(rep.within_10pct)
            print(f"{name}/{size} T={T} tiers={plan.tier.tolist()}: predicted {1e3 * rep.predicted_s:.2f} ms, measured "
                  f"{1e3 * rep.measured_s:.2f} ms, error {100 * rep.error:+.1f} %, stages within 10 %: "
                  f"{100 * rep.within_10pct:.0f} %")
    for name, size in (("resnet18", "full"),) if quick else (("resnet18", "full"), ("gpt2", "small")):
        z = build_model(name, size=size)
        spec = {"name": name, "size": size, "batch_size": 1, "seed": 0}
        prof = vp.profile_on_host(z.module, z.example_inputs, repeats=7, zoo=spec)
        p = vp.host_pipeline_problem(prof, 2, rates_bps=200e6, n_micro=8, minimize="iteration")
        plan = ep.solve(p, "pipeline-dp").plan
        for timing in ("concurrent", "dilated"):
            rep = vp.validate_pipeline(p, plan, spec, z.example_inputs, timeout_s=300, timing=timing)
            if timing == "dilated":
                errors.append(rep.error)
                shares.append(rep.within_10pct)
            print(f"{name}/{size} gloo pipeline {plan.boundaries.tolist()}, {timing} timing: predicted "
                  f"{1e3 * rep.predicted_s:.2f} ms, measured {1e3 * rep.measured_s:.2f} ms, "
                  f"error {100 * rep.error:+.1f} %")
            print(str(rep))
            fm = rep.details["iteration_from_measured_stages_s"]
            print(f"  the schedule model fed with the measured stage times predicts {1e3 * fm:.2f} ms "
                  f"({100 * (rep.measured_s / fm - 1):+.1f} %)")
    e = np.abs(np.array(errors))
    print("(pipelines count with their dilated timing: on this host the stages would otherwise share its cores)")
    print(f"\nend-to-end |error|: median {100 * np.median(e):.1f} %, worst {100 * e.max():.1f} %, within +-10 %: "
          f"{np.mean(e <= 0.10):.0%} of {e.size} runs; stage figures within +-10 %: {100 * np.mean(shares):.0f} %")


def pipeline_fidelity(models: tuple[str, ...] = ("resnet18", "gpt2")) -> None:
    """Gloo pipelines of ResNet-18 and GPT-2 small: 2 and 3 stages, 4 and 8 micro-batches, the exact and the
    uniform plan, each run with concurrent and with dilated timing; every run predicted twice, from the profile
    measured beforehand in this process and from block times re-measured in the stage processes."""
    from edgeplan.validation.partition import execute as vp
    from edgeplan.validation.zoo import build_model

    print("\n## 4. Pipeline fidelity: every run concurrent and dilated (end-to-end error against prediction)")
    errs: dict[tuple[str, str], list[float]] = {(t, w): [] for t in ("concurrent", "dilated")
                                                for w in ("profile", "re-measured")}
    sizes = {"resnet18": "full", "gpt2": "small"}
    for name in models:
        size = sizes[name]
        z = build_model(name, size=size)
        spec = {"name": name, "size": size, "batch_size": 1, "seed": 0}
        prof = vp.profile_on_host(z.module, z.example_inputs, repeats=7, zoo=spec)
        shown = False
        for S in (2, 3):
            for M in (4, 8):
                p = vp.host_pipeline_problem(prof, S, rates_bps=200e6, n_micro=M, minimize="iteration")
                for method in ("pipeline-dp", "uniform"):
                    plan = ep.solve(p, method).plan
                    line = []
                    for timing in ("concurrent", "dilated"):
                        rep = vp.validate_pipeline(p, plan, spec, z.example_inputs, timeout_s=300, timing=timing)
                        errs[(timing, "profile")].append(rep.details["profile_error"])
                        errs[(timing, "re-measured")].append(rep.error)
                        pe = rep.details["profile_error"]
                        line.append(f"{timing} {1e3 * rep.measured_s:8.2f} ms (profile {pe:+6.1%}, re-measured "
                                    f"{rep.error:+6.1%})")
                        if timing == "dilated" and not shown:
                            print(rep)
                            shown = True
                    print(f"{name:<9} S={S} M={M} {method:<12} predicted {1e3 * p.evaluate(plan).iteration_s:8.2f} ms; "
                          + "; ".join(line))
    for (timing, what), e in errs.items():
        a = np.abs(np.array(e))
        print(f"{timing:<10} predicted from {what:<12} |error| median {np.median(a):.1%}, worst {a.max():.1%}, "
              f"within +-10 %: {int((a <= 0.10).sum())} of {a.size}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes, models and instances")
    ap.add_argument("--skip-validation", action="store_true", help="skip section 3 (real executions)")
    ap.add_argument("--pipelines", action="store_true", help="section 4: pipeline fidelity (minutes)")
    ap.add_argument("--instances", type=int, default=100, help="heuristic-gap instances per family (default 100)")
    args = ap.parse_args(argv)
    import os

    import torch

    torch.set_num_threads(1)
    print(f"host load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work on this "
          "host perturbs section 3)")
    ep.available_methods()                       # load every method once, outside the timings
    exact_times(args.quick)
    heuristic_gaps(zoo_profiles(args.quick), 30 if args.quick else args.instances)
    if not args.skip_validation:
        measured_vs_predicted(args.quick)
    if args.pipelines:
        pipeline_fidelity()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
