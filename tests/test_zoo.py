"""The model zoo: published parameter counts, seeding, and profiling every model at tiny size."""

from __future__ import annotations

import pytest
import torch

from edgeplan.errors import ProfileError
from edgeplan.profiles import profile_model
from edgeplan.profiles.profiler import flop_counter
from edgeplan.validation import ZOO_MODELS, build_model

# Parameter counts of the published architectures (torchvision/timm/HF reference implementations)
FULL_PARAMS = {
    "resnet18": 11_689_512,          # torchvision resnet18
    "resnet50": 25_557_032,          # torchvision resnet50
    "mobilenet_v2": 3_506_153,       # 3,504,872 with 1000 classes; TF/HF checkpoints use 1001 classes
    "deit_s": 22_050_664,            # timm deit_small_patch16_224
    "bert_base": 109_483_778,        # bert-base-uncased (109,482,240) + a 2-way classifier
    "gpt2": 124_439_808,             # gpt2 (tied LM head)
    "llama_small": 56_369_664,       # our Llama-style config: 512 wide, 8 layers, GQA 8/4, 32k vocab
}


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_full_architectures_have_the_published_parameter_counts(name: str) -> None:
    z = build_model(name, device="meta")          # shapes only: no memory, no initialization
    assert z.num_params == FULL_PARAMS[name]


def test_seeded_and_does_not_touch_global_rng() -> None:
    state = torch.get_rng_state()
    a = build_model("gpt2", size="tiny", seed=3)
    b = build_model("gpt2", size="tiny", seed=3)
    c = build_model("gpt2", size="tiny", seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = a.module.state_dict(), b.module.state_dict(), c.module.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert torch.equal(a.example_inputs[0], b.example_inputs[0])
    assert not a.module.training and a.batch_size == 1


def test_options_and_errors() -> None:
    z = build_model("deit_s", size="tiny", batch_size=3, input_size=16, dtype=torch.float64)
    assert z.example_inputs[0].shape == (3, 3, 16, 16) and z.example_inputs[0].dtype == torch.float64
    assert next(z.module.parameters()).dtype == torch.float64
    assert build_model("bert_base", size="tiny", input_size=9).example_inputs[0].shape == (1, 9)
    with pytest.raises(ProfileError, match=r"`name` = 'vgg16'; expected one of 'resnet18'"):
        build_model("vgg16")
    with pytest.raises(ProfileError, match=r"`size` = 'huge'; expected one of 'full', 'small', 'tiny'"):
        build_model("gpt2", size="huge")
    with pytest.raises(ProfileError, match=r"`batch_size` = 0; expected a positive integer"):
        build_model("gpt2", batch_size=0)


EXPECTED_UNITS = {"resnet18": "resnet.encoder.stages.0", "resnet50": "resnet.encoder.stages.0",
                  "mobilenet_v2": "mobilenet_v2.layer.0", "deit_s": "vit.layers.0", "bert_base": "bert.encoder.layer.0",
                  "gpt2": "transformer.h.0", "llama_small": "model.layers.0"}


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_tiny_zoo_models_profile_into_chains_with_exact_totals(name: str) -> None:
    z = build_model(name, size="tiny", batch_size=2)
    p = profile_model(z.module, z.example_inputs, name=name, repeats=2, warmup=1, progress=False)
    assert p.meta["tracer"] == "torch.export"
    assert EXPECTED_UNITS[name] in p.block_names
    assert p.is_chain                                       # masks/rotary tables are replicated, not sent
    assert int(p.num_params.sum()) == z.num_params
    with torch.no_grad(), flop_counter() as c:
        z.module(*z.example_inputs)
    eager = c.get_total_flops() / 2
    total = p.fwd_flops.sum()
    # equal up to the replicated input-independent ops (Llama's rotary table: a tiny matmul per layer)
    assert eager <= total <= eager * 1.01
    assert p.bwd_flops.sum() > p.fwd_flops.sum()
    assert (p.out_bytes[:-1] > 0).all()
    # training activation memory against the storages eager autograd saves (weights excluded)
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    weights = {t.untyped_storage().data_ptr() for t in [*z.module.parameters(), *z.module.buffers()]}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z.module(*z.example_inputs)
    eager_saved = sum(v for k, v in storages.items() if k not in weights) / 2
    assert p.saved_bytes.sum() == pytest.approx(eager_saved, rel=0.05)
    m = p.measurements[0]
    assert (m.block_time_s > 0).all() and m.whole_time_s > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "gpt2"])
def test_full_size_export_and_hooks_agree(name: str) -> None:
    z = build_model(name)
    e = profile_model(z.module, z.example_inputs, method="export", timing=False, progress=False)
    h = profile_model(z.module, z.example_inputs, method="hooks", timing=False, progress=False)
    assert e.fwd_flops.sum() == pytest.approx(h.fwd_flops.sum() + h.meta["glue_flops"], rel=1e-9)
    assert int(e.num_params.sum()) == int(h.num_params.sum()) + h.meta["unattributed_params"]
