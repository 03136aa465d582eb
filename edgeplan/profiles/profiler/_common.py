"""Shared pieces of the profiler: FLOP counting, op kinds, block selection, timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils import _pytree as pytree
from torch.utils import flop_counter as fc

from edgeplan.errors import ProfileError

_DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64",
                torch.int8: "int8", torch.uint8: "int8"}


# ------------------------------------------------------------------------------------------------------------
# FLOP counting


def _cpu_sdpa_flop(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None,
                   **kwargs: Any) -> int:
    return fc.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_bwd_flop(grad_out_shape: Any, query_shape: Any, key_shape: Any, value_shape: Any, *args: Any,
                       out_shape: Any = None, **kwargs: Any) -> int:
    return fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _conv_bwd_flop(grad_out_shape: Any, x_shape: Any, w_shape: Any, bias: Any, stride: Any, padding: Any,
                   dilation: Any, transposed: Any, output_padding: Any, groups: int, output_mask: Any,
                   out_shape: Any = None, **kwargs: Any) -> int:
    """Upstream ``conv_backward_flop`` with the weight-gradient term divided by ``groups``.

    Upstream counts grad-weight as a dense conv over all channel pairs, overcounting grouped and depthwise
    convolutions by the group count (e.g. 17x the true backward FLOPs of a 16-channel depthwise conv).
    """
    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding, groups)
    grad_in = fc.conv_backward_flop(*args, [output_mask[0], False, False], out_val=out_shape) if output_mask[0] else 0
    grad_w = fc.conv_backward_flop(*args, [False, output_mask[1], False], out_val=out_shape) if output_mask[1] else 0
    return int(grad_in) + int(grad_w) // max(int(groups), 1)


def _custom_flops() -> dict[Any, Any]:
    aten = torch.ops.aten
    out: dict[Any, Any] = {aten.convolution_backward: _conv_bwd_flop}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        out[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flop
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        out[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_sdpa_bwd_flop
    return out


def flop_counter() -> fc.FlopCounterMode:
    """A silent ``FlopCounterMode`` that also counts CPU flash attention (missing upstream) and counts the
    weight gradient of grouped convolutions correctly (overcounted upstream)."""
    return fc.FlopCounterMode(display=False, custom_mapping=_custom_flops())


# ------------------------------------------------------------------------------------------------------------
# op kinds

_KIND_OF_OP = {
    "conv": ("convolution", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
             "conv_transpose3d", "_convolution", "cudnn_convolution", "mkldnn_convolution"),
    "linear": ("linear", "addmm", "mm", "matmul", "bmm", "baddbmm", "einsum", "addbmm", "_addmm_activation"),
    "attention": ("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
                  "_scaled_dot_product_efficient_attention", "_scaled_dot_product_flash_attention"),
    "embedding": ("embedding", "embedding_bag"),
    "norm": ("batch_norm", "layer_norm", "group_norm", "instance_norm", "native_batch_norm", "native_layer_norm",
             "native_group_norm", "rms_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit",
             "_fused_rms_norm"),
    "pool": ("max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
             "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool2d",
             "max_pool2d_with_indices", "_adaptive_avg_pool2d"),
}
_OP_TO_KIND = {op: kind for kind, ops in _KIND_OF_OP.items() for op in ops}
_TRIVIAL = {"view", "reshape", "_unsafe_view", "expand", "permute", "transpose", "t", "unsqueeze", "squeeze",
            "slice", "select", "flatten", "unflatten", "alias", "detach", "dropout", "dropout_", "feature_dropout",
            "feature_dropout_", "alpha_dropout", "alpha_dropout_",
            "_assert_tensor_metadata", "_assert_scalar", "sym_size", "sym_numel", "sym_stride", "lift_fresh_copy",
            "getitem", "split", "split_with_sizes", "chunk", "unbind", "view_as", "expand_as", "identity",
            "as_strided", "_assert_async"}
_MATMUL_NAMES = set(_KIND_OF_OP["linear"])


def _op_name(target: Any) -> str:
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        return packet.__name__
    return getattr(target, "__name__", str(target))


def _module_kind(type_name: str) -> str | None:
    low = type_name.lower()
    for key, kind in (("norm", "norm"), ("pool", "pool"), ("embedding", "embedding")):
        if key in low:
            return kind
    return None


def _nbytes(value: Any) -> int:
    return sum(t.numel() * t.element_size() for t in pytree.tree_leaves(value) if isinstance(t, torch.Tensor))


# ------------------------------------------------------------------------------------------------------------
# block selection on the module tree


def _is_repeated(mod: torch.nn.Module) -> bool:
    kids = list(mod.children())
    return (isinstance(mod, torch.nn.ModuleList | torch.nn.Sequential) and len(kids) >= 2
            and len({type(k) for k in kids}) == 1)


def block_modules(module: torch.nn.Module, granularity: Any = "auto") -> list[str]:
    """Qualified names of the modules that become blocks under ``granularity`` (see the module docstring)."""
    names = dict(module.named_modules())
    if isinstance(granularity, str) and granularity == "leaf":
        out = [n for n, m in names.items() if n and not list(m.children())]
        return out or [""]
    if isinstance(granularity, int) and not isinstance(granularity, bool):
        if granularity < 1:
            raise ProfileError(f"`granularity` = {granularity}; expected a depth >= 1")
        cut = {".".join(n.split(".")[:granularity]) for n in names if n}
        return sorted(c for c in cut if not any(o != c and o.startswith(c + ".") for o in cut))
    if isinstance(granularity, list | tuple):
        bad = [g for g in granularity if g not in names]
        if bad:
            raise ProfileError(f"`granularity` names {bad[0]!r}, which is not a submodule; expected module names "
                               "such as " + ", ".join(repr(n) for n in list(names)[1:4]))
        return list(granularity)
    if granularity != "auto":
        raise ProfileError(f"`granularity` = {granularity!r}; expected 'auto', 'leaf', a depth (int) or a list of "
                           "module names")
    has_rep: dict[int, bool] = {}

    def contains_repeated(m: torch.nn.Module) -> bool:
        if id(m) not in has_rep:
            has_rep[id(m)] = _is_repeated(m) or any(contains_repeated(k) for k in m.children())
        return has_rep[id(m)]

    out: list[str] = []

    def visit(m: torch.nn.Module, path: str, unit: bool) -> None:
        kids = list(m.named_children())

        def join(n: str) -> str:
            return f"{path}.{n}" if path else n

        if unit:
            if len(kids) == 1 and _is_repeated(kids[0][1]):        # a wrapper such as a ResNet stage
                for n, k in kids[0][1].named_children():
                    visit(k, f"{join(kids[0][0])}.{n}", True)
            else:
                out.append(path)
            return
        if not kids or not contains_repeated(m):
            out.append(path)
            return
        for n, k in kids:
            if _is_repeated(k):
                for n2, k2 in k.named_children():
                    visit(k2, f"{join(n)}.{n2}", True)
            else:
                visit(k, join(n), False)

    visit(module, "", False)
    if len(out) < 2:
        return block_modules(module, "leaf")
    return out


# ------------------------------------------------------------------------------------------------------------
# timing


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Clock:
    """Wall clock on CPU; CUDA events on GPU (read after a synchronize)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.device = device

    def time(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            return start.elapsed_time(stop) / 1e3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def _stats(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q1, med, q3 = np.percentile(samples, [25, 50, 75], axis=0)
    return med, q3 - q1


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool | None) -> Any:
    """A tqdm bar (``enabled=None``: only on a terminal); a silent stand-in when tqdm is missing or off."""
    if enabled is False:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        return _NoBar()
    return tqdm(total=total, desc=desc, leave=False, disable=None if enabled is None else False)
