"""Federated fine-tuning configuration: exact speed at scale, heuristic gaps, round-time ratios, and predicted
against measured on real models.

Figures printed:

1. **Scale** (target: N = 1,000 devices with 48-layer FedQuad candidate sets exact in under 1 s):
   ``finetune-sweep`` on ``"finetune"`` instances of 1,000 devices x 48 layers (2,400 candidates each).
2. **Gaps** on 100 seeded instances per setting: mean and worst relative gap of every heuristic to the exact
   optimum (progress per second: the optimum's over the heuristic's, minus 1), and how often it has no plan;
   FedQuad rounds (``finetune``, 12 devices x 12 layers) and FedBE rounds (``finetune-fedbe``, 10 devices, 4
   blocks, each trained by 2 devices); HFedMoE selections (``experts``, 32 experts).
3. **Round time and progress rate** of the exact plan and ``fedquad`` against the uniform baselines, on the same
   FedQuad instances (the paper reports 1.4-5.3x faster convergence; ours is a model's ratio, not a training run).
4. **Federated LoRA rounds for real** (``--run``): a measured GPT-2 tiny round of 6 devices, 12 rounds of each
   plan trained for real (``edgeplan.experiments.finetune_rounds``); emulated wall-clock to a target loss (the
   worst final loss) and the ratios against the uniform baselines (FedQuad: 1.4-5.3x, FedBE: 1.9-3.1x).
   FedBE for real (``--run``): a measured GPT-2 tiny expanded with 3 blocks, 6 devices with skewed domain
   mixtures, each block trained by 2 devices; the exact plan (``finetune-milp``) against ``fedbe`` and the
   baselines, time to a target loss. HFedMoE for real (``--run``): budgeted expert fine-tuning of a Mixtral-style
   MoE over 4 devices; held-out loss per selection method and aggregation rule.
5. **Real models** (``--real``): every FedQuad configuration of GPT-2, BERT and the Llama-style decoder ("small"
   zoo sizes, batch 4) measured with ``peft`` LoRA and quantized activations; memory predicted from the anchor
   configurations, step time cross-validated (``measure.compare``); the share within +-5 % (memory) and +-10 %
   (time, held-out configurations), and the misses.

6. **Peak resident memory** (``--rss``): one step of every FedQuad configuration of GPT-2 and the Llama-style
   decoder, each in a fresh process; the peak above the built model against the counted bytes plus the
   temporaries fitted on the anchors.

Run: ``python benchmarks/bench_finetune.py [--seeds 100] [--run] [--real] [--rss]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import edgeplan as ep
from edgeplan.formulations.finetune.instances import experts_instance, fedbe_instance, finetune_instance

FEDQUAD_METHODS = ("fedquad", "no-quant", "uniform-depth", "full-depth", "random-config")
FEDBE_METHODS = ("fedbe", "fedquad", "uniform-depth", "full-depth", "random-config")
EXPERT_METHODS = ("hfedmoe", "router-topk")


def scale(reps: int = 3) -> None:
    print("\n-- scale: finetune-sweep on 1,000 devices x 48 layers (target < 1 s) --")
    t0 = time.perf_counter()
    p = finetune_instance(1000, 48, seed=0)
    build = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        r = ep.solve(p, "finetune-sweep")
        times.append(r.solve_time)
    print(f"candidates {p.n_devices} x {p.n_candidates}; build {build:.2f} s; solve {min(times):.3f} s "
          f"(best of {reps}), status {r.status.value}; target < 1 s: {'met' if max(times) < 1 else 'MISSED'}")
    t0 = time.perf_counter()
    m = ep.solve(finetune_instance(200, 24, seed=0), "finetune-milp", time_limit=60)
    print(f"finetune-milp on 200 devices x 24 layers: {time.perf_counter() - t0:.2f} s, {m.status.value}")


def gaps(name: str, build, exact: str, methods: tuple[str, ...], seeds: int, sense: str = "max") -> None:
    out: dict[str, list[float]] = {m: [] for m in methods}
    none = dict.fromkeys(methods, 0)
    infeasible = 0
    for seed in range(seeds):
        p = build(seed)
        opt = ep.solve(p, exact, time_limit=60)
        if opt.status is ep.Status.INFEASIBLE:
            infeasible += 1
            continue
        assert opt.status is ep.Status.OPTIMAL, opt
        for m in methods:
            r = ep.solve(p, m, seed=seed)
            if not r.has_plan:
                none[m] += 1
                continue
            g = opt.fun / r.fun - 1 if sense == "max" and r.fun > 0 else (np.inf if sense == "max" else
                                                                            r.fun / opt.fun - 1)
            out[m].append(g)
    print(f"\n-- {name}: gap to {exact} over {seeds - infeasible} feasible instances of {seeds} "
          "(optimum / heuristic - 1) --")
    for m in methods:
        g = np.array(out[m])
        if g.size:
            print(f"{m:<14} mean {np.mean(g):7.2%}  worst {np.max(g):8.2%}  no plan {none[m]:>3}/{seeds - infeasible}")
        else:
            print(f"{m:<14} no plan on any instance")


def ratios(seeds: int) -> None:
    print(f"\n-- FedQuad rounds (12 devices x 12 layers), {seeds} instances: against the uniform baselines --")
    rows = {m: [] for m in ("finetune-sweep", "fedquad")}
    for seed in range(seeds):
        p = finetune_instance(12, 12, seed=seed)
        base = {b: ep.solve(p, b) for b in ("uniform-depth", "full-depth")}
        for m in rows:
            r = ep.solve(p, m)
            mr = p.evaluate(r.plan)
            entry = {}
            for b, rb in base.items():
                if rb.has_plan:
                    mb = p.evaluate(rb.plan)
                    entry[b] = (mb.round_time_s / mr.round_time_s, r.fun / rb.fun)
            rows[m].append(entry)
    for m, entries in rows.items():
        for b in ("uniform-depth", "full-depth"):
            vals = np.array([e[b] for e in entries if b in e])
            if vals.size:
                print(f"{m:<15} vs {b:<14} round-time ratio {np.median(vals[:, 0]):5.2f}x (median; "
                      f"{vals[:, 0].min():.2f}-{vals[:, 0].max():.2f}), progress-per-second ratio "
                      f"{np.median(vals[:, 1]):5.2f}x ({vals[:, 1].min():.2f}-{vals[:, 1].max():.2f}); "
                      f"{vals.shape[0]} instances with a baseline plan")


def federated_run(rounds: int = 12, *, model: str = "gpt2:tiny", n_devices: int = 6, local_steps: int = 10,
                  lr: float = 1e-2, seeds: int = 1, memory: tuple[float, float] = (2e-5, 1e-4)) -> None:
    from edgeplan.experiments.finetune_rounds import compare_plans
    from edgeplan.validation.finetune.execute import measured_instance

    print(f"\n-- federated LoRA rounds for real: {model}, {n_devices} devices, {rounds} rounds x {local_steps} local "
          f"steps, lr {lr}, {seeds} seed(s) --")
    for seed in range(seeds):
        p = measured_instance(n_devices, model=model, rounds=3, seed=seed, memory_share_low=memory[0],
                              memory_share_high=memory[1])
        traces = compare_plans(p, ("finetune-sweep", "fedquad", "uniform-depth", "full-depth", "no-quant"),
                               rounds=rounds, local_steps=local_steps, lr=lr, seed=seed)
        target = max(t.loss[-1] for t in traces)
        ttl = {t.label: t.time_to(target) for t in traces}
        for t in traces:
            print(f"seed {seed} {t.label:<15} loss {t.loss[0]:.3f} -> {t.loss[-1]:.3f}; round "
                  f"{np.mean(t.round_s) * 1e3:7.1f} ms; time to loss {target:.3f}: {ttl[t.label]:.3f} s")
        for m in ("finetune-sweep", "fedquad"):
            for b in ("uniform-depth", "full-depth"):
                if m in ttl and b in ttl and np.isfinite(ttl[m]) and ttl[m] > 0:
                    rt = np.mean(next(t.round_s for t in traces if t.label == b)) / np.mean(
                        next(t.round_s for t in traces if t.label == m))
                    print(f"seed {seed} {b} / {m}: time to loss {ttl[b] / ttl[m]:.2f}x, round time {rt:.2f}x")


def fedbe_run(rounds: int = 10, seeds: int = 2) -> None:
    from edgeplan.experiments.fedbe_rounds import compare_fedbe, fedbe_counts
    from edgeplan.validation.finetune.fedbe import measured_fedbe_instance

    print(f"\n-- FedBE for real: GPT-2 tiny + 2 appended blocks, 6 devices (4-domain Dirichlet 0.5 data), each "
          f"block trained by >= 2, {rounds} rounds x 10 local steps, {seeds} seeds --")
    methods = ("finetune-milp", "fedbe", "fedquad", "uniform-depth", "full-depth", "random-config")
    for seed in range(seeds):
        p = measured_fedbe_instance(6, model="gpt2:tiny", n_blocks=2, min_coverage=2, seed=seed,
                                    memory_share_low=5e-5, memory_share_high=3e-4)
        traces = compare_fedbe(p, fedbe_counts(6, seed=seed), methods, rounds=rounds, local_steps=10, lr=1e-2,
                               seed=seed)
        target = max(t.loss[-1] for t in traces)
        ttl = {t.label: t.time_to(target) for t in traces}
        for t in traces:
            r = ep.solve(p, t.label, seed=seed)
            print(f"seed {seed} {t.label:<15} {r.status.value:<12} loss {t.loss[0]:.3f} -> {t.loss[-1]:.3f}; round "
                  f"{np.mean(t.round_s) * 1e3:6.1f} ms; time to loss {target:.3f}: {ttl[t.label]:.3f} s")
        for b in ("fedbe", "uniform-depth", "full-depth"):
            if b in ttl and np.isfinite(ttl["finetune-milp"]) and ttl["finetune-milp"] > 0:
                print(f"seed {seed} time-to-loss ratio {b} / finetune-milp: {ttl[b] / ttl['finetune-milp']:.2f}x")


def hfedmoe_run(rounds: int = 10, seeds: int = 3) -> None:
    from edgeplan.experiments.hfedmoe_rounds import run_hfedmoe

    budgets = [0.25, 0.5, 0.5, 1.0]
    print(f"\n-- HFedMoE for real: Mixtral-style MoE (2 layers, 8 experts, top-2), 4 devices with budgets "
          f"{budgets}, {rounds} rounds x 5 SGD steps, held-out loss (mean over {seeds} seeds) --")
    runs = (("expert-dp", "hfedmoe", budgets), ("hfedmoe", "hfedmoe", budgets), ("router-topk", "hfedmoe", budgets),
            ("hfedmoe", "fedavg", budgets), ("expert-dp", "fedavg", budgets), ("expert-dp", "hfedmoe", [1.0] * 4))
    for method, agg, b in runs:
        curves = np.array([run_hfedmoe(b, method=method, aggregation=agg, rounds=rounds, seed=s)
                           for s in range(seeds)])
        mid = curves[:, rounds // 2].mean()
        print(f"{method:<12} {agg:<8} budgets {'dense' if min(b) == 1 else 'as above':<9} "
              f"loss {curves[:, 0].mean():.3f} -> {mid:.3f} (round {rounds // 2}) -> "
              f"{curves[:, -1].mean():.3f} (round {rounds}); "
              f"per seed final {', '.join(f'{v:.3f}' for v in curves[:, -1])}")


def real_models(rounds: int) -> None:
    from edgeplan.validation.finetune.measure import compare

    print("\n-- real models: predicted vs measured, every FedQuad configuration (8 and 4 bits); step time "
          "cross-validated (each configuration predicted by a fit that did not see it) --")
    total_t = total_m = n_all = n_held = 0
    for name in ("gpt2", "bert_base", "llama_small"):
        t0 = time.perf_counter()
        rows = compare(name, (8, 4), size="small", rounds=rounds)
        held = [r for r in rows if not r["anchor"]]
        me = np.array([r["memory_err"] for r in rows])
        te = np.array([r["time_err"] for r in held])
        ok_m, ok_t = int((np.abs(me) <= 0.05).sum()), int((np.abs(te) <= 0.10).sum())
        total_m, total_t, n_all, n_held = total_m + ok_m, total_t + ok_t, n_all + len(rows), n_held + len(held)
        print(f"{name:<12} {len(rows)} configs ({time.perf_counter() - t0:.0f} s): memory within 5 % {ok_m}/"
              f"{len(rows)} (max |err| {np.abs(me).max():.3%}); time within 10 % {ok_t}/{len(held)} held out "
              f"(max |err| {np.abs(te).max():.1%}); steps {min(r['time_meas_s'] for r in rows) * 1e3:.0f}-"
              f"{max(r['time_meas_s'] for r in rows) * 1e3:.0f} ms")
        for r in rows:
            if (abs(r["time_err"]) > 0.10 and not r["anchor"]) or abs(r["memory_err"]) > 0.05:
                print(f"   miss d={r['depth']} q={r['quantized']} b={r['bits']}: memory {r['memory_err']:+.2%}, "
                      f"time {r['time_pred_s'] * 1e3:.1f} ms predicted vs {r['time_meas_s'] * 1e3:.1f} measured "
                      f"({r['time_err']:+.1%})")
    print(f"all: memory within 5 % {total_m}/{n_all}; time within 10 % {total_t}/{n_held} held-out configurations "
          f"({total_t / n_held:.0%}; target 90 %)")


def peak_memory() -> None:
    from edgeplan.validation.finetune.measure import compare_peak

    print("\n-- peak resident memory of a step, every FedQuad configuration (8 and 4 bits), one process each --")
    mib = lambda v: v / 2**20  # noqa: E731
    for name in ("gpt2", "llama_small"):
        t0 = time.perf_counter()
        rows = compare_peak(name, (8, 4), size="small")
        for r in rows:
            r["kept"] = r["saved_bytes"] + r["state_bytes"]
        err = np.array([r["peak_err"] for r in rows if not r["anchor"]])
        share = np.array([r["kept"] / r["peak_bytes"] for r in rows])
        temp = {q: np.median([r["peak_bytes"] - r["kept"] for r in rows if (r["quantized"] > 0) == q])
                for q in (False, True)}
        peaks = [mib(r["peak_bytes"]) for r in rows]
        print(f"{name:<12} {len(rows)} configs ({time.perf_counter() - t0:.0f} s): peak {min(peaks):.0f}-"
              f"{max(peaks):.0f} MiB above the built model; counted bytes {share.min():.0%}-{share.max():.0%} of "
              f"it; temporaries (peak - counted, medians) {mib(temp[False]):.0f} MiB unquantized, "
              f"{mib(temp[True]):.0f} MiB quantized; predicted within 5 % for {int((np.abs(err) <= 0.05).sum())}/"
              f"{err.size} held out (max |err| {np.abs(err).max():.1%})")
        deepest = sorted((r for r in rows if r["depth"] == max(x["depth"] for x in rows)),
                         key=lambda r: (r["bits"], r["quantized"]))
        for r in deepest[:: max(1, len(deepest) // 5)]:
            print(f"   d={r['depth']} q={r['quantized']} b={r['bits']}: kept {mib(r['kept']):.1f} MiB, peak "
                  f"{mib(r['peak_bytes']):.1f} MiB (predicted {mib(r['peak_pred']):.1f})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--real", action="store_true", help="measure every configuration of three real models")
    ap.add_argument("--run", action="store_true", help="federated LoRA rounds for real")
    ap.add_argument("--run-small", action="store_true", help="federated LoRA rounds of GPT-2 small (about 30 minutes)")
    ap.add_argument("--rss", action="store_true", help="peak resident memory of every configuration (Linux)")
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args(argv)
    scale()
    gaps("FedQuad rounds (12 x 12)", lambda s: finetune_instance(12, 12, seed=s), "finetune-sweep", FEDQUAD_METHODS,
         args.seeds)
    gaps("FedBE rounds (10 devices, 4 blocks, coverage 2)", lambda s: fedbe_instance(10, 4, seed=s, min_coverage=2),
         "finetune-milp", FEDBE_METHODS, args.seeds)
    gaps("HFedMoE expert selection (32 experts)", lambda s: experts_instance(32, 8, seed=s), "expert-dp",
         EXPERT_METHODS, args.seeds)
    ratios(min(args.seeds, 100))
    if args.run:
        federated_run()
    if args.run_small:
        federated_run(8, model="gpt2:small", n_devices=4, local_steps=5, lr=3e-3, seeds=2, memory=(1e-4, 1e-3))
    if args.run:
        fedbe_run()
        hfedmoe_run()
    if args.real:
        real_models(args.rounds)
    if args.rss:
        peak_memory()


if __name__ == "__main__":
    main()
