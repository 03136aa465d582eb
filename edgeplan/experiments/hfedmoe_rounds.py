r"""HFedMoE for real: federated rounds of budgeted expert fine-tuning on a Mixtral-style MoE.

N devices share a seeded Mixtral-style decoder (:func:`~edgeplan.validation.finetune.moe.moe_model`) and hold
Dirichlet mixtures of synthetic domains (:func:`~edgeplan.experiments.finetune_rounds.domain_task`). The
experts and routers train; embeddings, attention and norms stay frozen. Each local step runs
:func:`~edgeplan.validation.finetune.moe.expert_step`: device :math:`i` updates, in every MoE layer, only the
experts a method selects under its budget :math:`b_i` (a share of the batch's routed tokens, the work of the
experts' backward), with plain SGD, so an unselected expert does not move. Each round the server aggregates:

* ``"hfedmoe"``: every expert by :func:`~edgeplan.formulations.finetune.experts.sparsity_aware_expert_average`
  (the devices whose mean router probability :math:`u_c(e) \ge \tau`, data-weighted), and every router by the
  weights of :func:`~edgeplan.formulations.finetune.experts.gating_weights` (usage times importance);
* ``"fedavg"``: every tensor data-weighted.

Budgets bound each device's work per step, so a round costs the same for every selection method at the same
budgets: methods are compared on the held-out loss after each round. (On this host a masked expert's backward
still runs; the time a device saves is the planner's model, not measured here.)
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from edgeplan.errors import ProblemDataError
from edgeplan.experiments.finetune_rounds import domain_task
from edgeplan.formulations.finetune.experts import gating_weights, sparsity_aware_expert_average
from edgeplan.validation.finetune.fedbe import domain_mixture
from edgeplan.validation.finetune.moe import expert_step, moe_model

AGGREGATIONS = ("hfedmoe", "fedavg")


def _trainable(model: Any) -> list[torch.nn.Parameter]:
    out = []
    for n, p in model.named_parameters():
        p.requires_grad_(".mlp." in n)  # experts and routers
        if p.requires_grad:
            out.append(p)
    return out


def aggregate_moe(models: list[Any], usage: np.ndarray, scores: np.ndarray, data: np.ndarray, tau: float,
                  how: str = "hfedmoe") -> dict[str, torch.Tensor]:
    """The global state from the devices' models (see the module docstring).

    Parameters
    ----------
    models
        The C devices' trained models (same architecture).
    usage, scores
        ``(C, layers, E)``: each device's mean router probability and mean importance per MoE layer and expert.
    data
        ``(C,)`` data sizes.
    tau
        :math:`\\tau`, the usage threshold.
    how
        ``"hfedmoe"`` or ``"fedavg"``.
    """
    if how not in AGGREGATIONS:
        raise ProblemDataError(f"`how` = {how!r}; expected one of {', '.join(AGGREGATIONS)}")
    states = [m.state_dict() for m in models]
    w = np.asarray(data, dtype=float) / max(float(np.sum(data)), 1e-300)
    out = {k: sum(s[k] * float(wi) for s, wi in zip(states, w, strict=True)) for k in states[0]}
    if how == "fedavg":
        return out
    for layer in range(usage.shape[1]):
        prefix = f"model.layers.{layer}.mlp."
        for key in (k for k in states[0] if k.startswith(prefix + "experts.")):
            stack = torch.stack([s[key] for s in states])  # (C, E, ...)
            flat = stack.reshape(stack.shape[0], stack.shape[1], -1).double().numpy()
            avg = sparsity_aware_expert_average(flat, usage[:, layer], data, tau)
            out[key] = torch.as_tensor(avg, dtype=stack.dtype).reshape(stack.shape[1:])
        alpha = gating_weights(usage[:, layer], scores[:, layer], tau)
        gate = prefix + "gate.weight"
        out[gate] = sum(s[gate] * float(a) for s, a in zip(states, alpha, strict=True))
    return out


def run_hfedmoe(budgets: Any, *, method: str = "expert-dp", aggregation: str = "hfedmoe", rounds: int = 6,
                local_steps: int = 5, batch: int = 8, seq_len: int = 16, lr: float = 0.5, tau: float = 0.05,
                n_experts: int = 8, top_k: int = 2, n_domains: int = 4, dirichlet_alpha: float = 0.5,
                seed: int = 0) -> list[float]:
    """Held-out loss after round 0 (start) .. ``rounds`` of HFedMoE fine-tuning (see the module docstring).

    Parameters
    ----------
    budgets
        ``(N,)`` per device, the share of a batch's routed tokens its selected experts may take, in [0, 1].
    method
        The selection method (``expert-dp``, ``hfedmoe``, ``router-topk``, or any method of
        :class:`~edgeplan.formulations.finetune.experts.ExpertSelection`).
    aggregation
        ``"hfedmoe"`` or ``"fedavg"``.
    rounds, local_steps, batch, seq_len, lr
        Rounds, SGD steps per device and round, sequences per step, tokens per sequence, learning rate.
    tau
        Usage threshold of the aggregation.
    n_experts, top_k
        Experts per MoE layer and experts per token.
    n_domains, dirichlet_alpha, seed
        The devices' domain mixtures (:func:`~edgeplan.validation.finetune.fedbe.domain_mixture`) and the seed of
        the model, the data and the batches.
    """
    b = np.asarray(budgets, dtype=float)
    if b.ndim != 1 or b.size < 1 or not ((b >= 0) & (b <= 1)).all():
        raise ProblemDataError(f"`budgets` = {budgets!r}; expected a non-empty list of shares in [0, 1]")
    if aggregation not in AGGREGATIONS:
        raise ProblemDataError(f"`aggregation` = {aggregation!r}; expected one of {', '.join(AGGREGATIONS)}")
    glob = moe_model(n_experts, top_k, seed=seed)
    counts = domain_mixture(b.size, n_domains, dirichlet_alpha, seed=seed + 1)
    shards, held = domain_task(counts, seq_len, vocab=glob.config.vocab_size, seed=seed)
    data = counts.sum(axis=1)
    gen = torch.Generator().manual_seed(seed)
    n_layers = glob.config.num_hidden_layers

    def loss() -> float:
        with torch.no_grad():
            return float(glob(input_ids=held, labels=held).loss)

    curve = [loss()]
    for _ in range(rounds):
        models, usage, scores = [], np.zeros((b.size, n_layers, n_experts)), np.zeros((b.size, n_layers, n_experts))
        for i, share in enumerate(b):
            local = copy.deepcopy(glob)
            opt = torch.optim.SGD(_trainable(local), lr=lr)
            for _ in range(local_steps):
                ids = shards[i][torch.randint(shards[i].shape[0], (batch,), generator=gen)]
                step = expert_step(local, ids, method=method, budget_fraction=float(share))
                opt.step()
                opt.zero_grad()
                usage[i] += np.array([s.router_score for s in step.selections]) / local_steps
                scores[i] += np.array([s.importance for s in step.selections]) / local_steps
            models.append(local)
        glob.load_state_dict(aggregate_moe(models, usage, scores, data, tau, aggregation))
        curve.append(loss())
    return curve


__all__ = ["AGGREGATIONS", "aggregate_moe", "run_hfedmoe"]
