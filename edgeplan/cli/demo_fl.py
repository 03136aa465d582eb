"""The FL part of ``edgeplan demo``: plan a round exactly and with the heuristics, then run the plan for real."""

from __future__ import annotations

from typing import Any


def fl_demo(out: Any = print) -> int:
    """The FL part of ``edgeplan demo``: plan a DAGSA-setting round (40 mobile users, 4 BSs, K = 6) exactly and
    with ``dagsa``, rebase it on this host, and run the exact plan for real; returns 0 when it ran."""
    from edgeplan.formulations.fl.instances import fl_round_instance
    from edgeplan.solvers.api import solve
    from edgeplan.validation.fl.execute import calibrate_fl_training, host_fl_round, validate_fl_round

    cal = calibrate_fl_training()
    problem = host_fl_round(fl_round_instance(40, 4, 6, seed=0, samples=(100, 300), local_epochs=2), cal)
    out(f"FL round, 40 mobile users, 4 BSs, K = 6, FMNIST CNN ({cal.payload_bits / 8e3:.1f} kB serialized), "
        f"compute rebased on this host ({cal.seconds_per_sample * 1e6:.0f} us per sample-epoch)")
    best = None
    for method in ("fl-bisect", "dagsa", "random"):
        res = solve(problem, method)
        fun = f"round {res.fun:.4f} s" if res.has_plan else "no plan"
        out(f"  {method:<10} {res.status.value:<9} {fun}")
        best = res if best is None and res.has_plan else best
    if best is None:
        return 1
    out(str(validate_fl_round(problem, best.plan, calibration=cal, test_samples=200, repeats=3)))
    return 0


__all__ = ["fl_demo"]
