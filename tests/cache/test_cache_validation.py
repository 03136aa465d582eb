"""CoCa validation on real (tiny) zoo models: hooks, executor vs replay, merges, a short end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgeplan import ProblemDataError
from edgeplan.experiments.cache_periods import client_streams, prepare_cache_model, validate_cache
from edgeplan.formulations.cache.placement import CachePlan
from edgeplan.formulations.cache.replay import CacheReplay
from edgeplan.validation.cache.execute import (
    Executor,
    cached_model,
    calibrate_threshold,
    merge_global_cache,
    semantic_vectors,
)


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    return prepare_cache_model("resnet18", size="tiny", input_size=32, n_classes=5, noise=0.5, train_per_class=16)


@pytest.fixture(scope="module")
def tiny_vit():
    return prepare_cache_model("deit_s", size="tiny", n_classes=4, noise=0.5, train_per_class=12)


def test_semantic_vectors_separate_the_classes(tiny, tiny_vit) -> None:
    for setup, chance in ((tiny, 1 / 5), (tiny_vit, 1 / 4)):
        sep = setup.separability
        assert len(sep["nearest_centre_accuracy"]) == setup.model.n_layers
        assert max(sep["nearest_centre_accuracy"]) > chance + 0.3, sep
        assert max(sep["fisher_ratio"]) > 0.1 and setup.full_accuracy > chance + 0.3
        assert 0 <= setup.threshold and 0 <= setup.exit_threshold <= 1 and setup.temperature > 0


def test_hooks_record_the_block_outputs(tiny) -> None:
    m = tiny.model
    x = tiny.stream.sample(np.arange(5), np.random.default_rng(0))
    vec, pred, last = semantic_vectors(m, x, batch=2)
    with torch.inference_mode():
        h = x
        for l, b in enumerate(m.blocks):
            h = b(h)
            want = torch.nn.functional.normalize(m.pool(h), dim=1).numpy()
            assert np.allclose(vec[l], want, atol=1e-5) and vec[l].shape == (5, m.dims[l])
        assert (m.head(h).argmax(dim=1).numpy() == pred).all()
    assert np.allclose(np.linalg.norm(vec[0], axis=1), 1.0, atol=1e-5) and last.shape == (5, m.dims[-1])


@pytest.mark.parametrize("rule", ["coca", "exit"])
def test_executor_exits_where_the_replay_says(tiny, rule: str) -> None:
    m, C, L = tiny.model, tiny.n_classes, tiny.model.n_layers
    x = tiny.stream.sample(np.arange(40) % C, np.random.default_rng(1))
    vec, pred, _ = semantic_vectors(m, x)
    scores = np.stack([v @ g.T for v, g in zip(vec, tiny.centres, strict=True)])
    kw = {"threshold": tiny.exit_threshold * 0.9, "temperature": tiny.temperature} if rule == "exit" else \
        {"threshold": tiny.threshold / 4}
    q = CacheReplay(block_time_s=np.ones((1, L + 1)), lookup_fixed_s=np.zeros((1, L)),
                    lookup_entry_s=np.zeros((1, L)), dims=m.dims, scores=scores, client=np.zeros(40, int),
                    reference=pred, rule=rule, **kw)
    plan = q.plan(C - 1, [1, L - 1])
    tr = q.trace(plan)
    ex = Executor(m)
    ex.configure(tiny.centres, [c for c in q.class_rank[0] if c in plan.classes[0]], plan.layers[0], rule=rule, **kw)
    served = [ex.serve(x[s:s + 1]) for s in range(40)]
    exits = np.array([r.exit_layer for r in served])
    labels = np.array([r.label for r in served])
    assert (exits == tr.exit_layer).mean() >= 0.95  # float32 sums in another order may flip a tie
    assert 0 < (exits < L).mean()
    same = exits == tr.exit_layer
    assert (np.where(tr.label >= 0, tr.label, pred) == labels)[same].all()
    assert all(r.latency_s > 0 for r in served)


def test_profile_shapes_and_signs(tiny) -> None:
    ex = Executor(tiny.model, clock="wall")
    x = tiny.stream.sample(np.arange(3), np.random.default_rng(2))
    block, fixed, kappa = ex.profile(x, tiny.centres, tiny.n_classes, repeats=1)
    L = tiny.model.n_layers
    assert block.shape == (L + 1,) and fixed.shape == kappa.shape == (L,)
    assert (block > 0).all() and (fixed >= 0).all() and (kappa >= 0).all()
    assert ex.threshold == 0.01 and all(e is None for e in ex.entries)  # the configuration is restored


def test_merge_global_cache_by_hand() -> None:
    g = [np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)]
    sums = [np.array([[0.0, 2.0], [0.0, 0.0]])]
    out, freq = merge_global_cache(g, np.array([2.0, 5.0]), sums, np.array([[2.0, 0.0]]), np.array([3.0, 1.0]),
                                   rho=0.5)
    # class 0: (0.5 * 2 * (1, 0) + (0, 2)) / 4 = (0.25, 0.5) -> normalised; class 1 had no miss: unchanged
    assert np.allclose(out[0][0], np.array([0.25, 0.5]) / np.hypot(0.25, 0.5))
    assert np.allclose(out[0][1], [0.0, 1.0]) and freq.tolist() == [5.0, 6.0]


def test_calibrate_threshold() -> None:
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    agrees = np.array([True, True, False, True, False])
    assert calibrate_threshold(score, agrees, 1.0) == 0.7  # hits above 0.7: both agree
    assert calibrate_threshold(score, agrees, 0.75) == 0.5  # 3 of the top 4 agree
    assert calibrate_threshold(score, np.zeros(5, bool), 0.5) > 0.9  # nothing qualifies: never hit


def test_client_streams_are_long_tailed_and_non_iid() -> None:
    s = client_streams(3, 10, 2000, zipf=1.2, seed=0)
    counts = np.stack([np.bincount(r, minlength=10) for r in s])
    assert (counts.max(axis=1) > 4 * np.median(counts, axis=1)).all()
    assert len({int(np.argmax(c)) for c in counts}) > 1


def test_short_end_to_end_run(tiny) -> None:
    v = validate_cache(tiny, methods=("no-cache", "aca", "cache-dp", "cache-replay", "multi-exit"), n_clients=2,
                       period=12, n_periods=2, profile_samples=3, seed=1)
    assert len(v.rows) == 5 * 2 * 2
    by = {s["method"]: s for s in v.summary()}
    nc = by["no-cache"]
    assert nc["agreement"] == 1.0 and nc["hit_ratio"] == 0.0 and nc["latency_reduction"] == 0.0
    assert 0.7 < nc["normalized_latency"] < 1.4  # the same model in the same slots as the reference
    for s in by.values():
        assert s["exit_match"] >= 0.9 and s["latency_s"] > 0 and 0 <= s["agreement"] <= 1
    for r in v.rows:
        assert r["status"] in ("optimal", "feasible", "error", "no_solution")
        assert r["k"] <= 5 and all(0 <= layer < tiny.model.n_layers for layer in r["layers"])
    pc = v.per_client("cache-dp")
    assert [c["client"] for c in pc] == [0, 1] and all(np.isfinite(c["error"]) for c in pc)
    text = str(v)
    assert "cache-replay" in text and "separability" in text


def test_validation_errors(tiny) -> None:
    with pytest.raises(ProblemDataError, match=r"`model` = 'vgg16'; expected one of 'resnet18', 'resnet50'"):
        cached_model("vgg16")
    with pytest.raises(ProblemDataError, match=r"`clock` = 'cpu'; expected one of 'thread', 'wall'"):
        Executor(tiny.model, clock="cpu")
    with pytest.raises(ProblemDataError, match=r"`clock` = 'thread' with `threads` = 2"):
        validate_cache(tiny, threads=2)
    with pytest.raises(ProblemDataError, match=r"`n_periods` = 0, `period` = 10, `n_clients` = 4; expected"):
        validate_cache(tiny, n_periods=0, period=10)
    assert isinstance(CachePlan(classes=((),), layers=((),)), CachePlan)
