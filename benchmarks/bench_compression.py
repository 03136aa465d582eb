"""Caesar: heuristics against the exact methods, plans for 10,000 devices, and multi-round FL trained for real
with the real codecs (traffic to a target accuracy, bytes and deviations against the plan).

    python benchmarks/bench_compression.py            # gaps and speed (about 1 minute)
    python benchmarks/bench_compression.py --train    # the trained runs (about 3 minutes)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import edgeplan
from edgeplan.formulations.compression.instances import (
    batch_sizing_instance,
    caesar_round_instance,
    upload_ratios_instance,
)


def _line(name: str, gaps: list[float], n: int) -> str:
    if not gaps:
        return f"  {name:20s} no plan on any of {n}"
    g = 100 * np.array(gaps)
    return f"  {name:20s} plans {len(gaps):3d}/{n}  mean {g.mean():7.2f} %  worst {g.max():7.2f} %"


def gaps(n: int = 100) -> None:
    """Heuristic gaps on ``n`` seeded instances of each problem."""
    cases = (("caesar-round (traffic)", lambda s: caesar_round_instance(n_devices=8, seed=s), "compression-milp",
              ("caesar", "caesar-no-batching", "uniform-compression", "no-compression")),
             ("caesar-round (round time)", lambda s: caesar_round_instance(n_devices=8, seed=s, goal="round_time"),
              "compression-milp", ("caesar", "caesar-no-batching", "uniform-compression", "no-compression")),
             ("upload-ratios", lambda s: upload_ratios_instance(n_devices=20, seed=s), "upload-waterfill",
              ("caesar-upload", "uniform-upload")),
             ("batch-sizing", lambda s: batch_sizing_instance(n_devices=20, seed=s), "batch-sweep",
              ("caesar-batch", "equal-batches")))
    for title, build, exact, heuristics in cases:
        out: dict[str, list[float]] = {m: [] for m in heuristics}
        times = []
        for seed in range(n):
            p = build(seed)
            t0 = time.perf_counter()
            best = edgeplan.solve(p, exact, time_limit=60)
            times.append(time.perf_counter() - t0)
            assert best.status is edgeplan.Status.OPTIMAL, best
            for m in heuristics:
                r = edgeplan.solve(p, m, seed=seed)
                if r.has_plan:
                    out[m].append(abs(r.fun - best.fun) / abs(best.fun))
        print(f"{title}: {n} instances, {exact} median {np.median(times) * 1e3:.1f} ms, worst {max(times):.2f} s")
        for m in heuristics:
            print(_line(m, out[m], n))


def speed(n: int = 10_000) -> None:
    """Plans for ``n`` devices (target under 1 s each) and the joint MILP at 20 and 100 devices."""
    for build, methods in ((lambda: upload_ratios_instance(n_devices=n, seed=0), ("upload-waterfill", "caesar-upload")),
                           (lambda: batch_sizing_instance(n_devices=n, seed=0), ("batch-sweep", "caesar-batch"))):
        p = build()
        for m in methods:
            t0 = time.perf_counter()
            r = edgeplan.solve(p, m)
            print(f"  {m:18s} {n} devices: {r.status.value} in {time.perf_counter() - t0:.3f} s (target under 1 s)")
    for size in (20, 100):
        p = caesar_round_instance(n_devices=size, seed=0)
        t0 = time.perf_counter()
        r = edgeplan.solve(p, "compression-milp", time_limit=60)
        print(f"  compression-milp {size} devices: {r.status.value} in {time.perf_counter() - t0:.2f} s")


def train(rounds: int = 40, targets: tuple = (0.8, 0.9, 0.95)) -> None:
    """Multi-round FL with the real codecs: traffic to each target accuracy, final accuracy, plan fidelity, for
    both recovery references (the uploads re-planned on measured profiles)."""
    from edgeplan.experiments.caesar_run import run_caesar

    runs = {}
    for reference in ("shared", "local"):
        for m in ("no-compression", "uniform-compression", "caesar", "compression-milp"):
            if reference == "local" and m == "no-compression":
                continue  # uncompressed downloads never recover anything
            t0 = time.perf_counter()
            runs[m, reference] = run = run_caesar(m, rounds=rounds, reference=reference)
            print(f"{m} ({reference} reference): {time.perf_counter() - t0:.0f} s, {_fidelity(run)}")
    base = runs["no-compression", "shared"]
    for target in targets:
        row = []
        for (m, ref), run in runs.items():
            b, x = base.traffic_to(target), run.traffic_to(target)
            row.append(f"{m}/{ref} {'never' if x is None else f'{x / 1e6:.2f} MB'}"
                       + ("" if x is None or b is None or m == "no-compression" else f" ({100 * (x / b - 1):+.1f} %)"))
        print(f"  traffic to {target:.2f}: " + "; ".join(row))


def _within(measured: np.ndarray, predicted: np.ndarray) -> str:
    """The share of positive predictions within 10 % of the measured value."""
    ok = predicted > 0
    share = np.mean(np.abs(measured[ok] / predicted[ok] - 1) <= 0.1) * 100 if ok.any() else 0.0
    return f"{share:.0f} % of {ok.sum()}"


def _fidelity(run: object) -> str:
    """Accuracy, traffic, bytes and deviations of one run against its plans."""
    r = run.rounds
    w = np.array([x.weighted_upload for x in r])
    up, pu, fu = (np.concatenate([getattr(x, a) for x in r])
                  for a in ("upload_deviation", "predicted_upload", "forecast_upload"))
    dd, dp = (np.concatenate([getattr(x, a) for x in r]) for a in ("download_deviation", "predicted_download"))
    return (f"final accuracy {run.accuracy[-1]:.3f} (best {run.accuracy.max():.3f}), traffic "
            f"{run.traffic[-1] / 1e6:.2f} MB, bytes as planned: {all(x.bytes == x.predicted_bytes for x in r)}, "
            f"first plans' traffic {sum(x.planned_bytes for x in r) / 1e6:.2f} MB; weighted upload deviation "
            f"within 10 %: planned {_within(w[:, 0], w[:, 1])}, forecast {_within(w[:, 0], w[:, 2])} of the rounds; "
            f"per device: planned {_within(up, pu)}, forecast {_within(up, fu)}; download deviation within 10 %: "
            f"{_within(dd, dp)}, largest {dd.max():.4f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", action="store_true", help="only the trained multi-round runs")
    args = ap.parse_args(argv)
    if args.train:
        train()
        return
    gaps()
    speed()


if __name__ == "__main__":
    main()
