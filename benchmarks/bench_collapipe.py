"""CollaPipe: exact slot speed, the online controller (speed, budgets, V trade-off), its gap to the offline optimum,
and the direction of CollaPipe's reported gains.

1. **Slot scale**: ``collapipe-exact`` on 12 devices x 48 blocks with energy weights (target < 1 s).
2. **Controller speed**: DSSRA over 1,000 slots of the default 4-device horizon (target < 30 s).
3. **V trade-off** (500 slots, 3 seeds): time-average latency, budget excess and backlog against V; a plot
   (``--plot PATH``).
4. **Gap to the offline optimum** (``--offline N``, default 50 short horizons of 10 slots): DSSRA's time-average
   latency against the Lagrangian lower bound and the column MILP's feasible schedule.
5. **Against the baselines**: per slot, the exact latency-optimal plan against the equal-segment pipeline with
   equal bandwidth and against on-device training of the whole encoder (latency; peak per-device memory).

Run: ``python benchmarks/bench_collapipe.py [--offline 50] [--plot collapipe_v.png]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import edgeplan as ep
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


def offline_gap(n: int) -> None:
    print(f"\n-- gap to the offline optimum: {n} horizons of 10 slots, 3 devices x 8 blocks, DSSRA V = 100 --")
    gaps_lb, gaps_ub, excess, within, closed = [], [], [], 0, 0
    t0 = time.perf_counter()
    for seed in range(n):
        h = collapipe_horizon(10, 3, 8, n_units=8, seed=seed)
        run = run_policy(h, "dssra", 100.0)
        equal = run_policy(h, "equal-pipeline", tighten=0.0)
        ob = offline_bound(h, iterations=30, extra=[run.decisions, equal.decisions])
        gaps_lb.append(run.average_penalty / ob.lower - 1)
        if ob.upper is not None:
            gaps_ub.append(run.average_penalty / ob.upper - 1)
            closed += ob.gap < 1e-6
        excess.append(float((run.excess / h.energy_budget_j).max()))
        within += bool(np.all(run.excess <= 1e-9))
    g, u, e = np.array(gaps_lb), np.array(gaps_ub), np.array(excess)
    print(f"DSSRA latency over the lower bound: median {np.median(g):+.1%}, mean {g.mean():+.1%}, worst {g.max():+.1%}")
    print(f"DSSRA latency over the best feasible offline schedule found: median {np.median(u):+.1%}, "
          f"range {u.min():+.1%}..{u.max():+.1%} ({u.size} horizons with one)")
    print(f"offline bounds closed (upper = lower) on {closed} of {n}; DSSRA within every budget on {within} of {n}"
          f" (worst relative excess {e.max():+.1%}: 10 slots are short for a queue); {time.perf_counter() - t0:.0f} s")


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offline", type=int, default=50, help="short horizons for the offline gap (0: skip)")
    ap.add_argument("--plot", default=None, help="write the V trade-off plot here (PNG)")
    args = ap.parse_args(argv)
    slot_scale()
    controller_speed()
    v_tradeoff(args.plot)
    against_baselines()
    if args.offline:
        offline_gap(args.offline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
