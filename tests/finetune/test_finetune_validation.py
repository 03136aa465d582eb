"""FedQuad configurations on real (tiny) zoo models: peft LoRA, quantized activations, exact memory prediction."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from edgeplan import ProblemDataError
from edgeplan.validation.finetune.measure import anchors, compare, lora_model, measure_config, measure_many
from edgeplan.validation.finetune.quant import SavedTensors, dequantize, quantize

MODELS = ("gpt2", "bert_base", "llama_small")


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_quantization_round_trip_is_within_half_a_step(bits: int) -> None:
    x = torch.randn(5, 131) * torch.logspace(-3, 3, 131)
    p = quantize(x, bits, 32)
    y = dequantize(p)
    assert y.shape == x.shape and y.dtype == x.dtype
    step = p.scales.repeat_interleave(32)[: x.numel()].view(x.shape)  # one quantization step per group
    assert (x - y).abs().le(0.5 * step + 1e-12).all()
    assert p.nbytes == int(np.ceil(x.numel() * bits / 8)) + 4 * int(np.ceil(x.numel() / 32))


@pytest.mark.parametrize("name", MODELS)
def test_lora_sits_on_the_top_blocks_and_only_it_gets_gradients(name: str) -> None:
    lm = lora_model(name, 1, size="tiny")
    trainable = {n for n, p in lm.module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    top = lm.n_layers - 1
    assert all(f".{top}." in n for n in trainable), trainable
    m = measure_config(name, 1, size="tiny", rounds=1, fresh=False)
    assert set(m.grads) == trainable
    assert all(g.abs().sum() > 0 for g in m.grads.values())


@pytest.mark.parametrize("name", MODELS)
def test_quantized_activations_give_nearly_the_same_gradients(name: str) -> None:
    full, q8, q4 = measure_many(name, [(2, 0, 0), (2, 2, 8), (2, 2, 4)], size="tiny", rounds=1, fresh=False)
    for got, tol in ((q8, 0.05), (q4, 0.5)):
        assert got.saved_bytes < full.saved_bytes
        for n, g in full.grads.items():
            err = (got.grads[n] - g).norm() / g.norm()
            assert err < tol, (name, got.bits, n, float(err))
    # the 8-bit gradients are closer than the 4-bit ones
    e8 = sum(float((q8.grads[n] - g).norm()) for n, g in full.grads.items())
    e4 = sum(float((q4.grads[n] - g).norm()) for n, g in full.grads.items())
    assert e8 < e4


def test_saved_tensors_count_a_shared_activation_once_and_skip_parameters() -> None:
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8, requires_grad=True)
    saved = SavedTensors.for_model(lin)
    with saved:
        y = torch.tanh(lin(x)) * torch.tanh(lin(x)).sum()
    y.sum().backward()
    assert saved.bytes > 0
    # x is saved by both matmuls (one storage), the weight never counts
    with SavedTensors.for_model(lin) as once:
        lin(x).sum().backward()
    assert once.bytes == x.numel() * 4


@pytest.mark.parametrize("name", MODELS)
def test_predicted_memory_equals_the_measured_bytes_on_every_configuration(name: str) -> None:
    rows = compare(name, (8, 4), size="tiny", rounds=1, batch_size=2, fresh=False)
    assert len(rows) == 2 + 2 * 3  # L = 2: depths 1-2 unquantized, and q = 1..d at two widths
    for r in rows:
        assert abs(r["memory_err"]) <= 0.01, r
        assert r["time_pred_s"] > 0 and r["time_meas_s"] > 0
    assert {tuple(k) for k in anchors(2, (8, 4))} <= {(r["depth"], r["quantized"], r["bits"]) for r in rows}


def test_bad_configurations_are_named_errors() -> None:
    with pytest.raises(ProblemDataError, match="`depth` = 3"):
        lora_model("gpt2", 3, size="tiny")
    with pytest.raises(ProblemDataError, match="`name` = 'resnet18'"):
        lora_model("resnet18", 1, size="tiny")
    with pytest.raises(ProblemDataError, match="`quantized` = 2"):
        measure_config("gpt2", 1, 2, size="tiny", rounds=1)  # the error crosses the process boundary


def test_a_measured_round_is_solved_exported_applied_and_validated(tmp_path) -> None:
    import json

    from peft import LoraConfig, get_peft_model

    from edgeplan import solve
    from edgeplan.io.plans import export_plan
    from edgeplan.validation.finetune.execute import measured_instance, validate_finetune
    from edgeplan.validation.zoo import build_model

    p = measured_instance(4, model="gpt2:tiny", rounds=1, memory_share_low=1e-5, memory_share_high=1e-4)
    assert p.model == "gpt2:tiny" and p.n_candidates == 2 + 2 * 3
    r = solve(p, "finetune-sweep")
    assert r.status.value == "optimal"
    report = validate_finetune(p, r.plan, rounds=1)
    assert sum(len(row["devices"]) for row in report.rows) == 4
    assert all(abs(row["memory_err"]) < 0.01 for row in report.rows), str(report)
    assert "predicted vs measured" in str(report)
    out = json.loads(export_plan(p, r.plan, "peft", tmp_path)[0].read_text())
    for dev in out["devices"]:
        model = build_model("gpt2", size="tiny").module
        peft_model = get_peft_model(model, LoraConfig(**dev["lora_config"]))
        blocks = {int(n.split(".h.")[1].split(".")[0]) for n, q in peft_model.named_parameters() if q.requires_grad}
        assert blocks == set(dev["lora_config"]["layers_to_transform"])
        assert len(blocks) == dev["config"]["lora_depth"]


def test_a_measured_round_plan_file_keeps_its_problem(tmp_path) -> None:
    """A measured generator never rebuilds the same instance: its plan files store the problem's data."""
    from edgeplan import load_plan, save_plan, solve
    from edgeplan.validation.finetune.execute import measured_instance

    params = {"n_devices": 2, "model": "gpt2:tiny", "rounds": 1}
    p = measured_instance(**params)
    path = save_plan(tmp_path / "plan.json", p, solve(p, "fedquad"),
                     source={"family": "finetune-measured", "params": params, "seed": 0})
    loaded = load_plan(path)
    assert loaded.plan.choice.tolist() == solve(p, "fedquad").plan.choice.tolist()
    assert loaded.rebuild_problem().step_time_s.tolist() == p.step_time_s.tolist()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak resident memory is read from /proc")
def test_peak_resident_memory_of_a_step_holds_what_it_keeps() -> None:
    from edgeplan.validation.finetune.measure import peak_rss

    (row,) = peak_rss("gpt2", [(2, 0, 0)], size="tiny", batch_size=64)
    kept = row["saved_bytes"] + row["state_bytes"]
    assert kept > 5e6 and kept <= row["peak_bytes"] < 20 * kept
