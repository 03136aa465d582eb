"""Synchronisation schedules: exact speed at scale, heuristic gaps, and the real-model studies.

Figures printed:

1. **Scale**: ``kv-sync-dp`` on L = 128 blocks, N = 64 participants (target < 0.1 s); ``fragment-dp`` and
   ``highs`` on 1,000 fragments x 100 slots (target < 5 s); with a staleness limit (W = 10) the gap of
   ``fragment-milp`` (warm-started) and ``highs`` at 5 s.
2. **Gaps** on seeded instances: every heuristic's mean and worst gap to the exact optimum, and how often it has
   no plan (``kv-sync`` 24 blocks x 8 participants; ``fragment-sync`` 32 x 20, with and without W = 6).
3. **FedAttn for real** (``--real``): the decoder of ``edgeplan.validation.lm`` (trained once, cached);
   the quality/communication curve over H and N (``--plot`` saves it), the calibrated error model's fit on
   held-out prompts, and the exact schedule's bytes against uniform H at equal predicted error.
4. **CoCoDC for real** (``--real``): DiLoCo, Streaming DiLoCo and CoCoDC in 2 region processes over paced
   loopback links; steps and seconds to the worst final loss, transfers within +-10 % of the prediction.

Run: ``python benchmarks/bench_sync.py [--seeds 50] [--real] [--plot docs/sync-fedattn.png]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import edgeplan as ep
from edgeplan.formulations.sync.instances import fragment_sync_instance, kv_sync_instance


def _timed(problem, method, reps=5, **kw):
    times, r = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        r = ep.solve(problem, method, **kw)
        times.append(time.perf_counter() - t0)
    return r, float(np.median(times))


def scale() -> None:
    print("\n-- scale --")
    p = kv_sync_instance(128, 64, seed=0)
    r, t = _timed(p, "kv-sync-dp")
    print(f"kv-sync-dp L=128 N=64: {r.status.value}, {t * 1e3:.1f} ms median of 5 (target < 100 ms), "
          f"{r.stats['labels']} labels")
    q = fragment_sync_instance(1000, 100, seed=0)
    for m in ("fragment-dp", "highs"):
        r, t = _timed(q, m, reps=1, time_limit=60)
        print(f"{m} 1000 x 100: {r.status.value} in {t:.2f} s (target < 5 s), gap {r.gap}")
    w = fragment_sync_instance(1000, 100, seed=0, max_staleness=10)
    for m in ("fragment-milp", "highs"):
        r, t = _timed(w, m, reps=1, time_limit=5)
        print(f"{m} 1000 x 100, W = 10: {r.status.value} in {t:.2f} s, gap {r.gap}")


def gaps(seeds: int) -> None:
    print("\n-- heuristic gaps (mean / worst relative gap to the optimum, or to the MILP's bound when it stopped at "
          "its 5 s limit; no-plan count) --")
    cases = [("kv-sync 24x8", lambda s: kv_sync_instance(24, 8, seed=s), "kv-sync-dp", seeds,
              ("fedattn-uniform", "fedattn-deep", "all-sync", "no-sync")),
             ("fragment 32x20", lambda s: fragment_sync_instance(32, 20, seed=s), "fragment-dp", seeds,
              ("cocodc", "streaming-diloco", "diloco")),
             ("fragment 32x20 W=6", lambda s: fragment_sync_instance(32, 20, seed=s, max_staleness=6), "fragment-milp",
              min(seeds, 10), ("cocodc", "streaming-diloco", "diloco"))]
    for label, build, exact, n, heuristics in cases:
        stats = {m: [] for m in heuristics}
        missing = dict.fromkeys(heuristics, 0)
        proven = 0
        for s in range(n):
            p = build(s)
            best = ep.solve(p, exact, time_limit=5)
            if not best.has_plan:
                continue
            proven += best.status is ep.Status.OPTIMAL
            ref = best.fun if best.status is ep.Status.OPTIMAL else best.bound
            for m in heuristics:
                r = ep.solve(p, m)
                if not r.has_plan:
                    missing[m] += 1
                    continue
                stats[m].append(abs(r.fun - ref) / abs(ref) if ref else 0.0)
        print(f"{label}: {exact} optimal on {proven}/{n}")
        for m in heuristics:
            g = np.array(stats[m])
            text = f"{g.mean():.1%} / {g.max():.1%}" if g.size else "n/a"
            print(f"  {m:<18}{text:>20}   no plan {missing[m]}/{n}")


def fedattn_real(plot: str | None) -> None:
    import torch

    from edgeplan.experiments.sync_studies import fedattn_curve, fedattn_equal_quality, plot_fedattn_curve
    from edgeplan.validation.lm import MarkovCorpus, trained_lm

    torch.set_num_threads(2)
    corpus = MarkovCorpus()
    t0 = time.perf_counter()
    model = trained_lm(corpus)
    print(f"\n-- FedAttn for real (decoder ready in {time.perf_counter() - t0:.0f} s) --")
    ids = lambda seed: torch.from_numpy(corpus.sample(64, 64, np.random.default_rng(seed)))  # noqa: E731
    rows = fedattn_curve(model, ids(2), [1, 2, 4, 8], [1, 2, 3, 6, 7])
    print(f"{'N':>3}{'H':>3}{'from':>6}{'KiB/prompt':>12}{'KL':>9}{'loss':>8}{'agree':>8}")
    for r in rows:
        first = "H-1" if r["phase"] == "last" else "0"
        print(f"{r['N']:>3}{r['H']:>3}{first:>6}{r['bytes'] / 1024:>12.1f}{r['kl']:>9.4f}{r['loss']:>8.3f}"
              f"{r['agreement']:>8.1%}")
    if plot:
        plot_fedattn_curve(rows, plot)
        print(f"plot: {plot}")
    for n in (2, 4, 8):
        study = fedattn_equal_quality(model, ids(1), ids(3), n)
        f = study["fit"]
        print(f"N={n}: error model on held-out prompts: median rel. error {f['median_rel_error']:.1%}, "
              f"90th pct {f['p90_rel_error']:.1%}, R^2 {f['r2']:.3f}")
        for r in study["rows"]:
            print(f"  H={r['H']}: uniform {r['uniform_blocks']} {r['uniform_bytes'] / 1024:.0f} KiB KL "
                  f"{r['uniform_kl']:.4f} | exact {r['exact_blocks']} {r['exact_bytes'] / 1024:.0f} KiB KL "
                  f"{r['exact_kl']:.4f}")


def cocodc_real(slots: int) -> None:
    from edgeplan.experiments.sync_studies import regions_study
    from edgeplan.validation.sync.regions import RegionsConfig

    cfg = RegionsConfig(slots=slots)
    print(f"\n-- CoCoDC for real: {cfg.regions} regions, {slots} slots x {cfg.inner_steps} steps, "
          f"{cfg.wan_bps / 1e6:.2f} MB/s links --")
    study = regions_study(cfg)
    print(f"target loss {study['target']:.3f}")
    for s, r in study["runs"].items():
        print(f"{s:<18} steps {r['steps']}  wall {r['wall_s']:.1f} s  final {r['final_loss']:.3f}  "
              f"transfers {r['transfers']} within 10 %: {r['within_10pct']:.0%} (worst {r['worst_transfer_err']:.1%})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--plot", default=None)
    ap.add_argument("--slots", type=int, default=40)
    args = ap.parse_args(argv)
    scale()
    gaps(args.seeds)
    if args.real:
        fedattn_real(args.plot)
        cocodc_real(args.slots)


if __name__ == "__main__":
    main()
