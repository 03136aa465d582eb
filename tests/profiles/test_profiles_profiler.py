"""The torch profiler: exact FLOP hand counts, bytes from tensors, DAG structure, tracers and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from edgeplan.errors import ProfileError
from edgeplan.profiles import profile_model
from edgeplan.profiles.profiler import block_modules, flop_counter

FAST = {"repeats": 2, "warmup": 1, "progress": False}


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8)).eval()


@pytest.mark.parametrize("method", ["export", "hooks"])
def test_mlp_flops_params_and_bytes_match_hand_counts(method: str) -> None:
    x = torch.randn(4, 16)
    p = profile_model(mlp(), x, method=method, granularity="leaf", **FAST)
    assert p.block_names == ("0", "1", "2")
    assert p.block_kinds == ("linear", "elementwise" if method == "export" else "other", "linear")
    # forward: 2 FLOPs per multiply-accumulate, per sample
    np.testing.assert_array_equal(p.fwd_flops, [2 * 16 * 32, 0, 2 * 32 * 8])
    # backward: the first layer needs no input gradient (its input is data), the last needs both
    np.testing.assert_array_equal(p.bwd_flops, [2 * 16 * 32, 0, 2 * (2 * 32 * 8)])
    np.testing.assert_array_equal(p.num_params, [16 * 32 + 32, 0, 32 * 8 + 8])
    np.testing.assert_array_equal(p.out_bytes, [32 * 4, 32 * 4, 8 * 4])        # fp32 activations per sample
    assert p.input_bytes == 16 * 4
    assert p.is_chain and p.edge_bytes.tolist() == [128.0, 128.0]
    assert p.param_dtype == p.act_dtype == "fp32"
    if method == "export":     # training memory: the input (saved by linear 0) and the ReLU output (saved once)
        np.testing.assert_array_equal(p.saved_bytes, [16 * 4, 32 * 4, 0])
    m = p.latency("cpu", 4, "fp32")
    assert m.block_time_s.shape == (3,) and (m.block_time_s > 0).all() and m.whole_time_s > 0
    assert m.method == method and math.isfinite(m.additivity_error)


def test_single_conv_flops_and_bytes() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1).eval()
    x = torch.randn(2, 3, 10, 10)
    p = profile_model(conv, x, **FAST)
    assert p.n_blocks == 1 and p.block_kinds == ("conv",)
    assert p.fwd_flops[0] == 2 * (10 * 10) * 8 * (3 * 3 * 3)        # per sample: 2 * H W * C_out * C_in k^2
    assert p.bwd_flops[0] == p.fwd_flops[0]                          # weight gradient only
    assert p.num_params[0] == 8 * 3 * 9 + 8
    assert p.out_bytes[0] == 8 * 10 * 10 * 4 and p.input_bytes == 3 * 10 * 10 * 4


def test_depthwise_conv_backward_is_not_overcounted() -> None:
    model = nn.Sequential(nn.Conv2d(4, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=16)).eval()
    p = profile_model(model, torch.randn(1, 4, 8, 8), granularity="leaf", timing=False, progress=False)
    dw = 2 * 64 * 16 * 9
    assert p.block_kinds == ("conv", "dwconv")
    assert p.fwd_flops[1] == dw
    assert p.bwd_flops[1] == 2 * dw                  # input and weight gradients (upstream counts 17x this)
    with flop_counter() as c:
        model(torch.randn(1, 4, 8, 8))
    assert c.get_total_flops() == p.fwd_flops.sum()


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        y = self.b(torch.relu(self.a(h)))
        return self.head(torch.relu(y + h))


@pytest.mark.parametrize("method", ["export", "hooks"])
def test_residual_dag_edges_and_articulation_points(method: str) -> None:
    p = profile_model(Residual().eval(), torch.randn(3, 8), method=method, timing=False, progress=False)
    assert p.block_names == ("stem", "a", "b", "head")
    edges = {tuple(e) for e in p.edges.tolist()}
    assert edges == {(0, 1), (1, 2), (2, 3), (0, 3)}          # the skip connection stem -> head
    assert not p.is_chain
    np.testing.assert_array_equal(p.articulation_points(), [0])
    assert p.to_chain().block_names == ("stem", "a..head")
    np.testing.assert_array_equal(p.cut_bytes_after(), [32.0, 32.0, 64.0, 64.0, 0.0])


class AttentionLayer(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return x + y.transpose(1, 2).reshape(b, s, d)


class MaskedAttention(nn.Module):
    """Two attention layers that both read a causal mask built from the sequence length only."""

    def __init__(self, d: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, d)
        self.layers = nn.ModuleList(AttentionLayer(d, heads) for _ in range(2))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        mask = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).tril()     # input-independent
        for layer in self.layers:
            x = layer(x, mask)
        return x


def test_input_independent_nodes_are_replicated_and_attention_is_counted() -> None:
    b, s, d, h = 2, 12, 16, 2
    p = profile_model(MaskedAttention().eval(), torch.randint(0, 50, (b, s)), timing=False, progress=False)
    assert p.block_names == ("embed", "layers.0", "layers.1")
    assert p.is_chain                                            # the mask is recomputed, never transferred
    assert p.meta["replicated_nodes"] >= 2
    per_layer_linear = 2 * s * d * 3 * d
    per_layer_attention = 2 * (2 * h * s * s * (d // h))            # QK^T and AV
    np.testing.assert_allclose(p.fwd_flops, [0, per_layer_linear + per_layer_attention,
                                             per_layer_linear + per_layer_attention])
    assert p.kind_flops["attention"].sum() == 2 * per_layer_attention
    assert p.block_kinds == ("embedding", "linear", "linear")


def test_granularity_options() -> None:
    model = Residual()
    assert block_modules(model, "leaf") == ["stem", "a", "b", "head"]
    assert block_modules(nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Linear(2, 2)), 1) == ["0", "1"]
    seq = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), nn.Linear(2, 2))
    assert block_modules(seq, 2) == ["0.0", "0.1", "1"]
    p = profile_model(model.eval(), torch.randn(2, 8), granularity=["stem", "head"], timing=False, progress=False)
    assert p.block_names[0] == "stem" and p.block_names[-1] == "head"
    assert p.fwd_flops.sum() == 2 * (8 * 8 * 3 + 8 * 2)              # a and b run as glue inside a block
    with pytest.raises(ProfileError, match=r"`granularity` names 'nope', which is not a submodule"):
        block_modules(model, ["nope"])
    with pytest.raises(ProfileError, match=r"`granularity` = 'layer'; expected 'auto', 'leaf', a depth"):
        block_modules(model, "layer")
    with pytest.raises(ProfileError, match=r"`granularity` = 0; expected a depth >= 1"):
        block_modules(model, 0)


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if y.sum() > 0:                 # data-dependent control flow: torch.export cannot trace it
            y = y * 2
        return self.b(y)


def test_auto_falls_back_to_hooks_and_export_reports_failure() -> None:
    x = torch.ones(2, 4)
    with pytest.warns(RuntimeWarning, match="torch.export failed"):
        p = profile_model(DataDependent().eval(), x, granularity="leaf", **FAST)
    assert p.meta["tracer"] == "hooks" and p.block_names == ("a", "b")
    np.testing.assert_array_equal(p.fwd_flops, [32.0, 32.0])
    assert p.latency("cpu", 2).method == "hooks"
    with pytest.raises(ProfileError, match=r"torch.export failed on `DataDependent`: .*try method='hooks'"):
        profile_model(DataDependent().eval(), x, method="export", timing=False, progress=False)


def test_measurement_keys_and_options() -> None:
    model = mlp()
    p = profile_model(model, (torch.randn(3, 16),), device_name="my-laptop", batch_size=3, progress=True,
                      repeats=3, warmup=0)
    m = p.latency("my-laptop", 3, "fp32")
    assert m.repeats == 3 and m.block_time_iqr_s is not None and "eager_whole_time_s" in p.meta
    assert not model.training
    model.train()
    profile_model(model, torch.randn(3, 16), timing=False, progress=False)
    assert model.training                                # the mode is restored
    assert profile_model(model, torch.randn(3, 16), timing=False, progress=False).measurements == ()


def test_argument_errors() -> None:
    with pytest.raises(ProfileError, match=r"`module` = function; expected a torch.nn.Module"):
        profile_model(lambda x: x, torch.randn(1))  # type: ignore[arg-type]
    with pytest.raises(ProfileError, match=r"`method` = 'fx'; expected one of 'auto', 'export', 'hooks'"):
        profile_model(mlp(), torch.randn(1, 16), method="fx")
    with pytest.raises(ProfileError, match=r"`repeats` = 0; expected an integer >= 1"):
        profile_model(mlp(), torch.randn(1, 16), repeats=0)
    with pytest.raises(ProfileError, match=r"`example_inputs` holds no tensor; expected at least one input tensor"):
        profile_model(mlp(), (3,))


def test_copy_times_cover_each_blocks_state() -> None:
    from edgeplan.profiles.profiler import copy_times

    state = [[torch.zeros(1000), torch.zeros(10)], [], [torch.zeros(200_000)]]
    t = copy_times(state, torch.device("cpu"), warmup=1, repeats=3)
    assert t.shape == (3, 3) and (t[:, 0] > 0).all() and (t[:, 1] == 0).all() and (t[:, 2] > 0).all()
    assert profile_model(mlp(), torch.randn(2, 16), **FAST).measurements[0].h2d_time_s is None   # CPU: no copy


def test_replicated_recomputation_is_timed_per_block() -> None:
    p = profile_model(MaskedAttention().eval(), torch.randint(0, 50, (2, 12)), **FAST)
    m = p.measurements[0]
    assert m.replicated_time_s is not None and m.constants_time_s is not None and m.constants_time_s > 0
    assert m.replicated_time_s[0] == 0.0 and (m.replicated_time_s[1:] > 0).all()   # the layers rebuild the mask
    net = m.net_additivity_error
    assert net is not None
    expected = (m.block_time_s.sum() - m.replicated_time_s.sum() + m.constants_time_s) / m.whole_time_s - 1
    assert net == pytest.approx(expected)
    chain = p.to_chain()
    assert chain.measurements[0].replicated_time_s.sum() == pytest.approx(m.replicated_time_s.sum())


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 4), nn.Linear(4, 2), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, scale: float = 1.0, flag: bool | None = None) -> tuple:
        h = self.a(x) * scale
        return self.b(h), {"c": self.c(h)}


def test_non_tensor_keyword_inputs_and_multiple_outputs_export() -> None:
    p = profile_model(TwoHeads().eval(), torch.randn(2, 4), example_kwargs={"scale": 2.0, "flag": None}, **FAST)
    assert p.meta["tracer"] == "torch.export"
    assert p.block_names == ("a", "b", "c") and p.edges.tolist() == [[0, 1], [0, 2]]
    np.testing.assert_array_equal(p.out_bytes, [16.0, 8.0, 12.0])      # both heads are model outputs
    assert p.input_bytes == 16.0 and p.input_consumers.tolist() == [0]


def test_num_threads_is_applied_and_restored() -> None:
    before = torch.get_num_threads()
    p = profile_model(mlp(), torch.randn(2, 16), num_threads=1, **FAST)
    assert p.meta["threads"] == 1 and torch.get_num_threads() == before
    with pytest.raises(ProfileError, match=r"`num_threads` = 0; expected an integer >= 1"):
        profile_model(mlp(), torch.randn(2, 16), num_threads=0)
