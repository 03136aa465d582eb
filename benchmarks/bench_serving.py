"""Speculative serving (CoSine): exact step against the heuristics, step-solve times, the serving simulator, and
acceptance measured on models trained here.

    python benchmarks/bench_serving.py            # gaps on 100 steps, step-milp times, simulator at three loads
    python benchmarks/bench_serving.py --real     # acceptance profiles of trained drafters (about 1 minute)
    python benchmarks/bench_serving.py --limited  # step-milp on 512 x 16 with a 0.5 s limit, seeds 1-6
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import edgeplan
from edgeplan.experiments.serving_sim import Stream, simulate
from edgeplan.formulations.serving.instances import speculative_step_instance

HEURISTICS = ("cosine", "fcfs-fixed", "single-drafter", "random-routing", "autoregressive")


def gaps(n: int = 100) -> None:
    """Each heuristic's step cost above the exact optimum, relative to |optimum|, on ``n`` seeded steps."""
    rows: dict[str, list[float]] = {m: [] for m in HEURISTICS}
    t_exact = []
    for seed in range(n):
        p = speculative_step_instance(32, 4, 4, seed=seed, max_speculation=6, max_verify_tokens=128)
        t0 = time.perf_counter()
        ex = edgeplan.solve(p, "step-milp", time_limit=60)
        t_exact.append(time.perf_counter() - t0)
        assert ex.status == "optimal", ex
        for m in HEURISTICS:
            r = edgeplan.solve(p, m, seed=seed)
            rows[m].append((r.fun - ex.fun) / abs(ex.fun) if r.has_plan else np.inf)
    print(f"gaps on {n} steps of 32 requests x 4 drafters (step-milp median {np.median(t_exact):.2f} s):")
    for m, g in rows.items():
        g = np.array(g)
        print(f"  {m:15s} mean {100 * g.mean():7.2f} %   worst {100 * g.max():7.2f} %   "
              f"optimal on {(g <= 1e-6).sum()}")


def sizes(which: tuple = ((64, 8, 60), (128, 16, 60), (512, 16, 30))) -> None:
    for R, J, limit in which:
        p = speculative_step_instance(R, J, 8, seed=1)
        t0 = time.perf_counter()
        r = edgeplan.solve(p, "step-milp", time_limit=limit)
        c = edgeplan.solve(p, "cosine")
        gap = "no bound" if r.gap is None else f"gap {r.gap:.2e}"
        print(f"step-milp {R} requests x {J} drafters: {r.status} in {time.perf_counter() - t0:.2f} s "
              f"(limit {limit} s), {gap}; cosine {c.solve_time * 1e3:.1f} ms, "
              f"{100 * (c.fun - r.fun) / abs(r.fun):+.2f} % above")


def limited(seeds: range = range(1, 7), limit: float = 0.5) -> None:
    """``step-milp`` on the 512 x 16 step with a short limit: its plan, the Lagrangian bound and ``cosine``."""
    print("| seed | wall (s) | step-milp plan | bound | gap | cosine | cosine above the bound |")
    print("|---|---|---|---|---|---|---|")
    for seed in seeds:
        p = speculative_step_instance(512, 16, 8, seed=seed)
        c = edgeplan.solve(p, "cosine")
        t0 = time.perf_counter()
        r = edgeplan.solve(p, "step-milp", time_limit=limit)
        wall = time.perf_counter() - t0
        print(f"| {seed} | {wall:.2f} | {r.fun:.4f} | {r.bound:.4f} | {100 * r.gap:.1f} % | {c.fun:.4f} | "
              f"{100 * (c.fun - r.bound) / abs(c.fun):.1f} % |")


def loads(n: int = 400) -> None:
    tpl = speculative_step_instance(1, 8, 4, seed=0, urgent_fraction=0.0)
    for rate in (2.0, 5.0, 8.0):
        s = Stream.poisson(n, rate, 4, seed=1)
        base = None
        for pol in ("cosine", "fcfs-fixed", "single-drafter", "random-routing", "autoregressive"):
            t0 = time.perf_counter()
            r = simulate(tpl, s, pol)
            base = base or r
            print(f"  {rate:4.1f} req/s {pol:15s} p50 {r.percentile(50):6.2f} s  p99 {r.percentile(99):6.2f} s  "
                  f"{r.throughput:6.1f} tok/s  verifier idle {r.verifier_idle:.2f}  "
                  f"(cosine p50 {100 * (base.percentile(50) / r.percentile(50) - 1):+.1f} %, "
                  f"tok/s {100 * (base.throughput / r.throughput - 1):+.1f} %)  {time.perf_counter() - t0:.1f} s")


