"""Clustered split FL (ParallelSFL): heuristics against the exact clustering, the MILP at the papers' testbed size,
the heuristic at 1,000 workers, and the update-frequency sweep against Eq. 17.

    python benchmarks/bench_clustering.py             # gaps, speed, the 80-worker MILP (about 2 minutes)
    python benchmarks/bench_clustering.py --milp 60   # only the 80-worker MILP, with its time limit
    python benchmarks/bench_clustering.py --validate  # clusters executed in real time against the model
    python benchmarks/bench_clustering.py --train     # split FL trained as planned: accuracy against wall clock
    python benchmarks/bench_clustering.py --fedgcf    # FedGCF: clustering gaps, and GCNs trained for real
"""

from __future__ import annotations

import argparse
import dataclasses
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
          f"{r.fun} (warm start {r.stats.get('warm_start')}), bound {r.bound}, gap {gap}, "
          f"{r.stats.get('milp_vars')} columns, {r.stats.get('milp_rows')} rows")


def speed(n_workers: int = 1000, n_clusters: int = 10_000) -> None:
    """``parallelsfl`` on 1,000 workers (target under 1 s) and ``frequency-sweep`` on 10,000 clusters (after one
    small solve, so that loading the method registry is not counted)."""
    edgeplan.solve(split_fl_instance(n_workers=8, seed=0), "parallelsfl", seed=0)
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


PLANNERS = ("cluster-dp", "parallelsfl", "kmeans-only", "random-clusters", "one-cluster")


def validate(seeds: int = 6, n_workers: int = 12) -> None:
    """Every cluster of the plans of ``PLANNERS`` on ``seeds`` instances, executed in real time (3 iterations)."""
    from edgeplan.validation.clustering.execute import validate_split_fl

    errs, waits, pw, mw, it = [], [], [], [], []
    for seed in range(seeds):
        p = split_fl_instance(n_workers=n_workers, seed=seed, max_bottoms=5)
        for m in PLANNERS:
            r = edgeplan.solve(p, m, seed=seed)
            if not r.has_plan:
                continue
            rep = validate_split_fl(p, r.plan)
            errs += list(rep.predicted_iteration_s / rep.measured_iteration_s - 1)
            waits += list(rep.predicted_wait_s - rep.measured_wait_s)
            pw += list(rep.predicted_wait_s)
            mw += list(rep.measured_wait_s)
            it += list(rep.measured_iteration_s)
    e = 100 * np.abs(errs)
    print(f"{len(errs)} clusters executed: iteration predicted within 10 % for {np.mean(e <= 10) * 100:.0f} % "
          f"(median |error| {np.median(e):.1f} %, worst {e.max():.1f} %); barrier wait predicted minus measured: "
          f"median {np.median(waits) * 1e3:+.1f} ms, worst {np.max(np.abs(waits)) * 1e3:.1f} ms")
    pw, mw, it = np.array(pw), np.array(mw), np.array(it)
    big = mw >= 0.01
    rel = np.abs(pw[big] / mw[big] - 1) <= 0.1
    print(f"  barrier wait within 10 % of the measured wait for {np.mean(rel) * 100:.0f} % of the {big.sum()} clusters "
          f"waiting 10 ms or more; within 10 % of the measured iteration for "
          f"{np.mean(np.abs(pw - mw) <= 0.1 * it) * 100:.0f} % of all {it.size}")


