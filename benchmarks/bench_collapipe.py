"""CollaPipe: exact slot speed, the online controller (speed, budgets, V trade-off), its gap to the offline optimum,
and the direction of CollaPipe's reported gains.

1. **Slot scale**: ``collapipe-exact`` on 12 devices x 48 blocks with energy weights (target < 1 s).
2. **Controller speed**: DSSRA over 1,000 slots of the default 4-device horizon (target < 30 s).
3. **V trade-off** (500 slots, 3 seeds): time-average latency, budget excess and backlog against V; a plot
   (``--plot PATH``).
4. **Gap to the offline optimum** (``--offline N``, default 50 short horizons of ``--slots`` 20 slots): DSSRA's
   time-average latency, where it kept the budgets, against the Lagrangian lower bound and the column MILP's
   feasible schedule.
5. **Against the baselines**: per slot, the exact latency-optimal plan against the equal-segment pipeline with
   equal bandwidth, against on-device training of the whole encoder (latency; peak per-device memory), and
   against split learning with one cut (device to a 1 or 10 TFLOP/s edge, both paying the same D2E hop).

6. **Executed iterations** (``--execute N``): exact plans run for one training iteration on a real
   encoder-decoder (:mod:`edgeplan.validation.partition.collapipe`), measured against the slot model.

Run: ``python benchmarks/bench_collapipe.py [--offline 50] [--plot collapipe_v.png] [--execute 12]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import numpy as np

import edgeplan as ep
from edgeplan.formulations.partition.collapipe import CollaPipeHorizon
from edgeplan.formulations.partition.collapipe_instances import collapipe_horizon, collapipe_slot
from edgeplan.solvers.partition.collapipe_offline import offline_bound
from edgeplan.solvers.partition.dssra import run_policy


def slot_scale() -> None:
    print("-- slot scale: collapipe-exact on 12 devices x 48 blocks, energy weights (target < 1 s) --")
    times = []
    for seed in range(3):
        p = collapipe_slot(12, 48, energy=True, seed=seed)
        t0 = time.perf_counter()
        r = ep.solve(p, "collapipe-exact")
        times.append(time.perf_counter() - t0)
        print(f"seed {seed}: {r.status.value}, {times[-1]:.3f} s, {r.stats['bottleneck_candidates']} bottleneck "
              f"candidates, M = {r.plan.micro_batches}")
    print(f"worst {max(times):.3f} s; target < 1 s: {'met' if max(times) < 1 else 'MISSED'}")


def controller_speed() -> None:
    print("\n-- controller: DSSRA over 1,000 slots, 4 devices x 12 blocks (target < 30 s) --")
    h = collapipe_horizon(1000, seed=0)
    t0 = time.perf_counter()
    run = run_policy(h, "dssra", 100.0)
    dt = time.perf_counter() - t0
    print(f"{dt:.1f} s ({1e3 * dt / 1000:.1f} ms per slot); average latency {run.average_penalty:.3f} s, "
          f"max budget excess {run.excess.max():+.3f} J; target < 30 s: {'met' if dt < 30 else 'MISSED'}")


def v_tradeoff(plot: str | None) -> None:
    print("\n-- V trade-off: 500 slots, 3 devices x 6 blocks, budgets 1.1x the reference plan's energy --")
    Vs = (1.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
    rows = []
    for seed in (1, 2, 3):
        h = collapipe_horizon(500, 3, 6, n_units=8, seed=seed)
        myopic = run_policy(h, "myopic")
        equal = run_policy(h, "equal-pipeline")
        print(f"seed {seed}: myopic {myopic.average_penalty:.3f} s (excess {myopic.excess.max():+.3f} J), "
              f"equal-pipeline {equal.average_penalty:.3f} s (excess {equal.excess.max():+.3f} J)")
        for V in Vs:
            run = run_policy(h, "dssra", V)
            rows.append((seed, V, run.average_penalty, run.excess.max(), run.average_backlog.mean()))
            print(f"  V {V:>6g}: latency {run.average_penalty:.3f} s, max excess {run.excess.max():+.3f} J, "
                  f"mean backlog {run.average_backlog.mean():.2f}")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
        for seed in (1, 2, 3):
            r = [x for x in rows if x[0] == seed]
            a.plot([x[1] for x in r], [x[2] for x in r], marker="o", label=f"seed {seed}")
            b.plot([x[1] for x in r], [x[4] for x in r], marker="o", label=f"seed {seed}")
        for ax, lab in ((a, "time-average round latency (s)"), (b, "mean energy backlog (J)")):
            ax.set_xscale("log")
            ax.set_xlabel("V")
            ax.set_ylabel(lab)
            ax.legend()
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
        print(f"plot: {plot}")


def offline_gap(n: int, slots: int = 20) -> None:
    print(f"\n-- gap to the offline optimum: {n} horizons of {slots} slots, 3 devices x 8 blocks --")
    Vs = (10.0, 100.0)
    bound_gap, secs = [], []
    kept, excess, over_opt, over_same = dict.fromkeys(Vs, 0), {V: [] for V in Vs}, {V: [] for V in Vs}, \
        {V: [] for V in Vs}
    t0 = time.perf_counter()
    for seed in range(n):
        h = collapipe_horizon(slots, 3, 8, n_units=8, seed=seed)
        runs = {V: run_policy(h, "dssra", V) for V in Vs}
        equal = run_policy(h, "equal-pipeline", tighten=0.0)
        t1 = time.perf_counter()
        ob = offline_bound(h, extra=[*(r.decisions for r in runs.values()), equal.decisions], milp_time_limit=5.0)
        secs.append(time.perf_counter() - t1)
        bound_gap.append(ob.gap)
        for V, run in runs.items():
            kept[V] += bool(np.all(run.excess <= 1e-9))
            excess[V].append(float((run.excess / h.energy_budget_j).max()))
            over_opt[V].append(run.average_penalty / ob.lower - 1)
            # the best schedule in hindsight that spends no more on any device than DSSRA did
            same = CollaPipeHorizon(h.slot, h.gains, np.maximum(h.energy_budget_j, run.average_costs))
            os_ = offline_bound(same, extra=[run.decisions], milp_time_limit=5.0)
            over_same[V].append(run.average_penalty / os_.lower - 1)
    g = np.array(bound_gap)
    print(f"offline bounds (column MILP over the column-generation bound): median gap {np.median(g):.2%}, worst "
          f"{g.max():.2%}, closed (< 0.01 %) on {(g < 1e-4).sum()} of {n}; {np.median(secs):.1f} s median, "
          f"{max(secs):.1f} s worst per horizon")
    for V in Vs:
        a, b, ex = np.array(over_opt[V]), np.array(over_same[V]), np.array(excess[V])
        print(f"DSSRA V = {V:g}: within every budget on {kept[V]} of {n} (relative excess median {np.median(ex):+.1%}, "
              f"worst {ex.max():+.1%}); latency over the offline optimum's lower bound median {np.median(a):+.1%} "
              f"({a.min():+.1%}..{a.max():+.1%}); over the best schedule with DSSRA's own energy use as budgets "
              f"median {np.median(b):+.1%} ({b.min():+.1%}..{b.max():+.1%})")
    print(f"{time.perf_counter() - t0:.0f} s")


def against_baselines() -> None:
    print("\n-- against the baselines: 100 slots each, latency-optimal exact plan (no energy weights) --")
    for K, L in ((4, 12), (6, 24)):
        lat_eq, lat_dev, mem_ratio, dev_fit = [], [], [], 0
        for seed in range(100):
            p = collapipe_slot(K, L, seed=seed)
            r = ep.solve(p, "collapipe-exact")
            eq = ep.solve(p, "equal-pipeline")
            e = p.evaluate(r.plan)
            lat_eq.append(e.round_s / p.evaluate(eq.plan).round_s - 1 if eq.has_plan else np.nan)
            dev = [p.on_device(k) for k in range(K)]
            fast = min(dev, key=lambda d: d["round_s"])  # the fastest device, memory or not
            lat_dev.append(e.round_s / fast["round_s"] - 1)
            mem_ratio.append(e.memory_bytes.max() / fast["memory_bytes"])
            dev_fit += any(d["fits"] for d in dev)
        a, b, m = np.array(lat_eq), np.array(lat_dev), np.array(mem_ratio)
        print(f"{K} devices x {L} blocks: latency vs equal-pipeline median {np.nanmedian(a):+.1%} "
              f"(range {np.nanmin(a):+.1%}..{np.nanmax(a):+.1%}); vs the fastest device alone median "
              f"{np.median(b):+.1%} (range {b.min():+.1%}..{b.max():+.1%}); peak device memory / on-device memory "
              f"median {np.median(m):.2f} (range {m.min():.2f}..{m.max():.2f}); whole encoder fits some device on "
              f"{dev_fit} of 100")
    print("split learning (one cut, the rest of the encoder on the edge) against the pipeline, both paying the same "
          "D2E hop per batch:")
    for (K, L), edge, rate in itertools.product(((4, 12), (6, 24)), (10e12, 1e12), (20e6, 100e6)):
        ratio, sl_mem, cuts = [], [], []
        for seed in range(100):
            p = dataclasses.replace(collapipe_slot(K, L, seed=seed), d2e_rate_bps=rate)
            e = p.evaluate(ep.solve(p, "collapipe-exact").plan)
            sl = [p.split_learning(k, edge) for k in range(K)]
            best = min((x for x in sl if x["fits"]), key=lambda x: x["round_s"], default=None)
            if best is not None:
                ratio.append(e.round_s / best["round_s"] - 1)
                sl_mem.append(best["memory_bytes"] / e.memory_bytes.max())
                cuts.append(best["cut"])
        r_, m_ = np.array(ratio), np.array(sl_mem)
        print(f"  {K} x {L}, edge {edge / 1e12:g} TFLOP/s, D2E {rate / 1e6:g} Mbit/s: pipeline latency vs split "
              f"learning median {np.median(r_):+.1%} ({r_.min():+.1%}..{r_.max():+.1%}); split learning's device "
              f"memory / the pipeline's peak median {np.median(m_):.2f}; median cut {np.median(cuts):g} of {L} "
              f"blocks ({r_.size} slots with a cut that fits)")


def discretization_price() -> None:
    print("\n-- price of discretization: the exact plan against continuous bandwidth for its segments and M --")
    from edgeplan.solvers.partition.collapipe_links import continuous_links

    for K, L in ((4, 12), (6, 12), (6, 24)):
        gaps, secs = [], []
        for seed in range(20):
            p = collapipe_slot(K, L, seed=seed)
            plan = ep.solve(p, "collapipe-exact").plan
            t0 = time.perf_counter()
            c = continuous_links(p, plan.segments, plan.micro_batches)
            secs.append(time.perf_counter() - t0)
            gaps.append(p.evaluate(plan).round_s / c.round_s - 1)
        g = np.array(gaps)
        print(f"{K} devices x {L} blocks, 16 units: discrete above continuous median {np.median(g):+.2%} "
              f"(range {g.min():+.2%}..{g.max():+.2%}); continuous solve {np.median(secs):.2f} s median")


def execute_fidelity(n: int) -> None:
    from edgeplan.validation.partition.collapipe import ModelSpec, execute_slot_plan

    print(f"\n-- executed iterations: {n} exact plans on a BERT-style encoder-decoder (d 512, seq 128), dilated --")
    errs: dict[str, list[float]] = {"exact 1F1B replay": [], "slot model": [], "slot model, separate process": []}
    stage_err = []
    for i in range(n):
        K, L = (2, 4) if i % 3 == 0 else (3, 6) if i % 3 == 1 else (4, 8)
        p = collapipe_slot(K, L, batch_size=8, seed=i)
        plan = ep.solve(p, "collapipe-exact").plan
        run = execute_slot_plan(p, plan, ModelSpec(L, d_model=512, heads=8, seq_len=128, seed=i))
        errs["exact 1F1B replay"].append(run.replay_error)
        errs["slot model"].append(run.error)
        errs["slot model, separate process"].append(run.measured_s / run.fresh_predicted_s - 1)
        stage_err += [r["compute_meas_s"] / r["compute_pred_s"] - 1 for r in run.rows]
        print(f"{K} devices x {L} blocks, segments {plan.segments}, M = {plan.micro_batches}: measured "
              f"{run.measured_s:.3f} s; replay {run.replayed_s:.3f} s ({run.replay_error:+.1%}), slot model "
              f"{run.predicted_s:.3f} s ({run.error:+.1%}), separate-process times {run.fresh_predicted_s:.3f} s "
              f"({errs['slot model, separate process'][-1]:+.1%}); wall {run.wall_s:.2f} s")
        if i == 0:
            print(run)
    for what, e in errs.items():
        a = np.abs(e)
        print(f"predicted by the {what:<29}: within +-10 % on {int(np.sum(a <= 0.1))} of {n}, median |error| "
              f"{np.median(a):.1%}, worst {a.max():.1%}")
    c = np.abs(stage_err)
    print(f"stage compute per micro-batch: median |error| {np.median(c):.1%}, within +-10 % {np.mean(c <= 0.1):.0%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offline", type=int, default=50, help="short horizons for the offline gap (0: skip)")
    ap.add_argument("--slots", type=int, default=20, help="slots per short horizon (default 20)")
    ap.add_argument("--plot", default=None, help="write the V trade-off plot here (PNG)")
    ap.add_argument("--execute", type=int, default=0, help="executed iterations on a real encoder-decoder")
    args = ap.parse_args(argv)
    slot_scale()
    controller_speed()
    v_tradeoff(args.plot)
    against_baselines()
    discretization_price()
    if args.offline:
        offline_gap(args.offline, args.slots)
    if args.execute:
        execute_fidelity(args.execute)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
