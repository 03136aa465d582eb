"""CachePlacement / CacheReplay: data checks, the separable model against a simulation, plans, helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgeplan as ep
from edgeplan import PlanError, ProblemDataError
from edgeplan.formulations.cache.instances import (
    class_importance,
    importance_to_prob,
    random_cache_problem,
    random_replay_problem,
)
from edgeplan.formulations.cache.placement import CachePlacement, CachePlan
from edgeplan.formulations.cache.replay import CacheReplay, prefix_hits


def _small(**kw) -> dict:
    """Hand-sized data: 1 client, 2 layers, 2 classes."""
    base = dict(block_time_s=[[1.0, 2.0, 0.5]], lookup_fixed_s=[[0.1, 0.1]], lookup_entry_s=[[0.01, 0.02]],
                dims=[4, 8], request_prob=[[0.75, 0.25]], hit_prob=[[0.5, 0.0], [0.3, 0.2]],
                hit_precision=[[0.9, 0.0], [1.0, 0.5]])
    base.update(kw)
    return base


def test_hand_example_latency_and_accuracy() -> None:
    # k = 2 (both classes), layers {0, 1}; survival S_c(-1)=1, S(0)=(0.5, 1), S(1)=(0.2, 0.8)
    p = CachePlacement(**_small())
    m = p.evaluate(p.plan(2, [0, 1]))
    # latency: sum_c p_c [S(-1)(1 + 0.1 + 0.02) + S(0)(2 + 0.1 + 0.04) + S(1) * 0.5]
    lat = 0.75 * (1.12 + 0.5 * 2.14 + 0.2 * 0.5) + 0.25 * (1.12 + 1.0 * 2.14 + 0.8 * 0.5)
    acc = 0.75 * (0.9 * 0.5 + 1.0 * 0.3 + 0.2) + 0.25 * (0.0 + 0.5 * 0.2 + 0.8)
    assert m.latency_s[0] == pytest.approx(lat) and m.accuracy[0] == pytest.approx(acc)
    assert m.hit_ratio[0] == pytest.approx(0.75 * 0.8 + 0.25 * 0.2)
    assert m.entries[0] == 4 and m.memory_bytes[0] == 4 * 2 * 12 and m.full_latency_s[0] == 3.5
    # k = 0 never hits, whatever the data: active layers only cost their fixed lookup
    m0 = p.evaluate(p.plan(0, [1]))
    assert m0.latency_s[0] == pytest.approx(3.6) and m0.accuracy[0] == 1.0 and m0.hit_ratio[0] == 0.0


def test_evaluate_matches_a_simulation_of_recognition_depths() -> None:
    p = random_cache_problem(2, 6, 5, seed=4)
    plan = p.plan([3, 5], [[1, 4], [0, 2, 5]])
    m = p.evaluate(plan)
    rng = np.random.default_rng(0)
    n = 200_000
    P = p.prefix_time_s()
    for i, k in enumerate(plan.class_counts):
        layers = np.array(plan.layers[i])
        c = rng.choice(p.n_classes, size=n, p=p.request_prob[i])
        r = p.hit_prob[i, k][:, c]  # (L, n)
        cdf = np.cumsum(np.vstack([r, 1 - r.sum(axis=0)]), axis=0)
        depth = (rng.random(n)[None, :] > cdf).sum(axis=0)  # L = never
        pos = np.searchsorted(layers, depth)  # first active layer >= depth
        exits = pos < layers.size
        exit_layer = np.where(exits, layers[np.minimum(pos, layers.size - 1)], p.n_layers)
        n_look = np.where(exits, pos + 1, layers.size)
        look = np.cumsum(p.lookup_fixed_s[i, layers] + p.lookup_entry_s[i, layers] * k)
        lat = P[i, exit_layer] + look[n_look - 1]
        prec = np.where(exits, p.hit_precision[i, k][np.minimum(exit_layer, p.n_layers - 1), c], 1.0)
        assert lat.mean() == pytest.approx(m.latency_s[i], rel=2e-3)
        assert exits.mean() == pytest.approx(m.hit_ratio[i], abs=5e-3)
        assert prec.mean() == pytest.approx(m.accuracy[i], abs=5e-3)


def test_arc_tables_sum_to_evaluate() -> None:
    p = random_cache_problem(2, 5, 4, seed=1)
    lat, acc = p.arc_tables()
    assert lat.shape == (2, 5, 6, 6) and np.isnan(lat[0, 1, 3, 2]) and not np.isnan(lat[0, 1, 2, 3])
    m = p.evaluate(p.plan([2, 4], [[1, 3], []]))
    assert lat[0, 2, 0, 1] + lat[0, 2, 2, 3] + lat[0, 2, 4, 5] == pytest.approx(m.latency_s[0])
    assert acc[1, 4, 0, 5] == pytest.approx(m.accuracy[1]) == pytest.approx(1.0)


def test_check_reports_every_constraint() -> None:
    p = CachePlacement(**_small(max_entries=2, max_memory_bytes=40, max_layers=1, accuracy_floor=0.95,
                                latency_slo_s=2.0))
    v = p.check(CachePlan(classes=((1, 0),), layers=((0, 1),)))
    names = {x.name for x in v}
    assert names == {"client[0].entries", "client[0].memory_bytes", "client[0].active_layers",
                     "client[0].accuracy", "client[0].latency_s"}
    v = p.check(CachePlan(classes=((1,),), layers=((),)))  # class 1 is not the top-1 (class 0 is)
    assert [x.name for x in v] == ["client[0].classes_outside_top_k", "client[0].latency_s"]
    assert p.check(p.no_cache_plan()) == [x for x in p.check(p.no_cache_plan()) if x.name == "client[0].latency_s"]


def test_sense_and_objective_follow_the_goal() -> None:
    p = CachePlacement(**_small(goal="accuracy", weights=[2.0]))
    assert p.sense == "max" and p.objective(p.no_cache_plan()) == 2.0
    assert CachePlacement(**_small()).sense == "min"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"block_time_s": [[1.0]]}, r"`block_time_s` has shape \(1, 1\); expected \(N, L\+1\)"),
        ({"block_time_s": [[1.0, -2.0, 0.5]]}, r"`block_time_s`\[0, 1\] = -2.0; expected values >= 0.0"),
        ({"lookup_fixed_s": [[0.1]]}, r"`lookup_fixed_s` has shape \(1, 1\); expected shape \(1, 2\)"),
        ({"dims": [4, 0]}, r"`dims`\[1\] = 0.0; expected values >= 1.0"),
        ({"request_prob": [[0.5, 0.25]]}, r"`request_prob`\[0\] sums to 0.75; expected 1"),
        ({"request_prob": None}, r"`request_prob` is None; expected an \(N, C\) array"),
        ({"class_rank": [[0, 0]]}, r"`class_rank`\[0\] = \[0, 0\]; expected a permutation of 0..1"),
        ({"hit_prob": [[0.5, 0.0]]}, r"`hit_prob` has shape \(1, 2\); expected \(L, C\) = \(2, 2\)"),
        ({"hit_prob": [[0.8, 0.0], [0.3, 0.2]]}, r"`hit_prob` sums over layers to 1.1 for client 0, k=1, class 0"),
        ({"hit_precision": [[1.5, 0.0], [1.0, 0.5]]}, r"`hit_precision`\[0, 0\] = 1.5; expected values <= 1.0"),
        ({"max_layers": -1}, r"`max_layers` = -1; expected a non-negative integer or None"),
        ({"goal": "energy"}, r"`goal` = 'energy'; expected one of 'latency', 'accuracy'"),
        ({"accuracy_floor": np.inf}, r"`accuracy_floor` has an entry inf"),
        ({"weights": [-1.0]}, r"`weights`\[0\] = -1.0; expected values >= 0.0"),
        ({"bytes_per_value": 0}, r"`bytes_per_value` = 0.0; expected a value > 0.0"),
        ({"full_precision": [2.0, 1.0]}, r"`full_precision`\[0, 0\] = 2.0; expected values <= 1.0"),
    ],
)
def test_placement_data_errors(change: dict, match: str) -> None:
    with pytest.raises(ProblemDataError, match=match):
        CachePlacement(**_small(**change))


@pytest.mark.parametrize(
    ("plan", "match"),
    [
        (dict(classes=((0,),), layers=((0,), (1,))), r"`classes` has 1 clients but `layers` has 2"),
        (dict(classes=((0, 0),), layers=((),)), r"`classes`\[0\] = \(0, 0\) has duplicates"),
        (dict(classes=(("a",),), layers=((),)), r"`classes`\[0\] = \('a',\); expected a sequence of integers"),
        (dict(classes=((0.5,),), layers=((),)), r"`classes`\[0\] = \(0.5,\); expected a sequence of integers"),
        (dict(classes="ab", layers=((),)), r"`classes` = 'ab'; expected one sequence of integers per client"),
    ],
)
def test_plan_errors(plan: dict, match: str) -> None:
    with pytest.raises(PlanError, match=match):
        CachePlan(**plan)


def test_plans_that_do_not_fit() -> None:
    p = CachePlacement(**_small())
    with pytest.raises(PlanError, match=r"`plan.classes`\[0\] = \[0, 5\]; expected class indices in 0..1"):
        p.evaluate(CachePlan(classes=((0, 5),), layers=((),)))
    with pytest.raises(PlanError, match=r"`plan.layers`\[0\] = \[2\]; expected layer indices in 0..1"):
        p.evaluate(CachePlan(classes=((0,),), layers=((2,),)))
    with pytest.raises(PlanError, match=r"`plan` has 2 clients; expected 1"):
        p.evaluate(CachePlan(classes=((), ()), layers=((), ())))
    with pytest.raises(PlanError, match=r"`plan` is a list; expected a CachePlan"):
        p.check([1, 2])
    with pytest.raises(PlanError, match=r"`counts` = 3; expected values in 0..2"):
        p.plan(3, [0])
    with pytest.raises(PlanError, match=r"`layers` has 2 rows; expected one for all clients or 1"):
        p.plan(1, [[0], [1]])
    with pytest.raises(PlanError, match=r"expected an object with keys 'classes' and 'layers'"):
        CachePlan.from_dict({"classes": []})


def test_plan_json_round_trip_and_plan_files(tmp_path) -> None:
    from edgeplan.io.plans import load_plan, save_plan

    plan = CachePlan(classes=((3, 1), ()), layers=((4, 0), ()))
    assert plan.classes == ((1, 3), ()) and plan.layers == ((0, 4), ())
    assert CachePlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    p = random_cache_problem(2, 5, 4, seed=0)
    r = ep.solve(p, "cache-dp")
    path = save_plan(tmp_path / "cache.json", p, r)
    assert load_plan(path, p).plan == r.plan


def test_class_importance_hand_example() -> None:
    # history (oldest first) 0 0 1 2 0 1, window 2, alpha 0.5: f = (3, 2, 1); last seen 1, 0, 2 requests ago
    imp = class_importance([0, 0, 1, 2, 0, 1], 4, alpha=0.5, window=2)
    assert imp.tolist() == [3 * 0.5 ** 0, 2 * 0.5 ** 0, 1 * 0.5 ** 1, 0.0]
    assert importance_to_prob(imp).sum() == pytest.approx(1.0)
    assert importance_to_prob(np.zeros(3)).tolist() == [1 / 3] * 3
    with pytest.raises(ProblemDataError, match=r"`history`\[0\] = 7; expected values <= 3"):
        class_importance([7], 4)
    with pytest.raises(ProblemDataError, match=r"`window` = 0; expected a positive integer"):
        class_importance([0], 4, window=0)
    with pytest.raises(ProblemDataError, match=r"`alpha` = 2.0; expected a value <= 1.0"):
        class_importance([0], 4, alpha=2.0)


def test_prefix_hits_equal_a_direct_lookup_for_every_k() -> None:
    rng = np.random.default_rng(3)
    s = rng.normal(size=(300, 7)) * 0.1 + 0.8
    s[:5, 2] = s[:5, 1]  # ties go to the class ranked first
    for rule, th, temp in (("coca", 0.05, 1.0), ("exit", 0.3, 0.05)):
        hit, arg = prefix_hits(s, rule=rule, threshold=th, temperature=temp)
        assert not hit[:, :2].any()
        for k in range(2, 8):
            x = s[:, :k]
            top = -np.sort(-x, axis=1)[:, :2]
            if rule == "coca":
                want = top[:, 0] - top[:, 1] > th * np.abs(top[:, 1])
            else:
                want = 1 / np.exp((x - top[:, :1]) / temp).sum(axis=1) >= th
            assert (hit[:, k] == want).all() and (arg[:, k] == x.argmax(axis=1)).all()


def test_replay_hand_example() -> None:
    # one client, 2 layers, 3 classes; request 0 is sure at layer 0, request 1 only after accumulating
    scores = np.array([[[0.9, 0.5, 0.1], [0.60, 0.58, 0.1]],
                       [[0.9, 0.5, 0.1], [0.70, 0.50, 0.1]]])
    q = CacheReplay(block_time_s=[[1.0, 1.0, 1.0]], lookup_fixed_s=[[0.1, 0.1]], lookup_entry_s=[[0.0, 0.0]],
                    dims=[2, 2], scores=scores, client=[0, 0], reference=[0, 1], threshold=0.1)
    tr = q.trace(CachePlan(classes=((0, 1),), layers=((0, 1),)))
    # request 1: layer 0 margin 0.02/0.58 < 0.1; layer 1: S = (0.6 + 1.4, 0.58 + 1.0) -> 0.42/1.58 > 0.1
    assert tr.exit_layer.tolist() == [0, 1] and tr.label.tolist() == [0, 0]
    assert tr.latency_s.tolist() == pytest.approx([1.1, 2.2]) and tr.agrees.tolist() == [True, False]
    m = q.evaluate(CachePlan(classes=((0, 1),), layers=((0, 1),)))
    assert m.accuracy[0] == 0.5 and m.hit_ratio[0] == 1.0
    assert q.request_prob.tolist() == [[0.5, 0.5, 0.0]]  # default: the client's reference frequencies


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"client": [0, 3]}, r"`client` has the value 3; expected client indices below 1"),
        ({"reference": [0, 4]}, r"`reference`\[1\] = 4; expected values <= 2"),
        ({"rule": "vote"}, r"`rule` = 'vote'; expected one of 'coca', 'exit'"),
        ({"scores": np.zeros((3, 2, 3))}, r"`scores` has 3 layers; expected 2 to match `block_time_s`"),
        ({"temperature": 0.0}, r"`temperature` = 0.0; expected a value > 0.0"),
    ],
)
def test_replay_data_errors(change: dict, match: str) -> None:
    kw = dict(block_time_s=[[1.0, 1.0, 1.0]], lookup_fixed_s=[[0.1, 0.1]], lookup_entry_s=[[0.0, 0.0]], dims=[2, 2],
              scores=np.zeros((2, 2, 3)), client=[0, 0], reference=[0, 1])
    kw.update(change)
    with pytest.raises(ProblemDataError, match=match):
        CacheReplay(**kw)


def test_replay_client_without_requests() -> None:
    with pytest.raises(ProblemDataError, match=r"client 1 has no request in `client`"):
        CacheReplay(block_time_s=[[1.0, 1.0]] * 2, lookup_fixed_s=[[0.1]] * 2, lookup_entry_s=[[0.0]] * 2,
                    dims=[2], scores=np.zeros((1, 2, 3)), client=[0, 0], reference=[0, 1])


@pytest.mark.parametrize("rule", ["coca", "exit"])
def test_calibrated_placement_reproduces_the_replay_where_it_is_exact(rule: str) -> None:
    kw = {"threshold": 0.4, "temperature": 0.05} if rule == "exit" else {}
    # one client: the pooled per-class statistics are its own requests' (exact for these two plans)
    q = random_replay_problem(1, 4, 5, requests=150, seed=2, noise=1.5, rule=rule, **kw)
    single = q.to_placement(depth="single")
    dense = q.to_placement(depth="dense")
    stable = q.to_placement(depth="stable")
    for k in range(6):
        plan = q.plan(k, [0])  # one layer, the first: a request exits iff its depth is 0
        a, b = q.evaluate(plan), single.evaluate(plan)
        assert b.latency_s == pytest.approx(a.latency_s) and b.accuracy == pytest.approx(a.accuracy)
        assert b.hit_ratio == pytest.approx(a.hit_ratio)
        plan = q.plan(k, list(range(4)))  # every layer: a request exits at its dense depth
        assert dense.evaluate(plan).latency_s == pytest.approx(q.evaluate(plan).latency_s)
        assert dense.evaluate(plan).hit_ratio == pytest.approx(q.evaluate(plan).hit_ratio)
        plan = q.plan(k, [3])  # the last layer alone: "stable" depth <= 3 iff that lookup hits
        assert stable.evaluate(plan).hit_ratio == pytest.approx(q.evaluate(plan).hit_ratio)
    with pytest.raises(ProblemDataError, match=r"`depth` = 'deep'; expected one of 'single', 'stable', 'dense'"):
        q.to_placement(depth="deep")
