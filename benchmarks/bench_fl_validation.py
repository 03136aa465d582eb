"""FL rounds executed for real: measured against predicted round latency, and FedAvg accuracy against
wall-clock over a 50-round mobile simulation per method.

1. ``validate``: rounds planned by ``fl-bisect`` and ``dagsa`` are run with :func:`validate_fl_round` (FMNIST
   CNN, synthetic non-IID data, throttled devices, paced state_dict uploads), on (a) the DAGSA author setting
   as is (devices faster than this host: dilated time, payload = parameters only) and (b) the same rounds
   rebased on this host with :func:`host_fl_round` (payload = the real serialized state dict).
2. ``train``: :func:`compare_simulations` with ``train=True``, 100 mobile users, K = 20, every planned round
   trained for real; prints time to accuracy and writes ``fl_accuracy.png``.

Run: ``python benchmarks/bench_fl_validation.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import edgeplan as ep
from edgeplan.experiments.fl_rounds import compare_simulations, plot_accuracy
from edgeplan.formulations.fl.instances import fl_round_instance
from edgeplan.validation.fl.execute import calibrate_fl_training, host_fl_round, validate_fl_round

TRAIN_METHODS = ("fl-bisect", "dagsa", "dagsa-static", "fastest-compute", "best-channel", "random")


def validate(seeds: int, users: int, k: int) -> dict:
    cal = calibrate_fl_training(repeats=5)
    print(f"\n-- validate_fl_round: N={users}, K={k}, FMNIST CNN, host {cal.seconds_per_sample * 1e6:.0f} us per "
          f"sample-epoch (spread {cal.spread:.1%}), load {os.getloadavg()[0]:.2f} --")
    print(f"{'setting':>8} {'method':>10} {'seed':>4} {'dilation':>8} {'pred s':>8} {'meas s':>8} {'error':>7} "
          f"{'users +-10%':>11} {'worst user':>10} {'payload':>8} {'wall s':>7}")
    out: dict[str, list] = {"author": [], "host": []}
    for seed in range(seeds):
        base = fl_round_instance(users, 4, k, seed=seed, samples=(100, 300), local_epochs=2)
        for setting, problem in (("author", base), ("host", host_fl_round(base, cal))):
            for method in ("fl-bisect", "dagsa"):
                res = ep.solve(problem, method)
                t0 = time.perf_counter()
                rep = validate_fl_round(problem, res.plan, calibration=cal, test_samples=200, seed=seed, repeats=3)
                wall = time.perf_counter() - t0
                worst = max((u.error for u in rep.users), key=abs)
                print(f"{setting:>8} {method:>10} {seed:>4} {rep.dilation:>8.2f} {rep.predicted_round_s:>8.4f} "
                      f"{rep.measured_round_s:>8.4f} {rep.error:>+7.1%} {rep.within_10pct:>11.0%} {worst:>+10.1%} "
                      f"{rep.payload_error:>+8.1%} {wall:>7.1f}")
                out[setting].append({"method": method, "seed": seed, "error": rep.error,
                                     "within_10pct": rep.within_10pct, "user_errors": [u.error for u in rep.users]})
    for setting, rows in out.items():
        errs = np.array([e for r in rows for e in r["user_errors"]])
        rounds = np.array([r["error"] for r in rows])
        print(f"{setting}: round error median {np.median(rounds):+.1%} (range {rounds.min():+.1%} .. "
              f"{rounds.max():+.1%}); per user median |error| {np.median(np.abs(errs)):.1%}, "
              f"{np.mean(np.abs(errs) <= 0.10):.0%} within +-10% ({errs.size} users)")
    return out


def train(rounds: int, users: int, out_dir: Path) -> dict:
    print(f"\n-- FedAvg for real: {rounds} rounds, {users} mobile users, K=20, D in [30, 90], E=1, FMNIST CNN --")
    t0 = time.perf_counter()
    sims = compare_simulations(TRAIN_METHODS, n_rounds=rounds, n_users=users, n_select=20, samples=(30, 90),
                               local_epochs=1, seed=0, train=True)
    print(f"{'method':>16} {'wall-clock s':>12} {'final acc':>9} {'t(acc>=0.6) s':>13} {'t(acc>=0.8) s':>13} "
          f"{'Jain':>5} {'users seen':>10}")
    out = {}
    for name, sim in sims.items():
        s = sim.summary()
        print(f"{name:>16} {s['wall_clock_s']:>12.2f} {s['final_accuracy']:>9.3f} {sim.time_to_accuracy(0.6):>13.2f} "
              f"{sim.time_to_accuracy(0.8):>13.2f} {s['jain_fairness']:>5.2f} {s['users_ever_selected']:>10.0%}")
        out[name] = s | {"t60": sim.time_to_accuracy(0.6), "t80": sim.time_to_accuracy(0.8)}
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_accuracy(sims, out_dir / "fl_accuracy.png")
    print(f"wrote {out_dir / 'fl_accuracy.png'} ({time.perf_counter() - t0:.0f} s)")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer seeds and rounds")
    ap.add_argument("--out", default="benchmarks/out", help="where the plot goes")
    args = ap.parse_args(argv)
    q = args.quick
    return {"validate": validate(1 if q else 3, 40, 5 if q else 10),
            "train": train(10 if q else 50, 100, Path(args.out))}


if __name__ == "__main__":
    main()
