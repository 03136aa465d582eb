"""The demo's heterogeneous-FL part: a ParallelSFL clustering executed in real time (split model, paced links,
emulated speeds), and a few Caesar rounds trained with the real codecs (bytes on the wire against the plan)."""

from __future__ import annotations


def clustering_demo() -> int:
    """0 when every cluster's iteration is within 25 % of the model and every Caesar round put exactly the planned
    bytes on the wire with the planned deviations."""
    import numpy as np

    from edgeplan.experiments.caesar_run import run_caesar
    from edgeplan.formulations.clustering.instances import split_fl_instance
    from edgeplan.solvers.api import solve
    from edgeplan.validation.clustering.execute import validate_split_fl

    p = split_fl_instance(n_workers=10, seed=0, max_bottoms=4)
    r = solve(p, "cluster-dp")
    print(f"cluster-dp: {r.plan.n_clusters} clusters of 10 workers (utility {r.fun:.3f}); each cluster's iteration "
          "run in real time:")
    rep = validate_split_fl(p, r.plan, repeats=2)
    print("  " + str(rep).replace("\n", "\n  "))
    ok = bool(np.all(np.abs(rep.predicted_iteration_s / rep.measured_iteration_s - 1) <= 0.25))
    print("Caesar, 8 rounds of 10 devices (half taking part) on the FashionMNIST CNN, real codecs:")
    for method in ("no-compression", "caesar"):
        run = run_caesar(method, n_devices=10, rounds=8)
        exact = all(x.bytes == x.predicted_bytes for x in run.rounds)
        same = all(np.allclose(x.download_deviation, x.predicted_download, rtol=1e-5, atol=1e-9)
                   and np.allclose(x.upload_deviation, x.predicted_upload, rtol=1e-5, atol=1e-9) for x in run.rounds)
        ok &= exact and same
        print(f"  {method:<15} traffic {run.traffic[-1] / 1e6:6.2f} MB, accuracy {run.accuracy[-1]:.3f}; in every "
              f"round the bytes on the wire as planned: {exact}, the deviations as planned: {same}")
    return 0 if ok else 1


__all__ = ["clustering_demo"]
