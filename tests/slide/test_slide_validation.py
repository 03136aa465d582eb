"""SLIDE's streamed-layer validation: real weights over a paced loopback socket, measured vs predicted latency."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import edgeplan as ep  # noqa: E402
from edgeplan import PlanError, ProblemDataError  # noqa: E402
from edgeplan.formulations.slide.provisioning import SlidePlan, SlideProvisioning  # noqa: E402
from edgeplan.validation.slide.execute import (  # noqa: E402
    layer_costs,
    pack_layer,
    stream_blocks,
    unpack_layer,
    validate_slide,
)


def small_cnn(seed: int = 0) -> torch.nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU()),
            torch.nn.Sequential(torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU()),
            torch.nn.Sequential(torch.nn.Conv2d(64, 96, 3, padding=1), torch.nn.ReLU()),
            torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(96, 10)),
        )
    return net.eval()


def one_model_problem(bits: np.ndarray, flops: np.ndarray, *, users: int = 1, download_s: float = 0.25,
                      **kw) -> SlideProvisioning:
    """R = 1 bit/s/Hz and B = bits / download_s: a user with the whole band downloads in ``download_s``."""
    data = dict(layer_bits=[bits], layer_flops=[flops], channel_gain=np.ones(users), deadline_s=0.6,
                energy_budget_j=10.0, admissible=np.ones((users, 1), bool), clock_hz=1e9, cycles_per_flop=0.1,
                power_coeff=1e-27, setup_time_s=0.02, bandwidth_hz=bits.sum() / download_s, tx_psd_w_per_hz=1e-20,
                noise_psd_w_per_hz=1e-20)
    data.update(kw)
    return SlideProvisioning(**data)


def test_payloads_round_trip_at_each_precision() -> None:
    block = small_cnn()[0]
    sd = block.state_dict()
    for precision, bits in (("fp32", 32), ("fp16", 16), ("int8", 8)):
        buf = pack_layer(block, precision)
        back = unpack_layer(buf)
        assert set(back) == set(sd)
        w, w_back = sd["0.weight"], back["0.weight"]
        tol = {"fp32": 0.0, "fp16": 1e-3, "int8": float(w.abs().max()) / 127}[precision]
        assert float((w - w_back).abs().max()) <= tol + 1e-7
        n_float = sum(t.numel() for t in sd.values() if t.is_floating_point())
        assert len(buf) >= n_float * bits / 8  # payload at least the parameters at that precision
        assert back["1.num_batches_tracked"].dtype == torch.int64


def test_stream_blocks_reproduce_zoo_models() -> None:
    from edgeplan.validation.zoo import build_model

    for name in ("resnet18", "deit_s", "mobilenet_v2"):
        z = build_model(name, size="tiny")
        x = z.example_inputs[0]
        blocks = stream_blocks(z.module)
        with torch.no_grad():
            y = x
            for b in blocks:
                y = b(y)
            assert torch.equal(y, z.module(x).logits), name
    with pytest.raises(ProblemDataError, match=r"`models` holds a Linear, which validate_slide cannot cut"):
        stream_blocks(torch.nn.Linear(2, 2))


def test_streamed_run_matches_the_recursion_on_a_real_cnn() -> None:
    net = small_cnn()
    x = torch.randn(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    blocks = stream_blocks(net)
    bits32, flops = layer_costs(blocks, x, "fp32")
    bits8, _ = layer_costs(blocks, x, "int8")
    assert bits8.sum() < 0.3 * bits32.sum()
    p = SlideProvisioning(layer_bits=[bits32, bits8], layer_flops=[flops, flops], channel_gain=[1.0, 1.0],
                          deadline_s=[0.5, 0.5], energy_budget_j=10.0, admissible=[[True, False], [False, True]],
                          clock_hz=1e9, cycles_per_flop=0.1, power_coeff=1e-27, setup_time_s=0.02,
                          bandwidth_hz=(bits32.sum() + bits8.sum()) / 0.3, tx_psd_w_per_hz=1e-20,
                          noise_psd_w_per_hz=1e-20)
    r = ep.solve(p, "slide")
    assert r.fun == 2
    report = validate_slide(p, r.plan, [net, net], x, repeats=2, runs=2, timeout_s=30)
    assert [u.precision for u in report.users] == ["fp32", "int8"]
    for u in report.users:
        assert u.measured_stream_s == pytest.approx(u.predicted_stream_s, rel=0.25, abs=0.03), report.table()
        assert u.measured_dai_s == pytest.approx(u.predicted_dai_s, rel=0.25, abs=0.03), report.table()
        assert u.max_abs_output_error == 0.0  # the client's output is the model's, from streamed weights only
        assert np.all(np.diff(u.measured_arrival_s) >= 0)
        assert u.measured_arrival_s[-1] >= 0.9 * u.predicted_arrival_s[-1]  # the pacing holds
        np.testing.assert_allclose(u.payload_bits, u.planned_bits + 64)  # each frame has an 8-byte length
    assert "stream pred" in report.table()


def test_target_mode_reproduces_the_planned_latency_and_overlap() -> None:
    """Compute padded to the plan's device times: measured latencies track the plan's own recursion."""
    from edgeplan.validation.zoo import build_model

    z = build_model("resnet18", size="tiny")
    x = z.example_inputs[0]
    bits, flops = layer_costs(stream_blocks(z.module), x, "fp16")
    # cycles_per_flop sized so that compute at full clock is ~ the download time: overlap matters
    p = one_model_problem(bits, flops, cycles_per_flop=0.15 / flops.sum() * 1e9, deadline_s=0.45,
                          energy_budget_j=1e-27 * 1e27 * 0.15 * 0.7)  # budget binds: clocks below 1
    r = ep.solve(p, "slide")
    assert r.fun == 1 and r.plan.clock_scale[0].min() < 1.0
    report = validate_slide(p, r.plan, {0: z.module}, {0: x}, compute="target", repeats=2, timeout_s=30)
    u = report.users[0]
    assert u.precision == "fp16"
    assert u.measured_stream_s == pytest.approx(u.planned_stream_s, rel=0.15, abs=0.03), report.table()
    assert u.measured_dai_s == pytest.approx(u.planned_dai_s, rel=0.15, abs=0.03), report.table()
    assert u.measured_stream_s < u.measured_dai_s - 0.05  # streaming saves real time


def test_validation_errors() -> None:
    net = small_cnn()
    x = torch.randn(1, 3, 16, 16)
    bits, flops = layer_costs(stream_blocks(net), x, "fp32")
    p = one_model_problem(bits, flops)
    plan = ep.solve(p, "slide").plan
    with pytest.raises(PlanError, match=r"`plan` is a dict; expected a SlidePlan"):
        validate_slide(p, {}, [net], x)
    with pytest.raises(ProblemDataError, match=r"`compute` = 'gpu'; expected 'host' or 'target'"):
        validate_slide(p, plan, [net], x, compute="gpu")
    with pytest.raises(ProblemDataError, match=r"no served user has a model in `models`"):
        validate_slide(p, SlidePlan.empty(1), [net], x)
    with pytest.raises(ProblemDataError, match=r"model 0 cuts into 3 blocks; the problem gives it 4 layers"):
        validate_slide(p, plan, [net[:3]], x)
    with pytest.raises(ProblemDataError, match=r"`precision` = 'fp8' for model 0; expected one of"):
        validate_slide(p, plan, [net], x, precision="fp8")
    with pytest.raises(ProblemDataError, match=r"model 0 has .* bits in the problem but its payload is"):
        validate_slide(one_model_problem(bits * 3, flops), plan, [net], x)
    with pytest.raises(ProblemDataError, match=r"`users` = \[3\] has \[3\], which the plan does not serve"):
        validate_slide(p, plan, [net], x, users=[3])
    with pytest.raises(ProblemDataError, match=r"`inputs` has no entry for model 0"):
        validate_slide(p, plan, [net], {1: x})
