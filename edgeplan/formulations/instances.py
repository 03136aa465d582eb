"""Generators of generic MILPs (the scenario family ``"knapsack"``) for sweeps, demos and benchmarks."""

from __future__ import annotations

import numpy as np

from edgeplan.formulations.milp import MILP
from edgeplan.registry import generator


@generator("knapsack", cells=lambda n_items, n_rows, **_: n_items * (n_rows + 2),
           tiny=({"n_items": 6, "n_rows": 2}, {"n_items": 5, "n_rows": 3, "tightness": 0.1},
                             {"n_items": 4, "n_rows": 1, "correlated": False}))
def knapsack(n_items: int = 30, n_rows: int = 5, *, tightness: float = 0.5, correlated: bool = True,
             seed: int = 0) -> MILP:
    r"""A random multi-dimensional 0/1 knapsack (the scenario family ``"knapsack"``).

    .. math:: \max \sum_j v_j x_j \ \text{s.t.}\ \sum_j w_{ij} x_j \le t \sum_j w_{ij},\ x \in \{0,1\}^n

    with :math:`w_{ij} \sim U\{1..999\}` and values correlated with the mean weight (hard for branch
    and bound) or uniform.
    """
    rng = np.random.default_rng(seed)
    w = rng.integers(1, 1000, (n_rows, n_items)).astype(float)
    v = np.round(w.mean(axis=0)) + rng.integers(1, 50, n_items) if correlated else rng.integers(1, 1000, n_items) * 1.0
    return MILP(c=v, A=w, row_upper=tightness * w.sum(axis=1), col_upper=1, integrality=np.ones(n_items),
                sense="max", name=f"knapsack-{n_items}x{n_rows}-s{seed}")


def hard_knapsack(n: int = 60, m: int = 10, seed: int = 0) -> MILP:
    """A multi-dimensional 0/1 knapsack with correlated values: hard for branch and bound."""
    p = knapsack(n, m, seed=seed)
    return MILP(p.c, p.A, p.row_lower, p.row_upper, p.col_lower, p.col_upper, p.integrality, sense="max",
                name=f"mdknap-{n}x{m}")


__all__ = ["hard_knapsack", "knapsack"]
