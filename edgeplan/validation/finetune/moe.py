"""HFedMoE on a real MoE: budgeted expert updates in a Mixtral-style decoder.

:func:`moe_model` builds a Mixtral-style decoder from its ``transformers`` config (seeded, nothing downloaded);
:func:`expert_step` runs one batch, scores the experts of every MoE layer from the router's real probabilities
(:func:`~edgeplan.formulations.finetune.experts.expert_importance`), selects them under a budget (an
:class:`~edgeplan.formulations.finetune.experts.ExpertSelection` solved by any method: an expert's cost is the
tokens routed to it, the work of its backward pass) and lets only the selected experts' weights receive
gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


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


__all__ = ["ExpertStep", "expert_step", "moe_model"]
