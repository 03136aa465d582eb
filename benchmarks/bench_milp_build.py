"""Build time of sparse MILPs: ``MILP`` + one ``highspy.passModel`` call against the same model in Pyomo.

Targets (issue 2): at least 20x faster than Pyomo at 1e5 nonzeros, and linear in the nonzeros
(time per nonzero at 1e6 within 2x of that at 1e4). Build only; no solve.

Run: ``python benchmarks/bench_milp_build.py [--pyomo-max 1e6]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from edgeplan import MILP
from edgeplan.solvers.backends.highs import build_highs
from edgeplan.solvers.backends.pyomo import to_pyomo

PER_ROW = 10  # nonzeros per row


def random_model(nnz: int, seed: int = 0) -> dict:
    """Arrays of a random sparse MILP with ``nnz`` nonzeros (10 per row, half the columns integer)."""
    rng = np.random.default_rng(seed)
    m = nnz // PER_ROW
    n = max(m, PER_ROW)
    rows = np.repeat(np.arange(m), PER_ROW)
    cols = rng.integers(0, n, nnz)
    vals = rng.uniform(-10, 10, nnz)
    return {"c": rng.uniform(-1, 1, n), "A": sp.coo_array((vals, (rows, cols)), shape=(m, n)),
            "row_lower": -np.inf, "row_upper": rng.uniform(1, 100, m), "col_upper": 10.0,
            "integrality": (np.arange(n) % 2).astype(float)}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pyomo-max", type=float, default=1e6, help="largest size also built in Pyomo")
    args = ap.parse_args(argv)
    from pyomo.contrib.appsi.solvers import Highs as AppsiHighs

    print(f"{'nnz':>9} {'MILP()':>9} {'passModel':>10} {'edgeplan':>9} {'ns/nnz':>7} {'pyomo':>9} {'ratio':>7}")
    out = {}
    for nnz in (10**4, 10**5, 10**6):
        data = random_model(nnz)
        repeats = 5 if nnz <= 10**5 else 2
        t_milp = best_of(lambda data=data: MILP(**data), repeats)
        milp = MILP(**data)
        t_pass = best_of(lambda milp=milp: build_highs(milp), repeats)
        total = t_milp + t_pass
        t_pyomo = None
        if nnz <= args.pyomo_max:
            def pyomo_build(milp=milp) -> None:
                model = to_pyomo(milp)
                AppsiHighs().set_instance(model)  # hand the model to HiGHS, as passModel does

            t_pyomo = best_of(pyomo_build, 1)
        ratio = f"{t_pyomo / total:7.1f}" if t_pyomo else "      -"
        pyomo_s = f"{t_pyomo:9.3f}" if t_pyomo else "        -"
        print(f"{nnz:>9} {t_milp:9.4f} {t_pass:10.4f} {total:9.4f} {1e9 * total / nnz:7.0f} {pyomo_s} {ratio}")
        out[nnz] = {"edgeplan_s": total, "pyomo_s": t_pyomo}
    lin = (out[10**6]["edgeplan_s"] / 10**6) / (out[10**4]["edgeplan_s"] / 10**4)
    print(f"time per nonzero, 1e6 vs 1e4: {lin:.2f}x (target <= 2: linear)")
    if out[10**5]["pyomo_s"]:
        print(f"speed-up over Pyomo at 1e5 nonzeros: {out[10**5]['pyomo_s'] / out[10**5]['edgeplan_s']:.0f}x "
              "(target >= 20x)")
    return out


if __name__ == "__main__":
    main()
