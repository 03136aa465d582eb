"""The live serving cluster (drafter and verifier processes over loopback), the measured step generator, the
validator, and the simulator against a live run."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import edgeplan
from edgeplan.errors import ProblemDataError
from edgeplan.experiments.serving_router import CoSineRouter
from edgeplan.experiments.serving_sim import Stream, refit, serve_live, simulate
from edgeplan.formulations.serving import ServingPlan
from edgeplan.formulations.serving.instances import speculative_step_instance
from edgeplan.registry import generator_for, validators_for
from edgeplan.validation.serving.execute import serving_models
from edgeplan.validation.serving.live import LiveCluster, Timing, calibrate, execute_step, measured_template

TINY = {"target_steps": 30, "drafter_steps": 20}


def test_measured_step_is_solved_exactly_and_validated_for_real() -> None:
    p = generator_for("speculative-step-measured")(n_requests=3, seed=1, max_speculation=2, **TINY)
    assert p.acceptance.shape == (2, 2) and np.all(p.draft_base_s >= 0) and p.verify_s.sum() > 0
    r = edgeplan.solve(p, "step-milp")
    assert r.status == "optimal"
    plan = r.plan if any(s for s in r.plan.routes) else ServingPlan([(0,), (), None], [2, 0, 0])
    ((_, validate),) = validators_for(p)
    rep = validate(p, plan, repeats=3)
    batched = [i for i, s in enumerate(plan.routes) if s is not None]
    assert rep.measured_s > 0 and rep.predicted_s > 0 and rep.repeats == 3
    for i in batched:  # every batched request commits between 1 and k + 1 tokens
        assert 1.0 <= rep.measured_tokens[i] <= plan.lengths[i] + 1
    with pytest.raises(ProblemDataError, match="speculative-step-measured"):
        validate(speculative_step_instance(2, 2, 2), ServingPlan([None, None], [0, 0]))


def test_live_cluster_runs_steps_and_serve_live_matches_the_stream() -> None:
    models = serving_models(2, **TINY)
    with LiveCluster(models) as cluster:
        rng = np.random.default_rng(0)
        ctx = {r: models.corpus.sample(1, 10, rng, [r % 2])[0] for r in range(4)}
        out = execute_step(cluster, ctx, {0: (0,), 1: (1,), 2: (), 3: (0,)}, {0: 3, 1: 1, 2: 0, 3: 2}, rng)
        assert out.committed[2] and len(out.committed[2]) == 1
        for r, k in ((0, 3), (1, 1), (3, 2)):
            assert 1 <= len(out.committed[r]) <= k + 1 and out.accepted[r] == len(out.committed[r]) - 1
        timing = calibrate(cluster, repeats=2, warmup=2)
        alpha = np.array([[0.6, 0.3], [0.3, 0.6]])
        tpl = measured_template(timing, alpha, max_speculation=3)
        stream = Stream.poisson(6, 50.0, 2, prompt=8, output=6, seed=2)
        real = serve_live(cluster, tpl, stream, "cosine")
        router = CoSineRouter.blind(alpha, patience=2)
        learned = serve_live(cluster, tpl, stream, "cosine", router=router)
    # the router learned from the drafts the real models accepted
    assert learned.tokens == 36 and router.log and all(0 <= a <= k for _, _, k, a, _ in router.log)
    assert real.tokens == 36 and np.all(np.isfinite(real.latency_s)) and real.steps == len(real.trace["batch"])
    assert np.all(real.latency_s > 0) and real.throughput > 0
    fitted = refit(tpl, real)
    assert fitted.verify_s[0] >= np.mean(real.trace["plan_s"])
    sim = simulate(fitted, stream, "cosine")
    assert sim.tokens == 36 and sim.trace == {}


def test_a_step_with_token_trees_runs_live() -> None:
    models = serving_models(2, **TINY)
    with LiveCluster(models) as cluster:
        rng = np.random.default_rng(3)
        ctx = {r: models.corpus.sample(1, 9, rng, [r % 2])[0] for r in range(3)}
        out = execute_step(cluster, ctx, {0: (0, 1), 1: (1,), 2: (0, 1)}, {0: 3, 1: 2, 2: 1}, rng)
        # emulated devices far slower than this host: every round and the verification take their paced time
        cluster.pace = Timing(np.array([0.05, 0.08]), np.array([0.01, 0.0]), 0.0, np.array([0.1, 0.01, 0.002, 0.0]))
        paced = execute_step(cluster, ctx, {0: (0,), 1: (1,), 2: ()}, {0: 2, 1: 1, 2: 0}, rng)
        # devices paced at zero seconds: any real work outruns them, and the step says so
        cluster.pace = Timing(np.zeros(2), np.zeros(2), 0.0, np.zeros(4))
        late = execute_step(cluster, ctx, {0: (0,), 1: ()}, {0: 1, 1: 0}, rng)
    for r, k in ((0, 3), (1, 2), (2, 1)):
        assert 1 <= len(out.committed[r]) <= k + 1 and out.accepted[r] == len(out.committed[r]) - 1
    # round 1: drafter 1 (0.08 s) is the slower; round 2: drafter 0 alone (0.05 + 0.01); then V = 0.1 + 3 * 0.01
    # + 0.002 * (3 + 1 + 1) tokens
    assert paced.draft_s >= 0.08 + 0.06 and paced.verify_s >= 0.1 + 0.03 + 0.01
    assert late.overrun_s > 0.0 and out.overrun_s == 0.0  # unpaced: nothing to outrun
