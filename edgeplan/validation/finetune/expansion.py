"""FedBE and HFedMoE on real models: LLaMA-Pro block expansion, and budgeted expert updates in a Mixtral MoE.

* :func:`expand_blocks` appends a copy of a decoder block after every :math:`L/J`-th block with its output
  projections zeroed (LLaMA-Pro), so the expanded model computes exactly what the original did;
  :func:`train_only` leaves the assigned expanded blocks trainable and freezes everything else.
* :func:`moe_model` builds a Mixtral-style decoder from its ``transformers`` config (seeded, nothing
  downloaded); :func:`expert_step` runs one batch, scores the experts of every MoE layer from the router's real
  probabilities (:func:`~edgeplan.formulations.finetune.experts.expert_importance`), selects them under a budget
  (an :class:`~edgeplan.formulations.finetune.experts.ExpertSelection` solved by any method: an expert's cost
  is the tokens routed to it, the work of its backward pass) and lets only the selected experts' weights
  receive gradients.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
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


def moe_model(n_experts: int = 8, top_k: int = 2, *, n_layers: int = 2, hidden: int = 64, vocab: int = 256,
              seed: int = 0) -> Any:
    """A Mixtral-style decoder from ``MixtralConfig`` with seeded weights (nothing downloaded), in eval mode."""
    from transformers import MixtralConfig, MixtralForCausalLM

    cfg = MixtralConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=n_layers,
                        num_attention_heads=4, num_key_value_heads=2, num_local_experts=n_experts,
                        num_experts_per_tok=top_k, vocab_size=vocab, max_position_embeddings=512, use_cache=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MixtralForCausalLM(cfg).eval()


@dataclass(frozen=True, slots=True)
class ExpertStep:
    """One budgeted MoE step.

    Attributes
    ----------
    selections
        Per MoE layer: the :class:`~edgeplan.formulations.finetune.experts.ExpertSelection` built from the
        batch's router probabilities.
    selected
        Per layer: the experts the method chose (they alone receive gradients).
    loss
        The batch's loss.
    """

    selections: list[Any]
    selected: list[tuple[int, ...]]
    loss: float


def expert_step(model: Any, input_ids: torch.Tensor, *, method: str = "expert-dp", budget_fraction: float = 0.5,
                lam: float = 0.5, beta: float = 0.1) -> ExpertStep:
    """Forward ``input_ids`` (labels = inputs), select each MoE layer's experts under ``budget_fraction`` of the
    routed tokens with ``method``, and backpropagate with the other experts' gradients masked to zero."""
    from edgeplan.formulations.finetune.experts import ExpertSelection, expert_importance
    from edgeplan.solvers.api import solve

    out = model(input_ids=input_ids, labels=input_ids, output_router_logits=True)
    k = model.config.num_experts_per_tok
    selections, selected, handles = [], [], []
    layers = [layer.mlp for layer in model.model.layers]
    for logits, moe in zip(out.router_logits, layers, strict=True):
        gates = torch.softmax(logits.detach().float(), dim=-1).numpy()
        routed_tokens = np.bincount(np.argsort(-gates, axis=1)[:, :k].ravel(), minlength=gates.shape[1])
        sel = ExpertSelection(importance=expert_importance(gates, lam=lam, beta=beta),
                              cost=routed_tokens.astype(float),
                              budget=float(np.floor(budget_fraction * routed_tokens.sum())),
                              routed=routed_tokens > 0, router_score=gates.mean(axis=0))
        r = solve(sel, method)
        chosen = tuple(r.plan.selected) if r.has_plan else ()
        mask = torch.zeros(gates.shape[1])
        mask[list(chosen)] = 1.0
        for p in moe.experts.parameters():  # fused (E, ...) tensors: zero the unselected experts' rows
            handles.append(p.register_hook(lambda g, m=mask: g * m.view(-1, *([1] * (g.dim() - 1)))))
        selections.append(sel)
        selected.append(chosen)
    try:
        out.loss.backward()
    finally:
        for h in handles:
            h.remove()
    return ExpertStep(selections, selected, float(out.loss.detach()))


__all__ = ["EXPANDABLE", "ExpertStep", "expand_blocks", "expert_step", "moe_model", "train_only"]