def speed(n: int = 10_000, rate: float = 5.0) -> None:
    """The simulator's own speed: ``n`` requests served by ``cosine`` (and by ``fcfs-fixed``)."""
    tpl = speculative_step_instance(1, 8, 4, seed=0, urgent_fraction=0.0)
    s = Stream.poisson(n, rate, 4, seed=1)
    for pol in ("cosine", "fcfs-fixed"):
        t0 = time.perf_counter()
        r = simulate(tpl, s, pol)
        print(f"{n} requests at {rate} req/s with {pol}: {r.steps} steps simulated in "
              f"{time.perf_counter() - t0:.1f} s")


def exact(n: int = 150, rate: float = 3.0, limit: float = 1.0) -> None:
    """The exact per-step scheduler against ``cosine`` in the simulator (``step-milp`` with ``limit`` s per step;
    its solve time is not on the simulated clock)."""
    tpl = speculative_step_instance(1, 8, 4, seed=0, urgent_fraction=0.0)
    s = Stream.poisson(n, rate, 4, seed=1)
    for pol in ("cosine", "step-milp"):
        t0 = time.perf_counter()
        r = simulate(tpl, s, pol, time_limit=limit if pol == "step-milp" else None)
        print(f"  {rate:.1f} req/s, {n} requests, {pol:10s} p50 {r.percentile(50):6.2f} s  "
              f"p99 {r.percentile(99):6.2f} s  {r.throughput:6.1f} tok/s  "
              f"({time.perf_counter() - t0:.0f} s to simulate)")


def routing(n: int = 400, seeds: tuple = (1, 2, 3)) -> None:
    """``cosine`` routed by the acceptance profile against scores learned while serving (CoSineRouter): pooled per
    domain with exploration, pooled without, and per request alone; a blind prior (each drafter's mean)."""
    from edgeplan.experiments.serving_router import CoSineRouter

    tpl = speculative_step_instance(1, 8, 4, seed=0, urgent_fraction=0.0)
    best = tpl.acceptance.argmax(axis=0)
    routers = {"profile": None, "learned": {}, "no exploration": {"threshold": 0.0},
               "per request": {"pooled": False}}
    for rate in (2.0, 5.0, 8.0):
        for seed in seeds:
            s = Stream.poisson(n, rate, 4, seed=seed)
            base = None
            cells = []
            for name, kw in routers.items():
                router = None if kw is None else CoSineRouter.blind(tpl.acceptance, **kw)
                r = simulate(tpl, s, "cosine", router=router, seed=seed)
                base = base or r
                share = "" if router is None else \
                    f", specialist {np.mean([best[s.domain[q]] in rt for q, rt, *_ in router.log]):.2f}"
                cells.append(f"{name}: p50 {100 * (r.percentile(50) / base.percentile(50) - 1):+.1f} %, "
                             f"tok/s {100 * (r.throughput / base.throughput - 1):+.1f} %{share}")
            print(f"{rate} req/s seed {seed} (profile p50 {base.percentile(50):.2f} s): " + "; ".join(cells[1:]))


def trees(n: int = 400) -> None:
    """``cosine`` with its controller raising the drafters per request up to 1, 2 or 3 (token trees)."""
    tpl = speculative_step_instance(1, 8, 4, seed=0, urgent_fraction=0.0)
    for rate in (2.0, 5.0, 8.0):
        s = Stream.poisson(n, rate, 4, seed=1)
        cells = []
        for ceiling in (1, 2, 3):
            r = simulate(dataclasses.replace(tpl, max_drafters=ceiling), s, "cosine")
            cells.append(f"up to {ceiling}: p50 {r.percentile(50):.2f} s, {r.throughput:.0f} tok/s")
        print(f"{rate} req/s: " + "; ".join(cells))


