r"""Cut a real torch model into the blocks of its profile and run any set of blocks as one stage.

:func:`block_graph` exports the model with ``torch.export`` and groups the ATen nodes into blocks with the
profiler's own grouping (:mod:`edgeplan.profiles.profiler._export`: ``_Graph``, ``_block_keys``,
``_group``), so block :math:`v` here is block :math:`v` of a profile measured with the same granularity
(the names are checked). :meth:`BlockGraph.stage` turns a set of blocks into a callable sub-graph:

* its inputs are the model inputs and the values of other blocks it reads, named by their graph node;
* its outputs are the values it produces that other blocks read, or that the model returns;
* parameters, buffers and constants are bound in; nodes that depend on no input (masks, position ids) are
  recomputed inside the stage, as the profiler does.

The profiler does not return its per-block sub-graphs, so this module rebuilds them from its grouping helpers
(an internal interface of the profiler; if it changes, :func:`block_graph` fails loudly on the name check).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils import _pytree as pytree

from edgeplan.errors import ProfileError
from edgeplan.profiles.model import ModelProfile
from edgeplan.profiles.profiler._export import block_members, external_inputs

#: Placeholder kinds bound into a stage (not runtime inputs).
_FROZEN = ("PARAMETER", "BUFFER", "CONSTANT_TENSOR", "CONSTANT_ARG")


@dataclass
class Stage:
    """A callable sub-graph: ``run(values) -> outputs`` where both map node names to tensors."""

    blocks: tuple[int, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    module: torch.fx.GraphModule
    frozen: dict[str, Any]
    arg_names: tuple[str, ...]

    def run(self, values: dict[str, Any]) -> dict[str, Any]:
        args = [self.frozen[n] if n in self.frozen else values[n] for n in self.arg_names]
        out = self.module(*args)
        return dict(zip(self.outputs, out, strict=True))

    def as_module(self) -> torch.nn.Module:
        """A ``nn.Module`` taking :attr:`inputs` positionally and returning :attr:`outputs` as a tuple, with the
        parameters and constants held as (detached) buffers, for ``torch.onnx.export`` and ``torch.jit``."""
        return _StageModule(self)


class _StageModule(torch.nn.Module):
    def __init__(self, stage: Stage) -> None:
        super().__init__()
        self.graph_module = stage.module
        self.arg_names = stage.arg_names
        self.input_index = {n: i for i, n in enumerate(stage.inputs)}
        self.slots = {}
        for k, n in enumerate(stage.arg_names):
            if n in stage.frozen:
                v = stage.frozen[n]
                if isinstance(v, torch.Tensor):
                    self.register_buffer(f"c{k}", v.detach().clone())
                    self.slots[n] = f"c{k}"
                else:
                    self.slots[n] = v

    def forward(self, *xs: Any) -> tuple[Any, ...]:
        args = []
        for n in self.arg_names:
            if n in self.input_index:
                args.append(xs[self.input_index[n]])
            else:
                slot = self.slots[n]
                args.append(getattr(self, slot) if isinstance(slot, str) else slot)
        return tuple(self.graph_module(*args))


class BlockGraph:
    """The exported graph of a model with its nodes grouped into the profile's blocks."""

    def __init__(self, module: torch.nn.Module, example_inputs: Any, *, granularity: Any = "auto",
                 profile: ModelProfile | None = None) -> None:
        from edgeplan.profiles.profiler._common import block_modules
        from edgeplan.profiles.profiler._export import _block_keys, _Graph, _group

        args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
        module.eval()
        with torch.no_grad():
            ep = torch.export.export(module, args, strict=False)
        if "kwargs" in inspect.signature(_Graph.__init__).parameters:      # the profiler's newer interface
            g = _Graph(ep, args, {}, backward=False, progress=False)
        else:
            g = _Graph(ep, pytree.tree_leaves((args, {})), backward=False, progress=False)
        groups = _group(g, _block_keys(g, block_modules(module, granularity)))
        self.names = tuple(name for name, _ in groups)
        if profile is not None and self.names != tuple(profile.block_names):
            raise ProfileError(f"`{type(module).__name__}` splits into {len(self.names)} blocks {self.names[:3]}...; "
                               f"the profile `{profile.name}` has {profile.n_blocks} blocks "
                               f"{tuple(profile.block_names[:3])}...; expected the same granularity and inputs")
        self.graph = g
        self.block_of = {n: b for b, (_, ns) in enumerate(groups) for n in ns}
        self.consts = {n for n in g.nodes if n.op == "call_function" and not g.dep[n]}
        self.outputs = list(g.output_nodes)
        self.user_inputs = [n for n in g.nodes if g.kind_of_placeholder.get(n) == "USER_INPUT"]
        self.n_blocks = len(groups)
        self.example = {n.name: g.env[n] for n in self.user_inputs}

    def value(self, name: str) -> Any:
        """The value a node took when the graph was built (reference outputs, shapes)."""
        for n in self.graph.nodes:
            if n.name == name:
                return self.graph.env[n]
        raise KeyError(name)

    def stage(self, blocks: Iterable[int]) -> Stage:
        """The sub-graph running ``blocks`` (any set; see the module docstring)."""
        g = self.graph
        chosen = {int(b) for b in blocks}
        own = [n for n in g.nodes if self.block_of.get(n) in chosen]
        members, _ = block_members(g.nodes, own, self.consts)
        member_set = set(members)
        ext = external_inputs(members)
        out_set = set(self.outputs)
        outs = [n for n in own if n in out_set or any(u not in member_set and u.op != "output" for u in n.users)]
        graph = torch.fx.Graph()
        remap = {i: graph.placeholder(f"in_{i.name}") for i in ext}
        for n in members:
            remap[n] = graph.node_copy(n, remap.__getitem__)
        graph.output(tuple(remap[n] for n in outs))
        gm = torch.fx.GraphModule(torch.nn.Module(), graph)
        frozen = {i.name: g.env[i] for i in ext
                  if i.op == "get_attr" or g.kind_of_placeholder.get(i) in _FROZEN}
        return Stage(blocks=tuple(sorted(chosen)), inputs=tuple(i.name for i in ext if i.name not in frozen),
                     outputs=tuple(n.name for n in outs), module=gm, frozen=frozen,
                     arg_names=tuple(i.name for i in ext))

    def producer(self, name: str) -> int:
        """The block producing node ``name`` (-1 for a model input)."""
        for n in self.graph.nodes:
            if n.name == name:
                return int(self.block_of.get(n, -1))
        raise KeyError(name)

    def output_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.outputs)

    def reference(self) -> dict[str, Any]:
        """The model outputs (by node name) of the build run."""
        return {n.name: self.graph.env[n] for n in self.outputs}


