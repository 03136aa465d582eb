"""Federated fine-tuning configuration: which part of a large model each device trains in a round.

* :class:`FineTuneRound`: one configuration per device from its candidate table (FedQuad's LoRA depth and
  activation-quantization layers, FedBE's expanded blocks), a synchronous round, progress per second;
* :class:`ExpertSelection`: HFedMoE's budgeted choice of the experts a device updates in a batch;
* candidate builders and HFedMoE's importance and aggregation functions (:mod:`.candidates`, :mod:`.experts`).

Seeded instances in :mod:`.instances` (``"finetune"``, ``"finetune-fedbe"``, ``"experts"``).
"""

from edgeplan.formulations.finetune.candidates import LayerCosts, fedbe_round, fedquad_round, transformer_layer_costs
from edgeplan.formulations.finetune.experts import (
    ExpertMetrics,
    ExpertPlan,
    ExpertSelection,
    expert_importance,
    gating_weights,
    routed_experts,
    sparsity_aware_expert_average,
)
from edgeplan.formulations.finetune.round import FineTuneMetrics, FineTunePlan, FineTuneRound

__all__ = ["ExpertMetrics", "ExpertPlan", "ExpertSelection", "FineTuneMetrics", "FineTunePlan", "FineTuneRound",
           "LayerCosts", "expert_importance", "fedbe_round", "fedquad_round", "gating_weights", "routed_experts",
           "sparsity_aware_expert_average", "transformer_layer_costs"]
