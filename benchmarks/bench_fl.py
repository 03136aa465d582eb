"""FL round scheduling: latency per method, heuristic gaps, exact solve times, DAGSA at scale, energy vs deadline,
and a 50-round simulation with mobile users.

Targets (issue 5): N=100, M=4, K=20 proven optimal in under 10 s; ``dagsa`` on N=1000 in under 1 s; a table of
each heuristic's gap to the optimum over 100 random instances; 50 rounds with 100 mobile users for each method,
with a plot of cumulative wall-clock per method.

Run: ``python benchmarks/bench_fl.py [--quick] [--out DIR]`` (``--quick``: fewer seeds and sizes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import edgeplan as ep
from edgeplan.experiments.fl_rounds import compare_simulations, plot_wall_clock
from edgeplan.formulations.fl.instances import fl_energy_instance, fl_round_instance

LATENCY_METHODS = ("fl-bisect", "dagsa", "dagsa-static", "fastest-compute", "best-channel", "random")
HEURISTICS = LATENCY_METHODS[1:]
#: A mobile setting where coverage windows bind: fast users, the CIFAR CNN payload, K close to N.
MOBILE = {"speed_mps": 30.0, "payload_bits": 4_506_784.0}


def _row(*cells: object, widths: tuple[int, ...]) -> str:
    return " ".join(f"{c:>{w}}" if not isinstance(c, float) else f"{c:>{w}.4g}" for c, w in zip(cells, widths,
                                                                                               strict=True))


def latency_vs_users(seeds: int, sizes: tuple[int, ...]) -> dict:
    """Mean round latency (s) per method against N (M = 4 BSs, K = N/5), like the paper's figures."""
    print("\n-- round latency (s) vs users, M=4, K=N/5, mean over", seeds, "seeds --")
    widths = (6, *(15,) * len(LATENCY_METHODS))
    print(_row("N", *LATENCY_METHODS, widths=widths))
    out = {}
    for n in sizes:
        vals = {m: [] for m in LATENCY_METHODS}
        for s in range(seeds):
            p = fl_round_instance(n, 4, n // 5, seed=s)
            for m in LATENCY_METHODS:
                r = ep.solve(p, m, time_limit=60)
                vals[m].append(r.fun if r.has_plan else np.nan)
        out[n] = {m: float(np.nanmean(v)) for m, v in vals.items()}
        print(_row(n, *(out[n][m] for m in LATENCY_METHODS), widths=widths))
    return out


def gap_table(n_instances: int) -> dict:
    """Each heuristic's relative gap to the proven optimum over random instances (two settings)."""
    out = {}
    for label, params in (("static-ish (N=40, K=10, 20 m/s)", {"n_users": 40, "n_select": 10}),
                          ("mobile (N=16, K=12, 30 m/s, 4.5 Mbit)", {"n_users": 16, "n_select": 12, **MOBILE})):
        gaps = {m: [] for m in HEURISTICS}
        exact_times = []
        for s in range(n_instances):
            n, k = params["n_users"], params["n_select"]
            extra = {key: v for key, v in params.items() if key not in ("n_users", "n_select")}
            p = fl_round_instance(n, 4, k, seed=1000 + s, **extra)
            e = ep.solve(p, "fl-bisect", time_limit=120)
            if e.status is not ep.Status.OPTIMAL:
                continue
            exact_times.append(e.time)
            for m in HEURISTICS:
                r = ep.solve(p, m)
                gaps[m].append((r.fun - e.fun) / e.fun if r.has_plan else np.inf)
        print(f"\n-- heuristic gap to the optimum, {label}: {len(exact_times)} instances proven optimal "
              f"(fl-bisect median {np.median(exact_times):.3g} s) --")
        widths = (16, 10, 10, 10, 10, 10)
        print(_row("method", "mean %", "median %", "p90 %", "max %", "optimal %", widths=widths))
        out[label] = {}
        for m in HEURISTICS:
            g = np.asarray(gaps[m]) * 100
            fin = g[np.isfinite(g)]
            stats = {"mean": float(fin.mean()), "median": float(np.median(fin)), "p90": float(np.percentile(fin, 90)),
                     "max": float(fin.max()), "optimal": float(np.mean(g <= 1e-4)) * 100,
                     "no_plan": int((~np.isfinite(g)).sum())}
            out[label][m] = stats
            print(_row(m, stats["mean"], stats["median"], stats["p90"], stats["max"], stats["optimal"], widths=widths)
                  + (f"  ({stats['no_plan']} without a plan)" if stats["no_plan"] else ""))
    return out


def exact_time_vs_size(sizes: tuple[int, ...], seeds: int) -> dict:
    """fl-bisect's solve time against N (M = 4, K = N/5), and the resource-block methods on small sizes."""
    print("\n-- exact solve time (s) vs size: fl-bisect (continuous, rtol 1e-6); median over", seeds, "seeds --")
    print(_row("N", "K", "median s", "max s", "MILPs", "optimal", widths=(6, 5, 10, 10, 7, 8)))
    out = {}
    for n in sizes:
        times, milps, ok = [], [], 0
        for s in range(seeds):
            p = fl_round_instance(n, 4, n // 5, seed=s)
            r = ep.solve(p, "fl-bisect", time_limit=120)
            times.append(r.time)
            milps.append(r.stats.get("milps", 0))
            ok += r.status is ep.Status.OPTIMAL
        out[n] = {"median": float(np.median(times)), "max": float(np.max(times)), "optimal": ok}
        print(_row(n, n // 5, out[n]["median"], out[n]["max"], int(np.median(milps)), f"{ok}/{seeds}",
                   widths=(6, 5, 10, 10, 7, 8)))
    print("\n-- resource blocks (50 kHz, 1 MHz per BS): exact methods, median s over", seeds, "seeds --")
    blocks = ("fl-bisect", "fl-rb-milp", "fl-cpsat")
    print(_row("N", *blocks, widths=(6, 12, 12, 12)))
    for n in (10, 20, 40):
        t = {m: [] for m in blocks}
        for s in range(seeds):
            p = fl_round_instance(n, 4, n // 5, seed=s, resource_block_hz=5e4)
            funs = set()
            for m in blocks:
                r = ep.solve(p, m, time_limit=120)
                t[m].append(r.time)
                funs.add(round(r.fun, 12) if r.status is ep.Status.OPTIMAL else None)
            assert len(funs) == 1, (n, s, funs)                  # the three exact methods agree
        print(_row(n, *(float(np.median(t[m])) for m in blocks), widths=(6, 12, 12, 12)))
    return out


def dagsa_at_scale() -> dict:
    print("\n-- dagsa at scale (M = 4, best of 3 runs) --")
    out = {}
    for n, k in ((1000, 20), (1000, 50), (1000, 100)):
        p = fl_round_instance(n, 4, k, seed=0)
        best = min(_timed(lambda p=p: ep.solve(p, "dagsa")) for _ in range(3))
        out[(n, k)] = best
        print(f"N={n} K={k}: {best:.3f} s")
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def energy_vs_deadline(seeds: int) -> dict:
    """Least energy (fl-energy, exact) and do-snm's energy against the round deadline, with and without an
    EDCR floor."""
    deadlines = (0.5, 0.75, 1.0, 1.5, 2.0)
    print("\n-- energy (mJ) vs deadline, N=30, M=4, K=8; mean over", seeds, "seeds --")
    widths = (10, 12, 12, 16, 16, 10)
    print(_row("deadline", "fl-energy", "do-snm", "fl-energy EDCR.6", "do-snm EDCR.6", "time s", widths=widths))
    out = {}
    for d in deadlines:
        vals = {k: [] for k in ("e", "g", "ec", "gc", "t")}
        for s in range(seeds):
            base = fl_energy_instance(30, 4, 8, seed=s, deadline_s=d)
            cov = fl_energy_instance(30, 4, 8, seed=s, deadline_s=d, shared_fraction=0.5, n_communities=2,
                                     edcr_min=0.6)
            for key, prob, method in (("e", base, "fl-energy"), ("g", base, "do-snm"), ("ec", cov, "fl-energy"),
                                      ("gc", cov, "do-snm")):
                r = ep.solve(prob, method, time_limit=120)
                vals[key].append(r.fun * 1e3 if r.has_plan else np.nan)
                if key == "ec":
                    vals["t"].append(r.time)
        out[d] = {k: float(np.nanmean(v)) for k, v in vals.items()}
        print(_row(d, out[d]["e"], out[d]["g"], out[d]["ec"], out[d]["gc"], out[d]["t"], widths=widths))
    return out


def multi_round(rounds: int, users: int, out_dir: Path) -> dict:
    print(f"\n-- {rounds} rounds, {users} mobile users (30 m/s, 4.5 Mbit), K = 20: cumulative wall-clock --")
    sims = compare_simulations(("fl-bisect", *HEURISTICS), n_rounds=rounds, n_users=users, n_select=20, seed=0,
                               time_limit=30, **MOBILE)
    widths = (16, 12, 12, 12, 10, 10)
    print(_row("method", "wall-clock s", "mean round", "scheduler s", "Jain", "ever %", widths=widths))
    for m, sim in sims.items():
        s = sim.summary()
        print(_row(m, s["wall_clock_s"], s["mean_round_latency_s"], s["scheduler_time_s"], s["jain_fairness"],
                   100 * s["users_ever_selected"], widths=widths))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "fl_wall_clock.png"
    plot_wall_clock(sims, path, title=f"{rounds} FL rounds, {users} users at 30 m/s")
    print(f"plot: {path}")
    return {m: sim.summary() for m, sim in sims.items()}


def mobility_sweep(rounds: int, users: int) -> dict:
    """DAGSA and its mobility-blind variant over rounds at several speeds: does mobility help (the paper's claim)?"""
    print(f"\n-- mobility: {rounds} rounds, {users} users, K = 20, 4.5 Mbit; dagsa / dagsa-static --")
    widths = (8, 14, 14, 10, 10)
    print(_row("speed", "wall-clock s", "static s", "Jain", "ever %", widths=widths))
    out = {}
    for v in (0.0, 10.0, 20.0, 30.0):
        sims = compare_simulations(("dagsa", "dagsa-static"), n_rounds=rounds, n_users=users, n_select=20, seed=0,
                                   speed_mps=v, payload_bits=MOBILE["payload_bits"])
        a, b = sims["dagsa"].summary(), sims["dagsa-static"].summary()
        out[v] = {"dagsa": a, "dagsa-static": b}
        print(_row(v, a["wall_clock_s"], b["wall_clock_s"], a["jain_fairness"], 100 * a["users_ever_selected"],
                   widths=widths))
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and sizes")
    ap.add_argument("--out", default="benchmarks/out", help="where the plot goes")
    args = ap.parse_args(argv)
    q = args.quick
    t0 = time.perf_counter()
    results = {
        "latency_vs_users": latency_vs_users(2 if q else 5, (20, 60, 100) if q else (20, 40, 60, 80, 100)),
        "gaps": gap_table(20 if q else 100),
        "exact_times": exact_time_vs_size((25, 50, 100) if q else (25, 50, 100, 200, 400), 2 if q else 5),
        "dagsa_scale": dagsa_at_scale(),
        "energy": energy_vs_deadline(2 if q else 5),
        "multi_round": multi_round(10 if q else 50, 100, Path(args.out)),
        "mobility": mobility_sweep(10 if q else 50, 100),
    }
    print(f"\n(total {time.perf_counter() - t0:.1f} s)")
    return results


if __name__ == "__main__":
    main()