def block_graph(module: torch.nn.Module, example_inputs: Any, profile: ModelProfile) -> BlockGraph:
    """A :class:`BlockGraph` grouped like ``profile`` (its ``meta['granularity']``; names checked)."""
    gran = profile.meta.get("granularity", "auto")
    if isinstance(gran, str) and gran.lstrip("-").isdigit():
        gran = int(gran)
    return BlockGraph(module, example_inputs, granularity=gran, profile=profile)


def tensor_bytes(values: Iterable[Any]) -> float:
    """Bytes of the tensors among ``values``."""
    return float(sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor)))


def uaq(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, float, float]:
    r"""Uniform affine quantization (COACH's UAQ) of a float tensor to ``bits``: codes, scale, zero point.

    :math:`\Delta = (x_{\max} - x_{\min})/(2^b - 1)`, :math:`z = \mathrm{round}(-x_{\min}/\Delta)`,
    :math:`q = \mathrm{clip}(\mathrm{round}(x/\Delta) + z, 0, 2^b - 1)`.
    """
    lo, hi = torch.aminmax(x)
    lo, hi = float(lo), float(hi)
    levels = (1 << bits) - 1
    scale = (hi - lo) / levels if hi > lo else 1.0
    zero = round(-lo / scale)
    q = torch.clamp(torch.round(x * (1.0 / scale)) + zero, 0, levels)
    return q, scale, float(zero)


def dequantize(codes: torch.Tensor, scale: float, zero: float) -> torch.Tensor:
    r""":math:`\hat x = \Delta (q - z)` in float32."""
    return (codes.to(torch.float32) - zero) * scale


def _slot(bits: int) -> int:
    """The packed slot width for ``bits`` (1, 2, 4 or 8)."""
    return next(w for w in (1, 2, 4, 8) if w >= bits)


def pack_codes(q: torch.Tensor, bits: int) -> np.ndarray:
    """Codes as the bytes a link carries: 1, 2, 4 and 8 bits packed exactly (other widths up to 8 in the next of
    those), wider codes as uint16/uint32."""
    if bits > 8:
        return q.reshape(-1).to(torch.int32).numpy().astype(np.uint16 if bits <= 16 else np.uint32).view(np.uint8)
    v = q.reshape(-1).to(torch.uint8)
    w = _slot(bits)
    per = 8 // w
    if per == 1:
        return v.numpy()
    pad = (-v.numel()) % per
    if pad:
        v = torch.cat([v, v.new_zeros(pad)])
    v = v.reshape(-1, per)
    out = v[:, 0].clone()
    for i in range(1, per):
        out |= v[:, i] << (i * w)
    return out.numpy()


def unpack_codes(buf: np.ndarray, bits: int, n: int) -> torch.Tensor:
    """Inverse of :func:`pack_codes`: ``n`` codes as a tensor."""
    if bits > 8:
        return torch.from_numpy(buf.view(np.uint16 if bits <= 16 else np.uint32)[:n].astype(np.int32))
    b = torch.from_numpy(buf if buf.flags.writeable and buf.flags.c_contiguous else buf.copy())
    w = _slot(bits)
    per = 8 // w
    if per == 1:
        return b[:n]
    mask = (1 << w) - 1
    cols = [(b >> (i * w)) & mask for i in range(per)]
    return torch.stack(cols, dim=1).reshape(-1)[:n]


__all__ = ["BlockGraph", "Stage", "block_graph", "dequantize", "pack_codes", "tensor_bytes", "uaq", "unpack_codes"]
