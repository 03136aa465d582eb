"""CoSine's routing across steps: learned scores and exploration when the recent acceptance drops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import edgeplan
from edgeplan.errors import ProblemDataError
from edgeplan.experiments.serving_router import CoSineRouter
from edgeplan.experiments.serving_sim import Stream, simulate
from edgeplan.formulations.serving.instances import speculative_step_instance


def _runs(seed: int, pooled: bool) -> dict[str, tuple[float, float]]:
    """Drafter 0 knows domain 0 well (0.9) and domain 1 not at all; drafter 1 is general (0.65) with room for
    everyone, so a blind prior (0.45 against 0.65) ranks it first. Every request is of domain 0. Per run: the
    share of drafts on the specialist, and the median latency."""
    tpl = speculative_step_instance(1, 2, 2, seed=0, urgent_fraction=0.0, max_speculation=4)
    tpl = dataclasses.replace(tpl, acceptance=np.array([[0.9, 0.0], [0.65, 0.65]]),
                              draft_capacity=np.array([64.0, 64.0]))
    s = Stream.poisson(40, 4.0, 1, output=48, seed=seed)
    stream = dataclasses.replace(s, domain=np.zeros_like(s.domain))
    out = {}
    for name, threshold in (("explore", 0.7), ("exploit", 0.0)):
        router = CoSineRouter.blind(tpl.acceptance, threshold=threshold, pooled=pooled)
        assert router.prior.tolist() == [0.45, 0.65]
        rep = simulate(tpl, stream, "cosine", router=router, seed=seed)
        out[name] = (float(np.mean([route == (0,) for _, route, *_ in router.log])), rep.percentile(50))
    return out


@pytest.mark.parametrize("seed", [0, 2])
def test_exploration_moves_requests_to_the_specialist_each_must_find_alone(seed: int) -> None:
    runs = _runs(seed, pooled=False)
    assert runs["explore"][0] > runs["exploit"][0] + 0.15
    assert runs["explore"][1] < runs["exploit"][1]


def test_exploiting_a_blind_prior_can_stay_stuck_where_exploration_gets_out() -> None:
    """Pooled, one lucky request usually shows the specialist to the rest; on this stream none does."""
    runs = _runs(3, pooled=True)
    assert runs["exploit"][0] < 0.01 and runs["explore"][0] > 0.9
    assert runs["explore"][1] < 0.7 * runs["exploit"][1]


def test_a_request_explores_once_its_route_has_been_judged() -> None:
    router = CoSineRouter([0.5, 0.55, 0.4], threshold=0.6, patience=4, pooled=False)
    router.observe([7], [0], [(1,)], [4], [1])  # 1 accepted of 2 checked: too few positions to judge
    assert not router.exploring(7)
    s = router.scores([7], [0])[0]
    assert s[1] < 0.55 and s.argmax() == 1
    router.observe([7], [0], [(1,)], [4], [0])  # decayed counts: 0.8 accepted of 2.6 checked
    assert not router.exploring(7)
    router.observe([7], [0], [(1,)], [4], [1])  # 1.64 of 4.08: judged, and below 0.6
    assert router.exploring(7)
    s = router.scores([7], [0])[0]
    assert s[1] == -1.0 and s[0] == 1.5 and s[2] == 1.4  # untried drafters first, best prior first
    router.observe([7], [0], [(0,)], [4], [4])  # the new route accepts everything
    assert not router.exploring(7) and router.log[-1][-1] is True


def test_pooled_counts_carry_to_new_requests_of_the_domain() -> None:
    router = CoSineRouter([0.5, 0.5], threshold=0.0)
    for r in range(5):
        router.observe([r], [1], [(0,)], [4], [4])
    assert router.scores([99], [1])[0].argmax() == 0 and router.scores([99], [0])[0].tolist() == [0.5, 0.5]
    unpooled = CoSineRouter([0.5, 0.5], threshold=0.0, pooled=False)
    unpooled.observe([0], [1], [(0,)], [4], [4])
    assert unpooled.scores([99], [1])[0].tolist() == [0.5, 0.5]


def test_cosine_routes_by_given_scores_and_names_bad_ones() -> None:
    p = speculative_step_instance(6, 3, 3, seed=1, urgent_fraction=0.0)
    scores = np.zeros((6, 3))
    scores[:, 2] = 1.0
    r = edgeplan.solve(p, "cosine", options={"scores": scores})
    assert all(s in (None, (), (2,)) for s in r.plan.routes) and any(s == (2,) for s in r.plan.routes)
    with pytest.raises(ProblemDataError, match="scores"):
        edgeplan.solve(p, "cosine", options={"scores": np.zeros((5, 3))})
    with pytest.raises(ProblemDataError, match="policy"):
        simulate(p, Stream.poisson(3, 1.0, 3, seed=0), "fcfs-fixed", router=CoSineRouter([0.5] * 3))
    with pytest.raises(ProblemDataError, match="threshold"):
        CoSineRouter([0.5], threshold=2.0)


def test_the_controller_moves_length_and_drafters_together_within_their_ceilings() -> None:
    from edgeplan.experiments.serving_sim import CoSineController

    tpl = speculative_step_instance(1, 3, 2, seed=0, max_speculation=2, max_drafters=2)
    c = CoSineController.of(tpl, "cosine")
    assert (c.length, c.drafters) == (2, 1) and CoSineController.of(tpl, "fcfs-fixed") is None
    c.update(pending=5, batched=5)
    assert (c.length, c.drafters) == (2, 2)
    c.update(pending=5, batched=5)
    assert (c.length, c.drafters) == (2, 2)
    c.update(pending=5, batched=4)
    c.update(pending=5, batched=4)
    assert (c.length, c.drafters) == (1, 1)
    # in a light stream the verifier has room: requests get token trees of two drafters
    router = CoSineRouter(tpl.acceptance, threshold=0.0)
    simulate(dataclasses.replace(tpl, urgent=None), Stream.poisson(6, 0.5, 2, output=12, seed=0), "cosine",
             router=router)
    widths = {len(route) for _, route, *_ in router.log}
    assert widths == {1, 2}
