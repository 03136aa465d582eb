r"""Activations saved for backward, counted exactly and stored quantized: FedQuad's memory saving, for real.

:class:`SavedTensors` is a pair of ``torch.autograd.graph.saved_tensors_hooks``: every tensor autograd saves
for backward passes through its ``pack``, which

* counts the bytes of what is kept (a storage saved twice counts once; parameters are not activations);
* inside a :meth:`SavedTensors.quantized` scope, stores a floating tensor in ``bits``-bit integers with one
  fp32 scale per ``group`` consecutive elements (symmetric, round to nearest; two 4-bit values per byte) and
  dequantizes it in ``unpack`` when backward needs it.

So the gradients that backward computes use the dequantized activations (compared with full precision in the
tests), and the bytes counted are the bytes that stay allocated between forward and backward.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from edgeplan.errors import ProblemDataError


@dataclass(slots=True)
class Packed:
    """A quantized tensor: integer codes, per-group scales, and what is needed to rebuild it."""

    codes: torch.Tensor
    scales: torch.Tensor
    shape: torch.Size
    dtype: torch.dtype
    numel: int
    bits: int
    group: int

    @property
    def nbytes(self) -> int:
        return self.codes.numel() * self.codes.element_size() + self.scales.numel() * self.scales.element_size()


def quantize(t: torch.Tensor, bits: int, group: int) -> Packed:
    """Symmetric per-group quantization of ``t`` to ``bits`` (8, 4 or 2) bits."""
    if bits not in (2, 4, 8):
        raise ProblemDataError(f"`bits` = {bits!r}; expected 2, 4 or 8")
    flat = t.detach().reshape(-1).float()
    n = flat.numel()
    pad = (-n) % group
    if pad:
        flat = torch.nn.functional.pad(flat, (0, pad))
    g = flat.view(-1, group)
    qmax = 2 ** (bits - 1) - 1
    scales = g.abs().amax(dim=1).clamp_min(1e-30) / qmax
    q = torch.round(g / scales[:, None]).clamp_(-qmax - 1, qmax).to(torch.int8).reshape(-1)
    if bits < 8:
        per = 8 // bits
        u = (q + 2 ** (bits - 1)).to(torch.uint8).view(-1, per)  # offset to unsigned, pack per byte
        shifts = torch.arange(per, dtype=torch.uint8) * bits
        q = (u << shifts).sum(dim=1, dtype=torch.uint8) if per > 1 else u.reshape(-1)
    return Packed(q[: math.ceil(n * bits / 8)].clone(), scales.to(torch.float32), t.shape, t.dtype, n, bits, group)


def dequantize(p: Packed) -> torch.Tensor:
    """The float tensor :func:`quantize` stored."""
    q = p.codes
    if p.bits < 8:
        per = 8 // p.bits
        shifts = torch.arange(per, dtype=torch.uint8) * p.bits
        q = ((q[:, None] >> shifts) & ((1 << p.bits) - 1)).reshape(-1).to(torch.int16) - 2 ** (p.bits - 1)
    q = q[: p.numel].float()
    q = torch.nn.functional.pad(q, (0, p.scales.numel() * p.group - p.numel))
    x = (q.view(-1, p.group) * p.scales[:, None]).reshape(-1)[: p.numel]
    return x.view(p.shape).to(p.dtype)


@dataclass
class SavedTensors:
    """Counts (and optionally quantizes) what autograd saves for backward (see the module docstring).

    Use ``with saved:`` around a training step's forward; ``with saved.quantized(bits):`` around the layers
    whose activations are stored quantized (nested inside). ``saved.bytes`` is the total kept,
    ``saved.by_scope`` the bytes per scope label, ``saved.floats_by_scope`` the floating elements kept at full
    precision per scope (what quantization would compress).

    Attributes
    ----------
    parameters
        Storage addresses of the model's parameters (never counted).
    group
        Elements per quantization scale.
    bytes, by_scope, floats_by_scope
        What was kept: in all, per scope, and floating elements at full precision per scope.
    """

    parameters: set[int] = field(default_factory=set)
    group: int = 64
    bytes: int = 0
    by_scope: dict[str, int] = field(default_factory=dict)
    floats_by_scope: dict[str, int] = field(default_factory=dict)
    _seen: dict[int, Any] = field(default_factory=dict)
    _scope: list[tuple[str, int]] = field(default_factory=lambda: [("outside", 0)])
    _stack: contextlib.ExitStack | None = None

    @classmethod
    def for_model(cls, model: torch.nn.Module, group: int = 64) -> SavedTensors:
        return cls(parameters={p.untyped_storage().data_ptr() for p in model.parameters()}, group=group)

    def _pack(self, t: torch.Tensor) -> Any:
        ptr = t.untyped_storage().data_ptr()
        if ptr in self.parameters:
            return t
        label, bits = self._scope[-1]
        if bits and t.is_floating_point() and t.numel() > 0:
            # the same view saved twice is stored once; a freed tensor's address may be reused by a new one,
            # so an entry counts only while the tensor it was made from is alive
            key = (ptr, t.storage_offset(), tuple(t.shape), tuple(t.stride()))
            entry = self._seen.get(key)
            if entry is None or entry[0]() is None:
                entry = (weakref.ref(t), quantize(t, bits, self.group))
                self._seen[key] = entry
                self._count(label, entry[1].nbytes)
            return entry[1]
        if ptr not in self._seen:
            self._seen[ptr] = True
            self._count(label, t.untyped_storage().nbytes())
            if t.is_floating_point():
                self.floats_by_scope[label] = self.floats_by_scope.get(label, 0) + t.numel()
        return t

    @staticmethod
    def _unpack(obj: Any) -> torch.Tensor:
        return dequantize(obj) if isinstance(obj, Packed) else obj

    def _count(self, label: str, n: int) -> None:
        self.bytes += n
        self.by_scope[label] = self.by_scope.get(label, 0) + n

    def __enter__(self) -> SavedTensors:
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack))
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._stack is not None
        self._stack.close()
        self._seen.clear()

    @contextlib.contextmanager
    def scope(self, label: str, bits: int = 0) -> Iterator[None]:
        """Attribute what is saved inside to ``label``; ``bits`` > 0 stores it quantized."""
        self._scope.append((label, bits))
        try:
            yield
        finally:
            self._scope.pop()

    def attach(self, blocks: list[torch.nn.Module], bits: list[int]) -> list[Any]:
        """Scope ``blocks[l]`` as ``"block{l}"`` with ``bits[l]`` (0: full precision) through forward hooks;
        returns the hook handles (remove them after the step)."""
        handles = []
        for i, (blk, b) in enumerate(zip(blocks, bits, strict=True)):
            holder: dict[str, Any] = {}

            def pre(_m: Any, _a: Any, i: int = i, b: int = b, holder: dict = holder) -> None:
                holder["cm"] = self.scope(f"block{i}", b)
                holder["cm"].__enter__()

            def post(_m: Any, _a: Any, _o: Any, holder: dict = holder) -> None:
                holder.pop("cm").__exit__(None, None, None)

            handles += [blk.register_forward_pre_hook(pre), blk.register_forward_hook(post)]
        return handles


__all__ = ["Packed", "SavedTensors", "dequantize", "quantize"]
