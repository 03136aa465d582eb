"""The continuous link allocation for fixed CollaPipe segments: against cvxpy and against the discrete optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest

import edgeplan as ep
from edgeplan import ProblemDataError
from edgeplan.formulations.partition.collapipe_instances import collapipe_slot
from edgeplan.solvers.partition.collapipe_links import continuous_links


def _cvxpy(s, seg, M) -> float:
    """The same convex problem in cvxpy (exponential cone, Clarabel), bandwidth in MHz."""
    import cvxpy as cp  # a dependency of the package
    K, b = s.n_devices, s.batch_size / M
    starts = np.cumsum(seg) - np.array(seg)
    comp = b * (1 + s.backward_ratio) * np.add.reduceat(s.block_flops, starts) / s.device_flops
    e, y = s.edge_stage_s(M)
    ok = s.link_power_ok()
    p = np.array([s.power_levels_w[np.flatnonzero(r)[-1]] for r in ok])
    a = p * s.gains / s.noise_w_per_hz / 1e6
    c = 2 * 8 * b * s.hidden_bytes * math.log(2) / 1e6
    beta = cp.Variable(K - 1)
    x = [c * cp.inv_pos(-cp.rel_entr(beta[k], beta[k] + a[k])) for k in range(K - 1)]
    obj = comp.sum() + e + y + sum(x) + (M - 1) * cp.maximum(max(comp.max(), e, y), *x)
    prob = cp.Problem(cp.Minimize(obj), [cp.sum(beta) <= s.bandwidth_hz / 1e6, beta >= 0])
    prob.solve(solver="CLARABEL")
    return s.local_iters * prob.value + s.upload_s


@pytest.mark.parametrize(("K", "L", "seed"), [(2, 4, 0), (3, 6, 1), (4, 12, 2), (6, 12, 11)])
def test_the_bisection_meets_cvxpy_and_bounds_the_discrete_optimum(K: int, L: int, seed: int) -> None:
    s = collapipe_slot(K, L, seed=seed)
    r = ep.solve(s, "collapipe-exact")
    seg, M = r.plan.segments, r.plan.micro_batches
    got = continuous_links(s, seg, M)
    ref = _cvxpy(s, seg, M)
    assert got.round_s <= ref * (1 + 1e-9) and got.round_s >= ref * (1 - 1e-5)  # cvxpy stops a little above
    assert got.round_s <= s.evaluate(r.plan).round_s * (1 + 1e-9)  # units and levels restrict the band
    assert got.bandwidth_hz.sum() <= s.bandwidth_hz * (1 + 1e-9) and np.all(got.bandwidth_hz > 0)
    assert np.all(got.power_w <= np.minimum(s.power_cap_w[:-1], s.power_cap_w[1:]) * (1 + 1e-9))


def test_one_device_and_bad_input() -> None:
    s = collapipe_slot(1, 3, seed=0)
    one = continuous_links(s, (3,), s.micro_batches[-1])  # no link: M micro-batches of the whole batch's work
    work = s.batch_size * (1 + s.backward_ratio) * s.block_flops.sum() / s.device_flops[0]
    assert one.link_s.size == 0 and one.round_s == pytest.approx(s.local_iters * work + s.upload_s)
    e = collapipe_slot(3, 6, energy=True, seed=0)
    with pytest.raises(ProblemDataError, match="energy_weights"):
        continuous_links(e, (2, 2, 2), 4)
    s = collapipe_slot(3, 6, seed=0)
    with pytest.raises(ProblemDataError, match=r"`segments` = \[2, 2\]"):
        continuous_links(s, (2, 2), 4)
    with pytest.raises(ProblemDataError, match="`micro_batches` = 3"):
        continuous_links(s, (2, 2, 2), 3)
