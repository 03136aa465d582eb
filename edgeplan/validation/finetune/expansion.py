"""FedBE on real models: LLaMA-Pro block expansion.

:func:`expand_blocks` appends a copy of a decoder block after every :math:`L/J`-th block with its output
projections zeroed (LLaMA-Pro), so the expanded model computes exactly what the original did;
:func:`train_only` leaves the assigned expanded blocks trainable and freezes everything else.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from edgeplan.errors import ProblemDataError

#: Per architecture: the blocks' ModuleList attribute path and the output projections zeroed in a new block.
EXPANDABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "llama_small": ("model.layers", ("self_attn.o_proj", "mlp.down_proj")),
    "gpt2": ("transformer.h", ("attn.c_proj", "mlp.c_proj")),
}


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def expand_blocks(module: torch.nn.Module, name: str, n_blocks: int) -> list[int]:
    """Append ``n_blocks`` zero-output copies of blocks into ``module`` (a zoo ``llama_small`` or ``gpt2``),
    one after every ``L / n_blocks``-th block; returns the new blocks' indices in the expanded list."""
    if name not in EXPANDABLE:
        raise ProblemDataError(f"`name` = {name!r}; expected one of {', '.join(EXPANDABLE)}")
    path, zeroed = EXPANDABLE[name]
    blocks = _get(module, path)
    L = len(blocks)
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or not 1 <= n_blocks <= L:
        raise ProblemDataError(f"`n_blocks` = {n_blocks!r}; expected an integer in 1..{L}")
    after = {(j + 1) * L // n_blocks - 1 for j in range(n_blocks)}
    new, added = [], []
    for i, blk in enumerate(blocks):
        new.append(blk)
        if i in after:
            twin = copy.deepcopy(blk)
            for proj in zeroed:
                lin = _get(twin, proj)
                torch.nn.init.zeros_(lin.weight)
                if getattr(lin, "bias", None) is not None:
                    torch.nn.init.zeros_(lin.bias)
            added.append(len(new))
            new.append(twin)
    for k, blk in enumerate(new):  # attention layers know their index (caches); keep it consistent
        attn = getattr(blk, "self_attn", None) or getattr(blk, "attn", None)
        if attn is not None and hasattr(attn, "layer_idx"):
            attn.layer_idx = k
    parent_path, _, attr = path.rpartition(".")
    setattr(_get(module, parent_path), attr, torch.nn.ModuleList(new))
    cfg = module.config
    for key in ("num_hidden_layers", "n_layer"):
        if hasattr(cfg, key):
            setattr(cfg, key, len(new))
    if hasattr(cfg, "layer_types") and cfg.layer_types is not None:
        cfg.layer_types = [cfg.layer_types[0]] * len(new)
    return added


def train_only(module: torch.nn.Module, name: str, blocks: list[int]) -> list[torch.nn.Parameter]:
    """Freeze ``module`` except the blocks at ``blocks`` (indices in the expanded list); returns their params."""
    everything = _get(module, EXPANDABLE[name][0])
    for p in module.parameters():
        p.requires_grad_(False)
    out = []
    for b in blocks:
        for p in everything[b].parameters():
            p.requires_grad_(True)
            out.append(p)
    return out


__all__ = ["EXPANDABLE", "expand_blocks", "train_only"]
