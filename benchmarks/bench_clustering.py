"""Clustered split FL (ParallelSFL): heuristics against the exact clustering, the MILP at the papers' testbed size,
the heuristic at 1,000 workers, and the update-frequency sweep against Eq. 17.

    python benchmarks/bench_clustering.py             # everything (about 2 minutes)
    python benchmarks/bench_clustering.py --milp 60   # only the 80-worker MILP, with its time limit
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import edgeplan
from edgeplan.formulations.clustering.instances import split_fl_instance, update_frequency_instance

HEURISTICS = ("parallelsfl", "kmeans-only", "random-clusters", "one-cluster")


def _gap_line(name: str, gaps: list[float], n: int) -> str:
    if not gaps:
        return f"  {name:16s} no plan on any of {n}"
    g = 100 * np.array(gaps)
    return f"  {name:16s} plans {len(gaps):3d}/{n}  mean gap {g.mean():6.2f} %  worst {g.max():6.2f} %"


def gaps(n: int = 100, n_workers: int = 10) -> None:
    """Each heuristic's utility above the optimum (``cluster-dp``), relative, on ``n`` seeded instances."""
    out: dict[str, list[float]] = {m: [] for m in HEURISTICS}
    t_exact = []
    for seed in range(n):
        p = split_fl_instance(n_workers=n_workers, seed=seed, max_bottoms=4)
        t0 = time.perf_counter()
        best = edgeplan.solve(p, "cluster-dp")
        t_exact.append(time.perf_counter() - t0)
        assert best.status is edgeplan.Status.OPTIMAL, best
        for m in HEURISTICS:
            r = edgeplan.solve(p, m, seed=seed)
            if r.has_plan:
                assert r.fun >= best.fun - 1e-9, (m, r, best)
                out[m].append((r.fun - best.fun) / best.fun)
    print(f"gaps on {n} instances of {n_workers} workers, KL utility (cluster-dp median "
          f"{np.median(t_exact) * 1e3:.0f} ms):")
    for m in HEURISTICS:
        print(_gap_line(m, out[m], n))


def milp(limit: float = 60.0, n_workers: int = 80) -> None:
    """``cluster-milp`` on the papers' testbed size (L1 distance) with a time limit: the gap it reaches."""
    p = split_fl_instance(n_workers=n_workers, seed=0, divergence="l1", min_bottoms=3, max_bottoms=6)
    t0 = time.perf_counter()
    r = edgeplan.solve(p, "cluster-milp", time_limit=limit, seed=0)
    wall = time.perf_counter() - t0
    gap = "none" if r.gap is None else f"{100 * r.gap:.1f} %"
    print(f"cluster-milp, {n_workers} workers, {limit:g} s limit: {r.status.value} in {wall:.1f} s, utility "
          f"{r.fun:.4f} (parallelsfl start {r.stats.get('warm_start')}), bound {r.bound}, gap {gap}, "
          f"{r.stats.get('milp_vars')} columns, {r.stats.get('milp_rows')} rows")


def speed(n_workers: int = 1000, n_clusters: int = 10_000) -> None:
    """``parallelsfl`` on 1,000 workers (target under 1 s) and ``frequency-sweep`` on 10,000 clusters."""
    p = split_fl_instance(n_workers=n_workers, seed=0)
    t0 = time.perf_counter()
    r = edgeplan.solve(p, "parallelsfl", seed=0)
    print(f"parallelsfl, {n_workers} workers: {r.status.value}, {r.plan.n_clusters if r.has_plan else 0} clusters, "
          f"{time.perf_counter() - t0:.2f} s (target under 1 s)")
    f = update_frequency_instance(n_clusters=n_clusters, seed=0)
    t0 = time.perf_counter()
    r = edgeplan.solve(f, "frequency-sweep")
    print(f"frequency-sweep, {n_clusters} clusters: {r.status.value} in {time.perf_counter() - t0:.2f} s")


def frequencies(n: int = 100) -> None:
    """Eq. 17 and one fixed frequency against the exact sweep (throughput below the optimum, relative)."""
    out: dict[str, list[float]] = {"eq17": [], "same-frequency": []}
    for seed in range(n):
        f = update_frequency_instance(n_clusters=8, seed=seed)
        best = edgeplan.solve(f, "frequency-sweep")
        for m in out:
            r = edgeplan.solve(f, m)
            out[m].append((best.fun - r.fun) / best.fun)
    print(f"update frequencies on {n} instances of 8 clusters (throughput below frequency-sweep's optimum):")
    for m, g in out.items():
        print(_gap_line(m, g, n))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--milp", type=float, default=None, help="only the 80-worker MILP with this time limit")
    args = ap.parse_args(argv)
    if args.milp is not None:
        milp(args.milp)
        return
    gaps()
    frequencies()
    speed()
    milp()


if __name__ == "__main__":
    main()