def train(n_workers: int = 12, rounds: int = 40, seed: int = 0, tau_max: int = 10, max_bottoms: int = 3,
          alpha: float = 0.05) -> None:
    """Split FL trained as each method plans it: accuracy against the planned wall clock (workers with one or two
    labels each, so that a cluster of similar workers trains its models on a few labels for ``tau_max``
    iterations between aggregations)."""
    from edgeplan.validation.clustering.splitfl import smashed_bytes, split_cnn, train_rounds
    from edgeplan.validation.fltask import fl_task

    task = fl_task("fmnist_cnn", alpha=alpha, noise=4.0, seed=seed)
    base = split_fl_instance(n_workers=n_workers, seed=seed, max_bottoms=max_bottoms, alpha=alpha)
    labels = np.array([np.bincount(task.user_data(i + 1000 * seed, 200)[1].numpy(), minlength=10)
                       for i in range(n_workers)]) + 1e-3
    base = dataclasses.replace(base, labels=labels)  # the clustering sees the labels the workers train on
    p = dataclasses.replace(base, ingress_bps=np.full(n_workers, np.inf))  # every method's clusters fit the links
    bottom, top = split_cnn(task)
    b_bytes = 4.0 * sum(v.numel() for v in bottom.state_dict().values())
    t_bytes = 4.0 * sum(v.numel() for v in top.state_dict().values())
    runs, traffic = {}, {}
    for m in PLANNERS:
        r = edgeplan.solve(p, m, seed=seed)
        plan = r.plan if r.has_plan else r.stats.get("rejected_plan")
        if plan is None:
            print(f"  {m}: no plan ({r.message})")
            continue
        note = "" if r.has_plan else f" [executed as it is: {r.message.split(': ', 1)[-1][:60]}]"
        fp = p.frequency_problem(plan, tau_max=tau_max)
        f = edgeplan.solve(fp, "frequency-sweep")
        round_s = fp.evaluate(f.plan).round_s
        t0 = time.perf_counter()
        run = train_rounds(p, plan, f.plan.tau, round_s, task=task, rounds=rounds, seed=seed)
        runs[m] = run
        # bytes per round: smashed data and gradients (32 samples per iteration), the bottoms' models to the top
        # and back (Eq. 4), the cluster's whole model to the server and back (Eq. 18)
        n_c = np.bincount(plan.assignment, minlength=plan.n_clusters) - 1
        traffic[m] = float(sum(f.plan.tau[c] * n_c[c] * smashed_bytes(32) + 2 * n_c[c] * b_bytes
                               + 2 * (b_bytes + t_bytes) for c in range(plan.n_clusters)))
        print(f"  {m:16s} {plan.n_clusters} clusters, utility {p.objective(plan):.3f}, tau {f.plan.tau.tolist()}, "
              f"round {round_s:.2f} s; accuracy after 10/20/{rounds} rounds {run.accuracy[9]:.3f}/"
              f"{run.accuracy[19]:.3f}/{run.accuracy[-1]:.3f} ({time.perf_counter() - t0:.0f} s){note}")
    for target in (0.7, 0.8):
        cells = []
        for m, run in runs.items():
            hit = np.flatnonzero(run.accuracy >= target)
            cells.append(f"{m} {'never' if not hit.size else f'{(hit[0] + 1) * traffic[m] / 1e6:.1f} MB'}")
        print(f"  traffic to {target:.1f}: " + "; ".join(cells))
    horizon = min(run.wall_s[-1] for run in runs.values())
    for target in (0.6, 0.7, 0.8):
        cells = []
        for m, run in runs.items():
            hit = np.flatnonzero(run.accuracy >= target)
            cells.append(f"{m} {'never' if not hit.size else f'{run.wall_s[hit[0]]:.0f} s'}")
        print(f"  wall clock to {target:.1f}: " + "; ".join(cells))
    cells = [f"{m} {run.accuracy[np.searchsorted(run.wall_s, horizon, side='right') - 1]:.3f}"
             for m, run in runs.items()]
    print(f"  accuracy at {horizon:.0f} s of wall clock: " + "; ".join(cells))


def fedgcf(n: int = 100, seeds: int = 3) -> None:
    """FedGCF's clustering against the exact MILP on ``n`` instances, then FedGCF trained for real on ``seeds``
    sets of graph clients against FedAvg of one GCN."""
    from edgeplan.formulations.clustering.groups import GroupPlan
    from edgeplan.formulations.clustering.instances import graph_clients_instance
    from edgeplan.validation.clustering.fedgcf import graph_clients, measured_graph_clustering, train_fedgcf

    out: dict[str, list[float]] = {"fedgcf": [], "random-groups": []}
    times = []
    for seed in range(n):
        p = graph_clients_instance(n_clients=12, n_clusters=3, seed=seed, min_size=3, max_size=5)
        t0 = time.perf_counter()
        best = edgeplan.solve(p, "highs", time_limit=60)
        times.append(time.perf_counter() - t0)
        assert best.status is edgeplan.Status.OPTIMAL, best
        for m in out:
            r = edgeplan.solve(p, m, seed=seed)
            if r.has_plan:
                out[m].append((r.fun - best.fun) / best.fun)
    print(f"graph clustering, {n} instances of 12 clients in 3 clusters of 3-5 (MILP median "
          f"{np.median(times):.2f} s, worst {max(times):.2f} s):")
    for m, g in out.items():
        print(_gap_line(m, g, n))
    for seed in range(seeds):
        clients = graph_clients(12, seed=seed)
        p = measured_graph_clustering(clients, 2)
        plans = {"exact": edgeplan.solve(p, "highs").plan, "fedgcf": edgeplan.solve(p, "fedgcf").plan,
                 "random": edgeplan.solve(p, "random-groups", seed=seed).plan,
                 "one cluster": GroupPlan(np.zeros(12, dtype=np.int64))}
        acc = {k: train_fedgcf(clients, v).accuracy[-1] for k, v in plans.items()}
        acc["FedAvg GCN"] = train_fedgcf(clients, plans["one cluster"], rho=1.0).accuracy[-1]
        print(f"  clients seed {seed}: final accuracy " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items())
              + f"; FedGCF (exact clusters) against FedAvg {100 * (acc['exact'] - acc['FedAvg GCN']):+.1f} points")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--milp", type=float, default=None, help="only the 80-worker MILP with this time limit")
    ap.add_argument("--validate", action="store_true", help="clusters executed in real time")
    ap.add_argument("--train", action="store_true", help="split FL trained as planned")
    ap.add_argument("--seed", type=int, default=0, help="with --train: the seed of the workers and their data")
    ap.add_argument("--fedgcf", action="store_true", help="FedGCF clustering and training")
    args = ap.parse_args(argv)
    if args.fedgcf:
        fedgcf()
        return
    if args.validate:
        validate()
        return
    if args.train:
        train(seed=args.seed)
        return
    if args.milp is not None:
        milp(args.milp)
        return
    gaps()
    frequencies()
    speed()
    milp()


if __name__ == "__main__":
    main()
