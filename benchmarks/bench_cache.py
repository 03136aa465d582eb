"""CoCa cache allocation: solver quality on random instances and a validation on real zoo models.

Figures printed:

1. ``aca`` (and the baselines) against the exact optimum on random instances: relative latency gap to
   ``cache-dp`` on :class:`CachePlacement` instances and to ``cache-replay`` on :class:`CacheReplay` instances,
   plus exact solve times (the DP against the path MILP in HiGHS on smaller instances).
2. Per model (ResNet-18 at 64 px, DeiT-S "small" at 112 px; seeded random weights, fitted head) and stream
   noise: every method served on the same non-IID long-tailed requests (4 clients, batch size 1, CPU, one
   thread, thread CPU time per request). Latency reduction and accuracy change against ``no-cache``, next
   to the paper's -23.0 % to -45.2 %; measured against predicted latency per client with the error (absolute,
   and normalised by the uncached latency measured in the same slots, which cancels host load drift).

Run: ``python benchmarks/bench_cache.py [--quick] [--models resnet18 deit_s] [--noise 0.7 1.2]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import edgeplan as ep
from edgeplan.formulations.cache.instances import random_cache_problem, random_replay_problem
from edgeplan.formulations.cache.placement import TIGHT_HIGHS

PAPER = (-0.452, -0.230)
MODELS = {"resnet18": {"size": "full", "input_size": 64}, "deit_s": {"size": "small", "input_size": None}}
HEURISTICS = ("aca", "static-topk", "multi-exit", "all-layers", "no-cache")


def _gap(r, opt) -> float:
    if not r.has_plan and r.plan is None:
        return np.nan
    fun = r.fun if r.fun is not None else np.nan
    return fun / opt.fun - 1.0


def solver_quality(seeds: int, sizes: tuple[int, int, int], replay_sizes: tuple[int, int, int, int]) -> None:
    n, L, C = sizes
    print(f"\n-- heuristics vs exact: CachePlacement {n} clients x {L} layers x {C} classes, {seeds} seeds --")
    gaps: dict[str, list[float]] = {m: [] for m in HEURISTICS}
    ok: dict[str, int] = {m: 0 for m in HEURISTICS}
    t_dp = []
    for seed in range(seeds):
        p = random_cache_problem(n, L, C, seed=seed, accuracy_drop=0.03)
        t0 = time.perf_counter()
        opt = ep.solve(p, "cache-dp")
        t_dp.append(time.perf_counter() - t0)
        for m in HEURISTICS:
            r = ep.solve(p, m)
            gaps[m].append(_gap(r, opt))
            ok[m] += r.status.value == "feasible"
    print(f"cache-dp: optimal on all, mean solve {np.mean(t_dp) * 1e3:.1f} ms (max {np.max(t_dp) * 1e3:.1f} ms)")
    for m in HEURISTICS:
        g = np.array(gaps[m])
        print(f"{m:<12} passes check on {ok[m]:>2}/{seeds}; latency gap to optimum: mean {np.nanmean(g):+.2%}, "
              f"max {np.nanmax(g):+.2%} (negative = faster but breaks the accuracy floor)")
    n2, L2, C2, req = replay_sizes
    print(f"\n-- heuristics vs exact replay: CacheReplay {n2} clients x {L2} layers x {C2} classes, {req} requests "
          "per client --")
    gaps = {m: [] for m in HEURISTICS}
    t_rep = []
    for seed in range(seeds):
        q = random_replay_problem(n2, L2, C2, requests=req, seed=seed, noise=1.2, accuracy_drop=0.05, max_layers=4)
        t0 = time.perf_counter()
        opt = ep.solve(q, "cache-replay")
        t_rep.append(time.perf_counter() - t0)
        for m in HEURISTICS:
            gaps[m].append(_gap(ep.solve(q, m), opt))
    print(f"cache-replay (<= 4 active layers): mean solve {np.mean(t_rep):.2f} s")
    for m in HEURISTICS:
        g = np.array(gaps[m])
        print(f"{m:<12} latency gap to the replay optimum: mean {np.nanmean(g):+.2%}, max {np.nanmax(g):+.2%}")
    print("\n-- exact solve time: cache-dp vs the path MILP in HiGHS with TIGHT_HIGHS (2 clients x 8 layers x 8 "
          "classes) --")
    for seed in range(3):
        p = random_cache_problem(2, 8, 8, seed=seed)
        a, b = ep.solve(p, "cache-dp"), ep.solve(p, "highs", time_limit=120, options=TIGHT_HIGHS)
        print(f"seed {seed}: cache-dp {a.time * 1e3:7.1f} ms, highs {b.time:7.2f} s ({b.status.value}), "
              f"relative difference of the optima {abs(a.fun - b.fun) / a.fun:.1e}")


def model_error(setup, n_plans: int = 60, seed: int = 0) -> None:
    """The separable model (each calibration) against the replay, on random plans of a recorded stream."""
    from edgeplan.experiments.cache_periods import replay_problem

    q = replay_problem(setup, n_clients=4, requests=100, seed=seed)
    rng = np.random.default_rng(seed)
    L, C = q.n_layers, q.n_classes
    plans = [q.plan(int(rng.integers(2, C + 1)), sorted(rng.choice(L, int(rng.integers(1, min(L, 4) + 1)),
                                                                     replace=False).tolist()))
             for _ in range(n_plans)]
    truth = [q.evaluate(pl) for pl in plans]
    print(f"separable model vs replay on {n_plans} random plans x 4 clients (in-sample, CoCa rule):")
    for depth in ("dense", "single", "stable"):
        pl_problem = q.to_placement(depth=depth)
        e = np.array([np.c_[m.latency_s / t.latency_s - 1, m.hit_ratio - t.hit_ratio, m.accuracy - t.accuracy]
                      for m, t in zip((pl_problem.evaluate(pl) for pl in plans), truth, strict=True)]).reshape(-1, 3)
        print(f"  depth={depth:<7} latency error mean {e[:, 0].mean():+.1%} (|.| {np.abs(e[:, 0]).mean():.1%}), "
              f"hit ratio {e[:, 1].mean():+.3f} (|.| {np.abs(e[:, 1]).mean():.3f}), "
              f"accuracy {e[:, 2].mean():+.3f} (|.| {np.abs(e[:, 2]).mean():.3f})")


def validation(models: list[str], noises: list[float], period: int, n_periods: int, depth: str) -> None:
    from edgeplan.experiments.cache_periods import prepare_cache_model, validate_cache

    for name in models:
        for j, noise in enumerate(noises):
            t0 = time.perf_counter()
            setup = prepare_cache_model(name, n_classes=10, noise=noise, train_per_class=40, **MODELS[name])
            if j == 0:
                print(f"\n-- {name}, noise {noise}: calibration choices --")
                model_error(setup)
            v = validate_cache(setup, n_clients=4, period=period, n_periods=n_periods, depth=depth, seed=0)
            print(f"\n-- {name} ({MODELS[name]['size']}), noise {noise}, {len(setup.model.dims)} cache layers "
                  f"(dims {setup.model.dims.tolist()}), 4 clients x {n_periods} periods x {period} requests, "
                  f"{time.perf_counter() - t0:.0f} s --")
            print(v)
            summ = {s["method"]: s for s in v.summary()}
            best = min(("cache-dp", "cache-replay"), key=lambda m: summ[m]["latency_s"])
            s = summ[best]
            print(f"best exact plan ({best}): latency {-s['latency_reduction']:+.1%} vs no-cache "
                  f"(paper: {PAPER[0]:+.1%} to {PAPER[1]:+.1%}); agreement with the uncached model "
                  f"{s['agreement']:.3f}; accuracy vs the true class {s['accuracy_change']:+.3f} "
                  f"(uncached {summ['no-cache']['accuracy']:.3f})")
            a = summ["aca"]
            print(f"aca: latency {-a['latency_reduction']:+.1%}, accuracy {a['accuracy_change']:+.3f}")
            for m in (best, "aca"):
                print(f"measured vs predicted latency per client ({m}):")
                for c in v.per_client(m):
                    print(f"  client {c['client']}: measured {c['measured_s'] * 1e3:6.2f} ms, predicted "
                          f"{c['predicted_s'] * 1e3:6.2f} ms ({c['error']:+.1%}); T/T_uncached measured "
                          f"{c['normalized']:.3f}, predicted {c['predicted_normalized']:.3f} "
                          f"({c['normalized_error']:+.1%}); replay of the served exits {c['trace_error']:+.1%}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small instances, one model, short streams")
    ap.add_argument("--models", nargs="+", default=None, choices=sorted(MODELS))
    ap.add_argument("--noise", nargs="+", type=float, default=None, help="input noise levels of the stream")
    ap.add_argument("--period", type=int, default=None)
    ap.add_argument("--periods", type=int, default=None)
    ap.add_argument("--depth", default="dense", choices=("single", "stable", "dense"))
    ap.add_argument("--skip-solvers", action="store_true")
    ap.add_argument("--skip-validation", action="store_true")
    args = ap.parse_args(argv)
    quick = args.quick
    if not args.skip_solvers:
        solver_quality(5 if quick else 20, (3, 8, 10) if quick else (4, 16, 20),
                       (2, 8, 8, 100) if quick else (4, 12, 16, 200))
    if not args.skip_validation:
        validation(args.models or (["resnet18"] if quick else ["resnet18", "deit_s"]),
                   args.noise or ([0.7] if quick else [0.7, 1.2]), args.period or (20 if quick else 40),
                   args.periods or (2 if quick else 3), args.depth)


if __name__ == "__main__":
    main()
