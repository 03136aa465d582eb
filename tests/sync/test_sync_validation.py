"""Federated attention and cross-region training on real (small) models: exactness of the execution, bytes
and transfer times against the planning model, the cache, the paced links."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import edgeplan as ep  # noqa: E402
from edgeplan.formulations.sync import FragmentPlan, SyncPlan  # noqa: E402
from edgeplan.registry import generator_for, validators_for  # noqa: E402
from edgeplan.validation.lm import LMConfig, MarkovCorpus, trained_lm  # noqa: E402
from edgeplan.validation.sync import links  # noqa: E402
from edgeplan.validation.sync.fedattn import calibrate, federated_forward, held_out, split_tokens  # noqa: E402

SMALL = LMConfig(n_layer=3, steps=40)


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEPLAN_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


def _ids(n: int, length: int, seed: int):
    return torch.from_numpy(MarkovCorpus().sample(n, length, np.random.default_rng(seed)))


def test_the_trained_decoder_is_cached_and_reloaded(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEPLAN_CACHE", str(tmp_path))
    cfg = LMConfig(n_layer=1, steps=3, batch=4, seq=16)
    a = trained_lm(MarkovCorpus(), cfg)
    files = list(tmp_path.glob("markov-lm-*.pt"))
    assert len(files) == 1
    b = trained_lm(MarkovCorpus(), cfg)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), na


def test_synced_everywhere_is_centralised_attention_and_bytes_are_counted() -> None:
    model = trained_lm(MarkovCorpus(), SMALL)
    ids = _ids(4, 24, 5)
    tokens = np.array([10, 0, 9, 5])  # a participant without tokens too
    with torch.no_grad():
        central = model(ids).logits
    full = federated_forward(model, ids, tokens, range(3))
    torch.testing.assert_close(full.logits, central, rtol=1e-5, atol=1e-5)
    alone = federated_forward(model, ids, np.array([24]), [])
    torch.testing.assert_close(alone.logits, central, rtol=1e-5, atol=1e-5)
    local = federated_forward(model, ids, tokens, [])
    assert (local.logits - central).abs().max() > 1e-3 and local.bytes_up == local.bytes_down == 0
    one = federated_forward(model, ids, tokens, [1])
    kv = 2 * SMALL.n_embd * 4 * ids.shape[0]  # K and V, fp32, per token, over the batch
    assert one.bytes_up == kv * (10 + 9) and one.bytes_down == kv * (10 + 19)  # the empty one needs none


def test_measured_schedule_predicts_bytes_exactly_and_error_on_held_out_prompts() -> None:
    p = generator_for("kv-sync-measured")(n_participants=3, n_layer=3, steps=40, prompt_tokens=24, prompts=16)
    assert p.n_blocks == 3 and p.tokens.tolist() == [8, 8, 8]
    r = ep.solve(p, "kv-sync-dp")
    (_label, validate), = validators_for(p)
    for plan in (r.plan, SyncPlan([]), SyncPlan([0, 1, 2])):
        rep = validate(p, plan, prompts=16)
        assert rep.bytes_meas == rep.bytes_pred
        assert rep.error_meas >= 0 and rep.error_pred >= 0
    assert validate(p, SyncPlan([0, 1, 2]), prompts=8).error_meas < 1e-9
    model = trained_lm(MarkovCorpus(), SMALL)
    table, plans, _y = calibrate(model, _ids(16, 24, 1), split_tokens(24, 3))
    assert len(plans) == 8 and (table >= 0).all()
    check = held_out(model, _ids(16, 24, 9), split_tokens(24, 3), table, plans)
    assert check["r2"] > 0.5, check


def test_paced_link_takes_the_planned_time() -> None:
    server, port = links.listener()
    got = {}

    def serve() -> None:
        c, _ = server.accept()
        t0 = time.perf_counter()
        got["msg"] = links.recv(c)
        got["s"] = time.perf_counter() - t0
        c.close()

    th = threading.Thread(target=serve)
    th.start()
    sock = links.connect(port)
    x = np.arange(50_000, dtype=np.float32)
    sent = links.send(sock, {"x": x}, rate_bps=1e6)
    th.join()
    sock.close()
    server.close()
    assert np.array_equal(got["msg"]["x"], x)
    assert got["s"] >= 0.95 * sent / 1e6  # never faster than the link (the receiver starts a little late)


def test_cross_region_run_is_recorded_planned_and_replayed_against_the_link_model() -> None:
    p = generator_for("fragment-sync-measured")(regions=2, slots=3, inner_steps=2, n_layer=2, wan_bps=2e6)
    assert p.n_fragments == 3 and p.value.shape == (3, 3) and (p.value[1:] > 0).all()
    assert (p.wan_bps == 1e6).all() and (p.window_s > 0).all()  # half the rate: each byte goes up and down
    r = ep.solve(p, "fragment-milp")
    assert r.status is ep.Status.OPTIMAL
    plan = FragmentPlan([[0, 2], [], [1]])
    (_label, validate), = validators_for(p)
    rep = validate(p, plan)
    pred = p.evaluate(plan).transfer_s
    np.testing.assert_allclose(rep.transfer_pred_s, pred)
    sent = pred > 0
    assert ((rep.transfer_meas_s > 0) == sent).all(), rep.transfer_meas_s
    assert (rep.transfer_meas_s[sent] >= 0.98 * pred[sent]).all(), (rep.transfer_meas_s, pred)
    assert (rep.transfer_meas_s[sent] <= 1.5 * pred[sent] + 0.5).all(), (rep.transfer_meas_s, pred)
    assert np.isfinite(rep.loss).all()
