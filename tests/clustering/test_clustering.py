"""The clustering family's own checks: the model by hand, bad input, refusals, the swap descent and the export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeplan import PlanError, ProblemDataError, Status, UnsupportedProblemError, solve
from edgeplan.formulations.clustering import ClientClustering, ClusterPlan, FrequencyPlan, UpdateFrequency
from edgeplan.formulations.clustering.instances import split_fl_instance
from edgeplan.solvers.clustering.grouping import chop, swap_descent


def _three(**kw) -> ClientClustering:
    base = dict(bottom_s=[1.0, 2.0, 4.0], top_s=[0.5, 0.5, 0.5], smashed_bytes=0.0, link_bps=[1.0, 1.0, 1.0],
                ingress_bps=[np.inf] * 3, labels=[[1, 1], [2, 0], [0, 2]], divergence="l1", weight=0.5)
    return ClientClustering(**{**base, **kw})


def test_the_utility_by_hand() -> None:
    p = _three()
    plan = ClusterPlan([0, 0, 0], [0])  # worker 0 tops bottoms 1 (t=2) and 2 (t=4)
    m = p.evaluate(plan)
    assert m.waiting_s[0] == pytest.approx((4 - 2 + 0) / 2)  # mean wait for the slowest
    assert m.divergence[0] == pytest.approx(0.0)  # (1,0) and (0,1) mix to the pooled (1/2, 1/2)
    w_bar = 4.0 - 1.0
    assert m.cost == pytest.approx(0.5 * 1.0 / w_bar)
    assert m.iteration_s[0] == pytest.approx(4.5)
    assert p.check(plan) == []
    # worker 2 as top: bottoms 0 and 1, mix (3/4, 1/4) against (1/2, 1/2): L1 = 1/2; D_bar = 1 (worker 1 or 2)
    m2 = p.evaluate(ClusterPlan([0, 0, 0], [2]))
    assert m2.divergence[0] == pytest.approx(0.5)
    assert m2.cost == pytest.approx(0.5 * 0.5 / w_bar + 0.5 * 0.5 / 1.0)


def test_eq8_and_eq10_are_checked() -> None:
    p = _three(ingress_bps=[1.5, 5.0, 5.0], top_s=[3.0, 0.1, 0.1])
    broken = {v.name for v in p.check(ClusterPlan([0, 0, 0], [0]))}
    assert broken == {"ingress[0]", "top_bottleneck[0]"}  # 2 links > 1.5; 2 x 3.0 > 4.0
    assert p.check(ClusterPlan([0, 0, 0], [1])) == []


@pytest.mark.parametrize(("change", "match"), [
    ({"labels": [[1, 1], [0, 0], [0, 2]]}, r"`labels`\[1\] has no samples"),
    ({"reference": [1.0, 0.0]}, r"`reference`\[1\] = 0 but workers hold label 1"),
    ({"link_bps": [1.0, 0.0, 1.0]}, r"`link_bps`\[1\] = 0.0; expected values > 0"),
    ({"max_bottoms": 0}, r"`max_bottoms` = 0.0; expected a value >= 1"),
    ({"divergence": "js"}, r"`divergence`"),
    ({"weight": 1.5}, r"`weight` = 1.5; expected a value <= 1"),
])
def test_bad_data_names_the_field(change, match) -> None:
    with pytest.raises(ProblemDataError, match=match):
        _three(**change)


def test_bad_plans_are_named() -> None:
    p = _three()
    with pytest.raises(PlanError, match=r"`top\[0\]` = 1 is in cluster 1"):
        ClusterPlan([0, 1, 0], [1, 2])
    with pytest.raises(PlanError, match=r"expected cluster indices in 0..0"):
        ClusterPlan([0, 1, 0], [0])
    with pytest.raises(PlanError, match="expected 3"):
        p.evaluate(ClusterPlan([0, 0], [0]))
    with pytest.raises(PlanError, match=r"`tau`"):
        FrequencyPlan([1.5])


def test_refusals_say_where_to_go() -> None:
    big = split_fl_instance(n_workers=17, seed=0)
    r = solve(big, "parallelsfl", seed=0)
    assert r.has_plan
    with pytest.raises(UnsupportedProblemError, match="takes up to 16 workers"):
        solve(big, "cluster-dp")
    with pytest.raises(UnsupportedProblemError, match="cannot take a ClientClustering with a KL divergence"):
        solve(split_fl_instance(n_workers=6, seed=0), "cluster-milp")


@pytest.mark.parametrize("seed", range(5))
def test_swaps_never_worsen_a_feasible_plan(seed: int) -> None:
    p = split_fl_instance(n_workers=30, seed=seed, max_bottoms=5)
    plan = chop(p, np.random.default_rng(seed).permutation(p.n_workers))
    assert p.check(plan) == []  # the descent starts from a feasible plan (these seeds give one)
    better = swap_descent(p, plan, passes=3)
    assert p.check(better) == []
    assert p.objective(better) <= p.objective(plan) + 1e-12
    assert np.array_equal(np.bincount(better.assignment), np.bincount(plan.assignment))


def test_the_sweep_beats_eq17_and_a_time_limit_keeps_a_plan() -> None:
    f = UpdateFrequency(iteration_s=[0.3, 1.0, 0.7], sync_s=[2.0, 0.5, 1.0], bottoms=[4, 6, 3], tau_max=6)
    best = solve(f, "frequency-sweep")
    assert best.status is Status.OPTIMAL
    for m in ("eq17", "same-frequency"):
        assert solve(f, m).fun <= best.fun + 1e-12


def test_the_export_lists_roles_and_frequencies(tmp_path) -> None:
    from edgeplan.io.export.clustering import export_cluster_plan

    p = split_fl_instance(n_workers=10, seed=1)
    r = solve(p, "cluster-dp")
    (path,) = export_cluster_plan(p, r.plan, tmp_path, tau_max=4)
    data = json.loads(path.read_text())
    roles = [w["role"] for w in data["workers"]]
    assert roles.count("top") == r.plan.n_clusters == len(data["clusters"])
    for c in data["clusters"]:
        assert 1 <= c["frequency"] <= 4
        assert all(data["workers"][i]["top"] == c["top"] for i in c["bottoms"])
    assert data["cost"] == pytest.approx(r.fun)
