"""The demo's speculative-serving part: drafters and a target trained here (cached), their measured acceptance,
and a short stream served live (drafter and verifier processes over loopback) next to the simulator."""

from __future__ import annotations


def serving_demo(requests: int = 40, load: float = 0.6) -> int:
    """Serve ``requests`` requests at ``load`` of the simulated saturation rate with ``cosine``, ``fcfs-fixed`` and
    ``autoregressive`` live, and print latency and tokens per second against the simulator's prediction
    (timings refitted to the run). 0 when ``cosine`` beats ``autoregressive`` on median latency live."""
    import numpy as np

    from edgeplan.experiments.serving_sim import Stream, refit, serve_live, simulate
    from edgeplan.validation.serving.live import LiveCluster, calibrate, measured_template
    from edgeplan.validation.serving.speculative import measure_acceptance

    with LiveCluster() as cluster:
        models = cluster.models
        alpha = measure_acceptance(models.load_target(), [models.load_drafter(d) for d in range(2)], models.corpus,
                                   prompt_len=16, new_tokens=32, k=6)
        print("acceptance measured on the trained models (rows: drafters for domains 0, 1; columns: domains)")
        print("  " + np.array2string(alpha, precision=2).replace("\n", "\n  "))
        tpl = measured_template(calibrate(cluster), alpha)
        rate = load * requests / simulate(tpl, Stream.poisson(requests, 1e6, 2, prompt=16, output=32)).makespan_s
        stream = Stream.poisson(requests, rate, 2, prompt=16, output=32, seed=1)
        print(f"{requests} requests at {rate:.1f} req/s (prompt 16, output 32 tokens), served live:")
        print(f"  {'policy':<15} {'p50 s':>7} {'p99 s':>7} {'tok/s':>7}   simulated p50 / tok/s (in-run timings)")
        p50 = {}
        for policy in ("cosine", "fcfs-fixed", "autoregressive"):
            real = serve_live(cluster, tpl, stream, policy)
            sim = simulate(refit(tpl, real), stream, policy)
            p50[policy] = real.percentile(50)
            print(f"  {policy:<15} {real.percentile(50):>7.3f} {real.percentile(99):>7.3f} {real.throughput:>7.1f}"
                  f"   {sim.percentile(50):.3f} / {sim.throughput:.1f}")
    return 0 if p50["cosine"] < p50["autoregressive"] else 1


__all__ = ["serving_demo"]