def tree_pass(repeats: int = 20) -> None:
    """One verification of a batch of token trees (3 chains of 6 drafts each, per request): tree attention against
    one sequence per chain, on a decoder of the serving target's shape."""
    import torch

    from edgeplan.validation.lm import LMConfig, decoder
    from edgeplan.validation.serving.live import _last_distributions
    from edgeplan.validation.serving.tree import tree_distributions

    torch.set_num_threads(1)
    model = decoder(64, LMConfig(n_layer=4, n_embd=64, n_positions=512)).eval()
    rng = np.random.default_rng(0)
    for batch, context in ((1, 64), (4, 128), (8, 256), (8, 480)):
        trees = [(rng.integers(0, 64, context), [rng.integers(0, 64, 6).tolist() for _ in range(3)])
                 for _ in range(batch)]
        seqs = [np.concatenate([c, ch]) for c, chains in trees for ch in chains]
        times = {"tree": [], "chains": []}
        for _ in range(repeats):
            t0 = time.perf_counter()
            tree_distributions(model, trees)
            times["tree"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _last_distributions(model, seqs, [7] * len(seqs))
            times["chains"].append(time.perf_counter() - t0)
        a, b = (float(np.median(times[k])) for k in ("tree", "chains"))
        print(f"{batch} requests x {context} context tokens, 3 chains of 6: tree attention {1e3 * a:.1f} ms, "
              f"one sequence per chain {1e3 * b:.1f} ms ({b / a:.2f}x)")


def real() -> None:
    from edgeplan.validation.lm import LMConfig, MarkovCorpus, trained_lm
    from edgeplan.validation.serving.speculative import measure_acceptance

    c = MarkovCorpus(vocab=32, domains=4, seed=3)
    t0 = time.perf_counter()
    target = trained_lm(c, LMConfig(n_layer=4, n_embd=64, steps=600, seed=1))
    drafters = [trained_lm(c, LMConfig(n_layer=1, n_embd=32, n_head=2, steps=400, seed=2), domains=[d])
                for d in range(4)]
    general = trained_lm(c, LMConfig(n_layer=1, n_embd=32, n_head=2, steps=400, seed=2))
    print(f"models ready in {time.perf_counter() - t0:.1f} s")
    for temperature in (0.0, 1.0):
        alpha = measure_acceptance(target, [*drafters, general], c, temperature=temperature)
        print(f"acceptance at temperature {temperature} (rows: drafters 0-3 specialised, 4 general; cols: domains)")
        print(np.array2string(alpha, precision=2))
    # a token tree of two drafters against the step model's fused acceptance 1 - (1 - a1)(1 - a2), each drafter
    # alone measured on the same prompts with the same draws (paired: unpaired samples differ by several points)
    from edgeplan.formulations.serving.step import first_landing, tree_tokens
    from edgeplan.validation.serving.tree import tree_generate

    for d in range(4):
        pair = [d, (d + 1) % 4]
        rate = {}
        for name, ds in (("tree", pair), ("specialist", pair[:1]), ("other", pair[1:])):
            rng = np.random.default_rng(5)
            ok = seen = 0
            for pr in c.sample(24, 12, np.random.default_rng(100 + d), [d]):
                _, st = tree_generate(target, [drafters[j] for j in ds], pr, 24, 4, temperature=1.0, rng=rng)
                ok, seen = ok + st.accepted, seen + st.examined
            rate[name] = ok / seen
        model = 1 - (1 - rate["specialist"]) * (1 - rate["other"])
        # the step model's tree: accepted over examined positions, E[A] / E[A + 1{A < k}] with k = 4
        a = np.sort([rate["specialist"], rate["other"]])[::-1]
        pi = first_landing(a)
        mean = float(tree_tokens(a, 4)) - 1.0
        tree_model = mean / (mean + 1.0 - float((pi * a**3).sum()))
        print(f"domain {d}, tree of drafters {pair}: measured {rate['tree']:.3f}, tree model {tree_model:.3f}, "
              f"fused model {model:.3f}, specialist alone {rate['specialist']:.3f}, other alone {rate['other']:.3f}")


def live(n: int = 60, sims: int = 5, pace: float | None = None) -> None:
    """The simulator's predictions against a live run (drafter and verifier processes over loopback) at three
    loads, with timings and acceptance measured on this host first; with ``pace``, on devices emulated ``pace``
    times slower than the calibrated timings (the simulator then uses the paced timings)."""
    from edgeplan.experiments.serving_sim import _plan, _step, refit, serve_live
    from edgeplan.validation.serving.live import LiveCluster, calibrate, measured_template
    from edgeplan.validation.serving.speculative import measure_acceptance

    with LiveCluster() as cluster:
        timing = calibrate(cluster)
        models = cluster.models
        alpha = measure_acceptance(models.load_target(), [models.load_drafter(d) for d in range(2)], models.corpus,
                                   prompt_len=16, new_tokens=32, k=6, temperature=1.0)
        probe = measured_template(timing, alpha)
        burst = Stream.poisson(n, 1e6, 2, prompt=16, output=32, seed=9)
        ts = []
        rng = np.random.default_rng(0)
        for size in (4, 8, 16):  # the hub's own time per step: planning
            ids = np.arange(size)
            st = _step(probe, burst, ids, np.zeros(n, dtype=np.int64), 0.0, 10.0, 1.0, None)
            for _ in range(5):
                t0 = time.perf_counter()
                _plan(st, "cosine", None, rng)
                ts.append(time.perf_counter() - t0)
        if pace is not None:
            cluster.pace = timing = timing.slowed(pace)
        tpl = measured_template(timing, alpha, overhead_s=float(np.median(ts)))
        print(f"timing: drafter a {tpl.draft_base_s * 1e3} ms, b {tpl.draft_per_request_s * 1e3} ms, hop "
              f"{tpl.hop_s * 1e3:.2f} ms; verify {tpl.verify_s * 1e3} ms (v0 includes {np.median(ts) * 1e3:.1f} ms "
              f"of planning)")
        print("acceptance (drafters x domains):", np.array2string(alpha, precision=2))
        top = simulate(tpl, burst, "cosine")
        rate_max = n / top.makespan_s
        # calibration runs at loads 0.3 and 0.9, with their own streams: the timing functions refitted to their
        # steps (small and large batches, short and long planning)
        runs = [serve_live(cluster, tpl, Stream.poisson(n, x * rate_max, 2, prompt=16, output=32, seed=seed), "cosine")
                for x, seed in ((0.3, 97), (0.9, 99))]
        fitted = refit(tpl, dataclasses.replace(runs[0], trace={k: np.concatenate([r.trace[k] for r in runs])
                                                                for k in runs[0].trace}))
        print(f"refit on two calibration runs: verify {fitted.verify_s * 1e3} ms, drafter a "
              f"{fitted.draft_base_s * 1e3} ms")
        for load in (0.3, 0.6, 0.9):
            s = Stream.poisson(n, load * rate_max, 2, prompt=16, output=32, seed=int(load * 10))
            real = serve_live(cluster, tpl, s, "cosine")
            # "in-run": the timing functions refitted to this run's own steps (the host's speed drifts by tens of
            # per cent within minutes; this isolates the simulator's queueing and acceptance model)
            for label, t in (("calibrated", tpl), ("refit", fitted), ("in-run", refit(tpl, real))):
                sim = [simulate(t, s, "cosine", seed=k) for k in range(sims)]
                p50 = float(np.mean([r.percentile(50) for r in sim]))
                mean = float(np.mean([np.nanmean(r.latency_s) for r in sim]))
                thr = float(np.mean([r.throughput for r in sim]))
                lm = float(np.nanmean(real.latency_s))
                print(f"load {load:.1f} ({load * rate_max:.1f} req/s) {label}: latency p50 live "
                      f"{real.percentile(50):.3f} s / sim {p50:.3f} s ({100 * (p50 / real.percentile(50) - 1):+.1f} %),"
                      f" mean live {lm:.3f} / sim {mean:.3f} ({100 * (mean / lm - 1):+.1f} %), throughput live "
                      f"{real.throughput:.1f} / sim {thr:.1f} tok/s ({100 * (thr / real.throughput - 1):+.1f} %)")
            err = real.predicted_step_s / real.step_s - 1
            late = real.trace["overrun_s"]
            print(f"    live steps: {real.steps}, step time predicted/measured - 1: "
                  f"median {100 * np.median(err):+.1f} %; steps whose real work outran the pace: "
                  f"{np.mean(late > 0) * 100:.0f} % (worst {late.max() * 1e3:.1f} ms);"
                  f" tokens per step measured {real.tokens_per_step.mean():.2f} vs expected "
                  f"{real.expected_per_step.mean():.2f}")
        s = Stream.poisson(n, 0.6 * rate_max, 2, prompt=16, output=32, seed=6)
        print(f"every policy live at load 0.6 ({0.6 * rate_max:.1f} req/s; step-milp with 0.5 s per step, its "
              "solve time counted):")
        for pol in ("cosine", "step-milp", "fcfs-fixed", "single-drafter", "random-routing", "autoregressive"):
            real = serve_live(cluster, tpl, s, pol, time_limit=0.5 if pol == "step-milp" else None)
            print(f"  {pol:15s} p50 {real.percentile(50):.3f} s  p99 {real.percentile(99):.3f} s  "
                  f"{real.throughput:7.1f} tok/s  planning {1e3 * real.trace['plan_s'].mean():.1f} ms/step")


def topn(out: str = "docs/serving-topnsigma.png", prompts: int = 6, new: int = 24) -> None:
    """top-nσ against top-p and min-p at temperatures 0.5-3 on the trained target and its domain drafters:
    acceptance of speculative sampling, diversity (distinct bigrams over all samples) and quality (the true
    Markov source's log-likelihood of the generated tokens, nats per token)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from transformers import MinPLogitsWarper, TopPLogitsWarper

    from edgeplan.validation.serving.execute import serving_models
    from edgeplan.validation.serving.speculative import speculative_generate
    from edgeplan.validation.serving.top_nsigma import TopNSigma

    models = serving_models()
    target = models.load_target()
    drafters = [models.load_drafter(d) for d in range(2)]
    P = models.corpus.transitions()
    samplers = {"top-nσ (n=1)": TopNSigma(1.0), "top-p (0.9)": TopPLogitsWarper(0.9),
                "min-p (0.1)": MinPLogitsWarper(0.1)}
    temps = (0.5, 1.0, 1.5, 2.0, 3.0)
    res: dict[str, list[tuple[float, float, float]]] = {k: [] for k in samplers}
    for name, proc in samplers.items():
        for T in temps:
            rng = np.random.default_rng(0)
            acc = seen = 0
            grams: set = set()
            total = 0
            ll = []
            for d in range(2):
                for pr in models.corpus.sample(prompts, 12, rng, [d]):
                    toks, st = speculative_generate(target, drafters[d], pr, new, 4, temperature=T, processor=proc,
                                                    rng=rng)
                    acc, seen = acc + st.accepted, seen + st.examined
                    seq = np.concatenate([pr[1:], toks])
                    grams |= {(int(a), int(b)) for a, b in zip(seq[len(pr) - 2:-1], seq[len(pr) - 1:], strict=True)}
                    total += len(toks)
                    prev = seq[len(pr) - 2:-1]
                    ok = toks < models.corpus.vocab  # a marker token is impossible in the source
                    V = models.corpus.vocab - 1
                    p = np.where(ok, P[d, np.minimum(prev, V), np.minimum(toks, V)], 0.0)
                    ll += np.log(np.maximum(p, 1e-12)).tolist()
            res[name].append((acc / max(seen, 1), len(grams) / total, float(np.mean(ll))))
            print(f"{name:14s} T={T:3.1f}: acceptance {res[name][-1][0]:.3f}  distinct-2 {res[name][-1][1]:.3f}  "
                  f"source log-lik {res[name][-1][2]:+.3f} nats/token")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, rows in res.items():
        a = np.array(rows)
        for ax, col in zip(axes, range(3), strict=True):
            ax.plot(temps, a[:, col], marker="o", label=name)
    for ax, title in zip(axes, ("acceptance of speculative sampling", "distinct bigrams per token",
                                "source log-likelihood (nats/token)"), strict=True):
        ax.set_xlabel("temperature")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--loads", action="store_true", help="only the 512 x 16 step and the simulator")
    ap.add_argument("--live", action="store_true", help="the simulator against a live run at three loads")
    ap.add_argument("--pace", type=float, default=None,
                    help="with --live: devices emulated this many times slower than the calibrated timings")
    ap.add_argument("--topn", action="store_true", help="top-nσ against top-p and min-p across temperatures (a plot)")
    ap.add_argument("--exact", action="store_true", help="step-milp against cosine in the simulator")
    ap.add_argument("--routing", action="store_true", help="cosine's learned routing with exploration")
    ap.add_argument("--trees", action="store_true", help="cosine's controller with up to 1, 2, 3 drafters each")
    ap.add_argument("--tree-pass", action="store_true", help="tree attention against one sequence per chain")
    ap.add_argument("--speed", action="store_true", help="the simulator on 10,000 requests")
    ap.add_argument("--limited", action="store_true", help="step-milp on the 512 x 16 step with a 0.5 s limit")
    args = ap.parse_args()
    if args.real:
        real()
    elif args.live:
        live(pace=args.pace)
    elif args.topn:
        topn()
    elif args.exact:
        exact()
    elif args.routing:
        routing()
    elif args.trees:
        trees()
    elif args.tree_pass:
        tree_pass()
    elif args.speed:
        speed()
    elif args.limited:
        limited()
    elif args.loads:
        sizes(((512, 16, 30),))
        loads()
    else:
        gaps()
        sizes()
        loads()
